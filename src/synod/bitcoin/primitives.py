"""Transactions, headers and blocks, and their byte formats.

Bitcoin's own serialization (whitepaper sections 2-4; BIP141/144 for the
witness): little-endian integers, CompactSize counts and lengths, a
transaction's inputs (the outpoint it spends, its scriptSig, its sequence,
with BIP144's witness stack after the outputs), outputs (value in
satoshis, scriptPubKey), and lock time; an 80-byte header; a block as a
header and its transactions. Hashes are kept in internal byte order (as
hashed); :func:`hash_hex` shows them reversed, as block explorers and RPC do.

Parsing validates at the boundary: every length is checked against what is
left and against ``MAX_COMPACT_SIZE``, CompactSize must be canonical, and
anything malformed raises :class:`RuleViolation` (``bad-serialization``),
never an assertion or an ``IndexError``. The types are frozen msgspec
structs; ``txid``, ``wtxid``, ``weight`` and ``hash`` are computed once.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import cached_property

import msgspec

from synod.bitcoin import constants as C
from synod.bitcoin._hashes import hash256
from synod.bitcoin.errors import RuleViolation

__all__ = [
    "OutPoint", "TxIn", "TxOut", "Transaction", "BlockHeader", "Block", "ByteReader",
    "compact_size", "var_bytes", "parse_transaction", "parse_header", "parse_block", "read_blocks_dat",
    "merkle_root", "hash_hex", "NULL_HASH", "check_transaction",
]

NULL_HASH = bytes(32)
NULL_INDEX = 0xFFFFFFFF
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_HEADER = struct.Struct("<i32s32sIII")


def hash_hex(h: bytes) -> str:
    """A hash as displayed (byte-reversed hex)."""
    return h[::-1].hex()


class ByteReader:
    """Reads Bitcoin's encodings from bytes, checking every length.

    Raises:
        RuleViolation: ``bad-serialization``, for input that ends early, a
            non-canonical or oversize CompactSize.
    """

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def fail(self, what: str) -> RuleViolation:
        return RuleViolation("bad-serialization", f"{what} at byte {self.pos}")

    def read(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise self.fail(f"{n} bytes wanted, {len(self.data) - self.pos} left")
        out = self.data[self.pos:end]
        self.pos = end
        return out

    def u8(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("1 byte wanted, 0 left")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def u32(self) -> int:
        return int(_U32.unpack(self.read(4))[0])

    def i32(self) -> int:
        return int(_I32.unpack(self.read(4))[0])

    def i64(self) -> int:
        return int(_I64.unpack(self.read(8))[0])

    def compact_size(self, limit: int = C.MAX_COMPACT_SIZE) -> int:
        """A CompactSize: canonical (the shortest form) and at most ``limit``."""
        first = self.u8()
        if first < 0xFD:
            n = first
        elif first == 0xFD:
            n = int.from_bytes(self.read(2), "little")
            if n < 0xFD:
                raise self.fail("non-canonical CompactSize")
        elif first == 0xFE:
            n = int.from_bytes(self.read(4), "little")
            if n < 0x10000:
                raise self.fail("non-canonical CompactSize")
        else:
            n = int.from_bytes(self.read(8), "little")
            if n < 0x100000000:
                raise self.fail("non-canonical CompactSize")
        if n > limit:
            raise self.fail(f"CompactSize {n} over {limit}")
        return n

    def var_bytes(self) -> bytes:
        return self.read(self.compact_size())

    def at_end(self) -> bool:
        return self.pos == len(self.data)


def compact_size(n: int) -> bytes:
    if n < 0xFD:
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def var_bytes(b: bytes) -> bytes:
    return compact_size(len(b)) + b


class OutPoint(msgspec.Struct, frozen=True, kw_only=True):
    """The output a transaction input spends: ``txid`` (32 bytes, internal
    order) and ``index`` (u32). The null outpoint marks a coinbase input."""

    txid: bytes
    index: int

    def is_null(self) -> bool:
        return self.index == NULL_INDEX and self.txid == NULL_HASH

    def serialize(self) -> bytes:
        return self.txid + _U32.pack(self.index)


class TxIn(msgspec.Struct, frozen=True, kw_only=True):
    """An input: the outpoint spent, its scriptSig, its nSequence (u32), and
    its BIP141 witness stack (a tuple of byte strings, empty when none)."""

    prevout: OutPoint
    script_sig: bytes
    sequence: int = C.SEQUENCE_FINAL
    witness: tuple[bytes, ...] = ()


class TxOut(msgspec.Struct, frozen=True, kw_only=True):
    """An output: ``value`` in satoshis (int64 on the wire) and the
    scriptPubKey that must be satisfied to spend it."""

    value: int
    script_pubkey: bytes

    def serialize(self) -> bytes:
        return _I64.pack(self.value) + var_bytes(self.script_pubkey)


class Transaction(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    """A transaction (version int32, inputs, outputs, nLockTime u32).

    ``txid`` hashes the serialization without witnesses, ``wtxid`` with them
    (BIP141); both are 32 bytes in internal order.
    """

    version: int
    inputs: tuple[TxIn, ...]
    outputs: tuple[TxOut, ...]
    locktime: int

    @cached_property
    def has_witness(self) -> bool:
        return any(i.witness for i in self.inputs)

    def serialize(self, *, witness: bool = True) -> bytes:
        """Bytes on the wire; with ``witness=False`` the legacy (stripped) form."""
        use_witness = witness and self.has_witness
        parts = [_I32.pack(self.version)]
        if use_witness:
            parts.append(b"\x00\x01")
        parts.append(compact_size(len(self.inputs)))
        for i in self.inputs:
            parts += (i.prevout.txid, _U32.pack(i.prevout.index), var_bytes(i.script_sig), _U32.pack(i.sequence))
        parts.append(compact_size(len(self.outputs)))
        for o in self.outputs:
            parts += (_I64.pack(o.value), var_bytes(o.script_pubkey))
        if use_witness:
            for i in self.inputs:
                parts.append(compact_size(len(i.witness)))
                parts += [var_bytes(item) for item in i.witness]
        parts.append(_U32.pack(self.locktime))
        return b"".join(parts)

    @cached_property
    def txid(self) -> bytes:
        return hash256(self.stripped_bytes)

    @cached_property
    def wtxid(self) -> bytes:
        return hash256(self.serialize()) if self.has_witness else self.txid

    @cached_property
    def stripped_bytes(self) -> bytes:
        return self.serialize(witness=False)

    @cached_property
    def total_size(self) -> int:
        return len(self.serialize())

    @property
    def stripped_size(self) -> int:
        return len(self.stripped_bytes)

    @property
    def weight(self) -> int:
        """BIP141 weight: stripped size x 3 + total size."""
        return self.stripped_size * (C.WITNESS_SCALE_FACTOR - 1) + self.total_size

    def is_coinbase(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].prevout.is_null()


def _read_transaction(r: ByteReader) -> Transaction:
    start = r.pos
    version = r.i32()
    count = r.compact_size()
    flags = 0
    read_outputs = True
    if count == 0:   # BIP144: an empty input list is the marker; a flag byte follows
        flags = r.u8()
        if flags != 0:
            count = r.compact_size()
        else:
            read_outputs = False   # (as Core: no inputs and no flag, so no outputs either)
    inputs = []
    for _ in range(count):
        txid = r.read(32)
        index = r.u32()
        script_sig = r.var_bytes()
        inputs.append(TxIn(prevout=OutPoint(txid=txid, index=index), script_sig=script_sig, sequence=r.u32()))
    outputs = []
    if read_outputs:
        for _ in range(r.compact_size()):
            value = r.i64()
            outputs.append(TxOut(value=value, script_pubkey=r.var_bytes()))
    if flags & 1:
        flags ^= 1
        with_witness = []
        for txin in inputs:
            items = tuple(r.var_bytes() for _ in range(r.compact_size()))
            with_witness.append(msgspec.structs.replace(txin, witness=items))
        inputs = with_witness
        if not any(i.witness for i in inputs):
            raise r.fail("superfluous witness record")
    if flags:
        raise r.fail("unknown transaction optional data")
    locktime = r.u32()
    tx = Transaction(version=version, inputs=tuple(inputs), outputs=tuple(outputs), locktime=locktime)
    if not tx.has_witness:
        tx.__dict__["stripped_bytes"] = r.data[start:r.pos]   # (the cached form: no re-serialization)
    return tx


def parse_transaction(data: bytes) -> Transaction:
    """One transaction from exactly ``data`` (legacy or BIP144 segwit form).

    Raises:
        RuleViolation: ``bad-serialization`` (malformed, or bytes left over).
    """
    if len(data) > C.MAX_TX_BYTES:
        raise RuleViolation("bad-serialization", f"transaction of {len(data)} bytes")
    r = ByteReader(bytes(data))
    tx = _read_transaction(r)
    if not r.at_end():
        raise r.fail("bytes after the transaction")
    return tx


class BlockHeader(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    """The 80-byte header: version, the previous block's hash, the merkle
    root of the transactions (both 32 bytes, internal order), time (unix s),
    the target in compact form (``bits``) and the nonce (whitepaper 4)."""

    version: int
    prev_block: bytes
    merkle_root: bytes
    time: int
    bits: int
    nonce: int

    def serialize(self) -> bytes:
        return _HEADER.pack(self.version, self.prev_block, self.merkle_root, self.time, self.bits, self.nonce)

    @cached_property
    def hash(self) -> bytes:
        return hash256(self.serialize())


def _read_header(r: ByteReader) -> BlockHeader:
    version, prev, merkle, time, bits, nonce = _HEADER.unpack(r.read(C.HEADER_BYTES))
    return BlockHeader(version=version, prev_block=prev, merkle_root=merkle, time=time, bits=bits, nonce=nonce)


def parse_header(data: bytes) -> BlockHeader:
    """A header from exactly 80 bytes.

    Raises:
        RuleViolation: ``bad-serialization``.
    """
    if len(data) != C.HEADER_BYTES:
        raise RuleViolation("bad-serialization", f"a header is 80 bytes, not {len(data)}")
    return _read_header(ByteReader(bytes(data)))


class Block(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    """A header and its transactions, the first the coinbase."""

    header: BlockHeader
    transactions: tuple[Transaction, ...]

    @property
    def hash(self) -> bytes:
        return self.header.hash

    def serialize(self, *, witness: bool = True) -> bytes:
        return b"".join([self.header.serialize(), compact_size(len(self.transactions)),
                         *(tx.serialize(witness=witness) for tx in self.transactions)])

    @cached_property
    def total_size(self) -> int:
        return C.HEADER_BYTES + len(compact_size(len(self.transactions))) + sum(t.total_size for t in self.transactions)

    @cached_property
    def stripped_size(self) -> int:
        return C.HEADER_BYTES + len(compact_size(len(self.transactions))) + sum(t.stripped_size for t in self.transactions)

    @property
    def weight(self) -> int:
        return self.stripped_size * (C.WITNESS_SCALE_FACTOR - 1) + self.total_size


def parse_block(data: bytes) -> Block:
    """One block from exactly ``data``.

    Raises:
        RuleViolation: ``bad-serialization``.
    """
    if len(data) > C.MAX_BLOCK_BYTES:
        raise RuleViolation("bad-serialization", f"block of {len(data)} bytes")
    r = ByteReader(bytes(data))
    header = _read_header(r)
    # every transaction takes at least 10 bytes: a count beyond that is a lie, not a reason to allocate
    count = r.compact_size(limit=len(data) // 10)
    txs = tuple(_read_transaction(r) for _ in range(count))
    if not r.at_end():
        raise r.fail("bytes after the block")
    return Block(header=header, transactions=txs)


MAINNET_MAGIC = bytes.fromhex("f9beb4d9")


def read_blocks_dat(data: bytes, magic: bytes = MAINNET_MAGIC) -> list[bytes]:
    """The raw blocks of a bitcoind ``blk*.dat`` file: records of network
    magic, u32 length, block. Zero padding at the end is allowed.

    Raises:
        RuleViolation: ``bad-serialization`` (wrong magic, a truncated record).
    """
    r = ByteReader(bytes(data))
    out = []
    while not r.at_end():
        if r.data[r.pos:r.pos + 4] == b"\x00\x00\x00\x00" and not r.data[r.pos:].strip(b"\x00"):
            break
        if r.read(4) != magic:
            raise r.fail("a record without the network magic")
        out.append(r.read(r.u32()))
    return out


def merkle_root(hashes: Sequence[bytes]) -> tuple[bytes, bool]:
    """The merkle root of ``hashes`` (whitepaper 7; an odd level repeats its
    last hash) and whether the tree is mutated: two equal adjacent hashes at
    some level, so another transaction list has the same root (CVE-2012-2459).
    """
    level = list(hashes)
    if not level:
        return NULL_HASH, False
    mutated = False
    while len(level) > 1:
        for i in range(0, len(level) - 1, 2):
            if level[i] == level[i + 1]:
                mutated = True
        if len(level) % 2:
            level.append(level[-1])
        level = [hash256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0], mutated


def check_transaction(tx: Transaction) -> None:
    """The context-free checks of a transaction (Core's ``CheckTransaction``).

    Raises:
        RuleViolation: ``bad-txns-vin-empty``, ``bad-txns-vout-empty``,
            ``bad-txns-oversize``, ``bad-txns-vout-negative``,
            ``bad-txns-vout-toolarge``, ``bad-txns-txouttotal-toolarge``,
            ``bad-txns-inputs-duplicate``, ``bad-cb-length``,
            ``bad-txns-prevout-null``.
    """
    if not tx.inputs:
        raise RuleViolation("bad-txns-vin-empty")
    if not tx.outputs:
        raise RuleViolation("bad-txns-vout-empty")
    if tx.stripped_size * C.WITNESS_SCALE_FACTOR > C.MAX_BLOCK_WEIGHT:
        raise RuleViolation("bad-txns-oversize")
    total = 0
    for o in tx.outputs:
        if o.value < 0:
            raise RuleViolation("bad-txns-vout-negative")
        if o.value > C.MAX_MONEY:
            raise RuleViolation("bad-txns-vout-toolarge")
        total += o.value
        if total > C.MAX_MONEY:
            raise RuleViolation("bad-txns-txouttotal-toolarge")
    if len({i.prevout for i in tx.inputs}) != len(tx.inputs):
        raise RuleViolation("bad-txns-inputs-duplicate")
    if tx.is_coinbase():
        if not C.MIN_COINBASE_SCRIPT_BYTES <= len(tx.inputs[0].script_sig) <= C.MAX_COINBASE_SCRIPT_BYTES:
            raise RuleViolation("bad-cb-length")
    elif any(i.prevout.is_null() for i in tx.inputs):
        raise RuleViolation("bad-txns-prevout-null")
