"""The JSON-RPC methods a node answers (:func:`synod.bitcoin.rpc.answer_rpc`),
each a function of the node's state: bitcoind's names, positional
arguments, result fields and error codes, as Bitcoin Core's RPC docs give
them (``bitcoincore.org/en/doc/<version>/rpc/``).

Served: getblockchaininfo, getblockcount, getbestblockhash, getblockhash,
getblock (verbosity 0/1/2), getblockheader, getrawtransaction (the mempool,
then the active chain scanned from the tip: no separate txindex is kept,
which a regtest chain does not need), decoderawtransaction,
sendrawtransaction (with ``maxfeerate``), getmempoolinfo, getrawmempool,
getpeerinfo, getconnectioncount, setban/listbanned/clearbanned (one IP
each, no subnets), generatetoaddress (regtest); and the
regtest wallet of :mod:`synod.bitcoin.wallet`, loaded at its first call:
getnewaddress, getbalance, listunspent, sendtoaddress, getwalletinfo. Not
served: ``maxburnamount`` of sendrawtransaction (accepted, not enforced);
the rest of Core's wallet (gettransaction, listtransactions, sendmany,
named wallets...).

Amounts are BTC as exact decimals (``Decimal``, 8 places), rendered as JSON
numbers as bitcoind prints them; an amount argument is a JSON number or
string of BTC with at most 8 decimals (Core's ``AmountFromValue``), taken
exactly as written. Fee rates are BTC/kvB as arguments, sat/kvB inside.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from synod.bitcoin import constants as C
from synod.bitcoin._banlist import ban_host
from synod.bitcoin._policy import fee_at, output_type
from synod.bitcoin.address import AddressError, address_to_script, script_to_address
from synod.bitcoin.asm import script_to_asm
from synod.bitcoin.errors import RuleViolation
from synod.bitcoin.primitives import (
    Block,
    BlockHeader,
    OutPoint,
    Transaction,
    TxIn,
    TxOut,
    hash_hex,
    merkle_root,
    parse_transaction,
)
from synod.bitcoin.rpc import (
    RPC_CLIENT_INVALID_IP_OR_SUBNET,
    RPC_CLIENT_NODE_ALREADY_ADDED,
    RPC_DESERIALIZATION_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_MISC_ERROR,
    RPC_TYPE_ERROR,
    RPC_VERIFY_ALREADY_IN_CHAIN,
    RPC_VERIFY_ERROR,
    RPC_VERIFY_REJECTED,
    Amount,
    RpcFailure,
)
from synod.bitcoin.wallet import (
    MAX_TX_FEE_SAT,
    RPC_WALLET_INVALID_LABEL_NAME,
    RPC_WALLET_KEYPOOL_RAN_OUT,
    WALLET_KEYS_MAX,
    Wallet,
    WalletCoin,
)

if TYPE_CHECKING:
    from synod.bitcoin.chain import HeaderEntry
    from synod.bitcoin.node import BitcoinNode
    from synod.core import Context

__all__ = ["METHODS", "GENERATE_BLOCKS_MAX", "DEFAULT_MAX_RAW_TX_FEE_RATE_SAT_PER_KVB", "genesis_block",
           "broadcast_transaction"]

GENERATE_BLOCKS_MAX = 1_000           # blocks one generatetoaddress mines
DEFAULT_MAX_RAW_TX_FEE_RATE_SAT_PER_KVB = 10_000_000   # Core's maxfeerate default: 0.10 BTC/kvB
LISTUNSPENT_MAXCONF_DEFAULT = 9_999_999
RPC_METHOD_DEPRECATED = -32           # (rpc/protocol.h; the wallet's own codes are in synod.bitcoin.wallet)
_ADDRESS_TYPES_NOT_SERVED = ("legacy", "p2sh-segwit", "bech32m")
COIN = Decimal(100_000_000)
_SAT = Decimal("0.00000001")
_GENESIS_SCRIPT_SIG = bytes.fromhex(
    "04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b"
    "206f66207365636f6e64206261696c6f757420666f722062616e6b73")
_GENESIS_PUBKEY_SCRIPT = bytes.fromhex(
    "4104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b"
    "8d578a4c702b6bf11d5fac")


def btc(sat: int) -> Amount:
    """Satoshis as BTC, exactly (8 decimal places; JSON ``0.00000001``, as bitcoind prints it)."""
    return Amount((Decimal(sat) / COIN).quantize(_SAT))


def genesis_block(header: BlockHeader) -> Block | None:
    """The genesis block whose header is ``header`` (Satoshi's coinbase), or
    None if that coinbase is not the one its merkle root commits to."""
    coinbase = Transaction(version=1, locktime=0, inputs=(
        TxIn(prevout=OutPoint(txid=bytes(32), index=0xFFFFFFFF), script_sig=_GENESIS_SCRIPT_SIG),),
        outputs=(TxOut(value=50 * 100_000_000, script_pubkey=_GENESIS_PUBKEY_SCRIPT),))
    root, _ = merkle_root([coinbase.txid])
    return Block(header=header, transactions=(coinbase,)) if root == header.merkle_root else None


# -- arguments --------------------------------------------------------------------------------------------------------


def _arg(params: list[Any], i: int, default: Any = None) -> Any:
    return params[i] if i < len(params) and params[i] is not None else default


def _hash_arg(value: Any, name: str) -> bytes:
    """A 64-hex-digit hash argument, in internal byte order."""
    if not isinstance(value, str):
        raise RpcFailure(RPC_TYPE_ERROR, f"{name} must be a string")
    if len(value) != 64:
        raise RpcFailure(RPC_INVALID_PARAMETER, f"{name} must be of length 64 (not {len(value)}, for '{value[:80]}')")
    try:
        return bytes.fromhex(value)[::-1]
    except ValueError:
        raise RpcFailure(RPC_INVALID_PARAMETER, f"{name} must be hexadecimal string (not '{value}')") from None


def _int_arg(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RpcFailure(RPC_TYPE_ERROR, f"{name}: JSON value is not an integer as expected")
    return value


def _str_arg(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise RpcFailure(RPC_TYPE_ERROR, f"{name}: JSON value is not a string as expected")
    return value


def _bool_arg(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise RpcFailure(RPC_TYPE_ERROR, f"{name}: JSON value is not a boolean as expected")
    return value


def _amount_arg(value: Any) -> int:
    """Satoshis from a JSON number or string of BTC (Core's
    ``AmountFromValue``), exactly: ``Decimal(str(x))``, so a float is read
    as its shortest repr, the text its client wrote.

    Raises:
        RpcFailure: -3 not a number or string; more than 8 decimals
            (``Invalid amount``); negative or over 21 million BTC
            (``Amount out of range``).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RpcFailure(RPC_TYPE_ERROR, "Amount is not a number or string")
    try:
        sat = Decimal(str(value)) * COIN
    except InvalidOperation:
        raise RpcFailure(RPC_TYPE_ERROR, "Invalid amount") from None
    if not sat.is_finite() or sat != sat.to_integral_value():
        raise RpcFailure(RPC_TYPE_ERROR, "Invalid amount")
    if not 0 <= sat <= C.MAX_MONEY:
        raise RpcFailure(RPC_TYPE_ERROR, "Amount out of range")
    return int(sat)


def _verbosity(value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool):
        return int(value)
    return _int_arg(value, "verbosity")


def _hex_arg(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise RpcFailure(RPC_TYPE_ERROR, f"{name} must be a string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise RpcFailure(RPC_DESERIALIZATION_ERROR, "TX decode failed") from None


# -- JSON of objects --------------------------------------------------------------------------------------------------


def difficulty(bits: int) -> float:
    """Core's ``GetDifficulty``: the genesis target over this one, from the compact bits."""
    shift = (bits >> 24) & 0xFF
    d = 0x0000FFFF / max(bits & 0x00FFFFFF, 1)
    while shift < 29:
        d *= 256.0
        shift += 1
    while shift > 29:
        d /= 256.0
        shift -= 1
    return d


def script_json(script: bytes, network: str) -> dict[str, Any]:
    out: dict[str, Any] = {"asm": script_to_asm(script), "hex": script.hex()}
    address = script_to_address(script, network)
    if address is not None:
        out["address"] = address
    out["type"] = output_type(script) or "nonstandard"
    return out


def tx_json(tx: Transaction, network: str) -> dict[str, Any]:
    """decoderawtransaction's object (txid, hash, sizes, vin, vout)."""
    vin: list[dict[str, Any]] = []
    for txin in tx.inputs:
        item: dict[str, Any]
        if tx.is_coinbase():
            item = {"coinbase": txin.script_sig.hex()}
        else:
            item = {"txid": hash_hex(txin.prevout.txid), "vout": txin.prevout.index,
                    "scriptSig": {"asm": script_to_asm(txin.script_sig), "hex": txin.script_sig.hex()}}
        if txin.witness:
            item["txinwitness"] = [w.hex() for w in txin.witness]
        item["sequence"] = txin.sequence
        vin.append(item)
    vout = [{"value": btc(o.value), "n": n, "scriptPubKey": script_json(o.script_pubkey, network)}
            for n, o in enumerate(tx.outputs)]
    return {"txid": hash_hex(tx.txid), "hash": hash_hex(tx.wtxid), "version": tx.version, "size": tx.total_size,
            "vsize": (tx.weight + 3) // 4, "weight": tx.weight, "locktime": tx.locktime, "vin": vin, "vout": vout}


def header_json(node: BitcoinNode, entry: HeaderEntry) -> dict[str, Any]:
    """getblockheader's object (verbose)."""
    tree = node.tree
    h = entry.header
    connected = tree.is_connected(entry)
    out: dict[str, Any] = {
        "hash": hash_hex(entry.hash), "confirmations": tree.height - entry.height + 1 if connected else -1,
        "height": entry.height, "version": h.version, "versionHex": f"{h.version & 0xFFFFFFFF:08x}",
        "merkleroot": hash_hex(h.merkle_root), "time": h.time, "mediantime": entry.median_time_past_s,
        "nonce": h.nonce, "bits": f"{h.bits:08x}", "difficulty": difficulty(h.bits),
        "chainwork": f"{entry.chain_work:064x}"}
    block = _body(node, entry.hash)
    if block is not None:
        out["nTx"] = len(block.transactions)
    if entry.prev is not None:
        out["previousblockhash"] = hash_hex(entry.prev.hash)
    if connected and entry.height < tree.height:
        out["nextblockhash"] = hash_hex(tree.chain[entry.height + 1])
    return out


def _body(node: BitcoinNode, block_hash: bytes) -> Block | None:
    if block_hash == node.tree.chain[0]:
        return genesis_block(node.params.genesis)
    return node.tree.bodies.get(block_hash)


def _entry(node: BitcoinNode, block_hash: bytes) -> HeaderEntry:
    entry = node.tree.headers.get(block_hash)
    if entry is None:
        raise RpcFailure(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
    return entry


# -- blockchain -------------------------------------------------------------------------------------------------------


def getblockchaininfo(node: BitcoinNode, ctx: Context, params: list[Any]) -> dict[str, Any]:
    tree = node.tree
    tip = tree.tip
    return {"chain": node.config.network, "blocks": tree.height, "headers": tree.headers.tip.height,
            "bestblockhash": hash_hex(tip.hash), "difficulty": difficulty(tip.header.bits), "time": tip.header.time,
            "mediantime": tip.median_time_past_s, "verificationprogress": 1.0,
            "initialblockdownload": tip.header.time < ctx.unix_ms // 1000 - 24 * 3600,
            "chainwork": f"{tip.chain_work:064x}",
            "size_on_disk": sum(b.total_size for b in tree.bodies.values()), "pruned": False, "warnings": ""}


def getblockcount(node: BitcoinNode, ctx: Context, params: list[Any]) -> int:
    return node.tree.height


def getbestblockhash(node: BitcoinNode, ctx: Context, params: list[Any]) -> str:
    return hash_hex(node.tree.tip.hash)


def getblockhash(node: BitcoinNode, ctx: Context, params: list[Any]) -> str:
    height = _int_arg(_arg(params, 0), "height")
    if not 0 <= height <= node.tree.height:
        raise RpcFailure(RPC_INVALID_PARAMETER, "Block height out of range")
    return hash_hex(node.tree.chain[height])


def getblockheader(node: BitcoinNode, ctx: Context, params: list[Any]) -> Any:
    entry = _entry(node, _hash_arg(_arg(params, 0), "blockhash"))
    if not _verbosity(_arg(params, 1), 1):
        return entry.header.serialize().hex()
    return header_json(node, entry)


def getblock(node: BitcoinNode, ctx: Context, params: list[Any]) -> Any:
    entry = _entry(node, _hash_arg(_arg(params, 0), "blockhash"))
    verbosity = _verbosity(_arg(params, 1), 1)
    block = _body(node, entry.hash)
    if block is None:
        raise RpcFailure(RPC_MISC_ERROR, "Block not available (not fully downloaded)")
    if verbosity <= 0:
        return block.serialize().hex()
    out = header_json(node, entry)
    out.update({"size": block.total_size, "strippedsize": block.stripped_size, "weight": block.weight,
                "nTx": len(block.transactions)})
    network = node.config.network
    out["tx"] = [tx_json(tx, network) | {"hex": tx.serialize().hex()} if verbosity >= 2 else hash_hex(tx.txid)
                 for tx in block.transactions]
    return out


# -- transactions -----------------------------------------------------------------------------------------------------


def _find_confirmed(node: BitcoinNode, txid: bytes, block_hash: bytes | None) -> tuple[Transaction, HeaderEntry] | None:
    """A transaction of the active chain (or of block ``block_hash``), scanning from the tip."""
    tree = node.tree
    hashes = [block_hash] if block_hash is not None else reversed(tree.chain[1:])
    for h in hashes:
        block = tree.bodies.get(h)
        entry = tree.headers.get(h)
        if block is None or entry is None:
            continue
        for tx in block.transactions:
            if tx.txid == txid:
                return tx, entry
    return None


def getrawtransaction(node: BitcoinNode, ctx: Context, params: list[Any]) -> Any:
    txid = _hash_arg(_arg(params, 0), "parameter 1")
    verbose = _verbosity(_arg(params, 1), 0)
    block_hash = _hash_arg(params[2], "parameter 3") if _arg(params, 2) is not None else None
    if block_hash is not None and block_hash not in node.tree.headers:
        raise RpcFailure(RPC_INVALID_ADDRESS_OR_KEY, "Block hash not found")
    tx = node.mempool.get(txid) if block_hash is None else None
    entry = None
    if tx is None:
        found = _find_confirmed(node, txid, block_hash)
        if found is None:
            where = "in provided block" if block_hash is not None else "mempool or blockchain transaction"
            raise RpcFailure(RPC_INVALID_ADDRESS_OR_KEY,
                             f"No such {where}. Use gettransaction for wallet transactions." if block_hash is None
                             else "No such transaction found in the provided block.")
        tx, entry = found
    if not verbose:
        return tx.serialize().hex()
    out: dict[str, Any] = {}
    if block_hash is not None and entry is not None:
        out["in_active_chain"] = node.tree.is_connected(entry)
    out.update(tx_json(tx, node.config.network))
    out["hex"] = tx.serialize().hex()
    if entry is not None:
        out.update({"blockhash": hash_hex(entry.hash),
                    "confirmations": node.tree.height - entry.height + 1 if node.tree.is_connected(entry) else 0,
                    "time": entry.header.time, "blocktime": entry.header.time})
    return out


def decoderawtransaction(node: BitcoinNode, ctx: Context, params: list[Any]) -> dict[str, Any]:
    raw = _hex_arg(_arg(params, 0), "hexstring")
    try:
        tx = parse_transaction(raw)
    except RuleViolation:
        raise RpcFailure(RPC_DESERIALIZATION_ERROR, "TX decode failed") from None
    return tx_json(tx, node.config.network)


def sendrawtransaction(node: BitcoinNode, ctx: Context, params: list[Any]) -> str:
    """Validate and relay a raw transaction (Core's ``sendrawtransaction``:
    ``hexstring [maxfeerate=0.10]``), refusing it if its fee rate exceeds
    ``maxfeerate`` BTC/kvB (0: no limit; a boolean, the allowhighfees that
    Core took before 0.19 and python-bitcoinlib's Proxy still sends: true
    means 0, false the default). Errors: -22 not a transaction; -8
    ``maxfeerate`` at or over 1 BTC/kvB; -3 it is no amount; the rest as
    :func:`broadcast_transaction`."""
    raw = _hex_arg(_arg(params, 0), "hexstring")
    try:
        tx = parse_transaction(raw)
    except RuleViolation:
        raise RpcFailure(RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at least one input.") from None
    rate_sat_per_kvb = _max_fee_rate(_arg(params, 1))
    broadcast_transaction(node, ctx, tx, max_fee_sat=fee_at(rate_sat_per_kvb, (tx.weight + 3) // 4))
    return hash_hex(tx.txid)


def _max_fee_rate(value: Any) -> int:
    """sendrawtransaction's ``maxfeerate`` in sat/kvB (Core's ``ParseFeeRate``)."""
    if value is None:
        return DEFAULT_MAX_RAW_TX_FEE_RATE_SAT_PER_KVB
    if isinstance(value, bool):
        return 0 if value else DEFAULT_MAX_RAW_TX_FEE_RATE_SAT_PER_KVB
    rate = _amount_arg(value)
    if rate >= C.COIN:
        raise RpcFailure(RPC_INVALID_PARAMETER, "Fee rates larger than or equal to 1BTC/kvB are not accepted")
    return rate


def broadcast_transaction(node: BitcoinNode, ctx: Context, tx: Transaction, *, max_fee_sat: int) -> None:
    """Put ``tx`` in the node's mempool and announce it to every peer
    (Core's ``BroadcastTransaction``): what sendrawtransaction and the
    wallet's sendtoaddress share. ``max_fee_sat``: the most it may pay in
    fees (Core's ``max_tx_fee``; 0: no limit), checked before it enters the
    mempool, its fee reckoned from the coins it spends (the UTXO set's, or
    mempool parents' outputs). Already in the mempool: nothing to do.
    Core checks the fee after a test acceptance (the mempool here has no
    dry run), so a transaction that both breaks a rule and overpays is
    refused there for the rule and here for its fee.

    Raises:
        RpcFailure: -27 its outputs are in the UTXO set already; -25 its
            fee exceeds ``max_fee_sat`` (``Fee exceeds maximum configured
            by user (e.g. -maxtxfee, maxfeerate)``), or an input is missing
            or spent; -26 any other rule, by its name.
    """
    if tx.txid in node.mempool:
        return
    utxos = node.tree.utxos
    if any(OutPoint(txid=tx.txid, index=i) in utxos for i in range(len(tx.outputs))):
        raise RpcFailure(RPC_VERIFY_ALREADY_IN_CHAIN, "Transaction outputs already in utxo set")
    if max_fee_sat > 0:
        fee_sat = _fee_sat(node, tx)
        if fee_sat is not None and fee_sat > max_fee_sat:
            raise RpcFailure(RPC_VERIFY_ERROR, "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)")
    tip = node.tree.tip
    try:
        result = node.mempool.accept(tx, utxos, tip.height, tip.median_time_past_s, now_s=int(ctx.unix_ms // 1000))
    except RuleViolation as e:
        code = RPC_VERIFY_ERROR if "missingorspent" in e.rule else RPC_VERIFY_REJECTED
        raise RpcFailure(code, f"{e.rule} ({e.detail})" if e.detail else e.rule) from None
    if result.orphan:
        raise RpcFailure(RPC_VERIFY_ERROR, "bad-txns-inputs-missingorspent")
    for txid in result.accepted:
        node._announce_tx(ctx, txid)


def _fee_sat(node: BitcoinNode, tx: Transaction) -> int | None:
    """The fee ``tx`` pays (sat): the coins it spends, from the UTXO set or
    mempool parents, less its outputs; None if some coin is in neither
    (the mempool then refuses it, or keeps it as an orphan)."""
    spent_sat = 0
    for txin in tx.inputs:
        coin = node.tree.utxos.get(txin.prevout)
        if coin is not None:
            spent_sat += coin.output.value
            continue
        parent = node.mempool.get(txin.prevout.txid)
        if parent is None or txin.prevout.index >= len(parent.outputs):
            return None
        spent_sat += parent.outputs[txin.prevout.index].value
    return spent_sat - sum(o.value for o in tx.outputs)


# -- mempool, network, mining -----------------------------------------------------------------------------------------


def getmempoolinfo(node: BitcoinNode, ctx: Context, params: list[Any]) -> dict[str, Any]:
    info = node.mempool.info(int(ctx.unix_ms // 1000))
    return {"loaded": True, "size": info.size, "bytes": info.vbytes, "usage": info.usage_bytes,
            "total_fee": btc(info.total_fee_sat), "maxmempool": info.mempool_vbytes_max,
            "mempoolminfee": btc(max(info.min_fee_sat_per_kvb, info.min_relay_fee_sat_per_kvb)),
            "minrelaytxfee": btc(info.min_relay_fee_sat_per_kvb),
            "incrementalrelayfee": btc(node.mempool.policy.incremental_relay_fee_sat_per_kvb),
            "unbroadcastcount": 0, "fullrbf": True}


def getrawmempool(node: BitcoinNode, ctx: Context, params: list[Any]) -> Any:
    txids = node.mempool.txids()
    if not _verbosity(_arg(params, 0), 0):
        return [hash_hex(t) for t in txids]
    out = {}
    for txid in txids:
        e = node.mempool.entry(txid)
        if e is None:
            continue
        out[hash_hex(txid)] = {
            "vsize": e.vsize, "weight": e.weight, "time": e.time_s, "height": e.height,
            "descendantcount": e.descendant_count, "descendantsize": e.descendant_vsize,
            "ancestorcount": e.ancestor_count, "ancestorsize": e.ancestor_vsize, "wtxid": hash_hex(e.wtxid),
            "fees": {"base": btc(e.fee_sat), "modified": btc(e.fee_sat), "ancestor": btc(e.ancestor_fee_sat),
                     "descendant": btc(e.descendant_fee_sat)},
            "depends": [hash_hex(d) for d in e.depends], "spentby": [hash_hex(s) for s in e.spent_by],
            "bip125-replaceable": False, "unbroadcast": False}
    return out


def getpeerinfo(node: BitcoinNode, ctx: Context, params: list[Any]) -> list[dict[str, Any]]:
    out = []
    for i, (name, peer) in enumerate(node.peers.items()):
        out.append({"id": i, "addr": peer.addr or name, "network": "not_publicly_routable",
                    "services": f"{peer.services:016x}", "relaytxes": True, "version": peer.version,
                    "subver": peer.user_agent, "inbound": ":" in name, "startingheight": peer.start_height,
                    "synced_headers": -1, "synced_blocks": -1, "inflight": sorted(hash_hex(h) for h in peer.in_flight),
                    "handshake_done": peer.version_received,
                    "connection_type": "inbound" if ":" in name else "outbound-full-relay"})
    return out


def getconnectioncount(node: BitcoinNode, ctx: Context, params: list[Any]) -> int:
    return sum(1 for p in node.peers.values() if p.version_received)


def generatetoaddress(node: BitcoinNode, ctx: Context, params: list[Any]) -> list[str]:
    """Mine ``nblocks`` blocks now (regtest), their coinbases paying ``address``."""
    nblocks = _int_arg(_arg(params, 0), "nblocks")
    address = _arg(params, 1)
    if not 0 <= nblocks <= GENERATE_BLOCKS_MAX:
        raise RpcFailure(RPC_INVALID_PARAMETER, f"nblocks: 0 to {GENERATE_BLOCKS_MAX}")
    if node.config.network != "regtest":
        raise RpcFailure(-32603, "generatetoaddress is for regtest only")
    try:
        script = address_to_script(address if isinstance(address, str) else "", node.config.network)
    except AddressError:
        raise RpcFailure(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address") from None
    hashes = []
    for _ in range(nblocks):
        block = node.build_block(ctx, payout_script=script)
        if block is None:
            break
        node.receive_block(ctx, block)
        hashes.append(hash_hex(block.hash))
    return hashes


# -- the wallet (synod.bitcoin.wallet) ---------------------------------------------------------------------------------


def _wallet(node: BitcoinNode, ctx: Context) -> Wallet:
    """The node's wallet, loaded from ``wallet.dat`` at the first wallet call after a start."""
    if node.wallet is None:
        node.wallet = Wallet.load(ctx, node.config.network)
    wallet: Wallet = node.wallet
    return wallet


def _wallet_coins(node: BitcoinNode, ctx: Context) -> tuple[Wallet, list[WalletCoin]]:
    wallet = _wallet(node, ctx)
    return wallet, wallet.coins(node.tree.utxos, node.tree.height, node.mempool)


def getnewaddress(node: BitcoinNode, ctx: Context, params: list[Any]) -> str:
    """A new receiving address of the wallet (Core's ``getnewaddress
    [label] [address_type]``): P2WPKH, bech32, its key durable before the
    reply. Errors: -11 the label ``*``; -5 an unknown address type; -12 a
    type this wallet does not make (legacy, p2sh-segwit, bech32m), or no
    key left (``WALLET_KEYS_MAX``)."""
    label = _str_arg(_arg(params, 0, ""), "label")
    if label == "*":
        raise RpcFailure(RPC_WALLET_INVALID_LABEL_NAME, "Invalid label name")
    address_type = _str_arg(_arg(params, 1, "bech32"), "address_type")
    if address_type in _ADDRESS_TYPES_NOT_SERVED:
        raise RpcFailure(RPC_WALLET_KEYPOOL_RAN_OUT, f"Error: No {address_type} addresses available.")
    if address_type != "bech32":
        raise RpcFailure(RPC_INVALID_ADDRESS_OR_KEY, f"Unknown address type '{address_type}'")
    return _wallet(node, ctx).new_address(ctx, label=label)


def getbalance(node: BitcoinNode, ctx: Context, params: list[Any]) -> Decimal:
    """The wallet's trusted balance in BTC (Core's ``getbalance [dummy="*"]
    [minconf=0] [include_watchonly]``): its mature coins of at least
    ``minconf`` confirmations, which with the default 0 includes the
    change of its own unconfirmed transactions (not what others send it
    until mined). Errors: -32 ``dummy`` other than ``*``."""
    dummy = _arg(params, 0)
    if dummy is not None and dummy != "*":
        raise RpcFailure(RPC_METHOD_DEPRECATED, 'dummy first argument must be excluded or set to "*".')
    minconf = _int_arg(_arg(params, 1, 0), "minconf")
    _bool_arg(_arg(params, 2, False), "include_watchonly")   # (no watch-only scripts: nothing to include)
    _, coins = _wallet_coins(node, ctx)
    return btc(sum(c.output.value for c in coins if c.trusted and c.mature and c.depth >= minconf))


def listunspent(node: BitcoinNode, ctx: Context, params: list[Any]) -> list[dict[str, Any]]:
    """The wallet's spendable coins (Core's ``listunspent [minconf=1]
    [maxconf=9999999] [addresses] [include_unsafe=true]``): those with
    ``minconf`` to ``maxconf`` confirmations (immature coinbases never),
    paying one of ``addresses`` if given, untrusted ones (``safe`` false)
    only with ``include_unsafe``. Each: txid, vout, address, label,
    scriptPubKey, amount (BTC), confirmations, spendable, solvable, safe.
    Errors: -5 an address that is none; -8 one given twice."""
    minconf = _int_arg(_arg(params, 0, 1), "minconf")
    maxconf = _int_arg(_arg(params, 1, LISTUNSPENT_MAXCONF_DEFAULT), "maxconf")
    wanted: set[bytes] | None = None
    if _arg(params, 2) is not None:
        if not isinstance(params[2], list):
            raise RpcFailure(RPC_TYPE_ERROR, "addresses: JSON value is not an array as expected")
        wanted = set()
        for address in params[2]:
            try:
                script = address_to_script(_str_arg(address, "address"), node.config.network)
            except AddressError:
                raise RpcFailure(RPC_INVALID_ADDRESS_OR_KEY, f"Invalid Bitcoin address: {address}") from None
            if script in wanted:
                raise RpcFailure(RPC_INVALID_PARAMETER, f"Invalid parameter, duplicated address: {address}")
            wanted.add(script)
    include_unsafe = _bool_arg(_arg(params, 3, True), "include_unsafe")
    _, coins = _wallet_coins(node, ctx)
    network = node.config.network
    return [{"txid": hash_hex(c.outpoint.txid), "vout": c.outpoint.index,
             "address": script_to_address(c.output.script_pubkey, network), "label": c.label,
             "scriptPubKey": c.output.script_pubkey.hex(), "amount": btc(c.output.value), "confirmations": c.depth,
             "spendable": True, "solvable": True, "safe": c.trusted}
            for c in coins if c.mature and minconf <= c.depth <= maxconf and (include_unsafe or c.trusted)
            and (wanted is None or c.output.script_pubkey in wanted)]


def sendtoaddress(node: BitcoinNode, ctx: Context, params: list[Any]) -> str:
    """Pay ``amount`` BTC to ``address`` from the wallet (Core's
    ``sendtoaddress address amount [comment] [comment_to]
    [subtractfeefromamount=false]``): a transaction made and signed by
    :meth:`Wallet.create_transaction`, then broadcast as
    sendrawtransaction would (at most Core's ``-maxtxfee`` in fees).
    Returns its txid. The comments are accepted and not kept (no
    transaction history). Errors: -5 ``Invalid address``; -3 an amount
    that is none, or not above 0 (``Invalid amount for send``); -6
    ``Insufficient funds`` and the wallet's other refusals; the mempool's
    as :func:`broadcast_transaction`."""
    address = _str_arg(_arg(params, 0), "address")
    try:
        script = address_to_script(address, node.config.network)
    except AddressError:
        raise RpcFailure(RPC_INVALID_ADDRESS_OR_KEY, "Invalid address") from None
    amount_sat = _amount_arg(_arg(params, 1))
    if amount_sat <= 0:
        raise RpcFailure(RPC_TYPE_ERROR, "Invalid amount for send")
    for i, name in ((2, "comment"), (3, "comment_to")):
        _str_arg(_arg(params, i, ""), name)
    subtract_fee = _bool_arg(_arg(params, 4, False), "subtractfeefromamount")
    wallet, coins = _wallet_coins(node, ctx)
    tx = wallet.create_transaction(ctx, coins, TxOut(value=amount_sat, script_pubkey=script),
                                   subtract_fee=subtract_fee)
    broadcast_transaction(node, ctx, tx, max_fee_sat=MAX_TX_FEE_SAT)
    return hash_hex(tx.txid)


def getwalletinfo(node: BitcoinNode, ctx: Context, params: list[Any]) -> dict[str, Any]:
    """Core's ``getwalletinfo``, the fields this wallet has: balances in
    BTC (trusted, untrusted pending, immature coinbase), keys left
    (``keypoolsize``), the block its view is of."""
    wallet, coins = _wallet_coins(node, ctx)
    tip = node.tree.tip
    return {"walletname": "", "walletversion": 169900,
            "balance": btc(sum(c.output.value for c in coins if c.trusted and c.mature)),
            "unconfirmed_balance": btc(sum(c.output.value for c in coins if not c.trusted)),
            "immature_balance": btc(sum(c.output.value for c in coins if not c.mature)),
            "keypoolsize": WALLET_KEYS_MAX - len(wallet), "paytxfee": btc(0), "private_keys_enabled": True,
            "avoid_reuse": False, "scanning": False, "descriptors": False, "external_signer": False, "blank": False,
            "lastprocessedblock": {"hash": hash_hex(tip.hash), "height": tip.height}}


# -- bans (Core's rpc/net.cpp: setban, listbanned, clearbanned) ---------------------------------------------------------


def setban(node: BitcoinNode, ctx: Context, params: list[Any]) -> None:
    """Ban (``"add"``) or unban (``"remove"``) one IP on the P2P port;
    ``bantime`` seconds (0: the node's ``ban_duration_ms``) or, with
    ``absolute``, until that Unix time. Peers connected from it are
    disconnected. Errors: -30 not one IP address, or removing one not
    banned; -23 already banned; -8 a command other than add/remove."""
    subnet, command = _arg(params, 0), _arg(params, 1)
    if command not in ("add", "remove"):
        raise RpcFailure(RPC_INVALID_PARAMETER, "command: add or remove")
    try:
        host = ban_host(subnet if isinstance(subnet, str) else "")
    except ValueError:
        raise RpcFailure(RPC_CLIENT_INVALID_IP_OR_SUBNET, "Error: Invalid IP/Subnet") from None
    now_s = int(ctx.unix_ms // 1000)
    if command == "remove":
        if not node.bans.unban(host):
            raise RpcFailure(RPC_CLIENT_INVALID_IP_OR_SUBNET,
                             "Error: Unban failed. Requested address/subnet was not previously manually banned.")
        return None
    if node.bans.is_banned(host, now_s):
        raise RpcFailure(RPC_CLIENT_NODE_ALREADY_ADDED, "Error: IP/Subnet already banned")
    bantime = _int_arg(_arg(params, 2, 0), "bantime")
    if _arg(params, 3, False) is True:
        duration_s = bantime - now_s
    else:
        duration_s = bantime if bantime > 0 else int(node.config.ban_duration_ms // 1000)
    node.bans.ban(host, now_s, duration_s)
    node.disconnect_address(ctx, host)
    return None


def listbanned(node: BitcoinNode, ctx: Context, params: list[Any]) -> list[dict[str, Any]]:
    now_s = int(ctx.unix_ms // 1000)
    return [{"address": f"{host}/{ipaddress.ip_address(host).max_prefixlen}", "ban_created": e.created_s,
             "banned_until": e.until_s, "ban_duration": e.until_s - e.created_s, "time_remaining": e.until_s - now_s}
            for host, e in node.bans.current(now_s)]


def clearbanned(node: BitcoinNode, ctx: Context, params: list[Any]) -> None:
    node.bans.clear()
    return None


Method = Callable[["BitcoinNode", "Context", list[Any]], Any]
METHODS: dict[str, tuple[Method, tuple[str, ...]]] = {
    "getblockchaininfo": (getblockchaininfo, ()),
    "getblockcount": (getblockcount, ()),
    "getbestblockhash": (getbestblockhash, ()),
    "getblockhash": (getblockhash, ("height",)),
    "getblock": (getblock, ("blockhash", "verbosity")),
    "getblockheader": (getblockheader, ("blockhash", "verbose")),
    "getrawtransaction": (getrawtransaction, ("txid", "verbose", "blockhash")),
    "decoderawtransaction": (decoderawtransaction, ("hexstring", "iswitness")),
    "sendrawtransaction": (sendrawtransaction, ("hexstring", "maxfeerate", "maxburnamount")),
    "getmempoolinfo": (getmempoolinfo, ()),
    "getrawmempool": (getrawmempool, ("verbose", "mempool_sequence")),
    "getpeerinfo": (getpeerinfo, ()),
    "getconnectioncount": (getconnectioncount, ()),
    "generatetoaddress": (generatetoaddress, ("nblocks", "address", "maxtries")),
    "getnewaddress": (getnewaddress, ("label", "address_type")),
    "getbalance": (getbalance, ("dummy", "minconf", "include_watchonly")),
    "listunspent": (listunspent, ("minconf", "maxconf", "addresses", "include_unsafe")),
    "sendtoaddress": (sendtoaddress, ("address", "amount", "comment", "comment_to", "subtractfeefromamount")),
    "getwalletinfo": (getwalletinfo, ()),
    "setban": (setban, ("subnet", "command", "bantime", "absolute")),
    "listbanned": (listbanned, ()),
    "clearbanned": (clearbanned, ()),
}
