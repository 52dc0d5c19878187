"""benchmarks/btc_validate.py --quick runs all three figures (script
vectors beside python-bitcoinlib, ECDSA and Schnorr checks beside raw
coincurve, block 574200's checks beside python-bitcoinlib's), prints its
table and ends with one JSON line holding every figure, ratio and target
(a smoke test of the benchmark, not a timing assertion)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests._benchmark_checks import REPO
from tests.btc.conftest import bitcoin_data

SCRIPT = REPO / "benchmarks" / "btc_validate.py"


@pytest.fixture(scope="module")
def run() -> tuple[list[str], dict[str, Any]]:
    """One quick run: its stdout lines before the JSON, and the JSON."""
    data = bitcoin_data("core-vectors/script_tests.json").parents[1]
    bitcoin_data("blocks/mainnet_574200.bin")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--data", str(data)], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    *text, last = proc.stdout.strip().splitlines()
    return text, json.loads(last)


def test_table_first_then_one_json_object(run: tuple[list[str], dict[str, Any]]) -> None:
    text, summary = run
    assert any("rows/s" in line for line in text), "the table"
    assert any("sigs/s" in line for line in text)
    assert summary["benchmark"] == "btc_validate"
    assert summary["quick"] is True
    assert summary["repeats"] == 2
    assert summary["skipped"] == {}


def test_every_figure_measured(run: tuple[list[str], dict[str, Any]]) -> None:
    summary = run[1]
    scripts, sigs, block = summary["script_vectors"], summary["signatures"], summary["block"]
    assert scripts["rows"] == 1222
    assert scripts["synod_agrees_with_core"] == 1222
    assert 0 < scripts["bitcoinlib_rows"] < 1222, "it has no segwit or taproot"
    assert scripts["bitcoinlib_crashes"] == 0
    for key in ("synod_rows_per_s", "synod_common_rows_per_s", "bitcoinlib_common_rows_per_s"):
        assert scripts[key] > 0, key
    assert sigs["ecdsa_signatures"] == 300
    assert sigs["verified"] == sigs["p2pkh_inputs"] > 3000, "every P2PKH input of the three blocks verifies"
    assert sigs["schnorr_signatures"] == 100
    for key in ("synod_ecdsa_per_s", "coincurve_ecdsa_per_s", "synod_schnorr_per_s", "coincurve_schnorr_per_s"):
        assert sigs[key] > 0, key
    assert block["transactions"] == 3315
    assert 0 < block["p2pkh_inputs_checkable"] < block["inputs"]
    assert 0 < block["parse_ms"] < block["synod_total_ms"]
    assert block["bitcoinlib_parse_and_checkblock_ms"] > 0


def test_ratios_and_targets(run: tuple[list[str], dict[str, Any]]) -> None:
    summary = run[1]
    for name, value in summary["ratios"].items():
        assert value > 0, name
    assert set(summary["ratios"]) == {"synod_time_over_coincurve_ecdsa", "synod_time_over_coincurve_schnorr",
                                      "synod_over_bitcoinlib_script_rows", "bitcoinlib_time_over_synod_block_checks"}
    goals = summary["targets"]
    assert goals["script_synod_over_bitcoinlib_min"] == 2.0
    assert goals["sig_synod_time_over_coincurve_max"] == 1.5
    for name in ("script_at_least_2x_bitcoinlib", "ecdsa_within_1_5x_of_coincurve", "schnorr_within_1_5x_of_coincurve"):
        assert isinstance(goals[name], bool), name


def test_missing_data_is_named(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--data", str(tmp_path)], capture_output=True,
                          text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2
    assert str(tmp_path) in proc.stderr
