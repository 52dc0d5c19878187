"""Bitcoin's peer-to-peer messages as typed messages.

One frozen, keyword-only message per P2P command of Bitcoin Core's
``protocol.h`` (``NetMsgType``), with the fields of its payload in wire
order, named in Bitcoin's terms. The same values travel two ways: over a
Bitcoin socket, framed and serialized byte for byte as Core does by
:mod:`synod.bitcoin.p2p`, and between synod nodes over synod's own
transport (msgpack, tag ``btc.<Class>``). Either way the node's state
machine sees these types only.

Handshake
    :class:`Version` (BIP14 user agent, BIP37 relay flag), :class:`Verack`;
    feature negotiation between them: :class:`WtxidRelay` (BIP339),
    :class:`SendAddrV2` (BIP155); after: :class:`SendHeaders` (BIP130),
    :class:`SendCmpct` (BIP152), :class:`FeeFilter` (BIP133).
Liveness
    :class:`Ping`, :class:`Pong` (BIP31).
Inventory
    :class:`Inv`, :class:`GetData`, :class:`NotFound` (lists of
    :class:`InvItem`), :class:`Mempool` (BIP35).
Chain sync
    :class:`GetHeaders`, :class:`GetBlocks` (a block locator and a
    ``hash_stop``), :class:`Headers` (raw 80-byte headers).
Objects
    :class:`BlockMsg`, :class:`TxMsg`: a block or transaction as its raw
    Bitcoin bytes, never re-encoded; ``.block`` / ``.tx`` parse them once
    (validating: :class:`~synod.bitcoin.errors.RuleViolation` on bad bytes).
Addresses
    :class:`Addr` (:class:`AddrEntry`: a time and a :class:`NetAddress`),
    :class:`GetAddr`.
Other
    :class:`Reject` (BIP61, removed from Core in 0.20; still parsed),
    :class:`Unknown` (a command this module does not know: Core ignores
    those, so does the node).
Replies
    P2P is not request/reply, but synod's client gateway answers every
    request once: the node answers each received message with a
    :class:`P2pReply` holding zero or more messages to send back (a getdata
    is answered by blocks and a notfound; a verack by nothing), and may ask
    to disconnect the peer.

Every field is checked when a message is built (``__post_init__``, so on
decode from synod's transport too): integers in their wire range, hashes
32 bytes, headers 80 bytes, and the per-message limits of Core's
``net_processing.cpp`` / ``net.h`` below. A bad value raises ``ValueError``
(which synod's codec turns into ``RemoteProtocolError`` on decode).
"""

from __future__ import annotations

import ipaddress
from functools import cached_property

from synod.bitcoin.primitives import Block, BlockHeader, Transaction, parse_block, parse_header, parse_transaction
from synod.core.codec import Message

__all__ = [
    "MSG_TX", "MSG_BLOCK", "MSG_FILTERED_BLOCK", "MSG_CMPCT_BLOCK", "MSG_WTX", "MSG_WITNESS_FLAG", "MSG_WITNESS_TX",
    "MSG_WITNESS_BLOCK", "MSG_FILTERED_WITNESS_BLOCK",
    "NODE_NONE", "NODE_NETWORK", "NODE_BLOOM", "NODE_WITNESS", "NODE_COMPACT_FILTERS", "NODE_NETWORK_LIMITED",
    "NODE_P2P_V2", "PROTOCOL_VERSION",
    "REJECT_MALFORMED", "REJECT_INVALID", "REJECT_OBSOLETE", "REJECT_DUPLICATE", "REJECT_NONSTANDARD", "REJECT_DUST",
    "REJECT_INSUFFICIENTFEE", "REJECT_CHECKPOINT",
    "COMMAND_SIZE", "MAX_INV_SZ", "MAX_HEADERS_RESULTS", "MAX_ADDR_TO_SEND", "MAX_SUBVERSION_LENGTH", "MAX_LOCATOR_SZ",
    "MAX_REJECT_MESSAGE_LENGTH", "HASH_BYTES", "HEADER_BYTES", "IP_BYTES",
    "NetAddress", "AddrEntry", "InvItem", "Version", "Verack", "Ping", "Pong", "Inv", "GetData", "NotFound",
    "GetHeaders", "GetBlocks", "Headers", "BlockMsg", "TxMsg", "Addr", "GetAddr", "SendHeaders", "SendCmpct",
    "FeeFilter", "Reject", "Mempool", "WtxidRelay", "SendAddrV2", "Unknown", "P2pMessage", "P2pReply",
    "is_valid_command",
]

# -- inventory types (Core protocol.h GetDataMsg) -------------------------------------------------------------------

MSG_TX = 1
MSG_BLOCK = 2
MSG_FILTERED_BLOCK = 3          # BIP37: answered by merkleblock
MSG_CMPCT_BLOCK = 4             # BIP152
MSG_WTX = 5                     # BIP339: the hash is a wtxid
MSG_WITNESS_FLAG = 1 << 30      # BIP144: "with witness" on getdata
MSG_WITNESS_TX = MSG_TX | MSG_WITNESS_FLAG
MSG_WITNESS_BLOCK = MSG_BLOCK | MSG_WITNESS_FLAG
MSG_FILTERED_WITNESS_BLOCK = MSG_FILTERED_BLOCK | MSG_WITNESS_FLAG

# -- service bits (Core protocol.h ServiceFlags) ---------------------------------------------------------------------

NODE_NONE = 0
NODE_NETWORK = 1 << 0           # serves the whole chain
NODE_BLOOM = 1 << 2             # BIP111
NODE_WITNESS = 1 << 3           # BIP144
NODE_COMPACT_FILTERS = 1 << 6   # BIP157
NODE_NETWORK_LIMITED = 1 << 10  # BIP159: the last 288 blocks
NODE_P2P_V2 = 1 << 11           # BIP324

PROTOCOL_VERSION = 70016        # Core's since 0.21 (WTXID_RELAY_VERSION, BIP339)

# -- reject codes (BIP61) --------------------------------------------------------------------------------------------

REJECT_MALFORMED = 0x01
REJECT_INVALID = 0x10
REJECT_OBSOLETE = 0x11
REJECT_DUPLICATE = 0x12
REJECT_NONSTANDARD = 0x40
REJECT_DUST = 0x41
REJECT_INSUFFICIENTFEE = 0x42
REJECT_CHECKPOINT = 0x43

# -- sizes and per-message limits (Core net.h, net_processing.cpp, protocol.h) ---------------------------------------

COMMAND_SIZE = 12               # bytes of a command, NUL-padded (protocol.h)
MAX_INV_SZ = 50_000             # items in an inv / getdata (net_processing.cpp); also applied to notfound
MAX_HEADERS_RESULTS = 2_000     # headers in one headers message (net_processing.cpp)
MAX_ADDR_TO_SEND = 1_000        # entries in one addr message (net.h)
MAX_SUBVERSION_LENGTH = 256     # bytes of a version message's user agent (net.h)
MAX_LOCATOR_SZ = 101            # hashes in a getheaders / getblocks locator (net_processing.cpp)
MAX_REJECT_MESSAGE_LENGTH = 111  # bytes of a reject reason (Core <= 0.19, validation.h)
HASH_BYTES = 32
HEADER_BYTES = 80
IP_BYTES = 16                   # IPv6, IPv4 as ::ffff:a.b.c.d
IPV4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"

_U8 = 1 << 8
_U16 = 1 << 16
_U32 = 1 << 32
_U64 = 1 << 64
_I32 = 1 << 31
_I64 = 1 << 63


def _uint(name: str, value: int, bound: int) -> None:
    if not 0 <= value < bound:
        raise ValueError(f"{name} must be in 0..{bound - 1}, got {value}")


def _sint(name: str, value: int, half: int) -> None:
    if not -half <= value < half:
        raise ValueError(f"{name} must be in {-half}..{half - 1}, got {value}")


def _hash(name: str, value: bytes) -> None:
    if len(value) != HASH_BYTES:
        raise ValueError(f"{name} must be {HASH_BYTES} bytes, got {len(value)}")


def _at_most(name: str, count: int, limit: int) -> None:
    if count > limit:
        raise ValueError(f"{count} {name}, at most {limit}")


def is_valid_command(command: str) -> bool:
    """A command Core accepts in a header: at most 12 printable ASCII
    characters (``' '`` .. ``'~'``); the empty command too (protocol.cpp
    ``IsMessageTypeValid``)."""
    return len(command) <= COMMAND_SIZE and all(" " <= c <= "~" for c in command)


# -- structures inside messages --------------------------------------------------------------------------------------


class NetAddress(Message, tag="btc.NetAddress"):
    """A peer's address as the version and addr messages carry it (26 bytes
    on the wire): ``services`` (u64 service bits), ``ip`` (16 bytes: IPv6,
    or IPv4 mapped as ``::ffff:a.b.c.d``), ``port`` (u16, big-endian on the
    wire). The default is Core's empty ``CService``: ``::``, port 0."""

    services: int = NODE_NONE
    ip: bytes = bytes(IP_BYTES)
    port: int = 0

    def __post_init__(self) -> None:
        _uint("services", self.services, _U64)
        if len(self.ip) != IP_BYTES:
            raise ValueError(f"ip must be {IP_BYTES} bytes, got {len(self.ip)}")
        _uint("port", self.port, _U16)

    @classmethod
    def from_host(cls, host: str, port: int, services: int = NODE_NONE) -> NetAddress:
        """The address of ``host`` (dotted IPv4 or IPv6 text).

        Raises:
            ValueError: ``host`` is not an IP address, or a field is out of range.
        """
        ip = ipaddress.ip_address(host)
        packed = IPV4_MAPPED_PREFIX + ip.packed if ip.version == 4 else ip.packed
        return cls(services=services, ip=packed, port=port)

    @property
    def host(self) -> str:
        """The IP as text (``"127.0.0.1"`` for a mapped IPv4, else IPv6)."""
        if self.ip[:12] == IPV4_MAPPED_PREFIX:
            return str(ipaddress.IPv4Address(self.ip[12:]))
        return str(ipaddress.IPv6Address(self.ip))


class AddrEntry(Message, tag="btc.AddrEntry"):
    """One entry of an addr message: when the peer was last seen
    (``time_s``, u32 unix seconds) and its :class:`NetAddress` (30 bytes)."""

    time_s: int
    address: NetAddress

    def __post_init__(self) -> None:
        _uint("time_s", self.time_s, _U32)


class InvItem(Message, tag="btc.InvItem"):
    """An inventory vector (Core's ``CInv``): ``inv_type`` (u32, ``MSG_*``;
    Core's ``type``, a name msgspec reserves) and ``hash`` (32 bytes,
    internal order: a txid, wtxid or block hash)."""

    inv_type: int
    hash: bytes

    def __post_init__(self) -> None:
        _uint("inv_type", self.inv_type, _U32)
        _hash("hash", self.hash)


# -- handshake -------------------------------------------------------------------------------------------------------


class Version(Message, tag="btc.Version"):
    """The first message each side sends (Core ``PushNodeVersion``).

    ``version``: the sender's protocol version (int32, e.g. 70016);
    ``services``: its service bits (u64); ``timestamp_s``: its clock (int64
    unix seconds); ``addr_recv``: the receiver's address as the sender sees
    it; ``addr_from``: the sender's (Core sends an empty one); ``nonce``
    (u64): random, to detect a connection to oneself; ``user_agent``: BIP14
    bytes such as ``b"/Satoshi:27.0.0/"``, at most 256; ``start_height``:
    the sender's best height (int32); ``relay``: BIP37, False asks not to be
    sent transactions until a filter is loaded.
    """

    version: int
    services: int
    timestamp_s: int
    addr_recv: NetAddress
    addr_from: NetAddress
    nonce: int
    user_agent: bytes
    start_height: int
    relay: bool = True

    def __post_init__(self) -> None:
        _sint("version", self.version, _I32)
        _uint("services", self.services, _U64)
        _sint("timestamp_s", self.timestamp_s, _I64)
        _uint("nonce", self.nonce, _U64)
        _at_most("user agent bytes", len(self.user_agent), MAX_SUBVERSION_LENGTH)
        _sint("start_height", self.start_height, _I32)


class Verack(Message, tag="btc.Verack"):
    """Acknowledges the peer's version (empty payload)."""


class WtxidRelay(Message, tag="btc.WtxidRelay"):
    """BIP339: announce transactions by wtxid (``MSG_WTX``); sent between
    version and verack (empty payload)."""


class SendAddrV2(Message, tag="btc.SendAddrV2"):
    """BIP155: the sender accepts addrv2 messages; sent between version and
    verack (empty payload). synod sends addr (v1) only."""


class SendHeaders(Message, tag="btc.SendHeaders"):
    """BIP130: announce new blocks with headers, not inv (empty payload)."""


class SendCmpct(Message, tag="btc.SendCmpct"):
    """BIP152: ``announce`` (bool byte): send new blocks as compact blocks
    unasked; ``version`` (u64): the compact block version (2: with witness)."""

    announce: bool
    version: int

    def __post_init__(self) -> None:
        _uint("version", self.version, _U64)


class FeeFilter(Message, tag="btc.FeeFilter"):
    """BIP133: do not announce transactions paying less than
    ``fee_rate_sat_per_kvb`` (int64, satoshis per 1000 virtual bytes)."""

    fee_rate_sat_per_kvb: int

    def __post_init__(self) -> None:
        _sint("fee_rate_sat_per_kvb", self.fee_rate_sat_per_kvb, _I64)


# -- liveness --------------------------------------------------------------------------------------------------------


class Ping(Message, tag="btc.Ping"):
    """BIP31: a keepalive; the peer answers with a :class:`Pong` of the same
    ``nonce`` (u64)."""

    nonce: int

    def __post_init__(self) -> None:
        _uint("nonce", self.nonce, _U64)


class Pong(Message, tag="btc.Pong"):
    """BIP31: the answer to the :class:`Ping` with this ``nonce`` (u64)."""

    nonce: int

    def __post_init__(self) -> None:
        _uint("nonce", self.nonce, _U64)


# -- inventory -------------------------------------------------------------------------------------------------------


def _items(name: str, items: tuple[InvItem, ...]) -> None:
    _at_most(f"{name} items", len(items), MAX_INV_SZ)


class Inv(Message, tag="btc.Inv"):
    """Announces objects the sender has: at most ``MAX_INV_SZ`` items."""

    items: tuple[InvItem, ...]

    def __post_init__(self) -> None:
        _items("inv", self.items)


class GetData(Message, tag="btc.GetData"):
    """Asks for objects (blocks, transactions): at most ``MAX_INV_SZ`` items."""

    items: tuple[InvItem, ...]

    def __post_init__(self) -> None:
        _items("getdata", self.items)


class NotFound(Message, tag="btc.NotFound"):
    """The objects of a getdata the sender does not have (at most ``MAX_INV_SZ``)."""

    items: tuple[InvItem, ...]

    def __post_init__(self) -> None:
        _items("notfound", self.items)


class Mempool(Message, tag="btc.Mempool"):
    """BIP35: asks for an inv of the peer's mempool (empty payload)."""


# -- chain sync ------------------------------------------------------------------------------------------------------


def _locator(version: int, locator: tuple[bytes, ...], hash_stop: bytes) -> None:
    _sint("version", version, _I32)
    _at_most("locator hashes", len(locator), MAX_LOCATOR_SZ)
    for h in locator:
        _hash("a locator hash", h)
    _hash("hash_stop", hash_stop)


class GetHeaders(Message, tag="btc.GetHeaders"):
    """Asks for up to 2000 headers after the first ``locator`` hash the peer
    knows, up to ``hash_stop`` (zero: as many as allowed). ``locator``:
    block hashes, newest first, at most ``MAX_LOCATOR_SZ``; ``version``
    (int32): the locator's version field, which Core ignores."""

    locator: tuple[bytes, ...]
    hash_stop: bytes = bytes(HASH_BYTES)
    version: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        _locator(self.version, self.locator, self.hash_stop)


class GetBlocks(Message, tag="btc.GetBlocks"):
    """As :class:`GetHeaders`, answered by an inv of up to 500 block hashes."""

    locator: tuple[bytes, ...]
    hash_stop: bytes = bytes(HASH_BYTES)
    version: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        _locator(self.version, self.locator, self.hash_stop)


class Headers(Message, tag="btc.Headers"):
    """Block headers, each its raw 80 bytes, at most ``MAX_HEADERS_RESULTS``
    (on the wire each is followed by a transaction count, always 0)."""

    headers: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _at_most("headers", len(self.headers), MAX_HEADERS_RESULTS)
        for h in self.headers:
            if len(h) != HEADER_BYTES:
                raise ValueError(f"a header is {HEADER_BYTES} bytes, got {len(h)}")

    def block_headers(self) -> tuple[BlockHeader, ...]:
        """The headers parsed (any 80 bytes parse)."""
        return tuple(parse_header(h) for h in self.headers)


# -- objects ---------------------------------------------------------------------------------------------------------


class BlockMsg(Message, tag="btc.BlockMsg", dict=True):
    """A block as its raw bytes (``block`` command). ``.block`` parses them
    once, raising :class:`~synod.bitcoin.errors.RuleViolation`
    (``bad-serialization``) if they are not exactly one block; a message
    read off a Bitcoin socket was parsed already."""

    raw: bytes

    @classmethod
    def from_block(cls, block: Block) -> BlockMsg:
        msg = cls(raw=block.serialize())
        msg.__dict__["block"] = block
        return msg

    @cached_property
    def block(self) -> Block:
        return parse_block(self.raw)


class TxMsg(Message, tag="btc.TxMsg", dict=True):
    """A transaction as its raw bytes (``tx`` command; legacy or BIP144
    witness form). ``.tx`` parses them once, raising
    :class:`~synod.bitcoin.errors.RuleViolation` on bad bytes."""

    raw: bytes

    @classmethod
    def from_tx(cls, tx: Transaction, *, witness: bool = True) -> TxMsg:
        return cls(raw=tx.serialize(witness=witness))

    @cached_property
    def tx(self) -> Transaction:
        return parse_transaction(self.raw)


# -- addresses -------------------------------------------------------------------------------------------------------


class Addr(Message, tag="btc.Addr"):
    """Known peers' addresses, at most ``MAX_ADDR_TO_SEND``."""

    addresses: tuple[AddrEntry, ...]

    def __post_init__(self) -> None:
        _at_most("addr entries", len(self.addresses), MAX_ADDR_TO_SEND)


class GetAddr(Message, tag="btc.GetAddr"):
    """Asks for an addr message (empty payload)."""


# -- other -----------------------------------------------------------------------------------------------------------


class Reject(Message, tag="btc.Reject"):
    """BIP61: a message of the peer's was rejected. ``message``: its command
    (at most 12 characters); ``code``: a ``REJECT_*`` byte; ``reason``: text,
    at most ``MAX_REJECT_MESSAGE_LENGTH`` bytes of UTF-8; ``data``: empty, or
    the 32-byte hash of the rejected block or transaction."""

    message: str
    code: int
    reason: str
    data: bytes = b""

    def __post_init__(self) -> None:
        if not is_valid_command(self.message):
            raise ValueError(f"reject of {self.message!r}: not a command")
        _uint("code", self.code, _U8)
        _at_most("reason bytes", len(self.reason.encode()), MAX_REJECT_MESSAGE_LENGTH)
        if len(self.data) not in (0, HASH_BYTES):
            raise ValueError(f"reject data must be empty or {HASH_BYTES} bytes, got {len(self.data)}")


class Unknown(Message, tag="btc.Unknown"):
    """A message whose command this module does not know (``sendtxrcncl``,
    ``addrv2``, ``cmpctblock`` ...), its payload unparsed. Core ignores
    unknown commands; the node does too. ``command``: at most 12 printable
    ASCII characters; one this module knows is still sent as is (the peer
    reads it as that command)."""

    command: str
    payload: bytes

    def __post_init__(self) -> None:
        if not is_valid_command(self.command):
            raise ValueError(f"{self.command!r} is not a command")


P2pMessage = (Version | Verack | WtxidRelay | SendAddrV2 | SendHeaders | SendCmpct | FeeFilter | Ping | Pong | Inv
              | GetData | NotFound | Mempool | GetHeaders | GetBlocks | Headers | BlockMsg | TxMsg | Addr | GetAddr
              | Reject | Unknown)


class P2pReply(Message, tag="btc.P2pReply"):
    """The node's answer to one received message: the messages to send back,
    in order (none: nothing is written), then, if ``disconnect``, the
    connection closes (as Core disconnects a misbehaving peer)."""

    messages: tuple[P2pMessage, ...] = ()
    disconnect: bool = False
