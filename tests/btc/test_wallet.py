"""The regtest wallet behind a node's JSON-RPC (synod.bitcoin.wallet), and
sendrawtransaction's ``maxfeerate``, in the simulator: calls arrive as a
client's ``RpcRequest`` on the node's RPC port, as bitcoind's would.

Two nodes that do not mine by themselves: blocks come from
``generatetoaddress``, so every balance is exact."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from synod.bitcoin import OutPoint, Transaction, TxIn, TxOut
from synod.bitcoin import wallet as wallet_module
from synod.bitcoin._hashes import hash160
from synod.bitcoin._policy import fee_at
from synod.bitcoin.address import address_to_script, script_to_address
from synod.bitcoin.interpreter import VerifyFlags, verify_transaction
from synod.bitcoin.node import BitcoinConfig, BitcoinNode
from synod.bitcoin.rpc import RpcReply, RpcRequest
from synod.bitcoin.wallet import FALLBACK_FEE_SAT_PER_KVB, WALLET_FILE, Wallet, WalletKey, max_vsize
from synod.core.records import scan_records
from synod.sim import Simulator
from synod.sim.disk import SimDisk
from synod.sim.trace import Tracer

COIN = 100_000_000
IDS = ("n1", "n2")
_DECODE = msgspec.json.Decoder(float_hook=Decimal)
_OP_TRUE_REDEEM = b"\x51"
_OP_TRUE_P2SH = b"\xa9\x14" + hash160(_OP_TRUE_REDEEM) + b"\x87"


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class Network:
    """Two full nodes (no hash power) in the simulator, and an RPC client of each."""

    def __init__(self, seed: int = 11, *, tracer: Tracer | None = None) -> None:
        self.sim = Simulator(seed, tracer=tracer)
        for n in IDS:
            config = BitcoinConfig(hash_share=0.0)
            self.sim.add_node(n, lambda c=config: BitcoinNode(c), start=False)
        self.sim.set_peers(IDS)
        for n in IDS:
            self.sim.restart(n)
        self.replies: dict[int, RpcReply] = {}
        self._corr = 0
        for host in self.sim.hosts.values():   # what a node says to a client id goes to the gateway: kept here
            for name in ("_apply", "_apply_sends"):
                apply = getattr(host, name)

                def capture(ctx: Any, apply: Any = apply) -> None:
                    sends = ctx.effects.sends
                    self.replies.update((-corr, msg) for dst, msg, corr in sends if ":" in dst and corr < 0)
                    sends[:] = [s for s in sends if ":" not in s[0]]
                    apply(ctx)

                setattr(host, name, capture)
        self.sim.run(until_ms=1_000)

    def rpc(self, n: str, method: str, *params: Any) -> Any:
        """Call ``method`` on node ``n``; its result, or RpcError."""
        self._corr += 1
        self.sim.hosts[n].deliver("rpc:1", RpcRequest(method=method, params_json=json.dumps(params)), self._corr)
        reply = self.replies.pop(self._corr)
        if reply.error_code:
            raise RpcError(reply.error_code, reply.error_message)
        return _DECODE.decode(reply.result_json)

    def node(self, n: str) -> BitcoinNode:
        node = self.sim.hosts[n].node
        assert isinstance(node, BitcoinNode)
        return node

    def settle(self) -> None:
        """Run until both nodes have one tip and one mempool."""
        def same() -> bool:
            a, b = self.node("n1"), self.node("n2")
            return a.tree.tip.hash == b.tree.tip.hash and set(a.mempool.txids()) == set(b.mempool.txids())
        self.sim.run(until_ms=self.sim.now_ms + 30_000, until=same)
        assert same()


def _refused(net: Network, n: str, method: str, *params: Any) -> RpcError:
    with pytest.raises(RpcError) as e:
        net.rpc(n, method, *params)
    return e.value


def _sat(btc: Decimal) -> int:
    return int(btc * COIN)


# -- keys and addresses -----------------------------------------------------------------------------------------------


def test_getnewaddress_gives_distinct_p2wpkh_addresses_each_durable_before_it_is_handed_out() -> None:
    """BIP173/BIP141: ``bcrt1q`` addresses of witness v0 key hashes; each key
    is a synced record of wallet.dat by the time its address is returned."""
    net = Network()
    addresses = [net.rpc("n1", "getnewaddress") for _ in range(5)] + [net.rpc("n1", "getnewaddress", "savings", "bech32")]
    assert len(set(addresses)) == 6
    for address in addresses:
        assert address.startswith("bcrt1q")
        script = address_to_script(address, "regtest")
        assert script[:2] == b"\x00\x14" and len(script) == 22
    disk = net.sim.hosts["n1"].disk
    disk.crash()                      # (only what was synced survives)
    scan = scan_records(disk.read(WALLET_FILE) or b"")
    assert scan.error is None
    keys = [msgspec.msgpack.decode(r, type=WalletKey) for r in scan.records]
    assert [k.label for k in keys] == [""] * 5 + ["savings"]
    assert net.rpc("n2", "getnewaddress") not in addresses     # (another node, another seed)
    assert _refused(net, "n1", "getnewaddress", "", "legacy").code == -12
    assert _refused(net, "n1", "getnewaddress", "", "p2wpkh").code == -5
    assert _refused(net, "n1", "getnewaddress", "*").code == -11


def test_the_number_of_keys_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wallet_module, "WALLET_KEYS_MAX", 3)
    net = Network()
    for _ in range(3):
        net.rpc("n1", "getnewaddress")
    e = _refused(net, "n1", "getnewaddress")
    assert e.code == -12 and "limit of 3 keys" in e.message


def test_a_key_drawn_again_is_not_handed_out_twice() -> None:
    """A node's rng after a restart may replay the draws of an earlier run
    (a runtime seeded alike): the wallet draws on rather than repeat a key."""
    ctx: Any = SimpleNamespace(disk=SimDisk(random.Random(0)), rng=random.Random(5), trace=lambda *a, **k: None)
    wallet = Wallet.load(ctx, "regtest")
    first = [wallet.new_address(ctx) for _ in range(3)]
    ctx.rng = random.Random(5)
    again = Wallet.load(ctx, "regtest")
    assert again.addresses() == first
    assert again.new_address(ctx) not in first
    assert len(scan_records(ctx.disk.read(WALLET_FILE) or b"").records) == 4


# -- balance and coins ------------------------------------------------------------------------------------------------


def test_a_coinbase_counts_once_it_has_101_confirmations() -> None:
    """Core's wallet: a coinbase is spendable at depth COINBASE_MATURITY + 1,
    so 101 blocks mined to an address give one 50 BTC coin (regtest subsidy)."""
    net = Network()
    address = net.rpc("n1", "getnewaddress")
    net.rpc("n1", "generatetoaddress", 100, address)
    assert net.rpc("n1", "getbalance") == 0
    assert net.rpc("n1", "listunspent") == []
    net.rpc("n1", "generatetoaddress", 1, address)
    assert net.rpc("n1", "getbalance") == Decimal(50)
    [coin] = net.rpc("n1", "listunspent")
    assert coin["address"] == address and coin["amount"] == Decimal(50) and coin["confirmations"] == 101
    assert coin["safe"] and coin["spendable"]
    assert coin["scriptPubKey"] == address_to_script(address, "regtest").hex()
    block1 = net.node("n1").tree.block_at(1)
    assert block1 is not None
    assert coin["txid"] == block1.transactions[0].txid[::-1].hex() and coin["vout"] == 0
    info = net.rpc("n1", "getwalletinfo")
    assert info["balance"] == Decimal(50) and info["immature_balance"] == Decimal(50 * 100)
    assert net.rpc("n2", "getbalance") == 0                    # n2's wallet holds none of n1's keys


def _funded(seed: int = 11, **kw: Any) -> tuple[Network, str]:
    net = Network(seed, **kw)
    address = net.rpc("n1", "getnewaddress")
    net.rpc("n1", "generatetoaddress", 101, address)
    net.settle()                 # (n2 knows the coins before it hears of a spend of them)
    return net, address


def test_sendtoaddress_pays_the_amount_and_change_and_its_inputs_verify() -> None:
    """sendtoaddress: coins selected, change to a new key of the wallet,
    the fallback fee rate, every input signed (BIP143) so that the script
    interpreter accepts it; relayed to the other node; once mined the
    recipient's listunspent shows it."""
    net, _ = _funded()
    to = net.rpc("n2", "getnewaddress")
    txid = net.rpc("n1", "sendtoaddress", to, 1.5)
    n1 = net.node("n1")
    tx = n1.mempool.get(bytes.fromhex(txid)[::-1])
    assert tx is not None
    spent = [n1.tree.utxos.coins[i.prevout].output for i in tx.inputs]
    verify_transaction(tx, spent, VerifyFlags.standard())
    pay, change = tx.outputs
    assert pay == TxOut(value=150_000_000, script_pubkey=address_to_script(to, "regtest"))
    assert change.script_pubkey in n1.wallet
    fee = sum(o.value for o in spent) - sum(o.value for o in tx.outputs)
    vsize = (tx.weight + 3) // 4
    assert fee == fee_at(FALLBACK_FEE_SAT_PER_KVB, max_vsize(1, tx.outputs))    # (largest signatures assumed)
    assert fee_at(FALLBACK_FEE_SAT_PER_KVB, vsize) <= fee <= fee_at(FALLBACK_FEE_SAT_PER_KVB, vsize + 1)
    assert change.value == 50 * COIN - 150_000_000 - fee
    assert _sat(net.rpc("n1", "getbalance")) == change.value          # its own change counts at once
    assert net.rpc("n1", "getbalance", "*", 1) == 0                   # (not with minconf 1)
    net.settle()
    assert txid in net.rpc("n2", "getrawmempool")
    assert net.rpc("n2", "getbalance") == 0                            # someone else's unconfirmed: not yet
    [pending] = net.rpc("n2", "listunspent", 0)
    assert pending["confirmations"] == 0 and not pending["safe"] and pending["amount"] == Decimal("1.5")
    assert net.rpc("n2", "listunspent") == []                         # (minconf 1)
    net.rpc("n1", "generatetoaddress", 1, net.rpc("n1", "getnewaddress"))
    net.settle()
    [coin] = net.rpc("n2", "listunspent")
    assert (coin["txid"], coin["vout"], coin["address"]) == (txid, 0, to)
    assert coin["amount"] == Decimal("1.5") and coin["confirmations"] == 1 and coin["safe"]
    assert net.rpc("n2", "getbalance") == Decimal("1.5")
    assert net.rpc("n2", "listunspent", 1, 9_999_999, [to]) == [coin]
    assert net.rpc("n1", "listunspent", 1, 9_999_999, [to]) == []


def test_change_of_an_unconfirmed_send_is_spent_by_the_next() -> None:
    net, _ = _funded()
    to = net.rpc("n2", "getnewaddress")
    first = net.rpc("n1", "sendtoaddress", to, 10)
    second = net.rpc("n1", "sendtoaddress", to, 10)
    tx2 = net.node("n1").mempool.get(bytes.fromhex(second)[::-1])
    assert tx2 is not None
    assert [i.prevout.txid[::-1].hex() for i in tx2.inputs] == [first]
    assert 29 < net.rpc("n1", "getbalance") < 30


def test_subtractfeefromamount_sends_everything_without_change() -> None:
    """The recipient pays the fee; a remainder below dust is not kept as change."""
    net, _ = _funded()
    to = net.rpc("n2", "getnewaddress")
    txid = net.rpc("n1", "sendtoaddress", to, 50, "", "", True)
    tx = net.node("n1").mempool.get(bytes.fromhex(txid)[::-1])
    assert tx is not None
    [pay] = tx.outputs
    assert pay.value == 50 * COIN - fee_at(FALLBACK_FEE_SAT_PER_KVB, max_vsize(1, tx.outputs))
    assert net.rpc("n1", "getbalance") == 0


def test_sendtoaddress_refusals() -> None:
    """Core's codes: -6 insufficient funds, -5 an invalid address, -3 a bad amount."""
    net = Network()
    to = net.rpc("n2", "getnewaddress")
    assert _refused(net, "n1", "sendtoaddress", to, 1).code == -6          # no coins at all
    net.rpc("n1", "generatetoaddress", 101, net.rpc("n1", "getnewaddress"))
    e = _refused(net, "n1", "sendtoaddress", to, 50)      # 50 BTC and no fee: short by the fee
    assert (e.code, e.message) == (-6, "Insufficient funds")
    e = _refused(net, "n1", "sendtoaddress", "bcrt1qnotanaddress", 1)
    assert (e.code, e.message) == (-5, "Invalid address")
    assert _refused(net, "n1", "sendtoaddress", script_to_address(_OP_TRUE_P2SH, "main"), 1).code == -5   # mainnet's
    e = _refused(net, "n1", "sendtoaddress", to, 0)
    assert (e.code, e.message) == (-3, "Invalid amount for send")
    assert _refused(net, "n1", "sendtoaddress", to, -1).message == "Amount out of range"
    assert _refused(net, "n1", "sendtoaddress", to, 0.000000001).message == "Invalid amount"
    assert _refused(net, "n1", "sendtoaddress", to, "x").message == "Invalid amount"
    assert _refused(net, "n1", "sendtoaddress", to, 0.00000100).message == "Transaction amount too small"   # dust
    e = _refused(net, "n1", "sendtoaddress", to, 0.00001, "", "", True)     # (the fee is more than it)
    assert (e.code, e.message) == (-6, "The transaction amount is too small to pay the fee")
    assert net.rpc("n1", "sendtoaddress", to, "0.1")              # (an amount may be a string)
    assert len(net.node("n1").mempool) == 1


# -- durability -------------------------------------------------------------------------------------------------------


def test_the_wallet_survives_a_restart() -> None:
    """Keys are replayed from wallet.dat: the balance is the same, and a new
    key after the restart is not an old one."""
    net, address = _funded()
    before = net.rpc("n1", "getnewaddress")
    net.sim.crash("n1")
    net.sim.restart("n1")
    assert net.node("n1").wallet is None                       # (loaded at the first wallet call)
    assert net.rpc("n1", "getbalance") == Decimal(50)
    [coin] = net.rpc("n1", "listunspent")
    assert coin["address"] == address
    assert net.rpc("n1", "getnewaddress") not in (address, before)
    assert net.rpc("n1", "getwalletinfo")["keypoolsize"] == wallet_module.WALLET_KEYS_MAX - 3


def test_a_corrupt_wallet_record_is_kept_aside_and_the_keys_after_it_recovered() -> None:
    """A bit flipped at rest in the second of three keys: at the next start
    the file is kept aside whole (wallet.dat.corrupt-0), a warning says so,
    the good records are rewritten, and the third key, past the damage,
    still holds its coins."""
    tracer = Tracer(keep=True)
    net = Network(tracer=tracer)
    first, second, third = (net.rpc("n1", "getnewaddress") for _ in range(3))
    net.rpc("n1", "generatetoaddress", 101, third)
    net.sim.crash("n1")
    disk = net.sim.hosts["n1"].disk
    raw = bytearray(disk.read(WALLET_FILE) or b"")
    record_bytes = len(raw) // 3
    raw[record_bytes + record_bytes // 2] ^= 0x01                 # inside the second record's payload
    disk.write(WALLET_FILE, bytes(raw))
    disk.sync()
    net.sim.restart("n1")
    assert net.rpc("n1", "getbalance") == Decimal(50)
    assert disk.read(f"{WALLET_FILE}.corrupt-0") == bytes(raw)
    rewritten = scan_records(disk.read(WALLET_FILE) or b"")
    assert rewritten.error is None and len(rewritten.records) == 2
    warnings = [e for e in map(json.loads, tracer.lines or []) if e["kind"] == "warning" and e["node"] == "n1"]
    assert len(warnings) == 1 and WALLET_FILE in warnings[0]["message"]
    assert "corrupt-0" in warnings[0]["message"]
    assert net.rpc("n1", "listunspent", 1, 9_999_999, [third])[0]["amount"] == Decimal(50)
    addresses = net.node("n1").wallet.addresses()
    assert first in addresses
    assert second not in addresses                                 # (the damaged record's key is lost)


# -- sendrawtransaction's maxfeerate ----------------------------------------------------------------------------------


def _coinbase_outpoint(net: Network, height: int) -> tuple[OutPoint, int]:
    block = net.node("n1").tree.block_at(height)
    assert block is not None
    coinbase = block.transactions[0]
    return OutPoint(txid=coinbase.txid, index=0), coinbase.outputs[0].value


def _spend_op_true(prevout: OutPoint, value_sat: int) -> Transaction:
    """A spend of a P2SH(OP_TRUE) output (BIP16: the scriptSig pushes the redeem script)."""
    return Transaction(version=2, locktime=0, inputs=(TxIn(prevout=prevout, script_sig=b"\x01" + _OP_TRUE_REDEEM),),
                       outputs=(TxOut(value=value_sat, script_pubkey=_OP_TRUE_P2SH),))


def test_maxfeerate_refuses_a_fee_above_it_before_the_mempool() -> None:
    """Core's BroadcastTransaction: a fee over maxfeerate x vsize (default
    0.10 BTC/kvB) is refused with -25 and the transaction is not in the
    mempool; at the limit, or with maxfeerate 0, it is accepted. The fee of
    a child is reckoned from its mempool parent's output."""
    net = Network()
    net.rpc("n1", "generatetoaddress", 103, script_to_address(_OP_TRUE_P2SH, "regtest"))
    mempool = net.node("n1").mempool
    prevout, value = _coinbase_outpoint(net, 1)
    huge = _spend_op_true(prevout, 1_000)
    e = _refused(net, "n1", "sendrawtransaction", huge.serialize().hex())
    assert (e.code, e.message) == (-25, "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)")
    assert huge.txid not in mempool
    assert _refused(net, "n1", "sendrawtransaction", huge.serialize().hex(), 0.5).code == -25
    assert _refused(net, "n1", "sendrawtransaction", huge.serialize().hex(), 1).code == -8
    assert _refused(net, "n1", "sendrawtransaction", huge.serialize().hex(), -0.1).code == -3
    assert net.rpc("n1", "sendrawtransaction", huge.serialize().hex(), 0) == huge.txid[::-1].hex()
    assert huge.txid in mempool
    # exactly at the default limit: accepted; one satoshi over: refused
    prevout, value = _coinbase_outpoint(net, 2)
    vsize = (_spend_op_true(prevout, 0).weight + 3) // 4
    limit = fee_at(10_000_000, vsize)
    over = _spend_op_true(prevout, value - limit - 1)
    assert _refused(net, "n1", "sendrawtransaction", over.serialize().hex()).code == -25
    at = _spend_op_true(prevout, value - limit)
    assert net.rpc("n1", "sendrawtransaction", at.serialize().hex()) == at.txid[::-1].hex()
    # a child of a mempool transaction: its fee is its parent's output less its own
    child = _spend_op_true(OutPoint(txid=at.txid, index=0), 1_000)
    assert _refused(net, "n1", "sendrawtransaction", child.serialize().hex()).code == -25
    assert child.txid not in mempool
    assert net.rpc("n1", "sendrawtransaction", child.serialize().hex(), True)    # (bitcoinlib's allowhighfees)
    assert child.txid in mempool
    # a modest fee passes the default
    prevout, value = _coinbase_outpoint(net, 3)
    modest = _spend_op_true(prevout, value - 10_000)
    assert net.rpc("n1", "sendrawtransaction", modest.serialize().hex()) == modest.txid[::-1].hex()
