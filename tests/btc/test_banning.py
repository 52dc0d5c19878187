"""Peers that misbehave on the P2P port are disconnected and refused for a
while (issue 14 section 2; Core's ``banman.cpp`` and ``Misbehaving``): a
malformed or oversize message, or a block breaking a consensus rule, bans
the sender's IP for ``ban_duration_ms``; a loopback peer only when
``ban_local_peers``; ``setban``/``listbanned``/``clearbanned`` manage the
list. In the simulator with a node's gateway input driven by hand, and as a
real process with python-bitcoinlib's messages over a socket."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import bitcoin
import bitcoin.messages
import msgspec
import pytest

from synod.bitcoin import messages as M
from synod.bitcoin._banlist import BANNED_MAX, BanList, ban_host, is_local
from synod.bitcoin.node import BitcoinConfig, BitcoinNode
from synod.bitcoin.primitives import Block
from synod.bitcoin.rpc import RpcRequest
from synod.core.clients import ClientClosed, ClientOpened
from synod.harness.btc_real import RpcCallError, network_spec, rpc_call, rpc_credentials
from synod.runtime.cluster import LocalCluster
from synod.runtime.config import write_config
from synod.sim import Simulator

# -- the list ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "host"), [
    ("10.0.0.7", "10.0.0.7"), ("10.0.0.7/32", "10.0.0.7"), ("10.0.0.7:8333", "10.0.0.7"),
    ("::1", "::1"), ("::1/128", "::1"), ("[::1]:18444", "::1"), ("::1:18444", "::1"),
])
def test_a_ban_names_one_ip_whatever_the_port(text: str, host: str) -> None:
    assert ban_host(text) == host


@pytest.mark.parametrize("text", ["10.0.0.0/24", "n1", "", "p2p:3", "300.1.1.1"])
def test_a_subnet_or_a_name_is_not_an_ip_to_ban(text: str) -> None:
    with pytest.raises(ValueError):
        ban_host(text)


def test_bans_expire_and_the_list_is_bounded() -> None:
    bans = BanList()
    bans.ban("10.0.0.1", now_s=100, duration_s=50)
    assert bans.is_banned("10.0.0.1", 149) and not bans.is_banned("10.0.0.1", 150)
    assert bans.current(150) == []
    for i in range(BANNED_MAX + 1):
        bans.ban(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", now_s=0, duration_s=1_000 + i)
    assert len(bans.entries) == BANNED_MAX
    assert not bans.is_banned("10.0.0.0", 1)        # the one expiring first made room
    assert bans.is_banned("10.0.0.1", 1)
    assert is_local("127.0.0.1") and is_local("::1") and not is_local("10.0.0.1") and not is_local("n1")


# -- a node in the simulator ---------------------------------------------------------------------------------------


def _node(**config: Any) -> tuple[Simulator, Any, list[tuple[str, Any, int]]]:
    sim = Simulator(3)
    sim.add_node("n1", lambda: BitcoinNode(BitcoinConfig(ban_duration_ms=60_000.0, **config)))
    sim.set_peers(("n1",))
    host = sim.hosts["n1"]
    heard: list[tuple[str, Any, int]] = []
    for name in ("_apply", "_apply_sends"):   # what the node sends a client id goes to a gateway: kept here
        apply = getattr(host, name)

        def capture(ctx: Any, apply: Any = apply) -> None:
            sends = ctx.effects.sends
            heard.extend((dst, msg, corr) for dst, msg, corr in sends if ":" in dst)
            sends[:] = [s for s in sends if ":" not in s[0]]
            apply(ctx)

        setattr(host, name, capture)
    sim.run(until_ms=1_000)
    return sim, host, heard


def _refused(heard: list[tuple[str, Any, int]], client: str) -> bool:
    return any(dst == client and corr == 0 and msg == M.P2pReply(disconnect=True) for dst, msg, corr in heard)


def _version() -> M.Version:
    return M.Version(version=70016, services=0, timestamp_s=0, addr_recv=M.NetAddress(), addr_from=M.NetAddress(),
                     nonce=1, user_agent=b"/test/", start_height=0)


def test_a_malformed_message_bans_the_senders_ip_until_the_ban_expires() -> None:
    sim, host, heard = _node()
    host.deliver("p2p:1", ClientOpened(protocol="p2p", addr="10.0.0.7:5555"), 0)
    host.deliver("p2p:1", ClientClosed(reason="protocol error: bad checksum", protocol_error=True), 0)
    host.deliver("p2p:2", ClientOpened(protocol="p2p", addr="10.0.0.7:6000"), 0)    # same IP, another port
    host.deliver("p2p:3", ClientOpened(protocol="p2p", addr="10.0.0.8:6000"), 0)
    host.deliver("p2p:4", ClientOpened(protocol="p2p", addr="10.0.0.9:6000"), 0)
    host.deliver("p2p:4", ClientClosed(reason="client closed"), 0)                  # leaving is no offence
    host.deliver("p2p:5", ClientOpened(protocol="p2p", addr="10.0.0.9:6001"), 0)
    assert _refused(heard, "p2p:2")
    assert not _refused(heard, "p2p:3") and not _refused(heard, "p2p:5")
    sim.run(until_ms=62_000)                                                         # the ban's 60 s are over
    host.deliver("p2p:6", ClientOpened(protocol="p2p", addr="10.0.0.7:7000"), 0)
    assert not _refused(heard, "p2p:6")


def test_a_loopback_peer_is_disconnected_but_banned_only_if_configured() -> None:
    for ban_local_peers in (False, True):
        _, host, heard = _node(ban_local_peers=ban_local_peers)
        host.deliver("p2p:1", ClientOpened(protocol="p2p", addr="127.0.0.1:5555"), 0)
        host.deliver("p2p:1", ClientClosed(reason="protocol error: oversize", protocol_error=True), 0)
        host.deliver("p2p:2", ClientOpened(protocol="p2p", addr="127.0.0.1:5556"), 0)
        assert _refused(heard, "p2p:2") == ban_local_peers


def _mined_block() -> Block:
    """Block 1 of another simulated network's miner."""
    sim = Simulator(5)
    sim.add_node("m1", lambda: BitcoinNode(BitcoinConfig(hash_share=1.0, block_interval_ms=1_000.0)))
    sim.set_peers(("m1",))
    miner = sim.hosts["m1"].node
    assert isinstance(miner, BitcoinNode)
    sim.run(until_ms=30_000)
    block = miner.tree.block_at(1)
    assert block is not None
    return block


def test_a_block_breaking_a_consensus_rule_gets_its_sender_disconnected_and_banned() -> None:
    _, host, heard = _node()
    node = host.node
    assert isinstance(node, BitcoinNode)
    host.deliver("p2p:1", ClientOpened(protocol="p2p", addr="10.0.0.7:5555"), 0)
    host.deliver("p2p:1", _version(), 1)
    good = _mined_block()
    bad = Block(header=good.header, transactions=good.transactions * 2)   # the merkle root no longer matches
    host.deliver("p2p:1", M.BlockMsg.from_block(bad), 2)
    assert ("p2p:1", M.P2pReply(disconnect=True), -2) in heard
    assert node.rejected[-1] in {"bad-txnmrklroot", "bad-txns-duplicate"}
    host.deliver("p2p:2", ClientOpened(protocol="p2p", addr="10.0.0.7:5556"), 0)
    assert _refused(heard, "p2p:2")
    assert node.tree.height == 0
    host.deliver("p2p:3", ClientOpened(protocol="p2p", addr="10.0.0.8:5556"), 0)
    host.deliver("p2p:3", _version(), 1)
    host.deliver("p2p:3", M.BlockMsg.from_block(good), 2)                 # the good one from another peer: taken
    assert node.tree.height == 1 and not _refused(heard, "p2p:3")


def test_setban_listbanned_and_clearbanned() -> None:
    _, host, heard = _node()

    def rpc(method: str, params: str = "[]") -> Any:
        heard.clear()
        host.deliver("rpc:1", RpcRequest(method=method, params_json=params), 1)
        [(_, reply, _)] = heard
        return reply

    assert rpc("setban", '["10.0.0.7", "add", 3600]').error_code == 0
    assert rpc("setban", '["10.0.0.7/32", "add"]').error_code == -23            # already banned (Core's code)
    assert rpc("setban", '["10.0.0.0/24", "add"]').error_code == -30            # not one IP
    assert rpc("setban", '["10.0.0.8", "remove"]').error_code == -30            # not banned
    listed = rpc("listbanned")
    [entry] = msgspec.json.decode(listed.result_json)
    assert entry["address"] == "10.0.0.7/32" and entry["ban_duration"] == 3600
    heard.clear()
    host.deliver("p2p:1", ClientOpened(protocol="p2p", addr="10.0.0.7:5555"), 0)
    assert _refused(heard, "p2p:1")
    assert rpc("clearbanned").error_code == 0
    assert msgspec.json.decode(rpc("listbanned").result_json) == []


# -- a real process --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    bitcoin.SelectParams("regtest")
    run_dir = tmp_path_factory.mktemp("btc-ban")
    spec = network_spec(run_dir, nodes=1, miners=0)
    spec.nodes["n1"].params["ban_local_peers"] = True     # every peer here is on 127.0.0.1
    _, path = write_config(spec)
    with LocalCluster(path) as cl:
        cl.start()
        yield cl


def _rpc(cl: LocalCluster, method: str, *params: Any) -> Any:
    return rpc_call(cl.config.nodes["n1"].client_ports["rpc"], rpc_credentials(cl.run_dir), method, *params)


def _connect(cl: LocalCluster) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", cl.config.nodes["n1"].client_ports["p2p"]), timeout=10)
    sock.sendall(bitcoin.messages.msg_version().to_bytes())
    return sock


def _answered(sock: socket.socket) -> bool:
    """True: the node answered (its version); False: it closed the connection without a word."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return False
        if not data:
            return False
        if b"version" in data:
            return True
    raise AssertionError("neither an answer nor a close within 10 s")


@pytest.mark.timeout(60)
def test_a_real_node_bans_a_peer_that_sent_a_bad_checksum_until_cleared(node: LocalCluster) -> None:
    sock = _connect(node)
    assert _answered(sock)
    ping = bytearray(bitcoin.messages.msg_ping(nonce=1).to_bytes())
    ping[20] ^= 0xFF                                   # the checksum no longer matches
    sock.sendall(bytes(ping))
    assert not _answered(sock)
    sock.close()
    again = _connect(node)
    assert not _answered(again)                        # refused: banned
    again.close()
    [entry] = _rpc(node, "listbanned")
    assert entry["address"] == "127.0.0.1/32" and entry["ban_duration"] == 86_400
    _rpc(node, "clearbanned")
    fresh = _connect(node)
    assert _answered(fresh)
    fresh.close()
    _rpc(node, "setban", "127.0.0.1", "add", 60)
    with pytest.raises(RpcCallError) as e:
        _rpc(node, "setban", "127.0.0.1", "add", 60)
    assert e.value.code == -23
    refused = _connect(node)
    assert not _answered(refused)
    refused.close()
    _rpc(node, "setban", "127.0.0.1", "remove")
    assert _rpc(node, "getblockcount") == 0            # the node runs on
