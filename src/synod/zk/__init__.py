"""ZooKeeper (Hunt, Konar, Junqueira, Reed, "ZooKeeper: Wait-free
coordination for Internet-scale systems", USENIX ATC 2010): issue 12, in
progress. Built so far: the client wire protocol, so unmodified ZooKeeper
clients (kazoo) can speak to a synod node.

Parts
    :mod:`~synod.zk.constants` ZooKeeper's op codes, error codes, xids,
    event types, create modes and the limits (jute.maxbuffer);
    :mod:`~synod.zk.jute` the jute encoding (bounds-checked reader, writer,
    typed records); :mod:`~synod.zk.messages` the requests and replies as
    typed records under ZooKeeper's names; :mod:`~synod.zk.protocol`
    :class:`ZooKeeperProtocol`, the sans-IO server side of one client
    connection for the runtime's client gateway (DESIGN.md section 8).

Not built yet: the data tree, sessions, watches, Zab, the node.
"""

from synod.zk._codec import connect_frame, read_connect_response, read_response, request_frame
from synod.zk.protocol import ZooKeeperProtocol

__all__ = ["ZooKeeperProtocol", "request_frame", "connect_frame", "read_response", "read_connect_response"]
