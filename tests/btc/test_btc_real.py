"""A Bitcoin network as real processes (issue 14 sections 2-3): 5 full
nodes and 2 miners on 127.0.0.1 mine at regtest difficulty with real
double-SHA256; a partition splits the hash power and forks the chain; after
healing every node converges to one tip; a node killed with SIGKILL replays
its blocks file and catches up. Clients nobody here wrote talk to the
nodes: python-bitcoinlib's ``bitcoin.rpc.Proxy`` over JSON-RPC and its P2P
message classes over a raw socket."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import bitcoin  # python-bitcoinlib
import bitcoin.core
import bitcoin.messages
import bitcoin.net
import bitcoin.rpc
import bitcoin.wallet
import pytest
from bitcoin.core.script import OP_TRUE, CScript

from synod.harness.btc_real import RpcCallError, full_nodes_of, miners_of, network_spec, rpc_call, rpc_credentials
from synod.runtime.cluster import LocalCluster
from synod.runtime.config import write_config

pytestmark = pytest.mark.timeout(120)

IDS = miners_of(2) + full_nodes_of(5)
INTERVAL_MS = 1_000.0


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    bitcoin.SelectParams("regtest")
    run_dir = tmp_path_factory.mktemp("btc")
    _, path = write_config(network_spec(run_dir, nodes=5, miners=2, block_interval_ms=INTERVAL_MS))
    with LocalCluster(path, fork_server=True) as cl:
        cl.start()
        _RUNNING.append(cl)
        yield cl
        _RUNNING.clear()


_RUNNING: list[LocalCluster] = []   # the module's network, for what a timed-out wait reports


def _network_state() -> str:
    """Each node's height, tip and last log lines: what a failure should show."""
    out = []
    for cl in _RUNNING:
        for nid in cl.node_ids:
            try:
                state = f"height {_rpc(cl, nid, 'getblockcount')} tip {_rpc(cl, nid, 'getbestblockhash')[:16]}"
            except Exception as e:  # noqa: BLE001 - a report, whatever went wrong
                state = f"no RPC answer ({e})"
            log = cl.run_dir / nid / "node.log"
            tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
            out.append(f"{nid} alive={cl.is_alive(nid)} {state}\n    " + "\n    ".join(tail))
    return "\n".join(out)


def _wait(pred: Callable[[], Any], timeout_s: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = pred()
        except (OSError, KeyError, IndexError):   # (IndexError: bitcoinlib's "not found")
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}; the network:\n{_network_state()}")
        time.sleep(0.05)


def _port(cl: LocalCluster, nid: str, proto: str = "rpc") -> int:
    return cl.config.nodes[nid].client_ports[proto]


def _rpc(cl: LocalCluster, nid: str, method: str, *params: Any) -> Any:
    return rpc_call(_port(cl, nid), rpc_credentials(cl.run_dir), method, *params)


def _proxy(cl: LocalCluster, nid: str, raw: bool = False) -> Any:
    user, password = rpc_credentials(cl.run_dir)
    cls = bitcoin.rpc.RawProxy if raw else bitcoin.rpc.Proxy
    return cls(service_url=f"http://{user}:{password}@127.0.0.1:{_port(cl, nid)}")


def _tips(cl: LocalCluster, ids: tuple[str, ...] = IDS) -> dict[str, str]:
    return {n: _rpc(cl, n, "getbestblockhash") for n in ids}


def _converged(cl: LocalCluster, min_height: int = 0) -> str | None:
    tips = _tips(cl)
    if len(set(tips.values())) != 1:
        return None
    tip = next(iter(tips.values()))
    return tip if _rpc(cl, "n1", "getblockcount") >= min_height else None


def test_the_miners_blocks_reach_every_node_and_bitcoinlib_reads_one_tip(net: LocalCluster) -> None:
    """Whitepaper section 5: blocks found by the miners reach every node,
    which all follow one chain; python-bitcoinlib reads that tip from each."""
    tip = _wait(lambda: _converged(net, min_height=3), what="3 blocks on one tip")

    def one_tip() -> dict[str, bytes] | None:   # (a block may land between two reads: then read again)
        tips = {n: _proxy(net, n).getbestblockhash() for n in IDS}
        return tips if len(set(tips.values())) == 1 else None

    tips = _wait(one_tip, what="one tip through bitcoinlib")
    best = next(iter(tips.values()))
    proxy = _proxy(net, "n3")
    block = proxy.getblock(best)                      # verbosity 0, parsed by bitcoinlib
    assert block.GetHash() == best
    assert proxy.getblockcount() >= 3
    assert tip is not None
    # the coinbase of block 1, read back by txid from the chain (no txindex: the chain is scanned)
    block1 = proxy.getblock(proxy.getblockhash(1))
    coinbase = block1.vtx[0]
    assert proxy.getrawtransaction(coinbase.GetTxid()).GetTxid() == coinbase.GetTxid()
    peers = _rpc(net, "n1", "getpeerinfo")
    assert {p["addr"] for p in peers if p["handshake_done"]} >= set(IDS) - {"n1"}


def test_a_partition_forks_the_chain_and_healing_converges_on_the_most_work(net: LocalCluster) -> None:
    """Issue 14 section 3: a partition splits the hash power (m1 against
    m2); each side extends its own chain; after healing every node follows
    one tip and the lighter side's blocks are off the active chain."""
    start = _wait(lambda: _converged(net), what="one tip before the partition")
    side_a, side_b = ("m1", "n1", "n2"), ("m2", "n3", "n4", "n5")
    net.partition(side_a, side_b)
    height0 = _rpc(net, "n1", "getblockcount")

    def forked() -> tuple[str, str] | None:
        a, b = _tips(net, side_a), _tips(net, side_b)
        if len(set(a.values())) != 1 or len(set(b.values())) != 1:
            return None
        ta, tb = a["m1"], b["m2"]
        grew = all(_rpc(net, n, "getblockcount") > height0 for n in ("m1", "m2"))
        return (ta, tb) if ta != tb and grew and start not in (ta, tb) else None

    try:
        tip_a, tip_b = _wait(forked, timeout_s=30, what="both sides to mine their own blocks")
    finally:
        net.heal()
    t0 = time.monotonic()
    final = _wait(lambda: _converged(net), timeout_s=30, what="one tip after healing")
    converge_s = time.monotonic() - t0
    on_chain = {t: _confirmations(net, "m1", t) > 0 for t in (tip_a, tip_b)}   # (every node has one chain now)
    assert sum(on_chain.values()) == 1, on_chain     # exactly one side's branch survived: the other reorganized
    loser, losers = (tip_a, side_a) if not on_chain[tip_a] else (tip_b, side_b)
    for nid in losers:                               # (the winners may never have seen the lighter branch)
        assert _rpc(net, nid, "getblockheader", loser)["confirmations"] == -1
    assert final and converge_s < 30


def _confirmations(cl: LocalCluster, nid: str, block_hash: str) -> int:
    """getblockheader's confirmations (-1: off the active chain), or -2 if the node never saw the block."""
    try:
        return _rpc(cl, nid, "getblockheader", block_hash)["confirmations"]
    except RpcCallError as e:
        assert e.code == -5, e
        return -2


def test_a_node_killed_with_sigkill_replays_its_blocks_and_catches_up(net: LocalCluster) -> None:
    """Durability: every block is synced to ``blocks.dat`` before it is
    announced; a node killed with SIGKILL and started again, cut off from
    its peers, has every block it had; healed, it catches up."""
    _wait(lambda: _rpc(net, "n5", "getblockcount") >= 2, what="n5 to have blocks")
    before = _rpc(net, "n5", "getbestblockhash")
    height_before = _rpc(net, "n5", "getblockcount")
    net.kill("n5")
    net.isolate("n5")                       # saved in its faults file: it starts cut off
    try:
        _wait(lambda: _rpc(net, "n1", "getblockcount") >= height_before + 2, what="the network to mine on")
        net.start(["n5"])
        height = _rpc(net, "n5", "getblockcount")
        assert height >= height_before
        assert _rpc(net, "n5", "getblockheader", before)["confirmations"] >= 1   # replayed, not fetched
        assert height < _rpc(net, "n1", "getblockcount")                          # (nothing came from peers)
    finally:
        net.heal()
        net.start(["n5"])
    _wait(lambda: _converged(net, min_height=height + 1), timeout_s=30, what="n5 to catch up")


def test_a_miner_stopped_with_sigstop_falls_behind_and_catches_up(net: LocalCluster) -> None:
    """SIGSTOP: a miner alive to the kernel but silent; the others mine on
    without it; after SIGCONT it takes their chain (more work than the one
    block it may have found meanwhile) and every node is on one tip again."""
    _wait(lambda: _converged(net), what="one tip before the pause")
    height = _rpc(net, "n1", "getblockcount")
    net.pause("m1")
    try:
        _wait(lambda: _rpc(net, "n1", "getblockcount") >= height + 3, what="m2 to mine on alone")
        assert _rpc(net, "n1", "getblockcount") >= height + 3
    finally:
        net.resume("m1")
    _wait(lambda: _converged(net, min_height=height + 3) and _rpc(net, "m1", "getblockcount") >= height + 3,
          timeout_s=30, what="m1 to catch up after SIGCONT")


def _p2sh_op_true() -> tuple[Any, Any]:
    redeem = CScript([OP_TRUE])
    return bitcoin.wallet.CBitcoinAddress.from_scriptPubKey(redeem.to_p2sh_scriptPubKey()), redeem


def test_bitcoinlib_rpc_generatetoaddress_and_sendrawtransaction(net: LocalCluster) -> None:
    """bitcoind's RPC through python-bitcoinlib: generatetoaddress (regtest)
    pays a P2SH(OP_TRUE) address; once its first coinbase is mature (100
    confirmations) a spend of it is sent to another node, relayed, mined,
    and read back confirmed from a third; bitcoind's error codes."""
    address, redeem = _p2sh_op_true()
    gen = _proxy(net, "n1")
    hashes = list(gen.generatetoaddress(101, address))
    assert len(hashes) == 101
    target = _rpc(net, "n1", "getblockheader", bitcoin.core.b2lx(hashes[-1]))["height"]
    _wait(lambda: _rpc(net, "n2", "getblockcount") >= target, what="n2 to have the generated blocks")
    coinbase = gen.getblock(hashes[0]).vtx[0]
    assert coinbase.vout[0].scriptPubKey == address.to_scriptPubKey()
    spend = bitcoin.core.CMutableTransaction(
        [bitcoin.core.CMutableTxIn(bitcoin.core.COutPoint(coinbase.GetTxid(), 0), CScript([bytes(redeem)]))],
        [bitcoin.core.CMutableTxOut(coinbase.vout[0].nValue - 10_000, address.to_scriptPubKey())])
    txid = _proxy(net, "n2").sendrawtransaction(spend)
    assert txid == spend.GetTxid()
    found = _wait(lambda: (r := _proxy(net, "n4").getrawtransaction(txid, True)).get("confirmations", 0) >= 1 and r,
                  timeout_s=30, what="the spend to be mined")
    assert found["tx"].GetTxid() == txid
    raw = _proxy(net, "n3", raw=True)
    with pytest.raises(bitcoin.rpc.JSONRPCError) as e:
        raw.sendrawtransaction(bitcoin.core.b2x(spend.serialize()))
    assert e.value.error["code"] == -27                        # its outputs are in the UTXO set
    with pytest.raises(bitcoin.rpc.JSONRPCError) as e:
        raw.getblockhash(10**6)
    assert e.value.error["code"] == -8
    with pytest.raises(bitcoin.rpc.JSONRPCError) as e:
        raw.generatetoaddress(1, "not-an-address")
    assert e.value.error["code"] == -5
    with pytest.raises(bitcoin.rpc.JSONRPCError) as e:
        raw.nosuchmethod()
    assert e.value.error["code"] == -32601
    double = bitcoin.core.CMutableTransaction(spend.vin, [bitcoin.core.CMutableTxOut(100_000, address.to_scriptPubKey())])
    with pytest.raises(bitcoin.rpc.JSONRPCError) as e:
        raw.sendrawtransaction(bitcoin.core.b2x(double.serialize()))
    assert e.value.error["code"] == -25                        # its input is spent
    decoded = raw.decoderawtransaction(bitcoin.core.b2x(spend.serialize()))
    assert decoded["txid"] == bitcoin.core.b2lx(txid)
    assert decoded["vout"][0]["value"] == Decimal(spend.vout[0].nValue) / 10**8
    assert str(decoded["vout"][0]["value"]).split(".")[1].__len__() == 8   # BTC with 8 decimals, as bitcoind prints
    block2 = raw.getblock(raw.getbestblockhash(), 2)
    assert block2["tx"][0]["vin"][0]["coinbase"]
    assert raw.getblockchaininfo()["chain"] == "regtest"
    assert isinstance(raw.getrawmempool(), list)


def test_rpc_refuses_a_wrong_password_and_malformed_requests(net: LocalCluster) -> None:
    port = _port(net, "n2")
    bad = base64.b64encode(b"synod:wrong").decode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", "/", json.dumps({"method": "getblockcount", "params": [], "id": 1}),
                 {"Authorization": f"Basic {bad}"})
    assert conn.getresponse().status == 401
    conn.close()
    user, password = rpc_credentials(net.run_dir)
    good = base64.b64encode(f"{user}:{password}".encode()).decode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", "/", "{not json", {"Authorization": f"Basic {good}"})
    response = conn.getresponse()
    assert response.status == 500
    assert json.loads(response.read())["error"]["code"] == -32700
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)   # a batch, JSON-RPC 2.0
    conn.request("POST", "/", json.dumps([{"jsonrpc": "2.0", "method": "getblockcount", "id": 1},
                                          {"jsonrpc": "2.0", "method": "getbestblockhash", "id": 2}]),
                 {"Authorization": f"Basic {good}"})
    replies = json.loads(conn.getresponse().read())
    assert [r["id"] for r in replies] == [1, 2]
    assert isinstance(replies[0]["result"], int) and len(replies[1]["result"]) == 64
    conn.close()
    assert _rpc(net, "n2", "getblockcount") >= 0      # the node runs on


# -- P2P with python-bitcoinlib's message classes ---------------------------------------------------------------------


class _Peer:
    """A raw-socket Bitcoin peer speaking python-bitcoinlib's messages."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def send(self, msg: Any) -> None:
        self.sock.sendall(msg.to_bytes())

    def expect(self, command: bytes, timeout_s: float = 10.0, match: Callable[[Any], bool] = lambda msg: True) -> Any:
        """The next message with ``command`` for which ``match`` holds (others,
        such as announcements, skipped)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = bitcoin.messages.MsgSerializable.stream_deserialize(self.file)
            if msg is not None and msg.command == command and match(msg):
                return msg
        raise AssertionError(f"no {command!r} within {timeout_s} s; the network:\n{_network_state()}")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def _handshake(port: int) -> tuple[_Peer, Any]:
    peer = _Peer(port)
    peer.send(bitcoin.messages.msg_version())
    version = peer.expect(b"version")       # the node's own version first (Core's order on an inbound peer)
    peer.expect(b"verack")
    peer.send(bitcoin.messages.msg_verack())
    return peer, version


def test_bitcoinlib_peer_handshakes_fetches_headers_and_blocks_and_pings(net: LocalCluster) -> None:
    """Bitcoin's P2P protocol with a peer nobody here wrote: version/verack,
    getheaders -> headers, getdata -> block, ping -> pong, an unsolicited
    headers announcement of a new block; a malformed message closes that
    connection and the node runs on."""
    height = _wait(lambda: _rpc(net, "n2", "getblockcount") >= 2 and _rpc(net, "n2", "getblockcount"))
    peer, version = _handshake(_port(net, "n2", "p2p"))
    try:
        assert version.strSubVer.startswith(b"/synod")
        assert version.nStartingHeight >= height
        # headers-first: getheaders from a locator, then the block of the first header, twice
        # (bitcoinlib's msg_headers reads 80 bytes a header, not the tx count after each: only
        # the first header of a message is read right, so the walk takes one at a time)
        known = bitcoin.core.CoreRegTestParams.GENESIS_BLOCK.GetHash()
        for _ in range(2):
            getheaders = bitcoin.messages.msg_getheaders()
            getheaders.locator.vHave = [known]
            peer.send(getheaders)
            # (a new block's announcement, also a headers message, may come first: skipped)
            first = peer.expect(b"headers", match=lambda m, k=known: m.headers[0].hashPrevBlock == k).headers[0]
            getdata = bitcoin.messages.msg_getdata()
            inv = bitcoin.net.CInv()
            inv.type, inv.hash = 2, first.GetHash()   # MSG_BLOCK
            getdata.inv = [inv]
            peer.send(getdata)
            block = peer.expect(b"block").block
            assert block.GetHash() == first.GetHash()
            assert block.hashPrevBlock == known
            assert block.vtx[0].is_coinbase()
            known = block.GetHash()
        assert _rpc(net, "n2", "getblockhash", 2) == bitcoin.core.b2lx(known)
        peer.send(bitcoin.messages.msg_ping(nonce=0x5EED))
        assert peer.expect(b"pong").nonce == 0x5EED
        assert _rpc(net, "n2", "getconnectioncount") >= len(IDS)     # six nodes and this peer
        # a new block is announced to this peer as to any other (BIP130 headers)
        tip = _rpc(net, "n2", "getblockcount")
        announced = _wait(lambda: (h := peer.expect(b"headers", timeout_s=20).headers[0]) and _rpc(
            net, "n2", "getblockheader", bitcoin.core.b2lx(h.GetHash()))["height"] > tip, what="an announcement")
        assert announced
        # a message with a bad checksum: the node drops the connection
        ping = bytearray(bitcoin.messages.msg_ping(nonce=1).to_bytes())
        ping[20] ^= 0xFF
        peer.sock.sendall(bytes(ping))
        peer.sock.settimeout(5)
        assert _read_until_closed(peer.sock)
    finally:
        peer.close()
    assert _rpc(net, "n2", "getblockcount") >= height       # the node runs on
    again, _ = _handshake(_port(net, "n2", "p2p"))
    again.close()


def _read_until_closed(sock: socket.socket) -> bool:
    """True once the node has closed the connection (EOF)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if sock.recv(65536) == b"":
                return True
        except ConnectionResetError:
            return True
    return False


def test_the_spec_gives_every_node_both_ports(tmp_path: Path) -> None:
    config, _ = write_config(network_spec(tmp_path, nodes=2, miners=1))
    assert set(config.nodes) == {"m1", "n1", "n2"}
    assert all(set(n.client_ports) == {"p2p", "rpc"} for n in config.nodes.values())
    assert sum(n.params["hash_share"] for n in config.nodes.values()) == 1.0
    assert "password" not in json.dumps([n.params for n in config.nodes.values()])
    assert rpc_credentials(tmp_path)[1] not in (tmp_path / "cluster-config.json").read_text()


def test_synod_btc_up_status_down(tmp_path: Path) -> None:
    """``synod btc up`` starts a detached network that mines, ``status``
    shows every node on one tip, ``down`` stops it; a second ``up`` while it
    runs is refused."""
    from click.testing import CliRunner

    from synod.cli.main import cli

    run = CliRunner()
    run_dir = str(tmp_path / "net")
    up = run.invoke(cli, ["btc", "up", "--nodes", "2", "--miners", "1", "--block-interval", "300ms", "--dir", run_dir])
    try:
        assert up.exit_code == 0, up.output
        assert "m1" in up.output and "rpc.password" in up.output
        assert run.invoke(cli, ["btc", "up", "--dir", run_dir]).exit_code == 1

        def mined() -> dict[str, Any] | None:
            rows = json.loads(run.invoke(cli, ["btc", "status", "--dir", run_dir, "--json"]).output)["nodes"]
            tips = {r.get("tip") for r in rows.values()}
            return rows if len(tips) == 1 and all(r.get("height", 0) >= 2 for r in rows.values()) else None

        rows = _wait(mined, what="the network to mine")
        assert set(rows) == {"m1", "n1", "n2"} and rows["m1"]["miner"] and rows["n1"]["peers"] == 2
        text = run.invoke(cli, ["btc", "status", "--dir", run_dir]).output
        assert "every node on one tip" in text
    finally:
        down = run.invoke(cli, ["btc", "down", "--dir", run_dir])
    assert down.exit_code == 0, down.output
    assert "stopped" in down.output
    assert not LocalCluster.running_in(run_dir)


def test_bitcoinlib_uses_the_regtest_wallet_to_mine_and_pay_another_node(net: LocalCluster) -> None:
    """The node's regtest wallet through python-bitcoinlib's Proxy, as a
    regtest user drives bitcoind's: getnewaddress (bech32), 101 blocks
    mined to it make its first coinbase spendable (getbalance), and a
    sendtoaddress to another node's wallet reaches a third node, is mined
    by the miners and shows in the payee's listunspent."""
    payer, payee = _proxy(net, "n1"), _proxy(net, "n2")
    address = payer.getnewaddress()
    assert isinstance(address, bitcoin.wallet.P2WPKHBitcoinAddress)
    assert str(address).startswith("bcrt1q")
    hashes = list(payer.generatetoaddress(101, address))
    target = _rpc(net, "n1", "getblockheader", bitcoin.core.b2lx(hashes[-1]))["height"]
    # every node, the miners first of all, knows the coins before it hears of a spend of them
    _wait(lambda: all(_rpc(net, n, "getblockcount") >= target for n in IDS), timeout_s=30, what="the generated blocks")
    first = payer.getblock(hashes[0]).vtx[0].vout[0]
    assert first.scriptPubKey == address.to_scriptPubKey()
    balance = payer.getbalance()                       # satoshis (bitcoinlib converts)
    assert balance >= first.nValue > 0                 # (the miners' blocks since may have matured more)
    to = payee.getnewaddress()
    amount = balance // 4 // 1000 * 1000
    txid = payer.sendtoaddress(to, amount)
    seen = _wait(lambda: _proxy(net, "n3").getrawtransaction(txid), timeout_s=30, what="the payment to reach n3")
    assert seen.GetTxid() == txid
    assert any(out.nValue == amount and out.scriptPubKey == to.to_scriptPubKey() for out in seen.vout)

    def received() -> dict[str, Any] | None:
        return next((u for u in payee.listunspent(1) if u["outpoint"].hash == txid), None)

    coin = _wait(received, timeout_s=30, what="the miners to confirm the payment")
    assert coin["amount"] == amount and coin["address"] == to and coin["confirmations"] >= 1
    assert payee.getbalance() >= amount
