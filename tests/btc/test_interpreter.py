"""The interpreter's taproot paths with real signatures, and a fuzz test.

Core's script vectors hold only five tapscript rows; these tests sign real
spends (coincurve's BIP340 signer) and check BIP341/342's rules one by one:
CHECKSIGADD, the annex and OP_CODESEPARATOR in the signature hash, the
signature budget, OP_SUCCESSx, leaf versions, control blocks, key-path
hash types, unknown public key types. The fuzz test feeds random and
mutated scripts and witnesses through verify_script: the only exception
that may come out is ScriptFailure.
"""

from __future__ import annotations

import msgspec
import pytest
from coincurve import PrivateKey, PublicKeyXOnly
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synod.bitcoin import OutPoint, ScriptFailure, Transaction, TxIn, TxOut
from synod.bitcoin._hashes import hash160, sha256, tagged_hash
from synod.bitcoin._signatures import CURVE_ORDER, is_low_s, is_valid_signature_encoding, parse_der_lax, verify_ecdsa
from synod.bitcoin.asm import parse_asm
from synod.bitcoin.interpreter import (
    PrecomputedTransaction,
    SignatureChecker,
    TransactionChecker,
    VerifyFlags,
    verify_input,
    verify_script,
)
from synod.bitcoin.primitives import var_bytes
from synod.bitcoin.script import OP, push_bytes, script_num
from synod.bitcoin.sighash import taproot_sighash
from synod.bitcoin.taproot import NUMS_INTERNAL_KEY, TAPROOT_LEAF_TAPSCRIPT, output_key, tapleaf_hash

STANDARD = VerifyFlags.standard()
CONSENSUS = VerifyFlags.consensus()
KEYS = [PrivateKey(bytes([i + 1]) * 32) for i in range(3)]
XONLY = [PublicKeyXOnly.from_secret(k.secret).format() for k in KEYS]
NO_CODESEPARATOR = 0xFFFFFFFF


class TapSpend:
    """A one-leaf taproot output holding ``script``, and a transaction
    spending it by the script path."""

    def __init__(self, script: bytes, leaf_version: int = TAPROOT_LEAF_TAPSCRIPT) -> None:
        self.script = script
        self.leaf = tapleaf_hash(leaf_version, script)
        key, parity = output_key(NUMS_INTERNAL_KEY, self.leaf)
        self.control = bytes((leaf_version | parity,)) + NUMS_INTERNAL_KEY
        self.spent = TxOut(value=50_000, script_pubkey=bytes((OP._1, 32)) + key)
        self.tx = Transaction(
            version=2, locktime=0,
            inputs=(TxIn(prevout=OutPoint(txid=b"\x01" * 32, index=0), script_sig=b""),),
            outputs=(TxOut(value=40_000, script_pubkey=b"\x51"),),
        )

    def sign(self, key: PrivateKey, hash_type: int = 0, annex: bytes | None = None,
             codeseparator_pos: int = NO_CODESEPARATOR) -> bytes:
        annex_hash = sha256(var_bytes(annex)) if annex is not None else None
        msg = taproot_sighash(PrecomputedTransaction(self.tx, [self.spent]), 0, hash_type, annex_hash=annex_hash,
                              leaf_hash=self.leaf, codeseparator_pos=codeseparator_pos)
        assert msg is not None
        sig = key.sign_schnorr(msg)
        return sig if hash_type == 0 else sig + bytes((hash_type,))

    def run(self, items: list[bytes], flags: VerifyFlags = STANDARD, annex: bytes | None = None,
            control: bytes | None = None) -> str:
        witness = (*items, self.script, self.control if control is None else control)
        if annex is not None:
            witness += (annex,)
        txin = msgspec.structs.replace(self.tx.inputs[0], witness=witness)
        tx = msgspec.structs.replace(self.tx, inputs=(txin,))
        try:
            verify_input(tx, 0, [self.spent], flags)
        except ScriptFailure as e:
            return e.rule
        return "OK"


def _push(data: bytes) -> str:
    return "0x" + push_bytes(data).hex()


def _two_of_three() -> TapSpend:
    return TapSpend(parse_asm(f"{_push(XONLY[0])} CHECKSIG {_push(XONLY[1])} CHECKSIGADD {_push(XONLY[2])} "
                              "CHECKSIGADD 2 NUMEQUAL"))


def test_checksigadd_two_of_three() -> None:
    """BIP342: CHECKSIGADD counts valid signatures; an empty one counts
    nothing, a wrong non-empty one fails the script."""
    spend = _two_of_three()
    s0, s1, s2 = (spend.sign(k) for k in KEYS)
    assert spend.run([s2, b"", s0]) == "OK"
    assert spend.run([b"", s1, s0]) == "OK"
    assert spend.run([b"", b"", s0]) == "EVAL_FALSE"
    assert spend.run([s1, b"", s0]) == "SCHNORR_SIG"
    assert spend.run([s2, b"", s0[:63]]) == "SCHNORR_SIG_SIZE"


def test_hash_types_in_tapscript() -> None:
    """BIP341: an explicit hash type byte other than 0; SINGLE needs an output."""
    spend = _two_of_three()
    s0 = spend.sign(KEYS[0], 0x83)
    s2 = spend.sign(KEYS[2], 0x01)
    assert spend.run([s2, b"", s0]) == "OK"
    assert spend.run([s2, b"", spend.sign(KEYS[0]) + b"\x00"]) == "SCHNORR_SIG_HASHTYPE"
    assert spend.run([s2, b"", spend.sign(KEYS[0]) + b"\x84"]) == "SCHNORR_SIG_HASHTYPE"


def test_annex_is_signed() -> None:
    """BIP341: a last witness item starting 0x50 is the annex, and its hash
    is in every signature hash."""
    spend = TapSpend(parse_asm(f"{_push(XONLY[0])} CHECKSIG"))
    annex = b"\x50\x01\x02"
    assert spend.run([spend.sign(KEYS[0], annex=annex)], annex=annex) == "OK"
    assert spend.run([spend.sign(KEYS[0])], annex=annex) == "SCHNORR_SIG"
    assert spend.run([spend.sign(KEYS[0], annex=annex)]) == "SCHNORR_SIG"


def test_codeseparator_position_is_signed() -> None:
    """BIP342: the signature hash holds the opcode index of the last
    executed OP_CODESEPARATOR (pushes count as one opcode)."""
    spend = TapSpend(parse_asm(f"1 DROP CODESEPARATOR {_push(XONLY[0])} CHECKSIG"))
    assert spend.run([spend.sign(KEYS[0], codeseparator_pos=2)]) == "OK"
    assert spend.run([spend.sign(KEYS[0])]) == "SCHNORR_SIG"


def test_signature_budget() -> None:
    """BIP342: each non-empty signature checked costs 50 units of a budget
    of the witness size + 50."""
    check = f"DUP {_push(XONLY[0])} CHECKSIGVERIFY "
    few, many = TapSpend(parse_asm(check * 3)), TapSpend(parse_asm(check * 30))
    assert few.run([few.sign(KEYS[0])]) == "OK"
    assert many.run([many.sign(KEYS[0])]) == "TAPSCRIPT_VALIDATION_WEIGHT"
    assert many.run([many.sign(KEYS[0])], annex=b"\x50" + bytes(1000)) == "SCHNORR_SIG"   # budget grows, sig no longer signs


@pytest.mark.parametrize("success", [0x50, 0x62, 0x7E, 0x89, 0xBB, 0xFE])
def test_op_success_succeeds_at_once(success: int) -> None:
    """BIP342: an OP_SUCCESSx anywhere (even unexecuted, even after OP_RETURN)
    makes the script succeed, unless DISCOURAGE_OP_SUCCESS."""
    spend = TapSpend(parse_asm(f"RETURN 0 IF 0x{success:02x} ENDIF"))
    assert spend.run([], flags=CONSENSUS) == "OK"
    assert spend.run([], flags=STANDARD) == "DISCOURAGE_OP_SUCCESS"
    assert TapSpend(parse_asm(f"0x{success:02x} 0x4c")).run([], flags=CONSENSUS) == "OK"
    assert TapSpend(parse_asm(f"0x01 0x{success:02x}")).run([], flags=STANDARD) == "OK"   # (pushed data, not an opcode)
    assert TapSpend(bytes((0x4D, 0x01, success))).run([], flags=CONSENSUS) == "BAD_OPCODE"


def test_tapscript_rules_that_are_consensus() -> None:
    """BIP342: minimal IF arguments, no CHECKMULTISIG, no empty public key,
    no opcode or script size limit."""
    assert TapSpend(parse_asm("IF 1 ELSE 1 ENDIF")).run([b"\x02"], flags=CONSENSUS) == "TAPSCRIPT_MINIMALIF"
    assert TapSpend(parse_asm("1 1 1 CHECKMULTISIG")).run([], flags=CONSENSUS) == "TAPSCRIPT_CHECKMULTISIG"
    assert TapSpend(parse_asm("0 CHECKSIG NOT")).run([b""], flags=CONSENSUS) == "TAPSCRIPT_EMPTY_PUBKEY"
    assert TapSpend(parse_asm("NOP " * 300 + "1")).run([], flags=CONSENSUS) == "OK"
    assert TapSpend(parse_asm("NOP " * 10_001 + "1")).run([], flags=CONSENSUS) == "OK"


def test_unknown_public_key_types_succeed() -> None:
    """BIP342: a non-empty signature for a key that is neither empty nor 32
    bytes counts as valid (an upgrade hook), unless discouraged."""
    spend = TapSpend(parse_asm(f"{_push(bytes(33))} CHECKSIG"))
    assert spend.run([b"\x01"]) == "DISCOURAGE_UPGRADABLE_PUBKEYTYPE"
    assert spend.run([b"\x01"], flags=CONSENSUS) == "OK"
    assert spend.run([b""], flags=CONSENSUS) == "EVAL_FALSE"


def test_leaf_versions_and_control_blocks() -> None:
    """BIP341: unknown leaf versions succeed unless discouraged; the control
    block is 33 + 32k bytes and must commit to the script."""
    other = TapSpend(parse_asm("RETURN"), leaf_version=0xC2)
    assert other.run([]) == "DISCOURAGE_UPGRADABLE_TAPROOT_VERSION"
    assert other.run([], flags=CONSENSUS) == "OK"
    spend = TapSpend(parse_asm("1"))
    assert spend.run([]) == "OK"
    assert spend.run([], control=spend.control + bytes(31)) == "TAPROOT_WRONG_CONTROL_SIZE"
    assert spend.run([], control=spend.control + bytes(32)) == "WITNESS_PROGRAM_MISMATCH"
    assert spend.run([], control=bytes((spend.control[0] ^ 1,)) + spend.control[1:]) == "WITNESS_PROGRAM_MISMATCH"
    assert spend.run([], control=spend.control[:1] + XONLY[0]) == "WITNESS_PROGRAM_MISMATCH"


def _tweaked_secret(key: PrivateKey) -> PrivateKey:
    """BIP341 taproot_tweak_seckey with no script tree."""
    secret = key.to_int()
    if PublicKeyXOnly.from_secret(key.secret).parity:   # an odd-Y internal key signs as its negation
        secret = CURVE_ORDER - secret
    tweak = int.from_bytes(tagged_hash("TapTweak", XONLY[KEYS.index(key)]), "big")
    return PrivateKey.from_int((secret + tweak) % CURVE_ORDER)


def test_key_path_signatures() -> None:
    """BIP341 key path: the tweaked key signs; hash type 0 is 64 bytes, any
    other is explicit; SINGLE without a matching output has no sighash."""
    key, _ = output_key(XONLY[0])
    spent = TxOut(value=10_000, script_pubkey=bytes((OP._1, 32)) + key)
    tx = TapSpend(b"").tx
    pre = PrecomputedTransaction(tx, [spent])
    checker = TransactionChecker(pre, 0, spent.value)
    tweaked = _tweaked_secret(KEYS[0])

    def run(sig: bytes) -> str:
        try:
            verify_script(b"", spent.script_pubkey, [sig], STANDARD, checker)
        except ScriptFailure as e:
            return e.rule
        return "OK"

    msg, msg_all = taproot_sighash(pre, 0, 0), taproot_sighash(pre, 0, 1)
    assert msg is not None
    assert msg_all is not None
    assert run(tweaked.sign_schnorr(msg)) == "OK"
    assert run(tweaked.sign_schnorr(msg_all) + b"\x01") == "OK"
    assert run(KEYS[0].sign_schnorr(msg)) == "SCHNORR_SIG"
    assert run(tweaked.sign_schnorr(msg_all)) == "SCHNORR_SIG"
    assert run(tweaked.sign_schnorr(msg) + b"\x00") == "SCHNORR_SIG_HASHTYPE"
    assert run(b"") == "SCHNORR_SIG_SIZE"
    no_outputs = PrecomputedTransaction(msgspec.structs.replace(tx, outputs=()), [spent])
    assert taproot_sighash(no_outputs, 0, 3) is None


def test_taproot_inside_p2sh_is_not_taproot() -> None:
    """BIP341: a v1 32-byte program inside P2SH is left to future rules: it
    passes whatever its witness, unless upgradable programs are discouraged."""
    program = bytes((OP._1, 32)) + b"\x01" * 32   # (a true top item after the redeem script runs)
    script_pubkey = bytes((OP.HASH160, 20)) + hash160(program) + bytes((OP.EQUAL,))
    verify_script(push_bytes(program), script_pubkey, [b"\x01"], CONSENSUS, SignatureChecker())
    with pytest.raises(ScriptFailure, match="DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM"):
        verify_script(push_bytes(program), script_pubkey, [b"\x01"], STANDARD, SignatureChecker())


# -- fuzz: nothing but ScriptFailure comes out -----------------------------------------------------

_NUMBERS = [0, 1, -1, 16, 17, 127, 128, 255, 256, 0x7FFFFFFF, -0x7FFFFFFF, 0xFFFFFFFF, 2**39 - 1]
_ITEMS = st.one_of(
    st.binary(max_size=80),
    st.sampled_from([b"", b"\x80", b"\x00\x80", b"\x01", b"\x81", bytes(521), XONLY[0], b"\x02" + XONLY[0],
                     bytes.fromhex("300602010102010101"), b"\x50", b"\x50\x00"]),
    st.sampled_from(_NUMBERS).map(script_num),
)
_OPS = st.lists(
    st.one_of(st.integers(0x4F, 0xFF).map(lambda b: bytes((b,))), _ITEMS.map(push_bytes),
              st.sampled_from(_NUMBERS).map(lambda n: push_bytes(script_num(n)))),
    max_size=40,
).map(b"".join)
_SCRIPTS = st.one_of(_OPS, st.binary(max_size=120))
_FLAGS = st.integers(0, int(VerifyFlags.all())).map(VerifyFlags)


def _valid_combination(flags: VerifyFlags) -> VerifyFlags:
    if flags & VerifyFlags.CLEANSTACK:
        flags |= VerifyFlags.WITNESS
    if flags & VerifyFlags.WITNESS:
        flags |= VerifyFlags.P2SH
    return flags


@st.composite
def _spends(draw: st.DrawFn) -> tuple[bytes, bytes, list[bytes]]:
    """A scriptSig, the scriptPubKey it spends and a witness, in one of the
    shapes the interpreter treats differently."""
    inner = draw(_SCRIPTS)
    items = draw(st.lists(_ITEMS, max_size=6))
    shape = draw(st.sampled_from(["bare", "p2sh", "p2wsh", "p2sh-p2wsh", "p2wpkh", "taproot", "tapscript"]))
    if shape == "bare":
        return draw(_SCRIPTS), inner, items
    if shape == "p2sh":
        return b"".join(map(push_bytes, [*items, inner])), bytes((OP.HASH160, 20)) + hash160(inner) + b"\x87", []
    p2wsh = b"\x00\x20" + sha256(inner)
    if shape == "p2wsh":
        return b"", p2wsh, [*items, inner]
    if shape == "p2sh-p2wsh":
        return push_bytes(p2wsh), bytes((OP.HASH160, 20)) + hash160(p2wsh) + b"\x87", [*items, inner]
    if shape == "p2wpkh":
        return b"", b"\x00\x14" + hash160(items[-1] if items else b""), items
    spend = TapSpend(inner, leaf_version=draw(st.sampled_from([TAPROOT_LEAF_TAPSCRIPT, 0xC2])))
    if shape == "taproot":
        return b"", spend.spent.script_pubkey, items
    annex = draw(st.sampled_from([[], [b"\x50"], [b"\x50" + bytes(10)]]))
    return b"", spend.spent.script_pubkey, [*items, inner, spend.control, *annex]


def _verify(script_sig: bytes, script_pubkey: bytes, witness: list[bytes], flags: VerifyFlags) -> None:
    tx = TapSpend(b"").tx
    spent = TxOut(value=1000, script_pubkey=script_pubkey)
    checker = TransactionChecker(PrecomputedTransaction(tx, [spent]), 0, spent.value)
    try:
        verify_script(script_sig, script_pubkey, witness, _valid_combination(flags), checker)
    except ScriptFailure:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spend=_spends(), flags=_FLAGS)
def test_random_scripts_only_ever_raise_script_failure(spend: tuple[bytes, bytes, list[bytes]],
                                                       flags: VerifyFlags) -> None:
    _verify(*spend, flags)


def _vector_spends() -> list[tuple[bytes, bytes, list[bytes], VerifyFlags]]:
    from tests.btc.test_script_vectors import _cases
    return [(c.script_sig, c.script_pubkey, c.witness, c.flags) for c in _cases()]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_vectors_only_ever_raise_script_failure(data: st.DataObject) -> None:
    """Core's vectors with one part mutated: a byte changed, inserted or cut."""
    script_sig, script_pubkey, witness, flags = data.draw(st.sampled_from(_VECTOR_SPENDS))
    parts = [script_sig, script_pubkey, *witness]
    which = data.draw(st.integers(0, len(parts) - 1))
    part = bytearray(parts[which])
    pos = data.draw(st.integers(0, len(part)))
    kind = data.draw(st.sampled_from(["set", "insert", "cut"]))
    byte = data.draw(st.integers(0, 255))
    if kind == "insert" or not part or pos == len(part):
        part.insert(pos, byte)
    elif kind == "set":
        part[pos] = byte
    else:
        del part[pos:]
    parts[which] = bytes(part)
    _verify(parts[0], parts[1], parts[2:], data.draw(st.sampled_from([flags, VerifyFlags.standard()])))


_VECTOR_SPENDS = _vector_spends()


@pytest.mark.parametrize(("der", "expected"), [
    ("3006020101020101", (1, 1)),
    ("30060201010201010000", (1, 1)),                  # bytes after S are ignored
    ("3082ffff020101020101", (1, 1)),                  # a long sequence length is skipped, unread
    ("300602810101028101 01".replace(" ", ""), (1, 1)),  # long-form integer lengths
    ("30060284000000010102 0101".replace(" ", ""), (1, 1)),  # leading zero length bytes are dropped
    ("3006028401000000010201 01".replace(" ", ""), None),  # a 4-byte integer length is too long
    ("30060200020101", (0, 1)),                        # an empty R is zero
    ("3026022101" + "00" * 32 + "020101", (0, 0)),     # R of 33 significant bytes: overflow
    ("30", None),
    ("3106020101020101", None),
    ("300602020101", None),                            # R runs past the end
])
def test_lax_der_parsing(der: str, expected: tuple[int, int] | None) -> None:
    """Core's ecdsa_signature_parse_der_lax, which every ECDSA signature
    goes through (lax_der_parsing.c)."""
    assert parse_der_lax(bytes.fromhex(der)) == expected


def test_strict_der_and_low_s() -> None:
    """BIP66 strict DER (with the hash-type byte) and BIP146 low S."""
    sig = KEYS[0].sign(bytes(32), hasher=None)
    assert is_valid_signature_encoding(sig + b"\x01")
    assert not is_valid_signature_encoding(sig)                      # (the length no longer matches)
    assert not is_valid_signature_encoding(b"\x30\x06\x02\x01\x81\x02\x01\x01\x01")   # negative R
    assert not is_valid_signature_encoding(b"\x30\x07\x02\x02\x00\x01\x02\x01\x01\x01")   # padded R
    r, s = parse_der_lax(sig) or (0, 0)
    assert s <= CURVE_ORDER // 2
    high = _der(r, CURVE_ORDER - s)
    assert is_low_s(sig)
    assert not is_low_s(high)
    assert verify_ecdsa(high, KEYS[0].public_key.format(), bytes(32))   # high S still verifies (normalized)


def _der(r: int, s: int) -> bytes:
    def integer(v: int) -> bytes:
        b = v.to_bytes(33, "big").lstrip(b"\x00")
        b = b"\x00" + b if b[0] & 0x80 else b
        return b"\x02" + bytes((len(b),)) + b
    body = integer(r) + integer(s)
    return b"\x30" + bytes((len(body),)) + body


def test_large_scripts_decode_as_they_run() -> None:
    """A script too large to keep decoded is read as it runs: a push past
    its end still fails only when reached (BAD_OPCODE), after any earlier
    failure."""
    checker = SignatureChecker()
    big = (push_bytes(bytes(300)) + bytes((OP.DROP,))) * 8   # 2.4 kB in 16 operations
    verify_script(b"", big + b"\x51", [], CONSENSUS, checker)
    with pytest.raises(ScriptFailure, match="BAD_OPCODE"):
        verify_script(b"", big + b"\x51\x4c", [], CONSENSUS, checker)
    with pytest.raises(ScriptFailure, match="OP_RETURN"):
        verify_script(b"", big + b"\x6a\x4c", [], CONSENSUS, checker)
    with pytest.raises(ScriptFailure, match="OP_COUNT"):
        verify_script(b"", bytes((OP.NOP,)) * 202 + b"\x51", [], CONSENSUS, checker)
