"""Drivers that sit above ``sim`` and ``runtime`` (DESIGN.md section 8):
clients that keep Raft's session semantics against real processes, and the
real-process fault suite of issue 8. The shared fault runner of DESIGN.md
section 8 grows here."""

from synod.harness.raft_client import Outcome, RaftSessionClient, leader_of, status_of

__all__ = ["Outcome", "RaftSessionClient", "leader_of", "status_of"]
