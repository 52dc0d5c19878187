"""The mempool: unconfirmed transactions a full node holds, relays and mines.

Bitcoin Core keeps every transaction that would be valid in the next block
on top of the chain tip, together with the other mempool transactions it
spends (``txmempool.cpp``, ``validation.cpp``'s ``MemPoolAccept``,
``policy/policy.cpp``, ``node/miner.cpp``, ``txorphanage.cpp``). This module
is that structure, as pure data: the caller passes the UTXO set, the tip's
height and median time past, and the time; nothing reads a clock.

Acceptance (:meth:`Mempool.accept`, Core's ``PreChecks``, ``PolicyScriptChecks``,
``Finalize``), each broken rule a :class:`RuleViolation` with Core's reason:
context-free checks (``check_transaction``), ``coinbase``, standardness when
``require_standard`` (``version``, ``tx-size``, ``scriptsig-size``,
``scriptsig-not-pushonly``, ``scriptpubkey``, ``bare-multisig``,
``multi-op-return``, ``dust``, ``tx-size-small``), finality for the next
block (``non-final``), duplicates (``txn-already-in-mempool``,
``txn-same-nonwitness-data-in-mempool``), a spent outpoint
(``txn-mempool-conflict``: first seen wins, no replacement by fee), inputs
from the UTXO set or from mempool transactions, BIP68 (``non-BIP68-final``),
amounts and maturity (``chain.check_tx_inputs``), standard inputs
(``bad-txns-nonstandard-inputs``), ``bad-txns-too-many-sigops``, the fee
rate (``mempool min fee not met``, ``min relay fee not met``), chain limits
(``too-long-mempool-chain``), scripts under standard flags
(``non-mandatory-script-verify-flag-failed`` if only a policy flag fails,
``mandatory-script-verify-flag-failed`` if consensus does), and, once added,
``mempool full`` if trimming evicted it again.

Sizes: *vsize* is Core's ``GetVirtualTransactionSize``: weight / 4 rounded
up, or sigop cost x 20 / 4 if larger. Fee rates are sat per 1000 vbytes
(sat/kvB, as Core's ``CFeeRate``); a fee for a size rounds up.

Graph: each entry knows its in-mempool parents and children; it caches the
totals (count, vsize, fee, weight, sigop cost) over itself and its
ancestors, and over itself and its descendants (Core's ``*WithAncestors``,
``*WithDescendants``). A *package* is a transaction with its ancestors (for
mining) or with its descendants (for eviction).

Bounds: the pool holds at most ``mempool_vbytes_max`` vbytes. Past it, the
package (entry plus descendants) with the lowest *descendant score*
(the higher of its own fee rate and its package's) is evicted, repeatedly,
and the *rolling minimum fee rate* rises to that package's rate plus the
incremental relay fee (Core's ``TrimToSize``/``trackPackageRemoved``). After
a block, the minimum decays with a 12 h half-life (3 h below a quarter full,
6 h below half) and drops to zero under half the incremental fee (Core's
``GetMinFee``).

Orphans: a transaction spending outputs that are nowhere (parents not yet
seen) waits in the orphan pool, at most ``ORPHAN_TRANSACTIONS_MAX`` of them
and ``ORPHAN_TX_BYTES_MAX`` bytes, for ``ORPHAN_TX_EXPIRE_S``; when full the
oldest goes (or a random one, from the caller's seeded ``random.Random``).
When a transaction enters the mempool its waiting children are retried.

Mining (:meth:`Mempool.block_template`, Core's ``BlockAssembler::addPackageTxs``):
packages by ancestor fee rate, highest first; each package included whole,
parents first; the descendants' package totals then drop what was included
(child pays for parent).

Blocks: :meth:`Mempool.remove_for_block` drops the block's transactions and
every one conflicting with them, with descendants (``removeForBlock``);
:meth:`Mempool.readd_after_disconnect` (``MaybeUpdateMempoolForReorg``)
rebuilds the pool on the new tip: the disconnected block's transactions
first, then the old entries, each re-checked in context (scripts of old
entries are not re-run: their spent outputs are fixed by their outpoints),
without the fee checks, then trimmed.

Simplified against Core: vbytes stand for memory usage; no replacement by
fee, no package relay, no TRUC (version 3), no cluster limits, no fee
deltas (prioritisetransaction); orphans are not tracked per peer and a
parent rejected earlier does not reject its orphans; the rolling minimum is
an integer and decays by halving plus a linear step within a half-life;
BIP68 time locks use ``median_time_past_at`` when given, else the tip's
median time past for every height (stricter, never looser); the reorg rebuild
re-checks every entry instead of Core's incremental update.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from typing import Any

import msgspec

from synod.bitcoin._context import VerifyFlags
from synod.bitcoin._policy import (
    ANCESTOR_COUNT_MAX,
    ANCESTOR_VBYTES_MAX,
    BLOCK_MIN_FEE_SAT_PER_KVB,
    DESCENDANT_COUNT_MAX,
    DESCENDANT_VBYTES_MAX,
    DUST_RELAY_FEE_SAT_PER_KVB,
    INCREMENTAL_RELAY_FEE_SAT_PER_KVB,
    MAX_STANDARD_TX_SIGOPS_COST,
    MAX_STANDARD_TX_WEIGHT,
    MEMPOOL_VBYTES_MAX,
    MIN_RELAY_FEE_SAT_PER_KVB,
    MIN_STANDARD_TX_NONWITNESS_BYTES,
    ORPHAN_TRANSACTIONS_MAX,
    ORPHAN_TX_BYTES_MAX,
    ORPHAN_TX_EXPIRE_S,
    ROLLING_FEE_HALFLIFE_S,
    ROLLING_FEE_UPDATE_INTERVAL_S,
    TEMPLATE_FAILURES_MAX,
    TEMPLATE_NEARLY_FULL_WEIGHT,
    MempoolPolicy,
    check_inputs_standard,
    check_standard,
    dust_threshold_sat,
    fee_at,
    output_type,
    virtual_size,
)
from synod.bitcoin.chain import Coin, ScriptVerifier, UtxoSet, check_tx_inputs, sequence_locks_satisfied, transaction_sigop_cost
from synod.bitcoin.errors import RuleViolation
from synod.bitcoin.interpreter import verify_transaction
from synod.bitcoin.primitives import Block, OutPoint, Transaction, TxOut, check_transaction, hash_hex
from synod.bitcoin.validation import is_final_tx

__all__ = [
    "Mempool", "MempoolPolicy", "MempoolEntry", "MempoolInfo", "AcceptResult", "BlockTemplate", "BlockRemoval",
    "ReorgResult", "virtual_size", "dust_threshold_sat", "output_type",
    "ORPHAN_TRANSACTIONS_MAX", "ORPHAN_TX_BYTES_MAX", "ORPHAN_TX_EXPIRE_S", "MEMPOOL_VBYTES_MAX", "ANCESTOR_COUNT_MAX",
    "ANCESTOR_VBYTES_MAX", "DESCENDANT_COUNT_MAX", "DESCENDANT_VBYTES_MAX", "MIN_RELAY_FEE_SAT_PER_KVB",
    "INCREMENTAL_RELAY_FEE_SAT_PER_KVB", "DUST_RELAY_FEE_SAT_PER_KVB", "BLOCK_MIN_FEE_SAT_PER_KVB",
    "ROLLING_FEE_HALFLIFE_S", "MAX_STANDARD_TX_WEIGHT", "MAX_STANDARD_TX_SIGOPS_COST",
]

class AcceptResult(msgspec.Struct, frozen=True, kw_only=True):
    """What :meth:`Mempool.accept` did with a transaction.

    ``orphan``: it waits in the orphan pool for ``missing_parents`` (txids
    to ask peers for; ``vsize`` from its weight alone, ``fee_sat`` 0);
    else it entered the mempool with ``fee_sat`` and ``vsize``. ``accepted``: the txids that entered the mempool, this one
    first, then orphans it resolved, in order (what to relay). ``removed``:
    txids evicted to stay within bounds, and orphans dropped as invalid.
    """

    txid: bytes
    orphan: bool
    fee_sat: int
    vsize: int
    accepted: tuple[bytes, ...]
    removed: tuple[bytes, ...]
    missing_parents: tuple[bytes, ...] = ()


class MempoolEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One transaction in the pool, as ``getmempoolentry`` shows it: fee
    (sat), vsize and weight, entry time (unix s) and tip height, and the
    totals over it and its ancestors / descendants; ``depends`` and
    ``spent_by`` are the in-mempool parents and children."""

    txid: bytes
    wtxid: bytes
    fee_sat: int
    vsize: int
    weight: int
    sigop_cost: int
    time_s: int
    height: int
    ancestor_count: int
    ancestor_vsize: int
    ancestor_fee_sat: int
    descendant_count: int
    descendant_vsize: int
    descendant_fee_sat: int
    depends: tuple[bytes, ...]
    spent_by: tuple[bytes, ...]


class MempoolInfo(msgspec.Struct, frozen=True, kw_only=True):
    """``getmempoolinfo``: transactions, their vbytes, their serialized
    bytes (Core: memory usage), total fees, the bound, the current minimum
    fee rate to enter, the minimum relay fee rate, orphans held."""

    size: int
    vbytes: int
    usage_bytes: int
    total_fee_sat: int
    mempool_vbytes_max: int
    min_fee_sat_per_kvb: int
    min_relay_fee_sat_per_kvb: int
    orphans: int


class BlockTemplate(msgspec.Struct, frozen=True, kw_only=True):
    """Transactions for the next block in a valid order (parents first),
    their fees (sat, same order), and totals; the miner adds the coinbase."""

    transactions: tuple[Transaction, ...]
    fees_sat: tuple[int, ...]
    fee_total_sat: int
    weight: int
    sigop_cost: int


class BlockRemoval(msgspec.Struct, frozen=True, kw_only=True):
    """What a connected block removed: its own transactions found in the
    pool, and those that conflicted with it (with their descendants)."""

    confirmed: tuple[bytes, ...]
    conflicted: tuple[bytes, ...]


class ReorgResult(msgspec.Struct, frozen=True, kw_only=True):
    """After a disconnect: the block's transactions back in the pool, and
    txids that left it (block transactions no longer valid, old entries
    that no longer are, and evictions)."""

    readded: tuple[bytes, ...]
    removed: tuple[bytes, ...]


class _Totals:
    """Count, vsize, fee, weight and sigop cost summed over some entries."""

    __slots__ = ("count", "vsize", "fee_sat", "weight", "sigop_cost")

    def __init__(self) -> None:
        self.count = self.vsize = self.fee_sat = self.weight = self.sigop_cost = 0

    def copy(self) -> _Totals:
        other = _Totals()
        other.count, other.vsize, other.fee_sat = self.count, self.vsize, self.fee_sat
        other.weight, other.sigop_cost = self.weight, self.sigop_cost
        return other

    def add(self, e: _Entry, sign: int = 1) -> None:
        self.count += sign
        self.vsize += sign * e.vsize
        self.fee_sat += sign * e.fee_sat
        self.weight += sign * e.weight
        self.sigop_cost += sign * e.sigop_cost


class _Entry:
    """A mempool transaction with its links (ordered txid sets) and totals.

    Invariants: ``ancestors`` sums this entry and every in-mempool ancestor;
    ``descendants`` this entry and every in-mempool descendant; ``parents``
    and ``children`` mirror each other across entries.
    """

    __slots__ = ("tx", "txid", "fee_sat", "vsize", "weight", "sigop_cost", "time_s", "height", "parents", "children",
                 "ancestors", "descendants")

    def __init__(self, tx: Transaction, fee_sat: int, sigop_cost: int, time_s: int, height: int) -> None:
        self.tx, self.txid, self.fee_sat, self.sigop_cost = tx, tx.txid, fee_sat, sigop_cost
        self.weight = tx.weight
        self.vsize = virtual_size(self.weight, sigop_cost)
        self.time_s, self.height = time_s, height
        self.parents: dict[bytes, None] = {}
        self.children: dict[bytes, None] = {}
        self.ancestors = _Totals()
        self.descendants = _Totals()
        self.descendants.add(self)


class _Orphan(msgspec.Struct, frozen=True, kw_only=True):
    tx: Transaction
    time_s: int
    size_bytes: int


class _Tip:
    """The chain the pool is valid on: the UTXO set at its tip, the tip's
    height and median time past, and the median time past at any height."""

    __slots__ = ("utxos", "height", "median_time_past_s", "median_time_past_at")

    def __init__(self, utxos: UtxoSet, height: int, median_time_past_s: int,
                 median_time_past_at: Callable[[int], int] | None) -> None:
        self.utxos, self.height, self.median_time_past_s = utxos, height, median_time_past_s
        self.median_time_past_at = median_time_past_at or (lambda _height: median_time_past_s)


class Mempool:
    """Unconfirmed transactions valid on the tip, with an orphan pool.

    Args:
        policy: relay policy and limits.
        verify: the script verifier (``verify(tx, spent_outputs, flags)``,
            raising RuleViolation), the interpreter's by default.
        rng: a seeded ``random.Random``: orphans are then evicted at random
            (Core's way) rather than oldest first.

    Invariants: ``_spenders`` maps every outpoint an entry spends to it;
    ``_vbytes`` is the sum of entry vsizes; ``_entries`` is in acceptance
    order, parents before children.
    """

    def __init__(self, policy: MempoolPolicy | None = None, *, verify: ScriptVerifier = verify_transaction,
                 rng: Any = None) -> None:
        self.policy = policy or MempoolPolicy()
        self.verify = verify
        self.rng = rng
        self._entries: dict[bytes, _Entry] = {}
        self._spenders: dict[OutPoint, bytes] = {}
        self._vbytes = 0
        self._orphans: dict[bytes, _Orphan] = {}             # wtxid -> orphan, oldest first
        self._orphans_by_parent: dict[bytes, dict[bytes, None]] = {}
        self._orphan_bytes = 0
        self._rolling_min_fee_sat_per_kvb = 0
        self._rolling_updated_s = 0
        self._block_since_fee_bump = False

    # -- queries ------------------------------------------------------------------------------------

    def __contains__(self, txid: object) -> bool:
        return txid in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, txid: bytes) -> Transaction | None:
        entry = self._entries.get(txid)
        return entry.tx if entry is not None else None

    def txids(self) -> tuple[bytes, ...]:
        """Every txid, in acceptance order (parents before children)."""
        return tuple(self._entries)

    def orphan_txids(self) -> tuple[bytes, ...]:
        """The orphans' txids, oldest first."""
        return tuple(o.tx.txid for o in self._orphans.values())

    def entry(self, txid: bytes) -> MempoolEntry | None:
        """The entry for ``txid`` (see :class:`MempoolEntry`), None if absent."""
        e = self._entries.get(txid)
        if e is None:
            return None
        return MempoolEntry(txid=e.txid, wtxid=e.tx.wtxid, fee_sat=e.fee_sat, vsize=e.vsize, weight=e.weight,
                            sigop_cost=e.sigop_cost, time_s=e.time_s, height=e.height,
                            ancestor_count=e.ancestors.count, ancestor_vsize=e.ancestors.vsize,
                            ancestor_fee_sat=e.ancestors.fee_sat, descendant_count=e.descendants.count,
                            descendant_vsize=e.descendants.vsize, descendant_fee_sat=e.descendants.fee_sat,
                            depends=tuple(e.parents), spent_by=tuple(e.children))

    def info(self, now_s: int | None = None) -> MempoolInfo:
        """The pool's totals; the minimum fee rate decayed to ``now_s``
        (unix s) when given, else as last computed."""
        min_fee = self.min_fee_sat_per_kvb(now_s) if now_s is not None else self._current_min_fee()
        return MempoolInfo(size=len(self._entries), vbytes=self._vbytes,
                           usage_bytes=sum(e.tx.total_size for e in self._entries.values()),
                           total_fee_sat=sum(e.fee_sat for e in self._entries.values()),
                           mempool_vbytes_max=self.policy.mempool_vbytes_max, min_fee_sat_per_kvb=min_fee,
                           min_relay_fee_sat_per_kvb=self.policy.min_relay_fee_sat_per_kvb, orphans=len(self._orphans))

    def spender(self, outpoint: OutPoint) -> bytes | None:
        """The txid of the entry spending ``outpoint``, if any."""
        return self._spenders.get(outpoint)

    # -- the rolling minimum fee rate (Core's GetMinFee) -----------------------------------------------

    def _current_min_fee(self) -> int:
        rolling = self._rolling_min_fee_sat_per_kvb
        return max(rolling, self.policy.incremental_relay_fee_sat_per_kvb) if rolling else 0

    def min_fee_sat_per_kvb(self, now_s: int) -> int:
        """The fee rate (sat/kvB) a transaction needs beyond the relay
        minimum while the pool is or was recently full: the rolling
        minimum, decayed since the last block (0 when it has decayed away)."""
        rolling = self._rolling_min_fee_sat_per_kvb
        if not self._block_since_fee_bump or rolling == 0:
            return self._current_min_fee()
        elapsed_s = now_s - self._rolling_updated_s
        if elapsed_s > ROLLING_FEE_UPDATE_INTERVAL_S:
            halflife_s = ROLLING_FEE_HALFLIFE_S
            if self._vbytes < self.policy.mempool_vbytes_max // 4:
                halflife_s //= 4
            elif self._vbytes < self.policy.mempool_vbytes_max // 2:
                halflife_s //= 2
            halvings, rest_s = divmod(elapsed_s, halflife_s)
            rolling = (rolling >> min(halvings, 64)) * (2 * halflife_s - rest_s) // (2 * halflife_s)
            self._rolling_min_fee_sat_per_kvb, self._rolling_updated_s = rolling, now_s
            if 2 * rolling < self.policy.incremental_relay_fee_sat_per_kvb:
                self._rolling_min_fee_sat_per_kvb = 0
        return self._current_min_fee()

    # -- acceptance ---------------------------------------------------------------------------------

    def accept(self, tx: Transaction, utxos: UtxoSet, height: int, median_time_past_s: int, *, now_s: int,
               median_time_past_at: Callable[[int], int] | None = None) -> AcceptResult:
        """Validate ``tx`` for the block after the tip and add it (Core's
        ``AcceptToMemoryPool``), or keep it as an orphan if some parent is
        unknown; then retry the orphans waiting for it.

        Args:
            utxos: the UTXO set at the tip.
            height: the tip's height (the next block is ``height + 1``).
            median_time_past_s: the tip's median time past (unix s), the
                lock-time cutoff for the next block (BIP113).
            now_s: the node's time (unix s): the entry's time, orphan
                expiry, the rolling fee's decay.
            median_time_past_at: the median time past of the block at a
                height of the active chain, for BIP68 time locks.

        Returns:
            an :class:`AcceptResult` (an orphan is a result, not an error).

        Raises:
            RuleViolation: the reasons in the module docstring.
        """
        self._expire_orphans(now_s)
        tip = _Tip(utxos, height, median_time_past_s, median_time_past_at)
        checked = self._check(tx, tip, time_s=now_s, entry_height=height, bypass_fees=False, verify_scripts=True)
        if not isinstance(checked, _Entry):
            return self._add_orphan(tx, checked, now_s)
        self._add(checked)
        removed = self._trim(now_s)
        if checked.txid not in self._entries:
            raise RuleViolation("mempool full", f"{hash_hex(checked.txid)} evicted at once")
        self._remove_orphan(tx.wtxid)
        accepted = [checked.txid, *self._resolve_orphans(checked.txid, tip, now_s, removed)]
        return AcceptResult(txid=tx.txid, orphan=False, fee_sat=checked.fee_sat, vsize=checked.vsize,
                            accepted=tuple(accepted), removed=tuple(removed))

    def _check(self, tx: Transaction, tip: _Tip, *, time_s: int, entry_height: int, bypass_fees: bool,
               verify_scripts: bool) -> _Entry | tuple[bytes, ...]:
        """Every check of ``accept`` but adding: an entry ready to link, or
        the missing parents' txids."""
        check_transaction(tx)
        if tx.is_coinbase():
            raise RuleViolation("coinbase", hash_hex(tx.txid))
        if self.policy.require_standard:
            check_standard(tx, self.policy)
        if tx.stripped_size < MIN_STANDARD_TX_NONWITNESS_BYTES:
            raise RuleViolation("tx-size-small", f"{tx.stripped_size} bytes without witness")
        if not is_final_tx(tx, tip.height + 1, tip.median_time_past_s):
            raise RuleViolation("non-final", f"locked until {tx.locktime}")
        known = self._entries.get(tx.txid)
        if known is not None:
            reason = "txn-already-in-mempool" if known.tx.wtxid == tx.wtxid else "txn-same-nonwitness-data-in-mempool"
            raise RuleViolation(reason, hash_hex(tx.txid))
        for txin in tx.inputs:
            spender = self._spenders.get(txin.prevout)
            if spender is not None:
                raise RuleViolation("txn-mempool-conflict", f"{hash_hex(txin.prevout.txid)}:{txin.prevout.index} "
                                                            f"spent by {hash_hex(spender)}")
        coins = self._coins(tx, tip)
        if not isinstance(coins, UtxoSet):
            return coins
        fee_sat, spent_coins = check_tx_inputs(tx, coins, tip.height + 1)
        if not sequence_locks_satisfied(tx, [c.height for c in spent_coins], tip.height + 1, tip.median_time_past_at):
            raise RuleViolation("non-BIP68-final", hash_hex(tx.txid))
        spent = [c.output for c in spent_coins]
        if self.policy.require_standard:
            check_inputs_standard(tx, spent)
        sigop_cost = transaction_sigop_cost(tx, spent, VerifyFlags.standard())
        if sigop_cost > MAX_STANDARD_TX_SIGOPS_COST:
            raise RuleViolation("bad-txns-too-many-sigops", f"sigop cost {sigop_cost}")
        entry = _Entry(tx, fee_sat, sigop_cost, time_s, entry_height)
        if not bypass_fees:
            self._check_fee(entry, time_s)
        for txin in tx.inputs:
            if txin.prevout.txid in self._entries:
                entry.parents[txin.prevout.txid] = None
        self._check_chain_limits(entry)
        if verify_scripts:
            self._verify_scripts(tx, spent)
        return entry

    def _coins(self, tx: Transaction, tip: _Tip) -> UtxoSet | tuple[bytes, ...]:
        """The coins ``tx`` spends, from the tip or from entries (at height
        tip + 1, as Core's mempool view), as a small UtxoSet; or the txids
        of parents found nowhere."""
        view, missing = UtxoSet(), {}
        for txin in tx.inputs:
            prevout = txin.prevout
            coin = tip.utxos.get(prevout)
            parent = self._entries.get(prevout.txid)
            if coin is None and parent is not None:
                if prevout.index >= len(parent.tx.outputs):
                    raise RuleViolation("bad-txns-inputs-missingorspent", f"{hash_hex(prevout.txid)} has no output "
                                                                          f"{prevout.index}")
                coin = Coin(output=parent.tx.outputs[prevout.index], height=tip.height + 1, is_coinbase=False)
            if coin is None:
                missing[prevout.txid] = None
            else:
                view.coins[prevout] = coin
        if not missing:
            return view
        if any(OutPoint(txid=tx.txid, index=i) in tip.utxos for i in range(len(tx.outputs))):
            raise RuleViolation("txn-already-known", f"{hash_hex(tx.txid)} is confirmed")
        return tuple(missing)

    def _check_fee(self, entry: _Entry, now_s: int) -> None:
        """Core's ``CheckFeeRate``: the rolling minimum, then the relay minimum."""
        pool_fee = fee_at(self.min_fee_sat_per_kvb(now_s), entry.vsize)
        if pool_fee > 0 and entry.fee_sat < pool_fee:
            raise RuleViolation("mempool min fee not met", f"{entry.fee_sat} < {pool_fee}")
        relay_fee = fee_at(self.policy.min_relay_fee_sat_per_kvb, entry.vsize)
        if entry.fee_sat < relay_fee:
            raise RuleViolation("min relay fee not met", f"{entry.fee_sat} < {relay_fee}")

    def _check_chain_limits(self, entry: _Entry) -> None:
        """Core's ``CalculateMemPoolAncestors`` limits, with the new entry."""
        p = self.policy
        ancestors = self._ancestors(entry)
        count, vsize = 1 + len(ancestors), entry.vsize + sum(a.vsize for a in ancestors)
        if count > p.ancestor_count_max or vsize > p.ancestor_vbytes_max:
            raise RuleViolation("too-long-mempool-chain", f"{count} ancestors of {vsize} vB with it")
        for a in ancestors:
            if a.descendants.count + 1 > p.descendant_count_max or a.descendants.vsize + entry.vsize > p.descendant_vbytes_max:
                raise RuleViolation("too-long-mempool-chain", f"too many descendants for {hash_hex(a.txid)}")

    def _verify_scripts(self, tx: Transaction, spent: Sequence[TxOut]) -> None:
        try:
            self.verify(tx, spent, VerifyFlags.standard())
        except RuleViolation as policy_failure:
            try:
                self.verify(tx, spent, VerifyFlags.consensus())
            except RuleViolation as e:
                raise RuleViolation("mandatory-script-verify-flag-failed", f"({e.rule}) {e.detail}") from e
            raise RuleViolation("non-mandatory-script-verify-flag-failed",
                                f"({policy_failure.rule}) {policy_failure.detail}") from policy_failure

    # -- the graph ----------------------------------------------------------------------------------

    def _walk(self, start: Iterable[bytes], links: Callable[[_Entry], dict[bytes, None]]) -> list[_Entry]:
        seen: dict[bytes, None] = {}
        todo = [t for t in start if t in self._entries]
        while todo:
            txid = todo.pop()
            if txid in seen:
                continue
            seen[txid] = None
            todo.extend(t for t in links(self._entries[txid]) if t not in seen)
        return [self._entries[t] for t in seen]

    def _ancestors(self, entry: _Entry) -> list[_Entry]:
        """The in-mempool ancestors of ``entry`` (not itself)."""
        return self._walk(entry.parents, lambda e: e.parents)

    def _descendants(self, entry: _Entry) -> list[_Entry]:
        """The in-mempool descendants of ``entry`` (not itself)."""
        return self._walk(entry.children, lambda e: e.children)

    def _add(self, entry: _Entry) -> None:
        """Link a checked entry (Core's ``addUnchecked``)."""
        assert entry.txid not in self._entries
        ancestors = self._ancestors(entry)
        entry.ancestors.add(entry)
        for a in ancestors:
            entry.ancestors.add(a)
            a.descendants.add(entry)
        for parent in entry.parents:
            self._entries[parent].children[entry.txid] = None
        for txin in entry.tx.inputs:
            assert txin.prevout not in self._spenders
            self._spenders[txin.prevout] = entry.txid
        self._entries[entry.txid] = entry
        self._vbytes += entry.vsize

    def _remove(self, txids: Iterable[bytes]) -> list[bytes]:
        """Remove entries (Core's ``RemoveStaged``), fixing the totals of
        the ancestors and descendants that stay. Returns the txids removed."""
        doomed = {t: self._entries[t] for t in dict.fromkeys(txids) if t in self._entries}
        for entry in doomed.values():
            for a in self._ancestors(entry):
                if a.txid not in doomed:
                    a.descendants.add(entry, -1)
            for d in self._descendants(entry):
                if d.txid not in doomed:
                    d.ancestors.add(entry, -1)
        for txid, entry in doomed.items():
            del self._entries[txid]
            for parent in entry.parents:
                if parent in self._entries:
                    del self._entries[parent].children[txid]
            for child in entry.children:
                if child in self._entries:
                    del self._entries[child].parents[txid]
            for txin in entry.tx.inputs:
                del self._spenders[txin.prevout]
            self._vbytes -= entry.vsize
        return list(doomed)

    def _with_descendants(self, txid: bytes) -> list[bytes]:
        entry = self._entries[txid]
        return [txid, *(d.txid for d in self._descendants(entry))]

    def _trim(self, now_s: int) -> list[bytes]:
        """Evict lowest descendant-score packages until within the bound
        (Core's ``TrimToSize``), raising the rolling minimum fee rate."""
        evicted: list[bytes] = []
        while self._vbytes > self.policy.mempool_vbytes_max:
            worst = min(self._entries.values(), key=_descendant_score)
            package = worst.descendants
            rate = package.fee_sat * 1000 // package.vsize + self.policy.incremental_relay_fee_sat_per_kvb
            if rate > self._rolling_min_fee_sat_per_kvb:
                self._rolling_min_fee_sat_per_kvb, self._rolling_updated_s = rate, now_s
                self._block_since_fee_bump = False
            evicted += self._remove(self._with_descendants(worst.txid))
        return evicted

    # -- orphans (Core's TxOrphanage) -----------------------------------------------------------------

    def _add_orphan(self, tx: Transaction, missing_parents: tuple[bytes, ...], now_s: int) -> AcceptResult:
        result = AcceptResult(txid=tx.txid, orphan=True, fee_sat=0, vsize=virtual_size(tx.weight, 0), accepted=(),
                              removed=(), missing_parents=missing_parents)
        if tx.wtxid in self._orphans:
            return result
        size_bytes = tx.total_size
        if tx.weight > MAX_STANDARD_TX_WEIGHT or size_bytes > self.policy.orphan_tx_bytes_max:
            raise RuleViolation("bad-txns-inputs-missingorspent", f"an orphan of weight {tx.weight} is not kept")
        removed = []
        while self._orphans and (len(self._orphans) >= self.policy.orphan_transactions_max
                                 or self._orphan_bytes + size_bytes > self.policy.orphan_tx_bytes_max):
            victim = self.rng.choice(list(self._orphans)) if self.rng is not None else next(iter(self._orphans))
            removed.append(self._orphans[victim].tx.txid)
            self._remove_orphan(victim)
        self._orphans[tx.wtxid] = _Orphan(tx=tx, time_s=now_s, size_bytes=size_bytes)
        self._orphan_bytes += size_bytes
        for txin in tx.inputs:
            self._orphans_by_parent.setdefault(txin.prevout.txid, {})[tx.wtxid] = None
        return msgspec.structs.replace(result, removed=tuple(removed))

    def _remove_orphan(self, wtxid: bytes) -> None:
        orphan = self._orphans.pop(wtxid, None)
        if orphan is None:
            return
        self._orphan_bytes -= orphan.size_bytes
        for txin in orphan.tx.inputs:
            waiting = self._orphans_by_parent.get(txin.prevout.txid)
            if waiting is not None:
                waiting.pop(wtxid, None)
                if not waiting:
                    del self._orphans_by_parent[txin.prevout.txid]

    def _expire_orphans(self, now_s: int) -> None:
        for wtxid in [w for w, o in self._orphans.items() if o.time_s + ORPHAN_TX_EXPIRE_S <= now_s]:
            self._remove_orphan(wtxid)

    def _resolve_orphans(self, parent: bytes, tip: _Tip, now_s: int, removed: list[bytes]) -> list[bytes]:
        """Retry the orphans spending outputs of ``parent``, and of every
        orphan accepted on the way (Core's orphan work set). Returns the
        txids accepted; appends those dropped or evicted to ``removed``."""
        accepted: list[bytes] = []
        parents = [parent]
        while parents:
            for wtxid in list(self._orphans_by_parent.get(parents.pop(0), {})):
                orphan = self._orphans.get(wtxid)
                if orphan is None:
                    continue
                self._remove_orphan(wtxid)
                try:
                    checked = self._check(orphan.tx, tip, time_s=now_s, entry_height=tip.height, bypass_fees=False,
                                          verify_scripts=True)
                except RuleViolation:
                    removed.append(orphan.tx.txid)
                    continue
                if not isinstance(checked, _Entry):   # (another parent is still missing: wait on)
                    removed += self._add_orphan(orphan.tx, checked, orphan.time_s).removed
                    continue
                self._add(checked)
                removed += self._trim(now_s)
                if checked.txid in self._entries:
                    accepted.append(checked.txid)
                    parents.append(checked.txid)
        return accepted

    # -- mining (Core's BlockAssembler::addPackageTxs) --------------------------------------------------

    def block_template(self, weight_max: int, sigop_cost_max: int) -> BlockTemplate:
        """Choose transactions for the next block by ancestor-package fee
        rate, highest first (ties by txid), each package whole and parents
        first, within ``weight_max`` (weight units) and ``sigop_cost_max``
        left for them (the caller keeps room for its coinbase: Core
        reserves 4000 WU and 400 sigop cost). Packages below
        ``block_min_fee_sat_per_kvb`` are left out."""
        package = {txid: _Totals.copy(e.ancestors) for txid, e in self._entries.items()}
        heap = [(-Fraction(totals.fee_sat, totals.vsize), txid) for txid, totals in package.items()]
        heapq.heapify(heap)
        included: dict[bytes, None] = {}
        weight = sigop_cost = failures = 0
        while heap:
            neg_rate, txid = heapq.heappop(heap)
            totals = package[txid]
            if txid in included or -neg_rate != Fraction(totals.fee_sat, totals.vsize):
                continue   # (included already, or a stale key: the package shrank and was pushed again)
            if totals.fee_sat < fee_at(self.policy.block_min_fee_sat_per_kvb, totals.vsize):
                break
            if weight + totals.weight > weight_max or sigop_cost + totals.sigop_cost > sigop_cost_max:
                failures += 1
                if failures > TEMPLATE_FAILURES_MAX and weight > weight_max - TEMPLATE_NEARLY_FULL_WEIGHT:
                    break
                continue
            entry = self._entries[txid]
            members = [a for a in self._ancestors(entry) if a.txid not in included] + [entry]
            members.sort(key=lambda e: (e.ancestors.count, e.txid))   # an ancestor has fewer ancestors
            weight, sigop_cost = weight + totals.weight, sigop_cost + totals.sigop_cost
            for member in members:
                included[member.txid] = None
            for member in members:
                for d in self._descendants(member):
                    if d.txid not in included:
                        package[d.txid].add(member, -1)
                        heapq.heappush(heap, (-Fraction(package[d.txid].fee_sat, package[d.txid].vsize), d.txid))
        txs = [self._entries[t] for t in included]
        return BlockTemplate(transactions=tuple(e.tx for e in txs), fees_sat=tuple(e.fee_sat for e in txs),
                             fee_total_sat=sum(e.fee_sat for e in txs), weight=weight, sigop_cost=sigop_cost)

    # -- blocks -------------------------------------------------------------------------------------

    def remove_for_block(self, block: Block) -> BlockRemoval:
        """A block was connected (Core's ``removeForBlock``): drop its
        transactions, then every entry spending an outpoint it spent, with
        descendants; orphans it includes or conflicts with go too. The
        rolling minimum fee rate may decay again from now on."""
        confirmed = self._remove(tx.txid for tx in block.transactions if tx.txid in self._entries)
        conflicted: list[bytes] = []
        spent = {}
        for tx in block.transactions:
            for txin in tx.inputs:
                spent[txin.prevout] = None
                spender = self._spenders.get(txin.prevout)
                if spender is not None:
                    conflicted += self._remove(self._with_descendants(spender))
        block_txids = {tx.txid for tx in block.transactions}
        for wtxid, orphan in list(self._orphans.items()):
            if orphan.tx.txid in block_txids or any(txin.prevout in spent for txin in orphan.tx.inputs):
                self._remove_orphan(wtxid)
        self._block_since_fee_bump = True
        return BlockRemoval(confirmed=tuple(confirmed), conflicted=tuple(conflicted))

    def readd_after_disconnect(self, txs: Sequence[Transaction], utxos: UtxoSet, height: int, median_time_past_s: int,
                               *, now_s: int, median_time_past_at: Callable[[int], int] | None = None) -> ReorgResult:
        """A block was disconnected (Core's ``MaybeUpdateMempoolForReorg``):
        rebuild the pool on the new tip from the block's transactions (in
        block order, coinbase skipped) and then the old entries (in their
        order, keeping time and height), each re-checked without the fee
        rules and, for old entries, without re-running scripts; whatever
        fails is dropped, then the pool is trimmed. Arguments as
        :meth:`accept`, for the new tip."""
        tip = _Tip(utxos, height, median_time_past_s, median_time_past_at)
        old = list(self._entries.values())
        self._entries, self._spenders, self._vbytes = {}, {}, 0
        readded: list[bytes] = []
        removed: list[bytes] = []
        candidates = [(tx, now_s, height, True) for tx in txs if not tx.is_coinbase()]
        candidates += [(e.tx, e.time_s, e.height, False) for e in old]
        for tx, time_s, entry_height, is_new in candidates:
            if tx.txid in self._entries:   # (an old entry the block held too: remove_for_block was not called)
                continue
            try:
                checked = self._check(tx, tip, time_s=time_s, entry_height=entry_height, bypass_fees=True,
                                      verify_scripts=is_new)
            except RuleViolation:
                checked = ()
            if isinstance(checked, _Entry):
                self._add(checked)
                if is_new:
                    readded.append(tx.txid)
            else:
                removed.append(tx.txid)
        removed += self._trim(now_s)
        return ReorgResult(readded=tuple(t for t in readded if t in self._entries), removed=tuple(removed))

    def check(self) -> None:
        """Assert every invariant (Core's ``CTxMemPool::check``; for tests)."""
        spenders = {}
        for txid, entry in self._entries.items():
            ancestors, descendants = _Totals(), _Totals()
            for a in (entry, *self._ancestors(entry)):
                ancestors.add(a)
            for d in (entry, *self._descendants(entry)):
                descendants.add(d)
            for mine, recomputed in ((entry.ancestors, ancestors), (entry.descendants, descendants)):
                assert [getattr(mine, f) for f in _Totals.__slots__] == [getattr(recomputed, f) for f in _Totals.__slots__]
            assert all(txid in self._entries[p].children for p in entry.parents)
            assert all(txid in self._entries[c].parents for c in entry.children)
            assert list(entry.parents) == list(dict.fromkeys(i.prevout.txid for i in entry.tx.inputs
                                                             if i.prevout.txid in self._entries))
            spenders.update((i.prevout, txid) for i in entry.tx.inputs)
        assert spenders == self._spenders
        assert self._vbytes == sum(e.vsize for e in self._entries.values())
        assert self._orphan_bytes == sum(o.size_bytes for o in self._orphans.values())


def _descendant_score(entry: _Entry) -> tuple[Fraction, int, bytes]:
    """Eviction order, lowest first: the higher of the entry's fee rate and
    its descendant package's, then the newer first, then by txid (Core's
    ``CompareTxMemPoolEntryByDescendantScore``, made total)."""
    own = Fraction(entry.fee_sat, entry.vsize)
    package = Fraction(entry.descendants.fee_sat, entry.descendants.vsize)
    return max(own, package), -entry.time_s, entry.txid
