"""``synod btc validate`` on the real data: valid files exit 0 and say which
rules were checked; a broken rule exits 1 naming it; bad arguments exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from tests.btc.conftest import bitcoin_data

from synod.cli.main import cli


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["btc", "validate", *args])


def test_a_hex_block_alone_and_files_that_overlap() -> None:
    genesis_file = bitcoin_data("blocks/mainnet_0-4.dat")
    rest = bitcoin_data("blocks/mainnet_1-255.dat")
    result = _run("--json", str(rest.parent / "mainnet_100000.hex"))
    assert result.exit_code == 0, result.output
    # genesis alone from the first file (its blocks 2-4 belong to another chain: see the next test)
    one = _run("--json", str(genesis_file), str(rest))
    verdict = json.loads(one.output.splitlines()[-1])
    assert one.exit_code == 1   # the first file's block 2 spends block 1's coinbase at depth 1
    assert verdict["checked"][-1]["rule"] == "bad-txns-premature-spend-of-coinbase"


def test_the_first_data_file_holds_a_non_mainnet_block_2_which_is_rejected(tmp_path: Path) -> None:
    """mainnet_0-4.dat's blocks 2-4 are not mainnet's (5 blocks, 9
    transactions: mainnet's first blocks hold one each); its block 2
    spends block 1's coinbase one block later: rejected, and the rule named."""
    result = _run(str(bitcoin_data("blocks/mainnet_0-4.dat")))
    assert result.exit_code == 1
    assert "REJECTED block 2" in result.output
    assert "bad-txns-premature-spend-of-coinbase" in result.output


def test_mainnet_blocks_1_to_255_after_genesis(tmp_path: Path) -> None:
    genesis = bitcoin_data("blocks/mainnet_0-4.dat").read_bytes()
    length = int.from_bytes(genesis[4:8], "little")
    only_genesis = tmp_path / "genesis.dat"
    only_genesis.write_bytes(genesis[:8 + length])
    result = _run(str(only_genesis), str(bitcoin_data("blocks/mainnet_1-255.dat")))
    assert result.exit_code == 0, result.output
    assert "ok  block 170 00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee" in result.output
    assert "scripts (every input)" in result.output
    assert result.output.strip().endswith("valid: 256 object(s) checked")


def test_headers_from_genesis_and_a_segment_with_its_start_height() -> None:
    result = _run(str(bitcoin_data("headers/mainnet_0-9999.hex.txt")))
    assert result.exit_code == 0 and "bits = retarget" in result.output
    assert result.output.strip().endswith("valid: 10000 object(s) checked")
    segment = str(bitcoin_data("headers/mainnet_30000-39999.hex.txt"))
    assert _run(segment).exit_code == 2   # where does it start?
    result = _run(segment, "--start-height", "30000")
    assert result.exit_code == 0, result.output
    assert "30000..30240 (checkpoint)" in result.output and "30241..39999" in result.output


def test_later_blocks_alone_and_a_tampered_one(tmp_path: Path) -> None:
    big = bitcoin_data("blocks/mainnet_574200.bin")
    result = _run(str(big))
    assert result.exit_code == 0 and "ok  block 574200" in result.output and "witness commitment" in result.output
    raw = bytearray(big.read_bytes())
    raw[40] ^= 1                                 # a bit of the merkle root: the header's hash changes
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(raw))
    result = _run(str(bad))
    assert result.exit_code == 1 and "high-hash" in result.output


def test_a_transaction_as_hex_and_garbage(tmp_path: Path) -> None:
    from synod.bitcoin import parse_block, read_blocks_dat

    block = parse_block(read_blocks_dat(bitcoin_data("blocks/mainnet_1-255.dat").read_bytes())[169])
    tx_file = tmp_path / "tx.hex"
    tx_file.write_text(block.transactions[1].serialize().hex() + "\n")
    result = _run(str(tx_file))
    assert result.exit_code == 0 and "ok  tx f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16" in result.output
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x01\x02\x03")
    result = _run(str(junk))
    assert result.exit_code == 1 and "bad-serialization" in result.output
    assert "Traceback" not in result.output
