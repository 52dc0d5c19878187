"""A white-box checker of Zab's properties (Junqueira, Reed, Serafini,
DSN 2011, section III), fed by every :class:`~synod.zab.node.ZabNode` of a
simulated run (its ``observer``).

It sees each server's proposals (as leader), the initial history of each
established epoch, and every delivery (per incarnation: a restarted server
delivers again from its snapshot). :meth:`violations` checks, over the
whole run:

- *integrity*: a delivered transaction was broadcast, with those bytes;
- *primary uniqueness*: one server broadcasts in an epoch, and a zxid names
  one transaction (an epoch reused by two leaders breaks it);
- *total order and agreement*: each server delivers in increasing zxid
  order, and what one incarnation delivers is exactly the run's delivered
  transactions from its snapshot up to its last delivery (nothing skipped,
  nothing extra): two servers never disagree on a prefix;
- *local and global primary order*: follow from the above with zxids
  ordered by (epoch, counter);
- *primary integrity*: a leader of epoch e that broadcasts holds, in its
  initial history, every transaction of an earlier epoch that anyone
  delivers.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from synod.zab.zab import LEADING, Ready, Zab
from synod.zab.zxid import epoch_of, zxid_str

__all__ = ["ZabChecker"]

VIOLATIONS_MAX = 20


@dataclass(slots=True)
class _Incarnation:
    node_id: str
    base_zxid: int = 0               # restored from a snapshot at this zxid (its prefix delivered)
    delivered: list[tuple[int, bytes]] = field(default_factory=list)


class ZabChecker:
    """Collects one run's Zab events; see the module docstring."""

    def __init__(self) -> None:
        self.broadcast: dict[int, bytes] = {}          # zxid -> data, as proposed
        self.leader_of_epoch: dict[int, str] = {}
        self.initial_history: dict[int, tuple[int, frozenset[int]]] = {}  # epoch -> (snapshot zxid, zxids)
        self.incarnations: list[_Incarnation] = []
        self.current: dict[str, _Incarnation] = {}
        self.problems: list[str] = []

    # -- the observer hooks -------------------------------------------------------------------
    def on_start(self, node_id: str, zab: Zab) -> None:
        inc = _Incarnation(node_id)
        self.incarnations.append(inc)
        self.current[node_id] = inc

    def on_ready(self, node_id: str, zab: Zab, rd: Ready) -> None:
        for kind, fields in rd.events:
            if kind == "epoch_acked" and zab.role == LEADING:
                epoch = fields["epoch"]
                self.initial_history[epoch] = (zab.snapshot_zxid, frozenset(zab.history_at_establishment))
        for txn in rd.entries:
            if zab.role == LEADING and epoch_of(txn.zxid) == zab.new_epoch:
                self._broadcast(node_id, txn.zxid, txn.data)
        inc = self.current[node_id]
        if rd.restore is not None:
            inc = _Incarnation(node_id, base_zxid=rd.restore[0])
            self.incarnations.append(inc)
            self.current[node_id] = inc
        for txn in rd.committed:
            if inc.delivered and txn.zxid <= inc.delivered[-1][0] or txn.zxid <= inc.base_zxid:
                self._problem(f"total order: {node_id} delivered {zxid_str(txn.zxid)} after "
                              f"{zxid_str(inc.delivered[-1][0] if inc.delivered else inc.base_zxid)}")
            inc.delivered.append((txn.zxid, txn.data))

    def _broadcast(self, node_id: str, zxid: int, data: bytes) -> None:
        epoch = epoch_of(zxid)
        leader = self.leader_of_epoch.setdefault(epoch, node_id)
        if leader != node_id:
            self._problem(f"primary uniqueness: {leader} and {node_id} both broadcast in epoch {epoch}")
        old = self.broadcast.setdefault(zxid, data)
        if old != data:
            self._problem(f"primary uniqueness: zxid {zxid_str(zxid)} names two transactions")

    def _problem(self, text: str) -> None:
        if len(self.problems) < VIOLATIONS_MAX:
            self.problems.append(text)

    # -- the verdict ---------------------------------------------------------------------------
    def delivered(self) -> dict[int, bytes]:
        """Every delivered transaction of the run: zxid -> data."""
        out: dict[int, bytes] = {}
        for inc in self.incarnations:
            for zxid, data in inc.delivered:
                out.setdefault(zxid, data)
        return out

    def violations(self) -> list[str]:
        """Everything the run broke (empty: Zab's properties held)."""
        problems = list(self.problems)
        seen: dict[int, tuple[bytes, str]] = {}
        for inc in self.incarnations:
            for zxid, data in inc.delivered:
                if zxid not in self.broadcast:
                    problems.append(f"integrity: {inc.node_id} delivered {zxid_str(zxid)}, never broadcast")
                elif self.broadcast[zxid] != data:
                    problems.append(f"integrity: {inc.node_id} delivered other bytes for {zxid_str(zxid)}")
                first = seen.setdefault(zxid, (data, inc.node_id))
                if first[0] != data:
                    problems.append(f"agreement: {first[1]} and {inc.node_id} delivered different "
                                    f"transactions as {zxid_str(zxid)}")
        everything = sorted(seen)
        for inc in self.incarnations:
            if not inc.delivered:
                continue
            lo = bisect.bisect_right(everything, inc.base_zxid)
            hi = bisect.bisect_right(everything, inc.delivered[-1][0])
            expected = everything[lo:hi]
            got = [z for z, _ in inc.delivered]
            if got != expected:
                missing = sorted(set(expected) - set(got))
                problems.append(f"agreement: {inc.node_id} delivered {len(got)} transactions from "
                                f"{zxid_str(inc.base_zxid)} to {zxid_str(got[-1])}; the run delivered "
                                f"{len(expected)} there" + (f", e.g. {zxid_str(missing[0])} it skipped"
                                                             if missing else ""))
        for epoch, (snap_zxid, zxids) in self.initial_history.items():
            if epoch not in self.leader_of_epoch:
                continue  # that leader never broadcast
            for zxid in everything:
                if epoch_of(zxid) < epoch and zxid > snap_zxid and zxid not in zxids:
                    problems.append(f"primary integrity: {zxid_str(zxid)} was delivered but is not in the "
                                    f"initial history of epoch {epoch} ({self.leader_of_epoch[epoch]})")
                    break
        return problems[:VIOLATIONS_MAX]

    def summary(self) -> dict[str, Any]:
        return {"delivered": len(self.delivered()), "broadcast": len(self.broadcast),
                "epochs": len(self.leader_of_epoch), "incarnations": len(self.incarnations)}
