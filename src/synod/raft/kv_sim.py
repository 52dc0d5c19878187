"""The client side of Raft's key-value machine, for Jepsen-style runs.

:class:`RaftKVAdapter` turns the get, put and append of a
:class:`~synod.workload.kv.KVClient` into a Raft server's messages and reads
its replies as Jepsen does (``ok``, ``fail``: it did not happen, ``info``: it
may have). Read paths (``reads``):

- ``read-index``: a ``Read`` message; the server gets a read index (thesis
  6.4; a follower asks its leader) and answers once it has applied that far;
- ``lease``: the same with leader leases on (thesis 6.4.1); safe only under
  the lease's assumptions (clock *rates* within ``clock_drift_bound``, no
  process pauses);
- ``log``: the get is a log entry like a write (section 8 of the paper).

:func:`check_record` gives the fields of a traced run's ``check`` record:
the linearizability verdict and, when it is illegal, the operations of the
failing window by their history lines, so ``synod trace view`` highlights
them (see docs/trace-viewer.md).

The runs themselves (the KV machine under the nemesis, its history checked
for linearizability) are in :mod:`synod.harness.raft`.
"""

from __future__ import annotations

from typing import Any

from synod.check import KV, CheckResult, Operation, explain
from synod.core import decode, encode
from synod.core.errors import ConfigError
from synod.raft.messages import Propose, ProposeReply, Read
from synod.workload import Outcome
from synod.workload.kv import FAIL, INFO, OK

__all__ = ["READ_MODES", "RaftKVAdapter", "check_record"]

READ_MODES = ("read-index", "lease", "log")


class RaftKVAdapter:
    """Requests and replies of a Raft KV server for :class:`KVClient`: puts
    and appends are ``Propose`` commands; a get is a ``Read`` (``reads``
    read-index or lease) or a ``Propose`` (log).

    Raises:
        ConfigError: ``reads`` is not one of ``READ_MODES``.
    """

    def __init__(self, reads: str) -> None:
        if reads not in READ_MODES:
            raise ConfigError(f"unknown read mode {reads!r}; choose from {', '.join(READ_MODES)}")
        self.reads = reads

    def request(self, f: str, key: str, value: str | None, request_id: int) -> Any:
        if f == "get" and self.reads != "log":
            return Read(request_id=request_id, query=encode(["get", key]))
        return Propose(request_id=request_id, command=encode([f, key, value]))

    def reply_id(self, msg: Any) -> int | None:
        return msg.request_id if type(msg) is ProposeReply else None

    def outcome(self, f: str, msg: Any) -> Outcome:
        if msg.ok:
            return Outcome(OK, decode(msg.result) if f == "get" and msg.result is not None else None,
                           msg.leader_hint)
        return Outcome(INFO if msg.indeterminate else FAIL, None, msg.leader_hint)


def _failing(op: Operation, role: str) -> dict[str, Any]:
    return {"history_line": op.lines[0], "complete_line": op.lines[1] or None, "role": role,
            "process": op.process, "f": op.f, "key": op.key}


def check_record(check: CheckResult) -> dict[str, Any]:
    """The fields of the trace's ``check`` record: ``checker``, ``model``,
    ``verdict``, ``summary`` (the checker's explanation, one line) and, when
    illegal, ``key`` and ``failing``: the failing window's operations as
    ``{history_line, complete_line, role, process, f, key}``, ``role``
    ``stuck`` for the one the search could not place, ``pending`` for the
    concurrent ones it could not linearize, ``window`` for the others."""
    fields: dict[str, Any] = {"checker": "linearizability", "model": check.model, "verdict": check.verdict}
    c = check.counterexample
    if c is None:
        fields["summary"] = check.reason or f"{len(check.operations)} operations, {check.partitions} keys"
        return fields
    lines = [line.strip() for line in explain(check, KV())[1:]]
    why = [line[len("why:"):].strip() for line in lines if line.startswith("why:")]
    fields["summary"] = why[0] if why else "; ".join(lines)
    fields["key"] = c.key
    pending = {op.id for op in c.pending}
    fields["failing"] = [_failing(op, "stuck" if op.id == c.stuck.id else "pending" if op.id in pending
                                  else "window") for op in c.window]
    return fields
