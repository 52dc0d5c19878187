"""The mempool (Core's ``txmempool.cpp``, ``MemPoolAccept``, ``TxOrphanage``,
``BlockAssembler``): acceptance and its reject reasons, chains of
unconfirmed transactions, orphans, the size bound and the rolling minimum
fee, block templates by ancestor fee rate (CPFP), blocks connected and
disconnected. Most transactions pay to OP_TRUE and go through a no-op
script verifier; one spends a P2WPKH output signed with coincurve through
the real interpreter."""

from __future__ import annotations

import random
from collections.abc import Sequence

import msgspec
import pytest
from coincurve import PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synod.bitcoin import OutPoint, RuleViolation, Transaction, TxIn, TxOut, parse_transaction
from synod.bitcoin import constants as C
from synod.bitcoin._context import VerifyFlags
from synod.bitcoin._hashes import hash160, hash256
from synod.bitcoin.chain import Coin, UtxoSet, connect_block, disconnect_block
from synod.bitcoin.mempool import (
    ORPHAN_TRANSACTIONS_MAX,
    ORPHAN_TX_EXPIRE_S,
    AcceptResult,
    Mempool,
    MempoolPolicy,
    dust_threshold_sat,
    output_type,
)
from synod.bitcoin.pow import REGTEST
from synod.bitcoin.primitives import Block, BlockHeader, merkle_root
from synod.bitcoin.script import OP, push_bytes
from synod.bitcoin.sighash import SIGHASH_ALL, PrecomputedTransaction, segwit_v0_sighash
from synod.bitcoin.validation import coinbase_height_script
from synod.core.errors import ConfigError

OP_TRUE = bytes((OP._1,))
PAD = push_bytes(b"pad!") + bytes((OP.DROP,))   # a clean-stack scriptSig making a 1-in 1-out spend 67 bytes
TIP_HEIGHT = 200
MTP_S = 1_700_000_000
NOW_S = MTP_S + 600
VSIZE = 67                                      # of a 1-input 1-output spend built by spend()
NONSTANDARD = MempoolPolicy(require_standard=False)


def no_scripts(tx: Transaction, spent: Sequence[TxOut], flags: VerifyFlags) -> None:
    """A verifier that accepts every script (the scripts are OP_TRUE)."""


def funded(n: int = 8, value: int = C.COIN) -> tuple[UtxoSet, list[tuple[OutPoint, int]]]:
    """A UTXO set of ``n`` confirmed OP_TRUE coins of ``value`` sat."""
    utxos = UtxoSet()
    coins = []
    for i in range(n):
        outpoint = OutPoint(txid=hash256(b"fund" + bytes((i,))), index=0)
        utxos.coins[outpoint] = Coin(output=TxOut(value=value, script_pubkey=OP_TRUE), height=10, is_coinbase=False)
        coins.append((outpoint, value))
    return utxos, coins


def spend(*inputs: tuple[OutPoint, int], fee: int, outputs: int = 1, script: bytes = OP_TRUE, locktime: int = 0,
          sequence: int = C.SEQUENCE_FINAL, script_sig: bytes = PAD) -> Transaction:
    """A transaction spending ``inputs`` ((outpoint, value) pairs), paying
    ``fee`` and splitting the rest evenly over ``outputs`` outputs."""
    total = sum(value for _, value in inputs) - fee
    values = [total // outputs] * outputs
    values[0] += total - sum(values)
    return Transaction(version=2, locktime=locktime,
                       inputs=tuple(TxIn(prevout=o, script_sig=script_sig, sequence=sequence) for o, _ in inputs),
                       outputs=tuple(TxOut(value=v, script_pubkey=script) for v in values))


def out(tx: Transaction, index: int = 0) -> tuple[OutPoint, int]:
    return OutPoint(txid=tx.txid, index=index), tx.outputs[index].value


def pool(policy: MempoolPolicy = NONSTANDARD, **kwargs: object) -> Mempool:
    return Mempool(policy, verify=no_scripts, **kwargs)   # type: ignore[arg-type]


def accept(mempool: Mempool, tx: Transaction, utxos: UtxoSet, now_s: int = NOW_S, height: int = TIP_HEIGHT) -> AcceptResult:
    return mempool.accept(tx, utxos, height, MTP_S, now_s=now_s)


def rule(mempool: Mempool, tx: Transaction, utxos: UtxoSet, now_s: int = NOW_S, height: int = TIP_HEIGHT) -> str:
    with pytest.raises(RuleViolation) as e:
        accept(mempool, tx, utxos, now_s, height)
    return e.value.rule


def test_accept_adds_a_transaction_with_its_fee_and_vsize() -> None:
    utxos, coins = funded()
    mempool = pool()
    tx = spend(coins[0], fee=1000)
    result = accept(mempool, tx, utxos)
    assert (result.orphan, result.fee_sat, result.vsize, result.accepted) == (False, 1000, VSIZE, (tx.txid,))
    assert tx.txid in mempool and mempool.get(tx.txid) == tx and mempool.txids() == (tx.txid,)
    entry = mempool.entry(tx.txid)
    assert entry is not None
    assert (entry.fee_sat, entry.vsize, entry.time_s, entry.height) == (1000, VSIZE, NOW_S, TIP_HEIGHT)
    assert (entry.ancestor_count, entry.descendant_count) == (1, 1)
    info = mempool.info()
    assert (info.size, info.vbytes, info.total_fee_sat, info.min_fee_sat_per_kvb) == (1, VSIZE, 1000, 0)
    assert rule(mempool, tx, utxos) == "txn-already-in-mempool"
    mempool.check()


def test_a_double_spend_is_a_conflict_and_the_first_seen_stays() -> None:
    """No replacement by fee: the first transaction spending an outpoint wins."""
    utxos, coins = funded()
    mempool = pool()
    first = spend(coins[0], fee=1000)
    accept(mempool, first, utxos)
    richer = spend(coins[0], coins[1], fee=50_000)
    assert rule(mempool, richer, utxos) == "txn-mempool-conflict"
    assert mempool.txids() == (first.txid,)
    assert mempool.spender(coins[0][0]) == first.txid and mempool.spender(coins[1][0]) is None


def test_chains_of_unconfirmed_transactions_track_ancestors_and_descendants() -> None:
    utxos, coins = funded()
    mempool = pool()
    chain = [spend(coins[0], fee=1000)]
    for _ in range(24):
        chain.append(spend(out(chain[-1]), fee=1000))
    for tx in chain:
        accept(mempool, tx, utxos)
    mempool.check()
    head, tail = mempool.entry(chain[0].txid), mempool.entry(chain[-1].txid)
    assert head is not None and tail is not None
    assert (head.ancestor_count, head.descendant_count, head.descendant_fee_sat) == (1, 25, 25_000)
    assert (tail.ancestor_count, tail.ancestor_vsize, tail.depends) == (25, 25 * VSIZE, (chain[-2].txid,))
    assert rule(mempool, spend(out(chain[-1]), fee=1000), utxos) == "too-long-mempool-chain"   # 26 with it
    assert mempool.txids() == tuple(tx.txid for tx in chain)
    over = spend(out(chain[3]), fee=10_000)   # an output the pool holds but that does not exist
    over = msgspec.structs.replace(over, inputs=(TxIn(prevout=OutPoint(txid=chain[3].txid, index=5), script_sig=PAD),))
    assert rule(mempool, over, utxos) == "bad-txns-inputs-missingorspent"


def test_an_orphan_waits_for_its_parents_and_enters_when_they_arrive() -> None:
    utxos, coins = funded()
    mempool = pool()
    parent = spend(coins[0], fee=1000, outputs=2)
    child = spend(out(parent), fee=1000)
    grandchild = spend(out(child), fee=1000)
    other = spend(coins[1], fee=1000)
    both = spend(out(parent, 1), out(other), fee=1000)   # two parents, both missing
    for orphan in (grandchild, child, both):
        result = accept(mempool, orphan, utxos)
        assert result.orphan and orphan.txid not in mempool
    assert accept(mempool, both, utxos).missing_parents == (parent.txid, other.txid)
    assert mempool.orphan_txids() == (grandchild.txid, child.txid, both.txid)
    assert accept(mempool, other, utxos).accepted == (other.txid,)   # `both` still waits for `parent`
    result = accept(mempool, parent, utxos)
    assert result.accepted == (parent.txid, child.txid, both.txid, grandchild.txid)
    assert mempool.orphan_txids() == ()
    mempool.check()


def test_an_orphan_invalid_once_its_parent_arrives_is_dropped() -> None:
    utxos, coins = funded()
    mempool = pool()
    parent = spend(coins[0], fee=1000)
    greedy = Transaction(version=2, locktime=0, inputs=(TxIn(prevout=out(parent)[0], script_sig=PAD),),
                         outputs=(TxOut(value=2 * C.COIN, script_pubkey=OP_TRUE),))
    assert accept(mempool, greedy, utxos).orphan
    result = accept(mempool, parent, utxos)
    assert (result.accepted, result.removed, mempool.orphan_txids()) == ((parent.txid,), (greedy.txid,), ())


def _orphans(n: int) -> list[Transaction]:
    return [spend((OutPoint(txid=hash256(b"unknown" + i.to_bytes(2, "big")), index=0), C.COIN), fee=1000)
            for i in range(n)]


def test_the_orphan_pool_is_bounded_by_count_and_bytes_and_expires() -> None:
    utxos, _ = funded()
    mempool = pool()
    orphans = _orphans(ORPHAN_TRANSACTIONS_MAX + 1)
    for tx in orphans[:-1]:
        accept(mempool, tx, utxos)
    result = accept(mempool, orphans[-1], utxos)
    assert result.removed == (orphans[0].txid,)   # the oldest goes
    assert mempool.orphan_txids() == tuple(tx.txid for tx in orphans[1:])
    small = pool(msgspec.structs.replace(NONSTANDARD, orphan_tx_bytes_max=3 * VSIZE))
    for tx in orphans[:4]:
        accept(small, tx, utxos)
    assert small.orphan_txids() == tuple(tx.txid for tx in orphans[1:4])
    accept(small, orphans[10], utxos, now_s=NOW_S + ORPHAN_TX_EXPIRE_S)   # the rest expire as it comes
    assert small.orphan_txids() == (orphans[10].txid,)
    small.check()


def test_random_orphan_eviction_is_decided_by_the_seed() -> None:
    utxos, _ = funded()
    orphans = _orphans(ORPHAN_TRANSACTIONS_MAX + 30)

    def survivors(seed: int) -> tuple[bytes, ...]:
        mempool = pool(rng=random.Random(seed))
        for tx in orphans:
            accept(mempool, tx, utxos)
        return mempool.orphan_txids()

    assert survivors(1) == survivors(1)
    assert survivors(1) != survivors(2)
    assert len(survivors(1)) == ORPHAN_TRANSACTIONS_MAX


def test_fee_and_amount_rules() -> None:
    utxos, coins = funded()
    mempool = pool()
    assert rule(mempool, spend(coins[0], fee=VSIZE - 1), utxos) == "min relay fee not met"
    assert rule(mempool, spend(coins[0], fee=0), utxos) == "min relay fee not met"
    assert rule(mempool, spend(coins[0], fee=-1), utxos) == "bad-txns-in-belowout"
    accept(mempool, spend(coins[0], fee=VSIZE), utxos)   # exactly 1 sat/vB


def test_context_rules() -> None:
    utxos, coins = funded()
    mempool = pool()
    coinbase = Transaction(version=1, locktime=0, inputs=(TxIn(prevout=OutPoint(txid=bytes(32), index=0xFFFFFFFF),
                                                               script_sig=b"\x01\x02"),),
                           outputs=(TxOut(value=C.COIN, script_pubkey=OP_TRUE),))
    assert rule(mempool, coinbase, utxos) == "coinbase"
    locked = spend(coins[0], fee=1000, locktime=TIP_HEIGHT + 1, sequence=0)
    assert rule(mempool, locked, utxos) == "non-final"
    accept(mempool, spend(coins[0], fee=1000, locktime=TIP_HEIGHT, sequence=0), utxos)   # final in the next block
    minted = OutPoint(txid=hash256(b"coinbase"), index=0)
    utxos.coins[minted] = Coin(output=TxOut(value=C.COIN, script_pubkey=OP_TRUE), height=TIP_HEIGHT - 98,
                               is_coinbase=True)
    assert rule(mempool, spend((minted, C.COIN), fee=1000), utxos) == "bad-txns-premature-spend-of-coinbase"
    accept(mempool, spend((minted, C.COIN), fee=1000), utxos, height=TIP_HEIGHT + 1)
    relative = spend(coins[1], fee=1000, sequence=300)   # BIP68: 300 blocks after its coin's block
    assert rule(mempool, relative, utxos) == "non-BIP68-final"
    confirmed = spend(coins[2], fee=1000)
    utxos.coins[out(confirmed)[0]] = Coin(output=confirmed.outputs[0], height=TIP_HEIGHT, is_coinbase=False)
    del utxos.coins[coins[2][0]]
    assert rule(mempool, confirmed, utxos) == "txn-already-known"


def test_standardness_rules_with_require_standard() -> None:
    p2wpkh = bytes((OP._0, 20)) + bytes(20)
    utxos, coins = funded()
    for outpoint, value in coins:
        utxos.coins[outpoint] = Coin(output=TxOut(value=value, script_pubkey=p2wpkh), height=10, is_coinbase=False)
    mempool = pool(MempoolPolicy())
    assert rule(mempool, spend(coins[0], fee=1000, script_sig=b""), utxos) == "scriptpubkey"   # pays to OP_TRUE
    assert rule(mempool, spend(coins[0], fee=1000, script=p2wpkh), utxos) == "scriptsig-not-pushonly"
    assert dust_threshold_sat(TxOut(value=0, script_pubkey=p2wpkh)) == 294
    p2pkh = bytes((OP.DUP, OP.HASH160, 20)) + bytes(20) + bytes((OP.EQUALVERIFY, OP.CHECKSIG))
    assert dust_threshold_sat(TxOut(value=0, script_pubkey=p2pkh)) == 546
    dusty = spend(coins[0], fee=C.COIN - 293, script=p2wpkh, script_sig=b"")
    assert rule(mempool, dusty, utxos) == "dust"
    heavy = spend(coins[0], fee=1000, script=p2wpkh, script_sig=push_bytes(bytes(1700)))
    assert rule(mempool, heavy, utxos) == "scriptsig-size"
    big = spend(coins[0], fee=1000, outputs=3500, script=p2wpkh, script_sig=b"")
    assert rule(mempool, big, utxos) == "tx-size"
    assert rule(mempool, spend(coins[0], fee=1000, outputs=2, script=bytes((OP.RETURN,)), script_sig=b""),
                utxos) == "multi-op-return"
    ok = spend(coins[0], fee=C.COIN - 294, script=p2wpkh, script_sig=b"")
    assert accept(mempool, ok, utxos).accepted == (ok.txid,)
    assert [output_type(s) for s in (p2wpkh, p2pkh, OP_TRUE, bytes((OP.RETURN, 1, 7)))] == [
        "witness_v0_keyhash", "pubkeyhash", None, "nulldata"]


def test_a_full_pool_evicts_the_lowest_fee_rate_package_and_raises_its_minimum_fee() -> None:
    utxos, coins = funded()
    mempool = pool(msgspec.structs.replace(NONSTANDARD, mempool_vbytes_max=3 * VSIZE))
    low, mid, high = (spend(coins[i], fee=VSIZE * rate) for i, rate in ((0, 2), (1, 3), (2, 4)))
    for tx in (low, mid, high):
        accept(mempool, tx, utxos)
    result = accept(mempool, spend(coins[3], fee=VSIZE * 5), utxos)
    assert result.removed == (low.txid,)
    assert mempool.info().min_fee_sat_per_kvb == 2000 + 1000   # the evicted rate plus the incremental relay fee
    assert rule(mempool, spend(coins[4], fee=VSIZE * 3 - 1), utxos) == "mempool min fee not met"
    assert rule(mempool, spend(coins[4], fee=VSIZE * 3), utxos) == "mempool full"   # a tie with `mid`: the newer goes
    assert mempool.info().min_fee_sat_per_kvb == 4000                                 # and the minimum rises again
    assert accept(mempool, spend(coins[4], fee=VSIZE * 4 + 1), utxos).removed == (mid.txid,)
    assert mempool.min_fee_sat_per_kvb(NOW_S + 10 * 24 * 3600) == 4000   # no block yet: no decay
    coinbase = Transaction(version=1, locktime=0, outputs=(TxOut(value=1, script_pubkey=OP_TRUE),),
                           inputs=(TxIn(prevout=OutPoint(txid=bytes(32), index=0xFFFFFFFF), script_sig=b"\x01\x02"),))
    mempool.remove_for_block(Block(header=BlockHeader(version=4, prev_block=bytes(32), merkle_root=bytes(32), time=0,
                                                      bits=0, nonce=0), transactions=(coinbase,)))
    assert mempool.min_fee_sat_per_kvb(NOW_S + 12 * 3600) == 2000   # one half-life (the pool is full)
    assert mempool.min_fee_sat_per_kvb(NOW_S + 36 * 3600) == 1000   # 500, but never below the incremental fee
    assert mempool.min_fee_sat_per_kvb(NOW_S + 48 * 3600) == 0      # 250: below half the incremental fee, gone
    mempool.check()


def test_eviction_takes_a_package_and_a_rich_child_protects_its_parent() -> None:
    utxos, coins = funded()
    mempool = pool(msgspec.structs.replace(NONSTANDARD, mempool_vbytes_max=3 * VSIZE))
    parent = spend(coins[0], fee=VSIZE)          # 1 sat/vB
    child = spend(out(parent), fee=VSIZE * 10)   # the package: 5.5 sat/vB
    other = spend(coins[1], fee=VSIZE * 3)
    for tx in (parent, child, other):
        accept(mempool, tx, utxos)
    assert accept(mempool, spend(coins[2], fee=VSIZE * 4), utxos).removed == (other.txid,)
    assert accept(mempool, spend(coins[3], fee=VSIZE * 7), utxos).removed[0] != parent.txid
    result = accept(mempool, spend(coins[4], fee=VSIZE * 8), utxos)
    assert result.removed == (parent.txid, child.txid)   # the package goes whole
    mempool.check()


def test_block_template_orders_by_ancestor_fee_rate_and_a_child_pays_for_its_parent() -> None:
    utxos, coins = funded()
    mempool = pool()
    parent = spend(coins[0], fee=VSIZE)            # 1 sat/vB alone
    child = spend(out(parent), fee=VSIZE * 20)     # 10.5 sat/vB with its parent
    other = spend(coins[1], fee=VSIZE * 5, script=bytes((OP.CHECKSIG,)))   # 5 sat/vB, a legacy sigop (cost 4)
    for tx in (child, other, parent):
        accept(mempool, tx, utxos)
    template = mempool.block_template(C.MAX_BLOCK_WEIGHT, C.MAX_BLOCK_SIGOPS_COST)
    assert [tx.txid for tx in template.transactions] == [parent.txid, child.txid, other.txid]
    assert template.fees_sat == (VSIZE, VSIZE * 20, VSIZE * 5) and template.fee_total_sat == VSIZE * 26
    assert (template.weight, template.sigop_cost) == (3 * 4 * VSIZE, 4)
    two = mempool.block_template(2 * 4 * VSIZE, C.MAX_BLOCK_SIGOPS_COST)   # room for two: the package beats `other`
    assert [tx.txid for tx in two.transactions] == [parent.txid, child.txid]
    no_sigops = mempool.block_template(C.MAX_BLOCK_WEIGHT, 3)
    assert [tx.txid for tx in no_sigops.transactions] == [parent.txid, child.txid]
    one = mempool.block_template(4 * VSIZE, C.MAX_BLOCK_SIGOPS_COST)   # the package does not fit, `other` does
    assert [tx.txid for tx in one.transactions] == [other.txid]


def _block(txs: list[Transaction], height: int, prev: bytes) -> Block:
    coinbase = Transaction(version=1, locktime=0, outputs=(TxOut(value=C.COIN, script_pubkey=OP_TRUE),),
                           inputs=(TxIn(prevout=OutPoint(txid=bytes(32), index=0xFFFFFFFF),
                                        script_sig=coinbase_height_script(height) + b"synod"),))
    all_txs = (coinbase, *txs)
    header = BlockHeader(version=4, prev_block=prev, merkle_root=merkle_root([t.txid for t in all_txs])[0],
                         time=MTP_S + height, bits=0x207FFFFF, nonce=0)
    return Block(header=header, transactions=all_txs)


def test_a_connected_block_removes_its_transactions_and_their_conflicts() -> None:
    utxos, coins = funded()
    mempool = pool()
    confirmed = spend(coins[0], fee=1000)
    stays = spend(out(confirmed), fee=1000)
    loser = spend(coins[1], fee=1000)
    loser_child = spend(out(loser), fee=1000)
    for tx in (confirmed, stays, loser, loser_child):
        accept(mempool, tx, utxos)
    orphan = spend((OutPoint(txid=hash256(b"?"), index=0), C.COIN), coins[5], fee=1000)
    assert accept(mempool, orphan, utxos).orphan
    winner = spend(coins[1], coins[5], fee=2000)   # spends what `loser` and the orphan spend
    block = _block([confirmed, winner], TIP_HEIGHT + 1, utxos.best_block)
    connect_block(utxos, block, height=TIP_HEIGHT + 1, params=REGTEST, median_time_past_at=lambda h: MTP_S,
                  verify_script=None)
    removal = mempool.remove_for_block(block)
    assert (removal.confirmed, removal.conflicted) == ((confirmed.txid,), (loser.txid, loser_child.txid))
    assert mempool.txids() == (stays.txid,) and mempool.orphan_txids() == ()
    entry = mempool.entry(stays.txid)
    assert entry is not None and (entry.ancestor_count, entry.depends) == (1, ())
    mempool.check()


def test_a_disconnected_block_returns_its_transactions_to_the_pool() -> None:
    """A reorg: the block's transactions come back as parents of the pool's
    entries; what is no longer valid on the new tip is dropped."""
    utxos, coins = funded()
    mempool = pool()
    height = TIP_HEIGHT + 1
    confirmed = spend(coins[0], fee=1000)
    tiny = Transaction(version=2, locktime=0, inputs=(TxIn(prevout=coins[1][0], script_sig=b""),),
                       outputs=(TxOut(value=C.COIN - 1000, script_pubkey=OP_TRUE),))   # 61 bytes: tx-size-small
    block = _block([confirmed, tiny], height, utxos.best_block)
    undo = connect_block(utxos, block, height=height, params=REGTEST, median_time_past_at=lambda h: MTP_S,
                         verify_script=None)
    child = spend(out(confirmed), fee=1000)
    locked = spend(coins[2], fee=1000, locktime=height, sequence=0)   # final in block height + 1 only
    for tx in (child, locked):
        accept(mempool, tx, utxos, height=height)
    assert mempool.entry(child.txid).ancestor_count == 1   # type: ignore[union-attr]
    disconnect_block(utxos, undo)
    result = mempool.readd_after_disconnect(block.transactions, utxos, TIP_HEIGHT, MTP_S, now_s=NOW_S + 60)
    assert (result.readded, result.removed) == ((confirmed.txid,), (tiny.txid, locked.txid))
    assert mempool.txids() == (confirmed.txid, child.txid)
    entry = mempool.entry(child.txid)
    assert entry is not None and (entry.ancestor_count, entry.time_s, entry.height) == (2, NOW_S, height)
    mempool.check()
    template = mempool.block_template(C.MAX_BLOCK_WEIGHT, C.MAX_BLOCK_SIGOPS_COST)
    assert [tx.txid for tx in template.transactions] == [confirmed.txid, child.txid]


def test_a_p2wpkh_spend_signed_with_coincurve_passes_the_real_interpreter() -> None:
    key = PrivateKey(bytes([7]) * 32)
    pubkey = key.public_key.format(compressed=True)
    program = bytes((OP._0, 20)) + hash160(pubkey)
    script_code = bytes((OP.DUP, OP.HASH160, 20)) + hash160(pubkey) + bytes((OP.EQUALVERIFY, OP.CHECKSIG))
    utxos = UtxoSet()
    coin = OutPoint(txid=hash256(b"signed"), index=1)
    spent = TxOut(value=100_000, script_pubkey=program)
    utxos.coins[coin] = Coin(output=spent, height=10, is_coinbase=False)
    unsigned = Transaction(version=2, locktime=0, inputs=(TxIn(prevout=coin, script_sig=b""),),
                           outputs=(TxOut(value=99_000, script_pubkey=program),))

    def signed(hash_type: int, tamper: bool = False) -> Transaction:
        digest = segwit_v0_sighash(PrecomputedTransaction(unsigned, [spent]), 0, script_code, spent.value, hash_type)
        signature = bytearray(key.sign(digest, hasher=None))
        if tamper:
            signature[-1] ^= 1
        witness = (bytes(signature) + bytes((hash_type,)), pubkey)
        return msgspec.structs.replace(unsigned, inputs=(msgspec.structs.replace(unsigned.inputs[0], witness=witness),))

    mempool = Mempool()   # standard policy, the real interpreter
    assert rule(mempool, signed(SIGHASH_ALL, tamper=True), utxos) == "mandatory-script-verify-flag-failed"
    assert rule(mempool, signed(0x05), utxos) == "non-mandatory-script-verify-flag-failed"   # STRICTENC is policy
    tx = signed(SIGHASH_ALL)
    result = accept(mempool, tx, utxos)
    assert result.fee_sat == 1000 and result.vsize == -(-tx.weight // 4) and tx.txid in mempool


def test_invalid_policy_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        MempoolPolicy(mempool_vbytes_max=0)
    with pytest.raises(ConfigError):
        MempoolPolicy(min_relay_fee_sat_per_kvb=-1)


# -- nothing reachable from a transaction's contents raises anything but RuleViolation -----------------

def _busy_pool(policy: MempoolPolicy, real_scripts: bool) -> tuple[Mempool, UtxoSet, list[tuple[OutPoint, int]]]:
    utxos, coins = funded(4)
    setup = msgspec.structs.replace(policy, require_standard=False)
    mempool = Mempool(setup) if real_scripts else pool(setup)
    parent = spend(coins[0], fee=1000, outputs=2)
    accept(mempool, parent, utxos)
    mempool.policy = policy
    minted = OutPoint(txid=hash256(b"young coinbase"), index=0)
    utxos.coins[minted] = Coin(output=TxOut(value=C.COIN, script_pubkey=OP_TRUE), height=TIP_HEIGHT, is_coinbase=True)
    known = [*coins, out(parent), out(parent, 1), (minted, C.COIN), (OutPoint(txid=hash256(b"?"), index=3), 5),
             (OutPoint(txid=bytes(32), index=0xFFFFFFFF), 0)]
    return mempool, utxos, known


_U32 = st.integers(0, 0xFFFFFFFF)
_SCRIPT = st.one_of(st.binary(max_size=40), st.sampled_from([OP_TRUE, PAD, bytes((OP._0, 20)) + bytes(20),
                                                            bytes((OP.RETURN,)), bytes((OP.CHECKMULTISIG,))]))


@st.composite
def _transactions(draw: st.DrawFn, known: list[tuple[OutPoint, int]]) -> Transaction:
    """Mostly well-formed spends of coins the pool knows (confirmed, in the
    pool, an immature coinbase, missing, null), with any field off at times."""
    def rarely(usual: st.SearchStrategy[object], odd: st.SearchStrategy[object]) -> object:
        return draw(odd if draw(st.sampled_from([False] * 5 + [True])) else usual)

    prevouts = draw(st.lists(st.one_of(st.sampled_from([o for o, _ in known]),
                                       st.builds(OutPoint, txid=st.binary(min_size=32, max_size=32), index=_U32)),
                             min_size=1, max_size=3, unique=True))
    inputs = tuple(TxIn(prevout=p, script_sig=rarely(st.sampled_from([PAD, b""]), _SCRIPT),  # type: ignore[arg-type]
                        sequence=rarely(st.just(C.SEQUENCE_FINAL), _U32),
                        witness=tuple(draw(st.lists(st.binary(max_size=20), max_size=2)))) for p in prevouts)
    outputs = tuple(TxOut(value=rarely(st.integers(0, C.COIN // 2), st.integers(-(1 << 63), (1 << 63) - 1)),  # type: ignore[arg-type]
                          script_pubkey=draw(_SCRIPT)) for _ in range(draw(st.integers(1, 3))))
    tx = Transaction(version=rarely(st.sampled_from([2, 1]), st.integers(-(1 << 31), (1 << 31) - 1)),  # type: ignore[arg-type]
                     inputs=inputs, outputs=outputs, locktime=rarely(st.just(0), _U32))  # type: ignore[arg-type]
    if draw(st.sampled_from([False] * 9 + [True])):   # and now and then no inputs, no outputs, or a repeated input
        tx = msgspec.structs.replace(tx, **draw(st.sampled_from([{"inputs": ()}, {"outputs": ()},
                                                                {"inputs": inputs + inputs[:1]}])))
    return tx


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), standard=st.booleans(), real_scripts=st.booleans())
def test_any_transaction_is_accepted_or_a_rule_violation(data: st.DataObject, standard: bool, real_scripts: bool) -> None:
    policy = MempoolPolicy(require_standard=standard, mempool_vbytes_max=4 * VSIZE)
    mempool, utxos, known = _busy_pool(policy, real_scripts)
    txs = [data.draw(_transactions(known)) for _ in range(3)]
    for tx in txs:
        try:
            accept(mempool, tx, utxos)
        except RuleViolation:
            pass
        mempool.check()
    mempool.block_template(C.MAX_BLOCK_WEIGHT, C.MAX_BLOCK_SIGOPS_COST)
    mempool.readd_after_disconnect(txs, utxos, TIP_HEIGHT, MTP_S, now_s=NOW_S)   # as if they had been in a block
    mempool.check()
    mempool.remove_for_block(_block(txs, TIP_HEIGHT + 1, utxos.best_block))
    mempool.check()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), standard=st.booleans())
def test_any_mutated_serialization_is_accepted_or_a_rule_violation(data: st.DataObject, standard: bool) -> None:
    mempool, utxos, known = _busy_pool(MempoolPolicy(require_standard=standard), real_scripts=True)
    base = bytearray(spend(known[1], known[4], fee=2000, outputs=2).serialize())
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(base) - 1))
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip":
            base[position] = data.draw(st.integers(0, 255))
        elif action == "insert":
            base[position:position] = data.draw(st.binary(min_size=1, max_size=4))
        elif len(base) > 1:
            del base[position]
    try:
        tx = parse_transaction(bytes(base))
        accept(mempool, tx, utxos)
    except RuleViolation:
        pass
    mempool.check()
