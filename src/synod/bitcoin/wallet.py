"""A minimal regtest wallet behind a node's JSON-RPC (Bitcoin Core's
``wallet/``: its keypool, ``AvailableCoins``, ``CreateTransaction`` and
``CommitTransaction``, cut down to one key type).

Not for real money: every private key is drawn from the node's seeded
``ctx.rng`` (nothing in this package reads a clock, the OS's randomness or
the environment), so whoever knows the seed knows the keys. It exists so
that a regtest user, and python-bitcoinlib's ``bitcoin.rpc.Proxy``, can ask
a node for an address, mine to it and send from it, as with bitcoind.

Keys
    secp256k1 private keys (coincurve: libsecp256k1), each paying to its
    compressed public key as P2WPKH (BIP141 witness v0 key hash), whose
    address is bech32 (BIP173 ``bcrt1q...``): Core's default address type.
    A receiving key comes from ``getnewaddress``; a change key (Core's
    *internal* keys) from each transaction that pays change. At most
    ``WALLET_KEYS_MAX`` keys; past that :meth:`Wallet.new_address` refuses
    (Core's keypool ran out: -12).

Durability
    Each new key is appended to ``wallet.dat`` as a checksummed record
    (:func:`synod.core.records.pack_record` of a msgspec-encoded
    :class:`WalletKey`) and synced in the handler that hands its address
    out, so the address reaches the client only after the key is durable
    (the host applies the sync before the reply). :meth:`Wallet.load`
    replays the file. A damaged record: the whole file is kept aside as
    ``wallet.dat.corrupt-N`` and a warning given
    (:func:`synod.core.records.keep_aside`); every record that still reads
    is kept, those after the damage too (found by
    :func:`~synod.core.records.resync`), since a lost key is lost coins.

Coins
    Nothing but keys is stored: the wallet's coins are read from the UTXO
    set and the mempool on each call (a scan of the whole set, which a
    regtest chain affords). A coin is an output paying a wallet key that no
    mempool transaction spends. Its *depth* is its confirmations (0 in the
    mempool). It is *trusted* (Core's ``CachedTxIsTrusted``, listunspent's
    ``safe``) when confirmed, or when the mempool transaction creating it
    spends only the wallet's own trusted coins (change). A coinbase output
    is *mature* at depth ``COINBASE_MATURITY + 1`` (Core's wallet,
    ``GetBlocksToMaturity``: one block more than consensus asks, which is
    why a regtest user mines 101 blocks).

Spending (:meth:`Wallet.create_transaction`)
    Trusted mature coins, largest first, until they pay the amount and the
    fee; the fee is ``FALLBACK_FEE_SAT_PER_KVB`` (the ``-fallbackfee`` Core's
    regtest test framework sets) on the largest size the signed
    transaction can have (72-byte signatures). Change above the dust
    threshold goes to a new change key, last; below it the remainder is
    fee. With ``subtract_fee`` the recipient pays the fee. Inputs are
    signed with SIGHASH_ALL over BIP143's signature hash (ECDSA, DER,
    low-S as libsecp256k1 makes them; the witness is [signature + hash
    type, public key]). Version 2, nLockTime 0, every nSequence final:
    not Core's anti-fee-sniping nLockTime (the tip's height), which a peer
    a block behind refuses as non-final and, with no rebroadcast here,
    never asks for again.

Simplified against Core: one wallet, unnamed and unencrypted, without
descriptors, HD derivation, labels beyond a name kept with the key,
transaction history or watch-only scripts; coin selection is largest first
(Core: branch and bound, knapsack, SRD, by waste); the fee rate is fixed
(no fee estimation); an unconfirmed coin from someone else is never spent;
no wallet transaction is broadcast again (Core's ``ResendWalletTransactions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import coincurve
import msgspec

from synod.bitcoin import constants as C
from synod.bitcoin._hashes import hash160
from synod.bitcoin._policy import MAX_STANDARD_TX_WEIGHT, dust_threshold_sat, fee_at
from synod.bitcoin.address import script_to_address
from synod.bitcoin.primitives import OutPoint, Transaction, TxIn, TxOut, compact_size
from synod.bitcoin.rpc import RpcFailure
from synod.bitcoin.script import OP
from synod.bitcoin.sighash import SIGHASH_ALL, PrecomputedTransaction, segwit_v0_sighash
from synod.core.records import keep_aside, pack_record, resync, scan_records

if TYPE_CHECKING:
    from synod.bitcoin.chain import UtxoSet
    from synod.bitcoin.mempool import Mempool
    from synod.core import Context

__all__ = [
    "Wallet", "WalletKey", "WalletCoin", "WALLET_FILE", "WALLET_KEYS_MAX", "FALLBACK_FEE_SAT_PER_KVB",
    "MAX_TX_FEE_SAT", "LABEL_BYTES_MAX", "RPC_WALLET_INSUFFICIENT_FUNDS", "RPC_WALLET_INVALID_LABEL_NAME",
    "RPC_WALLET_KEYPOOL_RAN_OUT", "max_vsize",
]

WALLET_FILE = "wallet.dat"
WALLET_KEYS_MAX = 10_000                 # receiving and change keys together
LABEL_BYTES_MAX = 1_024                  # a label's UTF-8, kept with its key (synod's bound; Core has none)
KEY_DRAWS_MAX = 64                       # draws for one key (a draw fails with odds ~2**-128, or repeats a key)
FALLBACK_FEE_SAT_PER_KVB = 20_000        # 0.0002 BTC/kvB: the -fallbackfee of Core's regtest test framework
MAX_TX_FEE_SAT = 10_000_000              # Core's -maxtxfee default, 0.1 BTC: no wallet transaction pays more
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# Core's rpc/protocol.h, the wallet's codes
RPC_WALLET_INSUFFICIENT_FUNDS = -6
RPC_WALLET_INVALID_LABEL_NAME = -11
RPC_WALLET_KEYPOOL_RAN_OUT = -12

# A signed P2WPKH input at its largest: outpoint, empty scriptSig, nSequence;
# witness [72-byte signature with hash type, 33-byte key] with its counts.
_INPUT_BYTES = 32 + 4 + 1 + 4
_INPUT_WITNESS_BYTES_MAX = 1 + (1 + 72) + (1 + 33)
_CHANGE_TEMPLATE = TxOut(value=0, script_pubkey=bytes((OP._0, 20)) + bytes(20))   # any P2WPKH output


class WalletKey(msgspec.Struct, frozen=True, kw_only=True):
    """One record of ``wallet.dat``: a 32-byte secp256k1 private key, the
    label given with it, and whether it is a change key (Core's internal)."""

    secret: bytes
    label: str = ""
    internal: bool = False


class WalletCoin(msgspec.Struct, frozen=True, kw_only=True):
    """An unspent output paying the wallet: ``depth`` is its confirmations
    (0: created by a mempool transaction); ``trusted`` as the module
    docstring says (listunspent's ``safe``); ``label`` its key's."""

    outpoint: OutPoint
    output: TxOut
    depth: int
    is_coinbase: bool
    trusted: bool
    label: str = ""

    @property
    def mature(self) -> bool:
        """Spendable by maturity: not a coinbase, or one at depth
        ``COINBASE_MATURITY + 1`` (Core's wallet)."""
        return not self.is_coinbase or self.depth > C.COINBASE_MATURITY


class _Key:
    __slots__ = ("record", "private", "pubkey", "script_pubkey", "address")

    def __init__(self, record: WalletKey, network: str) -> None:
        self.record = record
        self.private = coincurve.PrivateKey(record.secret)      # (ValueError: 0 or not below the curve order)
        self.pubkey = self.private.public_key.format(compressed=True)
        self.script_pubkey = bytes((OP._0, 20)) + hash160(self.pubkey)
        address = script_to_address(self.script_pubkey, network)
        assert address is not None
        self.address = address


_ENCODE = msgspec.msgpack.Encoder()
_DECODE = msgspec.msgpack.Decoder(WalletKey)


class Wallet:
    """The node's wallet: its keys, by the scriptPubKey each pays to.

    Args:
        network: the address network (``regtest``).

    Invariant: ``len(self._keys) <= WALLET_KEYS_MAX``, and every key in
    ``_keys`` is in ``wallet.dat`` (synced) before its address is returned.
    """

    def __init__(self, network: str) -> None:
        self.network = network
        self._keys: dict[bytes, _Key] = {}      # scriptPubKey -> key, in creation order

    # -- keys ---------------------------------------------------------------------------------------

    @classmethod
    def load(cls, ctx: Context, network: str) -> Wallet:
        """The wallet ``ctx.disk``'s ``wallet.dat`` holds (empty if none).
        A damaged file is kept aside, with a warning, and every record that
        still reads is used (module docstring: Durability)."""
        wallet = cls(network)
        raw = ctx.disk.read(WALLET_FILE) or b""
        records, error = _readable_records(raw)
        for payload in records:
            if len(wallet) >= WALLET_KEYS_MAX:
                ctx.trace("btc_wallet_key_skipped", reason=f"over the limit of {WALLET_KEYS_MAX} keys")
                continue
            try:
                key = _Key(_DECODE.decode(payload), network)
            except (msgspec.DecodeError, ValueError) as e:   # (a record that checks but is no key: a bug, said once)
                ctx.trace("btc_wallet_key_skipped", reason=str(e))
                continue
            wallet._keys[key.script_pubkey] = key
        if error is not None:
            keep_aside(ctx, WALLET_FILE, raw, records, error)
        return wallet

    def new_address(self, ctx: Context, *, label: str = "", internal: bool = False) -> str:
        """A new key, durable in ``wallet.dat`` (synced) before its P2WPKH
        address is returned; its secret drawn from ``ctx.rng``.

        Raises:
            RpcFailure: -12, the wallet holds ``WALLET_KEYS_MAX`` keys; -11
                a label over ``LABEL_BYTES_MAX`` bytes.
        """
        if len(label.encode()) > LABEL_BYTES_MAX:
            raise RpcFailure(RPC_WALLET_INVALID_LABEL_NAME, f"Invalid label name: over {LABEL_BYTES_MAX} bytes")
        return self._new_key(ctx, label, internal).address

    def _new_key(self, ctx: Context, label: str, internal: bool) -> _Key:
        if len(self._keys) >= WALLET_KEYS_MAX:
            raise RpcFailure(RPC_WALLET_KEYPOOL_RAN_OUT,
                             f"Error: this regtest wallet holds its limit of {WALLET_KEYS_MAX} keys")
        for _ in range(KEY_DRAWS_MAX):
            secret = ctx.rng.getrandbits(256).to_bytes(32, "big")
            if not 0 < int.from_bytes(secret, "big") < SECP256K1_ORDER:
                continue
            record = WalletKey(secret=secret, label=label, internal=internal)
            key = _Key(record, self.network)
            if key.script_pubkey not in self._keys:   # (a restarted node's rng may repeat an earlier draw)
                break
        else:
            raise AssertionError(f"no new key in {KEY_DRAWS_MAX} draws from ctx.rng")
        ctx.disk.append(WALLET_FILE, pack_record(_ENCODE.encode(record)))
        ctx.disk.sync()
        self._keys[key.script_pubkey] = key
        return key

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, script_pubkey: object) -> bool:
        return script_pubkey in self._keys

    def addresses(self) -> list[str]:
        """Every address, receiving and change, oldest first."""
        return [k.address for k in self._keys.values()]

    # -- coins --------------------------------------------------------------------------------------

    def coins(self, utxos: UtxoSet, height: int, mempool: Mempool) -> list[WalletCoin]:
        """Every output paying the wallet that no mempool transaction
        spends: the UTXO set's (``height``: the tip's, for depths), then
        the mempool's, in acceptance order (module docstring: Coins)."""
        out = []
        for outpoint, coin in utxos.coins.items():
            key = self._keys.get(coin.output.script_pubkey)
            if key is not None and mempool.spender(outpoint) is None:
                out.append(WalletCoin(outpoint=outpoint, output=coin.output, depth=height - coin.height + 1,
                                      is_coinbase=coin.is_coinbase, trusted=True, label=key.record.label))
        trusted: set[bytes] = set()
        for txid in mempool.txids():   # (parents before children: a parent's trust is known first)
            tx = mempool.get(txid)
            assert tx is not None
            if all(self._spends_trusted(txin.prevout, utxos, mempool, trusted) for txin in tx.inputs):
                trusted.add(txid)
            for index, output in enumerate(tx.outputs):
                key = self._keys.get(output.script_pubkey)
                outpoint = OutPoint(txid=txid, index=index)
                if key is not None and mempool.spender(outpoint) is None:
                    out.append(WalletCoin(outpoint=outpoint, output=output, depth=0, is_coinbase=False,
                                          trusted=txid in trusted, label=key.record.label))
        return out

    def _spends_trusted(self, prevout: OutPoint, utxos: UtxoSet, mempool: Mempool, trusted: set[bytes]) -> bool:
        coin = utxos.get(prevout)
        if coin is not None:
            return coin.output.script_pubkey in self._keys
        parent = mempool.get(prevout.txid)
        return (parent is not None and prevout.txid in trusted and prevout.index < len(parent.outputs)
                and parent.outputs[prevout.index].script_pubkey in self._keys)

    # -- spending -----------------------------------------------------------------------------------

    def create_transaction(self, ctx: Context, coins: Sequence[WalletCoin], recipient: TxOut, *,
                           subtract_fee: bool = False, fee_rate_sat_per_kvb: int = FALLBACK_FEE_SAT_PER_KVB) -> Transaction:
        """A signed transaction paying ``recipient.value`` satoshis to
        ``recipient.script_pubkey`` from ``coins`` (those trusted and
        mature, largest first), change to a new change key (Core's
        ``CreateTransaction``; module docstring: Spending).

        Raises:
            RpcFailure: -6 ``Insufficient funds``; ``Transaction amount too
                small`` (the amount is dust); ``The transaction amount is
                too small to pay the fee`` (``subtract_fee``); ``Transaction
                too large`` (over the standard weight before the amount is
                met); ``Fee exceeds maximum configured by user (e.g.
                -maxtxfee, maxfeerate)`` (over ``MAX_TX_FEE_SAT``); -12 no
                key left for the change.
        """
        assert recipient.value > 0
        if not subtract_fee and recipient.value < dust_threshold_sat(recipient):
            raise RpcFailure(RPC_WALLET_INSUFFICIENT_FUNDS, "Transaction amount too small")
        spendable = sorted((c for c in coins if c.trusted and c.mature),
                           key=lambda c: (-c.output.value, c.outpoint.txid, c.outpoint.index))
        selected, send_sat, change_sat = _select(spendable, recipient, subtract_fee, fee_rate_sat_per_kvb)
        if send_sat < dust_threshold_sat(recipient) or send_sat <= 0:
            raise RpcFailure(RPC_WALLET_INSUFFICIENT_FUNDS, "The transaction amount is too small to pay the fee")
        fee_sat = sum(c.output.value for c in selected) - send_sat - change_sat
        if fee_sat > MAX_TX_FEE_SAT:
            raise RpcFailure(RPC_WALLET_INSUFFICIENT_FUNDS, "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)")
        outputs = [TxOut(value=send_sat, script_pubkey=recipient.script_pubkey)]
        if change_sat:
            outputs.append(TxOut(value=change_sat, script_pubkey=self._new_key(ctx, "", internal=True).script_pubkey))
        unsigned = Transaction(version=2, locktime=0, outputs=tuple(outputs),
                               inputs=tuple(TxIn(prevout=c.outpoint, script_sig=b"") for c in selected))
        tx = self.sign(unsigned, [c.output for c in selected])
        assert fee_sat >= fee_at(fee_rate_sat_per_kvb, (tx.weight + 3) // 4)   # (estimated at the largest signatures)
        return tx

    def sign(self, tx: Transaction, spent: Sequence[TxOut]) -> Transaction:
        """``tx`` with every input signed: each spends ``spent[i]``, an
        output paying a wallet key (P2WPKH: BIP143 signature hash over the
        key's P2PKH script code, SIGHASH_ALL; witness [sig, pubkey])."""
        assert len(spent) == len(tx.inputs)
        precomputed = PrecomputedTransaction(tx, spent)
        inputs = []
        for i, (txin, output) in enumerate(zip(tx.inputs, spent)):
            key = self._keys[output.script_pubkey]
            script_code = bytes((OP.DUP, OP.HASH160, 20)) + key.script_pubkey[2:] + bytes((OP.EQUALVERIFY, OP.CHECKSIG))
            digest = segwit_v0_sighash(precomputed, i, script_code, output.value, SIGHASH_ALL)
            signature = key.private.sign(digest, hasher=None) + bytes((SIGHASH_ALL,))
            inputs.append(TxIn(prevout=txin.prevout, script_sig=b"", sequence=txin.sequence,
                               witness=(signature, key.pubkey)))
        return Transaction(version=tx.version, inputs=tuple(inputs), outputs=tx.outputs, locktime=tx.locktime)


def _readable_records(raw: bytes) -> tuple[list[bytes], str | None]:
    """Every good record of ``raw``, past damaged ones too, and the first
    damage (None if none)."""
    scan = scan_records(raw)
    records, error = list(scan.records), scan.error
    pos = scan.valid_bytes
    while scan.corrupt:   # (a torn tail ends the file: nothing follows it)
        found = resync(raw, pos)
        if found is None:
            break
        scan = scan_records(raw[found:])
        records += scan.records
        pos = found + scan.valid_bytes
    return records, error


def max_vsize(n_inputs: int, outputs: Sequence[TxOut]) -> int:
    """The vsize of a segwit transaction with ``n_inputs`` P2WPKH inputs
    signed with the largest signatures and ``outputs``: what its fee is
    reckoned on."""
    stripped = 4 + len(compact_size(n_inputs)) + n_inputs * _INPUT_BYTES + len(compact_size(len(outputs))) + sum(
        len(o.serialize()) for o in outputs) + 4
    witness = 2 + n_inputs * _INPUT_WITNESS_BYTES_MAX   # (marker and flag, then each input's stack)
    return -(-(stripped * C.WITNESS_SCALE_FACTOR + witness) // C.WITNESS_SCALE_FACTOR)


def _select(coins: Sequence[WalletCoin], recipient: TxOut, subtract_fee: bool,
            rate_sat_per_kvb: int) -> tuple[list[WalletCoin], int, int]:
    """Largest first until the amount and the fee are met: (the coins,
    satoshis to the recipient, change; 0 when the remainder is dust and
    goes to the fee, or to the recipient when it pays the fee)."""
    change_dust_sat = dust_threshold_sat(_CHANGE_TEMPLATE)
    selected: list[WalletCoin] = []
    total = 0
    for coin in coins:
        selected.append(coin)
        total += coin.output.value
        if max_vsize(len(selected), (recipient, _CHANGE_TEMPLATE)) * C.WITNESS_SCALE_FACTOR > MAX_STANDARD_TX_WEIGHT:
            raise RpcFailure(RPC_WALLET_INSUFFICIENT_FUNDS, "Transaction too large")
        fee_bare = fee_at(rate_sat_per_kvb, max_vsize(len(selected), (recipient,)))
        fee_change = fee_at(rate_sat_per_kvb, max_vsize(len(selected), (recipient, _CHANGE_TEMPLATE)))
        if subtract_fee:
            if total < recipient.value:
                continue
            change = total - recipient.value
            if change >= change_dust_sat:
                return selected, recipient.value - fee_change, change
            return selected, total - fee_bare, 0
        if total < recipient.value + fee_bare:
            continue
        change = total - recipient.value - fee_change
        return selected, recipient.value, change if change >= change_dust_sat else 0
    raise RpcFailure(RPC_WALLET_INSUFFICIENT_FUNDS, "Insufficient funds")
