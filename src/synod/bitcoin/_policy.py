"""Relay policy: what a node accepts into its mempool and relays beyond
consensus (Core's ``policy/policy.cpp``, ``policy/feerate.h``): the
limits and fee rates with their defaults, virtual size, standard output
types, dust, and the standardness checks of a transaction and of the
inputs it spends. Used by :mod:`synod.bitcoin.mempool`."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from synod.bitcoin import constants as C
from synod.bitcoin.errors import RuleViolation
from synod.bitcoin.primitives import Transaction, TxOut
from synod.bitcoin.script import OP, get_op, is_p2sh, is_push_only, sigop_count, witness_program
from synod.core.errors import ConfigError

# -- limits (Core's defaults, in the units named) ---------------------------------------------------
ORPHAN_TRANSACTIONS_MAX = 100               # orphans held (Core's old -maxorphantx default)
ORPHAN_TX_BYTES_MAX = 5_000_000             # serialized bytes of all orphans together (synod's)
ORPHAN_TX_EXPIRE_S = 20 * 60                # an orphan waits this long for its parents
MEMPOOL_VBYTES_MAX = 300_000_000            # Core's -maxmempool=300 (MB of memory; here vbytes)
ANCESTOR_COUNT_MAX = 25                     # -limitancestorcount, the transaction included
ANCESTOR_VBYTES_MAX = 101_000               # -limitancestorsize (101 kvB)
DESCENDANT_COUNT_MAX = 25                   # -limitdescendantcount
DESCENDANT_VBYTES_MAX = 101_000             # -limitdescendantsize
MIN_RELAY_FEE_SAT_PER_KVB = 1000            # -minrelaytxfee: 1 sat/vB
INCREMENTAL_RELAY_FEE_SAT_PER_KVB = 1000    # -incrementalrelayfee
DUST_RELAY_FEE_SAT_PER_KVB = 3000           # -dustrelayfee
BLOCK_MIN_FEE_SAT_PER_KVB = 1000            # -blockmintxfee: packages below are not mined
ROLLING_FEE_HALFLIFE_S = 12 * 60 * 60
ROLLING_FEE_UPDATE_INTERVAL_S = 10          # the rolling minimum decays at most this often
MAX_STANDARD_TX_WEIGHT = 400_000
MAX_STANDARD_TX_SIGOPS_COST = C.MAX_BLOCK_SIGOPS_COST // 5
MAX_STANDARD_SCRIPTSIG_BYTES = 1650
MIN_STANDARD_TX_NONWITNESS_BYTES = 65
MAX_OP_RETURN_RELAY_BYTES = 83              # a null-data output's whole scriptPubKey
MAX_P2SH_SIGOPS = 15
MAX_STANDARD_TX_VERSION = 2                 # (3 is TRUC, not implemented)
BYTES_PER_SIGOP = 20
TEMPLATE_FAILURES_MAX = 1000                # packages that did not fit before a nearly full template stops
TEMPLATE_NEARLY_FULL_WEIGHT = 4000
_SPEND_VBYTES_LEGACY = 32 + 4 + 1 + 107 + 4                        # Core's dust: an input spending it
_SPEND_VBYTES_WITNESS = 32 + 4 + 1 + 107 // C.WITNESS_SCALE_FACTOR + 4


class MempoolPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """A node's relay policy (Core's ``MemPoolOptions``); defaults are Core's.
    ``require_standard=False`` is ``-acceptnonstdtxn``.

    Raises:
        ConfigError: a negative rate or a non-positive limit.
    """

    min_relay_fee_sat_per_kvb: int = MIN_RELAY_FEE_SAT_PER_KVB
    incremental_relay_fee_sat_per_kvb: int = INCREMENTAL_RELAY_FEE_SAT_PER_KVB
    dust_relay_fee_sat_per_kvb: int = DUST_RELAY_FEE_SAT_PER_KVB
    block_min_fee_sat_per_kvb: int = BLOCK_MIN_FEE_SAT_PER_KVB
    mempool_vbytes_max: int = MEMPOOL_VBYTES_MAX
    ancestor_count_max: int = ANCESTOR_COUNT_MAX
    ancestor_vbytes_max: int = ANCESTOR_VBYTES_MAX
    descendant_count_max: int = DESCENDANT_COUNT_MAX
    descendant_vbytes_max: int = DESCENDANT_VBYTES_MAX
    orphan_transactions_max: int = ORPHAN_TRANSACTIONS_MAX
    orphan_tx_bytes_max: int = ORPHAN_TX_BYTES_MAX
    permit_bare_multisig: bool = True
    require_standard: bool = True

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, bool):
                continue
            if value < 0 or (value == 0 and not name.endswith("_sat_per_kvb")):
                raise ConfigError(f"mempool policy {name}={value}: must be positive")


def virtual_size(weight: int, sigop_cost: int) -> int:
    """Core's ``GetVirtualTransactionSize``: vbytes, weight / 4 rounded up,
    or sigop cost x ``BYTES_PER_SIGOP`` / 4 if larger."""
    return -(-max(weight, sigop_cost * BYTES_PER_SIGOP) // C.WITNESS_SCALE_FACTOR)


def fee_at(rate_sat_per_kvb: int, vsize: int) -> int:
    """The fee (sat) a rate asks of ``vsize`` vbytes, rounded up."""
    return -(-rate_sat_per_kvb * vsize // 1000)


def output_type(script_pubkey: bytes) -> str | None:
    """The standard template of a scriptPubKey (Core's ``Solver``, its
    ``TxoutType`` names in lower case), or None when nonstandard."""
    s, n = script_pubkey, len(script_pubkey)
    if n == 25 and s[:3] == bytes((OP.DUP, OP.HASH160, 20)) and s[23:] == bytes((OP.EQUALVERIFY, OP.CHECKSIG)):
        return "pubkeyhash"
    if is_p2sh(s):
        return "scripthash"
    program = witness_program(s)
    if program is not None:
        version, data = program
        if version == 0:
            return {20: "witness_v0_keyhash", 32: "witness_v0_scripthash"}.get(len(data))
        if version == 1 and len(data) == 32:
            return "witness_v1_taproot"
        return "anchor" if (version, data) == (1, b"\x4e\x73") else "witness_unknown"
    if n in (35, 67) and s[0] == n - 2 and s[-1] == OP.CHECKSIG and _valid_pubkey(s[1:-1]):
        return "pubkey"
    if n >= 1 and s[0] == OP.RETURN and is_push_only(s[1:]):
        return "nulldata"
    return "multisig" if _multisig_keys(s) is not None else None


def _valid_pubkey(key: bytes) -> bool:
    return (len(key) == 33 and key[0] in (2, 3)) or (len(key) == 65 and key[0] in (4, 6, 7))


def _multisig_keys(s: bytes) -> tuple[int, int] | None:
    """``(m, n)`` of ``OP_m <n keys> OP_n CHECKMULTISIG`` (Core's ``MatchMultisig``)."""
    ops, pos = [], 0
    while pos < len(s):
        op = get_op(s, pos)
        if op is None:
            return None
        ops.append(op[:2])
        pos = op[2]
    if len(ops) < 4 or ops[-1][0] != OP.CHECKMULTISIG:
        return None
    (m_op, _), (n_op, _), keys = ops[0], ops[-2], ops[1:-2]
    if not (OP._1 <= m_op <= OP._16 and OP._1 <= n_op <= OP._16):
        return None
    m, n = m_op - OP._1 + 1, n_op - OP._1 + 1
    if n != len(keys) or m > n or not all(data is not None and _valid_pubkey(data) for _, data in keys):
        return None
    return m, n


def dust_threshold_sat(output: TxOut, dust_relay_fee_sat_per_kvb: int = DUST_RELAY_FEE_SAT_PER_KVB) -> int:
    """The value (sat) below which an output costs more to spend than it is
    worth at the dust relay fee rate (Core's ``GetDustThreshold``): its
    size plus an input spending it (148 vB; 67 for a witness program), at
    the rate, rounded down; 0 for an unspendable output."""
    script = output.script_pubkey
    if (script and script[0] == OP.RETURN) or len(script) > C.MAX_SCRIPT_BYTES:
        return 0
    spend = _SPEND_VBYTES_WITNESS if witness_program(script) is not None else _SPEND_VBYTES_LEGACY
    return (len(output.serialize()) + spend) * dust_relay_fee_sat_per_kvb // 1000


def check_standard(tx: Transaction, policy: MempoolPolicy) -> None:
    """Core's ``IsStandardTx``; raises RuleViolation with its reason."""
    if not 1 <= tx.version <= MAX_STANDARD_TX_VERSION:
        raise RuleViolation("version", f"version {tx.version}")
    if tx.weight > MAX_STANDARD_TX_WEIGHT:
        raise RuleViolation("tx-size", f"weight {tx.weight}")
    for i, txin in enumerate(tx.inputs):
        if len(txin.script_sig) > MAX_STANDARD_SCRIPTSIG_BYTES:
            raise RuleViolation("scriptsig-size", f"input {i}: {len(txin.script_sig)} bytes")
        if not is_push_only(txin.script_sig):
            raise RuleViolation("scriptsig-not-pushonly", f"input {i}")
    null_data = 0
    for i, out in enumerate(tx.outputs):
        kind = output_type(out.script_pubkey)
        keys = _multisig_keys(out.script_pubkey) if kind == "multisig" else None
        if kind is None or (kind == "nulldata" and len(out.script_pubkey) > MAX_OP_RETURN_RELAY_BYTES) or (
                keys is not None and keys[1] > 3):
            raise RuleViolation("scriptpubkey", f"output {i}")
        null_data += kind == "nulldata"
        if kind == "multisig" and not policy.permit_bare_multisig:
            raise RuleViolation("bare-multisig", f"output {i}")
        if out.value < dust_threshold_sat(out, policy.dust_relay_fee_sat_per_kvb):
            raise RuleViolation("dust", f"output {i} of {out.value} sat")
    if null_data > 1:
        raise RuleViolation("multi-op-return", f"{null_data} null-data outputs")


def check_inputs_standard(tx: Transaction, spent: Sequence[TxOut]) -> None:
    """Core's ``AreInputsStandard``: every spent output of a known template,
    P2SH redeem scripts with at most ``MAX_P2SH_SIGOPS``."""
    for i, (txin, out) in enumerate(zip(tx.inputs, spent)):
        kind = output_type(out.script_pubkey)
        if kind in (None, "witness_unknown"):
            raise RuleViolation("bad-txns-nonstandard-inputs", f"input {i} spends a nonstandard output")
        if kind == "scripthash":
            redeem, pos = b"", 0
            while pos < len(txin.script_sig):   # (push-only: IsStandardTx checked)
                op = get_op(txin.script_sig, pos)
                if op is None:
                    raise RuleViolation("bad-txns-nonstandard-inputs", f"input {i}: truncated push")
                redeem, pos = op[1] or b"", op[2]
            if sigop_count(redeem, True) > MAX_P2SH_SIGOPS:
                raise RuleViolation("bad-txns-nonstandard-inputs", f"input {i}: too many P2SH sigops")
