"""Bitcoin Core's script text format, the one its test vectors are written in.

Reading (Core's ``ParseScript``, ``core_read.cpp``) splits the text on
whitespace; each word is one of:

- a decimal number in -0xFFFFFFFF..0xFFFFFFFF: pushed the way Core's
  ``CScript << int64`` does (OP_0, OP_1NEGATE, OP_1..OP_16, else the
  CScriptNum bytes in a direct push);
- ``0x`` and an even number of hex digits: the bytes inserted as they are,
  not pushed (so ``0x02 0x417a`` is a push of two bytes);
- ``'text'``: the text's bytes, pushed (no spaces inside);
- an opcode name, with or without ``OP_`` (``ADD``, ``OP_ADD``), from OP_NOP
  up plus OP_RESERVED; ``NOP2``/``NOP3`` name CHECKLOCKTIMEVERIFY and
  CHECKSEQUENCEVERIFY.

Writing (:func:`script_to_asm`, Core's ``FormatScript``) is the inverse:
``parse_asm(script_to_asm(s)) == s`` for every byte string ``s``, even a
script whose last push runs past its end.
"""

from __future__ import annotations

from synod.bitcoin.script import OP, OPCODE_NAMES, get_op, push_bytes, script_num
from synod.core.errors import LocalProtocolError

__all__ = ["parse_asm", "script_to_asm"]

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_NUMBER_LIMIT = 0xFFFFFFFF


def _opcode_table() -> dict[str, int]:
    table: dict[str, int] = {}
    for opcode in range(OP.RESERVED, OP.CHECKSIGADD + 1):
        if opcode < OP.NOP and opcode != OP.RESERVED:
            continue   # pushes and small numbers are written as numbers, as in Core
        name = OPCODE_NAMES[opcode]
        table[name] = table["OP_" + name] = opcode
    for alias, opcode in (("NOP2", OP.CHECKLOCKTIMEVERIFY), ("NOP3", OP.CHECKSEQUENCEVERIFY)):
        table[alias] = table["OP_" + alias] = opcode
    return table


_OPCODES_BY_NAME = _opcode_table()


def _push_number(n: int) -> bytes:
    if n == 0:
        return bytes((OP._0,))
    if n == -1 or 1 <= n <= 16:
        return bytes((OP._1 + n - 1,))
    return push_bytes(script_num(n))


def _is_decimal(word: str) -> bool:
    digits = word[1:] if word.startswith("-") else word
    return digits.isascii() and digits.isdigit()


def parse_asm(text: str) -> bytes:
    """The script written as ``text`` in Core's test-vector format.

    Raises:
        LocalProtocolError: an unknown word, or a number out of range.
    """
    out = bytearray()
    for word in text.split():
        if _is_decimal(word):
            n = int(word)
            if not -_NUMBER_LIMIT <= n <= _NUMBER_LIMIT:
                raise LocalProtocolError(f"script number {word} outside -0xFFFFFFFF..0xFFFFFFFF")
            out += _push_number(n)
        elif word.startswith("0x") and len(word) > 2 and len(word) % 2 == 0 and set(word[2:]) <= _HEX_DIGITS:
            out += bytes.fromhex(word[2:])
        elif len(word) >= 2 and word[0] == "'" and word[-1] == "'":
            out += push_bytes(word[1:-1].encode())
        elif word in _OPCODES_BY_NAME:
            out.append(_OPCODES_BY_NAME[word])
        else:
            raise LocalProtocolError(f"unknown word {word!r} in a script")
    return bytes(out)


def script_to_asm(script: bytes) -> str:
    """``script`` written in Core's test-vector format: small numbers as
    numbers, named opcodes by name, a push as its prefix and its data in hex,
    anything else (and a truncated tail) as raw hex."""
    words = []
    pos = 0
    while pos < len(script):
        op = get_op(script, pos)
        if op is None:
            words.append("0x" + script[pos:].hex())
            break
        opcode, data, end = op
        if opcode == OP._0:
            words.append("0")
        elif opcode == OP._1NEGATE or OP._1 <= opcode <= OP._16:
            words.append(str(opcode - OP._1 + 1))
        elif OP.NOP <= opcode <= OP.CHECKSIGADD:
            words.append(OPCODE_NAMES[opcode])
        elif data:
            words.append(f"0x{script[pos:end - len(data)].hex()} 0x{data.hex()}")
        else:
            words.append("0x" + script[pos:end].hex())
        pos = end
    return " ".join(words)
