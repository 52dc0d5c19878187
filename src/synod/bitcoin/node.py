"""A Bitcoin full node, and a miner when it has hash power (whitepaper
sections 4-5; Core's ``net_processing.cpp`` and ``validation.cpp``).

The network's steps, as the whitepaper lists them: new transactions are
broadcast to all nodes (``tx``, announced by ``inv``); each miner collects
them into a block (:meth:`Mempool.block_template`) and works on its proof
of work; when it finds one it broadcasts the block; nodes accept it only if
all its transactions are valid and not already spent, and express that by
working on the next block on top of it. Nodes follow the chain with most
work: :class:`~synod.bitcoin._blocktree.BlockTree` reorganizes onto a
branch with more work (returning the disconnected blocks' transactions to
the mempool); on equal work the chain seen first stays.

Peers speak Bitcoin's messages (:mod:`synod.bitcoin.messages`): a
``version``/``verack`` handshake; headers-first sync (``getheaders`` with a
block locator, answered by up to 2,000 ``headers``; the bodies fetched by
``getdata``, at most ``getdata_in_flight_max`` per peer); new blocks
announced by ``headers`` (BIP130's way); transactions by ``inv`` and
fetched by ``getdata``; ``ping``/``pong``. A periodic ``getheaders`` to
every peer (``sync_interval_ms``) lets two sides of a healed partition
find each other's chain even when no new block is found.

Proof of work: a miner with ``hash_share`` of the network's hash power
finds its next block after an exponential time of mean
``block_interval_ms / hash_share`` (the simulator's model: real hashing
would make simulation pointless); the block still meets the network's
target (regtest's: a couple of double-SHA256 tries) and every rule.

Durability: each block's bytes are appended to ``blocks.dat`` as a
checksummed record and synced before the node announces or builds on it;
a restart replays the file. A record that fails its checksum ends the
replay: the file is kept aside (``blocks.dat.corrupt-N``), the good prefix
rewritten, a warning traced; the missing blocks come back from peers.

Clients (DESIGN.md section 8, :meth:`BitcoinNode.client_protocols`): a
peer nobody here wrote connects to the P2P port (client id ``p2p:N``); from
its ``version`` (answered by ours, then ``verack``, as Core answers an
inbound peer) until its connection closes it is one of :attr:`peers`, hears
announcements, and every message it sends is answered by one
``P2pReply`` (what the node says back goes as pushes). JSON-RPC calls on
the RPC port (``rpc:N``) are answered by :func:`~synod.bitcoin.rpc.answer_rpc`.

Misbehaviour (Core's ``Misbehaving``/``MaybePunishNodeForBlock``, and
its V1 transport's disconnects): a P2P-port peer that sends a malformed or
oversize message (the gateway closes it), or a block or header breaking a
consensus rule, is disconnected and its IP refused for
``ban_duration_ms`` (:mod:`synod.bitcoin._banlist`; a loopback peer only
when ``ban_local_peers``, since Core never punishes its own host). The
RPCs ``setban``/``listbanned``/``clearbanned`` manage the list. A
configured node is never banned; what it sends that breaks a rule is
traced and ignored.

Simplifications: peers are the configured nodes and those on the P2P port
(no address gossip, no eviction); no compact blocks; the chain and the
UTXO set are rebuilt from the blocks at start; bans live in memory.
"""

from __future__ import annotations

from typing import Any

import msgspec

from synod.bitcoin import constants as C
from synod.bitcoin import messages as M
from synod.bitcoin._banlist import BanList, ban_host, is_local
from synod.bitcoin._blocktree import BlockTree
from synod.bitcoin._hashes import hash256
from synod.bitcoin.errors import RuleViolation
from synod.bitcoin.interpreter import verify_transaction
from synod.bitcoin.mempool import Mempool, MempoolPolicy
from synod.bitcoin.p2p import REGTEST_MAGIC
from synod.bitcoin.pow import REGTEST, ConsensusParams, check_proof_of_work, next_work_required
from synod.bitcoin.primitives import Block, BlockHeader, OutPoint, Transaction, TxIn, TxOut, merkle_root
from synod.bitcoin.protocol import P2pProtocol
from synod.bitcoin.rpc import RpcProtocol, RpcRequest, answer_rpc
from synod.bitcoin.validation import (
    WITNESS_COMMITMENT_HEADER,
    block_subsidy,
    coinbase_height_script,
    witness_merkle_root,
)
from synod.core import Context, Node, Params
from synod.core.clients import ClientClosed, ClientOpened
from synod.core.records import keep_aside, pack_record, scan_records

__all__ = ["BitcoinConfig", "BitcoinNode", "NETWORKS"]

NETWORKS: dict[str, ConsensusParams] = {"regtest": REGTEST}
BLOCKS_FILE = "blocks.dat"
HEADERS_PER_MESSAGE_MAX = M.MAX_HEADERS_RESULTS
LOCATOR_DENSE_HASHES = 10          # a locator names the last 10 blocks, then steps back doubling
BLOCK_DOWNLOAD_WINDOW = 1024      # bodies looked for above the connected chain (Core's)
ANNOUNCE_HEADERS_MAX = 8           # new blocks announced by headers at once; more: the peer asks
NONCE_TRIES_MAX = 1 << 24          # a miner that finds no nonce below the target gives up this round
TEMPLATE_WEIGHT_RESERVED = 4000    # room kept for the coinbase (Core's default)
USER_AGENT = b"/synod:0.1/"
INBOUND_PEERS_MAX = 117            # peers on the P2P port (Core's 125 connections less its 8 outbound)


class BitcoinConfig(Params):
    """A node's settings (times in ms of its clock).

    Raises:
        ValueError: a value out of range (a ConfigError from a config).
    """

    network: str = "regtest"
    peers: tuple[str, ...] = ()              # the nodes it connects to (default: every other configured node)
    hash_share: float = 0.0                  # its share of the network's hash power; 0: not a miner
    block_interval_ms: float = 600_000.0     # the network's mean time between blocks
    payout_script_hex: str = "51"            # its coinbase outputs' scriptPubKey (OP_TRUE by default)
    sync_interval_ms: float = 2_000.0        # getheaders to every peer this often
    getdata_in_flight_max: int = 16          # blocks asked of one peer at a time
    getdata_timeout_ms: float = 5_000.0      # then asked again, of whichever peer announces it
    rpc_auth: str = ""                       # bitcoind's rpcauth, user:salt$hmac-sha256 (empty: RPC refuses all)
    ban_duration_ms: float = 86_400_000.0    # a misbehaving P2P-port peer's address is refused this long (Core's -bantime)
    ban_local_peers: bool = False            # also ban loopback peers (Core never does: it would refuse every local peer)

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise ValueError(f"network: one of {', '.join(NETWORKS)}")
        if not 0.0 <= self.hash_share <= 1.0:
            raise ValueError("hash_share: between 0 and 1")
        if min(self.block_interval_ms, self.sync_interval_ms, self.getdata_timeout_ms) <= 0:
            raise ValueError("block_interval_ms, sync_interval_ms and getdata_timeout_ms must be positive")
        if self.ban_duration_ms < 0:
            raise ValueError("ban_duration_ms: at least 0")
        if self.getdata_in_flight_max < 1:
            raise ValueError("getdata_in_flight_max: at least 1")
        try:
            bytes.fromhex(self.payout_script_hex)
        except ValueError:
            raise ValueError("payout_script_hex: hex") from None


class _Peer(msgspec.Struct, kw_only=True):
    version_received: bool = False
    verack_received: bool = False
    version: int = 0                     # what its version message said (getpeerinfo)
    services: int = 0
    user_agent: str = ""
    start_height: int = -1
    addr: str = ""                       # host:port of a peer on the P2P port
    in_flight: dict[bytes, float] = msgspec.field(default_factory=dict)   # block hash -> when asked (ms)
    best_known: bytes | None = None      # the most-work header it has shown us: what it can serve


class BitcoinNode(Node):
    """A full node (and a miner when ``config.hash_share`` > 0)."""

    def __init__(self, config: BitcoinConfig) -> None:
        self.config = config
        self.params = NETWORKS[config.network]
        self.payout_script = bytes.fromhex(config.payout_script_hex)
        self.tree = BlockTree(self.params, verify_transaction)
        self.mempool = Mempool(MempoolPolicy(require_standard=False))
        self.peers: dict[str, _Peer] = {}
        self.blocks_mined = 0
        self.reorgs: list[int] = []          # depth of every reorganization, in blocks disconnected
        self.rejected: list[str] = []        # rules broken by what peers sent (kept short)
        self.clients: dict[str, str] = {}    # P2P-port connection -> its host:port (at most the gateway's limit)
        self.wallet: Any = None              # the RPC wallet (synod.bitcoin.wallet.Wallet), loaded at its first call
        self.bans = BanList()                # addresses refused on the P2P port (setban, misbehaviour)

    def client_protocols(self) -> dict[str, Any]:
        """Bitcoin's P2P port (regtest magic) for peers nobody here wrote, and bitcoind's JSON-RPC."""
        return {"p2p": lambda: P2pProtocol(REGTEST_MAGIC), "rpc": lambda: RpcProtocol(self.config.rpc_auth)}

    # -- start --------------------------------------------------------------------------------------
    def on_start(self, ctx: Context) -> None:
        self.tree = BlockTree(self.params, verify_transaction)
        self.mempool = Mempool(MempoolPolicy(require_standard=False), rng=ctx.rng)
        self.wallet = None
        self._replay_blocks(ctx)
        names = self.config.peers or tuple(p for p in ctx.peers if p != ctx.node_id)
        self.peers = {p: _Peer() for p in names}
        for peer in self.peers:
            ctx.send(peer, self._version(ctx))
        ctx.set_timer("sync", self.config.sync_interval_ms)
        self._arm_mining(ctx)

    def _replay_blocks(self, ctx: Context) -> None:
        raw = ctx.disk.read(BLOCKS_FILE) or b""
        scan = scan_records(raw)
        # Bodies were stored as they arrived, a child's possibly before its
        # parent's (headers first): replay in rounds until nothing more fits.
        pending = list(scan.records)
        while pending:
            left = []
            for record in pending:
                try:
                    self.tree.add_block(msgspec.msgpack.decode(record, type=M.BlockMsg).block, self._now_s(ctx))
                except RuleViolation as e:
                    if e.rule != "prev-blk-not-found":
                        ctx.trace("btc_replay_skipped", reason=str(e))
                    else:
                        left.append(record)
                except msgspec.DecodeError as e:
                    ctx.trace("btc_replay_skipped", reason=str(e))
            if len(left) == len(pending):
                break
            pending = left
        if scan.error is not None:
            keep_aside(ctx, BLOCKS_FILE, raw, scan.records, scan.error)
        self.tree.activate()

    def _version(self, ctx: Context) -> M.Version:
        return M.Version(version=M.PROTOCOL_VERSION, services=M.NODE_NETWORK | M.NODE_WITNESS,
                         timestamp_s=self._now_s(ctx), addr_recv=M.NetAddress(), addr_from=M.NetAddress(),
                         nonce=ctx.rng.getrandbits(64), user_agent=USER_AGENT, start_height=self.tree.height)

    @staticmethod
    def _now_s(ctx: Context) -> int:
        return int(ctx.unix_ms // 1000)

    # -- messages -----------------------------------------------------------------------------------
    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if ":" in src and self._on_client(ctx, src, msg):
            return
        handler = self._HANDLERS.get(type(msg))
        disconnect = False
        if handler is None:
            ctx.trace("btc_ignored", src=src, msg=type(msg).__name__)
        else:
            try:
                handler(self, ctx, src, msg)
            except RuleViolation as e:   # what a peer sent broke a rule: drop it, note it, run on
                ctx.trace("btc_rejected", src=src, msg=type(msg).__name__, rule=e.rule, detail=e.detail)
                if len(self.rejected) < 100:
                    self.rejected.append(e.rule)
                # Core's MaybePunishNodeForBlock: an invalid block or header is
                # misbehaviour (a block from the future is not: clocks differ).
                if ":" in src and isinstance(msg, M.BlockMsg | M.Headers) and e.rule != "time-too-new":
                    disconnect = self._ban_peer(ctx, src, f"sent a block breaking {e.rule}")
        if ":" in src:   # a peer on the P2P port: what it gets back went as pushes; its request is answered
            ctx.reply(M.P2pReply(disconnect=disconnect))

    def _ban_peer(self, ctx: Context, src: str, why: str) -> bool:
        """Refuse the address of P2P-port client ``src`` for
        ``ban_duration_ms`` (loopback only if ``ban_local_peers``); True:
        disconnect it (always, as Core disconnects a misbehaving local peer)."""
        try:
            host = ban_host(self.clients.get(src, ""))
        except ValueError:
            return True
        if is_local(host) and not self.config.ban_local_peers:
            ctx.trace("btc_peer_misbehaved", src=src, host=host, why=why, banned=False)
            return True
        self.bans.ban(host, self._now_s(ctx), int(self.config.ban_duration_ms // 1000))
        ctx.trace("btc_peer_misbehaved", src=src, host=host, why=why, banned=True)
        return True

    def _on_client(self, ctx: Context, src: str, msg: Any) -> bool:
        """A gateway client's input handled here (True), or a P2P message
        for the handlers (False). A P2P peer is one of :attr:`peers` from
        its version message until its connection closes."""
        if isinstance(msg, RpcRequest):
            ctx.reply(answer_rpc(self, ctx, msg))
        elif isinstance(msg, ClientOpened | ClientClosed):
            self.peers.pop(src, None)
            if isinstance(msg, ClientOpened) and msg.protocol == "p2p":
                self.clients[src] = msg.addr
                if self._is_banned(ctx, msg.addr):
                    ctx.trace("btc_refused", src=src, addr=msg.addr, reason="banned")
                    ctx.send(src, M.P2pReply(disconnect=True))
            elif isinstance(msg, ClientClosed):
                if msg.protocol_error and src in self.clients:   # a malformed or oversize message
                    self._ban_peer(ctx, src, msg.reason)
                self.clients.pop(src, None)
        elif src not in self.peers and not isinstance(msg, M.Version):
            ctx.trace("btc_ignored", src=src, msg=type(msg).__name__, reason="before its version")
            ctx.reply(M.P2pReply())
        elif src not in self.peers and sum(":" in p for p in self.peers) >= INBOUND_PEERS_MAX:
            ctx.reply(M.P2pReply(disconnect=True))
        else:
            return False
        return True

    def disconnect_address(self, ctx: Context, host: str) -> None:
        """Disconnect every P2P-port peer connected from IP ``host`` (setban's "add")."""
        for src, addr in list(self.clients.items()):
            try:
                if ban_host(addr) == host:
                    ctx.send(src, M.P2pReply(disconnect=True))
            except ValueError:
                continue

    def _is_banned(self, ctx: Context, addr: str) -> bool:
        try:
            return self.bans.is_banned(ban_host(addr), self._now_s(ctx))
        except ValueError:   # (a simulated client's node id)
            return False

    def _on_version(self, ctx: Context, src: str, msg: M.Version) -> None:
        peer = self.peers.setdefault(src, _Peer(addr=self.clients.get(src, "")))
        first = not peer.version_received
        peer.version_received = True
        peer.version, peer.services, peer.start_height = msg.version, msg.services, msg.start_height
        peer.user_agent = msg.user_agent.decode("utf-8", "replace")
        if first and ":" in src:   # an inbound peer hears our version first (Core's order)
            ctx.send(src, self._version(ctx))
        ctx.send(src, M.Verack())
        if first:
            ctx.send(src, self._getheaders())

    def _on_verack(self, ctx: Context, src: str, msg: M.Verack) -> None:
        self.peers.setdefault(src, _Peer()).verack_received = True

    def _on_ping(self, ctx: Context, src: str, msg: M.Ping) -> None:
        ctx.send(src, M.Pong(nonce=msg.nonce))

    def _on_getheaders(self, ctx: Context, src: str, msg: M.GetHeaders) -> None:
        """Up to 2,000 connected headers after the first locator hash on our chain."""
        start = 0
        for block_hash in msg.locator:
            entry = self.tree.headers.get(block_hash)
            if entry is not None and self.tree.is_connected(entry):
                start = entry.height
                break
        headers = []
        for height in range(start + 1, min(self.tree.height, start + HEADERS_PER_MESSAGE_MAX) + 1):
            block = self.tree.block_at(height)
            assert block is not None
            if not self.shows(block.hash):
                break
            headers.append(block.header.serialize())
            if block.hash == msg.hash_stop:
                break
        if headers:
            ctx.send(src, M.Headers(headers=tuple(headers)))

    def shows(self, block_hash: bytes) -> bool:
        """Whether peers may learn of this connected block (an honest node
        shows every one; a selfish miner hides its private branch)."""
        return True

    def _on_headers(self, ctx: Context, src: str, msg: M.Headers) -> None:
        for header in msg.block_headers():
            try:
                entry = self.tree.add_header(header, self._now_s(ctx))
                self._saw(src, entry)
            except RuleViolation as e:
                if e.rule == "prev-blk-not-found":   # we are behind: ask for the headers in between
                    ctx.send(src, self._getheaders())
                    return
                raise
        self._fill_downloads(ctx, src)
        if len(msg.headers) == HEADERS_PER_MESSAGE_MAX:
            ctx.send(src, self._getheaders())

    def _saw(self, src: str, entry: Any) -> None:
        """``src`` has shown us ``entry``: it has it (and its ancestors)."""
        peer = self.peers.get(src)
        if peer is None:
            return
        known = self.tree.headers.get(peer.best_known) if peer.best_known is not None else None
        if known is None or entry.chain_work > known.chain_work:
            peer.best_known = entry.hash

    def _fill_downloads(self, ctx: Context, src: str) -> None:
        """Ask ``src`` for the missing bodies on the way to the best header
        it has shown us, if that has more work than our tip (Core's
        ``FindNextBlocksToDownload``: a peer is asked only for blocks it
        has), at most ``getdata_in_flight_max`` in flight."""
        peer = self.peers.setdefault(src, _Peer())
        room = self.config.getdata_in_flight_max - len(peer.in_flight)
        target = self.tree.headers.get(peer.best_known) if peer.best_known is not None else None
        if room <= 0 or target is None or target.chain_work <= self.tree.tip.chain_work:
            return
        branch = self.tree.branch_above_chain(target) or []
        asked = {h for p in self.peers.values() for h in p.in_flight}
        items = []
        for entry in branch[:BLOCK_DOWNLOAD_WINDOW]:
            if self.tree.has_body(entry.hash) or entry.hash in asked:
                continue
            peer.in_flight[entry.hash] = ctx.now_ms
            items.append(M.InvItem(inv_type=M.MSG_WITNESS_BLOCK, hash=entry.hash))
            if len(items) == room:
                break
        if items:
            ctx.send(src, M.GetData(items=tuple(items)))

    def _on_getdata(self, ctx: Context, src: str, msg: M.GetData) -> None:
        missing = []
        for item in msg.items:
            kind = item.inv_type & ~M.MSG_WITNESS_FLAG
            if kind == M.MSG_BLOCK and item.hash in self.tree.bodies:
                ctx.send(src, M.BlockMsg.from_block(self.tree.bodies[item.hash]))
            elif kind == M.MSG_TX and (tx := self.mempool.get(item.hash)) is not None:
                ctx.send(src, M.TxMsg.from_tx(tx, witness=bool(item.inv_type & M.MSG_WITNESS_FLAG)))
            else:
                missing.append(item)
        if missing:
            ctx.send(src, M.NotFound(items=tuple(missing)))

    def _on_notfound(self, ctx: Context, src: str, msg: M.NotFound) -> None:
        peer = self.peers.get(src)
        if peer is not None:
            for item in msg.items:
                peer.in_flight.pop(item.hash, None)

    def _on_inv(self, ctx: Context, src: str, msg: M.Inv) -> None:
        txs = []
        for item in msg.items:
            kind = item.inv_type & ~M.MSG_WITNESS_FLAG
            if kind == M.MSG_BLOCK and item.hash not in self.tree.headers:
                ctx.send(src, self._getheaders())
            elif kind == M.MSG_TX and item.hash not in self.mempool:
                txs.append(M.InvItem(inv_type=M.MSG_WITNESS_TX, hash=item.hash))
        if txs:
            ctx.send(src, M.GetData(items=tuple(txs)))

    def _on_block(self, ctx: Context, src: str, msg: M.BlockMsg) -> None:
        block = msg.block
        peer = self.peers.get(src)
        if peer is not None:
            peer.in_flight.pop(block.hash, None)
        self.receive_block(ctx, block)
        entry = self.tree.headers.get(block.hash)
        if entry is not None:
            self._saw(src, entry)
        self._fill_downloads(ctx, src)

    def _on_tx(self, ctx: Context, src: str, msg: M.TxMsg) -> None:
        tx = msg.tx
        if tx.txid in self.mempool:
            return   # (announced by two peers, fetched from both)
        tip = self.tree.tip
        result = self.mempool.accept(tx, self.tree.utxos, tip.height, tip.median_time_past_s, now_s=self._now_s(ctx))
        if result.orphan:
            ctx.send(src, M.GetData(items=tuple(M.InvItem(inv_type=M.MSG_WITNESS_TX, hash=h)
                                                for h in result.missing_parents)))
            return
        for txid in result.accepted:
            self._announce_tx(ctx, txid, exclude=src)

    _HANDLERS: dict[type, Any] = {}

    # -- blocks -------------------------------------------------------------------------------------
    def receive_block(self, ctx: Context, block: Block) -> None:
        """A block from a peer or from this node's own mining: keep it
        (durably), follow the most work, update the mempool, announce.

        Raises:
            RuleViolation: the block breaks a rule (it is not kept).
        """
        try:
            new = self.tree.add_block(block, self._now_s(ctx))
        except RuleViolation as e:
            if e.rule == "prev-blk-not-found":
                for peer in self.peers:
                    ctx.send(peer, self._getheaders())
                return
            raise
        if not new:
            return
        ctx.disk.append(BLOCKS_FILE, pack_record(msgspec.msgpack.encode(M.BlockMsg.from_block(block))))
        ctx.disk.sync()
        before = self.tree.tip
        disconnected, connected = self.tree.activate()
        if disconnected:
            self.reorgs.append(len(disconnected))
            ctx.trace("btc_reorg", depth=len(disconnected), fork_height=before.height - len(disconnected))
        self._update_mempool(ctx, disconnected, connected)
        if connected:
            tip = self.tree.tip
            ctx.trace("btc_tip", height=tip.height, hash=tip.hash[::-1].hex(), reorg=len(disconnected))
            announce = tuple(b.header.serialize() for b in connected[-ANNOUNCE_HEADERS_MAX:])
            for peer in self.peers:
                ctx.send(peer, M.Headers(headers=announce))

    def _update_mempool(self, ctx: Context, disconnected: list[Block], connected: list[Block]) -> None:
        if disconnected:
            txs = [tx for block in reversed(disconnected) for tx in block.transactions[1:]]
            for block in connected:
                self.mempool.remove_for_block(block)
            tip = self.tree.tip
            result = self.mempool.readd_after_disconnect(txs, self.tree.utxos, tip.height, tip.median_time_past_s,
                                                         now_s=self._now_s(ctx))
            for txid in result.readded:   # the winning side's miners may never have heard of them
                self._announce_tx(ctx, txid)
            return
        for block in connected:
            self.mempool.remove_for_block(block)

    def _announce_tx(self, ctx: Context, txid: bytes, exclude: str = "") -> None:
        inv = M.Inv(items=(M.InvItem(inv_type=M.MSG_TX, hash=txid),))
        for peer in self.peers:
            if peer != exclude:
                ctx.send(peer, inv)

    def _getheaders(self) -> M.GetHeaders:
        return M.GetHeaders(locator=self.locator())

    def locator(self) -> tuple[bytes, ...]:
        """Core's block locator over the best header chain: the last ten
        hashes, then back in doubling steps, then genesis."""
        active = self.tree.headers.active
        out = []
        height, step = len(active) - 1, 1
        while height > 0:
            out.append(active[height].hash)
            if len(out) >= LOCATOR_DENSE_HASHES:
                step *= 2
            height -= step
        out.append(active[0].hash)
        return tuple(out[:M.MAX_LOCATOR_SZ])

    # -- timers -------------------------------------------------------------------------------------
    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "sync":
            self._sync(ctx)
        elif name == "mine":
            self._mine(ctx)
            self._arm_mining(ctx)

    def _sync(self, ctx: Context) -> None:
        now = ctx.now_ms
        for name, peer in self.peers.items():
            for block_hash, asked in list(peer.in_flight.items()):
                if now - asked > self.config.getdata_timeout_ms:
                    del peer.in_flight[block_hash]
            if not peer.version_received:
                ctx.send(name, self._version(ctx))
            ctx.send(name, self._getheaders())
        ctx.set_timer("sync", self.config.sync_interval_ms)

    def _arm_mining(self, ctx: Context) -> None:
        if self.config.hash_share > 0:
            mean_ms = self.config.block_interval_ms / self.config.hash_share
            ctx.set_timer("mine", ctx.rng.expovariate(1.0 / mean_ms))

    def _mine(self, ctx: Context) -> None:
        block = self.build_block(ctx)
        if block is None:
            return
        self.blocks_mined += 1
        ctx.trace("btc_mined", height=self.tree.height + 1, hash=block.hash[::-1].hex(),
                  transactions=len(block.transactions))
        self.receive_block(ctx, block)

    def build_block(self, ctx: Context, *, parent: bytes | None = None, transactions: list[Transaction] | None = None,
                    payout_script: bytes | None = None) -> Block | None:
        """A block on ``parent`` (default: the tip) holding ``transactions``
        (default: the mempool's template), its coinbase paying subsidy plus
        fees to ``payout_script`` (default: the config's), its nonce ground
        until the hash meets the target. None if no nonce within
        ``NONCE_TRIES_MAX`` does."""
        prev = self.tree.headers.get(parent) if parent is not None else self.tree.tip
        assert prev is not None
        height = prev.height + 1
        fees = 0
        if transactions is None:
            template = self.mempool.block_template(C.MAX_BLOCK_WEIGHT - TEMPLATE_WEIGHT_RESERVED,
                                                   C.MAX_BLOCK_SIGOPS_COST - 400)
            transactions, fees = list(template.transactions), template.fee_total_sat
        coinbase = self._coinbase(ctx, height, block_subsidy(height, self.params) + fees, transactions, payout_script)
        txs = (coinbase, *transactions)
        time_s = max(self._now_s(ctx), prev.median_time_past_s + 1)
        bits = next_work_required(prev.height, time_s, self.params, lambda h: self.tree.headers.ancestor(prev, h).header)
        root, _ = merkle_root([tx.txid for tx in txs])
        header = BlockHeader(version=0x20000000, prev_block=prev.hash, merkle_root=root, time=time_s, bits=bits, nonce=0)
        for nonce in range(NONCE_TRIES_MAX):
            candidate = msgspec.structs.replace(header, nonce=nonce)
            try:
                check_proof_of_work(candidate.hash, bits, self.params.pow_limit)
            except RuleViolation:
                continue
            return Block(header=candidate, transactions=txs)
        return None

    def _coinbase(self, ctx: Context, height: int, value_sat: int, transactions: list[Transaction],
                  payout_script: bytes | None = None) -> Transaction:
        script_sig = coinbase_height_script(height) + ctx.rng.getrandbits(64).to_bytes(8, "little")   # extra nonce
        outputs = [TxOut(value=value_sat, script_pubkey=self.payout_script if payout_script is None else payout_script)]
        witness: tuple[bytes, ...] = ()
        if any(tx.has_witness for tx in transactions):   # BIP141's commitment to the witnesses
            reserved = bytes(32)
            placeholder = Block(header=self.tree.tip.header, transactions=(
                Transaction(version=2, inputs=(TxIn(prevout=OutPoint(txid=bytes(32), index=0xFFFFFFFF),
                                                    script_sig=script_sig),), outputs=tuple(outputs), locktime=0),
                *transactions))
            root, _ = witness_merkle_root(placeholder)
            outputs.append(TxOut(value=0, script_pubkey=WITNESS_COMMITMENT_HEADER + hash256(root + reserved)))
            witness = (reserved,)
        return Transaction(version=2, locktime=0, outputs=tuple(outputs), inputs=(
            TxIn(prevout=OutPoint(txid=bytes(32), index=0xFFFFFFFF), script_sig=script_sig, witness=witness),))


BitcoinNode._HANDLERS = {
    M.Version: BitcoinNode._on_version, M.Verack: BitcoinNode._on_verack, M.Ping: BitcoinNode._on_ping,
    M.GetHeaders: BitcoinNode._on_getheaders, M.Headers: BitcoinNode._on_headers, M.GetData: BitcoinNode._on_getdata,
    M.NotFound: BitcoinNode._on_notfound, M.Inv: BitcoinNode._on_inv, M.BlockMsg: BitcoinNode._on_block,
    M.TxMsg: BitcoinNode._on_tx,
}
