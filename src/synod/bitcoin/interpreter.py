"""Script verification as Bitcoin Core enforces it (``VerifyScript``).

An input is valid when its scriptSig, then the scriptPubKey it spends,
run on one stack (not concatenated: CVE-2010-5141) and leave a true top
item, and then, by template:

- **P2SH** (BIP16, flag P2SH): a scriptPubKey ``HASH160 <20> EQUAL`` also
  runs the scriptSig's last push (the redeem script) on the stack the
  scriptSig left; the scriptSig must be push-only.
- **Witness programs** (BIP141, flag WITNESS): a scriptPubKey (or a P2SH
  redeem script) of a version opcode and a 2-40 byte push is satisfied by
  the input's witness, and the scriptSig must be empty (or exactly the one
  push of the redeem script). Version 0: a 32-byte program is P2WSH (the
  last witness item is the script, SHA-256 matching the program), a 20-byte
  one P2WPKH (two items, run through the implied P2PKH script); both with
  BIP143 signature hashes, items of at most 520 bytes and a clean stack.
  Version 1 with 32 bytes, outside P2SH, is taproot (BIP341, flag
  TAPROOT): one item (after an optional annex) is a key-path Schnorr
  signature for the program itself; two or more are a script path, the
  last being a control block that must commit the script before it to the
  program; leaf version 0xc0 runs as tapscript (BIP342: OP_SUCCESSx
  succeed at once, no opcode or script size limit, a signature budget of
  witness size + 50). Other versions and sizes succeed unexamined (room for
  soft forks) unless DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM.
- Without a witness program the witness must be empty
  (WITNESS_UNEXPECTED); CLEANSTACK asks for exactly one item left.

Failures raise :class:`~synod.bitcoin.errors.ScriptFailure` whose ``rule``
is Core's ``ScriptError`` name. A checker answers what needs the spending
transaction: :class:`TransactionChecker` binds a transaction, an input and
the amount it spends, with a :class:`~synod.bitcoin.sighash.PrecomputedTransaction`
shared by all inputs. Evaluation itself is :mod:`synod.bitcoin._opcodes`.
"""

from __future__ import annotations

from collections.abc import Sequence

from synod.bitcoin import constants as C
from synod.bitcoin._context import CODESEPARATOR_NONE, VALIDATION_WEIGHT_OFFSET, ExecData, SigVersion, VerifyFlags
from synod.bitcoin._hashes import sha256
from synod.bitcoin._opcodes import cast_to_bool, decode_script, eval_script
from synod.bitcoin._signatures import parse_der_lax, verify_ecdsa, verify_schnorr
from synod.bitcoin.errors import ScriptFailure
from synod.bitcoin.primitives import Transaction, TxOut, compact_size, var_bytes
from synod.bitcoin.script import OP, is_p2sh, is_push_only, push_bytes, witness_program
from synod.bitcoin.sighash import PrecomputedTransaction, legacy_sighash, segwit_v0_sighash, taproot_sighash
from synod.bitcoin.taproot import (
    ANNEX_TAG,
    TAPROOT_CONTROL_BASE_BYTES,
    TAPROOT_CONTROL_MAX_BYTES,
    TAPROOT_CONTROL_NODE_BYTES,
    TAPROOT_LEAF_MASK,
    TAPROOT_LEAF_TAPSCRIPT,
    tapleaf_hash,
    verify_commitment,
)
from synod.core.errors import LocalProtocolError

__all__ = [
    "VerifyFlags", "SigVersion", "ExecData", "SignatureChecker", "TransactionChecker", "verify_script",
    "verify_input", "verify_transaction", "PrecomputedTransaction",
]

_P2SH = int(VerifyFlags.P2SH)
_WITNESS = int(VerifyFlags.WITNESS)
_CLEANSTACK = int(VerifyFlags.CLEANSTACK)
_SIGPUSHONLY = int(VerifyFlags.SIGPUSHONLY)
_TAPROOT = int(VerifyFlags.TAPROOT)
_DISCOURAGE_WITNESS_PROGRAM = int(VerifyFlags.DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM)
_DISCOURAGE_TAPROOT_VERSION = int(VerifyFlags.DISCOURAGE_UPGRADABLE_TAPROOT_VERSION)
_DISCOURAGE_OP_SUCCESS = int(VerifyFlags.DISCOURAGE_OP_SUCCESS)
_PUBKEY_LENGTHS = {2: 33, 3: 33, 4: 65, 6: 65, 7: 65}   # CPubKey: size by its first byte
_P2A_PROGRAM = bytes((0x4E, 0x73))                      # pay-to-anchor: version 1, two bytes


def _is_op_success(opcode: int) -> bool:
    """BIP342's OP_SUCCESSx: 80, 98, 126-129, 131-134, 137-138, 141-142, 149-153, 187-254."""
    return (opcode in (80, 98) or 126 <= opcode <= 129 or 131 <= opcode <= 134 or 137 <= opcode <= 138
            or 141 <= opcode <= 142 or 149 <= opcode <= 153 or 187 <= opcode <= 254)


_OP_SUCCESS = frozenset(op for op in range(256) if _is_op_success(op))


class SignatureChecker:
    """The checks that need a transaction, for a script verified without one
    (Core's ``BaseSignatureChecker``): every signature fails, every lock
    time is unsatisfied."""

    __slots__ = ()

    def check_ecdsa_signature(self, sig: bytes, pubkey: bytes, script_code: bytes, sigversion: SigVersion) -> bool:
        return False

    def check_schnorr_signature(self, sig: bytes, pubkey: bytes, sigversion: SigVersion, execdata: ExecData) -> None:
        raise ScriptFailure("SCHNORR_SIG", "no transaction to check a signature against")

    def check_lock_time(self, lock_time: int) -> bool:
        return False

    def check_sequence(self, sequence: int) -> bool:
        return False


class TransactionChecker(SignatureChecker):
    """Signature and lock-time checks for input ``input_index`` of
    ``precomputed.tx``, which spends ``amount`` satoshis (Core's
    ``GenericTransactionSignatureChecker``)."""

    __slots__ = ("tx", "input_index", "amount", "precomputed")

    def __init__(self, precomputed: PrecomputedTransaction, input_index: int, amount: int) -> None:
        assert 0 <= input_index < len(precomputed.tx.inputs)
        self.tx = precomputed.tx
        self.input_index = input_index
        self.amount = amount
        self.precomputed = precomputed

    def check_ecdsa_signature(self, sig: bytes, pubkey: bytes, script_code: bytes, sigversion: SigVersion) -> bool:
        """Whether ``sig`` (lax DER + hash-type byte) signs this input under
        ``pubkey``: legacy or BIP143 sighash by ``sigversion``."""
        if not sig or _PUBKEY_LENGTHS.get(pubkey[0] if pubkey else -1) != len(pubkey):
            return False
        der, hash_type = sig[:-1], sig[-1]
        if parse_der_lax(der) is None:
            return False
        if sigversion == SigVersion.WITNESS_V0:
            sighash = segwit_v0_sighash(self.precomputed, self.input_index, script_code, self.amount, hash_type)
        else:
            sighash = legacy_sighash(self.tx, self.input_index, script_code, hash_type)
        return verify_ecdsa(der, pubkey, sighash)

    def check_schnorr_signature(self, sig: bytes, pubkey: bytes, sigversion: SigVersion, execdata: ExecData) -> None:
        """BIP340/341/342: ``sig`` (64 bytes, or 65 with a hash type that is
        not 0) signs this input under x-only ``pubkey`` (32 bytes).

        Raises:
            ScriptFailure: SCHNORR_SIG_SIZE, SCHNORR_SIG_HASHTYPE, SCHNORR_SIG.
        """
        assert len(pubkey) == 32
        if len(sig) == 64:
            hash_type = 0
        elif len(sig) == 65 and sig[64] != 0:
            hash_type = sig[64]
            sig = sig[:64]
        elif len(sig) == 65:
            raise ScriptFailure("SCHNORR_SIG_HASHTYPE", "an explicit SIGHASH_DEFAULT")
        else:
            raise ScriptFailure("SCHNORR_SIG_SIZE", f"a {len(sig)}-byte Schnorr signature")
        leaf_hash = execdata.tapleaf_hash if sigversion == SigVersion.TAPSCRIPT else None
        sighash = taproot_sighash(self.precomputed, self.input_index, hash_type, annex_hash=execdata.annex_hash,
                                  leaf_hash=leaf_hash, codeseparator_pos=execdata.codeseparator_pos)
        if sighash is None:
            raise ScriptFailure("SCHNORR_SIG_HASHTYPE", f"hash type {hash_type:#04x}")
        if not verify_schnorr(sig, pubkey, sighash):
            raise ScriptFailure("SCHNORR_SIG", "the signature does not verify")

    def check_lock_time(self, lock_time: int) -> bool:
        """BIP65: the transaction's nLockTime is of the same kind (height or
        time) and at least ``lock_time``, and this input is not final."""
        tx_lock_time = self.tx.locktime
        if (tx_lock_time < C.LOCKTIME_THRESHOLD) != (lock_time < C.LOCKTIME_THRESHOLD):
            return False
        if lock_time > tx_lock_time:
            return False
        return self.tx.inputs[self.input_index].sequence != C.SEQUENCE_FINAL

    def check_sequence(self, sequence: int) -> bool:
        """BIP112 against BIP68: version 2 or more (as unsigned), the input's
        relative lock enabled, of the same kind and at least ``sequence``."""
        tx_sequence = self.tx.inputs[self.input_index].sequence
        if self.tx.version & 0xFFFFFFFF < 2:
            return False
        if tx_sequence & C.SEQUENCE_LOCKTIME_DISABLE_FLAG:
            return False
        mask = C.SEQUENCE_LOCKTIME_TYPE_FLAG | C.SEQUENCE_LOCKTIME_MASK
        tx_masked, masked = tx_sequence & mask, sequence & mask
        if (tx_masked < C.SEQUENCE_LOCKTIME_TYPE_FLAG) != (masked < C.SEQUENCE_LOCKTIME_TYPE_FLAG):
            return False
        return masked <= tx_masked


def _execute_witness_script(stack: list[bytes], script: bytes, flags: int, sigversion: SigVersion,
                            checker: SignatureChecker, execdata: ExecData) -> None:
    """Run a witness script (P2WSH, P2WPKH's implied one, a tapscript) on
    the witness items; it must leave exactly one item, and a true one."""
    if sigversion == SigVersion.TAPSCRIPT:
        ops = decode_script(script)
        for opcode, _, _ in ops:
            if opcode in _OP_SUCCESS:
                if flags & _DISCOURAGE_OP_SUCCESS:
                    raise ScriptFailure("DISCOURAGE_OP_SUCCESS", f"OP_SUCCESS{opcode}")
                return   # BIP342: the script succeeds, whatever else it holds
        if not ops.complete:
            raise ScriptFailure("BAD_OPCODE", "a push runs past the end of the tapscript")
        if len(stack) > C.MAX_STACK_SIZE:
            raise ScriptFailure("STACK_SIZE", f"{len(stack)} witness items")
    for item in stack:
        if len(item) > C.MAX_SCRIPT_ELEMENT_BYTES:
            raise ScriptFailure("PUSH_SIZE", f"a witness item of {len(item)} bytes")
    eval_script(stack, script, flags, checker, sigversion, execdata)
    if len(stack) != 1:
        raise ScriptFailure("CLEANSTACK", f"{len(stack)} items left by a witness script")
    if not cast_to_bool(stack[-1]):
        raise ScriptFailure("EVAL_FALSE", "a witness script left false")


def _verify_witness_v0(stack: list[bytes], program: bytes, flags: int, checker: SignatureChecker) -> None:
    """BIP141: P2WSH (32-byte program) or P2WPKH (20 bytes)."""
    if len(program) == 32:
        if not stack:
            raise ScriptFailure("WITNESS_PROGRAM_WITNESS_EMPTY", "P2WSH without a witness")
        script = stack.pop()
        if sha256(script) != program:
            raise ScriptFailure("WITNESS_PROGRAM_MISMATCH", "the witness script's hash is not the program")
    elif len(program) == 20:
        if len(stack) != 2:
            raise ScriptFailure("WITNESS_PROGRAM_MISMATCH", f"P2WPKH with {len(stack)} witness items")
        script = bytes((OP.DUP, OP.HASH160, 20)) + program + bytes((OP.EQUALVERIFY, OP.CHECKSIG))
    else:
        raise ScriptFailure("WITNESS_PROGRAM_WRONG_LENGTH", f"a {len(program)}-byte v0 program")
    _execute_witness_script(stack, script, flags, SigVersion.WITNESS_V0, checker, ExecData())


def _verify_taproot(witness: Sequence[bytes], program: bytes, flags: int, checker: SignatureChecker) -> None:
    """BIP341 key path or script path, BIP342 tapscript."""
    stack = list(witness)
    if not stack:
        raise ScriptFailure("WITNESS_PROGRAM_WITNESS_EMPTY", "taproot without a witness")
    execdata = ExecData()
    if len(stack) >= 2 and stack[-1] and stack[-1][0] == ANNEX_TAG:
        execdata.annex_hash = sha256(var_bytes(stack.pop()))
    if len(stack) == 1:
        checker.check_schnorr_signature(stack[0], program, SigVersion.TAPROOT, execdata)
        return
    control = stack.pop()
    script = stack.pop()
    if (len(control) < TAPROOT_CONTROL_BASE_BYTES or len(control) > TAPROOT_CONTROL_MAX_BYTES
            or (len(control) - TAPROOT_CONTROL_BASE_BYTES) % TAPROOT_CONTROL_NODE_BYTES):
        raise ScriptFailure("TAPROOT_WRONG_CONTROL_SIZE", f"a {len(control)}-byte control block")
    leaf_version = control[0] & TAPROOT_LEAF_MASK
    execdata.tapleaf_hash = tapleaf_hash(leaf_version, script)
    if not verify_commitment(control, program, execdata.tapleaf_hash):
        raise ScriptFailure("WITNESS_PROGRAM_MISMATCH", "the control block does not commit to the script")
    if leaf_version != TAPROOT_LEAF_TAPSCRIPT:
        if flags & _DISCOURAGE_TAPROOT_VERSION:
            raise ScriptFailure("DISCOURAGE_UPGRADABLE_TAPROOT_VERSION", f"leaf version {leaf_version:#04x}")
        return
    witness_bytes = len(compact_size(len(witness))) + sum(len(var_bytes(item)) for item in witness)
    execdata.validation_weight_left = witness_bytes + VALIDATION_WEIGHT_OFFSET
    execdata.codeseparator_pos = CODESEPARATOR_NONE
    _execute_witness_script(stack, script, flags, SigVersion.TAPSCRIPT, checker, execdata)


def _verify_witness_program(witness: Sequence[bytes], version: int, program: bytes, flags: int,
                            checker: SignatureChecker, is_p2sh: bool) -> None:
    if version == 0:
        _verify_witness_v0(list(witness), program, flags, checker)
    elif version == 1 and len(program) == 32 and not is_p2sh:
        if flags & _TAPROOT:
            _verify_taproot(witness, program, flags, checker)
    elif version == 1 and program == _P2A_PROGRAM and not is_p2sh:
        return   # pay-to-anchor: anyone can spend, and it is not an upgrade hook
    elif flags & _DISCOURAGE_WITNESS_PROGRAM:
        raise ScriptFailure("DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM", f"witness v{version}, {len(program)} bytes")


def _check_flag_combination(flags: int) -> None:
    if flags & _WITNESS and not flags & _P2SH:
        raise LocalProtocolError("WITNESS needs P2SH")
    if flags & _CLEANSTACK and not flags & _WITNESS:
        raise LocalProtocolError("CLEANSTACK needs WITNESS and P2SH")


def verify_script(script_sig: bytes, script_pubkey: bytes, witness: Sequence[bytes], flags: VerifyFlags | int,
                  checker: SignatureChecker) -> None:
    """Verify one input: ``script_sig`` and ``witness`` (its items) against
    the ``script_pubkey`` it spends, under ``flags`` (BIP16, 141, 341).

    Raises:
        ScriptFailure: the input is invalid; ``rule`` is Core's error name.
        LocalProtocolError: ``flags`` has WITNESS without P2SH, or
            CLEANSTACK without WITNESS.
    """
    flags = int(flags)
    _check_flag_combination(flags)
    if flags & _SIGPUSHONLY and not is_push_only(script_sig):
        raise ScriptFailure("SIG_PUSHONLY", "a scriptSig with non-push opcodes")
    stack: list[bytes] = []
    eval_script(stack, script_sig, flags, checker, SigVersion.BASE, ExecData())
    stack_before = list(stack) if flags & _P2SH else stack
    eval_script(stack, script_pubkey, flags, checker, SigVersion.BASE, ExecData())
    if not stack or not cast_to_bool(stack[-1]):
        raise ScriptFailure("EVAL_FALSE", "the scriptPubKey left false")
    had_witness = False
    if flags & _WITNESS:
        program = witness_program(script_pubkey)
        if program is not None:
            had_witness = True
            if script_sig:
                raise ScriptFailure("WITNESS_MALLEATED", "a witness program spent with a scriptSig")
            _verify_witness_program(witness, *program, flags, checker, is_p2sh=False)
            del stack[1:]
    if flags & _P2SH and is_p2sh(script_pubkey):
        if not is_push_only(script_sig):
            raise ScriptFailure("SIG_PUSHONLY", "a P2SH scriptSig with non-push opcodes")
        stack = stack_before
        assert stack, "HASH160 EQUAL on an empty stack cannot have succeeded"
        redeem_script = stack.pop()
        eval_script(stack, redeem_script, flags, checker, SigVersion.BASE, ExecData())
        if not stack or not cast_to_bool(stack[-1]):
            raise ScriptFailure("EVAL_FALSE", "the redeem script left false")
        if flags & _WITNESS:
            program = witness_program(redeem_script)
            if program is not None:
                had_witness = True
                if script_sig != push_bytes(redeem_script):
                    raise ScriptFailure("WITNESS_MALLEATED_P2SH", "a scriptSig other than the redeem script's push")
                _verify_witness_program(witness, *program, flags, checker, is_p2sh=True)
                del stack[1:]
    if flags & _CLEANSTACK and len(stack) != 1:
        raise ScriptFailure("CLEANSTACK", f"{len(stack)} items left")
    if flags & _WITNESS and not had_witness and witness:
        raise ScriptFailure("WITNESS_UNEXPECTED", "a witness for an input without a witness program")


def verify_input(tx: Transaction, input_index: int, spent_outputs: Sequence[TxOut], flags: VerifyFlags | int,
                 precomputed: PrecomputedTransaction | None = None) -> None:
    """Verify input ``input_index`` of ``tx``; ``spent_outputs`` holds the
    output every input spends, in input order (BIP341 hashes them all).
    Pass one ``precomputed`` for all inputs of a transaction to hash its
    shared parts once.

    Raises:
        ScriptFailure: the input is invalid.
        LocalProtocolError: ``spent_outputs`` or ``precomputed`` do not
            belong to ``tx``.
    """
    if precomputed is None:
        precomputed = PrecomputedTransaction(tx, spent_outputs)
    elif precomputed.tx is not tx:
        raise LocalProtocolError("precomputed data of another transaction")
    if len(spent_outputs) != len(tx.inputs):
        raise LocalProtocolError(f"{len(spent_outputs)} spent outputs for {len(tx.inputs)} inputs")
    txin = tx.inputs[input_index]
    spent = spent_outputs[input_index]
    checker = TransactionChecker(precomputed, input_index, spent.value)
    verify_script(txin.script_sig, spent.script_pubkey, txin.witness, flags, checker)


def verify_transaction(tx: Transaction, spent_outputs: Sequence[TxOut], flags: VerifyFlags | int) -> None:
    """Verify every input of ``tx`` (see :func:`verify_input`).

    Raises:
        ScriptFailure: the first invalid input; ``detail`` names it.
    """
    precomputed = PrecomputedTransaction(tx, spent_outputs)
    for index in range(len(tx.inputs)):
        try:
            verify_input(tx, index, spent_outputs, flags, precomputed)
        except ScriptFailure as e:
            raise ScriptFailure(e.rule, f"input {index}: {e.detail}") from e
