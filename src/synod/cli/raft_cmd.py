"""``synod raft``: talk to a Raft cluster started with ``synod cluster``.

::

    synod cluster up --nodes 3 --factory synod.raft.node:factory --run-dir runs/raft
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
import time
from typing import Any

import click

from synod.cli.cluster_cmd import attach_cluster, cluster_location_options

__all__ = ["raft", "EXIT_FAILED", "EXIT_UNKNOWN"]

CALL_TIMEOUT_S = 1.0  # one attempt waits this long for an answer before sending again
RETRY_PAUSE_S = 0.1
EXIT_FAILED = 1   # a read not served; a write refused every time (not applied)
EXIT_UNKNOWN = 3  # a write's outcome is unknown: it may have been applied


class OutcomeUnknown(click.ClickException):
    """A write was sent and nothing said whether it was applied; exit status 3."""

    exit_code = EXIT_UNKNOWN


def _status(cl: Any, node_id: str) -> Any | None:
    from synod.core.errors import RemoteProtocolError
    from synod.raft.messages import RaftStatus, RaftStatusRequest

    if not cl.is_alive(node_id) or cl.is_paused(node_id):
        return None
    try:
        reply = cl.call(node_id, RaftStatusRequest(), CALL_TIMEOUT_S)
    except (OSError, RemoteProtocolError):  # down, or something else answers on its address
        return None
    return reply if type(reply) is RaftStatus else None


def _leader(cl: Any) -> str | None:
    from synod.raft import LEADER

    leaders = [s for s in (_status(cl, n) for n in cl.node_ids) if s is not None and s.role == LEADER]
    best = max(leaders, key=lambda s: s.term, default=None)
    return None if best is None else best.node_id


class _Operation:
    """One logical operation: one request (so one request id), sent under
    one client id over at most one open connection per node, as often as it
    takes (thesis 6.3)."""

    def __init__(self, cl: Any, client_id: str, request: Any) -> None:
        self.cl = cl
        self.client_id = client_id
        self.request = request
        self._clients: dict[str, Any] = {}

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def submit(self, node_id: str, timeout_s: float) -> tuple[bool, Any | None]:
        """Send the request to ``node_id`` (again, if it went there before:
        a server answers a copy it has seen from its session table) and wait
        at most ``timeout_s`` for its ProposeReply. Returns (sent, reply):
        ``sent`` is False only when nothing left (no connection); ``reply``
        is None when none came."""
        from synod.core.errors import RemoteProtocolError
        from synod.raft.messages import ProposeReply

        client = self._clients.get(node_id)
        if client is None:
            client = self._clients[node_id] = self.cl.client(node_id, client_id=self.client_id)
        try:
            client.connect()
        except (OSError, RemoteProtocolError):
            client.close()
            return False, None
        try:
            client.send(self.request)
            deadline = time.monotonic() + timeout_s
            while (left := deadline - time.monotonic()) > 0:
                got = client.recv(left, ProposeReply)
                if got is None:
                    break
                if got[1].request_id == self.request.request_id:
                    return True, got[1]
        except (OSError, RemoteProtocolError):
            client.close()  # the next attempt reconnects, under the same client id
        return True, None


def _not_applied(reply: Any) -> bool:
    """Whether a refusal settles that its copy was not applied: it never
    entered the log ("not the leader", a full queue) or its entry was
    overwritten; unlike an indeterminate or stale answer (the server cannot
    tell: a snapshot replaced the log, or the session moved on)."""
    return not reply.ok and not reply.indeterminate and reply.error != "stale request"


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
    from synod.runtime.client import Session

    session = Session()
    op = _Operation(cl, session.client_id, make_request(session.next_request_id()))
    deadline = time.monotonic() + timeout_s
    why = "no leader"
    hint: str | None = None
    unsettled = False  # some copy left without a reply that settles it: it may commit
    try:
        while (left := deadline - time.monotonic()) > 0:
            target = hint if hint in cl.config.nodes else _leader(cl)
            hint = None
            if target is None:
                why = "no leader"
            else:
                sent, reply = op.submit(target, min(CALL_TIMEOUT_S, left))
                if reply is None:
                    unsettled = unsettled or sent
                    why = f"{target} did not answer within {CALL_TIMEOUT_S} s" if sent else f"{target} is unreachable"
                elif reply.ok:
                    return reply
                else:
                    unsettled = unsettled or not _not_applied(reply)
                    why = f"{target}: {reply.error or 'refused'} (leader hint: {reply.leader_hint})"
                    hint = reply.leader_hint if reply.leader_hint != target else None
            time.sleep(max(0.0, min(RETRY_PAUSE_S, deadline - time.monotonic())))
    finally:
        op.close()
    if writes and unsettled:
        raise OutcomeUnknown(f"outcome unknown (may have been applied) after {timeout_s} s: {why}")
    raise click.ClickException(f"failed after {timeout_s} s{' (not applied)' if writes else ''}: {why}")


@click.group()
def raft() -> None:
    """Read and change a Raft cluster run by ``synod cluster``.

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
    states = {nid: _status(cl, nid) for nid in cl.node_ids}
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
