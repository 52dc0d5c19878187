"""Full nodes and miners in the simulator (whitepaper sections 4-5): blocks
found at each miner's hash share reach every node, a partition makes two
chains and healing reorganizes the lighter side onto the heavier, a
transaction is relayed and mined once, a crashed node comes back from its
blocks file, and a run is a function of its seed."""

from __future__ import annotations

from synod.bitcoin import OutPoint, Transaction, TxIn, TxOut
from synod.bitcoin import messages as M
from synod.bitcoin.node import BLOCKS_FILE, BitcoinConfig, BitcoinNode
from synod.sim import Simulator

IDS = ("n1", "n2", "n3", "n4", "n5")
SHARES = {"n1": 0.3, "n2": 0.3, "n3": 0.4}
INTERVAL_MS = 1000.0


def _network(seed: int) -> Simulator:
    sim = Simulator(seed)
    for n in IDS:
        config = BitcoinConfig(hash_share=SHARES.get(n, 0.0), block_interval_ms=INTERVAL_MS)
        sim.add_node(n, lambda c=config: BitcoinNode(c), start=False)
    sim.set_peers(IDS)
    for n in IDS:
        sim.restart(n)
    return sim


def _node(sim: Simulator, n: str) -> BitcoinNode:
    node = sim.hosts[n].node
    assert isinstance(node, BitcoinNode)
    return node


def _tips(sim: Simulator) -> set[bytes]:
    return {_node(sim, n).tree.tip.hash for n in IDS}


def test_every_node_follows_one_chain_of_the_miners_blocks() -> None:
    sim = _network(1)
    sim.run(until_ms=60_000)
    assert len(_tips(sim)) == 1 or sim.run(until_ms=62_000) is not None and len(_tips(sim)) == 1
    heights = {_node(sim, n).tree.height for n in IDS}
    assert len(heights) == 1
    height = heights.pop()
    assert 40 <= height <= 80                      # about one block a second for 60 s
    mined = {n: _node(sim, n).blocks_mined for n in SHARES}
    assert sum(mined.values()) >= height           # (a few may have been orphaned by a race)
    assert all(m > 0 for m in mined.values())
    utxo_sets = {frozenset(_node(sim, n).tree.utxos.coins.items()) for n in IDS}
    assert len(utxo_sets) == 1                     # the same UTXO set everywhere
    assert len(utxo_sets.pop()) == height          # one coinbase output per block (genesis's unspendable)


def test_a_partition_forks_the_chain_and_healing_reorganizes_onto_the_most_work() -> None:
    sim = _network(2)
    sim.run(until_ms=20_000)
    sim.network.partition([["n1", "n2", "n4"], ["n3", "n5"]])   # hash shares 0.6 against 0.4
    sim.run(until_ms=60_000)
    heavy, light = _node(sim, "n4").tree, _node(sim, "n5").tree
    assert heavy.tip.hash != light.tip.hash
    sim.network.heal()
    sim.run(until_ms=62_000 + 5 * INTERVAL_MS, until=lambda: len(_tips(sim)) == 1)
    assert len(_tips(sim)) == 1
    winner = _node(sim, "n5").tree.tip
    assert winner.chain_work >= max(heavy.tip.chain_work, light.tip.chain_work)
    reorged = [d for n in IDS for d in _node(sim, n).reorgs]
    assert reorged and max(reorged) >= 5            # the losing side dropped its blocks of the split


def test_a_transaction_is_relayed_mined_once_and_survives_a_reorg() -> None:
    sim = _network(3)
    sim.run(until_ms=10_000)
    coinbase = _node(sim, "n4").tree.block_at(1).transactions[0]   # type: ignore[union-attr]
    tx = Transaction(version=2, locktime=0,
                     inputs=(TxIn(prevout=OutPoint(txid=coinbase.txid, index=0), script_sig=b"\x04abcd\x75"),),
                     outputs=(TxOut(value=coinbase.outputs[0].value - 10_000, script_pubkey=b"\x51"),))
    sim.run(until_ms=300_000, until=lambda: _node(sim, "n4").tree.height >= 101)   # coinbase maturity (100 blocks)
    sim.transmit("n4", "n4", M.TxMsg.from_tx(tx), 0)   # a wallet on n4's machine
    sim.run(until_ms=sim.now_ms + 500)
    assert all(tx.txid in _node(sim, n).mempool or _confirmations(sim, n, tx) for n in IDS)   # relayed everywhere
    sim.run(until_ms=sim.now_ms + 20_000)
    for n in IDS:
        assert _confirmations(sim, n, tx) == 1, n   # in exactly one block of each node's chain
        assert tx.txid not in _node(sim, n).mempool


def _confirmations(sim: Simulator, n: str, tx: Transaction) -> int:
    tree = _node(sim, n).tree
    return sum(1 for h in range(1, tree.height + 1) for t in tree.block_at(h).transactions  # type: ignore[union-attr]
               if t.txid == tx.txid)


def test_a_crashed_node_replays_its_blocks_and_catches_up() -> None:
    sim = _network(4)
    sim.run(until_ms=30_000)
    before = _node(sim, "n4").tree.height
    assert sim.hosts["n4"].disk.read(BLOCKS_FILE)
    sim.crash("n4")
    sim.run(until_ms=40_000)
    sim.restart("n4")
    assert _node(sim, "n4").tree.height >= before   # from its own file, before any peer answered
    sim.run(until_ms=45_000, until=lambda: len(_tips(sim)) == 1)
    assert len(_tips(sim)) == 1


def test_a_corrupt_blocks_file_is_kept_aside_and_the_chain_refetched() -> None:
    sim = _network(5)
    sim.run(until_ms=20_000)
    sim.crash("n5")
    disk = sim.hosts["n5"].disk
    raw = bytearray(disk.read(BLOCKS_FILE) or b"")
    raw[len(raw) // 2] ^= 0xFF
    disk.write(BLOCKS_FILE, bytes(raw))
    disk.sync()
    sim.restart("n5")
    assert disk.read(f"{BLOCKS_FILE}.corrupt-0") == bytes(raw)
    assert 0 < _node(sim, "n5").tree.height < 20
    sim.run(until_ms=30_000, until=lambda: len(_tips(sim)) == 1)
    assert len(_tips(sim)) == 1


def test_the_run_is_a_function_of_its_seed() -> None:
    def summary(seed: int) -> list[tuple[str, int, bytes, int]]:
        sim = _network(seed)
        sim.run(until_ms=30_000)
        return [(n, _node(sim, n).tree.height, _node(sim, n).tree.tip.hash, _node(sim, n).blocks_mined) for n in IDS]
    assert summary(7) == summary(7)
    assert summary(7) != summary(8)


class _Counterfeiter(BitcoinNode):
    """A miner whose coinbases pay one satoshi more than subsidy plus fees,
    each block on its own last one: the blocks meet the target (their
    headers are valid), break bad-cb-amount, and are announced and served
    without being checked."""

    last: bytes | None = None

    def _coinbase(self, ctx, height, value_sat, transactions, payout_script=None):  # type: ignore[no-untyped-def]
        return super()._coinbase(ctx, height, value_sat + 1, transactions, payout_script)

    def _mine(self, ctx) -> None:  # type: ignore[no-untyped-def]
        block = self.build_block(ctx, parent=self.last, transactions=[])
        assert block is not None
        self.tree.headers.accept_header(block.header, self._now_s(ctx))
        self.tree.bodies[block.hash] = block
        self.last = block.hash
        for peer in self.peers:
            ctx.send(peer, M.Headers(headers=(block.header.serialize(),)))


def test_a_majority_miner_of_invalid_blocks_is_ignored_and_honest_nodes_agree() -> None:
    """Whitepaper section 5: nodes accept a block only if all its
    transactions are valid. A miner with 60% of the hash power whose blocks
    pay themselves too much: every honest node fetches its first block,
    marks it invalid (bad-cb-amount), refuses every header built on it
    (bad-prevblk), and goes on following the honest chain; all honest nodes
    end on one tip."""
    sim = Simulator(11)
    honest = ("n1", "n2", "n3", "n4")
    for n in honest:
        config = BitcoinConfig(hash_share=0.2 if n in ("n1", "n2") else 0.0, block_interval_ms=INTERVAL_MS)
        sim.add_node(n, lambda c=config: BitcoinNode(c), start=False)
    sim.add_node("evil", lambda: _Counterfeiter(BitcoinConfig(hash_share=0.6, block_interval_ms=INTERVAL_MS)), start=False)
    sim.set_peers((*honest, "evil"))
    for n in (*honest, "evil"):
        sim.restart(n)
    sim.run(until_ms=40_000)
    sim.run(until_ms=45_000, until=lambda: len({_node(sim, n).tree.tip.hash for n in honest}) == 1)
    tips = {_node(sim, n).tree.tip for n in honest}
    assert len({t.hash for t in tips}) == 1
    assert min(t.height for t in tips) >= 5                      # the honest 40% mined on
    for n in honest:
        tree = _node(sim, n).tree
        assert "bad-cb-amount" in tree.invalid_rules.values()     # it fetched a counterfeit block and refused it
        assert "bad-prevblk" in _node(sim, n).rejected            # and every header built on it
