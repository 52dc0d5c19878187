"""Zab, ZooKeeper's atomic broadcast (Junqueira, Reed, Serafini, "Zab:
High-performance broadcast for primary-backup systems", DSN 2011; Medeiros,
"ZooKeeper's atomic broadcast protocol: Theory and practice", 2012), as a
sans-IO state machine (:class:`Zab`), the node that hosts it
(:class:`ZabNode`) and the white-box checker of its properties
(:class:`ZabChecker`)."""

from synod.zab.checker import ZabChecker
from synod.zab.node import ZabNode, ZabNodeConfig
from synod.zab.zab import FOLLOWING, LEADING, LOOKING, OBSERVING, Ready, Recovered, Zab, ZabConfig
from synod.zab.zxid import counter_of, epoch_of, make_zxid, zxid_str

__all__ = ["Zab", "ZabConfig", "Ready", "Recovered", "ZabNode", "ZabNodeConfig", "ZabChecker",
           "LOOKING", "FOLLOWING", "LEADING", "OBSERVING", "make_zxid", "epoch_of", "counter_of", "zxid_str"]
