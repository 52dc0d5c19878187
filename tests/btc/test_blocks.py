"""Blocks and the UTXO chain against real mainnet data (whitepaper
sections 2, 4-7; Core's ``CheckBlock``, ``ContextualCheckBlock``,
``ConnectBlock``): blocks 0-255 connect from genesis, four later blocks
pass every check that does not need their parents' outputs, and every
rule, broken, is rejected by its name."""

from __future__ import annotations

from functools import cache

import msgspec
import pytest
from tests.btc.conftest import bitcoin_data

from synod.bitcoin import (
    Block,
    OutPoint,
    RuleViolation,
    ScriptFailure,
    Transaction,
    TxIn,
    TxOut,
    merkle_root,
    parse_block,
    read_blocks_dat,
)
from synod.bitcoin import constants as C
from synod.bitcoin._hashes import hash160, hash256
from synod.bitcoin.chain import (
    Chainstate,
    Coin,
    UtxoSet,
    check_tx_inputs,
    connect_block,
    disconnect_block,
    script_flags,
    transaction_sigop_cost,
)
from synod.bitcoin.interpreter import VerifyFlags, verify_transaction
from synod.bitcoin.pow import MAINNET
from synod.bitcoin.script import OP, push_data
from synod.bitcoin.validation import (
    block_subsidy,
    check_block,
    coinbase_height_script,
    contextual_check_block,
    witness_commitment_index,
)
from synod.core.errors import LocalProtocolError

replace = msgspec.structs.replace


@cache
def _early_blocks() -> tuple[Block, ...]:
    """Blocks 0..255: genesis from one file, 1..255 from the other."""
    genesis = read_blocks_dat(bitcoin_data("blocks/mainnet_0-4.dat").read_bytes())[0]
    rest = read_blocks_dat(bitcoin_data("blocks/mainnet_1-255.dat").read_bytes())
    return tuple(parse_block(raw) for raw in [genesis, *rest])


BIG_BLOCKS = {"mainnet_100000.hex": 100000, "mainnet_277647.dat": 277647, "mainnet_540107.bin": 540107,
              "mainnet_574200.bin": 574200}


@cache
def _big_block(name: str) -> Block:
    path = bitcoin_data(f"blocks/{name}")
    if name.endswith(".hex"):
        return parse_block(bytes.fromhex(path.read_text().strip()))
    if name.endswith(".dat"):
        return parse_block(read_blocks_dat(path.read_bytes())[0])
    return parse_block(path.read_bytes())


def _rule(call) -> str:   # type: ignore[no-untyped-def]
    with pytest.raises(RuleViolation) as e:
        call()
    return e.value.rule


def _with_txs(block: Block, txs: list[Transaction], *, prev: bytes | None = None) -> Block:
    """``block`` with other transactions, the header's merkle root recomputed
    (so the header's proof of work is lost: check with ``check_pow=False``)."""
    root = merkle_root([tx.txid for tx in txs])[0]
    header = replace(block.header, merkle_root=root, prev_block=block.header.prev_block if prev is None else prev)
    return Block(header=header, transactions=tuple(txs))


def _connected(upto: int = 255) -> Chainstate:
    state = Chainstate(MAINNET, verify_script=None)
    for block in _early_blocks()[1:upto + 1]:
        state.connect(block, adjusted_time_s=block.header.time)
    return state


def _no_mtp(height: int) -> int:
    raise AssertionError("median time past is not needed before CSV")


def _coinbase(height: int, value: int = 50 * C.COIN) -> Transaction:
    return Transaction(version=1, locktime=0, outputs=(TxOut(value=value, script_pubkey=bytes((OP._1,))),),
                       inputs=(TxIn(prevout=OutPoint(txid=bytes(32), index=0xFFFFFFFF),
                                    script_sig=coinbase_height_script(height) + b"synod"),))


def _spend(*outpoints: OutPoint, value: int, version: int = 1, sequence: int = C.SEQUENCE_FINAL,
           script_sig: bytes = b"") -> Transaction:
    return Transaction(version=version, locktime=0, outputs=(TxOut(value=value, script_pubkey=bytes((OP._1,))),),
                       inputs=tuple(TxIn(prevout=o, script_sig=script_sig, sequence=sequence) for o in outpoints))


def _next_block(state: Chainstate, txs: list[Transaction], fees: int = 0) -> Block:
    height = state.height + 1
    tip = _early_blocks()[state.height]
    assert tip.hash == state.utxos.best_block
    return _with_txs(tip, [_coinbase(height, 50 * C.COIN + fees), *txs], prev=tip.hash)


def _connect(utxos: UtxoSet, block: Block, height: int, params=MAINNET, verify=None):   # type: ignore[no-untyped-def]
    return connect_block(utxos, block, height=height, params=params, median_time_past_at=_no_mtp, verify_script=verify)


def _coinbase_outpoint(height: int) -> OutPoint:
    return OutPoint(txid=_early_blocks()[height].transactions[0].txid, index=0)


# -- the real chain ------------------------------------------------------------------------------

def test_blocks_0_to_255_connect_from_genesis() -> None:
    blocks = _early_blocks()
    assert blocks[0].hash == MAINNET.genesis_hash
    state = _connected()
    assert state.height == 255
    assert state.utxos.best_block == blocks[255].hash
    assert state.headers.tip.hash == blocks[255].hash
    # every coinbase of 1..255 was claimed in full, no fee was lost: 255 x 50 BTC
    assert sum(c.output.value for c in state.utxos.coins.values()) == 255 * 50 * C.COIN
    assert len(state.utxos) == 260
    # block 170: the first payment, from block 9's coinbase to Hal Finney and back as change
    payment = blocks[170].transactions[1]
    assert payment.inputs[0].prevout == _coinbase_outpoint(9)
    assert _coinbase_outpoint(9) not in state.utxos
    assert OutPoint(txid=payment.txid, index=1) not in state.utxos   # the change, spent in block 181
    at_170 = _connected(170).utxos
    assert [at_170.get(OutPoint(txid=payment.txid, index=i)) for i in range(2)] == [
        Coin(output=o, height=170, is_coinbase=False) for o in payment.outputs]
    assert OutPoint(txid=blocks[0].transactions[0].txid, index=0) not in state.utxos   # genesis: unspendable


def test_disconnecting_every_block_restores_each_prior_utxo_set() -> None:
    state = Chainstate(MAINNET, verify_script=None)
    snapshots = [dict(state.utxos.coins)]
    for block in _early_blocks()[1:]:
        state.connect(block, adjusted_time_s=block.header.time)
        snapshots.append(dict(state.utxos.coins))
    for height in range(255, 0, -1):
        assert state.utxos.coins == snapshots[height]
        undo = state.disconnect_tip()
        assert undo.height == height
        assert state.utxos.coins == snapshots[height - 1]
    assert state.utxos.best_block == MAINNET.genesis_hash
    assert len(state.utxos) == 0
    with pytest.raises(LocalProtocolError):
        state.disconnect_tip()


@pytest.mark.parametrize("name", list(BIG_BLOCKS))
def test_later_blocks_pass_every_check_without_their_parents_outputs(name: str) -> None:
    """Proof of work, merkle root, sizes, weight, coinbase, sigops, BIP34's
    height, the witness commitment. The parent's median time past is not in
    the data; it is below the block's time, so ``time - 1`` is the most a
    lock-time check may assume."""
    block, height = _big_block(name), BIG_BLOCKS[name]
    check_block(block, MAINNET)
    contextual_check_block(block, height=height, prev_median_time_past_s=block.header.time - 1, params=MAINNET)
    assert block.weight <= C.MAX_BLOCK_WEIGHT
    coinbase = block.transactions[0]
    assert coinbase.inputs[0].script_sig.startswith(coinbase_height_script(height)) == (height >= MAINNET.bip34_height)
    assert (witness_commitment_index(coinbase) is not None) == (height >= MAINNET.segwit_height)
    assert sum(o.value for o in coinbase.outputs) >= block_subsidy(height, MAINNET)


def test_the_subsidy_halves_every_210000_blocks() -> None:
    assert block_subsidy(0, MAINNET) == 50 * C.COIN
    assert block_subsidy(209_999, MAINNET) == 50 * C.COIN
    assert block_subsidy(210_000, MAINNET) == 25 * C.COIN
    assert block_subsidy(630_000, MAINNET) == 625_000_000
    assert block_subsidy(840_000, MAINNET) == 312_500_000
    assert block_subsidy(33 * 210_000, MAINNET) == 0          # 50 BTC >> 33
    assert block_subsidy(64 * 210_000, MAINNET) == 0          # no shift by 64 or more
    total = sum(block_subsidy(h * 210_000, MAINNET) * 210_000 for h in range(64))
    assert total == 2_099_999_997_690_000 < C.MAX_MONEY      # the famous just-under-21M


# -- CheckBlock, broken --------------------------------------------------------------------------

def test_an_altered_block_loses_its_proof_of_work() -> None:
    block = _early_blocks()[1]
    altered = _with_txs(block, [_coinbase(1)])
    assert _rule(lambda: check_block(altered, MAINNET)) == "high-hash"


def test_a_changed_merkle_root_is_bad_txnmrklroot() -> None:
    block = _early_blocks()[170]
    altered = replace(block, header=replace(block.header, merkle_root=bytes(32)))
    assert _rule(lambda: check_block(altered, MAINNET, check_pow=False)) == "bad-txnmrklroot"


def test_a_repeated_last_transaction_keeps_the_root_and_is_bad_txns_duplicate() -> None:
    """CVE-2012-2459 on a real block: 213 transactions hash to the same root
    as the same 213 with the last repeated, so the real header (and its
    proof of work) still fits."""
    block = _big_block("mainnet_277647.dat")
    assert len(block.transactions) % 2 == 1
    mutated = replace(block, transactions=(*block.transactions, block.transactions[-1]))
    assert merkle_root([tx.txid for tx in mutated.transactions])[0] == block.header.merkle_root
    assert _rule(lambda: check_block(mutated, MAINNET)) == "bad-txns-duplicate"


def test_block_shape_rules() -> None:
    b170, b1 = _early_blocks()[170], _early_blocks()[1]
    cb, payment = b170.transactions
    empty = Block(header=replace(b1.header, merkle_root=bytes(32)), transactions=())
    assert _rule(lambda: check_block(empty, MAINNET, check_pow=False)) == "bad-blk-length"
    assert _rule(lambda: check_block(_with_txs(b170, [payment, cb]), MAINNET, check_pow=False)) == "bad-cb-missing"
    two_coinbases = _with_txs(b170, [cb, payment, b1.transactions[0]])
    assert _rule(lambda: check_block(two_coinbases, MAINNET, check_pow=False)) == "bad-cb-multiple"
    negative = replace(payment, outputs=(replace(payment.outputs[0], value=-1), payment.outputs[1]))
    assert _rule(lambda: check_block(_with_txs(b170, [cb, negative]), MAINNET, check_pow=False)) == "bad-txns-vout-negative"
    check_block(_with_txs(b170, [cb, payment]), MAINNET, check_pow=False)


def test_more_than_20000_legacy_sigops_is_bad_blk_sigops() -> None:
    """Legacy counting: CHECKMULTISIG counts 20, x4 for the cost; 80,000 is the limit itself."""
    b1 = _early_blocks()[1]

    def with_multisigs(n: int) -> Block:
        coinbase = replace(b1.transactions[0], outputs=(TxOut(value=0, script_pubkey=bytes((OP.CHECKMULTISIG,)) * n),))
        return _with_txs(b1, [coinbase])

    check_block(with_multisigs(1000), MAINNET, check_pow=False)
    assert _rule(lambda: check_block(with_multisigs(1001), MAINNET, check_pow=False)) == "bad-blk-sigops"


# -- ContextualCheckBlock, broken ----------------------------------------------------------------

def test_the_coinbase_must_start_with_the_height_after_bip34() -> None:
    block = _big_block("mainnet_277647.dat")
    assert _rule(lambda: contextual_check_block(block, height=277648, prev_median_time_past_s=0, params=MAINNET)) \
        == "bad-cb-height"
    assert coinbase_height_script(277647) == bytes.fromhex("038f3c04")
    assert coinbase_height_script(16) == bytes((OP._16,))
    assert coinbase_height_script(17) == bytes.fromhex("0111")
    assert coinbase_height_script(128) == bytes.fromhex("028000")


def test_a_locked_transaction_is_bad_txns_nonfinal() -> None:
    b170 = _early_blocks()[170]
    cb, payment = b170.transactions

    def check(locktime: int, sequence: int) -> None:
        tx = replace(payment, locktime=locktime, inputs=(replace(payment.inputs[0], sequence=sequence),))
        contextual_check_block(Block(header=b170.header, transactions=(cb, tx)), height=170,
                               prev_median_time_past_s=0, params=MAINNET)

    check(169, 0)
    check(170, C.SEQUENCE_FINAL)           # every sequence final: the lock time is ignored
    assert _rule(lambda: check(170, 0)) == "bad-txns-nonfinal"
    check(b170.header.time - 1, 0)         # a unix time: compared with the block's time before CSV
    assert _rule(lambda: check(b170.header.time, 0)) == "bad-txns-nonfinal"
    # BIP113: once CSV is active, with the parent's median time past instead
    csv_now = replace(MAINNET, csv_height=0)
    tx = replace(payment, locktime=C.LOCKTIME_THRESHOLD + 1000, inputs=(replace(payment.inputs[0], sequence=0),))
    block = Block(header=b170.header, transactions=(cb, tx))
    contextual_check_block(block, height=170, prev_median_time_past_s=C.LOCKTIME_THRESHOLD + 1001, params=csv_now)
    assert _rule(lambda: contextual_check_block(block, height=170, prev_median_time_past_s=C.LOCKTIME_THRESHOLD + 1000,
                                                params=csv_now)) == "bad-txns-nonfinal"


def test_connect_block_does_not_trust_the_caller_with_check_block_rules() -> None:
    """Duplicate inputs (CVE-2018-17144) and misplaced coinbases are CheckBlock's
    rules; connecting an unchecked block still names them, never a traceback."""
    state = _connected()
    coin = _coinbase_outpoint(10)
    twice = replace(_spend(coin, value=C.COIN), inputs=(TxIn(prevout=coin, script_sig=b""),) * 2)
    before = dict(state.utxos.coins)
    assert _rule(lambda: _connect(state.utxos, _next_block(state, [twice]), 256)) == "bad-txns-inputs-missingorspent"
    assert state.utxos.coins == before
    no_coinbase = _with_txs(_next_block(state, []), [_spend(coin, value=C.COIN)])
    assert _rule(lambda: _connect(state.utxos, no_coinbase, 256)) == "bad-cb-missing"
    assert _rule(lambda: _connect(state.utxos, _with_txs(no_coinbase, []), 256)) == "bad-cb-missing"
    two = _next_block(state, [_coinbase(256)])
    assert _rule(lambda: _connect(state.utxos, two, 256)) == "bad-cb-multiple"
    assert state.utxos.coins == before


def test_witness_commitment_rules() -> None:
    block = _big_block("mainnet_540107.bin")
    coinbase = block.transactions[0]
    cb_input = coinbase.inputs[0]

    def with_coinbase_witness(witness: tuple[bytes, ...]) -> Block:
        cb = replace(coinbase, inputs=(replace(cb_input, witness=witness),))
        return replace(block, transactions=(cb, *block.transactions[1:]))

    def rule(b: Block, params=MAINNET) -> str:   # type: ignore[no-untyped-def]
        return _rule(lambda: contextual_check_block(b, height=540107, prev_median_time_past_s=b.header.time - 1,
                                                    params=params))

    assert len(cb_input.witness) == 1
    assert rule(with_coinbase_witness((bytes(31),))) == "bad-witness-nonce-size"
    assert rule(with_coinbase_witness((bytes(32), bytes(32)))) == "bad-witness-nonce-size"
    assert rule(with_coinbase_witness((b"\x01" * 32,))) == "bad-witness-merkle-match"
    spender = next(i for i, tx in enumerate(block.transactions) if tx.has_witness and i > 0)
    stripped = replace(block.transactions[spender],
                       inputs=tuple(replace(i, witness=()) for i in block.transactions[spender].inputs))
    txs = list(block.transactions)
    txs[spender] = stripped
    assert rule(replace(block, transactions=tuple(txs))) == "bad-witness-merkle-match"
    assert rule(block, replace(MAINNET, segwit_height=10**9)) == "unexpected-witness"


def test_a_block_over_4m_weight_is_bad_blk_weight() -> None:
    """Block 277647 (pre-segwit, 149 KB) with 900 KB more in an output: weight
    counts every non-witness byte four times."""
    block = _big_block("mainnet_277647.dat")
    tx = block.transactions[1]
    heavy = replace(tx, outputs=(*tx.outputs, TxOut(value=0, script_pubkey=bytes(900_000))))
    altered = replace(block, transactions=(block.transactions[0], heavy, *block.transactions[2:]))
    assert altered.weight > C.MAX_BLOCK_WEIGHT
    assert _rule(lambda: contextual_check_block(altered, height=277647, prev_median_time_past_s=0, params=MAINNET)) \
        == "bad-blk-weight"


# -- ConnectBlock, broken ------------------------------------------------------------------------

def test_a_coinbase_paying_one_satoshi_too_much_is_bad_cb_amount() -> None:
    b1 = _early_blocks()[1]
    cb = b1.transactions[0]
    greedy = replace(cb, outputs=(replace(cb.outputs[0], value=50 * C.COIN + 1),))
    utxos = UtxoSet()
    utxos.best_block = MAINNET.genesis_hash
    assert _rule(lambda: _connect(utxos, _with_txs(b1, [greedy]), 1)) == "bad-cb-amount"
    assert len(utxos) == 0
    assert utxos.best_block == MAINNET.genesis_hash
    _connect(utxos, b1, 1)
    assert len(utxos) == 1


def test_spending_a_coinbase_before_100_blocks_is_premature() -> None:
    state = _connected(1)
    b2 = _early_blocks()[2]
    spend = _spend(_coinbase_outpoint(1), value=50 * C.COIN)
    altered = _with_txs(b2, [*b2.transactions, spend])
    assert _rule(lambda: _connect(state.utxos, altered, 2)) == "bad-txns-premature-spend-of-coinbase"
    state = _connected()
    spent_heights = {tx.inputs[0].prevout for b in _early_blocks() for tx in b.transactions[1:]}
    for height, ok in ((157, False), (156, True)):   # at height 256: 99 and 100 blocks deep
        assert _coinbase_outpoint(height) not in spent_heights
        block = _next_block(state, [_spend(_coinbase_outpoint(height), value=50 * C.COIN)])
        if ok:
            _connect(state.utxos, block, 256)
        else:
            assert _rule(lambda b=block: _connect(state.utxos, b, 256)) == "bad-txns-premature-spend-of-coinbase"


def test_double_spends_are_missingorspent() -> None:
    state = _connected()
    before = dict(state.utxos.coins)
    coin = _coinbase_outpoint(10)
    twice = _next_block(state, [_spend(coin, value=C.COIN), _spend(coin, value=2 * C.COIN)])
    assert _rule(lambda: _connect(state.utxos, twice, 256)) == "bad-txns-inputs-missingorspent"
    assert state.utxos.coins == before
    missing = _next_block(state, [_spend(OutPoint(txid=b"\x07" * 32, index=0), value=1)])
    assert _rule(lambda: _connect(state.utxos, missing, 256)) == "bad-txns-inputs-missingorspent"
    first = _next_block(state, [_spend(coin, value=C.COIN)], fees=49 * C.COIN)
    _connect(state.utxos, first, 256)
    again = Block(header=replace(first.header, prev_block=first.hash),
                  transactions=(_coinbase(257), _spend(coin, value=2 * C.COIN)))
    assert _rule(lambda: _connect(state.utxos, again, 257)) == "bad-txns-inputs-missingorspent"


def test_amount_rules() -> None:
    utxos = UtxoSet()
    rich = OutPoint(txid=b"\x01" * 32, index=0)
    other = OutPoint(txid=b"\x02" * 32, index=0)
    for op in (rich, other):
        utxos.coins[op] = Coin(output=TxOut(value=C.MAX_MONEY, script_pubkey=b""), height=1, is_coinbase=False)
    assert check_tx_inputs(_spend(rich, value=C.MAX_MONEY - 5), utxos, 2) == (5, [utxos.get(rich)])
    assert _rule(lambda: check_tx_inputs(_spend(rich, other, value=1), utxos, 2)) == "bad-txns-inputvalues-outofrange"
    assert _rule(lambda: check_tx_inputs(_spend(rich, value=C.MAX_MONEY + 1), utxos, 2)) == "bad-txns-in-belowout"
    assert _rule(lambda: check_tx_inputs(_spend(rich, value=-1), utxos, 2)) == "bad-txns-fee-outofrange"
    utxos.best_block = b"\x09" * 32
    header = replace(_early_blocks()[2].header, prev_block=utxos.best_block)
    block = Block(header=header, transactions=(_coinbase(2), _spend(rich, value=0), _spend(other, value=0)))
    assert _rule(lambda: _connect(utxos, block, 2)) == "bad-txns-accumulated-fee-outofrange"


def test_a_block_recreating_an_unspent_coinbase_breaks_bip30_unless_exempt() -> None:
    """Before BIP34 two coinbases could be identical; BIP30 forbids
    overwriting an unspent one (mainnet's two exempt blocks aside)."""
    state = _connected(1)
    b1, b2 = _early_blocks()[1], _early_blocks()[2]
    repeat = _with_txs(b2, [b1.transactions[0]])
    assert _rule(lambda: _connect(state.utxos, repeat, 2)) == "bad-txns-BIP30"
    exempt = replace(MAINNET, bip30_exempt=((2, repeat.hash),))
    before = dict(state.utxos.coins)
    undo = _connect(state.utxos, repeat, 2, params=exempt)
    assert state.utxos.get(_coinbase_outpoint(1)) == Coin(output=b1.transactions[0].outputs[0], height=2, is_coinbase=True)
    disconnect_block(state.utxos, undo)
    assert state.utxos.coins == before        # the overwritten coin is back, height 1


def _p2sh_coins(utxos: UtxoSet, redeem: bytes, n: int) -> list[OutPoint]:
    spk = bytes((OP.HASH160, 20)) + hash160(redeem) + bytes((OP.EQUAL,))
    outpoints = [OutPoint(txid=hash256(bytes([i])), index=0) for i in range(n)]
    for op in outpoints:
        utxos.coins[op] = Coin(output=TxOut(value=C.COIN, script_pubkey=spk), height=1, is_coinbase=False)
    return outpoints


def test_p2sh_sigops_count_against_the_block_limit() -> None:
    """500 CHECKSIGs in a redeem script cost 2,000; 40 such inputs reach the
    80,000 limit exactly, 41 pass it."""
    redeem = bytes((OP.CHECKSIG,)) * 500
    for n, ok in ((40, True), (41, False)):
        utxos = UtxoSet()
        utxos.best_block = b"\x09" * 32
        spend = _spend(*_p2sh_coins(utxos, redeem, n), value=n * C.COIN, script_sig=push_data(redeem))
        header = replace(_early_blocks()[2].header, prev_block=utxos.best_block)
        block = Block(header=header, transactions=(_coinbase(2), spend))
        if ok:
            _connect(utxos, block, 2)
        else:
            assert _rule(lambda b=block, u=utxos: _connect(u, b, 2)) == "bad-blk-sigops"


def test_transaction_sigop_cost_counts_p2sh_and_witness_programs() -> None:
    key = b"\x02" + bytes(32)
    multisig = bytes((OP._1,)) + push_data(key) * 3 + bytes((OP._1 + 2, OP.CHECKMULTISIG))   # 1-of-3
    p2sh = bytes((OP.HASH160, 20)) + hash160(multisig) + bytes((OP.EQUAL,))
    p2wpkh = bytes((OP._0, 20)) + bytes(20)
    p2wsh = bytes((OP._0, 32)) + bytes(32)
    p2sh_p2wpkh = bytes((OP.HASH160, 20)) + hash160(p2wpkh) + bytes((OP.EQUAL,))
    op = OutPoint(txid=b"\x03" * 32, index=0)
    flags = script_flags(500_000, MAINNET)

    def cost(spk: bytes, script_sig: bytes = b"", witness: tuple[bytes, ...] = (), f: VerifyFlags = flags) -> int:
        tx = Transaction(version=1, locktime=0, outputs=(TxOut(value=0, script_pubkey=b""),),
                         inputs=(TxIn(prevout=op, script_sig=script_sig, witness=witness),))
        return transaction_sigop_cost(tx, [TxOut(value=0, script_pubkey=spk)], f)

    assert cost(p2sh, push_data(b"") + push_data(multisig)) == 3 * 4            # accurate: 3 keys, x4
    assert cost(p2sh, push_data(multisig), f=VerifyFlags.NONE) == 0                  # without P2SH only legacy (none)
    assert cost(p2sh, bytes((OP.NOP,)) + push_data(multisig)) == 0              # not push-only: nothing
    assert cost(p2wpkh, witness=(b"sig", key)) == 1
    assert cost(p2wsh, witness=(b"", b"sig", multisig)) == 3                   # witness sigops count x1
    assert cost(p2wsh, witness=(b"", b"sig", multisig), f=VerifyFlags.P2SH) == 0
    assert cost(p2sh_p2wpkh, push_data(p2wpkh), witness=(b"sig", key)) == 1
    p2pkh = bytes((OP.DUP, OP.HASH160, 20)) + bytes(20) + bytes((OP.EQUALVERIFY, OP.CHECKSIG))
    assert cost(p2pkh) == 0                   # the spent output's CHECKSIG counted where it was created
    created = Transaction(version=1, locktime=0, inputs=(TxIn(prevout=op, script_sig=b""),),
                          outputs=(TxOut(value=0, script_pubkey=p2pkh),))
    assert transaction_sigop_cost(created, [TxOut(value=0, script_pubkey=b"")], flags) == 4


def test_script_flags_by_height_and_the_exception_blocks() -> None:
    F = VerifyFlags
    assert script_flags(170, MAINNET) == F.P2SH | F.WITNESS | F.TAPROOT
    assert script_flags(MAINNET.bip66_height, MAINNET) == F.P2SH | F.WITNESS | F.TAPROOT | F.DERSIG
    assert script_flags(MAINNET.segwit_height, MAINNET) == (
        F.P2SH | F.WITNESS | F.TAPROOT | F.DERSIG | F.CHECKLOCKTIMEVERIFY | F.CHECKSEQUENCEVERIFY | F.NULLDUMMY)
    bip16_exception, _ = MAINNET.script_flag_exceptions[0]
    assert script_flags(170_060, MAINNET, bip16_exception) == F.NONE


def test_every_input_script_goes_through_the_verifier() -> None:
    state = _connected(169)
    b170 = _early_blocks()[170]
    calls = []

    def verify(tx: Transaction, spent: object, flags: VerifyFlags) -> None:
        calls.append((tx.txid, list(spent), flags))   # type: ignore[call-overload]

    utxos_before = dict(state.utxos.coins)
    _connect(state.utxos, b170, 170, verify=verify)
    assert calls == [(b170.transactions[1].txid, [utxos_before[_coinbase_outpoint(9)].output],
                      VerifyFlags.P2SH | VerifyFlags.WITNESS | VerifyFlags.TAPROOT)]
    state = _connected(169)

    def refuse(tx: Transaction, spent: object, flags: VerifyFlags) -> None:
        raise ScriptFailure("EVAL_FALSE", "refused")

    assert _rule(lambda: _connect(state.utxos, b170, 170, verify=refuse)) == "mandatory-script-verify-flag-failed"
    assert state.utxos.coins == utxos_before


def test_bip68_relative_lock_times_are_bad_txns_nonfinal() -> None:
    """A version 2 input with sequence n may be mined n blocks after its coin
    (height lock), or n x 512 s of median time past after (time lock)."""
    csv_now = replace(MAINNET, csv_height=0)
    coin = _coinbase_outpoint(10)            # height 10; the new block is 256
    for sequence, ok in ((246, True), (247, False), (247 | C.SEQUENCE_LOCKTIME_DISABLE_FLAG, True)):
        state = _connected()
        block = _next_block(state, [_spend(coin, value=50 * C.COIN, version=2, sequence=sequence)])
        call = lambda b=block, s=state: connect_block(s.utxos, b, height=256, params=csv_now,  # noqa: E731
                                                      median_time_past_at=lambda h: 1_000_000 + h, verify_script=None)
        if ok:
            call()
        else:
            assert _rule(call) == "bad-txns-nonfinal"
    # time lock: coin's "time" is the median time past at height 9 (1,000,009); the block's is 1,000,255
    for units, ok in ((0, True), (1, False)):
        state = _connected()
        tx = _spend(coin, value=50 * C.COIN, version=2, sequence=C.SEQUENCE_LOCKTIME_TYPE_FLAG | units)
        block = _next_block(state, [tx])
        call = lambda b=block, s=state: connect_block(s.utxos, b, height=256, params=csv_now,  # noqa: E731
                                                      median_time_past_at=lambda h: 1_000_000 + h, verify_script=None)
        if ok:
            call()
        else:
            assert _rule(call) == "bad-txns-nonfinal"


def test_a_block_must_extend_the_utxo_tip() -> None:
    utxos = UtxoSet()
    with pytest.raises(LocalProtocolError):
        _connect(utxos, _early_blocks()[2], 2)


def test_block_170_first_payment_verifies_with_the_interpreter() -> None:
    """The first peer-to-peer payment spends block 9's P2PK coinbase with a
    real signature: blocks 1-255 connect with the script interpreter
    verifying every input, and block 170 with its signature cut short is
    rejected."""
    state = Chainstate(MAINNET)   # (the interpreter's verify_transaction by default)
    for block in _early_blocks()[1:]:   # block 170's payment and the six later spends, every signature checked
        state.connect(block, adjusted_time_s=block.header.time)
    assert state.height == 255
    while state.height > 169:
        state.disconnect_tip()
    b170 = _early_blocks()[170]
    tampered_sig = replace(b170.transactions[1], inputs=(replace(b170.transactions[1].inputs[0],
                                                                  script_sig=b170.transactions[1].inputs[0].script_sig[:-1]),))
    altered = _with_txs(b170, [b170.transactions[0], tampered_sig])
    assert _rule(lambda: _connect(state.utxos, altered, 170, verify=verify_transaction)) == "mandatory-script-verify-flag-failed"
