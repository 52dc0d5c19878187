"""synod.workload: client generators and history recorders (DESIGN.md
sections 1 and 7). A workload client is an ordinary node, so it runs in the
simulator beside the servers it drives; what it sees is recorded as a
Jepsen-shaped history for the checkers in :mod:`synod.check`."""

from synod.workload.history import HistoryRecorder
from synod.workload.kv import KVAdapter, KVClient, KVWorkload, Outcome

__all__ = ["HistoryRecorder", "KVAdapter", "KVClient", "KVWorkload", "Outcome"]
