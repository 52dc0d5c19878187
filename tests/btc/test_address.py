"""Addresses and WIF keys against Core's key_io vectors (an older copy:
main, test and regtest) and python-bitcoinlib's base58 and bech32 vectors."""

from __future__ import annotations

import json

import base58
import pytest
from tests.btc.conftest import bitcoin_data, core_vectors

from synod.bitcoin.address import NETWORKS, AddressError, address_to_script, decode_wif, encode_wif, script_to_address


def test_core_key_io_valid_vectors() -> None:
    """Every valid address decodes to its script and the script encodes back
    to it (either case where the vector allows a case flip); every WIF key
    gives its secret and compression flag and encodes back. Rows marked
    ``disabled`` are witness versions 1-16 written in bech32, which BIP350
    replaced by bech32m: they are rejected, and the same program written in
    bech32m round-trips."""
    rows = core_vectors("key_io_valid.json")
    assert len(rows) == 62
    disabled = 0
    for text, payload, meta in rows:
        chain = meta["chain"]
        if meta["isPrivkey"]:
            secret, compressed = decode_wif(text, chain)
            assert (secret.hex(), compressed) == (payload, meta["isCompressed"])
            assert encode_wif(secret, compressed, chain) == text
            with pytest.raises(AddressError):
                address_to_script(text, chain)
            continue
        script = bytes.fromhex(payload)
        if meta.get("disabled"):
            disabled += 1
            with pytest.raises(AddressError, match="BIP350"):
                address_to_script(text, chain)
            modern = script_to_address(script, chain)
            assert modern is not None and modern != text.lower()
            assert address_to_script(modern, chain) == script
            continue
        assert address_to_script(text, chain) == script
        if meta.get("tryCaseFlip"):
            assert address_to_script(text.swapcase(), chain) == script
        assert script_to_address(script, chain) == text.lower() if meta.get("tryCaseFlip") else text
        with pytest.raises(AddressError):
            decode_wif(text, chain)
    assert disabled == 3


def test_core_key_io_invalid_vectors() -> None:
    rows = json.loads(bitcoin_data("core-vectors/key_io_invalid.json").read_text())   # (one string per row)
    assert len(rows) == 60
    for (text,) in rows:
        for chain in NETWORKS:
            with pytest.raises(AddressError):
                address_to_script(text, chain)
            with pytest.raises(AddressError):
                decode_wif(text, chain)


def test_python_bitcoinlib_base58_and_bech32_vectors() -> None:
    for hex_data, encoded in json.loads(bitcoin_data("python-bitcoinlib/base58_encode_decode.json").read_text()):
        assert base58.b58encode(bytes.fromhex(hex_data)).decode() == encoded
        assert base58.b58decode(encoded) == bytes.fromhex(hex_data)
    for script_hex, address in json.loads(bitcoin_data("python-bitcoinlib/bech32_encode_decode.json").read_text()):
        script = bytes.fromhex(script_hex)
        chain = "main" if address.lower().startswith("bc1") else "test"
        if script[0] == 0:
            assert address_to_script(address, chain) == script
            assert script_to_address(script, chain) == address.lower()
        else:   # versions 1-16 in bech32: BIP350 now writes them in bech32m
            with pytest.raises(AddressError):
                address_to_script(address, chain)
            assert address_to_script(script_to_address(script, chain) or "", chain) == script
    for address, _reason in json.loads(bitcoin_data("python-bitcoinlib/bech32_invalid.json").read_text()):
        for chain in NETWORKS:
            with pytest.raises(AddressError):
                address_to_script(address, chain)


def test_scripts_without_an_address_and_bad_networks() -> None:
    assert script_to_address(bytes.fromhex("21" + "02" * 33 + "ac")) is None          # P2PK
    assert script_to_address(b"\x6a\x04abcd") is None                                  # OP_RETURN
    with pytest.raises(AddressError, match="unknown network"):
        address_to_script("1AGNa15ZQXAZUgFiqJ2i7Z2DPU2J6hW62i", "mainnet")
