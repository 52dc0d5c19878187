"""Bitcoin in the simulator (issue 14 section 3): fork resolution under the
shared nemesis, and the whitepaper's and Eyal and Sirer's attacks measured
against their formulas (:mod:`synod.bitcoin.analysis`).

**Fork resolution** (:func:`btc_scenario`, a scenario of the fault runner
:mod:`synod.harness.runner`). Full nodes ``n1..`` and miners ``m1..``
(hash shares summing to 1, one block every ``block_interval_ms`` in all)
start from a common chain of ``BOOTSTRAP_BLOCKS`` blocks (Core's
``-loadblock``: written to each node's empty ``blocks.dat`` before it
replays it), so coinbase outputs are mature from the start. A wallet
client ``wallet`` (never faulted; it relays nothing, so it cannot bridge a
partition) acts as a light client over the P2P messages: it asks a random
node for headers, fetches the next mature coinbase's block, spends that
coinbase (OP_TRUE: no signature) with ``tx`` to the same node and asks it
back with ``getdata`` to record whether it was accepted. The nemesis
(``kill``, ``partition``, ``pause``, ``loss``, ``skew``, ``corrupt``;
partitions last ``PARTITION_BLOCKS`` block intervals, so they split the
hash power for long enough to fork) runs for the safety phase; then it
heals, and the liveness phase waits for convergence. Checkers:

- ``convergence``: within ``convergence_bound_ms`` of the heal every node
  is on one tip, and that tip has at least the work of every block any
  node holds. The bound: two sync intervals (the sides of a healed
  partition exchange ``getheaders`` at least once per interval), a getdata
  timeout (a request lost to a fault is asked again) and 15 mean block
  times of the smallest miner (the time its re-mined transactions may
  wait, below); the time taken is reported.
- ``valid-blocks``: no node ever rejected a block or a header (every block
  here is honestly mined, so any rule named is a bug).
- ``no-double-spend``: walking each node's connected chain from genesis
  (at heal, every ``CHAIN_CHECK_INTERVAL_MS`` and at the end), every input
  spends an output created earlier in that chain and not spent before:
  the chain is checked by itself, not by trusting the UTXO code.
- ``acknowledged``: every wallet transaction buried by
  ``ACKNOWLEDGED_DEPTH`` blocks in some node's chain when the faults ended
  is in the final chain (still, or re-mined after a reorg returned it to
  the mempool) or back in a running node's mempool; the liveness phase
  waits for this too. (A reorg returns transactions to the mempools of
  the nodes that held the losing branch, but nodes do not announce
  re-added transactions, as Core does not: when those nodes are not
  miners, the transaction waits there until a wallet rebroadcasts it.)
- ``reorgs``: the deepest reorganization seen, beside the longest
  partition (a report, never a failure).

The unsafe options (:data:`UNSAFE_OPTIONS`): ``never-reorg`` (nodes only
extend their own tip: ``convergence`` catches it) and
``drop-disconnected-txs`` (a reorg does not return transactions to the
mempool: ``acknowledged`` catches a transaction buried on the losing side
of a partition).

**Double spend** (:func:`run_double_spend_race`, whitepaper section 11):
one race per seed on three nodes, ``merchant`` (no hash power),
``honest`` (``1 - q``) and ``attacker``
(:class:`~synod.bitcoin.strategies.DoubleSpendAttacker`, ``q``), with a
block every ``RACE_INTERVAL_MS`` and links of 0.1-0.5 ms (a tie caused by
latency is about as likely as a block in half a millisecond: 5e-4 of the
interval). The nodes start from a snapshot of a common chain of
``RACE_PREFIX_BLOCKS`` blocks whose coinbases pay the attacker; it pays
the merchant with the first one. Success: the merchant's chain ends with
the conflicting spend confirmed and the payment not. The attacker gives up
``give_up_behind_blocks`` (25) behind: that changes the success
probability by at most ``(q/p)^26`` (2.6e-10 at q = 0.3), far below the
statistical error.

**Selfish mining** (:func:`run_selfish_mining`, Eyal and Sirer 2014): a
:class:`~synod.bitcoin.strategies.SelfishMiner` ``pool`` of share
``alpha`` and ``m`` honest miners ``h1..hm`` of equal share. Gamma comes
from where the nodes sit: the pool is 0.5-1 ms from every honest miner,
the honest miners 20-25 ms from each other, so when an honest miner finds
a block that the pool answers with its own, every other honest miner sees
the pool's block first and mines on it: ``gamma = (m - 1) / m`` of the
honest hash power (m = 1: gamma 0; m = 2: gamma 1/2). Relative revenue is
the pool's share of the blocks in an honest miner's final chain.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

import msgspec

from synod.bitcoin import analysis
from synod.bitcoin import messages as M
from synod.bitcoin._blocktree import BlockTree
from synod.bitcoin.constants import COINBASE_MATURITY
from synod.bitcoin.interpreter import verify_transaction
from synod.bitcoin.node import BLOCKS_FILE, BitcoinConfig, BitcoinNode
from synod.bitcoin.pow import REGTEST
from synod.bitcoin.primitives import Block, OutPoint, parse_header
from synod.bitcoin.strategies import (
    DoubleSpendAttacker,
    DoubleSpendPlan,
    DropDisconnectedTxsNode,
    SelfishMiner,
    UnsafeForkChoiceNode,
    spend,
    tagged_script,
)
from synod.core import Context, Node
from synod.core.errors import ConfigError
from synod.core.records import pack_record
from synod.harness.runner import ILLEGAL, OK, RunResult, Scenario, Verdict, run_simulated
from synod.sim import LinkModel, Nemesis, Network, Simulator, Tracer, Uniform, chaos_nemesis

__all__ = [
    "BTC_NEMESIS_KINDS", "UNSAFE_OPTIONS", "BtcCell", "ForkObserver", "WalletNode", "btc_scenario", "run_btc",
    "replay_command", "double_spends_in", "chain_blocks", "RaceResult", "run_double_spend_race",
    "DoubleSpendFigures", "measure_double_spend", "SelfishResult", "run_selfish_mining", "SelfishFigures",
    "measure_selfish_mining",
]

BTC_NEMESIS_KINDS: tuple[str, ...] = ("kill", "partition", "pause", "loss", "skew", "corrupt")
UNSAFE_OPTIONS: tuple[str, ...] = ("never-reorg", "drop-disconnected-txs")
WALLET = "wallet"
BOOTSTRAP_BLOCKS = 110           # the common chain every node starts from: 10 coinbases mature at once
PARTITION_BLOCKS = 15            # a partition lasts this many mean block intervals
ACKNOWLEDGED_DEPTH = 6           # a wallet transaction this deep when the faults end must survive
CHAIN_CHECK_INTERVAL_MS = 1_000.0
WALLET_TXS_MAX = 10_000
ASK_BACK_MS = 20.0               # the wallet asks a node for its transaction back this long after sending it
OBSERVED_MAX = 10_000            # rejections and reorgs kept by the observer
RACE_INTERVAL_MS = 1_000.0
RACE_PREFIX_BLOCKS = COINBASE_MATURITY + 1
RACE_BLOCKS_MAX = 100_000        # virtual time limit of a race, in mean block intervals


# -- a common chain to start from ----------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _prefix_blocks(count: int, payout_script: bytes) -> tuple[Block, ...]:
    """``count`` blocks on regtest's genesis, their coinbases paying
    ``payout_script`` (a solo miner in a simulator of its own, seed 0)."""
    sim = Simulator(0)
    sim.add_node("miner", lambda: BitcoinNode(BitcoinConfig(hash_share=1.0, block_interval_ms=1_000.0,
                                                            payout_script_hex=payout_script.hex())))
    node = sim.hosts["miner"].node
    assert isinstance(node, BitcoinNode)
    sim.run(until=lambda: node.tree.height >= count)
    return tuple(node.tree.block_at(h) for h in range(1, count + 1))  # type: ignore[misc]


@lru_cache(maxsize=8)
def _bootstrap_records(count: int) -> bytes:
    """The ``blocks.dat`` of a node holding the first ``count`` blocks."""
    return b"".join(pack_record(msgspec.msgpack.encode(M.BlockMsg.from_block(b)))
                    for b in _prefix_blocks(count, b"\x51"))


@lru_cache(maxsize=8)
def _tree_snapshot(count: int, payout_script: bytes) -> bytes:
    """A pickled :class:`BlockTree` holding the prefix, connected."""
    tree = BlockTree(REGTEST, verify_transaction)
    for block in _prefix_blocks(count, payout_script):
        tree.add_block(block, block.header.time)
    tree.activate()
    return pickle.dumps(tree)


class _FromSnapshot(BitcoinNode):
    """A node that starts from a snapshot of the common chain instead of
    its (empty) blocks file (no crashes in a race: nothing to replay)."""

    snapshot: bytes = b""

    def _replay_blocks(self, ctx: Context) -> None:
        self.tree = pickle.loads(self.snapshot)


class _RaceNode(_FromSnapshot):
    pass


class _RaceAttacker(_FromSnapshot, DoubleSpendAttacker):
    pass


# -- fork resolution: the observer, the wallet, the checkers ---------------------------------------------------------

@dataclass(slots=True)
class ForkObserver:
    """What the scenario's nodes report across their restarts: blocks or
    headers rejected (time, node, message, rule), transactions rejected
    (counted), reorganizations (time, node, depth)."""

    block_rejections: list[tuple[float, str, str, str]] = field(default_factory=list)
    tx_rejections: int = 0
    reorgs: list[tuple[float, str, int]] = field(default_factory=list)
    double_spends: list[str] = field(default_factory=list)


class _Observed(BitcoinNode):
    """A scenario node: starts from the bootstrap chain, reports to the observer."""

    observer: ForkObserver
    bootstrap: bytes = b""

    def _replay_blocks(self, ctx: Context) -> None:
        if ctx.disk.read(BLOCKS_FILE) is None and self.bootstrap:
            ctx.disk.write(BLOCKS_FILE, self.bootstrap)   # Core's -loadblock
            ctx.disk.sync()
        super()._replay_blocks(ctx)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        super().on_message(ctx, src, msg)
        if self.rejected:
            obs = self.observer
            for rule in self.rejected:
                if isinstance(msg, (M.BlockMsg, M.Headers)):
                    if len(obs.block_rejections) < OBSERVED_MAX:
                        obs.block_rejections.append((ctx.now_ms, ctx.node_id, type(msg).__name__, rule))
                else:
                    obs.tx_rejections += 1
            self.rejected.clear()

    def receive_block(self, ctx: Context, block: Block) -> None:
        before = len(self.reorgs)
        super().receive_block(ctx, block)
        for depth in self.reorgs[before:]:
            if len(self.observer.reorgs) < OBSERVED_MAX:
                self.observer.reorgs.append((ctx.now_ms, ctx.node_id, depth))


_NODE_CLASSES: dict[str, type[BitcoinNode]] = {
    "": type("ObservedNode", (_Observed,), {}),
    "never-reorg": type("ObservedNeverReorgNode", (_Observed, UnsafeForkChoiceNode), {}),
    "drop-disconnected-txs": type("ObservedDropTxsNode", (_Observed, DropDisconnectedTxsNode), {}),
}


@dataclass(slots=True)
class WalletTx:
    """One spend the wallet made: ``accepted`` None until the node answers
    the ``getdata`` that asks it back (True: in its mempool)."""

    txid: bytes
    coin_height: int
    server: str
    submitted_ms: float
    accepted: bool | None = None


class WalletNode(Node):
    """The light-client wallet of the module docstring. ``txs``: its
    spends, in order (at most ``WALLET_TXS_MAX``)."""

    def __init__(self, servers: tuple[str, ...], spend_interval_ms: float, txs: list[WalletTx]) -> None:
        self.servers = servers
        self.spend_interval_ms = spend_interval_ms
        self.txs = txs
        self.by_txid = {t.txid: t for t in txs}
        self.hashes: list[bytes] = []
        self.heights: dict[bytes, int] = {}
        self.next_height = 1 + (max((t.coin_height for t in txs), default=0))
        self.asked: bytes = b""

    def on_start(self, ctx: Context) -> None:
        genesis = REGTEST.genesis.hash
        self.hashes, self.heights = [genesis], {genesis: 0}
        ctx.set_timer("tick", self.spend_interval_ms)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name.startswith("ask:"):
            t = self.by_txid[bytes.fromhex(name[4:])]
            ctx.send(t.server, M.GetData(items=(M.InvItem(inv_type=M.MSG_TX, hash=t.txid),)))
            return
        server = self.servers[ctx.rng.randrange(len(self.servers))]
        ctx.send(server, M.GetHeaders(locator=self._locator()))
        ctx.set_timer("tick", self.spend_interval_ms)

    def _locator(self) -> tuple[bytes, ...]:
        out, height, step = [], len(self.hashes) - 1, 1
        while height > 0:
            out.append(self.hashes[height])
            if len(out) >= 10:
                step *= 2
            height -= step
        out.append(self.hashes[0])
        return tuple(out[:M.MAX_LOCATOR_SZ])

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if isinstance(msg, M.Headers):
            self._on_headers(ctx, src, msg)
        elif isinstance(msg, M.BlockMsg):
            self._on_block(ctx, src, msg.block)
        elif isinstance(msg, M.TxMsg):
            t = self.by_txid.get(msg.tx.txid)
            if t is not None:
                t.accepted = True
        elif isinstance(msg, M.NotFound):
            for item in msg.items:
                t = self.by_txid.get(item.hash)
                if t is not None and t.accepted is None:
                    t.accepted = False
        else:
            ctx.trace("wallet_ignored", msg=type(msg).__name__)

    def _on_headers(self, ctx: Context, src: str, msg: M.Headers) -> None:
        headers = [parse_header(h) for h in msg.headers]
        if not headers or headers[0].prev_block not in self.heights:
            return
        base = self.heights[headers[0].prev_block]
        for dropped in self.hashes[base + 1:]:
            del self.heights[dropped]
        del self.hashes[base + 1:]
        for header in headers:
            self.heights[header.hash] = len(self.hashes)
            self.hashes.append(header.hash)
        if len(msg.headers) == M.MAX_HEADERS_RESULTS:
            ctx.send(src, M.GetHeaders(locator=self._locator()))
        elif len(self.hashes) - 1 >= self.next_height + COINBASE_MATURITY and len(self.txs) < WALLET_TXS_MAX:
            self.asked = self.hashes[self.next_height]
            ctx.send(src, M.GetData(items=(M.InvItem(inv_type=M.MSG_BLOCK, hash=self.asked),)))

    def _on_block(self, ctx: Context, src: str, block: Block) -> None:
        if block.hash != self.asked:
            return
        self.asked = b""
        coinbase = block.transactions[0]
        tx = spend(OutPoint(txid=coinbase.txid, index=0), coinbase.outputs[0].value, b"\x51",
                   tag=self.next_height.to_bytes(4, "little"))
        record = WalletTx(tx.txid, self.next_height, src, ctx.now_ms)
        self.txs.append(record)
        self.by_txid[tx.txid] = record
        self.next_height += 1
        ctx.send(src, M.TxMsg.from_tx(tx))
        ctx.set_timer(f"ask:{tx.txid.hex()}", ASK_BACK_MS)   # (asked at once, the getdata could overtake the tx)


def chain_blocks(tree: BlockTree) -> list[Block]:
    """The connected chain's blocks above genesis, in order."""
    return [tree.bodies[h] for h in tree.chain[1:]]


def double_spends_in(blocks: list[Block]) -> list[str]:
    """Walk a chain from genesis: every input must spend an output created
    earlier in it (genesis's coinbase is unspendable) and not spent before.
    Returns the problems found (at most 10), empty if none."""
    created: set[OutPoint] = set()
    spent: set[OutPoint] = set()
    problems: list[str] = []
    for height, block in enumerate(blocks, start=1):
        for tx in block.transactions:
            if not tx.is_coinbase():
                for txin in tx.inputs:
                    where = f"block {height} tx {tx.txid[::-1].hex()[:16]} spends {txin.prevout.txid[::-1].hex()[:16]}"
                    if txin.prevout in spent:
                        problems.append(f"{where}:{txin.prevout.index} a second time (double spend)")
                    elif txin.prevout not in created:
                        problems.append(f"{where}:{txin.prevout.index}, not an output of the chain before it")
                    spent.add(txin.prevout)
                    if len(problems) >= 10:
                        return problems
            created.update(OutPoint(txid=tx.txid, index=i) for i in range(len(tx.outputs)))
    return problems


@dataclass(frozen=True, slots=True)
class BtcCell:
    """The network of the fork scenario (times in virtual ms)."""

    full_nodes: int = 4
    hash_shares: tuple[float, ...] = (0.45, 0.35, 0.2)
    block_interval_ms: float = 200.0
    sync_interval_ms: float = 2_000.0
    getdata_timeout_ms: float = 5_000.0
    spend_interval_ms: float = 150.0

    def __post_init__(self) -> None:
        if not self.hash_shares or any(s <= 0 for s in self.hash_shares) or abs(sum(self.hash_shares) - 1) > 1e-9:
            raise ConfigError("hash_shares: positive, summing to 1")
        if self.full_nodes < 0 or len(self.hash_shares) + self.full_nodes < 2:
            raise ConfigError("at least two nodes")

    def server_ids(self) -> tuple[str, ...]:
        return (tuple(f"n{i + 1}" for i in range(self.full_nodes))
                + tuple(f"m{i + 1}" for i in range(len(self.hash_shares))))

    def config(self, node_id: str) -> BitcoinConfig:
        share = self.hash_shares[int(node_id[1:]) - 1] if node_id.startswith("m") else 0.0
        return BitcoinConfig(hash_share=share, block_interval_ms=self.block_interval_ms,
                             sync_interval_ms=self.sync_interval_ms, getdata_timeout_ms=self.getdata_timeout_ms)

    @property
    def convergence_bound_ms(self) -> float:
        """See the module docstring: two sync intervals, a getdata timeout,
        15 mean block times of the smallest miner."""
        return (2 * self.sync_interval_ms + self.getdata_timeout_ms
                + 15 * self.block_interval_ms / min(self.hash_shares))


class _RecordingNemesis(Nemesis):
    """The shared nemesis, noting when partitions start and end."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.partition_log: list[tuple[float, str]] = []

    def _emit(self, action: str, **fields_: Any) -> None:
        if action in ("partition", "heal_partition") and self._sim is not None and len(self.partition_log) < OBSERVED_MAX:
            self.partition_log.append((self._sim.now_ms, action))
        super()._emit(action, **fields_)

    def longest_partition_ms(self, end_ms: float) -> float:
        longest, start = 0.0, None
        for t, action in self.partition_log + [(end_ms, "heal_partition")]:
            if action == "heal_partition" and start is not None:
                longest, start = max(longest, t - start), None
            elif action == "partition":
                start = t
        return longest


def btc_nemesis(kinds: tuple[str, ...], cell: BtcCell) -> _RecordingNemesis | None:
    """The shared chaos schedule on the nodes, partitions lasting
    ``PARTITION_BLOCKS`` block intervals, ``corrupt`` hitting ``blocks.dat``."""
    if not kinds:
        return None
    base = chaos_nemesis(kinds, interval_ms=500.0, disk_paths=(BLOCKS_FILE,))
    nemesis = _RecordingNemesis(**{f.name: getattr(base, f.name) for f in fields(base) if f.init})
    nemesis.partition_duration_ms = PARTITION_BLOCKS * cell.block_interval_ms
    nemesis.targets = cell.server_ids()
    return nemesis


# -- fork resolution: the scenario -----------------------------------------------------------------------------------

@dataclass(slots=True)
class BtcRun:
    """What one fork-resolution run saw, beside the verdicts: the wallet's
    spends; the acknowledged txids (buried ``ACKNOWLEDGED_DEPTH`` deep when
    the faults ended); heal and convergence times (virtual ms; None: never
    converged); the final chain's height; the deepest reorg and the
    longest partition (ms)."""

    txs: list[WalletTx] = field(default_factory=list)
    observer: ForkObserver = field(default_factory=ForkObserver)
    acknowledged: dict[bytes, tuple[str, int]] = field(default_factory=dict)
    healed_ms: float | None = None
    converged_ms: float | None = None
    converged_on_most_work: bool = False
    final_height: int = 0
    deepest_reorg: int = 0
    longest_partition_ms: float = 0.0


def _up_nodes(sim: Simulator, servers: tuple[str, ...]) -> list[BitcoinNode]:
    out = []
    for sid in servers:
        host = sim.hosts[sid]
        if host.up and isinstance(host.node, BitcoinNode):
            out.append(host.node)
    return out


def _acknowledged(sim: Simulator, servers: tuple[str, ...], wallet_txids: set[bytes]) -> dict[bytes, tuple[str, int]]:
    """Wallet txids at least ``ACKNOWLEDGED_DEPTH`` deep in some running node's chain -> (node, height)."""
    out: dict[bytes, tuple[str, int]] = {}
    for sid in servers:
        host = sim.hosts[sid]
        if not host.up or not isinstance(host.node, BitcoinNode):
            continue
        tree = host.node.tree
        for height in range(1, tree.height - ACKNOWLEDGED_DEPTH + 2):
            block = tree.block_at(height)
            assert block is not None
            for tx in block.transactions[1:]:
                if tx.txid in wallet_txids:
                    out.setdefault(tx.txid, (sid, height))
    return out


def _txids(tree: BlockTree) -> set[bytes]:
    return {tx.txid for block in chain_blocks(tree) for tx in block.transactions[1:]}


def _check_chains(sim: Simulator, servers: tuple[str, ...], run: BtcRun) -> None:
    for node in _up_nodes(sim, servers):
        for problem in double_spends_in(chain_blocks(node.tree)):
            if len(run.observer.double_spends) < OBSERVED_MAX:
                run.observer.double_spends.append(f"at {sim.now_ms:.0f} ms on {node.config.hash_share and 'miner'} "
                                                  f"{problem}")


def _heaviest_held(nodes: list[BitcoinNode]) -> int:
    """The most chain work of any valid block a node holds."""
    return max((n.tree.headers.get(h).chain_work for n in nodes for h in n.tree.bodies  # type: ignore[union-attr]
                if h not in n.tree.invalid), default=0)


def _verdicts(sim: Simulator, cell: BtcCell, run: BtcRun, servers: tuple[str, ...]) -> list[Verdict]:
    nodes = _up_nodes(sim, servers)
    bound = cell.convergence_bound_ms
    best = max(nodes, key=lambda n: n.tree.tip.chain_work)
    out = []
    if run.converged_ms is None or run.healed_ms is None:
        tips = {n.tree.tip.hash for n in nodes}
        out.append(Verdict("convergence", ILLEGAL, f"{len(tips)} different tips among {len(nodes)} running nodes "
                                                   f"{bound:.0f} ms (the bound) after the faults stopped"))
    elif not run.converged_on_most_work:
        out.append(Verdict("convergence", ILLEGAL, "the nodes agreed on a tip with less work than a block one held"))
    else:
        out.append(Verdict("convergence", OK, f"{len(servers)} nodes on one tip (the most work any held) "
                                              f"{run.converged_ms - run.healed_ms:.0f} ms after the faults stopped "
                                              f"(bound {bound:.0f} ms)"))
    rejected = run.observer.block_rejections
    out.append(Verdict("valid-blocks", ILLEGAL if rejected else OK,
                       f"{len(rejected)} honest blocks or headers rejected; first: {rejected[0]}" if rejected else
                       "no node rejected a block or header (every block was honestly mined)", rejected))
    _check_chains(sim, servers, run)
    doubles = run.observer.double_spends
    out.append(Verdict("no-double-spend", ILLEGAL if doubles else OK,
                       f"{len(doubles)} bad spends in a chain; first: {doubles[0]}" if doubles else
                       "every chain walked from genesis spends each output at most once, and only outputs before it",
                       doubles))
    final = _txids(best.tree)
    pooled = {t for n in nodes for t in run.acknowledged if t not in final and t in n.mempool}
    missing = sorted(t[::-1].hex()[:16] for t in run.acknowledged if t not in final and t not in pooled)
    out.append(Verdict("acknowledged", ILLEGAL if missing else OK,
                       f"{len(missing)} of {len(run.acknowledged)} acknowledged transactions lost (in neither the final "
                       f"chain nor a mempool); first: {missing[0]}" if missing else
                       f"all {len(run.acknowledged)} transactions {ACKNOWLEDGED_DEPTH} deep when the faults ended are in "
                       f"the final chain" + (f" or back in a mempool ({len(pooled)}: re-added after a reorg on nodes "
                                             f"that do not relay them)" if pooled else ""), missing))
    run.final_height = best.tree.height
    run.deepest_reorg = max((d for _, _, d in run.observer.reorgs), default=0)
    out.append(Verdict("reorgs", OK, f"deepest reorg {run.deepest_reorg} blocks; longest partition "
                                     f"{run.longest_partition_ms:.0f} ms ({run.longest_partition_ms / cell.block_interval_ms:.0f}"
                                     f" mean block intervals)"))
    return out


def btc_scenario(sim: Simulator, *, cell: BtcCell | None = None, time_ms: float = 20_000.0,
                 kinds: tuple[str, ...] = BTC_NEMESIS_KINDS, unsafe: str = "", replay: str = "",
                 run: BtcRun | None = None) -> Scenario:
    """The fork-resolution scenario of the module docstring (times in
    virtual ms); ``run`` collects what it saw.

    Raises:
        ConfigError: an unknown unsafe option or nemesis kind.
    """
    if unsafe not in _NODE_CLASSES:
        raise ConfigError(f"unknown unsafe option {unsafe!r}; choose from {', '.join(UNSAFE_OPTIONS)}")
    cell = cell or BtcCell()
    r = run if run is not None else BtcRun()
    servers = cell.server_ids()
    node_class = _NODE_CLASSES[unsafe]
    bootstrap = _bootstrap_records(BOOTSTRAP_BLOCKS)

    def make(sid: str) -> Callable[[], Node]:
        def build() -> Node:
            node = node_class(cell.config(sid))
            node.observer, node.bootstrap = r.observer, bootstrap  # type: ignore[attr-defined]
            return node
        return build

    nemesis = btc_nemesis(kinds, cell)
    wallet_txids: set[bytes] = set()
    state: dict[str, Any] = {"tip": b"", "done": False}

    def tester(now_ms: float) -> float | None:
        _check_chains(sim, servers, r)
        return now_ms + CHAIN_CHECK_INTERVAL_MS if r.healed_ms is None else None

    def after_heal(now_ms: float) -> None:
        r.healed_ms = now_ms
        wallet_txids.update(t.txid for t in r.txs)
        r.acknowledged = _acknowledged(sim, servers, wallet_txids)
        r.longest_partition_ms = nemesis.longest_partition_ms(now_ms) if nemesis is not None else 0.0

    def liveness_done() -> bool:
        tips = set()
        for sid in servers:
            host = sim.hosts[sid]
            if not host.ready or not isinstance(host.node, BitcoinNode):
                return False
            tips.add(host.node.tree.chain[-1])
        if len(tips) != 1:
            return False
        if r.converged_ms is None:
            r.converged_ms = sim.now_ms
            nodes = _up_nodes(sim, servers)
            r.converged_on_most_work = nodes[0].tree.tip.chain_work >= _heaviest_held(nodes)
        tip = tips.pop()
        if tip != state["tip"]:   # (the chain is walked once per new common tip, not per event)
            state["tip"] = tip
            node = sim.hosts[servers[0]].node
            assert isinstance(node, BitcoinNode)
            final = _txids(node.tree)
            state["done"] = all(t in final or any(t in n.mempool for n in _up_nodes(sim, servers))
                                for t in r.acknowledged)
        return bool(state["done"])

    return Scenario(servers={sid: make(sid) for sid in servers},
                    clients={WALLET: lambda: WalletNode(servers, cell.spend_interval_ms, r.txs)},
                    nemesis=nemesis, tester=tester, safety_ms=time_ms, liveness_ms=cell.convergence_bound_ms,
                    liveness_done=liveness_done, after_heal=after_heal,
                    check=lambda: _verdicts(sim, cell, r, servers), replay=replay, history=r)


def replay_command(seed: int, *, time: str = "20s", nemesis: str = ",".join(BTC_NEMESIS_KINDS), unsafe: str = "",
                   trace: str = "") -> str:
    """The ``synod sim btc`` command that replays one fork-resolution run."""
    cmd = f"synod sim btc --seed {seed} --time {time} --nemesis {nemesis or chr(39) * 2}"
    return cmd + (f" --unsafe {unsafe}" if unsafe else "") + (f" --trace {trace}" if trace else "")


def run_btc(seed: int, *, time_ms: float = 20_000.0, kinds: tuple[str, ...] = BTC_NEMESIS_KINDS, unsafe: str = "",
            cell: BtcCell | None = None, tracer: Tracer | None = None,
            progress: Callable[[float, float], None] | None = None, replay: str | None = None) -> RunResult:
    """One seeded fork-resolution run (:func:`btc_scenario`) in the shared
    fault runner; ``result.scenario.history`` is its :class:`BtcRun`.

    Raises:
        ConfigError: an unknown unsafe option or nemesis kind.
    """
    if replay is None:
        replay = replay_command(seed, time=f"{time_ms / 1000:g}s", nemesis=",".join(kinds), unsafe=unsafe)
    return run_simulated(seed, lambda sim: btc_scenario(sim, cell=cell, time_ms=time_ms, kinds=kinds, unsafe=unsafe,
                                                        replay=replay),
                         network=Network(LinkModel(latency=Uniform(1.0, 5.0))), tracer=tracer, progress=progress)


# -- whitepaper section 11: the double-spend race ---------------------------------------------------------------------

ATTACKER_SCRIPT = tagged_script("attacker")
MERCHANT_SCRIPT = tagged_script("merchant")


@dataclass(frozen=True, slots=True)
class RaceResult:
    """One race: ``success`` (the merchant's chain holds the conflicting
    spend, not the payment); the attacker's final ``state``; its secret
    blocks and the honest chain's blocks since the fork when it decided;
    ``virtual_ms`` of the race."""

    seed: int
    success: bool
    state: str
    secret_blocks: int
    honest_blocks: int
    virtual_ms: float


def _race_node(cls: type[_FromSnapshot], config: BitcoinConfig, snapshot: bytes, *args: Any) -> Callable[[], Node]:
    def build() -> Node:
        node = cls(config, *args)
        node.snapshot = snapshot
        return node
    return build


def run_double_spend_race(seed: int, q: float, z: int, *, give_up_behind_blocks: int = 20,
                          interval_ms: float = RACE_INTERVAL_MS, tracer: Tracer | None = None) -> RaceResult:
    """One double-spend race (whitepaper section 11; see the module
    docstring) on its own simulator seeded with ``seed``.

    Raises:
        ConfigError: ``q`` not in (0, 1/2) or ``z`` < 1.
    """
    if not 0.0 < q < 0.5:
        raise ConfigError(f"q: the attacker's hash share, in (0, 1/2), not {q}")
    if z < 1:
        raise ConfigError(f"z: at least 1 confirmation, not {z}")
    snapshot = _tree_snapshot(RACE_PREFIX_BLOCKS, ATTACKER_SCRIPT)
    coinbase = _prefix_blocks(RACE_PREFIX_BLOCKS, ATTACKER_SCRIPT)[0].transactions[0]
    plan = DoubleSpendPlan(coin=OutPoint(txid=coinbase.txid, index=0), coin_value_sat=coinbase.outputs[0].value,
                           merchant_script=MERCHANT_SCRIPT, z=z, give_up_behind_blocks=give_up_behind_blocks)
    sim = Simulator(seed, network=Network(LinkModel(latency=Uniform(0.1, 0.5))), tracer=tracer)
    # No faults: periodic getheaders are only for healing partitions, so rarely.
    common = {"block_interval_ms": interval_ms, "sync_interval_ms": 100 * interval_ms}
    ids = ("merchant", "honest", "attacker")
    sim.add_node("merchant", _race_node(_RaceNode, BitcoinConfig(**common), snapshot), peers=ids)
    sim.add_node("honest", _race_node(_RaceNode, BitcoinConfig(hash_share=1 - q, **common), snapshot), peers=ids)
    sim.add_node("attacker", _race_node(_RaceAttacker, BitcoinConfig(hash_share=q, payout_script_hex=ATTACKER_SCRIPT.hex(),
                                                                     **common), snapshot, plan), peers=ids)
    attacker, merchant = sim.hosts["attacker"].node, sim.hosts["merchant"].node
    assert isinstance(attacker, DoubleSpendAttacker) and isinstance(merchant, BitcoinNode)
    limit_ms = RACE_BLOCKS_MAX * interval_ms
    sim.run(until_ms=limit_ms, until=lambda: attacker.state != "racing")
    assert attacker.state != "racing", f"seed {seed}: the race did not end within {limit_ms:.0f} virtual ms"
    decided = (len(attacker.secret), attacker.tree.height - attacker.fork_height)
    conflict = OutPoint(txid=attacker.conflict.txid, index=0)
    if attacker.state == "released":   # the merchant follows within a few latencies, or a tie keeps it (then it races on)
        sim.run(until_ms=sim.now_ms + limit_ms, until=lambda: conflict in merchant.tree.utxos
                or merchant.tree.height - attacker.tree.height >= give_up_behind_blocks)
    txids = _txids(merchant.tree)
    success = attacker.conflict.txid in txids and attacker.payment.txid not in txids
    return RaceResult(seed, success, attacker.state, decided[0], decided[1], sim.now_ms)


@dataclass(frozen=True, slots=True)
class DoubleSpendFigures:
    """Races at one (q, z): successes, the measured rate with its 95%
    Wilson interval (and the 99.9% one tests assert with), beside the
    whitepaper's approximation and the exact probability."""

    q: float
    z: int
    races: int
    successes: int
    first_seed: int
    interval95: tuple[float, float]
    interval999: tuple[float, float]
    nakamoto: float
    exact: float

    @property
    def rate(self) -> float:
        return self.successes / self.races

    @property
    def agrees(self) -> bool:
        """The exact probability lies in the measured 95% interval."""
        return self.interval95[0] <= self.exact <= self.interval95[1]


def measure_double_spend(q: float, z: int, races: int, *, first_seed: int = 1, give_up_behind_blocks: int = 20,
                         progress: Callable[[int], None] | None = None) -> DoubleSpendFigures:
    """``races`` races at (q, z), seeds ``first_seed..``; ``progress(done)``
    after each.

    Raises:
        ConfigError: an argument out of range.
    """
    if races < 1:
        raise ConfigError("races: at least 1")
    successes = 0
    for i in range(races):
        successes += run_double_spend_race(first_seed + i, q, z, give_up_behind_blocks=give_up_behind_blocks).success
        if progress is not None:
            progress(i + 1)
    return DoubleSpendFigures(q, z, races, successes, first_seed, analysis.proportion_interval(successes, races),
                              analysis.proportion_interval(successes, races, 0.999),
                              analysis.nakamoto_success_probability(q, z),
                              analysis.exact_success_probability(q, z, must_lead_by=1))


# -- Eyal and Sirer 2014: selfish mining ------------------------------------------------------------------------------

POOL_SCRIPT = tagged_script("pool")
HONEST_SCRIPT = tagged_script("honest")
HONEST_GROUPS_MAX = 8


def honest_groups(gamma: float) -> int:
    """The number ``m`` of honest miners with ``gamma = (m - 1) / m``.

    Raises:
        ConfigError: gamma is not (m - 1) / m for some m in 1..8.
    """
    for m in range(1, HONEST_GROUPS_MAX + 1):
        if math.isclose(gamma, (m - 1) / m, abs_tol=1e-6):
            return m
    raise ConfigError(f"gamma {gamma}: the simulator makes gamma = (m-1)/m with m honest miners "
                      f"(0, 0.5, 0.667, 0.75, ...)")


@dataclass(frozen=True, slots=True)
class SelfishResult:
    """One selfish-mining run: the pool's and the honest miners' blocks in
    the final main chain, the blocks the pool mined (orphans included)."""

    seed: int
    alpha: float
    gamma: float
    pool_blocks: int
    honest_blocks: int
    pool_mined: int

    @property
    def relative_revenue(self) -> float:
        return self.pool_blocks / (self.pool_blocks + self.honest_blocks)


def run_selfish_mining(seed: int, alpha: float, gamma: float, *, blocks: int = 2_000,
                       interval_ms: float = RACE_INTERVAL_MS, tracer: Tracer | None = None) -> SelfishResult:
    """A selfish pool of share ``alpha`` against honest miners placed for
    ``gamma`` (module docstring), until the main chain has ``blocks``.

    Raises:
        ConfigError: alpha not in (0, 1/2), gamma not (m - 1) / m, blocks < 1.
    """
    if not 0.0 < alpha < 0.5:
        raise ConfigError(f"alpha: the pool's hash share, in (0, 1/2), not {alpha}")
    if blocks < 1:
        raise ConfigError("blocks: at least 1")
    m = honest_groups(gamma)
    honest = tuple(f"h{i + 1}" for i in range(m))
    network = Network(LinkModel(latency=Uniform(0.5, 1.0)))          # the pool's links
    for a in honest:
        for b in honest:
            if a != b:
                network.set_link(a, b, LinkModel(latency=Uniform(20.0, 25.0)))
    sim = Simulator(seed, network=network, tracer=tracer)
    ids = ("pool", *honest)
    common = {"block_interval_ms": interval_ms, "sync_interval_ms": 100 * interval_ms}
    sim.add_node("pool", lambda: SelfishMiner(BitcoinConfig(hash_share=alpha, payout_script_hex=POOL_SCRIPT.hex(),
                                                            **common)), peers=ids)
    for h in honest:
        config = BitcoinConfig(hash_share=(1 - alpha) / m, payout_script_hex=HONEST_SCRIPT.hex(), **common)
        sim.add_node(h, lambda c=config: BitcoinNode(c), peers=ids)
    judge = sim.hosts["h1"].node
    assert isinstance(judge, BitcoinNode)
    sim.run(until_ms=10 * blocks * interval_ms, until=lambda: judge.tree.height >= blocks)
    assert judge.tree.height >= blocks, f"seed {seed}: the chain did not reach {blocks} blocks"
    sim.run(until_ms=sim.now_ms + 100.0)   # the last announcements land
    pool = sum(1 for b in chain_blocks(judge.tree) if b.transactions[0].outputs[0].script_pubkey == POOL_SCRIPT)
    pool_node = sim.hosts["pool"].node
    assert isinstance(pool_node, SelfishMiner)
    return SelfishResult(seed, alpha, gamma, pool, judge.tree.height - pool, pool_node.blocks_mined)


@dataclass(frozen=True, slots=True)
class SelfishFigures:
    """Runs at one (alpha, gamma): the relative revenue over all their
    main-chain blocks, its 95% interval from the spread between runs
    (mean of the runs' revenues +- 1.96 standard errors), the formula, and
    alpha (what honest mining earns)."""

    alpha: float
    gamma: float
    runs: int
    blocks_per_run: int
    first_seed: int
    revenue: float
    interval95: tuple[float, float]
    formula: float

    @property
    def profitable(self) -> bool:
        return self.revenue > self.alpha


def measure_selfish_mining(alpha: float, gamma: float, runs: int, *, blocks: int = 2_000, first_seed: int = 1,
                           progress: Callable[[int], None] | None = None) -> SelfishFigures:
    """``runs`` runs of :func:`run_selfish_mining` from ``first_seed``.

    Raises:
        ConfigError: an argument out of range.
    """
    if runs < 1:
        raise ConfigError("runs: at least 1")
    revenues = []
    for i in range(runs):
        revenues.append(run_selfish_mining(first_seed + i, alpha, gamma, blocks=blocks).relative_revenue)
        if progress is not None:
            progress(i + 1)
    mean = sum(revenues) / runs
    spread = math.sqrt(sum((r - mean) ** 2 for r in revenues) / (runs - 1) / runs) if runs > 1 else float("nan")
    return SelfishFigures(alpha, gamma, runs, blocks, first_seed, mean, (mean - 1.96 * spread, mean + 1.96 * spread),
                          analysis.selfish_mining_relative_revenue(alpha, gamma))
