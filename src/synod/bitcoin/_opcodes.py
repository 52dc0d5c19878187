"""One script's evaluation (Core's ``EvalScript``): the opcodes and limits.

A script runs on a stack of byte strings (and an alt stack). Each script is
decoded once into ``(opcode, pushed data or None, end position)`` triples
(cached by script bytes, so a template seen in every input decodes once);
a push that runs past the end stops the decoding, and evaluation fails with
BAD_OPCODE when it reaches that point, as Core's reader does. Every
operation then goes through the same gate, in Core's order:

1. a push over 520 bytes fails (PUSH_SIZE), executed or not;
2. before tapscript, every opcode above OP_16 counts towards 201 (OP_COUNT),
   and CHECKMULTISIG adds its key count;
3. disabled opcodes (CAT, SUBSTR, ... RSHIFT) fail even unexecuted;
4. inside an unexecuted branch only IF/NOTIF/ELSE/ENDIF (and VERIF and
   VERNOTIF, which always fail) run; pushes are skipped;
5. after it, the main and alt stacks together hold at most 1000 items.

Conditions are a list of booleans with a count of the False ones, so
"executing" is one comparison. Opcodes dispatch through a 256-entry table
of small handlers ``handler(machine, opcode)``; each raises
:class:`ScriptFailure` with Core's error name. Script numbers are
CScriptNum (4 bytes as operands, 5 for lock times, minimal under
MINIMALDATA); results may be longer.

Signature opcodes follow the signature version: ECDSA with FindAndDelete
(BASE only) and the encoding rules (DERSIG, LOW_S, STRICTENC,
WITNESS_PUBKEYTYPE, NULLFAIL, NULLDUMMY), or BIP342's Schnorr checks with
the signature-operation budget, CHECKSIGADD, and no CHECKMULTISIG.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from synod.bitcoin import constants as C
from synod.bitcoin._context import VALIDATION_WEIGHT_PER_SIGOP_PASSED, ExecData, SigVersion, VerifyFlags
from synod.bitcoin._hashes import hash160, hash256, ripemd160, sha256
from synod.bitcoin._signatures import (
    is_compressed_or_uncompressed_pubkey,
    is_compressed_pubkey,
    is_defined_hash_type,
    is_low_s,
    is_valid_signature_encoding,
)
from synod.bitcoin.errors import ScriptFailure
from synod.bitcoin.script import OP, decode_script_num, get_op, push_bytes, script_num

__all__ = ["eval_script", "decode_script", "cast_to_bool", "find_and_delete"]

Op = tuple[int, bytes | None, int]

_DECODE_CACHE_MAX = 2048                # distinct scripts kept decoded
_DECODE_CACHE_SCRIPT_BYTES_MAX = 1650   # larger scripts are decoded as they run, never kept
_BASE = SigVersion.BASE
_WITNESS_V0 = SigVersion.WITNESS_V0
_TAPSCRIPT = SigVersion.TAPSCRIPT
# plain ints: evaluation tests flags with int arithmetic, not enum operators
_MINIMALDATA = int(VerifyFlags.MINIMALDATA)
_CONST_SCRIPTCODE = int(VerifyFlags.CONST_SCRIPTCODE)
_STRICT_SIG = int(VerifyFlags.DERSIG | VerifyFlags.LOW_S | VerifyFlags.STRICTENC)
_LOW_S = int(VerifyFlags.LOW_S)
_STRICTENC = int(VerifyFlags.STRICTENC)
_WITNESS_PUBKEYTYPE = int(VerifyFlags.WITNESS_PUBKEYTYPE)
_NULLFAIL = int(VerifyFlags.NULLFAIL)
_NULLDUMMY = int(VerifyFlags.NULLDUMMY)
_MINIMALIF = int(VerifyFlags.MINIMALIF)
_CLTV = int(VerifyFlags.CHECKLOCKTIMEVERIFY)
_CSV = int(VerifyFlags.CHECKSEQUENCEVERIFY)
_DISCOURAGE_NOPS = int(VerifyFlags.DISCOURAGE_UPGRADABLE_NOPS)
_DISCOURAGE_PUBKEYTYPE = int(VerifyFlags.DISCOURAGE_UPGRADABLE_PUBKEYTYPE)

_DISABLED = frozenset((OP.CAT, OP.SUBSTR, OP.LEFT, OP.RIGHT, OP.INVERT, OP.AND, OP.OR, OP.XOR, OP._2MUL, OP._2DIV,
                       OP.MUL, OP.DIV, OP.MOD, OP.LSHIFT, OP.RSHIFT))
_TRUE = b"\x01"
_FALSE = b""
_SMALL_INTS = {op: script_num(op - OP._1 + 1) for op in (OP._1NEGATE, *range(OP._1, OP._16 + 1))}


class _Decoded:
    """A script's operations, decoded once: ``ops`` up to the first push
    that runs past the end, and ``complete`` when there is none."""

    __slots__ = ("ops", "complete")

    def __init__(self, ops: tuple[Op, ...], complete: bool) -> None:
        self.ops = ops
        self.complete = complete

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)


class _LazyOps:
    """A large script's operations, decoded as they are reached (a tapscript
    may be megabytes: its decoded form is not kept); ``complete`` is known
    once the iteration has ended."""

    __slots__ = ("script", "complete")

    def __init__(self, script: bytes) -> None:
        self.script = script
        self.complete = True

    def __iter__(self) -> Iterator[Op]:
        script = self.script
        pos = 0
        n = len(script)
        while pos < n:
            op = get_op(script, pos)
            if op is None:
                self.complete = False
                return
            yield op
            pos = op[2]


@lru_cache(maxsize=_DECODE_CACHE_MAX)
def _decode(script: bytes) -> _Decoded:
    lazy = _LazyOps(script)
    ops = tuple(lazy)
    return _Decoded(ops, lazy.complete)


def decode_script(script: bytes) -> _Decoded | _LazyOps:
    """The operations of ``script`` (``(opcode, pushed data or None, end
    position)``, iterable), up to the first push that runs past the end;
    after a full iteration ``.complete`` says whether there was none."""
    if len(script) <= _DECODE_CACHE_SCRIPT_BYTES_MAX:
        return _decode(script)
    return _LazyOps(script)


def cast_to_bool(value: bytes) -> bool:
    """A stack item as a condition: false for any zero, including "negative
    zero" (all zero bytes but a last 0x80)."""
    if not value:
        return False
    if value[-1] & 0x7F:
        return True
    return value.count(0, 0, -1) < len(value) - 1


def _is_minimal_push(opcode: int, data: bytes) -> bool:
    n = len(data)
    if n == 0:
        return opcode == OP._0
    if n == 1 and 1 <= data[0] <= 16:
        return opcode == OP._1 + data[0] - 1
    if n == 1 and data[0] == 0x81:
        return opcode == OP._1NEGATE
    if n <= 75:
        return opcode == n
    if n <= 0xFF:
        return opcode == OP.PUSHDATA1
    if n <= 0xFFFF:
        return opcode == OP.PUSHDATA2
    return True


def find_and_delete(script: bytes, needle: bytes) -> tuple[bytes, int]:
    """Core's ``FindAndDelete``: ``script`` without every copy of ``needle``
    that starts at an operation boundary (copies removed back to back count
    too), and how many were removed."""
    if not needle or needle not in script:
        return script, 0
    out = []
    found = 0
    size = len(needle)
    n = len(script)
    pc = kept_from = 0
    while True:
        out.append(script[kept_from:pc])
        while n - pc >= size and script.startswith(needle, pc):
            pc += size
            found += 1
        kept_from = pc
        if pc >= n:
            break
        op = get_op(script, pc)
        if op is None:
            break
        pc = op[2]
    if not found:
        return script, 0
    out.append(script[kept_from:])
    return b"".join(out), found


class _Machine:
    """The state of one EvalScript run that handlers read and change."""

    __slots__ = ("stack", "altstack", "flags", "checker", "sigversion", "execdata", "script", "vexec",
                 "false_count", "op_count", "code_start", "index", "end", "minimal")

    def __init__(self, stack: list[bytes], script: bytes, flags: int, checker: Any, sigversion: SigVersion,
                 execdata: ExecData) -> None:
        self.stack = stack
        self.altstack: list[bytes] = []
        self.flags = flags
        self.checker = checker
        self.sigversion = sigversion
        self.execdata = execdata
        self.script = script
        self.vexec: list[bool] = []   # Invariant: false_count == vexec.count(False)
        self.false_count = 0
        self.op_count = 0
        self.code_start = 0           # byte position after the last executed OP_CODESEPARATOR
        self.index = 0                # position of the operation being run, in operations
        self.end = 0                  # its end, in bytes
        self.minimal = bool(flags & _MINIMALDATA)

    def num(self, data: bytes, max_bytes: int = 4) -> int:
        return decode_script_num(data, max_bytes, self.minimal)


def eval_script(stack: list[bytes], script: bytes, flags: int, checker: Any, sigversion: SigVersion,
                execdata: ExecData) -> None:
    """Run ``script`` on ``stack`` (changed in place) under ``flags`` (an
    int of VerifyFlags bits) and ``sigversion``; ``checker`` answers the
    signature and lock-time questions for the spending input.

    Raises:
        ScriptFailure: the first rule broken, by Core's ScriptError name.
    """
    legacy_limits = sigversion == _BASE or sigversion == _WITNESS_V0
    if legacy_limits and len(script) > C.MAX_SCRIPT_BYTES:
        raise ScriptFailure("SCRIPT_SIZE", f"a script of {len(script)} bytes")
    ops = decode_script(script)
    m = _Machine(stack, script, flags, checker, sigversion, execdata)
    altstack = m.altstack
    minimal = m.minimal
    forbid_codeseparator = sigversion == _BASE and flags & _CONST_SCRIPTCODE
    handlers = _HANDLERS
    for index, (opcode, data, end) in enumerate(ops):
        if data is not None:
            if len(data) > C.MAX_SCRIPT_ELEMENT_BYTES:
                raise ScriptFailure("PUSH_SIZE", f"a push of {len(data)} bytes")
            if not m.false_count:
                if minimal and not _is_minimal_push(opcode, data):
                    raise ScriptFailure("MINIMALDATA", f"push of {len(data)} bytes by opcode {opcode:#04x}")
                stack.append(data)
        else:
            if legacy_limits and opcode > OP._16:
                m.op_count += 1
                if m.op_count > C.MAX_OPS_PER_SCRIPT:
                    raise ScriptFailure("OP_COUNT", f"over {C.MAX_OPS_PER_SCRIPT} opcodes")
            if opcode in _DISABLED:
                raise ScriptFailure("DISABLED_OPCODE", f"opcode {opcode:#04x}")
            if opcode == OP.CODESEPARATOR and forbid_codeseparator:
                raise ScriptFailure("OP_CODESEPARATOR", "CONST_SCRIPTCODE")
            if not m.false_count or OP.IF <= opcode <= OP.ENDIF:
                m.index = index
                m.end = end
                handlers[opcode](m, opcode)
        if len(stack) + len(altstack) > C.MAX_STACK_SIZE:
            raise ScriptFailure("STACK_SIZE", f"over {C.MAX_STACK_SIZE} stack items")
    if not ops.complete:
        raise ScriptFailure("BAD_OPCODE", "a push runs past the end of the script")
    if m.vexec:
        raise ScriptFailure("UNBALANCED_CONDITIONAL", "IF without ENDIF")


# -- helpers ------------------------------------------------------------------------------------


def _need(m: _Machine, n: int) -> list[bytes]:
    stack = m.stack
    if len(stack) < n:
        raise ScriptFailure("INVALID_STACK_OPERATION", f"{len(stack)} stack items, {n} needed")
    return stack


def _op_bad(m: _Machine, opcode: int) -> None:
    raise ScriptFailure("BAD_OPCODE", f"opcode {opcode:#04x}")


def _op_small_int(m: _Machine, opcode: int) -> None:
    m.stack.append(_SMALL_INTS[opcode])


def _op_nop(m: _Machine, opcode: int) -> None:
    pass


def _op_upgradable_nop(m: _Machine, opcode: int) -> None:
    if m.flags & _DISCOURAGE_NOPS:
        raise ScriptFailure("DISCOURAGE_UPGRADABLE_NOPS", f"opcode {opcode:#04x}")


# -- lock times (BIP65, BIP112) ---------------------------------------------------------------


def _op_checklocktimeverify(m: _Machine, opcode: int) -> None:
    if not m.flags & _CLTV:
        return   # not enabled: a NOP (not discouraged, so dropping the flag never invalidates)
    stack = _need(m, 1)
    lock_time = m.num(stack[-1], 5)   # 5 bytes: lock times run to 2^32-1
    if lock_time < 0:
        raise ScriptFailure("NEGATIVE_LOCKTIME", str(lock_time))
    if not m.checker.check_lock_time(lock_time):
        raise ScriptFailure("UNSATISFIED_LOCKTIME", f"lock time {lock_time}")


def _op_checksequenceverify(m: _Machine, opcode: int) -> None:
    if not m.flags & _CSV:
        return   # not enabled: a NOP (not discouraged, so dropping the flag never invalidates)
    stack = _need(m, 1)
    sequence = m.num(stack[-1], 5)
    if sequence < 0:
        raise ScriptFailure("NEGATIVE_LOCKTIME", str(sequence))
    if sequence & C.SEQUENCE_LOCKTIME_DISABLE_FLAG:
        return   # reserved for future soft forks: a NOP
    if not m.checker.check_sequence(sequence):
        raise ScriptFailure("UNSATISFIED_LOCKTIME", f"sequence {sequence}")


# -- control ------------------------------------------------------------------------------------


def _op_if(m: _Machine, opcode: int) -> None:
    value = False
    if not m.false_count:
        stack = _need(m, 1)
        top = stack[-1]
        if len(top) > 1 or (len(top) == 1 and top[0] != 1):
            if m.sigversion == _TAPSCRIPT:
                raise ScriptFailure("TAPSCRIPT_MINIMALIF", "IF argument not empty or 0x01")
            if m.sigversion == _WITNESS_V0 and m.flags & _MINIMALIF:
                raise ScriptFailure("MINIMALIF", "IF argument not empty or 0x01")
        value = cast_to_bool(top)
        if opcode == OP.NOTIF:
            value = not value
        stack.pop()
    m.vexec.append(value)
    if not value:
        m.false_count += 1


def _op_else(m: _Machine, opcode: int) -> None:
    if not m.vexec:
        raise ScriptFailure("UNBALANCED_CONDITIONAL", "ELSE without IF")
    was = m.vexec[-1]
    m.vexec[-1] = not was
    m.false_count += 1 if was else -1


def _op_endif(m: _Machine, opcode: int) -> None:
    if not m.vexec:
        raise ScriptFailure("UNBALANCED_CONDITIONAL", "ENDIF without IF")
    if not m.vexec.pop():
        m.false_count -= 1


def _op_verify(m: _Machine, opcode: int) -> None:
    stack = _need(m, 1)
    if not cast_to_bool(stack[-1]):
        raise ScriptFailure("VERIFY", "")
    stack.pop()


def _op_return(m: _Machine, opcode: int) -> None:
    raise ScriptFailure("OP_RETURN", "")


# -- stack ------------------------------------------------------------------------------------------


def _op_toaltstack(m: _Machine, opcode: int) -> None:
    m.altstack.append(_need(m, 1).pop())


def _op_fromaltstack(m: _Machine, opcode: int) -> None:
    if not m.altstack:
        raise ScriptFailure("INVALID_ALTSTACK_OPERATION", "FROMALTSTACK on an empty alt stack")
    m.stack.append(m.altstack.pop())


def _op_2drop(m: _Machine, opcode: int) -> None:
    del _need(m, 2)[-2:]


def _op_2dup(m: _Machine, opcode: int) -> None:
    stack = _need(m, 2)
    stack.extend(stack[-2:])


def _op_3dup(m: _Machine, opcode: int) -> None:
    stack = _need(m, 3)
    stack.extend(stack[-3:])


def _op_2over(m: _Machine, opcode: int) -> None:
    stack = _need(m, 4)
    stack.extend(stack[-4:-2])


def _op_2rot(m: _Machine, opcode: int) -> None:
    stack = _need(m, 6)
    moved = stack[-6:-4]
    del stack[-6:-4]
    stack.extend(moved)


def _op_2swap(m: _Machine, opcode: int) -> None:
    stack = _need(m, 4)
    stack[-4:] = stack[-2:] + stack[-4:-2]


def _op_ifdup(m: _Machine, opcode: int) -> None:
    stack = _need(m, 1)
    if cast_to_bool(stack[-1]):
        stack.append(stack[-1])


def _op_depth(m: _Machine, opcode: int) -> None:
    m.stack.append(script_num(len(m.stack)))


def _op_drop(m: _Machine, opcode: int) -> None:
    _need(m, 1).pop()


def _op_dup(m: _Machine, opcode: int) -> None:
    stack = _need(m, 1)
    stack.append(stack[-1])


def _op_nip(m: _Machine, opcode: int) -> None:
    del _need(m, 2)[-2]


def _op_over(m: _Machine, opcode: int) -> None:
    stack = _need(m, 2)
    stack.append(stack[-2])


def _op_pick_roll(m: _Machine, opcode: int) -> None:
    stack = _need(m, 2)
    n = m.num(stack[-1])
    stack.pop()
    if n < 0 or n >= len(stack):
        raise ScriptFailure("INVALID_STACK_OPERATION", f"PICK/ROLL {n} of {len(stack)} items")
    value = stack[-n - 1]
    if opcode == OP.ROLL:
        del stack[-n - 1]
    stack.append(value)


def _op_rot(m: _Machine, opcode: int) -> None:
    stack = _need(m, 3)
    stack.append(stack.pop(-3))


def _op_swap(m: _Machine, opcode: int) -> None:
    stack = _need(m, 2)
    stack[-2], stack[-1] = stack[-1], stack[-2]


def _op_tuck(m: _Machine, opcode: int) -> None:
    stack = _need(m, 2)
    stack.insert(-2, stack[-1])


def _op_size(m: _Machine, opcode: int) -> None:
    stack = _need(m, 1)
    stack.append(script_num(len(stack[-1])))


def _op_equal(m: _Machine, opcode: int) -> None:
    stack = _need(m, 2)
    equal = stack.pop() == stack.pop()
    if opcode == OP.EQUALVERIFY:
        if not equal:
            raise ScriptFailure("EQUALVERIFY", "")
    else:
        stack.append(_TRUE if equal else _FALSE)


# -- arithmetic -----------------------------------------------------------------------------------

_UNARY = {
    OP._1ADD: lambda a: a + 1,
    OP._1SUB: lambda a: a - 1,
    OP.NEGATE: lambda a: -a,
    OP.ABS: abs,
    OP.NOT: lambda a: int(a == 0),
    OP._0NOTEQUAL: lambda a: int(a != 0),
}

_BINARY = {
    OP.ADD: lambda a, b: a + b,
    OP.SUB: lambda a, b: a - b,
    OP.BOOLAND: lambda a, b: int(a != 0 and b != 0),
    OP.BOOLOR: lambda a, b: int(a != 0 or b != 0),
    OP.NUMEQUAL: lambda a, b: int(a == b),
    OP.NUMEQUALVERIFY: lambda a, b: int(a == b),
    OP.NUMNOTEQUAL: lambda a, b: int(a != b),
    OP.LESSTHAN: lambda a, b: int(a < b),
    OP.GREATERTHAN: lambda a, b: int(a > b),
    OP.LESSTHANOREQUAL: lambda a, b: int(a <= b),
    OP.GREATERTHANOREQUAL: lambda a, b: int(a >= b),
    OP.MIN: min,
    OP.MAX: max,
}


def _op_unary(m: _Machine, opcode: int) -> None:
    stack = _need(m, 1)
    stack[-1] = script_num(_UNARY[opcode](m.num(stack[-1])))


def _op_binary(m: _Machine, opcode: int) -> None:
    stack = _need(m, 2)
    result = _BINARY[opcode](m.num(stack[-2]), m.num(stack[-1]))
    del stack[-2:]
    if opcode == OP.NUMEQUALVERIFY:
        if not result:
            raise ScriptFailure("NUMEQUALVERIFY", "")
    else:
        stack.append(script_num(result))


def _op_within(m: _Machine, opcode: int) -> None:
    stack = _need(m, 3)
    x, low, high = m.num(stack[-3]), m.num(stack[-2]), m.num(stack[-1])
    del stack[-3:]
    stack.append(_TRUE if low <= x < high else _FALSE)


# -- hashes -------------------------------------------------------------------------------------------

_HASHES = {
    OP.RIPEMD160: ripemd160,
    OP.SHA1: lambda data: hashlib.sha1(data).digest(),
    OP.SHA256: sha256,
    OP.HASH160: hash160,
    OP.HASH256: hash256,
}


def _op_hash(m: _Machine, opcode: int) -> None:
    stack = _need(m, 1)
    stack[-1] = _HASHES[opcode](stack[-1])


def _op_codeseparator(m: _Machine, opcode: int) -> None:
    m.code_start = m.end
    m.execdata.codeseparator_pos = m.index


# -- signatures -----------------------------------------------------------------------------------


def _check_signature_encoding(sig: bytes, flags: int) -> None:
    """Core's CheckSignatureEncoding (an empty signature always passes)."""
    if not sig:
        return
    if flags & _STRICT_SIG and not is_valid_signature_encoding(sig):
        raise ScriptFailure("SIG_DER", sig.hex())
    if flags & _LOW_S and not is_low_s(sig[:-1]):
        raise ScriptFailure("SIG_HIGH_S", sig.hex())
    if flags & _STRICTENC and not is_defined_hash_type(sig):
        raise ScriptFailure("SIG_HASHTYPE", f"hash type {sig[-1]:#04x}")


def _check_pubkey_encoding(pubkey: bytes, flags: int, sigversion: SigVersion) -> None:
    if flags & _STRICTENC and not is_compressed_or_uncompressed_pubkey(pubkey):
        raise ScriptFailure("PUBKEYTYPE", pubkey.hex())
    if flags & _WITNESS_PUBKEYTYPE and sigversion == _WITNESS_V0 and not is_compressed_pubkey(pubkey):
        raise ScriptFailure("WITNESS_PUBKEYTYPE", pubkey.hex())


def _script_code(m: _Machine, sigs: list[bytes]) -> bytes:
    """The script a legacy or BIP143 signature signs: from the last executed
    OP_CODESEPARATOR on; before segwit, without the signatures themselves."""
    code = m.script[m.code_start:]
    if m.sigversion == _BASE:
        for sig in sigs:
            code, found = find_and_delete(code, push_bytes(sig))
            if found and m.flags & _CONST_SCRIPTCODE:
                raise ScriptFailure("SIG_FINDANDDELETE", "a signature inside the script code")
    return code


def _checksig_ecdsa(m: _Machine, sig: bytes, pubkey: bytes) -> bool:
    code = _script_code(m, [sig])
    _check_signature_encoding(sig, m.flags)
    _check_pubkey_encoding(pubkey, m.flags, m.sigversion)
    ok = bool(m.checker.check_ecdsa_signature(sig, pubkey, code, m.sigversion))
    if not ok and sig and m.flags & _NULLFAIL:
        raise ScriptFailure("NULLFAIL", "a failed signature is not empty")
    return ok


def _checksig_tapscript(m: _Machine, sig: bytes, pubkey: bytes) -> bool:
    """BIP342's order: the budget, the empty key, then the signature; an
    empty signature is a false result, any other failing one an error."""
    success = bool(sig)
    if success:
        m.execdata.validation_weight_left -= VALIDATION_WEIGHT_PER_SIGOP_PASSED
        if m.execdata.validation_weight_left < 0:
            raise ScriptFailure("TAPSCRIPT_VALIDATION_WEIGHT", "signature operations over the witness budget")
    if not pubkey:
        raise ScriptFailure("TAPSCRIPT_EMPTY_PUBKEY", "")
    if len(pubkey) == 32:
        if success:
            m.checker.check_schnorr_signature(sig, pubkey, m.sigversion, m.execdata)
    elif m.flags & _DISCOURAGE_PUBKEYTYPE:
        raise ScriptFailure("DISCOURAGE_UPGRADABLE_PUBKEYTYPE", f"a {len(pubkey)}-byte public key")
    return success


def _checksig(m: _Machine, sig: bytes, pubkey: bytes) -> bool:
    if m.sigversion == _TAPSCRIPT:
        return _checksig_tapscript(m, sig, pubkey)
    return _checksig_ecdsa(m, sig, pubkey)


def _op_checksig(m: _Machine, opcode: int) -> None:
    stack = _need(m, 2)
    ok = _checksig(m, stack[-2], stack[-1])
    del stack[-2:]
    if opcode == OP.CHECKSIGVERIFY:
        if not ok:
            raise ScriptFailure("CHECKSIGVERIFY", "")
    else:
        stack.append(_TRUE if ok else _FALSE)


def _op_checksigadd(m: _Machine, opcode: int) -> None:
    if m.sigversion == _BASE or m.sigversion == _WITNESS_V0:
        _op_bad(m, opcode)
    stack = _need(m, 3)
    n = m.num(stack[-2])
    ok = _checksig(m, stack[-3], stack[-1])
    del stack[-3:]
    stack.append(script_num(n + ok))


def _op_checkmultisig(m: _Machine, opcode: int) -> None:
    if m.sigversion == _TAPSCRIPT:
        raise ScriptFailure("TAPSCRIPT_CHECKMULTISIG", "")
    stack = _need(m, 1)
    n_keys = m.num(stack[-1])
    if n_keys < 0 or n_keys > C.MAX_PUBKEYS_PER_MULTISIG:
        raise ScriptFailure("PUBKEY_COUNT", str(n_keys))
    m.op_count += n_keys
    if m.op_count > C.MAX_OPS_PER_SCRIPT:
        raise ScriptFailure("OP_COUNT", f"over {C.MAX_OPS_PER_SCRIPT} opcodes")
    ikey = 2                       # positions from the top: keys, then the signature count, then signatures
    i = 2 + n_keys
    _need(m, i)
    n_sigs = m.num(stack[-i])
    if n_sigs < 0 or n_sigs > n_keys:
        raise ScriptFailure("SIG_COUNT", f"{n_sigs} signatures for {n_keys} keys")
    isig = i + 1
    i = isig + n_sigs             # (the position of the dummy item, which must be there too)
    _need(m, i)
    sigs = [stack[-k] for k in range(isig, i)]
    code = _script_code(m, sigs)
    success = True
    while success and n_sigs > 0:
        sig, pubkey = stack[-isig], stack[-ikey]
        _check_signature_encoding(sig, m.flags)
        _check_pubkey_encoding(pubkey, m.flags, m.sigversion)
        if m.checker.check_ecdsa_signature(sig, pubkey, code, m.sigversion):
            isig += 1
            n_sigs -= 1
        ikey += 1
        n_keys -= 1
        if n_sigs > n_keys:
            success = False
    if not success and m.flags & _NULLFAIL and any(sigs):
        raise ScriptFailure("NULLFAIL", "a failed signature is not empty")
    del stack[-(i - 1):]
    if not stack:   # the extra item CHECKMULTISIG has always consumed
        raise ScriptFailure("INVALID_STACK_OPERATION", "no dummy item for CHECKMULTISIG")
    if m.flags & _NULLDUMMY and stack[-1]:
        raise ScriptFailure("SIG_NULLDUMMY", stack[-1].hex())
    stack.pop()
    if opcode == OP.CHECKMULTISIGVERIFY:
        if not success:
            raise ScriptFailure("CHECKMULTISIGVERIFY", "")
    else:
        stack.append(_TRUE if success else _FALSE)


def _handler_table() -> list[Any]:
    table: list[Any] = [_op_bad] * 256
    for op in _SMALL_INTS:
        table[op] = _op_small_int
    for op in (OP.NOP1, OP.NOP4, OP.NOP5, OP.NOP6, OP.NOP7, OP.NOP8, OP.NOP9, OP.NOP10):
        table[op] = _op_upgradable_nop
    for op in _UNARY:
        table[op] = _op_unary
    for op in _BINARY:
        table[op] = _op_binary
    for op in _HASHES:
        table[op] = _op_hash
    named = {
        OP.NOP: _op_nop, OP.CHECKLOCKTIMEVERIFY: _op_checklocktimeverify,
        OP.CHECKSEQUENCEVERIFY: _op_checksequenceverify, OP.IF: _op_if, OP.NOTIF: _op_if, OP.ELSE: _op_else,
        OP.ENDIF: _op_endif, OP.VERIFY: _op_verify, OP.RETURN: _op_return, OP.TOALTSTACK: _op_toaltstack,
        OP.FROMALTSTACK: _op_fromaltstack, OP._2DROP: _op_2drop, OP._2DUP: _op_2dup, OP._3DUP: _op_3dup,
        OP._2OVER: _op_2over, OP._2ROT: _op_2rot, OP._2SWAP: _op_2swap, OP.IFDUP: _op_ifdup, OP.DEPTH: _op_depth,
        OP.DROP: _op_drop, OP.DUP: _op_dup, OP.NIP: _op_nip, OP.OVER: _op_over, OP.PICK: _op_pick_roll,
        OP.ROLL: _op_pick_roll, OP.ROT: _op_rot, OP.SWAP: _op_swap, OP.TUCK: _op_tuck, OP.SIZE: _op_size,
        OP.EQUAL: _op_equal, OP.EQUALVERIFY: _op_equal, OP.WITHIN: _op_within, OP.CODESEPARATOR: _op_codeseparator,
        OP.CHECKSIG: _op_checksig, OP.CHECKSIGVERIFY: _op_checksig, OP.CHECKSIGADD: _op_checksigadd,
        OP.CHECKMULTISIG: _op_checkmultisig, OP.CHECKMULTISIGVERIFY: _op_checkmultisig,
    }
    for op, handler in named.items():
        table[op] = handler
    return table


_HANDLERS = _handler_table()
