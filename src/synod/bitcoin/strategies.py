"""Miner strategies: what a miner does with the blocks it finds (whitepaper
section 11; Eyal and Sirer 2014, "Majority is not enough"), and two
deliberately unsafe fork choices the simulator's checkers must catch.

Honest mining is :class:`~synod.bitcoin.node.BitcoinNode` itself: mine on
the tip of the most-work chain, publish every block at once. The others
are subclasses that change only what the paper changes.

- :class:`DoubleSpendAttacker` (whitepaper section 11). States, as a
  transition table (:data:`DOUBLE_SPEND_TRANSITIONS`): ``racing`` from the
  start: it broadcasts a *payment* to the merchant and, from the block
  before it, mines a *secret chain* whose first block holds a *conflicting
  spend* of the same coin back to itself; it keeps the secret headers in
  its header tree (so :meth:`BitcoinNode.build_block` can build on them) and
  the bodies to itself. After each block (its own or the honest chain's)
  it compares: once the payment has ``z`` confirmations and the secret
  chain is strictly longer than the honest one from the fork, it
  ``released`` the secret chain (nodes follow the most work; a tie keeps
  the first seen, so it must lead by one block); once the honest chain
  leads by ``give_up_behind_blocks`` it has ``abandoned`` (the exact
  formula assumes it never gives up: from ``d`` behind it would still win
  with probability ``(q/p)^(d+1)``, so the cap costs at most that much).
  After either it mines honestly on its own tip.
- :class:`SelfishMiner` (Eyal and Sirer, section 3, Algorithm 1): the
  pool mines on its *private chain* and publishes only to match or
  override the public one. With ``delta_prev`` = private length minus
  public length before an event: when the pool finds a block at
  ``delta_prev == 0`` with a private branch of two (it won a tie), it
  publishes all; when others find one, at 0 it adopts the public chain, at
  1 it publishes its last block (a tie: state 0'), at 2 it publishes all
  (it overrides, leading by one), above 2 it publishes its first
  unpublished block. Its connected chain is its private chain; peers'
  ``getheaders`` are answered only up to its first unpublished block.
- Unsafe fork choices (subclasses of :class:`~synod.bitcoin._blocktree.BlockTree`
  installed by :class:`UnsafeForkChoiceNode`): ``never-reorg`` extends its
  own tip only and never disconnects a block (two sides of a healed
  partition never agree again); ``drop-disconnected-txs``
  (:class:`DropDisconnectedTxsNode`) reorganizes but does not return the
  disconnected blocks' transactions to the mempool (a transaction buried
  only on the losing side is lost).

Everything is deterministic: time and randomness come from ``ctx``.
"""

from __future__ import annotations

import msgspec

from synod.bitcoin import messages as M
from synod.bitcoin._blocktree import BlockTree
from synod.bitcoin.chain import HeaderChain, HeaderEntry
from synod.bitcoin.node import BLOCKS_FILE, BitcoinConfig, BitcoinNode
from synod.bitcoin.primitives import Block, OutPoint, Transaction, TxIn, TxOut
from synod.core import Context
from synod.core.records import pack_record

__all__ = [
    "DoubleSpendAttacker", "DoubleSpendPlan", "DOUBLE_SPEND_TRANSITIONS", "SelfishMiner", "NeverReorgTree",
    "UnsafeForkChoiceNode", "DropDisconnectedTxsNode", "tagged_script", "spend",
]

FEE_SAT = 10_000                 # what the payment and the conflicting spend each leave to miners
OWN_BLOCKS_MAX = 1_000_000       # the selfish pool remembers its own blocks' hashes up to this many
SECRET_BLOCKS_MAX = 10_000       # a secret chain longer than this is a bug (the attacker gives up long before)


def tagged_script(tag: str) -> bytes:
    """``<tag> OP_DROP OP_TRUE``: anyone can spend it (no signature, as the
    default OP_TRUE payout), and the tag names whose output it is."""
    data = tag.encode()
    assert 0 < len(data) < 76, "a direct push"
    return bytes([len(data)]) + data + b"\x75\x51"


def spend(prevout: OutPoint, value_sat: int, script_pubkey: bytes, *, tag: bytes = b"") -> Transaction:
    """A transaction spending one anyone-can-spend output (``51`` or a
    :func:`tagged_script`) to ``script_pubkey``, leaving ``FEE_SAT``.
    Its scriptSig pushes ``tag`` padded to 8 bytes and drops it (the stack
    is left clean, as Core's CLEANSTACK policy wants), which keeps it above
    the 65-byte minimum (Core's ``tx-size-small``) and tells apart two
    spends that pay the same script."""
    assert value_sat > FEE_SAT
    push = tag.ljust(8, b"\0")[:75]
    return Transaction(version=2, locktime=0,
                       inputs=(TxIn(prevout=prevout, script_sig=bytes([len(push)]) + push + b"\x75"),),
                       outputs=(TxOut(value=value_sat - FEE_SAT, script_pubkey=script_pubkey),))


# -- whitepaper section 11: the double-spend race ----------------------------------------------------------------

class DoubleSpendPlan(msgspec.Struct, frozen=True, kw_only=True):
    """The attack (whitepaper section 11): pay ``merchant_script`` the coin
    ``coin`` (an output of ``coin_value_sat`` the attacker can spend), wait
    for ``z`` confirmations of it on the honest chain, give up when
    ``give_up_behind_blocks`` behind.

    Raises:
        ValueError: ``z`` < 1 or a cap < 1.
    """

    coin: OutPoint
    coin_value_sat: int
    merchant_script: bytes
    z: int
    give_up_behind_blocks: int = 20

    def __post_init__(self) -> None:
        if self.z < 1:
            raise ValueError("z: at least 1 confirmation")
        if self.give_up_behind_blocks < 1:
            raise ValueError("give_up_behind_blocks: at least 1")


RACING, RELEASED, ABANDONED = "racing", "released", "abandoned"
# (state, event) -> state: "lead" = payment at z confirmations and the secret chain strictly longer;
# "behind" = the honest chain leads by give_up_behind_blocks.
DOUBLE_SPEND_TRANSITIONS: dict[tuple[str, str], str] = {
    (RACING, "block"): RACING, (RACING, "lead"): RELEASED, (RACING, "behind"): ABANDONED,
}


class DoubleSpendAttacker(BitcoinNode):
    """Whitepaper section 11's attacker (see the module docstring).

    After ``on_start`` the attack runs at once: ``payment`` and
    ``conflict`` are the two spends, ``fork_height`` the height of the
    block before the payment, ``secret`` the secret chain's blocks;
    ``state`` is one of racing, released, abandoned."""

    def __init__(self, config: BitcoinConfig, plan: DoubleSpendPlan) -> None:
        super().__init__(config)
        self.plan = plan
        self.state = RACING
        self.payment = spend(plan.coin, plan.coin_value_sat, plan.merchant_script, tag=b"pay")
        self.conflict = spend(plan.coin, plan.coin_value_sat, self.payout_script, tag=b"back")
        self.fork_height = 0
        self.fork_hash = b""
        self.secret: list[Block] = []
        self.secret_headers = HeaderChain(self.params)

    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        self.fork_height, self.fork_hash = self.tree.height, self.tree.tip.hash
        self.secret_headers = HeaderChain.from_checkpoint(   # (from genesis: the retarget rules look far back)
            self.params, [e.header for e in self.tree.headers.active[:self.fork_height + 1]], 0)
        self.secret = []
        self.state = RACING
        ctx.trace("btc_attack", fork_height=self.fork_height, payment=self.payment.txid[::-1].hex(),
                  conflict=self.conflict.txid[::-1].hex())
        self._on_tx(ctx, ctx.node_id, M.TxMsg.from_tx(self.payment))   # into its mempool, announced to peers
        assert self.payment.txid in self.mempool, "the payment must be valid on the tip"

    def _step(self, ctx: Context, event: str) -> None:
        nxt = DOUBLE_SPEND_TRANSITIONS.get((self.state, event))
        assert nxt is not None, f"no transition from {self.state} on {event}"
        if nxt == self.state:
            return
        self.state = nxt
        ctx.trace("btc_attack_" + nxt, secret_blocks=len(self.secret), honest_blocks=self.tree.height - self.fork_height)
        if nxt == RELEASED:
            for block in self.secret:     # its own tree reorganizes onto the secret chain and announces it
                self.receive_block(ctx, block)

    def payment_confirmations(self) -> int:
        """Confirmations of the payment on this node's connected chain
        (the block holding it counts as the first); 0 if not in it."""
        for height in range(self.fork_height + 1, self.tree.height + 1):
            block = self.tree.block_at(height)
            assert block is not None
            if any(tx.txid == self.payment.txid for tx in block.transactions):
                return self.tree.height - height + 1
        return 0

    def _judge(self, ctx: Context) -> None:
        if self.state != RACING:
            return
        honest = self.tree.height - self.fork_height
        if honest - len(self.secret) >= self.plan.give_up_behind_blocks:
            self._step(ctx, "behind")
        elif self.payment_confirmations() >= self.plan.z and len(self.secret) > honest:
            self._step(ctx, "lead")
        else:
            self._step(ctx, "block")

    def _mine(self, ctx: Context) -> None:
        if self.state != RACING:
            super()._mine(ctx)
            return
        parent = self.secret[-1].hash if self.secret else self.fork_hash
        # build_block reads the parent's header (and the tip's, for a witness commitment) from self.tree:
        # for this one call, that is the secret chain's headers.
        honest_tree, self.tree = self.tree, _SecretView(self.secret_headers)  # type: ignore[assignment]
        try:
            block = self.build_block(ctx, parent=parent, transactions=[self.conflict] if not self.secret else [])
        finally:
            self.tree = honest_tree
        if block is None:
            return
        assert len(self.secret) < SECRET_BLOCKS_MAX
        self.secret_headers.accept_header(block.header, self._now_s(ctx))
        self.secret.append(block)
        self.blocks_mined += 1
        ctx.trace("btc_secret_block", secret_blocks=len(self.secret))
        self._judge(ctx)

    def receive_block(self, ctx: Context, block: Block) -> None:
        super().receive_block(ctx, block)
        self._judge(ctx)


class _SecretView:
    """What :meth:`BitcoinNode.build_block` reads of a block tree, over the secret chain's headers."""

    def __init__(self, headers: HeaderChain) -> None:
        self.headers = headers

    @property
    def tip(self) -> HeaderEntry:
        return self.headers.tip


# -- Eyal and Sirer 2014: selfish mining ---------------------------------------------------------------------------

class SelfishMiner(BitcoinNode):
    """Eyal and Sirer's selfish pool (Algorithm 1; see the module docstring).

    ``public_height``: the length of the longest public chain it knows;
    ``private_branch_len``: its branch's blocks since it last agreed with
    the public chain; ``unpublished``: hashes of its blocks not yet shown
    (in chain order)."""

    def __init__(self, config: BitcoinConfig) -> None:
        super().__init__(config)
        self.public_height = 0
        self.private_branch_len = 0
        self.unpublished: list[bytes] = []
        self.own: set[bytes] = set()

    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        self.public_height = self.tree.height
        self.private_branch_len = 0
        self.unpublished = []

    def _mine(self, ctx: Context) -> None:
        block = self.build_block(ctx)          # on its private chain's tip
        if block is None:
            return
        self.blocks_mined += 1
        delta_prev = self.tree.height - self.public_height
        self._keep_private(ctx, block)
        self.unpublished.append(block.hash)
        if len(self.own) < OWN_BLOCKS_MAX:
            self.own.add(block.hash)
        self.private_branch_len += 1
        ctx.trace("btc_selfish_found", delta_prev=delta_prev, private_branch_len=self.private_branch_len)
        if delta_prev == 0 and self.private_branch_len == 2:   # won the tie (state 0'): publish all
            self._publish(ctx, len(self.unpublished))
            self.private_branch_len = 0

    def _keep_private(self, ctx: Context, block: Block) -> None:
        """Keep its own block (durably) and mine on it, telling no one."""
        assert self.tree.add_block(block, self._now_s(ctx))
        ctx.disk.append(BLOCKS_FILE, pack_record(msgspec.msgpack.encode(M.BlockMsg.from_block(block))))
        ctx.disk.sync()
        disconnected, connected = self.tree.activate()
        assert not disconnected and connected == [block], "its own block extends its private chain"
        self._update_mempool(ctx, disconnected, connected)

    def _on_headers(self, ctx: Context, src: str, msg: M.Headers) -> None:
        """Others found a block (Algorithm 1's second handler) when a
        header extends the public chain: the pool reacts to the header
        (its length is all it needs), not to the body, which a node
        fetches only for the most-work chain."""
        BitcoinNode._on_headers(self, ctx, src, msg)
        for header in msg.block_headers():
            entry = self.tree.headers.get(header.hash)
            if entry is not None and header.hash not in self.own and entry.height > self.public_height:
                self._others_found(ctx, entry.height)

    def _others_found(self, ctx: Context, height: int) -> None:
        delta_prev = self.tree.height - self.public_height
        self.public_height = height
        ctx.trace("btc_selfish_others", delta_prev=delta_prev, public_height=height)
        if delta_prev <= 0:            # they win: adopt the public chain (the tree follows its work)
            self.unpublished = []
            self.private_branch_len = 0
        elif delta_prev == 1:          # publish the last block: a tie (state 0')
            self._publish(ctx, len(self.unpublished))
        elif delta_prev == 2:          # publish all: lead by one, override
            self._publish(ctx, len(self.unpublished))
            self.private_branch_len = 0
        else:                          # publish the first unpublished block (to the public height)
            self._publish(ctx, 1)

    def _publish(self, ctx: Context, count: int) -> None:
        shown, self.unpublished = self.unpublished[:count], self.unpublished[count:]
        if not shown:
            return
        headers = tuple(self.tree.bodies[h].header.serialize() for h in shown)
        self.public_height = max(self.public_height, self.tree.headers.get(shown[-1]).height)  # type: ignore[union-attr]
        ctx.trace("btc_selfish_publish", blocks=len(shown), public_height=self.public_height)
        for peer in self.peers:
            ctx.send(peer, M.Headers(headers=headers))

    def shows(self, block_hash: bytes) -> bool:
        """getheaders is answered up to the first unpublished block, never past it."""
        return block_hash not in self.unpublished

    def _on_getdata(self, ctx: Context, src: str, msg: M.GetData) -> None:
        hidden = set(self.unpublished)
        asked = tuple(item for item in msg.items if item.hash not in hidden)
        if len(asked) < len(msg.items):
            ctx.send(src, M.NotFound(items=tuple(item for item in msg.items if item.hash in hidden)))
        if asked:
            BitcoinNode._on_getdata(self, ctx, src, M.GetData(items=asked))


SelfishMiner._HANDLERS = {**BitcoinNode._HANDLERS, M.GetHeaders: SelfishMiner._on_getheaders,
                          M.GetData: SelfishMiner._on_getdata, M.Headers: SelfishMiner._on_headers}


# -- deliberately unsafe fork choices ------------------------------------------------------------------------------

class NeverReorgTree(BlockTree):
    """UNSAFE: a block tree that only ever extends its tip: a branch with
    more work that forks below the tip is never connected."""

    def _best_connectable(self) -> list[HeaderEntry] | None:
        path = super()._best_connectable()
        while path is not None and path[0].prev is not None and path[0].prev.hash != self.chain[-1]:
            self.candidates.discard(path[-1].hash)   # a fork: never taken
            path = super()._best_connectable()
        return path


class UnsafeForkChoiceNode(BitcoinNode):
    """A node whose block tree is ``tree_class`` (every tree it builds,
    at start and on restart, is one)."""

    tree_class: type[BlockTree] = NeverReorgTree

    @property  # type: ignore[override]
    def tree(self) -> BlockTree:
        return self.__dict__["_tree"]  # type: ignore[no-any-return]

    @tree.setter
    def tree(self, value: BlockTree) -> None:
        if type(value) is not self.tree_class:
            assert value.height == 0 and not value.bodies, "only a fresh tree is replaced"
            value = self.tree_class(value.params, value.verify_script)
        self.__dict__["_tree"] = value


class DropDisconnectedTxsNode(BitcoinNode):
    """UNSAFE: after a reorganization, the disconnected blocks'
    transactions are dropped instead of returned to the mempool."""

    def _update_mempool(self, ctx: Context, disconnected: list[Block], connected: list[Block]) -> None:
        for block in connected:
            self.mempool.remove_for_block(block)
