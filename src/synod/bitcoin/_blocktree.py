"""The block tree of a full node: every header and body it has, and the
chain it follows (whitepaper section 4: "nodes always consider the longest
chain to be the correct one"; Core's ``ActivateBestChain``).

Headers go into a :class:`~synod.bitcoin.chain.HeaderChain` (each checked
in the context of its parent). A body is kept once its header is in and
it passes the context-free block rules. The *connected* chain is the one
whose UTXO set the node holds: genesis, then one block per height, each
connected with :func:`~synod.bitcoin.chain.connect_block` (its undo record
kept). A block whose body arrives with more cumulative work than the
connected tip becomes a *candidate*; :meth:`BlockTree.activate` moves the
connected chain to the best candidate whose branch has every body:
disconnecting back to the fork, connecting forward. A block that breaks a
rule when connected is marked invalid with everything built on it, and the
next best candidate is tried; one whose body was tampered with under a good
header (``validation.MUTATION_RULES``) only loses that body, so the real one
can still come. Equal work never replaces the tip: the chain seen first
wins a tie.

Invariants: ``chain[h]`` is the hash of the connected block at height h
and ``chain[0]`` is genesis; ``utxos.best_block == chain[-1]``; every
connected block but genesis has a body and an undo record; no candidate
is invalid.
"""

from __future__ import annotations

from collections.abc import Callable

from synod.bitcoin.chain import BlockUndo, HeaderChain, HeaderEntry, ScriptVerifier, UtxoSet, connect_block, disconnect_block
from synod.bitcoin.errors import RuleViolation
from synod.bitcoin.pow import ConsensusParams
from synod.bitcoin.primitives import Block, BlockHeader
from synod.bitcoin.validation import MUTATION_RULES, check_block, contextual_check_block
from synod.core.errors import LocalProtocolError

__all__ = ["BlockTree", "BLOCK_BODIES_MAX"]

BLOCK_BODIES_MAX = 200_000   # bodies held in memory (a simulated chain, or a regtest one)


class BlockTree:
    """Headers, bodies and the connected chain of one node.

    Args:
        params: the network's consensus parameters.
        verify_script: checks a transaction's scripts when its block is
            connected (the interpreter's ``verify_transaction``), or None.
    """

    def __init__(self, params: ConsensusParams, verify_script: ScriptVerifier | None) -> None:
        self.params = params
        self.verify_script = verify_script
        self.headers = HeaderChain(params)
        genesis = self.headers.tip.hash
        self.utxos = UtxoSet()
        self.utxos.best_block = genesis
        self.chain: list[bytes] = [genesis]
        self.bodies: dict[bytes, Block] = {}
        self.undos: dict[bytes, BlockUndo] = {}
        self.invalid: set[bytes] = set()
        self.invalid_rules: dict[bytes, str] = {}   # block found invalid itself -> the rule it broke
        self.arrival: dict[bytes, int] = {}       # body -> its arrival number (first seen wins a tie)
        self.candidates: set[bytes] = set()       # bodies with more work than the tip when last looked

    # -- reading -------------------------------------------------------------------------------------
    @property
    def tip(self) -> HeaderEntry:
        entry = self.headers.get(self.chain[-1])
        assert entry is not None
        return entry

    @property
    def height(self) -> int:
        return len(self.chain) - 1

    def is_connected(self, entry: HeaderEntry) -> bool:
        return entry.height < len(self.chain) and self.chain[entry.height] == entry.hash

    def has_body(self, block_hash: bytes) -> bool:
        return block_hash in self.bodies or block_hash == self.chain[0]

    def block_at(self, height: int) -> Block | None:
        """The connected block at ``height`` (None for genesis or past the tip)."""
        if not 0 < height < len(self.chain):
            return None
        return self.bodies[self.chain[height]]

    def branch_above_chain(self, entry: HeaderEntry) -> list[HeaderEntry] | None:
        """The headers from just above the connected chain up to ``entry``
        (where bodies are to be fetched to reach it); None if one of them is
        invalid."""
        branch = []
        cursor: HeaderEntry | None = entry
        while cursor is not None and not self.is_connected(cursor):
            if cursor.hash in self.invalid:
                return None
            branch.append(cursor)
            cursor = cursor.prev
        return branch[::-1] if cursor is not None else None

    # -- adding --------------------------------------------------------------------------------------
    def add_header(self, header: BlockHeader, adjusted_time_s: int) -> HeaderEntry:
        """Accept a header in the context of its parent.

        Raises:
            RuleViolation: a header rule (``prev-blk-not-found`` when its
                parent is unknown; ``bad-prevblk`` when the parent is invalid).
        """
        if header.prev_block in self.invalid:
            raise RuleViolation("bad-prevblk", "its parent is invalid")
        return self.headers.accept_header(header, adjusted_time_s)

    def add_block(self, block: Block, adjusted_time_s: int) -> bool:
        """Keep a block's body (its header is accepted first); True if it was
        new. It becomes a candidate if it has more work than the tip.

        Raises:
            RuleViolation: a header rule, or a context-free block rule
                (the block is then marked invalid).
            LocalProtocolError: the tree holds ``BLOCK_BODIES_MAX`` bodies.
        """
        entry = self.add_header(block.header, adjusted_time_s)
        if block.hash in self.bodies or self.is_connected(entry):
            return False
        if block.hash in self.invalid:
            raise RuleViolation("duplicate-invalid", "the block is known to be invalid")
        try:
            check_block(block, self.params)
        except RuleViolation as e:
            if e.rule not in MUTATION_RULES:   # (a tampered body says nothing about the header)
                self._mark_invalid(entry, e.rule)
            raise
        if len(self.bodies) >= BLOCK_BODIES_MAX:
            raise LocalProtocolError(f"the block tree holds its limit of {BLOCK_BODIES_MAX} bodies")
        self.bodies[block.hash] = block
        self.arrival[block.hash] = len(self.arrival)
        if entry.chain_work > self.tip.chain_work:
            self.candidates.add(block.hash)
        return True

    # -- following the most work ---------------------------------------------------------------------
    def activate(self, median_time_past_s_of: Callable[[HeaderEntry], int] | None = None
                 ) -> tuple[list[Block], list[Block]]:
        """Move the connected chain to the best candidate; returns the blocks
        disconnected (tip first) and connected (in order). A block that
        breaks a rule is marked invalid (with its descendants) and skipped."""
        disconnected: list[Block] = []
        connected: list[Block] = []
        while True:
            choice = self._best_connectable()
            if choice is None:
                self._prune_candidates()
                return disconnected, connected
            path = choice
            fork_height = path[0].height - 1
            while self.height > fork_height:
                disconnected.append(self._disconnect_tip())
            for entry in path:
                block = self.bodies[entry.hash]
                try:
                    self._connect(entry, block)
                except RuleViolation as e:
                    if e.rule in MUTATION_RULES:   # a tampered body: forget it, the real one may come
                        self._forget_body(entry.hash)
                    else:
                        self._mark_invalid(entry, e.rule)
                    break
                connected.append(block)
            self._prune_candidates()

    def _best_connectable(self) -> list[HeaderEntry] | None:
        """The path to the candidate with most work (first seen on a tie)
        whose branch has every body; None when no candidate beats the tip."""
        tip_work = self.tip.chain_work
        ranked = []
        for block_hash in self.candidates:
            entry = self.headers.get(block_hash)
            assert entry is not None
            if entry.chain_work > tip_work:
                ranked.append((-entry.chain_work, self.arrival[block_hash], entry))
        ranked.sort(key=lambda r: (r[0], r[1]))
        for _, _, entry in ranked:
            path = self._path_from_chain(entry)
            if path is not None:
                return path
        return None

    def _path_from_chain(self, entry: HeaderEntry) -> list[HeaderEntry] | None:
        """The entries from just above the connected chain up to ``entry``,
        or None if one lacks its body."""
        path: list[HeaderEntry] = []
        cursor: HeaderEntry | None = entry
        while cursor is not None and not self.is_connected(cursor):
            if cursor.hash not in self.bodies or cursor.hash in self.invalid:
                return None
            path.append(cursor)
            cursor = cursor.prev
        if cursor is None:
            return None   # (below a checkpoint root: cannot happen from genesis)
        return path[::-1]

    def _connect(self, entry: HeaderEntry, block: Block) -> None:
        assert entry.prev is not None and self.is_connected(entry.prev) and entry.prev.height == self.height
        contextual_check_block(block, height=entry.height, prev_median_time_past_s=entry.prev.median_time_past_s,
                               params=self.params)
        undo = connect_block(self.utxos, block, height=entry.height, params=self.params,
                             median_time_past_at=lambda h: self.headers.ancestor(entry, h).median_time_past_s,
                             verify_script=self.verify_script)
        self.undos[block.hash] = undo
        self.chain.append(block.hash)

    def _disconnect_tip(self) -> Block:
        block_hash = self.chain.pop()
        disconnect_block(self.utxos, self.undos.pop(block_hash))
        self.candidates.add(block_hash)   # (the branch it was on may win again if the new one fails)
        return self.bodies[block_hash]

    def _forget_body(self, block_hash: bytes) -> None:
        self.bodies.pop(block_hash, None)
        self.arrival.pop(block_hash, None)
        self.candidates.discard(block_hash)

    def _mark_invalid(self, entry: HeaderEntry, rule: str) -> None:
        """``entry`` (which broke ``rule``) and every header built on it are invalid."""
        self.invalid.add(entry.hash)
        self.invalid_rules[entry.hash] = rule
        self.candidates.discard(entry.hash)
        for other in list(self.candidates):
            cursor = self.headers.get(other)
            while cursor is not None and cursor.height > entry.height:
                cursor = cursor.prev
            if cursor is not None and cursor.hash == entry.hash:
                self.invalid.add(other)
                self.candidates.discard(other)

    def _prune_candidates(self) -> None:
        tip_work = self.tip.chain_work
        self.candidates = {h for h in self.candidates
                           if (e := self.headers.get(h)) is not None and e.chain_work > tip_work}
