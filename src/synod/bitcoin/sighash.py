"""Signature hashes: the message a transaction signature commits to.

Three generations, each chosen by the script's signature version:

- **Legacy** (``SignatureHash`` for SigVersion BASE): the transaction is
  re-serialized with every other input's scriptSig emptied and the signed
  input's replaced by the script code (OP_CODESEPARATORs removed); the low
  five bits of ``hash_type`` pick the outputs (ALL, NONE: none, SINGLE: the
  one at the input's index, earlier ones blanked) and ANYONECANPAY (0x80)
  keeps only the signed input; NONE and SINGLE zero the other inputs'
  sequences. Two quirks are consensus: an input index past the inputs, or
  SINGLE past the outputs, hashes to the number 1 (not an error). The
  hash is SHA-256d of that serialization and ``hash_type`` as 4 bytes.
- **BIP143** (segwit v0): a fixed-layout preimage that includes the spent
  amount; its three per-transaction parts (hashPrevouts, hashSequence,
  hashOutputs) are the same for every input, so they are computed once.
- **BIP341** (taproot key path, and BIP342 tapscript with ``ext_flag`` 1):
  the tagged hash ``TapSighash`` over the epoch, hash type, single-SHA256
  digests of every prevout, amount, scriptPubKey, sequence and output, the
  spend type (annex present, script path), and for tapscript the tapleaf
  hash and the last executed OP_CODESEPARATOR's position. Undefined hash
  types, and SINGLE without a matching output, have no sighash (None).

:class:`PrecomputedTransaction` holds the per-transaction digests (Core's
``PrecomputedTransactionData``), each computed on first use and then shared
by every input of the transaction. Hashes are in internal byte order.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import cached_property

from synod.bitcoin._hashes import hash256, sha256, tagged_hash
from synod.bitcoin.primitives import Transaction, TxOut, compact_size, var_bytes
from synod.bitcoin.script import OP
from synod.core.errors import LocalProtocolError

__all__ = [
    "SIGHASH_DEFAULT", "SIGHASH_ALL", "SIGHASH_NONE", "SIGHASH_SINGLE", "SIGHASH_ANYONECANPAY",
    "PrecomputedTransaction", "legacy_sighash", "segwit_v0_sighash", "taproot_sighash", "taproot_sighash_message",
    "script_code_without_codeseparators",
]

SIGHASH_DEFAULT = 0x00        # BIP341: ALL, with the hash type byte left out of the signature
SIGHASH_ALL = 0x01
SIGHASH_NONE = 0x02
SIGHASH_SINGLE = 0x03
SIGHASH_ANYONECANPAY = 0x80
_TAPROOT_HASH_TYPES = frozenset((0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83))
_CODESEPARATOR_NONE = 0xFFFFFFFF   # BIP342: no OP_CODESEPARATOR executed yet
_ONE = (1).to_bytes(32, "little")   # the legacy "hash" of an unsignable input
_ZERO = bytes(32)
_NULL_OUTPUT = b"\xff" * 8 + b"\x00"   # value -1, empty script: SINGLE's blanked outputs
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")


class PrecomputedTransaction:
    """The digests every input of ``tx`` shares (Core's
    ``PrecomputedTransactionData``), computed once, on first use.

    ``spent_outputs``: the TxOut each input spends, in input order; needed
    only by BIP341 (taproot hashes every spent amount and scriptPubKey).

    Raises:
        LocalProtocolError: ``spent_outputs`` of the wrong length.
    """

    def __init__(self, tx: Transaction, spent_outputs: Sequence[TxOut] | None = None) -> None:
        if spent_outputs is not None and len(spent_outputs) != len(tx.inputs):
            raise LocalProtocolError(f"{len(spent_outputs)} spent outputs for {len(tx.inputs)} inputs")
        self.tx = tx
        self.spent_outputs = tuple(spent_outputs) if spent_outputs is not None else None
        self._single_output_sha256: dict[int, bytes] = {}

    # -- single SHA-256 (BIP341), from which BIP143's double hashes are made --
    @cached_property
    def prevouts_sha256(self) -> bytes:
        return sha256(b"".join(i.prevout.txid + _U32.pack(i.prevout.index) for i in self.tx.inputs))

    @cached_property
    def sequences_sha256(self) -> bytes:
        return sha256(b"".join(_U32.pack(i.sequence) for i in self.tx.inputs))

    @cached_property
    def outputs_sha256(self) -> bytes:
        return sha256(b"".join(o.serialize() for o in self.tx.outputs))

    @cached_property
    def spent_amounts_sha256(self) -> bytes:
        return sha256(b"".join(_I64.pack(o.value) for o in self._spent()))

    @cached_property
    def spent_scripts_sha256(self) -> bytes:
        return sha256(b"".join(var_bytes(o.script_pubkey) for o in self._spent()))

    def _spent(self) -> tuple[TxOut, ...]:
        assert self.spent_outputs is not None, "taproot signature hashes need every spent output"
        return self.spent_outputs

    def single_output_sha256(self, index: int) -> bytes:
        digest = self._single_output_sha256.get(index)
        if digest is None:
            digest = self._single_output_sha256[index] = sha256(self.tx.outputs[index].serialize())
        return digest

    # -- BIP143: the same digests hashed once more ----------------------------
    @cached_property
    def hash_prevouts(self) -> bytes:
        return sha256(self.prevouts_sha256)

    @cached_property
    def hash_sequence(self) -> bytes:
        return sha256(self.sequences_sha256)

    @cached_property
    def hash_outputs(self) -> bytes:
        return sha256(self.outputs_sha256)


def _failed_op_end(script: bytes, pos: int) -> int:
    """Where Core's GetOp leaves its cursor when the push at ``pos`` runs
    past the end: after the opcode and whatever length bytes were there."""
    opcode = script[pos]
    width = {OP.PUSHDATA1: 1, OP.PUSHDATA2: 2, OP.PUSHDATA4: 4}.get(opcode, 0)
    if width and len(script) - (pos + 1) >= width:
        return pos + 1 + width
    return pos + 1


def script_code_without_codeseparators(script_code: bytes) -> tuple[int, bytes]:
    """Legacy signing's script code: ``(length to declare, bytes)``. The
    OP_CODESEPARATORs are left out; where a push runs past the end, the
    bytes stop where Core's parser stopped while the declared length still
    counts the whole script (a quirk the sighash vectors pin down)."""
    pieces = []
    start = pos = 0
    separators = 0
    n = len(script_code)
    while pos < n:
        opcode = script_code[pos]
        if opcode > OP.PUSHDATA4:
            if opcode == OP.CODESEPARATOR:
                pieces.append(script_code[start:pos])
                separators += 1
                start = pos + 1
            pos += 1
            continue
        end = _push_end(script_code, pos)
        if end is None:
            pieces.append(script_code[start:_failed_op_end(script_code, pos)])
            return n - separators, b"".join(pieces)
        pos = end
    pieces.append(script_code[start:])
    return n - separators, b"".join(pieces)


def _push_end(script: bytes, pos: int) -> int | None:
    opcode = script[pos]
    pos += 1
    if opcode < OP.PUSHDATA1:
        size = opcode
    else:
        width = 1 if opcode == OP.PUSHDATA1 else 2 if opcode == OP.PUSHDATA2 else 4
        if pos + width > len(script):
            return None
        size = int.from_bytes(script[pos:pos + width], "little")
        pos += width
    return pos + size if pos + size <= len(script) else None


def legacy_sighash(tx: Transaction, input_index: int, script_code: bytes, hash_type: int) -> bytes:
    """The pre-segwit signature hash (Core's ``SignatureHash``, SigVersion
    BASE) of input ``input_index`` signing ``script_code`` (the script from
    the last executed OP_CODESEPARATOR, signatures already removed).
    ``hash_type`` is the signature's last byte, or any int32 (the vectors
    use negative ones); 32 bytes, internal order."""
    if input_index >= len(tx.inputs):
        return _ONE
    base_type = hash_type & 0x1F
    if base_type == SIGHASH_SINGLE and input_index >= len(tx.outputs):
        return _ONE
    blank_sequences = base_type in (SIGHASH_NONE, SIGHASH_SINGLE)
    declared, code = script_code_without_codeseparators(script_code)
    indices = (input_index,) if hash_type & SIGHASH_ANYONECANPAY else range(len(tx.inputs))
    parts = [_I32.pack(tx.version), compact_size(len(indices))]
    for i in indices:
        txin = tx.inputs[i]
        parts.append(txin.prevout.txid + _U32.pack(txin.prevout.index))
        if i == input_index:
            parts += (compact_size(declared), code, _U32.pack(txin.sequence))
        else:
            parts += (b"\x00", _U32.pack(0 if blank_sequences else txin.sequence))
    if base_type == SIGHASH_NONE:
        parts.append(b"\x00")
    elif base_type == SIGHASH_SINGLE:
        parts += (compact_size(input_index + 1), _NULL_OUTPUT * input_index, tx.outputs[input_index].serialize())
    else:
        parts.append(compact_size(len(tx.outputs)))
        parts += [o.serialize() for o in tx.outputs]
    parts += (_U32.pack(tx.locktime), _U32.pack(hash_type & 0xFFFFFFFF))
    return hash256(b"".join(parts))


def segwit_v0_sighash(precomputed: PrecomputedTransaction, input_index: int, script_code: bytes, amount: int,
                      hash_type: int) -> bytes:
    """BIP143: the signature hash of a segwit v0 input spending ``amount``
    satoshis, signing ``script_code`` (the witness script from the last
    OP_CODESEPARATOR, or P2WPKH's implied P2PKH script). 32 bytes."""
    tx = precomputed.tx
    base_type = hash_type & 0x1F
    anyone_can_pay = hash_type & SIGHASH_ANYONECANPAY
    all_outputs = base_type not in (SIGHASH_SINGLE, SIGHASH_NONE)
    hash_prevouts = _ZERO if anyone_can_pay else precomputed.hash_prevouts
    hash_sequence = precomputed.hash_sequence if not anyone_can_pay and all_outputs else _ZERO
    if all_outputs:
        hash_outputs = precomputed.hash_outputs
    elif base_type == SIGHASH_SINGLE and input_index < len(tx.outputs):
        hash_outputs = hash256(tx.outputs[input_index].serialize())
    else:
        hash_outputs = _ZERO
    txin = tx.inputs[input_index]
    return hash256(b"".join((
        _I32.pack(tx.version), hash_prevouts, hash_sequence, txin.prevout.txid, _U32.pack(txin.prevout.index),
        var_bytes(script_code), _I64.pack(amount), _U32.pack(txin.sequence), hash_outputs,
        _U32.pack(tx.locktime), _U32.pack(hash_type & 0xFFFFFFFF),
    )))


def taproot_sighash_message(precomputed: PrecomputedTransaction, input_index: int, hash_type: int, *,
                            annex_hash: bytes | None = None, leaf_hash: bytes | None = None,
                            codeseparator_pos: int = _CODESEPARATOR_NONE) -> bytes | None:
    """BIP341 ``SigMsg(hash_type, ext_flag)`` (without the epoch byte), for
    a key-path spend, or with ``leaf_hash`` for a BIP342 script-path one.
    ``annex_hash``: SHA-256 of the annex with its length prefix, if any.
    None where there is no signature hash: ``hash_type`` not one of
    0x00-0x03, 0x81-0x83, or SINGLE with no output at ``input_index``."""
    if hash_type not in _TAPROOT_HASH_TYPES:
        return None
    tx = precomputed.tx
    output_type = SIGHASH_ALL if hash_type == SIGHASH_DEFAULT else hash_type & 0x03
    anyone_can_pay = hash_type & SIGHASH_ANYONECANPAY
    if output_type == SIGHASH_SINGLE and input_index >= len(tx.outputs):
        return None
    parts = [bytes((hash_type,)), _I32.pack(tx.version), _U32.pack(tx.locktime)]
    if not anyone_can_pay:
        parts += (precomputed.prevouts_sha256, precomputed.spent_amounts_sha256, precomputed.spent_scripts_sha256,
                  precomputed.sequences_sha256)
    if output_type == SIGHASH_ALL:
        parts.append(precomputed.outputs_sha256)
    ext_flag = 0 if leaf_hash is None else 1
    parts.append(bytes((2 * ext_flag + (annex_hash is not None),)))
    if anyone_can_pay:
        txin = tx.inputs[input_index]
        parts += (txin.prevout.txid, _U32.pack(txin.prevout.index), precomputed._spent()[input_index].serialize(),
                  _U32.pack(txin.sequence))
    else:
        parts.append(_U32.pack(input_index))
    if annex_hash is not None:
        parts.append(annex_hash)
    if output_type == SIGHASH_SINGLE:
        parts.append(precomputed.single_output_sha256(input_index))
    if leaf_hash is not None:
        parts += (leaf_hash, b"\x00", _U32.pack(codeseparator_pos))   # key_version 0 (BIP342)
    return b"".join(parts)


def taproot_sighash(precomputed: PrecomputedTransaction, input_index: int, hash_type: int, *,
                    annex_hash: bytes | None = None, leaf_hash: bytes | None = None,
                    codeseparator_pos: int = _CODESEPARATOR_NONE) -> bytes | None:
    """BIP341/342: ``H_TapSighash(0x00 || SigMsg)`` (see
    :func:`taproot_sighash_message` for the arguments and when it is None)."""
    msg = taproot_sighash_message(precomputed, input_index, hash_type, annex_hash=annex_hash, leaf_hash=leaf_hash,
                                  codeseparator_pos=codeseparator_pos)
    return None if msg is None else tagged_hash("TapSighash", b"\x00" + msg)
