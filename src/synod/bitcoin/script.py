"""Scripts as byte strings: opcodes, parsing, numbers, standard templates.

A script is a sequence of operations: a push (opcode 0x00-0x4e, with its
data) or an opcode (Core's ``script/script.h``). This module reads them
(:func:`get_op`, :func:`iter_ops`), counts signature operations the way
consensus does (:func:`sigop_count`), encodes and decodes script numbers
(CScriptNum: little-endian sign-magnitude, at most 4 bytes as operands),
and recognises the templates the rules treat specially (P2SH, witness
programs). Evaluation is :mod:`synod.bitcoin.interpreter`.
"""

from __future__ import annotations

from collections.abc import Iterator

from synod.bitcoin import constants as C
from synod.bitcoin.errors import ScriptFailure

__all__ = [
    "OP", "OPCODE_NAMES", "get_op", "iter_ops", "sigop_count", "push_data", "push_bytes", "script_num", "decode_script_num",
    "is_push_only", "is_p2sh", "witness_program", "small_int",
]


class OP:
    """Opcode values by name (``OP.CHECKSIG``), as in Core's ``opcodetype``."""

    # pushes
    _0 = 0x00
    PUSHDATA1 = 0x4C
    PUSHDATA2 = 0x4D
    PUSHDATA4 = 0x4E
    _1NEGATE = 0x4F
    RESERVED = 0x50
    _1 = 0x51
    _16 = 0x60
    # control
    NOP = 0x61
    VER = 0x62
    IF = 0x63
    NOTIF = 0x64
    VERIF = 0x65
    VERNOTIF = 0x66
    ELSE = 0x67
    ENDIF = 0x68
    VERIFY = 0x69
    RETURN = 0x6A
    # stack
    TOALTSTACK = 0x6B
    FROMALTSTACK = 0x6C
    _2DROP = 0x6D
    _2DUP = 0x6E
    _3DUP = 0x6F
    _2OVER = 0x70
    _2ROT = 0x71
    _2SWAP = 0x72
    IFDUP = 0x73
    DEPTH = 0x74
    DROP = 0x75
    DUP = 0x76
    NIP = 0x77
    OVER = 0x78
    PICK = 0x79
    ROLL = 0x7A
    ROT = 0x7B
    SWAP = 0x7C
    TUCK = 0x7D
    # splice
    CAT = 0x7E
    SUBSTR = 0x7F
    LEFT = 0x80
    RIGHT = 0x81
    SIZE = 0x82
    # bit logic
    INVERT = 0x83
    AND = 0x84
    OR = 0x85
    XOR = 0x86
    EQUAL = 0x87
    EQUALVERIFY = 0x88
    RESERVED1 = 0x89
    RESERVED2 = 0x8A
    # numeric
    _1ADD = 0x8B
    _1SUB = 0x8C
    _2MUL = 0x8D
    _2DIV = 0x8E
    NEGATE = 0x8F
    ABS = 0x90
    NOT = 0x91
    _0NOTEQUAL = 0x92
    ADD = 0x93
    SUB = 0x94
    MUL = 0x95
    DIV = 0x96
    MOD = 0x97
    LSHIFT = 0x98
    RSHIFT = 0x99
    BOOLAND = 0x9A
    BOOLOR = 0x9B
    NUMEQUAL = 0x9C
    NUMEQUALVERIFY = 0x9D
    NUMNOTEQUAL = 0x9E
    LESSTHAN = 0x9F
    GREATERTHAN = 0xA0
    LESSTHANOREQUAL = 0xA1
    GREATERTHANOREQUAL = 0xA2
    MIN = 0xA3
    MAX = 0xA4
    WITHIN = 0xA5
    # crypto
    RIPEMD160 = 0xA6
    SHA1 = 0xA7
    SHA256 = 0xA8
    HASH160 = 0xA9
    HASH256 = 0xAA
    CODESEPARATOR = 0xAB
    CHECKSIG = 0xAC
    CHECKSIGVERIFY = 0xAD
    CHECKMULTISIG = 0xAE
    CHECKMULTISIGVERIFY = 0xAF
    # expansion
    NOP1 = 0xB0
    CHECKLOCKTIMEVERIFY = 0xB1
    CHECKSEQUENCEVERIFY = 0xB2
    NOP4 = 0xB3
    NOP5 = 0xB4
    NOP6 = 0xB5
    NOP7 = 0xB6
    NOP8 = 0xB7
    NOP9 = 0xB8
    NOP10 = 0xB9
    CHECKSIGADD = 0xBA   # BIP342, tapscript only
    INVALIDOPCODE = 0xFF


def _names() -> dict[int, str]:
    names = {v: k.lstrip("_") for k, v in vars(OP).items() if k.isupper() or k.startswith("_") and k[1:2].isalnum()}
    names[OP._0] = "0"
    for n in range(1, 17):
        names[OP._1 + n - 1] = str(n)
    names[OP._1NEGATE] = "1NEGATE"
    names[OP.CHECKLOCKTIMEVERIFY] = "CHECKLOCKTIMEVERIFY"
    names[OP.CHECKSEQUENCEVERIFY] = "CHECKSEQUENCEVERIFY"
    return names


OPCODE_NAMES: dict[int, str] = _names()   # opcode -> its name without "OP_" ("CHECKSIG", "2DUP", "0")


def get_op(script: bytes, pos: int) -> tuple[int, bytes | None, int] | None:
    """The operation at ``pos``: ``(opcode, pushed data or None, next pos)``,
    or None when a push runs past the end (Core's ``GetOp`` failing)."""
    opcode = script[pos]
    pos += 1
    if opcode > OP.PUSHDATA4:
        return opcode, None, pos
    if opcode < OP.PUSHDATA1:
        size = opcode
    elif opcode == OP.PUSHDATA1:
        if pos + 1 > len(script):
            return None
        size = script[pos]
        pos += 1
    elif opcode == OP.PUSHDATA2:
        if pos + 2 > len(script):
            return None
        size = int.from_bytes(script[pos:pos + 2], "little")
        pos += 2
    else:
        if pos + 4 > len(script):
            return None
        size = int.from_bytes(script[pos:pos + 4], "little")
        pos += 4
    if pos + size > len(script):
        return None
    return opcode, script[pos:pos + size], pos + size


def iter_ops(script: bytes) -> Iterator[tuple[int, bytes | None]]:
    """Every operation of ``script`` in order.

    Raises:
        ScriptFailure: ``BAD_OPCODE`` where a push runs past the end.
    """
    pos = 0
    while pos < len(script):
        op = get_op(script, pos)
        if op is None:
            raise ScriptFailure("BAD_OPCODE", f"push past the end of the script at byte {pos}")
        opcode, data, pos = op
        yield opcode, data


def sigop_count(script: bytes, accurate: bool) -> int:
    """Signature operations in ``script`` as consensus counts them (Core's
    ``GetSigOpCount``): CHECKSIG(VERIFY) 1; CHECKMULTISIG(VERIFY) the key
    count of an OP_1..OP_16 just before it when ``accurate``, else 20.
    Counting stops at a push that runs past the end."""
    n = 0
    last = OP.INVALIDOPCODE
    pos = 0
    while pos < len(script):
        op = get_op(script, pos)
        if op is None:
            break
        opcode, _, pos = op
        if opcode in (OP.CHECKSIG, OP.CHECKSIGVERIFY):
            n += 1
        elif opcode in (OP.CHECKMULTISIG, OP.CHECKMULTISIGVERIFY):
            if accurate and OP._1 <= last <= OP._16:
                n += last - OP._1 + 1
            else:
                n += C.MAX_PUBKEYS_PER_MULTISIG
        last = opcode
    return n


def push_data(data: bytes) -> bytes:
    """The shortest push of ``data`` (as MINIMALDATA requires)."""
    if len(data) == 1 and 1 <= data[0] <= 16:
        return bytes((OP._1 + data[0] - 1,))
    if len(data) == 1 and data[0] == 0x81:
        return bytes((OP._1NEGATE,))
    return push_bytes(data)


def push_bytes(data: bytes) -> bytes:
    """``data`` pushed as Core's ``CScript << std::vector`` does: a direct
    push up to 75 bytes (even for one byte, and OP_0 for none), else the
    smallest OP_PUSHDATA1/2/4. This is the form FindAndDelete looks for."""
    n = len(data)
    if n < OP.PUSHDATA1:
        return bytes((n,)) + data
    if n <= 0xFF:
        return bytes((OP.PUSHDATA1, n)) + data
    if n <= 0xFFFF:
        return bytes((OP.PUSHDATA2,)) + n.to_bytes(2, "little") + data
    return bytes((OP.PUSHDATA4,)) + n.to_bytes(4, "little") + data


def script_num(n: int) -> bytes:
    """CScriptNum's encoding of ``n``: little-endian magnitude, sign in the
    top bit of the last byte; 0 is empty."""
    if n == 0:
        return b""
    neg = n < 0
    mag = -n if neg else n
    out = bytearray()
    while mag:
        out.append(mag & 0xFF)
        mag >>= 8
    if out[-1] & 0x80:
        out.append(0x80 if neg else 0x00)
    elif neg:
        out[-1] |= 0x80
    return bytes(out)


def decode_script_num(data: bytes, max_bytes: int = 4, minimal: bool = False) -> int:
    """A script number from a stack element.

    Raises:
        ScriptFailure: ``SCRIPTNUM``: longer than ``max_bytes``, or not
            minimally encoded when ``minimal``.
    """
    if len(data) > max_bytes:
        raise ScriptFailure("SCRIPTNUM", f"a number of {len(data)} bytes (at most {max_bytes})")
    if not data:
        return 0
    if minimal and (data[-1] & 0x7F) == 0 and (len(data) == 1 or not data[-2] & 0x80):
        raise ScriptFailure("SCRIPTNUM", "a number not minimally encoded")
    mag = int.from_bytes(data, "little")
    if data[-1] & 0x80:
        return -(mag & ~(0x80 << (8 * (len(data) - 1))))
    return mag


def small_int(opcode: int) -> int:
    """The value of OP_0 and OP_1..OP_16."""
    if opcode == OP._0:
        return 0
    assert OP._1 <= opcode <= OP._16
    return opcode - OP._1 + 1


def is_push_only(script: bytes) -> bool:
    """Only pushes (opcodes up to OP_16; OP_RESERVED counts as a push, as in
    Core), and every push complete."""
    pos = 0
    while pos < len(script):
        op = get_op(script, pos)
        if op is None or op[0] > OP._16:
            return False
        pos = op[2]
    return True


def is_p2sh(script: bytes) -> bool:
    """``HASH160 <20 bytes> EQUAL`` exactly (BIP16)."""
    return len(script) == 23 and script[0] == OP.HASH160 and script[1] == 0x14 and script[22] == OP.EQUAL


def witness_program(script: bytes) -> tuple[int, bytes] | None:
    """``(version, program)`` if ``script`` is a witness program (BIP141: a
    version opcode OP_0..OP_16, then one direct push of 2-40 bytes), else None."""
    n = len(script)
    if n < 4 or n > 42:
        return None
    if script[0] != OP._0 and not OP._1 <= script[0] <= OP._16:
        return None
    if script[1] + 2 != n:
        return None
    return small_int(script[0]), script[2:]
