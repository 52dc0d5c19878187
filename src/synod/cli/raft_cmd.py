"""``synod raft``: talk to a Raft cluster started with ``synod cluster``.

::

    synod cluster up --nodes 3 --factory synod.kv.simple:factory --run-dir runs/raft
    synod raft status --run-dir runs/raft [--json]
    synod raft put KEY VALUE | append KEY VALUE | get KEY   --run-dir runs/raft
    synod raft member add-learner n4 | promote n4 | remove n1   --run-dir runs/raft

Every write goes to the leader (the highest-term server that says it leads),
through the log, and waits until it is applied there; ``get`` is a
ReadIndex read (thesis 6.4), or a log entry with ``--via-log``; both are
linearizable. ``promote`` is refused while the learner is not caught up
(thesis 4.2.1), so it waits for that too.

Retries apply a write once (thesis 6.3). One command is one logical
operation: one client id (the ``src`` of every connection it opens, to any
node) and one request id, kept across every retry, reconnect and leader
change, so a server's session table recognises a retry of a write that is
already in the log and answers with its first result instead of applying
it again. A request that is refused or not answered within a second is
sent again, to the leader that answers next, until ``--timeout`` seconds
pass. Exit status:

- 0: applied (a read: served); the command prints the log index;
- 1: failed: a read was not served, or a write was refused every time it
  was sent, so it was not applied (and bad cluster or run directory);
- 2: bad arguments;
- 3 (``EXIT_UNKNOWN``): outcome unknown (may have been applied): a write
  was sent and no answer said whether it was applied (a timeout, a lost
  connection, an indeterminate reply). It may still be applied later;
  read before writing again, since a new command is a new operation.
"""

from __future__ import annotations

import json
from typing import Any

import click

from synod.cli.cluster_cmd import attach_cluster, cluster_location_options

__all__ = ["raft", "EXIT_FAILED", "EXIT_UNKNOWN"]

EXIT_FAILED = 1   # a read not served; a write refused every time (not applied)
EXIT_UNKNOWN = 3  # a write's outcome is unknown: it may have been applied


class OutcomeUnknown(click.ClickException):
    """A write was sent and nothing said whether it was applied; exit status 3."""

    exit_code = EXIT_UNKNOWN


def _until_applied(cl: Any, make_request: Any, timeout_s: float, *, writes: bool = True) -> Any:
    """Send the request ``make_request(request_id)`` (one request id, under
    one client id) to the leader until a reply says it was applied; that
    ProposeReply.

    Raises:
        OutcomeUnknown: a write, and some copy was sent without a reply
            that settles it (exit status 3).
        ClickException: a read that was not served, or a write refused
            every time it was sent, or never sent (exit status 1).
    """
    from synod.harness.raft_client import RaftSessionClient

    client = RaftSessionClient(cl)
    try:
        outcome = client.run(make_request, timeout_s)
    finally:
        client.close()
    if outcome.kind == "applied":
        return outcome.reply
    if writes and outcome.kind == "unknown":
        raise OutcomeUnknown(f"outcome unknown (may have been applied) after {timeout_s} s: {outcome.why}")
    raise click.ClickException(f"failed after {timeout_s} s{' (not applied)' if writes else ''}: {outcome.why}")


@click.group()
def raft() -> None:
    """Read and change a Raft cluster run by `synod cluster`.

    A write is retried with one client id and one request id, so it is
    applied at most once. Exit status: 0 applied (or read); 1 failed (a read
    not served, a write refused every time: not applied); 2 bad arguments;
    3 outcome unknown (may have been applied): a write was sent and no reply
    said whether it was applied before --timeout ran out.
    """


_timeout = click.option("--timeout", "timeout_s", type=click.FloatRange(0.1, 3600.0), default=10.0,
                        show_default=True,
                        help="Seconds to keep sending the same request (exit 3 if a write's outcome is then unknown).")


@raft.command("status")
@cluster_location_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON, one object per node.")
def status(run_dir: str | None, config_path: str | None, as_json: bool) -> None:
    """Each server's role, term, leader, indexes and configuration."""
    cl = attach_cluster(run_dir, config_path)
    from synod.harness.raft_client import status_of

    states = {nid: status_of(cl, nid) for nid in cl.node_ids}
    if as_json:
        click.echo(json.dumps({nid: None if s is None else {
            "role": s.role, "term": s.term, "leader": s.leader, "last_index": s.last_index,
            "commit_index": s.commit_index, "applied_index": s.applied_index,
            "voters": list(s.voters), "learners": list(s.learners)} for nid, s in states.items()}, indent=2))
        return
    click.echo(f"{'node':<8} {'role':<14} {'term':>5} {'leader':<8} {'last':>6} {'commit':>6} {'applied':>7} "
               "configuration")
    for nid, s in states.items():
        if s is None:
            click.echo(f"{nid:<8} {'down':<14}")
            continue
        conf = f"voters={','.join(s.voters)} learners={','.join(s.learners) or '-'}"
        click.echo(f"{nid:<8} {s.role:<14} {s.term:>5} {s.leader or '-':<8} {s.last_index:>6} "
                   f"{s.commit_index:>6} {s.applied_index:>7} {conf}")


def _kv(op: str, key: str, value: str | None, run_dir: str | None, config_path: str | None,
        timeout_s: float, *, via_log: bool = True) -> None:
    from synod.core import decode, encode
    from synod.raft.messages import Propose, Read

    cl = attach_cluster(run_dir, config_path)
    command = encode([op, key, value])
    if via_log:
        reply = _until_applied(cl, lambda rid: Propose(request_id=rid, command=command), timeout_s,
                               writes=op != "get")
    else:
        query = encode([op, key])
        reply = _until_applied(cl, lambda rid: Read(request_id=rid, query=query), timeout_s, writes=False)
    result = decode(reply.result) if reply.result is not None else None
    click.echo(f"index {reply.index}: {key} = {json.dumps(result)}")


def _write_command(op: str, help_text: str) -> None:
    @raft.command(op, help=help_text)
    @cluster_location_options
    @_timeout
    @click.argument("key")
    @click.argument("value")
    def command(run_dir: str | None, config_path: str | None, timeout_s: float, key: str, value: str) -> None:
        _kv(op, key, value, run_dir, config_path, timeout_s)


_WRITE_EXITS = ("Applied at most once, however often it is retried. Exit status: 0 applied; 1 refused every "
                "time (not applied); 3 outcome unknown (may have been applied).")
_write_command("put", f"Set KEY to VALUE through the log. {_WRITE_EXITS}")
_write_command("append", f"Append VALUE to KEY through the log. {_WRITE_EXITS}")


@raft.command("get")
@cluster_location_options
@_timeout
@click.option("--via-log", is_flag=True, help="Read through the log instead of by ReadIndex.")
@click.argument("key")
def get(run_dir: str | None, config_path: str | None, timeout_s: float, via_log: bool, key: str) -> None:
    """Read KEY, linearizably: by ReadIndex (thesis 6.4, no log write), or
    through the log with --via-log."""
    _kv("get", key, None, run_dir, config_path, timeout_s, via_log=via_log)


@raft.command("member")
@cluster_location_options
@_timeout
@click.argument("op", type=click.Choice(["add-learner", "promote", "remove"]))
@click.argument("node_id")
def member(run_dir: str | None, config_path: str | None, timeout_s: float, op: str, node_id: str) -> None:
    """One single-server membership change (thesis 4.1): add NODE_ID as a
    non-voting learner, promote a caught-up learner to voter, or remove a
    server. NODE_ID must be a node of the cluster config (it has an address).
    Exit status as for put: 3 when the outcome is unknown (may have been applied)."""
    from synod.raft.messages import ConfChangeRequest

    cl = attach_cluster(run_dir, config_path)
    if node_id not in cl.config.nodes:
        raise click.UsageError(f"no node {node_id!r} in the cluster config (nodes: {', '.join(cl.node_ids)})")
    reply = _until_applied(cl, lambda rid: ConfChangeRequest(request_id=rid, op=op, node_id=node_id), timeout_s)
    click.echo(f"index {reply.index}: {op} {node_id} committed")
