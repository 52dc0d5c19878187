"""Raft consensus (Ongaro & Ousterhout 2014): a sans-IO state machine
(:class:`Raft`), a synod node hosting it (:class:`RaftNode`), and Lab 3's
tester over a simulated cluster (:mod:`synod.raft.sim`). Raft's runs under
the nemesis (``synod sim raft``) are in :mod:`synod.harness.raft`."""

from synod.raft._confchange import ADD_LEARNER, PROMOTE, REMOVE, ConfChange, ConfState
from synod.raft._log import RaftLog, Snapshot
from synod.raft._ready import HardState, ReadState, Ready, Recovered, SoftState
from synod.raft.raft import CANDIDATE, FOLLOWER, LEADER, PRE_CANDIDATE, Raft, RaftConfig

__all__ = [
    "Raft", "RaftConfig", "RaftLog", "Snapshot", "HardState", "SoftState", "ReadState", "Ready",
    "Recovered", "FOLLOWER", "PRE_CANDIDATE", "CANDIDATE", "LEADER",
    "ConfChange", "ConfState", "ADD_LEARNER", "PROMOTE", "REMOVE",
]
