"""Drivers that sit above ``sim``, ``runtime`` and the systems (DESIGN.md
section 8): the one fault runner (:mod:`synod.harness.runner`) and the
systems' scenarios for it (:mod:`synod.harness.kv`, :mod:`synod.harness.raft`,
:mod:`synod.harness.mapreduce`); clients that keep Raft's session semantics
against real processes, and the real-process fault suite of issue 8. The
scenario modules are imported by name, so loading this package stays light."""

from synod.harness.raft_client import Outcome, RaftSessionClient, leader_of, status_of

__all__ = ["Outcome", "RaftSessionClient", "leader_of", "status_of"]
