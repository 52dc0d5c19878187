"""The UTXO chain: coins, connecting and disconnecting blocks, headers.

Whitepaper sections 2 and 5: a transaction spends earlier outputs and the
network accepts a block only if its transactions are valid and "not
already spent". Bitcoin Core keeps the unspent outputs as a *UTXO set*,
outpoint -> *coin* (the output, the height of its block, whether a
coinbase created it), and this module does the same:

- :func:`connect_block` (Core's ``ConnectBlock`` with ``CheckTxInputs``)
  applies a block that already passed :func:`~synod.bitcoin.validation.check_block`
  and :func:`~synod.bitcoin.validation.contextual_check_block`: each input
  must spend an unspent coin (``bad-txns-inputs-missingorspent``), a
  coinbase only after ``COINBASE_MATURITY`` blocks
  (``bad-txns-premature-spend-of-coinbase``), amounts in range
  (``bad-txns-inputvalues-outofrange``, ``bad-txns-in-belowout``,
  ``bad-txns-fee-outofrange``, ``bad-txns-accumulated-fee-outofrange``),
  BIP68 relative lock times (``bad-txns-nonfinal``), the block's sigop
  cost with P2SH and witness sigops (``bad-blk-sigops``), BIP30 (a block
  may not recreate an unspent output: ``bad-txns-BIP30``), every input's
  script through the caller's verifier (``mandatory-script-verify-flag-failed``),
  and the coinbase pays at most subsidy plus fees (``bad-cb-amount``).
  It returns a :class:`BlockUndo`: every coin it removed or replaced, in
  order, so :func:`disconnect_block` restores the exact prior set (a
  reorg). A rejected block leaves the set as it was.
- :class:`HeaderChain`: headers indexed by hash with height, cumulative
  work and median time past, each accepted only if it passes the header
  rules in the context of its parent; the tip is the header with most
  work (first seen wins a tie).
- :class:`Chainstate`: both together, connecting full blocks in order.

Simplifications: the UTXO set lives in memory under ``UTXO_SET_COINS_MAX``;
script verification is the caller's callable (so this module knows nothing
of the interpreter); BIP30's skip after BIP34 trusts the network's params
(Core also checks the block hash at BIP34's height).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import msgspec

from synod.bitcoin import constants as C
from synod.bitcoin._context import VerifyFlags
from synod.bitcoin.errors import RuleViolation
from synod.bitcoin.interpreter import verify_transaction
from synod.bitcoin.pow import ConsensusParams, block_work, check_proof_of_work, next_work_required
from synod.bitcoin.primitives import NULL_HASH, Block, BlockHeader, OutPoint, Transaction, TxOut, hash_hex
from synod.bitcoin.script import OP, get_op, is_p2sh, is_push_only, sigop_count, witness_program
from synod.bitcoin.validation import (
    block_subsidy,
    check_block,
    contextual_check_block,
    contextual_check_block_header,
    legacy_sigop_count,
    median_time_past,
)
from synod.core.errors import LocalProtocolError

__all__ = [
    "Coin", "UtxoSet", "BlockUndo", "ScriptVerifier", "script_flags", "check_tx_inputs", "transaction_sigop_cost",
    "sequence_locks_satisfied", "connect_block", "disconnect_block", "HeaderEntry", "HeaderChain", "Chainstate",
    "UTXO_SET_COINS_MAX", "HEADER_CHAIN_HEADERS_MAX", "CHAINSTATE_UNDO_BLOCKS_MAX", "BIP34_IMPLIES_BIP30_LIMIT",
]

# -- synod's limits (not consensus) ---------------------------------------------------------------
UTXO_SET_COINS_MAX = 250_000_000          # coins held in memory (mainnet has ~190M in 2025)
HEADER_CHAIN_HEADERS_MAX = 4_000_000      # headers indexed, all branches
CHAINSTATE_UNDO_BLOCKS_MAX = 10_000       # undo records kept: the deepest reorg a Chainstate can make

# -- consensus ------------------------------------------------------------------------------------
BIP34_IMPLIES_BIP30_LIMIT = 1_983_702     # from here an old coinbase could claim a future height: BIP30 again
SEQUENCE_LOCKTIME_GRANULARITY = 9         # BIP68 time locks count units of 2**9 = 512 s

ScriptVerifier = Callable[[Transaction, Sequence[TxOut], VerifyFlags], None]
"""``verify(tx, spent_outputs, flags)``: raises ScriptFailure if any input
of ``tx`` fails its scripts; ``spent_outputs`` are the outputs every input
spends, in input order. The interpreter's
:func:`~synod.bitcoin.interpreter.verify_transaction` is one (the default
of :class:`Chainstate`); a test may pass its own."""


class Coin(msgspec.Struct, frozen=True, kw_only=True):
    """An unspent output: the output, the height of the block that created
    it, and whether that was a coinbase (for maturity)."""

    output: TxOut
    height: int
    is_coinbase: bool


class BlockUndo(msgspec.Struct, frozen=True, kw_only=True):
    """What connecting a block changed: ``prior`` holds, for every outpoint
    it touched in order, the coin there before (None: there was none).
    Replaying it backwards restores the set exactly."""

    block_hash: bytes
    prev_block: bytes
    height: int
    prior: tuple[tuple[OutPoint, Coin | None], ...]


class UtxoSet:
    """The unspent outputs, outpoint -> :class:`Coin`, as of block ``best_block``.

    Invariant: ``best_block`` is the hash of the last block connected (or
    ``NULL_HASH`` before any), and the coins are exactly the outputs
    created and not spent by the chain ending there.
    """

    __slots__ = ("coins", "best_block")

    def __init__(self) -> None:
        self.coins: dict[OutPoint, Coin] = {}
        self.best_block = NULL_HASH

    def __len__(self) -> int:
        return len(self.coins)

    def __contains__(self, outpoint: object) -> bool:
        return outpoint in self.coins

    def get(self, outpoint: OutPoint) -> Coin | None:
        return self.coins.get(outpoint)

    def _set(self, outpoint: OutPoint, coin: Coin | None, journal: list[tuple[OutPoint, Coin | None]]) -> None:
        prior = self.coins.get(outpoint)
        if coin is None:
            if prior is None:   # (an input spending a coin twice: CheckBlock's duplicate-input rule, met again)
                raise RuleViolation("bad-txns-inputs-missingorspent", f"{hash_hex(outpoint.txid)}:{outpoint.index}")
            journal.append((outpoint, prior))
            del self.coins[outpoint]
            return
        if prior is None and len(self.coins) >= UTXO_SET_COINS_MAX:
            raise LocalProtocolError(f"the UTXO set holds its limit of {UTXO_SET_COINS_MAX} coins")
        journal.append((outpoint, prior))
        self.coins[outpoint] = coin

    def _replay_backwards(self, journal: Sequence[tuple[OutPoint, Coin | None]]) -> None:
        for outpoint, coin in reversed(journal):
            if coin is None:
                self.coins.pop(outpoint, None)
            else:
                self.coins[outpoint] = coin


def _money_range(value: int) -> bool:
    return 0 <= value <= C.MAX_MONEY


def _is_unspendable(script: bytes) -> bool:
    """Outputs never added to the UTXO set (Core's ``IsUnspendable``)."""
    return (len(script) > 0 and script[0] == OP.RETURN) or len(script) > C.MAX_SCRIPT_BYTES


def script_flags(height: int, params: ConsensusParams, block_hash: bytes | None = None) -> VerifyFlags:
    """The script rules a block's inputs are verified under (Core's
    ``GetBlockScriptFlags``).

    As Core today: P2SH (BIP16), WITNESS (BIP141) and TAPROOT (BIP341) for
    every block, since no block on the chain violates them except the two
    listed in ``params.script_flag_exceptions`` (by ``block_hash``); then
    DERSIG (BIP66), CHECKLOCKTIMEVERIFY (BIP65), CHECKSEQUENCEVERIFY (BIP112)
    and NULLDUMMY (BIP147) from their activation heights.
    """
    flags = {"P2SH", "WITNESS", "TAPROOT"}
    for exception_hash, exception_flags in params.script_flag_exceptions:
        if block_hash == exception_hash:
            flags = set(exception_flags)
    for name, activation_height in (("DERSIG", params.bip66_height), ("CHECKLOCKTIMEVERIFY", params.bip65_height),
                                    ("CHECKSEQUENCEVERIFY", params.csv_height), ("NULLDUMMY", params.segwit_height)):
        if height >= activation_height:
            flags.add(name)
    return VerifyFlags.from_names(",".join(sorted(flags)))


def check_tx_inputs(tx: Transaction, utxos: UtxoSet, spend_height: int) -> tuple[int, list[Coin]]:
    """A non-coinbase transaction's inputs against the UTXO set (Core's
    ``Consensus::CheckTxInputs``).

    Args:
        spend_height: the height of the block spending them.

    Returns:
        ``(fee in satoshis, the coins spent in input order)``.

    Raises:
        RuleViolation: ``bad-txns-inputs-missingorspent``,
            ``bad-txns-premature-spend-of-coinbase``,
            ``bad-txns-inputvalues-outofrange``, ``bad-txns-in-belowout``,
            ``bad-txns-fee-outofrange``.
    """
    coins = []
    for txin in tx.inputs:
        coin = utxos.get(txin.prevout)
        if coin is None:
            raise RuleViolation("bad-txns-inputs-missingorspent",
                                f"{hash_hex(txin.prevout.txid)}:{txin.prevout.index} spent by {hash_hex(tx.txid)}")
        coins.append(coin)
    value_in = 0
    for coin in coins:
        if coin.is_coinbase and spend_height - coin.height < C.COINBASE_MATURITY:
            raise RuleViolation("bad-txns-premature-spend-of-coinbase",
                                f"coinbase of height {coin.height} spent at {spend_height}")
        value_in += coin.output.value
        if not _money_range(coin.output.value) or not _money_range(value_in):
            raise RuleViolation("bad-txns-inputvalues-outofrange", f"input total {value_in}")
    value_out = sum(o.value for o in tx.outputs)
    if value_in < value_out:
        raise RuleViolation("bad-txns-in-belowout", f"in {value_in} < out {value_out} in {hash_hex(tx.txid)}")
    fee = value_in - value_out
    if not _money_range(fee):
        raise RuleViolation("bad-txns-fee-outofrange", f"fee {fee}")
    return fee, coins


def _last_push(script_sig: bytes) -> bytes:
    """The data of a push-only scriptSig's last operation (empty for OP_N)."""
    data, pos = b"", 0
    while pos < len(script_sig):
        op = get_op(script_sig, pos)
        assert op is not None, "the caller checked the script is push-only"
        data, pos = op[1] or b"", op[2]
    return data


def _p2sh_sigops(script_sig: bytes) -> int:
    """Core's ``CScript::GetSigOpCount(scriptSig)`` for a P2SH output: the
    accurate count of the redeem script, 0 if the scriptSig is not push-only."""
    if not is_push_only(script_sig):
        return 0
    return sigop_count(_last_push(script_sig), True)


def _witness_sigops(script_sig: bytes, script_pubkey: bytes, witness: tuple[bytes, ...]) -> int:
    """Core's ``CountWitnessSigOps``: a v0 key hash is one; a v0 script
    hash counts its witness script accurately; P2SH-wrapped programs too."""
    program = witness_program(script_pubkey)
    if program is None and is_p2sh(script_pubkey) and is_push_only(script_sig):
        program = witness_program(_last_push(script_sig))
    if program is None:
        return 0
    version, data = program
    if version == 0 and len(data) == 20:
        return 1
    if version == 0 and len(data) == 32 and witness:
        return sigop_count(witness[-1], True)
    return 0


def transaction_sigop_cost(tx: Transaction, spent_outputs: Sequence[TxOut], flags: VerifyFlags) -> int:
    """A transaction's sigop cost (Core's ``GetTransactionSigOpCost``):
    legacy sigops x4, plus P2SH redeem-script sigops x4 under P2SH, plus
    witness sigops x1 under WITNESS.

    Args:
        spent_outputs: the outputs the inputs spend, in input order (empty for a coinbase).
    """
    cost = legacy_sigop_count(tx) * C.WITNESS_SCALE_FACTOR
    if tx.is_coinbase():
        return cost
    assert len(spent_outputs) == len(tx.inputs)
    if VerifyFlags.P2SH in flags:
        cost += C.WITNESS_SCALE_FACTOR * sum(_p2sh_sigops(i.script_sig)
                                             for i, o in zip(tx.inputs, spent_outputs) if is_p2sh(o.script_pubkey))
    if VerifyFlags.WITNESS in flags:
        cost += sum(_witness_sigops(i.script_sig, o.script_pubkey, i.witness) for i, o in zip(tx.inputs, spent_outputs))
    return cost


def sequence_locks_satisfied(tx: Transaction, coin_heights: Sequence[int], height: int,
                             median_time_past_at: Callable[[int], int]) -> bool:
    """BIP68 relative lock times (Core's ``CalculateSequenceLocks`` and
    ``EvaluateSequenceLocks``), for a version >= 2 transaction in a block at
    ``height`` once CSV is active.

    Args:
        coin_heights: the height of each input's coin.
        median_time_past_at: the median time past (unix s) of the block at a
            height on this block's chain, up to ``height - 1``.
    """
    if tx.version & 0xFFFFFFFF < 2:   # (Core compares the version as unsigned)
        return True
    min_height = min_time_s = -1
    for txin, coin_height in zip(tx.inputs, coin_heights):
        if txin.sequence & C.SEQUENCE_LOCKTIME_DISABLE_FLAG:
            continue
        amount = txin.sequence & C.SEQUENCE_LOCKTIME_MASK
        if txin.sequence & C.SEQUENCE_LOCKTIME_TYPE_FLAG:
            coin_time_s = median_time_past_at(max(coin_height - 1, 0))
            min_time_s = max(min_time_s, coin_time_s + (amount << SEQUENCE_LOCKTIME_GRANULARITY) - 1)
        else:
            min_height = max(min_height, coin_height + amount - 1)
    return min_height < height and min_time_s < median_time_past_at(height - 1)


def _bip30_applies(height: int, block_hash: bytes, params: ConsensusParams) -> bool:
    if (height, block_hash) in params.bip30_exempt:
        return False
    return not params.bip34_implies_bip30 or height < params.bip34_height or height >= BIP34_IMPLIES_BIP30_LIMIT


def _verify_scripts(tx: Transaction, spent_outputs: list[TxOut], flags: VerifyFlags, verify: ScriptVerifier) -> None:
    try:
        verify(tx, spent_outputs, flags)
    except RuleViolation as e:
        raise RuleViolation("mandatory-script-verify-flag-failed",
                            f"{e.rule} in {hash_hex(tx.txid)}: {e.detail}".rstrip(": ")) from e


def _update_coins(utxos: UtxoSet, tx: Transaction, height: int, journal: list[tuple[OutPoint, Coin | None]]) -> None:
    """Spend ``tx``'s inputs and add its spendable outputs (Core's ``UpdateCoins``)."""
    coinbase = tx.is_coinbase()
    if not coinbase:
        for txin in tx.inputs:
            utxos._set(txin.prevout, None, journal)
    txid = tx.txid
    for index, output in enumerate(tx.outputs):
        if not _is_unspendable(output.script_pubkey):
            utxos._set(OutPoint(txid=txid, index=index), Coin(output=output, height=height, is_coinbase=coinbase), journal)


def _connect_transactions(utxos: UtxoSet, block: Block, height: int, params: ConsensusParams,
                          median_time_past_at: Callable[[int], int], verify_script: ScriptVerifier | None,
                          journal: list[tuple[OutPoint, Coin | None]]) -> None:
    if not block.transactions:
        raise RuleViolation("bad-cb-missing", "a block without transactions")
    flags = script_flags(height, params, block.hash)
    fees = sigop_cost = 0
    for index, tx in enumerate(block.transactions):
        spent_outputs: list[TxOut] = []
        if (index == 0) != tx.is_coinbase():   # (CheckBlock's rules, met again: this must not trust the caller)
            raise RuleViolation("bad-cb-multiple" if index else "bad-cb-missing", f"transaction {index}")
        if index:
            fee, coins = check_tx_inputs(tx, utxos, height)
            fees += fee
            if not _money_range(fees):
                raise RuleViolation("bad-txns-accumulated-fee-outofrange", f"fees {fees}")
            if height >= params.csv_height and not sequence_locks_satisfied(
                    tx, [c.height for c in coins], height, median_time_past_at):
                raise RuleViolation("bad-txns-nonfinal", f"{hash_hex(tx.txid)} is locked by BIP68")
            spent_outputs = [c.output for c in coins]
        sigop_cost += transaction_sigop_cost(tx, spent_outputs, flags)
        if sigop_cost > C.MAX_BLOCK_SIGOPS_COST:
            raise RuleViolation("bad-blk-sigops", f"sigop cost {sigop_cost} at {hash_hex(tx.txid)}")
        if spent_outputs and verify_script is not None:
            _verify_scripts(tx, spent_outputs, flags, verify_script)
        _update_coins(utxos, tx, height, journal)
    reward = fees + block_subsidy(height, params)
    paid = sum(o.value for o in block.transactions[0].outputs)
    if paid > reward:
        raise RuleViolation("bad-cb-amount", f"coinbase pays {paid}, the limit is {reward}")


def connect_block(utxos: UtxoSet, block: Block, *, height: int, params: ConsensusParams,
                  median_time_past_at: Callable[[int], int], verify_script: ScriptVerifier | None) -> BlockUndo:
    """Apply a block to the UTXO set (Core's ``ConnectBlock``); whitepaper
    sections 2, 5 and 6.

    The block must already have passed ``check_block`` and
    ``contextual_check_block``, and extend ``utxos.best_block``. The
    genesis block changes nothing (its coinbase is unspendable, as in Core).

    Args:
        height: the block's height.
        median_time_past_at: median time past (unix s) of the block at a
            height on this block's chain, below ``height`` (for BIP68).
        verify_script: checks each input's scripts (:data:`ScriptVerifier`);
            None skips script checks (as Core under assumevalid).

    Returns:
        The :class:`BlockUndo` that :func:`disconnect_block` takes.

    Raises:
        RuleViolation: any rule of the module docstring; the set is then unchanged.
        LocalProtocolError: the block does not extend ``utxos.best_block``.
    """
    if block.header.prev_block != utxos.best_block:
        raise LocalProtocolError(f"block {hash_hex(block.hash)} does not extend {hash_hex(utxos.best_block)}")
    journal: list[tuple[OutPoint, Coin | None]] = []
    if block.hash != params.genesis_hash:
        if _bip30_applies(height, block.hash, params):
            for tx in block.transactions:
                for index in range(len(tx.outputs)):
                    if OutPoint(txid=tx.txid, index=index) in utxos:
                        raise RuleViolation("bad-txns-BIP30", f"{hash_hex(tx.txid)}:{index} is already unspent")
        try:
            _connect_transactions(utxos, block, height, params, median_time_past_at, verify_script, journal)
        except BaseException:
            utxos._replay_backwards(journal)
            raise
    utxos.best_block = block.hash
    return BlockUndo(block_hash=block.hash, prev_block=block.header.prev_block, height=height, prior=tuple(journal))


def disconnect_block(utxos: UtxoSet, undo: BlockUndo) -> None:
    """Undo the last connected block (Core's ``DisconnectBlock``): the set
    becomes exactly what it was before :func:`connect_block` returned ``undo``.

    Raises:
        LocalProtocolError: ``undo`` is not for ``utxos.best_block``.
    """
    if undo.block_hash != utxos.best_block:
        raise LocalProtocolError(f"undo for {hash_hex(undo.block_hash)}, the tip is {hash_hex(utxos.best_block)}")
    utxos._replay_backwards(undo.prior)
    utxos.best_block = undo.prev_block


class HeaderEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A header in the :class:`HeaderChain` (Core's ``CBlockIndex``):
    its height, the cumulative work of the chain ending here, and the
    median time past of this block and its ten ancestors (unix s)."""

    header: BlockHeader
    height: int
    chain_work: int
    median_time_past_s: int
    prev: HeaderEntry | None

    @property
    def hash(self) -> bytes:
        return self.header.hash


class HeaderChain:
    """Headers indexed by hash, each accepted in the context of its parent
    (Core's ``AcceptBlockHeader``); the tip is the one with most work.

    Invariants: every entry's parent is an entry (the root's aside);
    ``active[h - base_height]`` is the ancestor at height ``h`` of ``tip``.
    """

    __slots__ = ("params", "entries", "tip", "active", "base_height")

    def __init__(self, params: ConsensusParams) -> None:
        """A chain holding ``params.genesis`` at height 0."""
        self.params = params
        self.entries: dict[bytes, HeaderEntry] = {}
        self.base_height = 0
        root = self._entry(params.genesis, 0, None)
        self.entries[root.hash] = root
        self.tip = root
        self.active = [root]

    @classmethod
    def from_checkpoint(cls, params: ConsensusParams, headers: Sequence[BlockHeader], height: int) -> HeaderChain:
        """A chain rooted at a run of trusted ``headers`` starting at
        ``height``: each must link to the one before and meet its own proof
        of work, but the contextual rules need parents and are not checked.
        Cumulative work counts from the first of them.

        Raises:
            RuleViolation: ``high-hash``; ``prev-blk-not-found`` for a broken link.
        """
        assert headers
        chain = cls.__new__(cls)
        chain.params, chain.entries, chain.base_height = params, {}, height
        prev = None
        for offset, header in enumerate(headers):
            check_proof_of_work(header.hash, header.bits, params.pow_limit)
            if prev is not None and header.prev_block != prev.hash:
                raise RuleViolation("prev-blk-not-found", f"checkpoint header {height + offset} does not link")
            prev = chain._entry(header, height + offset, prev)
            chain.entries[prev.hash] = prev
        assert prev is not None
        chain.tip = prev
        chain.active = list(chain._walk_back(prev, height))[::-1]
        return chain

    def _entry(self, header: BlockHeader, height: int, prev: HeaderEntry | None) -> HeaderEntry:
        times = [header.time]
        ancestor = prev
        while ancestor is not None and len(times) < C.MEDIAN_TIME_SPAN:
            times.append(ancestor.header.time)
            ancestor = ancestor.prev
        return HeaderEntry(header=header, height=height, median_time_past_s=median_time_past(times),
                           chain_work=(prev.chain_work if prev else 0) + block_work(header.bits), prev=prev)

    @staticmethod
    def _walk_back(entry: HeaderEntry, down_to_height: int) -> Iterator[HeaderEntry]:
        cursor: HeaderEntry | None = entry
        while cursor is not None and cursor.height >= down_to_height:
            yield cursor
            cursor = cursor.prev

    def __contains__(self, block_hash: object) -> bool:
        return block_hash in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, block_hash: bytes) -> HeaderEntry | None:
        return self.entries.get(block_hash)

    def ancestor(self, entry: HeaderEntry, height: int) -> HeaderEntry:
        """The entry at ``height`` on the chain ending at ``entry`` (Core's ``GetAncestor``).

        Raises:
            LocalProtocolError: ``height`` is above ``entry`` or below the chain's root.
        """
        if not self.base_height <= height <= entry.height:
            raise LocalProtocolError(f"no ancestor at height {height} of a header at {entry.height} "
                                     f"(the chain starts at {self.base_height})")
        cursor = entry
        while self._active_at(cursor.height) is not cursor:   # off the best chain: walk to where it joins
            assert cursor.prev is not None
            if cursor.height == height:
                return cursor
            cursor = cursor.prev
        return self.active[height - self.base_height]

    def _active_at(self, height: int) -> HeaderEntry | None:
        offset = height - self.base_height
        return self.active[offset] if 0 <= offset < len(self.active) else None

    def accept_header(self, header: BlockHeader, adjusted_time_s: int) -> HeaderEntry:
        """Add a header whose parent is known, after the header rules in
        context (whitepaper section 4; Core's ``AcceptBlockHeader``). A
        header already present is returned as it is.

        Args:
            adjusted_time_s: the node's network-adjusted time (unix s).

        Raises:
            RuleViolation: ``high-hash``, ``prev-blk-not-found``,
                ``bad-diffbits``, ``time-too-old``, ``time-too-new``, ``bad-version``.
            LocalProtocolError: the chain holds ``HEADER_CHAIN_HEADERS_MAX`` headers.
        """
        known = self.entries.get(header.hash)
        if known is not None:
            return known
        check_proof_of_work(header.hash, header.bits, self.params.pow_limit)
        prev = self.entries.get(header.prev_block)
        if prev is None:
            raise RuleViolation("prev-blk-not-found", f"parent {hash_hex(header.prev_block)} unknown")
        expected_bits = next_work_required(prev.height, header.time, self.params,
                                           lambda h: self.ancestor(prev, h).header)
        contextual_check_block_header(header, height=prev.height + 1, expected_bits=expected_bits,
                                      prev_median_time_past_s=prev.median_time_past_s,
                                      adjusted_time_s=adjusted_time_s, params=self.params)
        if len(self.entries) >= HEADER_CHAIN_HEADERS_MAX:
            raise LocalProtocolError(f"the header chain holds its limit of {HEADER_CHAIN_HEADERS_MAX} headers")
        entry = self._entry(header, prev.height + 1, prev)
        self.entries[entry.hash] = entry
        if entry.chain_work > self.tip.chain_work:
            self._set_tip(entry)
        return entry

    def _set_tip(self, entry: HeaderEntry) -> None:
        branch = []
        cursor: HeaderEntry | None = entry
        while cursor is not None and self._active_at(cursor.height) is not cursor:
            branch.append(cursor)
            cursor = cursor.prev
        fork_height = cursor.height if cursor is not None else self.base_height - 1
        del self.active[fork_height + 1 - self.base_height:]
        self.active.extend(reversed(branch))
        self.tip = entry


class Chainstate:
    """Headers, the UTXO set of the best connected block, and undo records:
    full blocks connected and disconnected one at a time (Core's
    ``Chainstate`` without the mempool or disk).

    Invariant: ``utxos.best_block`` is the hash of ``undos[-1]``'s block
    (the genesis block once nothing else is connected).
    """

    __slots__ = ("params", "headers", "utxos", "undos", "verify_script")

    def __init__(self, params: ConsensusParams, verify_script: ScriptVerifier | None = verify_transaction) -> None:
        self.params = params
        self.headers = HeaderChain(params)
        self.utxos = UtxoSet()
        self.verify_script = verify_script
        self.undos: list[BlockUndo] = []
        genesis = self.headers.tip
        self.utxos.best_block = genesis.hash   # (genesis connects to nothing: its coinbase is unspendable)

    @property
    def height(self) -> int:
        return self.undos[-1].height if self.undos else 0

    def connect(self, block: Block, adjusted_time_s: int) -> BlockUndo:
        """Validate ``block`` (header in context, ``check_block``,
        ``contextual_check_block``) and connect it on top of the UTXO tip.

        Raises:
            RuleViolation: any header, block or UTXO rule; nothing changes
                but the header index, which keeps a valid header.
            LocalProtocolError: the block does not extend the UTXO tip.
        """
        if block.header.prev_block != self.utxos.best_block:
            raise LocalProtocolError(f"block {hash_hex(block.hash)} does not extend {hash_hex(self.utxos.best_block)}")
        entry = self.headers.accept_header(block.header, adjusted_time_s)
        assert entry.prev is not None
        check_block(block, self.params)
        contextual_check_block(block, height=entry.height, prev_median_time_past_s=entry.prev.median_time_past_s,
                               params=self.params)
        undo = connect_block(self.utxos, block, height=entry.height, params=self.params,
                             median_time_past_at=lambda h: self.headers.ancestor(entry, h).median_time_past_s,
                             verify_script=self.verify_script)
        self.undos.append(undo)
        if len(self.undos) > CHAINSTATE_UNDO_BLOCKS_MAX:
            del self.undos[0]
        return undo

    def disconnect_tip(self) -> BlockUndo:
        """Disconnect the last connected block; returns its undo record.

        Raises:
            LocalProtocolError: no undo record is left.
        """
        if not self.undos:
            raise LocalProtocolError("no connected block to disconnect")
        undo = self.undos.pop()
        disconnect_block(self.utxos, undo)
        return undo
