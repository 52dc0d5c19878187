"""BIP341 commitments: tapleaf and tapbranch hashes, the tweak, control blocks.

A taproot output key Q commits to an internal key P and, optionally, a
merkle tree of scripts: ``Q = P + H_TapTweak(P || root)G``. Each leaf is
``H_TapLeaf(leaf_version || compact_size(len(script)) || script)``; a branch
hashes its two children in lexicographic order, so a path needs no
left/right bits. A script-path spend reveals the script and a control
block: one byte (leaf version, and Q's Y parity in bit 0), the 32-byte P,
then 0..128 32-byte path nodes from the leaf up. The witness may end in an
annex (first byte 0x50) that the signature hash covers.
"""

from __future__ import annotations

from coincurve import PublicKeyXOnly

from synod.bitcoin._hashes import tagged_hash
from synod.bitcoin._signatures import check_tap_tweak
from synod.bitcoin.primitives import compact_size
from synod.core.errors import LocalProtocolError

__all__ = [
    "ANNEX_TAG", "TAPROOT_LEAF_MASK", "TAPROOT_LEAF_TAPSCRIPT", "TAPROOT_CONTROL_BASE_BYTES",
    "TAPROOT_CONTROL_NODE_BYTES", "TAPROOT_CONTROL_MAX_NODES", "TAPROOT_CONTROL_MAX_BYTES", "NUMS_INTERNAL_KEY",
    "tapleaf_hash", "tapbranch_hash", "merkle_root_from_path", "verify_commitment", "output_key",
]

ANNEX_TAG = 0x50
TAPROOT_LEAF_MASK = 0xFE
TAPROOT_LEAF_TAPSCRIPT = 0xC0
TAPROOT_CONTROL_BASE_BYTES = 33
TAPROOT_CONTROL_NODE_BYTES = 32
TAPROOT_CONTROL_MAX_NODES = 128
TAPROOT_CONTROL_MAX_BYTES = TAPROOT_CONTROL_BASE_BYTES + TAPROOT_CONTROL_NODE_BYTES * TAPROOT_CONTROL_MAX_NODES
# BIP341's provably unspendable internal key H (no one knows its discrete log)
NUMS_INTERNAL_KEY = bytes.fromhex("50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0")


def tapleaf_hash(leaf_version: int, script: bytes) -> bytes:
    """BIP341: the leaf hash of ``script`` under ``leaf_version`` (even, 0..254)."""
    return tagged_hash("TapLeaf", bytes((leaf_version,)) + compact_size(len(script)) + script)


def tapbranch_hash(a: bytes, b: bytes) -> bytes:
    """BIP341: the hash of a branch over two 32-byte children, in either order."""
    return tagged_hash("TapBranch", a + b if a < b else b + a)


def merkle_root_from_path(control: bytes, leaf_hash: bytes) -> bytes:
    """The merkle root reached from ``leaf_hash`` along the control block's
    path (its bytes from 33 on, in 32-byte nodes)."""
    k = leaf_hash
    for pos in range(TAPROOT_CONTROL_BASE_BYTES, len(control), TAPROOT_CONTROL_NODE_BYTES):
        k = tapbranch_hash(k, control[pos:pos + TAPROOT_CONTROL_NODE_BYTES])
    return k


def verify_commitment(control: bytes, program: bytes, leaf_hash: bytes) -> bool:
    """BIP341 script path: whether the witness program ``program`` (Q, 32
    bytes) commits to the leaf through ``control`` (its size already checked)."""
    root = merkle_root_from_path(control, leaf_hash)
    return check_tap_tweak(program, control[1:TAPROOT_CONTROL_BASE_BYTES], root, control[0] & 1)


def output_key(internal_key: bytes, merkle_root: bytes = b"") -> tuple[bytes, int]:
    """BIP341 ``taproot_tweak_pubkey``: ``(Q, parity)``, the output key for
    x-only ``internal_key`` and ``merkle_root`` (empty for a key-path-only
    output) and the Y parity a control block records.

    Raises:
        LocalProtocolError: ``internal_key`` is not on the curve, or the tweak
            is out of range (probability ~2^-128).
    """
    try:
        key = PublicKeyXOnly(internal_key)
        key.tweak_add(tagged_hash("TapTweak", internal_key + merkle_root))
    except ValueError as e:
        raise LocalProtocolError(f"no taproot output key for {internal_key.hex()}: {e}") from e
    return key.format(), int(key.parity)
