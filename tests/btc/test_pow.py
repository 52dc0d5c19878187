"""Proof of work (whitepaper section 4): the compact target encoding, work,
and the 2016-block retarget, against Bitcoin Core's own test values
(``arith_uint256_tests.cpp``, ``pow_tests.cpp``) and real mainnet headers."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.btc.conftest import bitcoin_data

from synod.bitcoin import RuleViolation, hash_hex, parse_header
from synod.bitcoin import constants as C
from synod.bitcoin.pow import (
    MAINNET,
    REGTEST,
    bits_from_target,
    block_work,
    calculate_next_work_required,
    check_proof_of_work,
    next_work_required,
    target_from_bits,
)

# Core's bignum_SetCompact cases: bits -> (target, canonical GetCompact(negative), negative, overflow)
SET_COMPACT_CASES = [
    (0x00000000, 0, 0x00000000, False, False),
    (0x00123456, 0, 0x00000000, False, False),
    (0x01003456, 0, 0x00000000, False, False),
    (0x02000056, 0, 0x00000000, False, False),
    (0x03000000, 0, 0x00000000, False, False),
    (0x04000000, 0, 0x00000000, False, False),
    (0x00923456, 0, 0x00000000, False, False),
    (0x01803456, 0, 0x00000000, False, False),
    (0x02800056, 0, 0x00000000, False, False),
    (0x03800000, 0, 0x00000000, False, False),
    (0x04800000, 0, 0x00000000, False, False),
    (0x01123456, 0x12, 0x01120000, False, False),
    (0x01FEDCBA, 0x7E, 0x01FE0000, True, False),
    (0x02123456, 0x1234, 0x02123400, False, False),
    (0x03123456, 0x123456, 0x03123456, False, False),
    (0x04123456, 0x12345600, 0x04123456, False, False),
    (0x04923456, 0x12345600, 0x04923456, True, False),
    (0x05009234, 0x92340000, 0x05009234, False, False),
    (0x20123456, 0x123456 << (8 * 29), 0x20123456, False, False),
]


@pytest.mark.parametrize(("bits", "target", "compact", "negative", "overflow"), SET_COMPACT_CASES)
def test_compact_decoding_and_re_encoding_match_core(bits: int, target: int, compact: int, negative: bool,
                                                     overflow: bool) -> None:
    assert target_from_bits(bits) == (target, negative, overflow)
    assert bits_from_target(target, negative) == compact


def test_compact_overflow_is_reported() -> None:
    """0xff123456 is a size of 255 bytes: no 256-bit number, as Core says."""
    _, negative, overflow = target_from_bits(0xFF123456)
    assert (negative, overflow) == (False, True)
    assert target_from_bits(0x23000001)[2] is True     # 1 << 256: overflows by one byte
    assert target_from_bits(0x22000001)[2] is False    # 1 << 248 fits
    assert target_from_bits(0x2200FFFF)[2] is True     # mantissa > 0xff at size 34
    assert target_from_bits(0x2100FFFF)[2] is False
    assert target_from_bits(0x21010000)[2] is True     # mantissa > 0xffff at size 33


def test_a_mantissa_never_carries_the_sign_bit() -> None:
    """GetCompact moves a mantissa with bit 23 set up a byte (Core: 0x80 -> 0x02008000)."""
    assert bits_from_target(0x80) == 0x02008000
    assert bits_from_target(0x800000) == 0x04008000
    assert bits_from_target(C.POW_LIMIT) == 0x1D00FFFF
    assert bits_from_target(C.REGTEST_POW_LIMIT) == 0x207FFFFF


def test_the_genesis_blocks_meet_their_targets() -> None:
    assert hash_hex(MAINNET.genesis_hash) == "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
    assert hash_hex(REGTEST.genesis_hash) == "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    check_proof_of_work(MAINNET.genesis_hash, MAINNET.genesis.bits, MAINNET.pow_limit)
    check_proof_of_work(REGTEST.genesis_hash, REGTEST.genesis.bits, REGTEST.pow_limit)


@pytest.mark.parametrize("bits", [0x1D80FFFF, 0x1D000000, 0xFF123456, 0x1D01FFFF, 0x207FFFFF, 0x00000000])
def test_bits_out_of_range_are_high_hash(bits: int) -> None:
    """Negative, zero, overflowing or above the pow limit (CheckProofOfWork's range check)."""
    with pytest.raises(RuleViolation) as e:
        check_proof_of_work(bytes(32), bits, MAINNET.pow_limit)
    assert e.value.rule == "high-hash"


def test_a_hash_above_its_target_is_high_hash() -> None:
    target = target_from_bits(0x1D00FFFF)[0]
    check_proof_of_work(target.to_bytes(32, "little"), 0x1D00FFFF, MAINNET.pow_limit)   # equal: valid
    with pytest.raises(RuleViolation) as e:
        check_proof_of_work((target + 1).to_bytes(32, "little"), 0x1D00FFFF, MAINNET.pow_limit)
    assert e.value.rule == "high-hash"


def test_block_work_is_two_to_the_256_over_target_plus_one() -> None:
    """GetBlockProof: the genesis block's work is 0x100010001 (Core's chainwork at height 0)."""
    assert block_work(0x1D00FFFF) == 0x100010001
    assert block_work(0x207FFFFF) == 2
    assert block_work(0x1D80FFFF) == 0   # negative
    assert block_work(0xFF123456) == 0   # overflow
    assert block_work(0x00000000) == 0   # zero


# Core's pow_tests: (first block time, last height, last time, last bits) -> the next bits
CORE_RETARGETS = [
    pytest.param(1261130161, 32255, 1262152739, 0x1D00FFFF, 0x1D00D86A, id="get_next_work"),
    pytest.param(1231006505, 2015, 1233061996, 0x1D00FFFF, 0x1D00FFFF, id="pow_limit"),
    pytest.param(1279008237, 68543, 1279297671, 0x1C05A3F4, 0x1C0168FD, id="lower_limit_actual"),
    pytest.param(1263163443, 46367, 1269211443, 0x1C387F6F, 0x1D00E1FD, id="upper_limit_actual"),
]


@pytest.mark.parametrize(("first_time", "last_height", "last_time", "last_bits", "expected"), CORE_RETARGETS)
def test_retarget_matches_core(first_time: int, last_height: int, last_time: int, last_bits: int, expected: int) -> None:
    assert (last_height + 1) % MAINNET.difficulty_adjustment_interval == 0
    assert calculate_next_work_required(last_bits, last_time, first_time, MAINNET) == expected


def test_retarget_from_real_headers_equals_the_next_periods_bits() -> None:
    """Heights 30240..32255 took 1,022,578 s instead of 1,209,600: block 32256
    carries the first difficulty increase, 1d00d86a."""
    lines = bitcoin_data("headers/mainnet_30000-39999.hex.txt").read_text().split()
    headers = {30000 + i: parse_header(bytes.fromhex(line)) for i, line in enumerate(lines)}
    for boundary in (32256, 34272, 36288, 38304):
        first, last = headers[boundary - 2016], headers[boundary - 1]
        assert calculate_next_work_required(last.bits, last.time, first.time, MAINNET) == headers[boundary].bits
        assert next_work_required(boundary - 1, headers[boundary].time, MAINNET, headers.__getitem__) == headers[boundary].bits
        assert next_work_required(boundary, headers[boundary + 1].time, MAINNET, headers.__getitem__) == headers[boundary].bits
    assert headers[32256].bits == 0x1D00D86A


def test_the_timespan_is_clamped_to_a_quarter_and_four_times_two_weeks() -> None:
    two_weeks = C.POW_TARGET_TIMESPAN_S
    bits = 0x1C05A3F4
    target = target_from_bits(bits)[0]
    assert calculate_next_work_required(bits, 1 + 0, 0, MAINNET) == bits_from_target(target * (two_weeks // 4) // two_weeks)
    assert (calculate_next_work_required(bits, 10 * two_weeks, 0, MAINNET)
            == calculate_next_work_required(bits, 4 * two_weeks, 0, MAINNET))
    assert calculate_next_work_required(0x1D00FFFF, 10 * two_weeks, 0, MAINNET) == 0x1D00FFFF   # capped at the limit


def test_regtest_never_retargets_and_allows_min_difficulty_after_twenty_minutes() -> None:
    assert calculate_next_work_required(0x207FFFFF, 1, 0, REGTEST) == 0x207FFFFF
    easier = msgspec.structs.replace(REGTEST.genesis, bits=0x1F00FFFF)
    chain = {0: REGTEST.genesis, 1: easier}
    # within 20 minutes: the bits of the last block not mined at min difficulty (block 1's)
    assert next_work_required(1, easier.time + 60, REGTEST, chain.__getitem__) == 0x1F00FFFF
    assert next_work_required(1, easier.time + 20 * 60 + 1, REGTEST, chain.__getitem__) == 0x207FFFFF


def test_mainnet_bits_do_not_change_inside_a_period() -> None:
    prev = msgspec.structs.replace(MAINNET.genesis, bits=0x1C05A3F4)
    assert next_work_required(5, prev.time + 10**6, MAINNET, lambda h: prev) == 0x1C05A3F4


@given(st.integers(min_value=0, max_value=(1 << 256) - 1))
def test_compact_form_keeps_a_targets_top_bytes(target: int) -> None:
    """Encoding truncates to the most significant 23-bit mantissa; decoding
    gives that truncation back, never negative or overflowing."""
    bits = bits_from_target(target)
    decoded, negative, overflow = target_from_bits(bits)
    assert not negative
    assert not overflow
    assert decoded <= target
    size = bits >> 24
    assert target >> max(0, 8 * (size - 3)) == decoded >> max(0, 8 * (size - 3))
    assert bits_from_target(decoded) == bits
