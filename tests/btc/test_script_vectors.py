"""The script interpreter against Bitcoin Core's script_tests.json.

Each row is ``[[witness items..., amount in BTC]?, scriptSig, scriptPubKey,
flags, expected, comment?]`` in Core's script text. As Core's
``script_tests.cpp`` does, the scriptPubKey is paid by a crediting
transaction (version 1, one coinbase-like input with scriptSig ``0 0``,
one output of the amount) and spent by a spending transaction (version 1,
that one input with the scriptSig and witness, one output of the same
amount and an empty script, lock time 0, sequences final); CLEANSTACK
implies P2SH and WITNESS. The result must be Core's: OK or the exact
ScriptError name. Tapscript rows use Core's placeholders: ``#SCRIPT# asm``
is a witness item written as script text, ``#CONTROLBLOCK#`` the control
block of a one-leaf tree holding the item before it under BIP341's NUMS
internal key, and ``#TAPROOTOUTPUT#`` that tree's output key.

Core also checks that removing flags from a passing row, or adding flags
to a failing one, keeps the outcome (soft forks only ever tighten): here
every single flag is tried, deterministically, rather than random sets.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from tests.btc.conftest import core_vectors

from synod.bitcoin import OutPoint, ScriptFailure, Transaction, TxIn, TxOut
from synod.bitcoin.asm import parse_asm, script_to_asm
from synod.bitcoin.interpreter import VerifyFlags, verify_input
from synod.bitcoin.taproot import NUMS_INTERNAL_KEY, TAPROOT_LEAF_TAPSCRIPT, output_key, tapleaf_hash

SCRIPT_FLAG = "#SCRIPT#"
ALL_FLAGS = [f for f in VerifyFlags if f != VerifyFlags.NONE]


class Case:
    """One row, ready to run: the scripts, witness, amount and flags."""

    def __init__(self, row: list[Any]) -> None:
        self.row = row
        witness_field: list[Any] = row[0] if isinstance(row[0], list) else []
        fields = row[1:] if witness_field else row
        script_sig, script_pubkey, flags, expected = fields[:4]
        self.comment = fields[4] if len(fields) > 4 else ""
        self.amount = int(Decimal(str(witness_field[-1])) * 100_000_000) if witness_field else 0
        self.witness, script_pubkey = _witness(witness_field[:-1], script_pubkey)
        self.script_sig = parse_asm(script_sig)
        self.script_pubkey = parse_asm(script_pubkey)
        self.flags = VerifyFlags.from_names(flags)
        self.expected = expected

    def run(self, flags: VerifyFlags) -> str:
        if flags & VerifyFlags.CLEANSTACK:
            flags |= VerifyFlags.P2SH | VerifyFlags.WITNESS
        credit = Transaction(
            version=1, locktime=0,
            inputs=(TxIn(prevout=OutPoint(txid=bytes(32), index=0xFFFFFFFF), script_sig=b"\x00\x00"),),
            outputs=(TxOut(value=self.amount, script_pubkey=self.script_pubkey),),
        )
        spend = Transaction(
            version=1, locktime=0,
            inputs=(TxIn(prevout=OutPoint(txid=credit.txid, index=0), script_sig=self.script_sig,
                         witness=tuple(self.witness)),),
            outputs=(TxOut(value=self.amount, script_pubkey=b""),),
        )
        try:
            verify_input(spend, 0, [credit.outputs[0]], flags)
        except ScriptFailure as e:
            return e.rule
        return "OK"


def _witness(items: list[str], script_pubkey: str) -> tuple[list[bytes], str]:
    """The witness items, with Core's tapscript placeholders filled in."""
    witness: list[bytes] = []
    for item in items:
        if item.startswith(SCRIPT_FLAG):
            witness.append(parse_asm(item[len(SCRIPT_FLAG):]))
        elif item == "#CONTROLBLOCK#":
            leaf = tapleaf_hash(TAPROOT_LEAF_TAPSCRIPT, witness[-1])
            key, parity = output_key(NUMS_INTERNAL_KEY, leaf)
            witness.append(bytes((TAPROOT_LEAF_TAPSCRIPT | parity,)) + NUMS_INTERNAL_KEY)
            script_pubkey = script_pubkey.replace("#TAPROOTOUTPUT#", "0x" + key.hex())
        else:
            witness.append(bytes.fromhex(item))
    return witness, script_pubkey


def _cases() -> list[Case]:
    return [Case(row) for row in core_vectors("script_tests.json")]


def _show(case: Case, got: str) -> str:
    return f"expected {case.expected}, got {got}: {case.row}"


def test_every_script_vector_gives_cores_result() -> None:
    """All 1222 rows of script_tests.json: OK or Core's exact ScriptError."""
    cases = _cases()
    assert len(cases) == 1222
    mismatches = [_show(c, got) for c in cases if (got := c.run(c.flags)) != c.expected]
    assert mismatches == [], f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches)


def test_flags_only_tighten() -> None:
    """A passing row passes with any one of its flags removed; a failing
    row still fails with any one flag added (script_tests.cpp's check)."""
    wrong = []
    for case in _cases():
        passes = case.expected == "OK"
        for flag in ALL_FLAGS:
            flags = case.flags & ~flag if passes else case.flags | flag
            if flags & VerifyFlags.WITNESS and not flags & VerifyFlags.P2SH:
                continue   # (not a valid combination: Core skips it too)
            if (case.run(flags) == "OK") != passes:
                wrong.append(f"{flag.name}: {case.row}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize("text", ["0 1 -1 16 17 -2 1000 0x4c 0x01 0x07", "'Az' EQUAL 0x02 0x417a CHECKSIGADD NOP2 NOP3",
                                  "HASH160 0x14 0xdbb7d1c0a56b7a9c423300c8cca6e6e065baf1dc EQUAL", "0x4e 0x0100"])
def test_asm_round_trips(text: str) -> None:
    """script_to_asm writes what parse_asm reads back to the same bytes."""
    script = parse_asm(text)
    assert parse_asm(script_to_asm(script)) == script


def test_asm_round_trips_every_vector_script() -> None:
    for case in _cases():
        for script in (case.script_sig, case.script_pubkey, *case.witness):
            assert parse_asm(script_to_asm(script)) == script
