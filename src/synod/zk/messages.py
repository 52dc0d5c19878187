"""ZooKeeper's client requests and replies as typed records.

Each record is a frozen, keyword-only synod :class:`~synod.core.codec.Message`
named and laid out as ``zookeeper.jute`` defines it (module
``org.apache.zookeeper.proto`` and ``org.apache.zookeeper.data``), its
fields in jute order under jute's names (``czxid``, ``ephemeralOwner``,
``timeOut``), so the same record travels over ZooKeeper's wire (through
:mod:`synod.zk.jute`) and inside synod (simulator, traces) unchanged.

Jute types map to annotations (see :mod:`synod.zk.jute`): ``int`` ->
:data:`~synod.zk.jute.Int`, ``long`` -> :data:`~synod.zk.jute.Long`,
``boolean`` -> ``bool``, ``buffer`` -> ``bytes | None`` (None: null),
``ustring`` -> ``str``, ``vector<T>`` -> ``tuple[T, ...]``. One name
differs: a jute field ``type`` is ``type_`` here (``type`` is the field
name msgspec keeps for a message's tag).

Requests
    :class:`ConnectRequest` (a connection's first frame) or
    :class:`FourLetterWordRequest` (``ruok`` and the like instead of it);
    then one record per RequestHeader type: the jute request records
    (:class:`GetDataRequest`, :class:`SetWatches`, :class:`AuthPacket` ...),
    and for the types without a body :class:`PingRequest`,
    :class:`CloseSessionRequest`, :class:`WhoAmIRequest`. ZooKeeper reads
    one ``CreateRequest`` body for three op codes (create, create2,
    createContainer), which differ in meaning and reply: here each has its
    class (:class:`CreateRequest`, :class:`Create2Request`,
    :class:`CreateContainerRequest`). A multi is :class:`MultiRequest` (write
    ops) or :class:`MultiReadRequest` (getChildren / getData ops, 3.6+). An
    op code this codec does not take (sasl, reconfig, an unknown one) is an
    :class:`UnimplementedRequest`, answered UNIMPLEMENTED, after which the
    connection closes (ZooKeeper's UnimplementedRequestProcessor).

Replies
    :class:`ConnectResponse`; :class:`FourLetterWordResponse` (raw text);
    otherwise a :class:`Reply`: the ReplyHeader's ``zxid`` and ``err`` (its
    ``xid`` is the request's, filled in by the protocol object) and the
    op's response record (:data:`RESPONSE_TYPES`) or None. A multi's results
    are the op's response records, :class:`DeleteResult` /
    :class:`CheckResult` (no body) and :class:`ErrorResponse`, as
    ``MultiResponse`` writes them. Watch notifications pushed by the server
    are :class:`WatcherEvent`.
"""

from __future__ import annotations

from typing import Union

from synod.core.codec import Message
from synod.zk.constants import OpCode
from synod.zk.jute import Int, Long

__all__ = [
    "Id", "ACL", "Stat", "ClientInfo",
    "ConnectRequest", "FourLetterWordRequest", "CreateRequest", "Create2Request", "CreateContainerRequest",
    "CreateTTLRequest", "DeleteRequest", "ExistsRequest", "GetDataRequest", "SetDataRequest", "GetACLRequest",
    "SetACLRequest", "GetChildrenRequest", "GetChildren2Request", "SyncRequest", "PingRequest",
    "CheckVersionRequest", "MultiRequest", "MultiReadRequest", "CheckWatchesRequest", "RemoveWatchesRequest",
    "AuthPacket", "SetWatches", "SetWatches2", "GetEphemeralsRequest", "GetAllChildrenNumberRequest",
    "AddWatchRequest", "WhoAmIRequest", "CloseSessionRequest", "UnimplementedRequest",
    "ConnectResponse", "FourLetterWordResponse", "Reply", "CreateResponse", "Create2Response", "ExistsResponse",
    "GetDataResponse", "SetDataResponse", "GetACLResponse", "SetACLResponse", "GetChildrenResponse",
    "GetChildren2Response", "SyncResponse", "GetEphemeralsResponse", "GetAllChildrenNumberResponse",
    "WhoAmIResponse", "MultiResponse", "DeleteResult", "CheckResult", "ErrorResponse", "WatcherEvent",
    "MultiOp", "MultiReadOp", "OpResult", "Response", "Request", "REQUEST_OPS", "OP_REQUESTS", "RESPONSE_TYPES",
    "MULTI_OPS", "MULTI_READ_OPS", "MULTI_RESULT_OPS", "CLOSING_REQUESTS",
]


# -- data (org.apache.zookeeper.data) ---------------------------------------------------------------


class Id(Message, tag="zk.Id"):
    """An identity: ``scheme`` (world, auth, digest, ip) and ``id``
    (anyone, ``user:base64(sha1)``, an address)."""

    scheme: str
    id: str


class ACL(Message, tag="zk.ACL"):
    """``perms`` (a :class:`~synod.zk.constants.Perms` bit set) for ``id``."""

    perms: Int
    id: Id


# gc=False: immutable data, never in a reference cycle; a server holds tens of
# thousands (its log, a snapshot in progress) that the cyclic collector need not walk.
class Stat(Message, tag="zk.Stat", gc=False):
    """A znode's metadata (ZooKeeper paper section 2.1; ``data.Stat``).
    zxids are (epoch << 32 | counter); times are ms since the Unix epoch."""

    czxid: Long             # zxid of the create
    mzxid: Long             # zxid of the last setData
    ctime: Long             # created, ms
    mtime: Long             # last modified, ms
    version: Int            # setData count
    cversion: Int           # child changes count
    aversion: Int           # setACL count
    ephemeralOwner: Long    # owning session id if ephemeral, else 0
    dataLength: Int         # bytes of data
    numChildren: Int
    pzxid: Long             # zxid of the last child change


class ClientInfo(Message, tag="zk.ClientInfo"):
    """One of a session's identities, as whoAmI reports it."""

    authScheme: str
    user: str


# -- requests (org.apache.zookeeper.proto) ----------------------------------------------------------


class ConnectRequest(Message, tag="zk.ConnectRequest"):
    """A connection's first frame. ``sessionId`` 0 asks for a new session;
    otherwise the client resumes that one with its ``passwd`` (16 bytes).
    ``timeOut`` is the session timeout the client wants, ms;
    ``lastZxidSeen`` the newest zxid it saw (a server behind it refuses).
    ``readOnly`` is sent by clients since 3.4 (the protocol object answers
    with the field only if the client sent it)."""

    protocolVersion: Int
    lastZxidSeen: Long
    timeOut: Int
    sessionId: Long
    passwd: bytes | None
    readOnly: bool = False


class FourLetterWordRequest(Message, tag="zk.FourLetterWordRequest"):
    """A four-letter word (``ruok``, ``srvr``, ``stat``, ``mntr``, ``conf``,
    ``isro``, ``envi`` ...) sent instead of a ConnectRequest; ``traceMask``
    is stmk's 8-byte argument (0 for the other words)."""

    word: str
    traceMask: Long = 0


class _Create(Message):
    """The fields of jute's CreateRequest, read for three op codes."""

    path: str
    data: bytes | None
    acl: tuple[ACL, ...]
    flags: Int


class CreateRequest(_Create, tag="zk.CreateRequest"):
    """create (op 1): ``flags`` is a :class:`~synod.zk.constants.CreateMode`;
    answered by a :class:`CreateResponse` (the path created)."""


class Create2Request(_Create, tag="zk.Create2Request"):
    """create2 (op 15): a create answered with the new node's Stat too."""


class CreateContainerRequest(_Create, tag="zk.CreateContainerRequest"):
    """createContainer (op 19): a container node (deleted once it had
    children and has none); answered as create2."""


class CreateTTLRequest(Message, tag="zk.CreateTTLRequest"):
    """createTTL (op 21): a persistent node deleted once unmodified and
    childless for ``ttl`` ms; answered as create2."""

    path: str
    data: bytes | None
    acl: tuple[ACL, ...]
    flags: Int
    ttl: Long


class DeleteRequest(Message, tag="zk.DeleteRequest"):
    """delete (op 2); ``version`` -1 matches any."""

    path: str
    version: Int


class ExistsRequest(Message, tag="zk.ExistsRequest"):
    """exists (op 3); ``watch`` leaves an exists (or data) watch."""

    path: str
    watch: bool


class GetDataRequest(Message, tag="zk.GetDataRequest"):
    """getData (op 4); ``watch`` leaves a data watch."""

    path: str
    watch: bool


class SetDataRequest(Message, tag="zk.SetDataRequest"):
    """setData (op 5); ``version`` -1 matches any."""

    path: str
    data: bytes | None
    version: Int


class GetACLRequest(Message, tag="zk.GetACLRequest"):
    """getACL (op 6)."""

    path: str


class SetACLRequest(Message, tag="zk.SetACLRequest"):
    """setACL (op 7); ``version`` is the expected aversion, -1 any."""

    path: str
    acl: tuple[ACL, ...]
    version: Int


class GetChildrenRequest(Message, tag="zk.GetChildrenRequest"):
    """getChildren (op 8); ``watch`` leaves a child watch."""

    path: str
    watch: bool


class GetChildren2Request(Message, tag="zk.GetChildren2Request"):
    """getChildren2 (op 12): getChildren answered with the parent's Stat."""

    path: str
    watch: bool


class SyncRequest(Message, tag="zk.SyncRequest"):
    """sync (op 9): the next read on this server reflects every write
    committed before it (ZooKeeper paper section 2.3)."""

    path: str


class PingRequest(Message, tag="zk.PingRequest"):
    """ping (op 11, xid -2): keeps the session alive; no body."""


class CheckVersionRequest(Message, tag="zk.CheckVersionRequest"):
    """check (op 13), a multi op: the node is at ``version``."""

    path: str
    version: Int


class MultiRequest(Message, tag="zk.MultiRequest"):
    """multi (op 14): write ops applied atomically, all or none
    (``MultiOperationRecord``: each op behind a MultiHeader)."""

    ops: tuple[MultiOp, ...]


class MultiReadRequest(Message, tag="zk.MultiReadRequest"):
    """multiRead (op 22): getChildren / getData ops read together."""

    ops: tuple[MultiReadOp, ...]


class CheckWatchesRequest(Message, tag="zk.CheckWatchesRequest"):
    """checkWatches (op 17): ``type_`` a :class:`~synod.zk.constants.WatcherType`."""

    path: str
    type_: Int


class RemoveWatchesRequest(Message, tag="zk.RemoveWatchesRequest"):
    """removeWatches (op 18): ``type_`` a :class:`~synod.zk.constants.WatcherType`."""

    path: str
    type_: Int


class AuthPacket(Message, tag="zk.AuthPacket"):
    """auth (op 100, xid -4), addauth: ``scheme`` (digest) and ``auth``
    (``user:password``); ``type_`` is unused (0)."""

    type_: Int
    scheme: str
    auth: bytes | None


class SetWatches(Message, tag="zk.SetWatches"):
    """setWatches (op 101, xid -8): a reconnecting client's watches, to fire
    at once for changes after ``relativeZxid``."""

    relativeZxid: Long
    dataWatches: tuple[str, ...]
    existWatches: tuple[str, ...]
    childWatches: tuple[str, ...]


class SetWatches2(Message, tag="zk.SetWatches2"):
    """setWatches2 (op 105, xid -8): SetWatches with persistent watches (3.6+)."""

    relativeZxid: Long
    dataWatches: tuple[str, ...]
    existWatches: tuple[str, ...]
    childWatches: tuple[str, ...]
    persistentWatches: tuple[str, ...]
    persistentRecursiveWatches: tuple[str, ...]


class GetEphemeralsRequest(Message, tag="zk.GetEphemeralsRequest"):
    """getEphemerals (op 103): the session's ephemerals under ``prefixPath``."""

    prefixPath: str


class GetAllChildrenNumberRequest(Message, tag="zk.GetAllChildrenNumberRequest"):
    """getAllChildrenNumber (op 104): descendants of ``path``."""

    path: str


class AddWatchRequest(Message, tag="zk.AddWatchRequest"):
    """addWatch (op 106): ``mode`` an :class:`~synod.zk.constants.AddWatchMode`."""

    path: str
    mode: Int


class WhoAmIRequest(Message, tag="zk.WhoAmIRequest"):
    """whoAmI (op 107): the session's identities; no body."""


class CloseSessionRequest(Message, tag="zk.CloseSessionRequest"):
    """closeSession (op -11): ends the session; the connection closes after
    its reply; no body."""


class UnimplementedRequest(Message, tag="zk.UnimplementedRequest"):
    """A request of an op code this codec does not take (``type_``); answer
    it with ``Reply(err=Code.UNIMPLEMENTED)``: the connection then closes."""

    type_: Int


# -- replies -----------------------------------------------------------------------------------------


class ConnectResponse(Message, tag="zk.ConnectResponse"):
    """The answer to a ConnectRequest: the negotiated ``timeOut`` (ms), the
    session id and its 16-byte ``passwd``. ``timeOut`` 0 refuses the session
    (expired or unknown): the connection then closes, as ZooKeeper does."""

    protocolVersion: Int
    timeOut: Int
    sessionId: Long
    passwd: bytes | None
    readOnly: bool = False


class FourLetterWordResponse(Message, tag="zk.FourLetterWordResponse"):
    """A four-letter word's answer, written as UTF-8 text; the connection
    then closes."""

    text: str


class CreateResponse(Message, tag="zk.CreateResponse"):
    """create: the path created (with its sequence suffix)."""

    path: str


class Create2Response(Message, tag="zk.Create2Response"):
    """create2, createContainer, createTTL: the path created and its Stat."""

    path: str
    stat: Stat


class ExistsResponse(Message, tag="zk.ExistsResponse"):
    """exists of a node that exists (one that does not: err NONODE)."""

    stat: Stat


class GetDataResponse(Message, tag="zk.GetDataResponse"):
    """getData: the node's data (None: null data) and Stat."""

    data: bytes | None
    stat: Stat


class SetDataResponse(Message, tag="zk.SetDataResponse"):
    """setData: the node's Stat after the write."""

    stat: Stat


class GetACLResponse(Message, tag="zk.GetACLResponse"):
    """getACL: the node's ACL and Stat."""

    acl: tuple[ACL, ...]
    stat: Stat


class SetACLResponse(Message, tag="zk.SetACLResponse"):
    """setACL: the node's Stat after the write."""

    stat: Stat


class GetChildrenResponse(Message, tag="zk.GetChildrenResponse"):
    """getChildren: the children's names (not paths), in no set order."""

    children: tuple[str, ...]


class GetChildren2Response(Message, tag="zk.GetChildren2Response"):
    """getChildren2: the children's names and the parent's Stat."""

    children: tuple[str, ...]
    stat: Stat


class SyncResponse(Message, tag="zk.SyncResponse"):
    """sync: the path synced."""

    path: str


class GetEphemeralsResponse(Message, tag="zk.GetEphemeralsResponse"):
    """getEphemerals: the session's ephemeral paths under the prefix."""

    ephemerals: tuple[str, ...]


class GetAllChildrenNumberResponse(Message, tag="zk.GetAllChildrenNumberResponse"):
    """getAllChildrenNumber: the number of descendants."""

    totalNumber: Int


class WhoAmIResponse(Message, tag="zk.WhoAmIResponse"):
    """whoAmI: the session's identities."""

    clientInfo: tuple[ClientInfo, ...]


class DeleteResult(Message, tag="zk.DeleteResult"):
    """A multi's delete succeeded (no body on the wire)."""


class CheckResult(Message, tag="zk.CheckResult"):
    """A multi's check succeeded (no body on the wire)."""


class ErrorResponse(Message, tag="zk.ErrorResponse"):
    """A multi op's failure: ``err`` a :class:`~synod.zk.constants.Code`
    (the op that failed has its own code; the others RUNTIMEINCONSISTENCY,
    or OK for those before it that ZooKeeper rolled back)."""

    err: Int


class MultiResponse(Message, tag="zk.MultiResponse"):
    """A multi's or multiRead's results, one per op, in op order."""

    results: tuple[OpResult, ...]


class WatcherEvent(Message, tag="zk.WatcherEvent"):
    """A watch notification (xid -1): ``type_`` an
    :class:`~synod.zk.constants.EventType`, ``state`` a
    :class:`~synod.zk.constants.KeeperState`, ``path`` the znode."""

    type_: Int
    state: Int
    path: str


# Union aliases after the classes (msgspec resolves them lazily).
MultiOp = Union[CreateRequest, Create2Request, CreateContainerRequest, CreateTTLRequest,  # noqa: UP007
                DeleteRequest, SetDataRequest, CheckVersionRequest]
MultiReadOp = Union[GetChildrenRequest, GetDataRequest]  # noqa: UP007
OpResult = Union[CreateResponse, Create2Response, DeleteResult, CheckResult, SetDataResponse,  # noqa: UP007
                 GetChildrenResponse, GetDataResponse, ErrorResponse]
Response = Union[CreateResponse, Create2Response, ExistsResponse, GetDataResponse, SetDataResponse,  # noqa: UP007
                 GetACLResponse, SetACLResponse, GetChildrenResponse, GetChildren2Response, SyncResponse,
                 GetEphemeralsResponse, GetAllChildrenNumberResponse, WhoAmIResponse, MultiResponse]


class CloseConnection(Message, tag="zk.CloseConnection"):
    """Not a ZooKeeper record: the server's answer to any request when it
    closes the connection without a word instead (a server that is not
    serving, as ZooKeeper's "ZooKeeperServer not running": the client
    sees ConnectionLoss and tries its next server, its session intact)."""

    reason: str


class Reply(Message, tag="zk.Reply"):
    """The answer to any request after the ConnectRequest: the ReplyHeader's
    ``zxid`` (the server's last processed zxid) and ``err`` (a
    :class:`~synod.zk.constants.Code`), and the op's response record, or
    None (an op with no response body, or an error)."""

    zxid: Long
    err: Int = 0
    response: Response | None = None


# RequestHeader type -> the request class its body parses to, and back.
OP_REQUESTS: dict[int, type] = {
    OpCode.create: CreateRequest, OpCode.create2: Create2Request, OpCode.createContainer: CreateContainerRequest,
    OpCode.createTTL: CreateTTLRequest, OpCode.delete: DeleteRequest, OpCode.exists: ExistsRequest,
    OpCode.getData: GetDataRequest, OpCode.setData: SetDataRequest, OpCode.getACL: GetACLRequest,
    OpCode.setACL: SetACLRequest, OpCode.getChildren: GetChildrenRequest, OpCode.getChildren2: GetChildren2Request,
    OpCode.sync: SyncRequest, OpCode.ping: PingRequest, OpCode.check: CheckVersionRequest,
    OpCode.multi: MultiRequest, OpCode.multiRead: MultiReadRequest, OpCode.checkWatches: CheckWatchesRequest,
    OpCode.removeWatches: RemoveWatchesRequest, OpCode.auth: AuthPacket, OpCode.setWatches: SetWatches,
    OpCode.setWatches2: SetWatches2, OpCode.getEphemerals: GetEphemeralsRequest,
    OpCode.getAllChildrenNumber: GetAllChildrenNumberRequest, OpCode.addWatch: AddWatchRequest,
    OpCode.whoAmI: WhoAmIRequest, OpCode.closeSession: CloseSessionRequest,
}
REQUEST_OPS: dict[type, int] = {cls: int(op) for op, cls in OP_REQUESTS.items()}

# Request class -> the response record its successful Reply carries (None: no body).
RESPONSE_TYPES: dict[type, type | None] = {
    CreateRequest: CreateResponse, Create2Request: Create2Response, CreateContainerRequest: Create2Response,
    CreateTTLRequest: Create2Response, DeleteRequest: None, ExistsRequest: ExistsResponse,
    GetDataRequest: GetDataResponse, SetDataRequest: SetDataResponse, GetACLRequest: GetACLResponse,
    SetACLRequest: SetACLResponse, GetChildrenRequest: GetChildrenResponse,
    GetChildren2Request: GetChildren2Response, SyncRequest: SyncResponse, PingRequest: None,
    CheckVersionRequest: None, MultiRequest: MultiResponse, MultiReadRequest: MultiResponse,
    CheckWatchesRequest: None, RemoveWatchesRequest: None, AuthPacket: None, SetWatches: None, SetWatches2: None,
    GetEphemeralsRequest: GetEphemeralsResponse, GetAllChildrenNumberRequest: GetAllChildrenNumberResponse,
    AddWatchRequest: None, WhoAmIRequest: WhoAmIResponse, CloseSessionRequest: None, UnimplementedRequest: None,
}

# MultiHeader type -> op class, inside a multi and a multiRead.
MULTI_OPS: dict[int, type] = {
    OpCode.create: CreateRequest, OpCode.create2: Create2Request, OpCode.createContainer: CreateContainerRequest,
    OpCode.createTTL: CreateTTLRequest, OpCode.delete: DeleteRequest, OpCode.setData: SetDataRequest,
    OpCode.check: CheckVersionRequest,
}
MULTI_READ_OPS: dict[int, type] = {OpCode.getChildren: GetChildrenRequest, OpCode.getData: GetDataRequest}

# A multi result class -> the MultiHeader type it is written under.
MULTI_RESULT_OPS: dict[type, int] = {
    CreateResponse: OpCode.create, Create2Response: OpCode.create2, DeleteResult: OpCode.delete,
    CheckResult: OpCode.check, SetDataResponse: OpCode.setData, GetChildrenResponse: OpCode.getChildren,
    GetDataResponse: OpCode.getData, ErrorResponse: OpCode.error,
}

# After the reply to one of these, the connection closes; nothing after it is read.
CLOSING_REQUESTS = (FourLetterWordRequest, CloseSessionRequest, UnimplementedRequest)

Request = Union[  # noqa: UP007
    ConnectRequest, FourLetterWordRequest, CreateRequest, Create2Request, CreateContainerRequest, CreateTTLRequest,
    DeleteRequest, ExistsRequest, GetDataRequest, SetDataRequest, GetACLRequest, SetACLRequest, GetChildrenRequest,
    GetChildren2Request, SyncRequest, PingRequest, CheckVersionRequest, MultiRequest, MultiReadRequest,
    CheckWatchesRequest, RemoveWatchesRequest, AuthPacket, SetWatches, SetWatches2, GetEphemeralsRequest,
    GetAllChildrenNumberRequest, AddWatchRequest, WhoAmIRequest, CloseSessionRequest, UnimplementedRequest,
]
