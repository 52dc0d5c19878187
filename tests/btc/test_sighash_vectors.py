"""Signature hashes against Bitcoin Core's and BIP341's vectors.

- sighash.json (Core's ``sighash_from_data``): 500 random transactions,
  script codes (some with OP_CODESEPARATORs, some with pushes running past
  the end) and hash types (any int32), hashed the legacy way.
- bip341_wallet_vectors.json: output keys built from an internal key and a
  script tree (BIP341 "Constructing and spending Taproot outputs"), and
  key-path sighashes with their intermediate digests; the fully signed
  transaction's key-path signatures then verify through the interpreter.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from tests.btc.conftest import bitcoin_data, core_vectors

from synod.bitcoin import TxOut, check_transaction, hash_hex, parse_transaction
from synod.bitcoin._hashes import tagged_hash
from synod.bitcoin.interpreter import VerifyFlags, verify_input
from synod.bitcoin.sighash import PrecomputedTransaction, legacy_sighash, taproot_sighash, taproot_sighash_message
from synod.bitcoin.taproot import output_key, tapbranch_hash, tapleaf_hash


def _sighash_rows() -> list[list[Any]]:
    return [r for r in core_vectors("sighash.json") if len(r) == 5]


def test_all_500_legacy_sighash_vectors_match_core() -> None:
    """Core's SignatureHash (SigVersion BASE) on every row of sighash.json."""
    rows = _sighash_rows()
    assert len(rows) == 500
    mismatches = []
    for raw_tx, script_hex, input_index, hash_type, expected in rows:
        tx = parse_transaction(bytes.fromhex(raw_tx))
        check_transaction(tx)
        got = hash_hex(legacy_sighash(tx, input_index, bytes.fromhex(script_hex), hash_type))
        if got != expected:
            mismatches.append((raw_tx[:24], script_hex, input_index, hash_type, got, expected))
    assert mismatches == [], "\n".join(map(str, mismatches))


def test_legacy_quirks_hash_to_one() -> None:
    """An input index past the inputs, and SIGHASH_SINGLE past the outputs,
    give the number 1 (Core's SignatureHash), not an error."""
    tx = parse_transaction(bytes.fromhex(_sighash_rows()[0][0]))
    one = (1).to_bytes(32, "little")
    assert legacy_sighash(tx, len(tx.inputs), b"", 1) == one
    no_outputs = msgspec.structs.replace(tx, outputs=())
    assert legacy_sighash(no_outputs, 0, b"", 3) == one
    assert legacy_sighash(no_outputs, 0, b"", 3 | 0x80) == one
    assert legacy_sighash(no_outputs, 0, b"", 2) != one


def _wallet_vectors() -> dict[str, Any]:
    vectors: dict[str, Any] = json.loads(bitcoin_data("core-vectors/bip341_wallet_vectors.json").read_text())
    return vectors


def _tree(node: Any, leaf_hashes: dict[int, bytes], paths: dict[int, list[bytes]]) -> bytes:
    """The merkle root of a BIP341 vector's script tree; fills each leaf's
    hash and its path of sibling hashes, leaf upwards."""
    if isinstance(node, dict):
        h = tapleaf_hash(node["leafVersion"], bytes.fromhex(node["script"]))
        leaf_hashes[node["id"]] = h
        paths[node["id"]] = []
        return h
    left_ids = set(leaf_hashes)
    left = _tree(node[0], leaf_hashes, paths)
    in_left = set(leaf_hashes) - left_ids
    right = _tree(node[1], leaf_hashes, paths)
    in_right = set(leaf_hashes) - left_ids - in_left
    for leaf in in_left:
        paths[leaf].append(right)
    for leaf in in_right:
        paths[leaf].append(left)
    return tapbranch_hash(left, right)


@pytest.mark.parametrize("index", range(7))
def test_bip341_script_pubkey_construction(index: int) -> None:
    """BIP341 wallet vectors, scriptPubKey: leaf hashes, merkle root, tweak,
    output key and every control block from the internal key and tree."""
    case = _wallet_vectors()["scriptPubKey"][index]
    given, inter, expected = case["given"], case["intermediary"], case["expected"]
    internal = bytes.fromhex(given["internalPubkey"])
    leaf_hashes: dict[int, bytes] = {}
    paths: dict[int, list[bytes]] = {}
    root = _tree(given["scriptTree"], leaf_hashes, paths) if given["scriptTree"] else b""
    assert [leaf_hashes[i].hex() for i in sorted(leaf_hashes)] == inter.get("leafHashes", [])
    assert (root.hex() or None) == inter["merkleRoot"]
    assert tagged_hash("TapTweak", internal + root).hex() == inter["tweak"]
    key, parity = output_key(internal, root)
    assert key.hex() == inter["tweakedPubkey"]
    assert ("5120" + key.hex()) == expected["scriptPubKey"]
    versions = _leaf_versions(given["scriptTree"])
    blocks = [(bytes((versions[i] | parity,)) + internal + b"".join(paths[i])).hex() for i in sorted(paths)]
    assert blocks == expected.get("scriptPathControlBlocks", [])


def _leaf_versions(node: Any) -> dict[int, int]:
    if not node:
        return {}
    if isinstance(node, dict):
        return {node["id"]: node["leafVersion"]}
    return {**_leaf_versions(node[0]), **_leaf_versions(node[1])}


def test_bip341_key_path_sighashes_and_signatures() -> None:
    """BIP341 wallet vectors, keyPathSpending: the shared single-SHA256
    digests, each input's SigMsg and sighash, and the signed transaction's
    key-path spends verifying (TAPROOT flags) for every taproot input."""
    group = _wallet_vectors()["keyPathSpending"][0]
    given = group["given"]
    tx = parse_transaction(bytes.fromhex(given["rawUnsignedTx"]))
    spent = [TxOut(value=u["amountSats"], script_pubkey=bytes.fromhex(u["scriptPubKey"])) for u in given["utxosSpent"]]
    pre = PrecomputedTransaction(tx, spent)
    shared = group["intermediary"]
    assert pre.prevouts_sha256.hex() == shared["hashPrevouts"]
    assert pre.spent_amounts_sha256.hex() == shared["hashAmounts"]
    assert pre.spent_scripts_sha256.hex() == shared["hashScriptPubkeys"]
    assert pre.sequences_sha256.hex() == shared["hashSequences"]
    assert pre.outputs_sha256.hex() == shared["hashOutputs"]
    for spending in group["inputSpending"]:
        index, hash_type = spending["given"]["txinIndex"], spending["given"]["hashType"]
        inter = spending["intermediary"]
        msg = taproot_sighash_message(pre, index, hash_type)
        assert msg is not None
        assert "00" + msg.hex() == inter["sigMsg"]   # (the vectors include the epoch byte)
        assert taproot_sighash(pre, index, hash_type) == bytes.fromhex(inter["sigHash"])
        internal = bytes.fromhex(inter["internalPubkey"])
        root = bytes.fromhex(spending["given"]["merkleRoot"] or "")
        assert output_key(internal, root)[0] == spent[index].script_pubkey[2:]
    signed = parse_transaction(bytes.fromhex(group["auxiliary"]["fulledSignedTx"]))
    signed_pre = PrecomputedTransaction(signed, spent)
    flags = VerifyFlags.standard()
    for spending in group["inputSpending"]:
        index = spending["given"]["txinIndex"]
        assert list(signed.inputs[index].witness) == [bytes.fromhex(w) for w in spending["expected"]["witness"]]
        verify_input(signed, index, spent, flags, signed_pre)
