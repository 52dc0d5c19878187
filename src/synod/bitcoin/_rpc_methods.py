"""The JSON-RPC methods a node answers (:func:`synod.bitcoin.rpc.answer_rpc`),
each a function of the node's state: bitcoind's names, positional
arguments, result fields and error codes, as Bitcoin Core's RPC docs give
them (``bitcoincore.org/en/doc/<version>/rpc/``).

Served: getblockchaininfo, getblockcount, getbestblockhash, getblockhash,
getblock (verbosity 0/1/2), getblockheader, getrawtransaction (the mempool,
then the active chain scanned from the tip: no separate txindex is kept,
which a regtest chain does not need), decoderawtransaction,
sendrawtransaction, getmempoolinfo, getrawmempool, getpeerinfo,
getconnectioncount, generatetoaddress (regtest). Not served: the wallet
(getnewaddress, sendtoaddress); ``maxfeerate`` of sendrawtransaction is
accepted and not enforced.

Amounts are BTC as exact decimals (``Decimal``, 8 places), rendered as JSON
numbers as bitcoind prints them.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from synod.bitcoin._policy import output_type
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
    RPC_DESERIALIZATION_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_MISC_ERROR,
    RPC_TYPE_ERROR,
    RPC_VERIFY_ALREADY_IN_CHAIN,
    RPC_VERIFY_ERROR,
    RPC_VERIFY_REJECTED,
    RpcFailure,
)

if TYPE_CHECKING:
    from synod.bitcoin.chain import HeaderEntry
    from synod.bitcoin.node import BitcoinNode
    from synod.core import Context

__all__ = ["METHODS", "GENERATE_BLOCKS_MAX", "genesis_block"]

GENERATE_BLOCKS_MAX = 1_000           # blocks one generatetoaddress mines
COIN = Decimal(100_000_000)
_SAT = Decimal("0.00000001")
_GENESIS_SCRIPT_SIG = bytes.fromhex(
    "04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b"
    "206f66207365636f6e64206261696c6f757420666f722062616e6b73")
_GENESIS_PUBKEY_SCRIPT = bytes.fromhex(
    "4104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b"
    "8d578a4c702b6bf11d5fac")


def btc(sat: int) -> Decimal:
    """Satoshis as BTC, exactly (8 decimal places)."""
    return (Decimal(sat) / COIN).quantize(_SAT)


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
    """Validate and relay (Core: ``BroadcastTransaction``). Errors: -22 not
    a transaction; -27 its outputs are in the UTXO set already; -25 an
    input is missing or spent; -26 any other rule, by its name."""
    raw = _hex_arg(_arg(params, 0), "hexstring")
    try:
        tx = parse_transaction(raw)
    except RuleViolation:
        raise RpcFailure(RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at least one input.") from None
    if tx.txid in node.mempool:
        return hash_hex(tx.txid)
    utxos = node.tree.utxos
    if any(OutPoint(txid=tx.txid, index=i) in utxos for i in range(len(tx.outputs))):
        raise RpcFailure(RPC_VERIFY_ALREADY_IN_CHAIN, "Transaction outputs already in utxo set")
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
    return hash_hex(tx.txid)


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
}
