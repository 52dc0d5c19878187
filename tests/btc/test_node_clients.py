"""A node's P2P-port peers and RPC calls, in the simulator (DESIGN.md
section 8): every message a gateway client sends is answered by exactly one
``P2pReply`` (what the node says to the peer goes as pushes); the peer hears
the node's version before its verack (Core's order on an inbound
connection), is announced new blocks while connected and forgotten when it
goes; an RPC call is answered by one ``RpcReply``."""

from __future__ import annotations

from typing import Any

import msgspec

from synod.bitcoin import messages as M
from synod.bitcoin.node import BitcoinConfig, BitcoinNode
from synod.bitcoin.rpc import RpcReply, RpcRequest
from synod.core.clients import ClientClosed, ClientOpened
from synod.sim import Simulator

CLIENT = "p2p:1"


def _network() -> tuple[Simulator, list[tuple[Any, int]]]:
    sim = Simulator(7)
    for n in ("n1", "n2"):
        config = BitcoinConfig(hash_share=0.5, block_interval_ms=1_000.0)
        sim.add_node(n, lambda c=config: BitcoinNode(c), start=False)
    sim.set_peers(("n1", "n2"))
    for n in ("n1", "n2"):
        sim.restart(n)
    heard: list[tuple[Any, int]] = []
    for host in sim.hosts.values():   # what a node sends to a client id goes to the gateway: kept here
        for name in ("_apply", "_apply_sends"):
            apply = getattr(host, name)

            def capture(ctx: Any, apply: Any = apply) -> None:
                sends = ctx.effects.sends
                heard.extend((msg, corr) for dst, msg, corr in sends if ":" in dst)
                sends[:] = [s for s in sends if ":" not in s[0]]
                apply(ctx)

            setattr(host, name, capture)
    return sim, heard


def _version() -> M.Version:
    return M.Version(version=70016, services=0, timestamp_s=0, addr_recv=M.NetAddress(), addr_from=M.NetAddress(),
                     nonce=1, user_agent=b"/test/", start_height=0)


def test_each_message_of_a_p2p_client_gets_one_reply_and_pushes_carry_the_rest() -> None:
    sim, heard = _network()
    sim.run(until_ms=5_000)
    host = sim.hosts["n1"]
    host.deliver(CLIENT, ClientOpened(protocol="p2p", addr="127.0.0.1:5555"), 0)
    host.deliver(CLIENT, M.Ping(nonce=9), 1)                 # before its version: ignored, still answered
    host.deliver(CLIENT, _version(), 2)
    host.deliver(CLIENT, M.Verack(), 3)
    host.deliver(CLIENT, M.Ping(nonce=10), 4)
    host.deliver(CLIENT, M.Unknown(command="whatever", payload=b""), 5)   # unknown: ignored, answered
    replies = [corr for msg, corr in heard if corr < 0]
    assert replies == [-1, -2, -3, -4, -5]
    assert all(msg == M.P2pReply() for msg, corr in heard if corr < 0)
    pushes = [type(msg) for msg, corr in heard if corr == 0]
    assert pushes[:3] == [M.Version, M.Verack, M.GetHeaders]
    assert M.Pong in pushes and pushes.count(M.Pong) == 1    # the ping before the version got none
    node = host.node
    assert isinstance(node, BitcoinNode)
    assert node.peers[CLIENT].addr == "127.0.0.1:5555"
    heard.clear()
    sim.run(until_ms=20_000)                                   # blocks found meanwhile are announced to it
    assert any(isinstance(msg, M.Headers) and corr == 0 for msg, corr in heard)
    host.deliver(CLIENT, ClientClosed(reason="client closed"), 0)
    assert CLIENT not in node.peers
    heard.clear()
    sim.run(until_ms=30_000)
    assert heard == []


def test_an_rpc_call_gets_one_reply() -> None:
    sim, heard = _network()
    sim.run(until_ms=5_000)
    host = sim.hosts["n2"]
    host.deliver("rpc:1", RpcRequest(method="getblockcount"), 1)
    host.deliver("rpc:1", RpcRequest(method="getblockhash", params_json="[100000]"), 2)
    host.deliver("rpc:1", RpcRequest(method="getblockhash", params_json='{"height": 0}'), 3)
    host.deliver("rpc:1", RpcRequest(method="getblock", params_json='["zz"]'), 4)
    host.deliver("rpc:1", RpcRequest(method="getblockcount", params_json="[1, 2]"), 5)
    [(count, c1), (far, c2), (genesis, c3), (bad, c4), (extra, c5)] = heard
    assert (c1, c2, c3, c4, c5) == (-1, -2, -3, -4, -5)
    node = host.node
    assert isinstance(node, BitcoinNode)
    assert count == RpcReply(result_json=str(node.tree.height))
    assert far.error_code == -8 and far.error_message == "Block height out of range"
    assert msgspec.json.decode(genesis.result_json) == node.tree.chain[0][::-1].hex()
    assert bad.error_code == -8
    assert extra.error_code == -1
