"""Bitcoin's byte formats against real mainnet blocks (whitepaper sections
2-4, 7; BIP141/144): every block parses and re-serializes byte for byte,
its merkle root over the txids is the header's, and malformed bytes are a
RuleViolation naming the rule, never a traceback."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.btc.conftest import bitcoin_data

from synod.bitcoin import (
    OutPoint,
    RuleViolation,
    Transaction,
    TxIn,
    TxOut,
    check_transaction,
    hash_hex,
    merkle_root,
    parse_block,
    parse_transaction,
    read_blocks_dat,
)
from synod.bitcoin.primitives import ByteReader, compact_size

BLOCK_FILES = {  # file -> (first height, blocks, transactions) per the data's README
    "mainnet_0-4.dat": (0, 5, 9),
    "mainnet_1-255.dat": (1, 255, 262),
    "mainnet_277647.dat": (277647, 1, 213),
}


def _raw_blocks(name: str) -> list[bytes]:
    path = bitcoin_data(f"blocks/{name}")
    if name.endswith(".dat"):
        return read_blocks_dat(path.read_bytes())
    if name.endswith(".hex"):
        return [bytes.fromhex(path.read_text().strip())]
    return [path.read_bytes()]


@pytest.mark.parametrize("name", [*BLOCK_FILES, "mainnet_100000.hex", "mainnet_540107.bin", "mainnet_574200.bin"])
def test_real_blocks_round_trip_and_their_merkle_roots_match(name: str) -> None:
    raws = _raw_blocks(name)
    if name in BLOCK_FILES:
        _, count, txs = BLOCK_FILES[name]
        assert len(raws) == count
        assert sum(len(parse_block(r).transactions) for r in raws) == txs
    for raw in raws:
        block = parse_block(raw)
        assert block.serialize() == raw
        assert block.total_size == len(raw)
        root, mutated = merkle_root([tx.txid for tx in block.transactions])
        assert root == block.header.merkle_root
        assert not mutated
        assert block.transactions[0].is_coinbase()
        for tx in block.transactions:
            check_transaction(tx)
            assert parse_transaction(tx.serialize()) == tx


def test_known_hashes_genesis_block_170_and_a_segwit_block() -> None:
    genesis = parse_block(_raw_blocks("mainnet_0-4.dat")[0])
    assert hash_hex(genesis.hash) == "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
    assert hash_hex(genesis.transactions[0].txid) == "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
    b170 = parse_block(_raw_blocks("mainnet_1-255.dat")[169])
    assert hash_hex(b170.hash) == "00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee"
    assert hash_hex(b170.transactions[1].txid) == "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
    segwit = parse_block(_raw_blocks("mainnet_574200.bin")[0])
    assert len(segwit.transactions) == 3315
    assert any(tx.has_witness and tx.wtxid != tx.txid for tx in segwit.transactions)
    assert segwit.weight <= 4_000_000


def test_merkle_root_reports_the_duplicate_pair_mutation() -> None:
    """CVE-2012-2459: [a, b, c] and [a, b, c, c] share a root; the second is flagged."""
    a, b, c = (bytes([i]) * 32 for i in (1, 2, 3))
    assert merkle_root([a, b, c])[0] == merkle_root([a, b, c, c])[0]
    assert merkle_root([a, b, c]) == (merkle_root([a, b, c, c])[0], False)
    assert merkle_root([a, b, c, c])[1]


def test_compact_size_must_be_canonical_and_bounded() -> None:
    for n in (0, 252, 253, 0xFFFF, 0x10000, 0x02000000):
        assert ByteReader(compact_size(n)).compact_size() == n
    for bad in (b"\xfd\xfc\x00", b"\xfe\xff\xff\x00\x00", b"\xff" + (2**32 - 1).to_bytes(8, "little"),
                b"\xfe\x01\x00\x00\x02", b"\xfd\x01"):
        with pytest.raises(RuleViolation) as e:
            ByteReader(bad).compact_size()
        assert e.value.rule == "bad-serialization"


def _tx(**kw: object) -> Transaction:
    spend = TxIn(prevout=OutPoint(txid=b"\x11" * 32, index=0), script_sig=b"\x51")
    fields = {"version": 1, "inputs": (spend,), "outputs": (TxOut(value=1000, script_pubkey=b"\x51"),), "locktime": 0}
    fields.update(kw)
    return Transaction(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("tx", "rule"), [
    (_tx(inputs=()), "bad-txns-vin-empty"),
    (_tx(outputs=()), "bad-txns-vout-empty"),
    (_tx(outputs=(TxOut(value=-1, script_pubkey=b""),)), "bad-txns-vout-negative"),
    (_tx(outputs=(TxOut(value=21_000_000 * 10**8 + 1, script_pubkey=b""),)), "bad-txns-vout-toolarge"),
    (_tx(outputs=(TxOut(value=21_000_000 * 10**8, script_pubkey=b""),) * 2), "bad-txns-txouttotal-toolarge"),
    (_tx(inputs=(TxIn(prevout=OutPoint(txid=b"\x11" * 32, index=0), script_sig=b""),) * 2),
     "bad-txns-inputs-duplicate"),
    (_tx(inputs=(TxIn(prevout=OutPoint(txid=bytes(32), index=0xFFFFFFFF), script_sig=b"\x01"),)), "bad-cb-length"),
    (_tx(inputs=(TxIn(prevout=OutPoint(txid=b"\x11" * 32, index=0), script_sig=b""),
                 TxIn(prevout=OutPoint(txid=bytes(32), index=0xFFFFFFFF), script_sig=b"")),),
     "bad-txns-prevout-null"),
])
def test_check_transaction_names_the_rule_broken(tx: Transaction, rule: str) -> None:
    with pytest.raises(RuleViolation) as e:
        check_transaction(tx)
    assert e.value.rule == rule


def test_witness_flag_rules() -> None:
    tx = _tx(inputs=(TxIn(prevout=OutPoint(txid=b"\x11" * 32, index=0), script_sig=b"", witness=(b"\x01",)),))
    raw = tx.serialize()
    assert raw[4:6] == b"\x00\x01" and parse_transaction(raw) == tx
    empty_witness = raw[:-4 - 3] + b"\x00" + raw[-4:]       # the one stack emptied: a superfluous record
    with pytest.raises(RuleViolation, match="superfluous witness"):
        parse_transaction(empty_witness)
    with pytest.raises(RuleViolation, match="unknown transaction optional data"):
        parse_transaction(raw[:5] + b"\x02" + raw[6:])


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_real_transactions_and_blocks_never_raise_anything_but_a_rule_violation(data: st.DataObject) -> None:
    raw = _raw_blocks("mainnet_277647.dat")[0]
    cut = data.draw(st.integers(0, len(raw)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)), max_size=4))
    mutated = bytearray(raw[:cut] + data.draw(st.binary(max_size=16)) + raw[cut:])
    for at, value in flips:
        if at < len(mutated):
            mutated[at] = value
    for parse in (parse_block, parse_transaction):
        try:
            parse(bytes(mutated))
        except RuleViolation as e:
            assert e.rule == "bad-serialization"
