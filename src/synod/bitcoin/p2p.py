"""Bitcoin's P2P wire format: framing and payloads, byte for byte as Core.

Theory of operation
    A connection carries messages back to back, each a 24-byte header and a
    payload (Core ``protocol.h`` ``CMessageHeader``, ``net.cpp``
    ``V1Transport``): the network magic (4 bytes: :data:`MAINNET_MAGIC`,
    :data:`TESTNET3_MAGIC`, :data:`TESTNET4_MAGIC`, :data:`SIGNET_MAGIC`,
    :data:`REGTEST_MAGIC`), the command (12 bytes of ASCII, NUL-padded),
    the payload length (u32 LE) and the checksum (the first 4 bytes of the
    payload's double SHA-256). :func:`encode_message` writes one message of
    :mod:`synod.bitcoin.messages`; :class:`MessageReader` takes bytes as
    they arrive, in any pieces, and returns each message as soon as its
    last byte is in.

Payloads
    Core's serialization (``serialize.h``): little-endian integers,
    CompactSize counts and lengths (canonical, read by
    :class:`~synod.bitcoin.primitives.ByteReader`), 32-byte hashes in
    internal order. A network address is 26 bytes (services u64, 16-byte
    IPv6 or IPv4-mapped IP, big-endian port); an addr entry puts a u32 time
    before it; a locator is a version (int32) and a list of hashes; each
    header in a headers message is followed by a transaction count, always
    0 and ignored when read (net_processing.cpp: "assume it is 0"). Blocks
    and transactions are carried as their raw bytes and parsed (validated)
    by :func:`~synod.bitcoin.primitives.parse_block` /
    :func:`~synod.bitcoin.primitives.parse_transaction`.

Version message
    As Core's ``ProcessMessage``: after ``addr_recv`` each later group
    (``addr_from`` and ``nonce``; ``user_agent``; ``start_height``;
    ``relay``) may be absent, taking Core's default (an empty address,
    nonce 1, empty user agent, height -1, relay True), and bytes after the
    relay byte are ignored (room for extensions; Core reads no further).
    Every other payload must parse exactly: a trailing byte is an error.

Errors
    Anything malformed raises :class:`P2pError` (a ``RemoteProtocolError``)
    naming the reason: ``wrong-magic``, ``bad-command`` (a non-printable
    byte, or a non-NUL after a NUL), ``oversize`` (a payload over
    :data:`MAX_PROTOCOL_MESSAGE_LENGTH`, refused as soon as its header is
    in), ``bad-checksum``, ``over-limit`` (more items than Core accepts:
    ``MAX_INV_SZ``, ``MAX_HEADERS_RESULTS``, ``MAX_ADDR_TO_SEND``,
    ``MAX_LOCATOR_SZ``, ``MAX_SUBVERSION_LENGTH``), ``bad-payload`` (the
    payload does not parse: short, a count larger than the bytes left,
    trailing bytes, a block or transaction that does not parse). A count is
    checked against the limit and against the bytes left before anything
    is allocated for it. A command not known here is no error: it decodes
    as :class:`~synod.bitcoin.messages.Unknown` (Core ignores those).

Invariant
    :class:`MessageReader` buffers at most one message: between calls
    ``buffered_bytes <= HEADER_BYTES + payload_bytes_max``.

Simplifications: Core drops a message with a bad checksum or an invalid
command and keeps the connection (``reject_message``); here both are
errors that close it. Core throws away a version message with an
over-long user agent and other malformed payloads after logging them;
here they close the connection too. BIP324 (v2 encrypted transport) is not
spoken.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from synod.bitcoin._hashes import hash256
from synod.bitcoin.errors import RuleViolation
from synod.bitcoin.messages import (
    COMMAND_SIZE,
    HASH_BYTES,
    HEADER_BYTES,
    MAX_ADDR_TO_SEND,
    MAX_HEADERS_RESULTS,
    MAX_INV_SZ,
    MAX_LOCATOR_SZ,
    MAX_REJECT_MESSAGE_LENGTH,
    MAX_SUBVERSION_LENGTH,
    Addr,
    AddrEntry,
    BlockMsg,
    FeeFilter,
    GetAddr,
    GetBlocks,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    InvItem,
    Mempool,
    NetAddress,
    NotFound,
    P2pMessage,
    Ping,
    Pong,
    Reject,
    SendAddrV2,
    SendCmpct,
    SendHeaders,
    TxMsg,
    Unknown,
    Verack,
    Version,
    WtxidRelay,
)
from synod.bitcoin.primitives import ByteReader, compact_size
from synod.core.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "MAINNET_MAGIC", "TESTNET3_MAGIC", "TESTNET4_MAGIC", "SIGNET_MAGIC", "REGTEST_MAGIC", "MAGIC_BYTES",
    "MESSAGE_HEADER_BYTES", "CHECKSUM_BYTES", "MAX_PROTOCOL_MESSAGE_LENGTH",
    "MAX_INV_SZ", "MAX_HEADERS_RESULTS", "MAX_ADDR_TO_SEND", "MAX_SUBVERSION_LENGTH", "MAX_LOCATOR_SZ",
    "P2pError", "checksum", "command_of", "encode_payload", "decode_payload", "encode_message", "MessageReader",
]

MAINNET_MAGIC = bytes.fromhex("f9beb4d9")
TESTNET3_MAGIC = bytes.fromhex("0b110907")
TESTNET4_MAGIC = bytes.fromhex("1c163f28")
SIGNET_MAGIC = bytes.fromhex("0a03cf40")    # the default signet's (BIP325: derived from its challenge)
REGTEST_MAGIC = bytes.fromhex("fabfb5da")
MAGIC_BYTES = 4
CHECKSUM_BYTES = 4
MESSAGE_HEADER_BYTES = MAGIC_BYTES + COMMAND_SIZE + 4 + CHECKSUM_BYTES   # 24
MAX_PROTOCOL_MESSAGE_LENGTH = 4_000_000    # bytes of one payload (Core net.h)

_NET_ADDRESS_BYTES = 26
_ADDR_ENTRY_BYTES = 30
_INV_ITEM_BYTES = 36
_HEADER_ENTRY_BYTES_MIN = HEADER_BYTES + 1
_LENGTH = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_U8 = struct.Struct("<B")
_PORT = struct.Struct(">H")


class P2pError(RemoteProtocolError):
    """A peer sent bytes that are not a valid Bitcoin P2P message.

    Attributes:
        reason: ``wrong-magic``, ``bad-command``, ``oversize``,
            ``bad-checksum``, ``over-limit`` or ``bad-payload``.
        detail: what and where.
        command: the message's command, when the header was read ("" before).
    """

    def __init__(self, reason: str, detail: str, command: str = "") -> None:
        where = f" ({command})" if command else ""
        super().__init__(f"{reason}{where}: {detail}")
        self.reason = reason
        self.detail = detail
        self.command = command


def checksum(payload: bytes) -> bytes:
    """The header's checksum of ``payload``: its double SHA-256's first 4 bytes."""
    return hash256(payload)[:CHECKSUM_BYTES]


# -- writing ---------------------------------------------------------------------------------------------------------


class _Writer:
    """Collects a payload; every integer is range-checked (LocalProtocolError)."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def pack(self, fmt: struct.Struct, value: int, name: str) -> None:
        try:
            self.parts.append(fmt.pack(value))
        except struct.error as e:
            raise LocalProtocolError(f"{name}={value!r} does not fit its field: {e}") from None

    def raw(self, data: bytes) -> None:
        self.parts.append(bytes(data))

    def var_bytes(self, data: bytes) -> None:
        self.parts.append(compact_size(len(data)))
        self.parts.append(bytes(data))

    def count(self, n: int) -> None:
        self.parts.append(compact_size(n))

    def net_address(self, a: NetAddress) -> None:
        self.pack(_U64, a.services, "services")
        self.raw(a.ip)
        self.pack(_PORT, a.port, "port")


def _w_version(w: _Writer, m: Version) -> None:
    w.pack(_I32, m.version, "version")
    w.pack(_U64, m.services, "services")
    w.pack(_I64, m.timestamp_s, "timestamp_s")
    w.net_address(m.addr_recv)
    w.net_address(m.addr_from)
    w.pack(_U64, m.nonce, "nonce")
    w.var_bytes(m.user_agent)
    w.pack(_I32, m.start_height, "start_height")
    w.raw(b"\x01" if m.relay else b"\x00")


def _w_items(w: _Writer, m: Inv | GetData | NotFound) -> None:
    w.count(len(m.items))
    for item in m.items:
        w.pack(_U32, item.inv_type, "inv_type")
        w.raw(item.hash)


def _w_locator(w: _Writer, m: GetHeaders | GetBlocks) -> None:
    w.pack(_I32, m.version, "version")
    w.count(len(m.locator))
    for h in m.locator:
        w.raw(h)
    w.raw(m.hash_stop)


def _w_headers(w: _Writer, m: Headers) -> None:
    w.count(len(m.headers))
    for h in m.headers:
        w.raw(h)
        w.raw(b"\x00")   # the transaction count of a header: none


def _w_addr(w: _Writer, m: Addr) -> None:
    w.count(len(m.addresses))
    for e in m.addresses:
        w.pack(_U32, e.time_s, "time_s")
        w.net_address(e.address)


def _w_reject(w: _Writer, m: Reject) -> None:
    w.var_bytes(m.message.encode("ascii"))
    w.pack(_U8, m.code, "code")
    w.var_bytes(m.reason.encode())
    w.raw(m.data)


def _w_nothing(w: _Writer, m: Any) -> None:
    pass


# type -> (command, writer); Unknown is written with its own command.
_WRITERS: dict[type, tuple[str, Callable[[_Writer, Any], None]]] = {
    Version: ("version", _w_version),
    Verack: ("verack", _w_nothing),
    WtxidRelay: ("wtxidrelay", _w_nothing),
    SendAddrV2: ("sendaddrv2", _w_nothing),
    SendHeaders: ("sendheaders", _w_nothing),
    SendCmpct: ("sendcmpct", lambda w, m: (w.raw(b"\x01" if m.announce else b"\x00"),
                                           w.pack(_U64, m.version, "version"))),
    FeeFilter: ("feefilter", lambda w, m: w.pack(_I64, m.fee_rate_sat_per_kvb, "fee_rate_sat_per_kvb")),
    Ping: ("ping", lambda w, m: w.pack(_U64, m.nonce, "nonce")),
    Pong: ("pong", lambda w, m: w.pack(_U64, m.nonce, "nonce")),
    Inv: ("inv", _w_items),
    GetData: ("getdata", _w_items),
    NotFound: ("notfound", _w_items),
    Mempool: ("mempool", _w_nothing),
    GetHeaders: ("getheaders", _w_locator),
    GetBlocks: ("getblocks", _w_locator),
    Headers: ("headers", _w_headers),
    BlockMsg: ("block", lambda w, m: w.raw(m.raw)),
    TxMsg: ("tx", lambda w, m: w.raw(m.raw)),
    Addr: ("addr", _w_addr),
    GetAddr: ("getaddr", _w_nothing),
    Reject: ("reject", _w_reject),
}


def command_of(msg: P2pMessage) -> str:
    """The P2P command ``msg`` is sent as (``"version"``, ``"inv"`` ...).

    Raises:
        LocalProtocolError: ``msg`` is not a P2P message.
    """
    if type(msg) is Unknown:
        return msg.command
    entry = _WRITERS.get(type(msg))
    if entry is None:
        raise LocalProtocolError(f"{type(msg).__name__} is not a Bitcoin P2P message")
    return entry[0]


def encode_payload(msg: P2pMessage) -> tuple[str, bytes]:
    """``msg``'s command and payload bytes (Core's serialization).

    Raises:
        LocalProtocolError: not a P2P message, or a field out of its range.
    """
    if type(msg) is Unknown:
        return msg.command, bytes(msg.payload)
    command = command_of(msg)
    w = _Writer()
    _WRITERS[type(msg)][1](w, msg)
    return command, b"".join(w.parts)


def encode_message(msg: P2pMessage, magic: bytes) -> bytes:
    """One framed message: header (magic, command, length, checksum) and payload.

    Raises:
        LocalProtocolError: ``magic`` is not 4 bytes, ``msg`` is not a P2P
            message, a field is out of range, or the payload exceeds
            ``MAX_PROTOCOL_MESSAGE_LENGTH`` (the peer would refuse it).
    """
    if len(magic) != MAGIC_BYTES:
        raise LocalProtocolError(f"a network magic is {MAGIC_BYTES} bytes, got {len(magic)}")
    command, payload = encode_payload(msg)
    if len(payload) > MAX_PROTOCOL_MESSAGE_LENGTH:
        raise LocalProtocolError(f"{command} payload of {len(payload)} bytes exceeds {MAX_PROTOCOL_MESSAGE_LENGTH}")
    name = command.encode("ascii")   # at most 12 printable characters: Unknown checks its command
    return b"".join((magic, name.ljust(COMMAND_SIZE, b"\x00"), _LENGTH.pack(len(payload)), checksum(payload), payload))


# -- reading payloads ------------------------------------------------------------------------------------------------


def _u64(r: ByteReader) -> int:
    return int(_U64.unpack(r.read(8))[0])


def _net_address(r: ByteReader) -> NetAddress:
    services = _u64(r)
    ip = r.read(16)
    port = int(_PORT.unpack(r.read(2))[0])
    return NetAddress(services=services, ip=ip, port=port)


def _count(r: ByteReader, limit: int, item_bytes_min: int, what: str) -> int:
    """A CompactSize count of ``what``: at most ``limit``, and no more items
    than the bytes left can hold (checked before anything is allocated)."""
    n = r.compact_size()
    if n > limit:
        raise P2pError("over-limit", f"{n} {what}, at most {limit}")
    left = len(r.data) - r.pos
    if n * item_bytes_min > left:
        raise P2pError("bad-payload", f"{n} {what} cannot fit in the {left} bytes left")
    return n


def _limited_bytes(r: ByteReader, limit: int, what: str) -> bytes:
    n = r.compact_size()
    if n > limit:
        raise P2pError("over-limit", f"{what} of {n} bytes, at most {limit}")
    return r.read(n)


def _r_version(r: ByteReader) -> Version:
    version = r.i32()
    services = _u64(r)
    timestamp_s = r.i64()
    addr_recv = _net_address(r)
    # Core's defaults for the fields an old peer leaves out (net_processing.cpp).
    addr_from, nonce, user_agent, start_height, relay = NetAddress(), 1, b"", -1, True
    if not r.at_end():
        addr_from = _net_address(r)
        nonce = _u64(r)
    if not r.at_end():
        user_agent = _limited_bytes(r, MAX_SUBVERSION_LENGTH, "user agent")
    if not r.at_end():
        start_height = r.i32()
    if not r.at_end():
        relay = r.u8() != 0
    r.pos = len(r.data)   # bytes after the relay byte: ignored, as Core does
    return Version(version=version, services=services, timestamp_s=timestamp_s, addr_recv=addr_recv,
                   addr_from=addr_from, nonce=nonce, user_agent=user_agent, start_height=start_height, relay=relay)


def _r_items(r: ByteReader) -> tuple[InvItem, ...]:
    n = _count(r, MAX_INV_SZ, _INV_ITEM_BYTES, "inventory items")
    return tuple(InvItem(inv_type=r.u32(), hash=r.read(HASH_BYTES)) for _ in range(n))


def _r_locator(r: ByteReader) -> tuple[int, tuple[bytes, ...], bytes]:
    version = r.i32()
    n = _count(r, MAX_LOCATOR_SZ, HASH_BYTES, "locator hashes")
    locator = tuple(r.read(HASH_BYTES) for _ in range(n))
    return version, locator, r.read(HASH_BYTES)


def _r_headers(r: ByteReader) -> Headers:
    n = _count(r, MAX_HEADERS_RESULTS, _HEADER_ENTRY_BYTES_MIN, "headers")
    headers = []
    for _ in range(n):
        headers.append(r.read(HEADER_BYTES))
        r.compact_size()   # the transaction count: Core ignores it ("assume it is 0")
    return Headers(headers=tuple(headers))


def _r_addr(r: ByteReader) -> Addr:
    n = _count(r, MAX_ADDR_TO_SEND, _ADDR_ENTRY_BYTES, "addr entries")
    entries = []
    for _ in range(n):
        time_s = r.u32()
        entries.append(AddrEntry(time_s=time_s, address=_net_address(r)))
    return Addr(addresses=tuple(entries))


def _r_reject(r: ByteReader) -> Reject:
    message = _limited_bytes(r, COMMAND_SIZE, "rejected command")
    code = r.u8()
    reason = _limited_bytes(r, MAX_REJECT_MESSAGE_LENGTH, "reject reason")
    data = r.read(len(r.data) - r.pos)
    if len(data) not in (0, HASH_BYTES):
        raise P2pError("bad-payload", f"reject data of {len(data)} bytes (0 or {HASH_BYTES})")
    text = message.decode("ascii")   # UnicodeDecodeError (a ValueError): bad-payload, below
    return Reject(message=text, code=code, reason=reason.decode("utf-8"), data=data)


def _r_block(r: ByteReader) -> BlockMsg:
    msg = BlockMsg(raw=r.read(len(r.data) - r.pos))
    _ = msg.block   # parse (and keep) it: RuleViolation if it is not exactly one block
    return msg


def _r_tx(r: ByteReader) -> TxMsg:
    msg = TxMsg(raw=r.read(len(r.data) - r.pos))
    _ = msg.tx
    return msg


def _r_sendcmpct(r: ByteReader) -> SendCmpct:
    announce = r.u8() != 0
    return SendCmpct(announce=announce, version=_u64(r))


def _r_getheaders(r: ByteReader) -> GetHeaders:
    version, locator, hash_stop = _r_locator(r)
    return GetHeaders(version=version, locator=locator, hash_stop=hash_stop)


def _r_getblocks(r: ByteReader) -> GetBlocks:
    version, locator, hash_stop = _r_locator(r)
    return GetBlocks(version=version, locator=locator, hash_stop=hash_stop)


_READERS: dict[str, Callable[[ByteReader], Any]] = {
    "version": _r_version,
    "verack": lambda r: Verack(),
    "wtxidrelay": lambda r: WtxidRelay(),
    "sendaddrv2": lambda r: SendAddrV2(),
    "sendheaders": lambda r: SendHeaders(),
    "sendcmpct": _r_sendcmpct,
    "feefilter": lambda r: FeeFilter(fee_rate_sat_per_kvb=r.i64()),
    "ping": lambda r: Ping(nonce=_u64(r)),
    "pong": lambda r: Pong(nonce=_u64(r)),
    "inv": lambda r: Inv(items=_r_items(r)),
    "getdata": lambda r: GetData(items=_r_items(r)),
    "notfound": lambda r: NotFound(items=_r_items(r)),
    "mempool": lambda r: Mempool(),
    "getheaders": _r_getheaders,
    "getblocks": _r_getblocks,
    "headers": _r_headers,
    "block": _r_block,
    "tx": _r_tx,
    "addr": _r_addr,
    "getaddr": lambda r: GetAddr(),
    "reject": _r_reject,
}
assert set(_READERS) == {command for command, _ in _WRITERS.values()}


def decode_payload(command: str, payload: bytes) -> P2pMessage:
    """The message ``command`` carries in ``payload`` (a command not known
    here: :class:`~synod.bitcoin.messages.Unknown`).

    Raises:
        P2pError: ``over-limit`` or ``bad-payload`` (see the module docstring).
    """
    reader = _READERS.get(command)
    if reader is None:
        return Unknown(command=command, payload=bytes(payload))
    r = ByteReader(bytes(payload))
    try:
        msg = reader(r)
        if not r.at_end():
            raise P2pError("bad-payload", f"{len(r.data) - r.pos} bytes after the payload")
    except P2pError as e:
        raise P2pError(e.reason, e.detail, command) from None
    except RuleViolation as e:     # ByteReader, parse_block, parse_transaction
        raise P2pError("bad-payload", str(e), command) from None
    except ValueError as e:        # a field out of range (a message's __post_init__), text that is not UTF-8
        raise P2pError("bad-payload", str(e), command) from None
    return msg  # type: ignore[no-any-return]


# -- reading a stream ------------------------------------------------------------------------------------------------


def _header_command(raw: bytes) -> str:
    """The command of a header's 12 command bytes (Core ``IsMessageTypeValid``).

    Raises:
        P2pError: ``bad-command``.
    """
    name = raw.rstrip(b"\x00")
    if b"\x00" in name or not all(0x20 <= c <= 0x7E for c in name):
        raise P2pError("bad-command", f"command bytes {raw.hex()} are not NUL-padded printable ASCII")
    return name.decode("ascii")


class MessageReader:
    """Reads framed P2P messages from a byte stream (sans-IO, incremental).

    Args:
        magic: the network's 4-byte magic (:data:`MAINNET_MAGIC` ...).
        payload_bytes_max: the largest payload accepted, bytes (Core's
            ``MAX_PROTOCOL_MESSAGE_LENGTH`` by default).

    Once :meth:`feed` has raised, the reader is broken and raises again.
    """

    def __init__(self, magic: bytes, *, payload_bytes_max: int = MAX_PROTOCOL_MESSAGE_LENGTH) -> None:
        if len(magic) != MAGIC_BYTES:
            raise LocalProtocolError(f"a network magic is {MAGIC_BYTES} bytes, got {len(magic)}")
        if not 0 <= payload_bytes_max <= MAX_PROTOCOL_MESSAGE_LENGTH:
            raise LocalProtocolError(f"payload_bytes_max must be in 0..{MAX_PROTOCOL_MESSAGE_LENGTH}")
        self.magic = bytes(magic)
        self.payload_bytes_max = payload_bytes_max
        # Invariant: len(_buf) <= MESSAGE_HEADER_BYTES + payload_bytes_max between calls.
        self._buf = bytearray()
        self._header: tuple[str, int, bytes] | None = None   # (command, length, checksum) of the message being read
        self._broken: P2pError | None = None
        self.messages_read = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes received that are not yet part of a whole message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[P2pMessage]:
        """Take bytes read from the peer; returns every message they complete, in order.

        Raises:
            P2pError: the stream is malformed (see the module docstring); the
                messages before the bad one in this call are lost with it.
        """
        if self._broken is not None:
            raise P2pError(self._broken.reason, "the stream already failed: " + self._broken.detail,
                           self._broken.command)
        buf = self._buf
        buf += data
        out: list[P2pMessage] = []
        pos = 0
        try:
            while True:
                if self._header is None:
                    self._check_magic(buf, pos)
                    if len(buf) - pos < MESSAGE_HEADER_BYTES:
                        break
                    self._header = self._read_header(bytes(buf[pos:pos + MESSAGE_HEADER_BYTES]))
                command, length, expected = self._header
                start = pos + MESSAGE_HEADER_BYTES
                if len(buf) - start < length:
                    break
                payload = bytes(buf[start:start + length])
                pos = start + length
                self._header = None
                if checksum(payload) != expected:
                    raise P2pError("bad-checksum", f"checksum {expected.hex()}, payload hashes to "
                                   f"{checksum(payload).hex()}", command)
                out.append(decode_payload(command, payload))
                self.messages_read += 1
        except P2pError as e:
            self._broken = e
            buf.clear()
            raise
        del buf[:pos]   # what is left is part of one message: within the invariant
        return out

    def _check_magic(self, buf: bytearray, pos: int) -> None:
        """Refuse a wrong magic as soon as its first bytes are in."""
        have = bytes(buf[pos:pos + MAGIC_BYTES])
        if have != self.magic[:len(have)]:
            raise P2pError("wrong-magic", f"{have.hex()} is not this network's magic {self.magic.hex()}")

    def _read_header(self, header: bytes) -> tuple[str, int, bytes]:
        command = _header_command(header[MAGIC_BYTES:MAGIC_BYTES + COMMAND_SIZE])
        length = int(_LENGTH.unpack_from(header, MAGIC_BYTES + COMMAND_SIZE)[0])
        if length > self.payload_bytes_max:
            raise P2pError("oversize", f"payload of {length} bytes, at most {self.payload_bytes_max}", command)
        return command, length, header[MESSAGE_HEADER_BYTES - CHECKSUM_BYTES:]
