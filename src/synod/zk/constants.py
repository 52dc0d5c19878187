"""ZooKeeper's wire numbers and synod.zk's limits, each with its unit.

The numbers are ZooKeeper's own, under ZooKeeper's names, so a reader of
its sources recognises them: op codes (``ZooDefs.OpCode``), error codes
(``KeeperException.Code``), the special xids (``ClientCnxn``), watch event
types and session states (``Watcher.Event``), create modes
(``CreateMode``), permissions (``ZooDefs.Perms``), watcher types
(``Watcher.WatcherType``), addWatch modes (``ZooDefs.AddWatchModes``) and
the four-letter words (``FourLetterCommands``).

The limits are ZooKeeper's defaults (``jute.maxbuffer``), so a client that
works against ZooKeeper is not refused here (STYLE.md: "put a limit on
everything").
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "OpCode", "Code", "EventType", "KeeperState", "CreateMode", "Perms", "WatcherType", "AddWatchMode",
    "NOTIFICATION_XID", "PING_XID", "AUTHPACKET_XID", "SET_WATCHES_XID", "FOUR_LETTER_WORDS",
    "TRACE_MASK_WORD", "FRAME_BYTES_MAX", "BUFFER_BYTES_MAX", "LENGTH_PREFIX_BYTES", "CONNECT_REQUEST_BYTES_MIN",
    "PASSWD_BYTES", "PROTOCOL_VERSION",
]


class OpCode(IntEnum):
    """Request types of the RequestHeader (``ZooDefs.OpCode``)."""

    notification = 0
    create = 1
    delete = 2
    exists = 3
    getData = 4
    setData = 5
    getACL = 6
    setACL = 7
    getChildren = 8
    sync = 9
    ping = 11
    getChildren2 = 12
    check = 13
    multi = 14
    create2 = 15
    reconfig = 16
    checkWatches = 17
    removeWatches = 18
    createContainer = 19
    deleteContainer = 20
    createTTL = 21
    multiRead = 22
    auth = 100
    setWatches = 101
    sasl = 102
    getEphemerals = 103
    getAllChildrenNumber = 104
    setWatches2 = 105
    addWatch = 106
    whoAmI = 107
    createSession = -10
    closeSession = -11
    error = -1


class Code(IntEnum):
    """The ``err`` of a ReplyHeader and of a multi's ErrorResponse
    (``KeeperException.Code``)."""

    OK = 0
    SYSTEMERROR = -1
    RUNTIMEINCONSISTENCY = -2
    DATAINCONSISTENCY = -3
    CONNECTIONLOSS = -4
    MARSHALLINGERROR = -5
    UNIMPLEMENTED = -6
    OPERATIONTIMEOUT = -7
    BADARGUMENTS = -8
    UNKNOWNSESSION = -12
    NEWCONFIGNOQUORUM = -13
    RECONFIGINPROGRESS = -14
    APIERROR = -100
    NONODE = -101
    NOAUTH = -102
    BADVERSION = -103
    NOCHILDRENFOREPHEMERALS = -108
    NODEEXISTS = -110
    NOTEMPTY = -111
    SESSIONEXPIRED = -112
    INVALIDCALLBACK = -113
    INVALIDACL = -114
    AUTHFAILED = -115
    SESSIONMOVED = -118
    NOTREADONLY = -119
    EPHEMERALONLOCALSESSION = -120
    NOWATCHER = -121
    REQUESTTIMEOUT = -122
    RECONFIGDISABLED = -123
    SESSIONCLOSEDREQUIRESASLAUTH = -124
    QUOTAEXCEEDED = -125
    THROTTLEDOP = -127


class EventType(IntEnum):
    """``WatcherEvent.type`` (``Watcher.Event.EventType``)."""

    # ZooKeeper's name is None, a keyword in Python.
    NONE = -1
    NodeCreated = 1
    NodeDeleted = 2
    NodeDataChanged = 3
    NodeChildrenChanged = 4
    DataWatchRemoved = 5
    ChildWatchRemoved = 6
    PersistentWatchRemoved = 7


class KeeperState(IntEnum):
    """``WatcherEvent.state`` (``Watcher.Event.KeeperState``)."""

    Unknown = -1
    Disconnected = 0
    NoSyncConnected = 1
    SyncConnected = 3
    AuthFailed = 4
    ConnectedReadOnly = 5
    SaslAuthenticated = 6
    Expired = -112
    Closed = 7


class CreateMode(IntEnum):
    """``CreateRequest.flags`` (``CreateMode``)."""

    PERSISTENT = 0
    EPHEMERAL = 1
    PERSISTENT_SEQUENTIAL = 2
    EPHEMERAL_SEQUENTIAL = 3
    CONTAINER = 4
    PERSISTENT_WITH_TTL = 5
    PERSISTENT_SEQUENTIAL_WITH_TTL = 6


class Perms(IntEnum):
    """``ACL.perms`` bits (``ZooDefs.Perms``)."""

    READ = 1
    WRITE = 2
    CREATE = 4
    DELETE = 8
    ADMIN = 16
    ALL = 31


class WatcherType(IntEnum):
    """``CheckWatchesRequest.type`` / ``RemoveWatchesRequest.type``
    (``Watcher.WatcherType``)."""

    Children = 1
    Data = 2
    Any = 3
    Persistent = 4
    PersistentRecursive = 5


class AddWatchMode(IntEnum):
    """``AddWatchRequest.mode`` (``ZooDefs.AddWatchModes``)."""

    persistent = 0
    persistentRecursive = 1


# Special xids of the RequestHeader / ReplyHeader (ClientCnxn): a watch
# notification from the server, a ping, an auth packet, a SetWatches after
# a reconnect. Ordinary requests carry the client's own counter (> 0).
NOTIFICATION_XID = -1
PING_XID = -2
AUTHPACKET_XID = -4
SET_WATCHES_XID = -8

# The four-letter words a fresh connection may send instead of a length
# prefix (FourLetterCommands.cmd2String); the server answers with text and
# closes. "stmk" is followed by an 8-byte trace mask (a jute long).
FOUR_LETTER_WORDS = frozenset({
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srvr", "srst", "stat", "wchc",
    "wchp", "wchs", "mntr", "isro", "hash",
})
TRACE_MASK_WORD = "stmk"

# Largest frame a client may send, bytes, its 4-byte length prefix not
# counted: jute.maxbuffer's default (0xfffff). A larger or negative length
# closes the connection, as NIOServerCnxn.readLength does.
FRAME_BYTES_MAX = 0xFFFFF

# Largest jute buffer or ustring inside a record, bytes (jute.maxbuffer: the
# 1 MB limit on a znode's data). BinaryInputArchive refuses longer ones.
BUFFER_BYTES_MAX = 0xFFFFF

# A frame's length prefix, bytes (a big-endian int).
LENGTH_PREFIX_BYTES = 4
# ConnectRequest without its optional readOnly: int, long, int, long, and
# the passwd buffer's length.
CONNECT_REQUEST_BYTES_MIN = 28

# A session's password as ZooKeeper issues it, bytes (16 random bytes).
PASSWD_BYTES = 16

# ConnectRequest.protocolVersion clients send and servers answer with.
PROTOCOL_VERSION = 0
