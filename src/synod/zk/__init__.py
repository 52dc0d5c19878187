"""ZooKeeper (Hunt, Konar, Junqueira, Reed, "ZooKeeper: Wait-free
coordination for Internet-scale systems", USENIX ATC 2010) on Zab
(:mod:`synod.zab`), speaking ZooKeeper's own wire protocol so kazoo and
zkCli.sh work against it: issue 12; see docs/zookeeper.md.

Parts
    :mod:`~synod.zk.constants` ZooKeeper's op codes, error codes, xids,
    event types, create modes and the limits (jute.maxbuffer);
    :mod:`~synod.zk.jute` the jute encoding (bounds-checked reader, writer,
    typed records); :mod:`~synod.zk.messages` the requests and replies as
    typed records under ZooKeeper's names; :mod:`~synod.zk.protocol`
    :class:`ZooKeeperProtocol`, the sans-IO server side of one client
    connection for the runtime's client gateway (DESIGN.md section 8);
    :mod:`~synod.zk.txn` the transactions, :mod:`~synod.zk.tree` the data
    tree that applies them, :mod:`~synod.zk.prep` the leader's checks that
    make them, :mod:`~synod.zk.watches` the watch manager,
    :mod:`~synod.zk.sessions` session ids, passwords and expiry;
    :mod:`~synod.zk.server` the server, on Zab (:mod:`synod.zab`), with
    :mod:`~synod.zk.config` its configuration and :mod:`~synod.zk.peers`
    what servers say to each other.

Around it: ``synod zk up/status/down`` (:mod:`synod.cli.zk_cmd`), the
simulated fault run and its checkers (:mod:`synod.harness.zk`, ``synod sim
zk``), the real-process fault run (:mod:`synod.harness.zk_faults`) and
``benchmarks/zk_throughput.py``.
"""

from synod.zk._codec import connect_frame, read_connect_response, read_response, request_frame
from synod.zk.protocol import ZooKeeperProtocol

__all__ = ["ZooKeeperProtocol", "request_frame", "connect_frame", "read_response", "read_connect_response"]
