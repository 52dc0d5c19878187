"""Whole transactions against Bitcoin Core's tx_valid.json and tx_invalid.json.

Rows are ``[[[prevout txid, prevout index, prevout scriptPubKey, amount?],
...], serialized tx, flags]`` with Core's current semantics
(``transaction_tests.cpp``):

- tx_valid: ``flags`` are the flags *excluded*. The transaction passes
  CheckTransaction, and every input verifies with all other flags; it
  still does with any one more flag removed; and each excluded flag is
  needed: turning any one back on makes some input fail.
- tx_invalid: ``flags`` are the flags *set* (``BADTX``: CheckTransaction
  itself must reject it). Some input fails; it still fails with any one
  flag more; and each flag is needed: turning any one off makes every
  input verify.

WITNESS needs P2SH and CLEANSTACK needs WITNESS: Core's TrimFlags and
FillFlags keep every combination valid, and so do these tests.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.btc.conftest import core_vectors

from synod.bitcoin import OutPoint, RuleViolation, ScriptFailure, Transaction, TxOut, check_transaction, parse_transaction
from synod.bitcoin.asm import parse_asm
from synod.bitcoin.interpreter import PrecomputedTransaction, VerifyFlags, verify_input

ALL = VerifyFlags.all()
SINGLE_FLAGS = [f for f in VerifyFlags if f != VerifyFlags.NONE]


def trim_flags(flags: VerifyFlags) -> VerifyFlags:
    """Core's TrimFlags: drop what a missing flag makes meaningless."""
    if not flags & VerifyFlags.P2SH:
        flags &= ~VerifyFlags.WITNESS
    if not flags & VerifyFlags.WITNESS:
        flags &= ~VerifyFlags.CLEANSTACK
    return flags


def fill_flags(flags: VerifyFlags) -> VerifyFlags:
    """Core's FillFlags: add what a flag needs."""
    if flags & VerifyFlags.CLEANSTACK:
        flags |= VerifyFlags.WITNESS
    if flags & VerifyFlags.WITNESS:
        flags |= VerifyFlags.P2SH
    return flags


def exclude_individual_flags(flags: VerifyFlags) -> set[VerifyFlags]:
    """Core's ExcludeIndividualFlags: ``flags`` less each one flag, trimmed."""
    return {less for f in SINGLE_FLAGS if (less := trim_flags(flags & ~f)) != flags}


class TxCase:
    def __init__(self, row: list[Any]) -> None:
        prevouts, raw, self.flag_names = row
        self.row = row
        self.tx = parse_transaction(bytes.fromhex(raw))
        spent = {}
        for prevout in prevouts:
            outpoint = OutPoint(txid=bytes.fromhex(prevout[0])[::-1], index=prevout[1] & 0xFFFFFFFF)
            amount = prevout[3] if len(prevout) > 3 else 0
            spent[outpoint] = TxOut(value=amount, script_pubkey=parse_asm(prevout[2]))
        self.spent_outputs = [spent[i.prevout] for i in self.tx.inputs]
        self.precomputed = PrecomputedTransaction(self.tx, self.spent_outputs)

    def flags(self) -> VerifyFlags:
        return VerifyFlags.from_names("" if self.flag_names == "NONE" else self.flag_names)

    def first_failure(self, flags: VerifyFlags) -> str | None:
        """Core's CheckTxScripts: the first failing input's error, or None."""
        for index in range(len(self.tx.inputs)):
            try:
                verify_input(self.tx, index, self.spent_outputs, flags, self.precomputed)
            except ScriptFailure as e:
                return f"input {index}: {e.rule}"
        return None

    def passes_check_transaction(self) -> bool:
        try:
            check_transaction(self.tx)
        except RuleViolation:
            return False
        return True


def _cases(name: str) -> list[TxCase]:
    return [TxCase(row) for row in core_vectors(name)]


def test_tx_valid_vectors() -> None:
    """All 121 tx_valid rows: valid with every flag but the excluded ones,
    with fewer flags, and not with any excluded flag turned back on."""
    cases = _cases("tx_valid.json")
    assert len(cases) == 121
    problems = []
    for case in cases:
        excluded = case.flags()
        enabled = ALL & ~excluded
        assert fill_flags(enabled) == enabled, f"bad test flags: {case.row}"
        if not case.passes_check_transaction():
            problems.append(f"fails CheckTransaction: {case.row}")
            continue
        if (failure := case.first_failure(enabled)) is not None:
            problems.append(f"{failure}: {case.row}")
            continue
        for flag in SINGLE_FLAGS:
            fewer = trim_flags(ALL & ~(excluded | flag))
            if (failure := case.first_failure(fewer)) is not None:
                problems.append(f"{failure} without {flag.name}: {case.row}")
        for less_excluded in exclude_individual_flags(excluded):
            if case.first_failure(ALL & ~less_excluded) is None:
                problems.append(f"valid with {(excluded & ~less_excluded)!r} on (flags not maximal): {case.row}")
    assert problems == [], "\n".join(problems)


def test_tx_invalid_vectors() -> None:
    """All 93 tx_invalid rows: BADTX ones fail CheckTransaction, the others
    fail script verification with their flags and with more, and each flag
    is needed."""
    cases = _cases("tx_invalid.json")
    assert len(cases) == 93
    problems = []
    for case in cases:
        if case.flag_names == "BADTX" or not case.passes_check_transaction():
            if case.flag_names != "BADTX" or case.passes_check_transaction():
                problems.append(f"CheckTransaction disagrees with {case.flag_names}: {case.row}")
            continue
        flags = case.flags()
        assert fill_flags(flags) == flags, f"bad test flags: {case.row}"
        if case.first_failure(flags) is None:
            problems.append(f"passes: {case.row}")
            continue
        for flag in SINGLE_FLAGS:
            if case.first_failure(fill_flags(flags | flag)) is None:
                problems.append(f"passes with {flag.name} added: {case.row}")
        for fewer in exclude_individual_flags(flags):
            if (failure := case.first_failure(fewer)) is not None:
                problems.append(f"{failure} with {fewer!r} (flags not minimal): {case.row}")
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("name", ["tx_valid.json", "tx_invalid.json"])
def test_every_vector_transaction_parses_and_reserializes(name: str) -> None:
    for case in _cases(name):
        assert parse_transaction(case.tx.serialize()) == case.tx
        assert isinstance(case.tx, Transaction)
