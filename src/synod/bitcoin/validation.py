"""Header and block validity: the rules that need no UTXO set.

Bitcoin Core checks a block in layers (``validation.cpp``), and so does
this module; each broken rule raises :class:`RuleViolation` with Core's
reject reason as its ``rule``:

- :func:`check_block_header` (``CheckBlockHeader``): proof of work
  (whitepaper section 4): ``high-hash``.
- :func:`contextual_check_block_header` (``ContextualCheckBlockHeader``),
  given the chain the header extends: ``bad-diffbits`` (bits must be the
  retarget result, computed by the caller with
  :func:`synod.bitcoin.pow.next_work_required`), ``time-too-old`` (time
  must exceed the *median time past* of the previous 11 blocks),
  ``time-too-new`` (at most two hours past the caller's network-adjusted
  time: nothing here reads a clock), ``bad-version`` (BIP34/66/65 retire
  versions 1, 2 and 3 at their activation heights).
- :func:`check_block` (``CheckBlock``), context-free: the merkle root
  (whitepaper section 7; ``bad-txnmrklroot``, and ``bad-txns-duplicate``
  for a mutated tree, CVE-2012-2459), size (``bad-blk-length``), exactly
  one coinbase and first (``bad-cb-missing``, ``bad-cb-multiple``), each
  transaction's ``check_transaction``, and legacy sigops
  (``bad-blk-sigops``).
- :func:`contextual_check_block` (``ContextualCheckBlock``), given height
  and the parent's median time past: lock times (``bad-txns-nonfinal``),
  BIP34's height in the coinbase (``bad-cb-height``), BIP141's witness
  commitment (``bad-witness-nonce-size``, ``bad-witness-merkle-match``,
  ``unexpected-witness``) and weight (``bad-blk-weight``).

The subsidy schedule (whitepaper section 6; Core's ``GetBlockSubsidy``)
lives here too. The rules that need the outputs being spent are
:mod:`synod.bitcoin.chain`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from synod.bitcoin import constants as C
from synod.bitcoin._hashes import hash256
from synod.bitcoin.errors import RuleViolation
from synod.bitcoin.pow import ConsensusParams, check_proof_of_work
from synod.bitcoin.primitives import (
    NULL_HASH,
    Block,
    BlockHeader,
    Transaction,
    check_transaction,
    hash_hex,
    merkle_root,
)
from synod.bitcoin.script import OP, script_num, sigop_count

__all__ = [
    "median_time_past", "check_block_header", "contextual_check_block_header", "check_block",
    "contextual_check_block", "block_subsidy", "is_final_tx", "legacy_sigop_count", "witness_commitment_index",
    "witness_merkle_root", "coinbase_height_script", "WITNESS_COMMITMENT_HEADER", "MUTATION_RULES",
]

# Rules a block's body can break while its header is good: someone changed
# the transactions under a valid header (a duplicated merkle leaf, CVE-2012-2459;
# stripped or altered witnesses). Core calls this BLOCK_MUTATED and does not
# mark the header invalid, or one peer's tampered copy would make the node
# refuse the real block for good.
MUTATION_RULES = frozenset({"bad-txnmrklroot", "bad-txns-duplicate", "bad-witness-nonce-size",
                            "bad-witness-merkle-match", "unexpected-witness"})

WITNESS_COMMITMENT_HEADER = bytes((OP.RETURN, 0x24, 0xAA, 0x21, 0xA9, 0xED))   # OP_RETURN, push 36, magic
MINIMUM_WITNESS_COMMITMENT_BYTES = 38                                            # header + 32-byte commitment
WITNESS_NONCE_BYTES = 32


def median_time_past(times_s: Sequence[int]) -> int:
    """The median of the last (up to 11) block times, unix seconds (Core's
    ``GetMedianTimePast``): with an even count, the upper middle one.

    Args:
        times_s: the times of the block and its ancestors, newest last, at
            most ``MEDIAN_TIME_SPAN`` of them and at least one.
    """
    assert 0 < len(times_s) <= C.MEDIAN_TIME_SPAN
    ordered = sorted(times_s)
    return ordered[len(ordered) // 2]


def check_block_header(header: BlockHeader, params: ConsensusParams) -> None:
    """Context-free header check: proof of work (whitepaper section 4).

    Raises:
        RuleViolation: ``high-hash``.
    """
    check_proof_of_work(header.hash, header.bits, params.pow_limit)


def contextual_check_block_header(header: BlockHeader, *, height: int, expected_bits: int,
                                  prev_median_time_past_s: int, adjusted_time_s: int,
                                  params: ConsensusParams) -> None:
    """A header's rules in the context of the chain it extends.

    Args:
        height: the header's height (its parent's plus one).
        expected_bits: the bits the chain requires here (``next_work_required``).
        prev_median_time_past_s: the parent's median time past (unix s).
        adjusted_time_s: the node's network-adjusted time (unix s).

    Raises:
        RuleViolation: ``bad-diffbits``, ``time-too-old``, ``time-too-new``,
            ``bad-version``.
    """
    if header.bits != expected_bits:
        raise RuleViolation("bad-diffbits", f"bits {header.bits:08x}, the chain requires {expected_bits:08x}")
    if header.time <= prev_median_time_past_s:
        raise RuleViolation("time-too-old", f"time {header.time} not after median time past {prev_median_time_past_s}")
    if header.time > adjusted_time_s + C.MAX_FUTURE_BLOCK_TIME_S:
        raise RuleViolation("time-too-new", f"time {header.time} more than 2 h after {adjusted_time_s}")
    for min_version, activation_height in ((2, params.bip34_height), (3, params.bip66_height), (4, params.bip65_height)):
        if header.version < min_version and height >= activation_height:
            raise RuleViolation("bad-version", f"version 0x{header.version & 0xFFFFFFFF:08x} at height {height}")


def legacy_sigop_count(tx: Transaction) -> int:
    """Signature operations in a transaction's scriptSigs and scriptPubKeys,
    counted without context (Core's ``GetLegacySigOpCount``)."""
    return (sum(sigop_count(i.script_sig, False) for i in tx.inputs)
            + sum(sigop_count(o.script_pubkey, False) for o in tx.outputs))


def check_block(block: Block, params: ConsensusParams, *, check_pow: bool = True, check_merkle_root: bool = True) -> None:
    """Context-free block checks (Core's ``CheckBlock``).

    ``check_pow`` and ``check_merkle_root`` are Core's switches of the same
    name (a block template is checked without proof of work).

    Raises:
        RuleViolation: ``high-hash``, ``bad-txnmrklroot``,
            ``bad-txns-duplicate``, ``bad-blk-length``, ``bad-cb-missing``,
            ``bad-cb-multiple``, any ``check_transaction`` rule,
            ``bad-blk-sigops``.
    """
    if check_pow:
        check_block_header(block.header, params)
    txs = block.transactions
    if check_merkle_root:
        root, mutated = merkle_root([tx.txid for tx in txs])
        if root != block.header.merkle_root:
            raise RuleViolation("bad-txnmrklroot", f"transactions hash to {hash_hex(root)}")
        if mutated:
            raise RuleViolation("bad-txns-duplicate", "a merkle tree level repeats a hash")
    if (not txs or len(txs) * C.WITNESS_SCALE_FACTOR > C.MAX_BLOCK_WEIGHT
            or block.stripped_size * C.WITNESS_SCALE_FACTOR > C.MAX_BLOCK_WEIGHT):
        raise RuleViolation("bad-blk-length", f"{len(txs)} transactions, {block.stripped_size} bytes stripped")
    if not txs[0].is_coinbase():
        raise RuleViolation("bad-cb-missing", "the first transaction is not a coinbase")
    for i, tx in enumerate(txs[1:], start=1):
        if tx.is_coinbase():
            raise RuleViolation("bad-cb-multiple", f"transaction {i} is a coinbase")
    sigops = 0
    for i, tx in enumerate(txs):
        try:
            check_transaction(tx)
        except RuleViolation as e:
            raise RuleViolation(e.rule, f"transaction {i} ({hash_hex(tx.txid)}) {e.detail}".rstrip()) from e
        sigops += legacy_sigop_count(tx)
    if sigops * C.WITNESS_SCALE_FACTOR > C.MAX_BLOCK_SIGOPS_COST:
        raise RuleViolation("bad-blk-sigops", f"{sigops} legacy sigops")


def is_final_tx(tx: Transaction, height: int, time_s: int) -> bool:
    """Whether ``tx``'s nLockTime has passed in a block at ``height`` with
    lock-time cutoff ``time_s`` (Core's ``IsFinalTx``): a lock time below
    ``LOCKTIME_THRESHOLD`` is a height, else a unix time; it must be below
    the block's, unless every input's sequence is final."""
    if tx.locktime == 0:
        return True
    cutoff = height if tx.locktime < C.LOCKTIME_THRESHOLD else time_s
    if tx.locktime < cutoff:
        return True
    return all(i.sequence == C.SEQUENCE_FINAL for i in tx.inputs)


def coinbase_height_script(height: int) -> bytes:
    """What BIP34 requires a coinbase scriptSig to start with: Core's
    ``CScript() << height`` (OP_0, OP_1..OP_16, or a push of the script number)."""
    assert height >= 0
    if height == 0:
        return bytes((OP._0,))
    if height <= 16:
        return bytes((OP._1 + height - 1,))
    number = script_num(height)
    return bytes((len(number),)) + number


def witness_commitment_index(coinbase: Transaction) -> int | None:
    """The output of the coinbase holding BIP141's witness commitment: the
    last one whose scriptPubKey is at least 38 bytes and starts with
    ``OP_RETURN 0x24 aa21a9ed``; None when there is none."""
    found = None
    for i, out in enumerate(coinbase.outputs):
        script = out.script_pubkey
        if len(script) >= MINIMUM_WITNESS_COMMITMENT_BYTES and script.startswith(WITNESS_COMMITMENT_HEADER):
            found = i
    return found


def witness_merkle_root(block: Block) -> tuple[bytes, bool]:
    """BIP141: the merkle root of the wtxids, the coinbase's taken as zero;
    and whether that tree is mutated."""
    return merkle_root([NULL_HASH, *(tx.wtxid for tx in block.transactions[1:])])


def _check_witness_commitment(block: Block, height: int, params: ConsensusParams) -> None:
    coinbase = block.transactions[0]
    position = witness_commitment_index(coinbase) if height >= params.segwit_height else None
    if position is not None:
        stack = coinbase.inputs[0].witness
        if len(stack) != 1 or len(stack[0]) != WITNESS_NONCE_BYTES:
            raise RuleViolation("bad-witness-nonce-size", f"coinbase witness of {len(stack)} items")
        root, _ = witness_merkle_root(block)   # (as Core: a mutated witness tree is caught by the txid tree)
        commitment = hash256(root + stack[0])
        committed = coinbase.outputs[position].script_pubkey[len(WITNESS_COMMITMENT_HEADER):][:32]
        if commitment != committed:
            raise RuleViolation("bad-witness-merkle-match", f"witnesses commit to {commitment.hex()}")
        return
    for i, tx in enumerate(block.transactions):
        if tx.has_witness:
            raise RuleViolation("unexpected-witness", f"transaction {i} has a witness, the block no commitment")


def contextual_check_block(block: Block, *, height: int, prev_median_time_past_s: int, params: ConsensusParams) -> None:
    """A block's rules given its height and parent (Core's ``ContextualCheckBlock``).

    Args:
        height: the block's height.
        prev_median_time_past_s: the parent's median time past (unix s): the
            lock-time cutoff once BIP113 (with CSV) is active, else the block's time.

    Raises:
        RuleViolation: ``bad-cb-missing`` (no coinbase input to read),
            ``bad-txns-nonfinal``, ``bad-cb-height`` (BIP34),
            ``bad-witness-nonce-size``, ``bad-witness-merkle-match``,
            ``unexpected-witness`` (BIP141), ``bad-blk-weight``.
    """
    txs = block.transactions
    if not txs or not txs[0].inputs:
        raise RuleViolation("bad-cb-missing", "no coinbase input")
    cutoff_s = prev_median_time_past_s if height >= params.csv_height else block.header.time
    for i, tx in enumerate(txs):
        if not is_final_tx(tx, height, cutoff_s):
            raise RuleViolation("bad-txns-nonfinal", f"transaction {i} locked until {tx.locktime}")
    if height >= params.bip34_height:
        expected = coinbase_height_script(height)
        if not txs[0].inputs[0].script_sig.startswith(expected):
            raise RuleViolation("bad-cb-height", f"the coinbase does not start with height {height}")
    _check_witness_commitment(block, height, params)
    if block.weight > C.MAX_BLOCK_WEIGHT:
        raise RuleViolation("bad-blk-weight", f"weight {block.weight}")


def block_subsidy(height: int, params: ConsensusParams) -> int:
    """New coins a block at ``height`` may create, satoshis (whitepaper
    section 6; Core's ``GetBlockSubsidy``): 50 BTC, halved every
    ``params.subsidy_halving_interval`` blocks, zero after 64 halvings."""
    assert height >= 0
    halvings = height // params.subsidy_halving_interval
    if halvings >= 64:
        return 0
    return C.INITIAL_SUBSIDY >> halvings
