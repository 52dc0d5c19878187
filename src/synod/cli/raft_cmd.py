"""``synod raft``: talk to a Raft cluster started with ``synod cluster``.

::

    synod cluster up --nodes 3 --factory synod.raft.node:factory --run-dir runs/raft
    synod raft status --run-dir runs/raft [--json]
    synod raft put KEY VALUE | append KEY VALUE | get KEY   --run-dir runs/raft
    synod raft member add-learner n4 | promote n4 | remove n1   --run-dir runs/raft

Every write goes to the leader (the highest-term server that says it leads),
through the log, and waits until it is applied there; ``get`` is a
ReadIndex read (thesis 6.4), or a log entry with ``--via-log``; both are
linearizable. A refused request is retried on the
leader that answers next until ``--timeout`` seconds pass; then the command
prints the last reason and exits with status 1. ``promote`` is refused while
the learner is not caught up (thesis 4.2.1), so it waits for that too.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import click

from synod.cli.cluster_cmd import attach_cluster, cluster_location_options

__all__ = ["raft"]

CALL_TIMEOUT_S = 1.0
RETRY_PAUSE_S = 0.1
_request_ids = itertools.count(1)  # replies come back on this connection only


def _status(cl: Any, node_id: str) -> Any | None:
    from synod.raft.messages import RaftStatus, RaftStatusRequest

    if not cl.is_alive(node_id) or cl.is_paused(node_id):
        return None
    try:
        reply = cl.call(node_id, RaftStatusRequest(), CALL_TIMEOUT_S)
    except OSError:
        return None
    return reply if type(reply) is RaftStatus else None


def _leader(cl: Any) -> str | None:
    from synod.raft import LEADER

    leaders = [s for s in (_status(cl, n) for n in cl.node_ids) if s is not None and s.role == LEADER]
    best = max(leaders, key=lambda s: s.term, default=None)
    return None if best is None else best.node_id


def _submit(cl: Any, node_id: str, request: Any) -> Any | None:
    """Send ``request`` (it carries ``request_id``) to ``node_id``; its
    ProposeReply, or None when the node does not answer in time."""
    from synod.raft.messages import ProposeReply

    try:
        with cl.client(node_id) as client:
            client.send(request)
            deadline = time.monotonic() + CALL_TIMEOUT_S
            while (left := deadline - time.monotonic()) > 0:
                got = client.recv(left, ProposeReply)
                if got is None:
                    return None
                if got[1].request_id == request.request_id:
                    return got[1]
    except OSError:
        return None
    return None


def _until_applied(cl: Any, make_request: Any, timeout_s: float) -> Any:
    """Submit a fresh request from ``make_request(request_id)`` to the leader
    until one is applied; its ProposeReply. Raises ClickException on timeout."""
    deadline = time.monotonic() + timeout_s
    why = "no leader"
    hint: str | None = None
    while time.monotonic() < deadline:
        target = hint if hint in cl.config.nodes else _leader(cl)
        hint = None
        if target is None:
            why = "no leader"
        else:
            reply = _submit(cl, target, make_request(next(_request_ids)))
            if reply is None:
                why = f"{target} did not answer within {CALL_TIMEOUT_S} s"
            elif reply.ok:
                return reply
            else:
                why = f"{target}: {reply.error or 'refused'} (leader hint: {reply.leader_hint})"
                hint = reply.leader_hint if reply.leader_hint != target else None
        time.sleep(RETRY_PAUSE_S)
    raise click.ClickException(f"gave up after {timeout_s} s: {why}")


@click.group()
def raft() -> None:
    """Read and change a Raft cluster run by ``synod cluster``."""


_timeout = click.option("--timeout", "timeout_s", type=click.FloatRange(0.1, 3600.0), default=10.0,
                        show_default=True, help="Seconds to keep retrying.")


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
        reply = _until_applied(cl, lambda rid: Propose(request_id=rid, command=command), timeout_s)
    else:
        query = encode([op, key])
        reply = _until_applied(cl, lambda rid: Read(request_id=rid, query=query), timeout_s)
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


_write_command("put", "Set KEY to VALUE through the log.")
_write_command("append", "Append VALUE to KEY through the log.")


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
    server. NODE_ID must be a node of the cluster config (it has an address)."""
    from synod.raft.messages import ConfChangeRequest

    cl = attach_cluster(run_dir, config_path)
    if node_id not in cl.config.nodes:
        raise click.UsageError(f"no node {node_id!r} in the cluster config (nodes: {', '.join(cl.node_ids)})")
    reply = _until_applied(cl, lambda rid: ConfChangeRequest(request_id=rid, op=op, node_id=node_id), timeout_s)
    click.echo(f"index {reply.index}: {op} {node_id} committed")
