"""Bitcoin validation speed (issue 14 section 5): synod's script
interpreter, signature checks and block checks beside python-bitcoinlib and
raw libsecp256k1 (coincurve), side by side in one run, on real data.

1. **Script vectors.** Every row of Core's ``script_tests.json`` (1222),
   its crediting and spending transactions built as
   ``tests/btc/test_script_vectors.py`` builds them (once, before any
   timing), then evaluated through ``verify_script`` with a fresh
   ``TransactionChecker`` per row. Anchor: python-bitcoinlib's
   ``VerifyScript`` on the rows it can run: no witness and only flags it
   knows (it has no segwit, taproot, CSV, MINIMALIF, NULLFAIL, ...), its
   own ``CTransaction`` pair per row, built the same way. Both are timed on
   that common subset; synod also on every row. python-bitcoinlib does not
   enforce every rule of the flags it accepts (MINIMALDATA, DERSIG, ...),
   so it agrees with Core's pass/fail on fewer rows: both counts are shown.
   Target: synod at least 2x python-bitcoinlib's rows per second.
2. **Signature checks.** Real mainnet ECDSA signatures: every input of
   blocks 277647, 540107 and 574200 whose scriptSig is ``<sig> <pubkey>``
   (P2PKH: the scriptCode is rebuilt from the key's hash, and the legacy
   signature hash needs no spent amount), kept when strict DER and low S so
   that raw libsecp256k1 accepts the same bytes (the high-S ones of 2013 are
   counted, not timed). synod: ``_signatures.verify_ecdsa`` (lax DER
   parsing, S normalization, the parsed-key cache), the function the
   interpreter calls. Floor: ``coincurve.PublicKey(pub).verify(der, hash,
   hasher=None)`` on the same triples. BIP340 Schnorr likewise on
   ``--schnorr`` signatures made here with coincurve (deterministic keys):
   ``verify_schnorr`` against ``PublicKeyXOnly(pub).verify``. Target: synod
   within 1.5x of the floor's time.
3. **Block 574200** (3,315 transactions, 1.2 MB, segwit): parse +
   ``check_block`` + ``contextual_check_block`` at height 574200 (the
   parent's median time past stood in by the block's time - 1, as
   ``tests/btc/test_blocks.py`` does). The outputs it spends are not in
   the data, so neither the UTXO lookups and amounts nor the signature
   checks of full validation can run; what can: the legacy signature checks
   of its P2PKH inputs (signature hash + verify), shown apart. Anchor:
   python-bitcoinlib's ``CBlock.deserialize`` + ``CheckBlock`` (its
   context-free checks: proof of work, merkle root, sigops, transactions).

Method: ``--repeats`` rounds; each round runs every contender of a figure
once, one after another (the script rows, a pass of some 20 ms, five
times), and each figure is the median over its passes. synod's
caches (decoded scripts, parsed keys) are emptied before each of its passes
so that repeating the same rows does not make them warm; every block pass
parses afresh (transactions cache their txids). Prints a table, then as its
last line one JSON object of every figure, anchor and ratio.

Usage::

    python benchmarks/btc_validate.py [--repeats 7] [--schnorr 1000] [--quick] [--data DIR]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import coincurve

from synod.bitcoin import (
    MAINNET,
    Block,
    OutPoint,
    ScriptFailure,
    Transaction,
    TxIn,
    TxOut,
    VerifyFlags,
    _opcodes,
    _signatures,
    check_block,
    contextual_check_block,
    parse_block,
    read_blocks_dat,
    verify_script,
)
from synod.bitcoin._hashes import hash160
from synod.bitcoin.asm import parse_asm
from synod.bitcoin.interpreter import TransactionChecker
from synod.bitcoin.script import iter_ops
from synod.bitcoin.sighash import PrecomputedTransaction, legacy_sighash
from synod.bitcoin.taproot import NUMS_INTERNAL_KEY, TAPROOT_LEAF_TAPSCRIPT, output_key, tapleaf_hash

REPO = Path(__file__).resolve().parents[1]
SCRIPT_OVER_BITCOINLIB_MIN = 2.0     # issue 14 section 5
SIG_TIME_OVER_COINCURVE_MAX = 1.5
SIG_BLOCKS = {"mainnet_277647.dat": 277647, "mainnet_540107.bin": 540107, "mainnet_574200.bin": 574200}
BLOCK_FILE, BLOCK_HEIGHT = "mainnet_574200.bin", 574200
QUICK_REPEATS, QUICK_ECDSA_MAX, QUICK_SCHNORR = 2, 300, 100
SCRIPT_PASSES_PER_ROUND = 5


def default_data_dir() -> Path:
    env = os.environ.get("SYNOD_SHARED_DATA")
    return (Path(env) if env else REPO.parent / "shared" / "data") / "bitcoin"


def _cold() -> None:
    """Empty synod's caches, so a repeated pass costs what the first did
    (and collect garbage, so no pass pays for an earlier one's)."""
    gc.collect()
    _opcodes._decode.cache_clear()
    _signatures._parse_pubkey.cache_clear()
    _signatures._parse_xonly.cache_clear()


def _timed(run: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


# -- 1. script vectors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynodRow:
    script_sig: bytes
    script_pubkey: bytes
    witness: tuple[bytes, ...]
    flags: int
    spend: Transaction
    amount: int
    expected: str


def _witness(items: Sequence[str], script_pubkey: str) -> tuple[tuple[bytes, ...], str]:
    """Witness items with Core's tapscript placeholders filled in (as the test does)."""
    witness: list[bytes] = []
    for item in items:
        if item.startswith("#SCRIPT#"):
            witness.append(parse_asm(item[len("#SCRIPT#"):]))
        elif item == "#CONTROLBLOCK#":
            key, parity = output_key(NUMS_INTERNAL_KEY, tapleaf_hash(TAPROOT_LEAF_TAPSCRIPT, witness[-1]))
            witness.append(bytes((TAPROOT_LEAF_TAPSCRIPT | parity,)) + NUMS_INTERNAL_KEY)
            script_pubkey = script_pubkey.replace("#TAPROOTOUTPUT#", "0x" + key.hex())
        else:
            witness.append(bytes.fromhex(item))
    return tuple(witness), script_pubkey


def load_rows(path: Path) -> list[list[Any]]:
    return [r for r in json.loads(path.read_text()) if not (len(r) == 1 and isinstance(r[0], str))]


def synod_row(row: list[Any]) -> SynodRow:
    witness_field: list[Any] = row[0] if isinstance(row[0], list) else []
    script_sig, script_pubkey, flag_names, expected = (row[1:] if witness_field else row)[:4]
    amount = int(Decimal(str(witness_field[-1])) * 100_000_000) if witness_field else 0
    witness, script_pubkey = _witness(witness_field[:-1], script_pubkey)
    flags = VerifyFlags.from_names(flag_names)
    if flags & VerifyFlags.CLEANSTACK:   # as Core's test: CLEANSTACK implies P2SH and WITNESS
        flags |= VerifyFlags.P2SH | VerifyFlags.WITNESS
    sig, pubkey = parse_asm(script_sig), parse_asm(script_pubkey)
    credit = Transaction(version=1, locktime=0,
                         inputs=(TxIn(prevout=OutPoint(txid=bytes(32), index=0xFFFFFFFF), script_sig=b"\x00\x00"),),
                         outputs=(TxOut(value=amount, script_pubkey=pubkey),))
    spend = Transaction(version=1, locktime=0,
                        inputs=(TxIn(prevout=OutPoint(txid=credit.txid, index=0), script_sig=sig, witness=witness),),
                        outputs=(TxOut(value=amount, script_pubkey=b""),))
    return SynodRow(sig, pubkey, witness, int(flags), spend, amount, expected)


def run_synod(rows: Sequence[SynodRow]) -> list[str]:
    out = []
    for r in rows:
        try:
            verify_script(r.script_sig, r.script_pubkey, r.witness, r.flags,
                          TransactionChecker(PrecomputedTransaction(r.spend), 0, r.amount))
            out.append("OK")
        except ScriptFailure as e:
            out.append(e.rule)
    return out


def bitcoinlib_rows(rows: list[list[Any]], synod_rows: list[SynodRow]) -> list[tuple[int, Any, Any, Any, set[Any]]]:
    """``(row index, scriptSig, scriptPubKey, spending tx, flags)`` for each
    row python-bitcoinlib can run: no witness, only flags it knows."""
    import bitcoin.core as bc
    from bitcoin.core import scripteval
    from bitcoin.core.script import OP_0, CScript

    known = scripteval.SCRIPT_VERIFY_FLAGS_BY_NAME
    out = []
    for i, (row, mine) in enumerate(zip(rows, synod_rows, strict=True)):
        if isinstance(row[0], list):
            continue
        names = [n for n in row[2].split(",") if n and n != "NONE"]
        if not all(n in known for n in names):
            continue
        flags = {known[n] for n in names}
        if scripteval.SCRIPT_VERIFY_CLEANSTACK in flags:
            flags.add(scripteval.SCRIPT_VERIFY_P2SH)
        sig, pubkey = CScript(mine.script_sig), CScript(mine.script_pubkey)
        credit = bc.CTransaction([bc.CTxIn(bc.COutPoint(), CScript([OP_0, OP_0]), nSequence=0xFFFFFFFF)],
                                 [bc.CTxOut(0, pubkey)], nLockTime=0)
        spend = bc.CTransaction([bc.CTxIn(bc.COutPoint(credit.GetTxid(), 0), sig, nSequence=0xFFFFFFFF)],
                                [bc.CTxOut(0, CScript())], nLockTime=0)
        out.append((i, sig, pubkey, spend, flags))
    return out


def run_bitcoinlib(rows: Sequence[tuple[int, Any, Any, Any, set[Any]]]) -> list[str]:
    """OK, ERROR (its ValidationError) or CRASH:<exception> per row."""
    from bitcoin.core import ValidationError
    from bitcoin.core.scripteval import VerifyScript

    out = []
    for _, sig, pubkey, spend, flags in rows:
        try:
            VerifyScript(sig, pubkey, spend, 0, flags)
            out.append("OK")
        except ValidationError:
            out.append("ERROR")
        except Exception as e:   # a row it cannot evaluate at all
            out.append(f"CRASH:{type(e).__name__}")
    return out


def bench_scripts(data: Path, repeats: int, skipped: dict[str, str]) -> dict[str, Any]:
    rows = load_rows(data / "core-vectors" / "script_tests.json")
    mine = [synod_row(r) for r in rows]
    got = run_synod(mine)
    result: dict[str, Any] = {"rows": len(mine), "synod_agrees_with_core": sum(g == r.expected for g, r in
                                                                               zip(got, mine, strict=True))}
    try:
        theirs = bitcoinlib_rows(rows, mine)
    except ImportError as e:
        skipped["python-bitcoinlib"] = f"not installed ({e})"
        theirs = []
    common = [mine[t[0]] for t in theirs]
    if theirs:
        verdicts = run_bitcoinlib(theirs)
        result["bitcoinlib_rows"] = len(theirs)
        result["bitcoinlib_agrees_with_core_pass_fail"] = sum((v == "OK") == (mine[t[0]].expected == "OK")
                                                              for v, t in zip(verdicts, theirs, strict=True))
        result["bitcoinlib_crashes"] = sum(v.startswith("CRASH") for v in verdicts)
    all_s, common_s, theirs_s = [], [], []
    for _ in range(repeats * SCRIPT_PASSES_PER_ROUND):   # a pass is short (~20 ms): more of them
        _cold()
        all_s.append(_timed(lambda: run_synod(mine)))
        if theirs:
            _cold()
            common_s.append(_timed(lambda: run_synod(common)))
            theirs_s.append(_timed(lambda: run_bitcoinlib(theirs)))
    result["synod_rows_per_s"] = round(len(mine) / statistics.median(all_s))
    if theirs:
        result["synod_common_rows_per_s"] = round(len(common) / statistics.median(common_s))
        result["bitcoinlib_common_rows_per_s"] = round(len(theirs) / statistics.median(theirs_s))
    return result


# -- 2. signatures -----------------------------------------------------------------------------------------


def p2pkh_inputs(block: Block) -> tuple[int, list[tuple[bytes, bytes, bytes, bytes]]]:
    """(inputs in all, ``(pubkey, DER, hash type + DER, sighash)`` of each
    input spent by ``<sig> <pubkey>``, its scriptCode rebuilt as P2PKH)."""
    found = []
    total = 0
    for tx in block.transactions[1:]:
        for index, txin in enumerate(tx.inputs):
            total += 1
            ops = list(iter_ops(txin.script_sig))
            if len(ops) != 2 or ops[0][1] is None or ops[1][1] is None:
                continue
            sig, pubkey = ops[0][1], ops[1][1]
            if not 9 <= len(sig) <= 73 or len(pubkey) not in (33, 65) or pubkey[0] not in (2, 3, 4):
                continue
            script_code = b"\x76\xa9\x14" + hash160(pubkey) + b"\x88\xac"
            found.append((pubkey, sig[:-1], sig, legacy_sighash(tx, index, script_code, sig[-1])))
    return total, found


def read_block(path: Path) -> bytes:
    if path.suffix == ".dat":
        return read_blocks_dat(path.read_bytes())[0]
    if path.suffix == ".hex":
        return bytes.fromhex(path.read_text().strip())
    return path.read_bytes()


def ecdsa_triples(data: Path) -> tuple[list[tuple[bytes, bytes, bytes]], dict[str, int]]:
    """Real signatures both paths accept: (pubkey, DER, sighash), and counts."""
    triples: list[tuple[bytes, bytes, bytes]] = []
    counts = {"inputs": 0, "p2pkh_inputs": 0, "verified": 0, "high_s_or_lax_der": 0}
    for name in SIG_BLOCKS:
        total, found = p2pkh_inputs(parse_block(read_block(data / "blocks" / name)))
        counts["inputs"] += total
        counts["p2pkh_inputs"] += len(found)
        for pubkey, der, sig, sighash in found:
            if not _signatures.verify_ecdsa(der, pubkey, sighash):
                continue
            counts["verified"] += 1
            if _signatures.is_valid_signature_encoding(sig) and _signatures.is_low_s(der):
                triples.append((pubkey, der, sighash))
            else:
                counts["high_s_or_lax_der"] += 1
    return triples, counts


def schnorr_triples(n: int) -> list[tuple[bytes, bytes, bytes]]:
    """``n`` BIP340 signatures by deterministic keys: (x-only key, sig, message)."""
    out = []
    for i in range(n):
        secret = hashlib.sha256(b"synod btc_validate key %d" % i).digest()
        message = hashlib.sha256(b"synod btc_validate message %d" % i).digest()
        key = coincurve.PrivateKey(secret)
        out.append((key.public_key_xonly.format(), key.sign_schnorr(message, bytes(32)), message))
    return out


def bench_signatures(data: Path, repeats: int, ecdsa_max: int | None, schnorr_n: int) -> dict[str, Any]:
    triples, counts = ecdsa_triples(data)
    triples = triples[:ecdsa_max] if ecdsa_max else triples
    schnorr = schnorr_triples(schnorr_n)
    verify_ecdsa, verify_schnorr = _signatures.verify_ecdsa, _signatures.verify_schnorr
    public_key, xonly = coincurve.PublicKey, coincurve.PublicKeyXOnly

    def synod_ecdsa() -> list[bool]:
        return [verify_ecdsa(der, pub, h) for pub, der, h in triples]

    def raw_ecdsa() -> list[bool]:
        return [public_key(pub).verify(der, h, hasher=None) for pub, der, h in triples]

    def synod_bip340() -> list[bool]:
        return [verify_schnorr(sig, pub, m) for pub, sig, m in schnorr]

    def raw_bip340() -> list[bool]:
        return [xonly(pub).verify(sig, m) for pub, sig, m in schnorr]

    assert all(synod_ecdsa()) and all(raw_ecdsa()), "every kept signature verifies on both paths"
    assert all(synod_bip340()) and all(raw_bip340()), "every Schnorr signature verifies on both paths"
    times: dict[str, list[float]] = {"synod_ecdsa": [], "coincurve_ecdsa": [], "synod_schnorr": [], "coincurve_schnorr": []}
    for _ in range(repeats):
        _cold()
        times["synod_ecdsa"].append(_timed(synod_ecdsa))
        times["coincurve_ecdsa"].append(_timed(raw_ecdsa))
        _cold()
        times["synod_schnorr"].append(_timed(synod_bip340))
        times["coincurve_schnorr"].append(_timed(raw_bip340))
    rates = {f"{k}_per_s": round((len(triples) if k.endswith("ecdsa") else len(schnorr)) / statistics.median(v))
             for k, v in times.items()}
    return {"ecdsa_signatures": len(triples), "ecdsa_blocks": list(SIG_BLOCKS.values()), **counts,
            "schnorr_signatures": len(schnorr), **rates}


# -- 3. block 574200 ---------------------------------------------------------------------------------------


def bench_block(data: Path, repeats: int, skipped: dict[str, str]) -> dict[str, Any]:
    raw = read_block(data / "blocks" / BLOCK_FILE)
    try:
        import bitcoin.core as bc
    except ImportError:
        bc = None
    times: dict[str, list[float]] = {k: [] for k in ("parse", "check_block", "contextual_check_block",
                                                     "p2pkh_sig_checks", "bitcoinlib_parse_and_checkblock")}
    block = parse_block(raw)
    inputs, p2pkh = p2pkh_inputs(block)
    for _ in range(repeats):
        t0 = time.perf_counter()
        block = parse_block(raw)
        t1 = time.perf_counter()
        check_block(block, MAINNET)
        t2 = time.perf_counter()
        contextual_check_block(block, height=BLOCK_HEIGHT, prev_median_time_past_s=block.header.time - 1,
                               params=MAINNET)
        t3 = time.perf_counter()
        times["parse"].append(t1 - t0)
        times["check_block"].append(t2 - t1)
        times["contextual_check_block"].append(t3 - t2)
        _cold()
        times["p2pkh_sig_checks"].append(_timed(lambda b=block: _p2pkh_checks(b)))
        if bc is not None:
            times["bitcoinlib_parse_and_checkblock"].append(_timed(lambda: bc.CheckBlock(bc.CBlock.deserialize(raw))))
    ms = {f"{k}_ms": round(statistics.median(v) * 1000, 2) for k, v in times.items() if v}
    ms["synod_total_ms"] = round(ms["parse_ms"] + ms["check_block_ms"] + ms["contextual_check_block_ms"], 2)
    ms["synod_parse_and_check_block_ms"] = round(ms["parse_ms"] + ms["check_block_ms"], 2)
    return {"height": BLOCK_HEIGHT, "transactions": len(block.transactions), "bytes": len(raw), "inputs": inputs,
            "p2pkh_inputs_checkable": len(p2pkh), **ms}


def _p2pkh_checks(block: Block) -> None:
    """Legacy signature hash + verify for each ``<sig> <pubkey>`` input."""
    _, found = p2pkh_inputs(block)
    for pubkey, der, _sig, sighash in found:
        assert _signatures.verify_ecdsa(der, pubkey, sighash)


# -- report ------------------------------------------------------------------------------------------------


def ratios(scripts: dict[str, Any], sigs: dict[str, Any], block: dict[str, Any]) -> dict[str, float]:
    r: dict[str, float] = {
        "synod_time_over_coincurve_ecdsa": round(sigs["coincurve_ecdsa_per_s"] / sigs["synod_ecdsa_per_s"], 3),
        "synod_time_over_coincurve_schnorr": round(sigs["coincurve_schnorr_per_s"] / sigs["synod_schnorr_per_s"], 3),
    }
    if "bitcoinlib_common_rows_per_s" in scripts:
        r["synod_over_bitcoinlib_script_rows"] = round(scripts["synod_common_rows_per_s"]
                                                       / scripts["bitcoinlib_common_rows_per_s"], 2)
    if "bitcoinlib_parse_and_checkblock_ms" in block:
        r["bitcoinlib_time_over_synod_block_checks"] = round(block["bitcoinlib_parse_and_checkblock_ms"]
                                                             / block["synod_parse_and_check_block_ms"], 2)
    return r


def targets(r: dict[str, float]) -> dict[str, Any]:
    goals: dict[str, Any] = {
        "script_synod_over_bitcoinlib_min": SCRIPT_OVER_BITCOINLIB_MIN,
        "sig_synod_time_over_coincurve_max": SIG_TIME_OVER_COINCURVE_MAX,
        "ecdsa_within_1_5x_of_coincurve": r["synod_time_over_coincurve_ecdsa"] <= SIG_TIME_OVER_COINCURVE_MAX,
        "schnorr_within_1_5x_of_coincurve": r["synod_time_over_coincurve_schnorr"] <= SIG_TIME_OVER_COINCURVE_MAX,
    }
    if "synod_over_bitcoinlib_script_rows" in r:
        goals["script_at_least_2x_bitcoinlib"] = r["synod_over_bitcoinlib_script_rows"] >= SCRIPT_OVER_BITCOINLIB_MIN
    return goals


def table(scripts: dict[str, Any], sigs: dict[str, Any], block: dict[str, Any], r: dict[str, float],
          goals: dict[str, Any]) -> list[str]:
    def yes(flag: bool | None) -> str:
        return "-" if flag is None else ("met" if flag else "MISSED")

    lines = [f"{'figure':52} {'synod':>12} {'anchor':>12}  {'anchor is':34} {'ratio':>7}  target"]
    row = "{:52} {:>12} {:>12}  {:34} {:>7}  {}"
    lines.append(row.format(f"script vectors, all {scripts['rows']} rows (rows/s)", f"{scripts['synod_rows_per_s']:,}",
                            "-", "(synod alone: segwit, taproot)", "-", "-"))
    if "bitcoinlib_rows" in scripts:
        lines.append(row.format(f"script vectors, {scripts['bitcoinlib_rows']} rows both run (rows/s)",
                                f"{scripts['synod_common_rows_per_s']:,}", f"{scripts['bitcoinlib_common_rows_per_s']:,}",
                                "python-bitcoinlib VerifyScript", f"{r['synod_over_bitcoinlib_script_rows']:.2f}x",
                                f">= 2x: {yes(goals.get('script_at_least_2x_bitcoinlib'))}"))
    lines.append(row.format(f"ECDSA, {sigs['ecdsa_signatures']} mainnet signatures (sigs/s)",
                            f"{sigs['synod_ecdsa_per_s']:,}", f"{sigs['coincurve_ecdsa_per_s']:,}",
                            "raw coincurve (floor)", f"{r['synod_time_over_coincurve_ecdsa']:.2f}x",
                            f"time <= 1.5x: {yes(goals['ecdsa_within_1_5x_of_coincurve'])}"))
    lines.append(row.format(f"BIP340 Schnorr, {sigs['schnorr_signatures']} signatures (sigs/s)",
                            f"{sigs['synod_schnorr_per_s']:,}", f"{sigs['coincurve_schnorr_per_s']:,}",
                            "raw coincurve (floor)", f"{r['synod_time_over_coincurve_schnorr']:.2f}x",
                            f"time <= 1.5x: {yes(goals['schnorr_within_1_5x_of_coincurve'])}"))
    anchor = block.get("bitcoinlib_parse_and_checkblock_ms")
    lines.append(row.format(f"block {block['height']}: parse + check_block (ms)",
                            f"{block['synod_parse_and_check_block_ms']:.1f}", f"{anchor:.1f}" if anchor else "-",
                            "bitcoinlib deserialize+CheckBlock",
                            f"{r['bitcoinlib_time_over_synod_block_checks']:.2f}x" if anchor else "-", "-"))
    for name in ("parse", "check_block", "contextual_check_block"):
        lines.append(row.format(f"  {name} (ms)", f"{block[name + '_ms']:.1f}", "-", "", "", ""))
    lines.append(row.format("  all three, no signatures (ms)", f"{block['synod_total_ms']:.1f}", "-", "", "", ""))
    lines.append(row.format(f"  P2PKH sig checks, {block['p2pkh_inputs_checkable']} of {block['inputs']} inputs (ms)",
                            f"{block['p2pkh_sig_checks_ms']:.1f}", "-", "sighash + verify", "", ""))
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data_dir(),
                    help="the Bitcoin data dir (default $SYNOD_SHARED_DATA/bitcoin or ../shared/data/bitcoin)")
    ap.add_argument("--repeats", type=int, default=None, help="rounds per figure, the median is kept (default 7)")
    ap.add_argument("--schnorr", type=int, default=None, help="Schnorr signatures to verify (default 1000)")
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_REPEATS} rounds, {QUICK_ECDSA_MAX} ECDSA and {QUICK_SCHNORR} Schnorr signatures (CI smoke)")
    args = ap.parse_args(argv)
    if args.repeats is None:
        args.repeats = QUICK_REPEATS if args.quick else 7
    if args.schnorr is None:
        args.schnorr = QUICK_SCHNORR if args.quick else 1000
    if args.repeats < 1 or args.schnorr < 1:
        ap.error("--repeats and --schnorr must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.data / "core-vectors" / "script_tests.json").exists():
        print(f"no Bitcoin data in {args.data} (set --data or SYNOD_SHARED_DATA)", file=sys.stderr)
        return 2
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    skipped: dict[str, str] = {}
    scripts = bench_scripts(args.data, args.repeats, skipped)
    sigs = bench_signatures(args.data, args.repeats, QUICK_ECDSA_MAX if args.quick else None, args.schnorr)
    block = bench_block(args.data, args.repeats, skipped)
    load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    r = ratios(scripts, sigs, block)
    goals = targets(r)
    for line in table(scripts, sigs, block, r, goals):
        print(line)
    for name, why in skipped.items():
        print(f"{name} not run: {why}")
    print(f"Script rows: synod gives Core's result on {scripts['synod_agrees_with_core']} of {scripts['rows']}; "
          + (f"python-bitcoinlib runs {scripts['bitcoinlib_rows']} (no witness, flags it knows) and agrees with "
             f"Core's pass/fail on {scripts['bitcoinlib_agrees_with_core_pass_fail']}. " if "bitcoinlib_rows" in scripts
             else "")
          + f"ECDSA: {sigs['verified']} of {sigs['p2pkh_inputs']} P2PKH-shaped inputs of blocks "
          f"{', '.join(map(str, sigs['ecdsa_blocks']))} verify; {sigs['high_s_or_lax_der']} high-S or lax DER ones "
          f"are left out (raw libsecp256k1 rejects them). Block {block['height']}: the spent outputs are not in the "
          f"data, so UTXO lookups, amounts and the other inputs' scripts are not run. Medians of {args.repeats} rounds; "
          f"{os.cpu_count()} cores, load average {load_start} at the start, {load_end} at the end.")
    summary: dict[str, Any] = {
        "benchmark": "btc_validate", "quick": args.quick, "repeats": args.repeats, "data": str(args.data),
        "python": platform.python_version(), "cpus": os.cpu_count(), "loadavg_start": load_start,
        "loadavg_end": load_end, "script_vectors": scripts, "signatures": sigs, "block": block,
        "skipped": skipped, "ratios": r, "targets": goals,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
