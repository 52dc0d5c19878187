"""Fuzz of the P2P wire reader and the protocol object (DESIGN.md section 8:
every client protocol object is fuzzed).

Property: whatever bytes a peer sends, :class:`MessageReader` and
:class:`P2pProtocol` return messages or raise ``RemoteProtocolError``,
nothing else; a count is checked against the bytes left before anything is
allocated for it; the buffer never holds more than one message; and the
same bytes give the same outcome however they are split. Valid messages
round-trip exactly.

Inputs: random bytes (bare, and behind a valid header of a known command),
valid messages of every type with random fields, and those messages
mutated (bytes flipped or overwritten, truncated, extended, slices cut or
doubled, a CompactSize count replaced by a huge one, the length field
wrong) with the header's length and checksum usually fixed up so the
payload parser is reached. A seeded ``random.Random`` drives it;
``SYNOD_FUZZ_SEED`` and ``SYNOD_FUZZ_INPUTS`` replay or widen a run.
"""

from __future__ import annotations

import os
import random
import struct
import time
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import shared_data_dir

from synod.bitcoin import read_blocks_dat
from synod.bitcoin.messages import (
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
    P2pReply,
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
from synod.bitcoin.p2p import (
    MAX_PROTOCOL_MESSAGE_LENGTH,
    MESSAGE_HEADER_BYTES,
    REGTEST_MAGIC,
    MessageReader,
    checksum,
    encode_message,
)
from synod.bitcoin.primitives import Block, BlockHeader, OutPoint, Transaction, TxIn, TxOut
from synod.bitcoin.protocol import P2pProtocol
from synod.core.errors import RemoteProtocolError

SEED = int(os.environ.get("SYNOD_FUZZ_SEED", "14"))
INPUTS = int(os.environ.get("SYNOD_FUZZ_INPUTS", "100000"))
INPUTS_MIN = 100_000
MAGIC = REGTEST_MAGIC
SMALL_PAYLOAD_BYTES_MAX = 2_000   # a second reader with a low limit, so "oversize" is reached often
COMMANDS = ["version", "verack", "wtxidrelay", "sendaddrv2", "sendheaders", "sendcmpct", "feefilter", "ping", "pong",
            "inv", "getdata", "notfound", "mempool", "getheaders", "getblocks", "headers", "block", "tx", "addr",
            "getaddr", "reject", "addrv2", "cmpctblock"]
HUGE_COUNTS = [b"\xff" + b"\xff" * 8, b"\xff\x00\x00\x00\x00\x01\x00\x00\x00", b"\xfe\xff\xff\xff\xff",
               b"\xfe\x00\x00\x00\x02", b"\xfe\x01\x00\x00\x02", b"\xfd\x51\xc3", b"\xfd\xd1\x07", b"\xfd\xe9\x03",
               b"\xfd\xfc\x00", b"\x66", b"\xfc"]


# -- valid messages with random fields -------------------------------------------------------------------------------


def _u(rng: random.Random, bits: int) -> int:
    return rng.choice((0, (1 << bits) - 1, rng.getrandbits(bits), rng.getrandbits(8)))


def _i(rng: random.Random, bits: int) -> int:
    return _u(rng, bits) - (1 << (bits - 1))


def _small(rng: random.Random, top: int) -> int:
    return min(int(rng.expovariate(0.3)), top)


def _address(rng: random.Random) -> NetAddress:
    ip = rng.randbytes(16) if rng.random() < 0.5 else bytes(10) + b"\xff\xff" + rng.randbytes(4)
    return NetAddress(services=_u(rng, 64), ip=ip, port=_u(rng, 16))


def _transaction(rng: random.Random) -> Transaction:
    witness = rng.random() < 0.5
    inputs = tuple(TxIn(prevout=OutPoint(txid=rng.randbytes(32), index=_u(rng, 32)),
                        script_sig=rng.randbytes(_small(rng, 60)), sequence=_u(rng, 32),
                        witness=tuple(rng.randbytes(_small(rng, 40)) for _ in range(_small(rng, 3) + witness)))
                   for _ in range(1 + _small(rng, 3)))
    outputs = tuple(TxOut(value=_i(rng, 64), script_pubkey=rng.randbytes(_small(rng, 40))) for _ in range(_small(rng, 3)))
    return Transaction(version=_i(rng, 32), inputs=inputs, outputs=outputs, locktime=_u(rng, 32))


def _block(rng: random.Random) -> Block:
    header = BlockHeader(version=_i(rng, 32), prev_block=rng.randbytes(32), merkle_root=rng.randbytes(32),
                         time=_u(rng, 32), bits=_u(rng, 32), nonce=_u(rng, 32))
    return Block(header=header, transactions=tuple(_transaction(rng) for _ in range(_small(rng, 4))))


def _items(rng: random.Random) -> tuple[InvItem, ...]:
    return tuple(InvItem(inv_type=_u(rng, 32), hash=rng.randbytes(32)) for _ in range(_small(rng, 30)))


def _command(rng: random.Random) -> str:
    return "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(rng.randint(0, 12)))


_GENERATORS: list[Callable[[random.Random], object]] = [
    lambda rng: Version(version=_i(rng, 32), services=_u(rng, 64), timestamp_s=_i(rng, 64), addr_recv=_address(rng),
                        addr_from=_address(rng), nonce=_u(rng, 64),
                        user_agent=rng.randbytes(min(_small(rng, 40) * 7, MAX_SUBVERSION_LENGTH)),
                        start_height=_i(rng, 32), relay=rng.random() < 0.5),
    lambda rng: rng.choice((Verack(), WtxidRelay(), SendAddrV2(), SendHeaders(), Mempool(), GetAddr())),
    lambda rng: SendCmpct(announce=rng.random() < 0.5, version=_u(rng, 64)),
    lambda rng: FeeFilter(fee_rate_sat_per_kvb=_i(rng, 64)),
    lambda rng: rng.choice((Ping, Pong))(nonce=_u(rng, 64)),
    lambda rng: rng.choice((Inv, GetData, NotFound))(items=_items(rng)),
    lambda rng: rng.choice((GetHeaders, GetBlocks))(locator=tuple(rng.randbytes(32) for _ in range(_small(rng, 101))),
                                                    hash_stop=rng.randbytes(32), version=_i(rng, 32)),
    lambda rng: Headers(headers=tuple(rng.randbytes(80) for _ in range(_small(rng, 20)))),
    lambda rng: BlockMsg(raw=_block(rng).serialize()),
    lambda rng: TxMsg(raw=_transaction(rng).serialize()),
    lambda rng: Addr(addresses=tuple(AddrEntry(time_s=_u(rng, 32), address=_address(rng)) for _ in range(_small(rng, 20)))),
    lambda rng: Reject(message=rng.choice(COMMANDS)[:12], code=_u(rng, 8),
                       reason="".join(chr(rng.randint(0x20, 0x7E)) for _ in range(_small(rng, 111))),
                       data=rng.choice((b"", rng.randbytes(32)))),
    lambda rng: Unknown(command=rng.choice(("addrv2", "cmpctblock", "sendtxrcncl", "")) if rng.random() < 0.7
                        else "x" + _command(rng)[:11], payload=rng.randbytes(_small(rng, 60))),
]


def _real_payloads() -> list[object]:
    """Mainnet blocks 0..4 and 170 and 170's transactions, when the data is here."""
    base = shared_data_dir() / "bitcoin" / "blocks"
    if not (base / "mainnet_0-4.dat").exists() or not (base / "mainnet_1-255.dat").exists():
        return []
    raws = read_blocks_dat((base / "mainnet_0-4.dat").read_bytes())
    raws.append(read_blocks_dat((base / "mainnet_1-255.dat").read_bytes())[169])
    msgs: list[object] = [BlockMsg(raw=r) for r in raws]
    msgs += [TxMsg.from_tx(t) for t in msgs[-1].block.transactions]  # type: ignore[attr-defined]
    return msgs


# -- mutations -------------------------------------------------------------------------------------------------------


def _mutate(rng: random.Random, wire: bytes) -> bytes:
    b = bytearray(wire)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(8)
        if op == 0 and b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 2:
            del b[rng.randint(0, len(b)):]
        elif op == 3:
            b += rng.randbytes(rng.randint(1, 40))
        elif op == 4 and len(b) > MESSAGE_HEADER_BYTES:   # a huge or lying count somewhere in the payload
            at = rng.randrange(MESSAGE_HEADER_BYTES, len(b))
            huge = rng.choice(HUGE_COUNTS)
            b[at:at + (len(huge) if rng.random() < 0.5 else 1)] = huge
        elif op == 5 and b:
            at = rng.randrange(len(b))
            del b[at:at + rng.randint(1, 16)]
        elif op == 6 and b:
            at = rng.randrange(len(b))
            b[at:at] = b[at:at + rng.randint(1, 16)]
        elif op == 7 and len(b) >= 16:
            name = rng.choice(COMMANDS).encode().ljust(12, b"\x00")
            b[4:16] = name
    if len(b) >= MESSAGE_HEADER_BYTES:
        roll = rng.random()
        if roll < 0.8:   # fix up length and checksum: reach the payload parser
            payload = bytes(b[MESSAGE_HEADER_BYTES:])
            b[16:20] = struct.pack("<I", len(payload))
            b[20:24] = checksum(payload)
        elif roll < 0.9:
            b[16:20] = struct.pack("<I", rng.choice((rng.getrandbits(32), MAX_PROTOCOL_MESSAGE_LENGTH + 1,
                                                     SMALL_PAYLOAD_BYTES_MAX + 1, rng.randrange(2 * len(b) + 1))))
    return bytes(b)


def _random_bytes(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    junk = rng.randbytes(_small(rng, 30) * 5)
    if kind == 0:
        return junk
    if kind == 1:
        return MAGIC[:rng.randint(0, 4)] + junk
    payload = junk if kind == 2 else rng.choice(HUGE_COUNTS) + junk
    command = rng.choice(COMMANDS).encode()
    return MAGIC + command.ljust(12, b"\x00") + struct.pack("<I", len(payload)) + checksum(payload) + payload


# -- running one input -----------------------------------------------------------------------------------------------


def _whole(data: bytes, payload_bytes_max: int) -> tuple[str, list[object]]:
    reader = MessageReader(MAGIC, payload_bytes_max=payload_bytes_max)
    try:
        msgs = reader.feed(data)
    except RemoteProtocolError:
        return "error", []
    assert reader.buffered_bytes <= MESSAGE_HEADER_BYTES + payload_bytes_max
    return "ok", msgs


def _chunked(rng: random.Random, data: bytes, payload_bytes_max: int) -> tuple[str, list[object]]:
    proto = P2pProtocol(MAGIC, payload_bytes_max=payload_bytes_max)
    cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(1, 4)))
    msgs: list[object] = []
    try:
        for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
            msgs += proto.receive_data(data[a:b])
            assert proto.buffered_bytes <= MESSAGE_HEADER_BYTES + payload_bytes_max
    except RemoteProtocolError:
        return "error", []
    for _ in msgs:
        proto.send(P2pReply())
    return "ok", msgs


def _check(rng: random.Random, data: bytes, valid: object | None) -> str:
    limit = SMALL_PAYLOAD_BYTES_MAX if rng.random() < 0.2 else MAX_PROTOCOL_MESSAGE_LENGTH
    outcome = _whole(data, limit)
    if valid is not None and limit == MAX_PROTOCOL_MESSAGE_LENGTH:
        assert outcome == ("ok", [valid]), "a valid message did not round-trip"
    if rng.random() < 0.3:
        assert _chunked(rng, data, limit) == outcome, "split bytes gave another outcome"
    return outcome[0]


def test_fuzz_reader_and_protocol_object() -> None:
    """At least 100,000 inputs; only RemoteProtocolError is ever raised."""
    rng = random.Random(SEED)
    corpus = _real_payloads()
    counts = {"ok": 0, "error": 0}
    started = time.monotonic()
    for i in range(INPUTS):
        kind = rng.random()
        valid = None
        if kind < 0.25:
            data = _random_bytes(rng)
        else:
            msg = rng.choice(corpus) if corpus and rng.random() < 0.05 else rng.choice(_GENERATORS)(rng)
            data = encode_message(msg, MAGIC)  # type: ignore[arg-type]
            if kind < 0.4:
                valid = msg
            else:
                data = _mutate(rng, data)
        try:
            counts[_check(rng, data, valid)] += 1
        except Exception as e:
            raise AssertionError(f"input {i} of seed {SEED} ({type(e).__name__}: {e}); data {data[:200].hex()}; "
                                 f"replay: SYNOD_FUZZ_SEED={SEED} .venv/bin/python -m pytest -q "
                                 f"tests/btc/test_p2p_fuzz.py") from e
    elapsed = time.monotonic() - started
    total = counts["ok"] + counts["error"]
    print(f"p2p fuzz: {total} inputs, {counts['ok']} parsed, {counts['error']} refused with RemoteProtocolError, "
          f"0 crashes, seed {SEED}, {elapsed:.1f} s")
    assert total == INPUTS
    assert total >= INPUTS_MIN or INPUTS < INPUTS_MIN   # a smaller run only when asked for
    assert counts["ok"] > total // 10
    assert counts["error"] > total // 10


# -- structured: hypothesis ------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), which=st.integers(0, len(_GENERATORS) - 1),
       edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4),
       cut=st.integers(0, 10**6))
def test_structured_messages_edited(seed: int, which: int, edits: list[tuple[int, int]], cut: int) -> None:
    """A valid message of each kind round-trips; with bytes overwritten in
    its payload (checksum fixed up) it parses or is refused, nothing else."""
    rng = random.Random(seed)
    msg = _GENERATORS[which](rng)
    wire = encode_message(msg, MAGIC)  # type: ignore[arg-type]
    assert MessageReader(MAGIC).feed(wire) == [msg]
    payload = bytearray(wire[MESSAGE_HEADER_BYTES:])
    for at, value in edits:
        if payload:
            payload[at % len(payload)] = value
    payload = payload[:cut % (len(payload) + 1)] if cut % 3 == 0 else payload
    framed = wire[:16] + struct.pack("<I", len(payload)) + checksum(bytes(payload)) + bytes(payload)
    try:
        MessageReader(MAGIC).feed(framed)
    except RemoteProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), command=st.sampled_from(COMMANDS))
def test_any_payload_of_any_command(data: bytes, command: str) -> None:
    framed = MAGIC + command.encode().ljust(12, b"\x00") + struct.pack("<I", len(data)) + checksum(data) + data
    try:
        MessageReader(MAGIC).feed(framed)
    except RemoteProtocolError:
        pass


def test_huge_counts_in_every_command_are_refused_cheaply() -> None:
    """Every huge count behind every command's fixed fields: refused (or
    parsed) without allocating for the count."""
    for command in COMMANDS:
        for huge in HUGE_COUNTS:
            for lead in (0, 4, 36, 80, 84, 132):
                payload = bytes(lead) + huge + bytes(40)
                framed = MAGIC + command.encode().ljust(12, b"\x00") + struct.pack("<I", len(payload))
                try:
                    MessageReader(MAGIC).feed(framed + checksum(payload) + payload)
                except RemoteProtocolError:
                    pass


def test_generated_payloads_stay_under_the_limit() -> None:
    rng = random.Random(SEED)
    for _ in range(200):
        for gen in _GENERATORS:
            assert len(encode_message(gen(rng), MAGIC)) < MAX_PROTOCOL_MESSAGE_LENGTH  # type: ignore[arg-type]
