"""What a script is evaluated under: verification flags, the signature
version, and the per-input execution data taproot signatures hash.

Flags use Core's bit positions (``script/interpreter.h``), so a flag set
reads the same in both. Evaluation works on plain ints: the interpreter
converts a :class:`VerifyFlags` once per input.
"""

from __future__ import annotations

import enum

from synod.core.errors import LocalProtocolError

__all__ = ["VerifyFlags", "SigVersion", "ExecData", "CODESEPARATOR_NONE", "VALIDATION_WEIGHT_PER_SIGOP_PASSED",
           "VALIDATION_WEIGHT_OFFSET"]

CODESEPARATOR_NONE = 0xFFFFFFFF          # BIP342: no OP_CODESEPARATOR executed
VALIDATION_WEIGHT_PER_SIGOP_PASSED = 50  # BIP342: budget units per non-empty signature checked
VALIDATION_WEIGHT_OFFSET = 50            # BIP342: budget = witness size in bytes + this


class VerifyFlags(enum.IntFlag):
    """Script verification flags (Core's ``SCRIPT_VERIFY_*``), each a rule
    switched on. Consensus at the chain tip: P2SH, DERSIG, NULLDUMMY,
    CHECKLOCKTIMEVERIFY, CHECKSEQUENCEVERIFY, WITNESS, TAPROOT; the others
    are policy. WITNESS requires P2SH, CLEANSTACK requires WITNESS."""

    NONE = 0
    P2SH = 1 << 0                       # BIP16
    STRICTENC = 1 << 1                  # defined hash types, 02/03/04 public keys
    DERSIG = 1 << 2                     # BIP66 strict DER
    LOW_S = 1 << 3                      # BIP146
    NULLDUMMY = 1 << 4                  # BIP147
    SIGPUSHONLY = 1 << 5
    MINIMALDATA = 1 << 6
    DISCOURAGE_UPGRADABLE_NOPS = 1 << 7
    CLEANSTACK = 1 << 8
    CHECKLOCKTIMEVERIFY = 1 << 9        # BIP65
    CHECKSEQUENCEVERIFY = 1 << 10       # BIP112
    WITNESS = 1 << 11                   # BIP141/143
    DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM = 1 << 12
    MINIMALIF = 1 << 13
    NULLFAIL = 1 << 14                  # BIP146
    WITNESS_PUBKEYTYPE = 1 << 15
    CONST_SCRIPTCODE = 1 << 16
    TAPROOT = 1 << 17                   # BIP341/342
    DISCOURAGE_UPGRADABLE_TAPROOT_VERSION = 1 << 18
    DISCOURAGE_OP_SUCCESS = 1 << 19
    DISCOURAGE_UPGRADABLE_PUBKEYTYPE = 1 << 20

    @classmethod
    def from_names(cls, names: str) -> VerifyFlags:
        """Flags from Core's comma-separated names (``"P2SH,WITNESS"``;
        ``""`` and ``"NONE"`` are no flags).

        Raises:
            LocalProtocolError: an unknown name.
        """
        flags = cls.NONE
        for name in filter(None, names.split(",")):
            if name not in cls.__members__:
                raise LocalProtocolError(f"unknown script verification flag {name!r}")
            flags |= cls[name]
        return flags

    @classmethod
    def consensus(cls) -> VerifyFlags:
        """Every soft fork's rule (Core's flags for a block at the tip)."""
        return (cls.P2SH | cls.DERSIG | cls.NULLDUMMY | cls.CHECKLOCKTIMEVERIFY | cls.CHECKSEQUENCEVERIFY | cls.WITNESS
                | cls.TAPROOT)

    @classmethod
    def standard(cls) -> VerifyFlags:
        """Core's ``STANDARD_SCRIPT_VERIFY_FLAGS``: consensus plus relay
        policy (every flag but SIGPUSHONLY, which only tests use)."""
        return cls.all() & ~cls.SIGPUSHONLY

    @classmethod
    def all(cls) -> VerifyFlags:
        flags = cls.NONE
        for member in cls:
            flags |= member
        return flags


class SigVersion(enum.IntEnum):
    """Which rules a script runs under (Core's ``SigVersion``)."""

    BASE = 0          # scriptSig, scriptPubKey, P2SH redeem script
    WITNESS_V0 = 1    # BIP141/143: P2WPKH, P2WSH
    TAPROOT = 2       # BIP341 key path (no script)
    TAPSCRIPT = 3     # BIP342: leaf version 0xc0


class ExecData:
    """Per-input state taproot signature hashes read (Core's
    ``ScriptExecutionData``): the annex's hash if any, the tapleaf hash and
    the last executed OP_CODESEPARATOR's opcode index (script path), and the
    BIP342 signature budget left.

    Invariant: validation_weight_left >= 0 while a tapscript runs.
    """

    __slots__ = ("annex_hash", "tapleaf_hash", "codeseparator_pos", "validation_weight_left")

    def __init__(self) -> None:
        self.annex_hash: bytes | None = None
        self.tapleaf_hash: bytes | None = None
        self.codeseparator_pos = CODESEPARATOR_NONE
        self.validation_weight_left = 0
