"""Headers in the context of their chain (whitepaper section 4; Core's
``ContextualCheckBlockHeader``), proven on 20,000 real mainnet headers:
every header links, meets its proof of work, is later than the median
time past of the 11 before it, and carries exactly the bits the retarget
computes. Tampered headers are rejected naming the rule."""

from __future__ import annotations

from functools import cache

import msgspec
import pytest
from tests.btc.conftest import bitcoin_data

from synod.bitcoin import BlockHeader, RuleViolation, parse_header
from synod.bitcoin import constants as C
from synod.bitcoin.chain import HeaderChain
from synod.bitcoin.pow import MAINNET, REGTEST, block_work, check_proof_of_work, target_from_bits
from synod.bitcoin.validation import contextual_check_block_header, median_time_past


@cache
def _headers(name: str) -> tuple[BlockHeader, ...]:
    lines = bitcoin_data(f"headers/{name}").read_text().split()
    return tuple(parse_header(bytes.fromhex(line)) for line in lines)


def _rule(call) -> str:   # type: ignore[no-untyped-def]
    with pytest.raises(RuleViolation) as e:
        call()
    return e.value.rule


def test_mainnet_headers_0_to_9999_all_validate_from_genesis() -> None:
    headers = _headers("mainnet_0-9999.hex.txt")
    assert len(headers) == 10_000
    assert headers[0] == MAINNET.genesis
    chain = HeaderChain(MAINNET)
    for header in headers[1:]:
        chain.accept_header(header, adjusted_time_s=header.time)
    assert chain.tip.height == 9999
    assert chain.tip.hash == headers[-1].hash
    assert [e.hash for e in chain.active] == [h.hash for h in headers]
    assert chain.tip.chain_work == 10_000 * block_work(0x1D00FFFF)
    # the four retargets of the period all clamp to the minimum difficulty
    assert {headers[h].bits for h in (2016, 4032, 6048, 8064)} == {0x1D00FFFF}
    # median time past, recomputed independently for every header
    for height in range(1, 10_000):
        window = sorted(h.time for h in headers[max(0, height - 11):height])
        assert headers[height].time > window[len(window) // 2]
        assert chain.active[height - 1].median_time_past_s == window[len(window) // 2]


def test_mainnet_headers_30000_to_39999_validate_with_the_first_difficulty_rises() -> None:
    """The segment starts at 30000 without its parents. Its first retarget
    (30240) needs the times of 28224..30239, which the data lacks, so the
    headers up to 30240 root the chain as a checkpoint (linked and proof of
    work checked); their median time past and unchanged bits are checked
    here from the 12th header on. Every later header is accepted by the
    chain in full context, the retargets at 32256, 34272, 36288 and 38304
    computed from the segment's own headers."""
    headers = _headers("mainnet_30000-39999.hex.txt")
    assert len(headers) == 10_000
    checkpoint = headers[:241]
    chain = HeaderChain.from_checkpoint(MAINNET, checkpoint, 30000)
    for i in range(11, 241):
        expected_bits = headers[i].bits if i == 240 else headers[i - 1].bits
        prev_mtp = median_time_past([h.time for h in headers[i - 11:i]])
        contextual_check_block_header(headers[i], height=30000 + i, expected_bits=expected_bits,
                                      prev_median_time_past_s=prev_mtp, adjusted_time_s=headers[i].time, params=MAINNET)
    for header in headers[241:]:
        chain.accept_header(header, adjusted_time_s=header.time)
    assert chain.tip.height == 39999
    assert chain.tip.hash == headers[-1].hash
    bits_at = {height: chain.active[height - 30000].header.bits for height in (32256, 34272, 36288, 38304)}
    assert bits_at == {32256: 0x1D00D86A, 34272: 0x1D00C428, 36288: 0x1D00BE71, 38304: 0x1D008CC3}
    assert chain.tip.chain_work > 9759 * block_work(0x1D00FFFF)


def test_a_checkpoint_that_does_not_link_is_rejected() -> None:
    headers = _headers("mainnet_30000-39999.hex.txt")
    assert _rule(lambda: HeaderChain.from_checkpoint(MAINNET, [headers[0], headers[2]], 30000)) == "prev-blk-not-found"


@pytest.mark.parametrize("field", ["time", "bits", "nonce", "prev_block", "merkle_root", "version"])
def test_a_tampered_mainnet_header_loses_its_proof_of_work(field: str) -> None:
    """Any change to a real header changes its hash: high-hash, before any other rule."""
    headers = _headers("mainnet_0-9999.hex.txt")
    chain = HeaderChain(MAINNET)
    for header in headers[1:2017]:
        chain.accept_header(header, adjusted_time_s=header.time)
    real = headers[2017]
    changes = {"time": real.time + 1, "bits": 0x1D00FFFE, "nonce": real.nonce ^ 1, "prev_block": headers[2015].hash,
               "merkle_root": bytes(32), "version": 2}
    tampered = msgspec.structs.replace(real, **{field: changes[field]})
    assert _rule(lambda: chain.accept_header(tampered, adjusted_time_s=real.time)) == "high-hash"
    assert chain.tip.height == 2016
    assert chain.accept_header(real, adjusted_time_s=real.time).height == 2017


def test_contextual_rules_on_a_real_header() -> None:
    """Header 2016 (a retarget boundary) in altered contexts: each rule names itself."""
    headers = _headers("mainnet_0-9999.hex.txt")
    header = headers[2016]
    mtp = median_time_past([h.time for h in headers[2005:2016]])
    good = dict(height=2016, expected_bits=0x1D00FFFF, prev_median_time_past_s=mtp, adjusted_time_s=header.time,
                params=MAINNET)
    contextual_check_block_header(header, **good)
    contextual_check_block_header(header, **{**good, "adjusted_time_s": header.time - C.MAX_FUTURE_BLOCK_TIME_S})

    def rule(**change: object) -> str:
        return _rule(lambda: contextual_check_block_header(header, **{**good, **change}))

    assert rule(expected_bits=0x1D00D86A) == "bad-diffbits"
    assert rule(prev_median_time_past_s=header.time) == "time-too-old"
    assert rule(adjusted_time_s=header.time - C.MAX_FUTURE_BLOCK_TIME_S - 1) == "time-too-new"
    assert rule(height=MAINNET.bip34_height) == "bad-version"            # version 1 after BIP34
    v2 = msgspec.structs.replace(header, version=2)
    contextual_check_block_header(v2, **{**good, "height": MAINNET.bip34_height})
    assert _rule(lambda: contextual_check_block_header(v2, **{**good, "height": MAINNET.bip66_height})) == "bad-version"
    v3 = msgspec.structs.replace(header, version=3)
    contextual_check_block_header(v3, **{**good, "height": MAINNET.bip65_height - 1})
    assert _rule(lambda: contextual_check_block_header(v3, **{**good, "height": MAINNET.bip65_height})) == "bad-version"


# -- regtest: headers mined here, so a changed header can keep its proof of work -------------------

def _mine(prev: BlockHeader, *, dt_s: int = 600, version: int = 4, bits: int = 0x207FFFFF, salt: int = 0) -> BlockHeader:
    header = BlockHeader(version=version, prev_block=prev.hash, merkle_root=salt.to_bytes(32, "little"),
                         time=prev.time + dt_s, bits=bits, nonce=0)
    target = target_from_bits(bits)[0]
    while int.from_bytes(header.hash, "little") > target:
        header = msgspec.structs.replace(header, nonce=header.nonce + 1)
    check_proof_of_work(header.hash, bits, REGTEST.pow_limit)
    return header


def _regtest_chain(length: int) -> tuple[HeaderChain, list[BlockHeader]]:
    chain = HeaderChain(REGTEST)
    headers = [REGTEST.genesis]
    for _ in range(length):
        headers.append(_mine(headers[-1]))
        chain.accept_header(headers[-1], adjusted_time_s=headers[-1].time)
    return chain, headers


def test_regtest_headers_breaking_each_contextual_rule() -> None:
    chain, headers = _regtest_chain(12)
    tip = headers[-1]
    now_s = tip.time + 600
    mtp = chain.tip.median_time_past_s

    def rule(header: BlockHeader) -> str:
        return _rule(lambda: chain.accept_header(header, adjusted_time_s=now_s))

    assert rule(_mine(tip, dt_s=mtp - tip.time)) == "time-too-old"                       # time == median time past
    assert rule(_mine(tip, dt_s=600 + C.MAX_FUTURE_BLOCK_TIME_S + 1)) == "time-too-new"
    assert rule(_mine(tip, bits=0x207FFFFE)) == "bad-diffbits"
    assert rule(_mine(tip, version=3)) == "bad-version"                                    # BIP65 from height 1 on regtest
    orphan = _mine(msgspec.structs.replace(tip, nonce=tip.nonce + 1))
    assert rule(orphan) == "prev-blk-not-found"
    assert chain.tip.hash == tip.hash
    ok = _mine(tip, dt_s=mtp - tip.time + 1)                                               # one second past it: accepted
    assert chain.accept_header(ok, adjusted_time_s=now_s).height == 13
    assert chain.accept_header(ok, adjusted_time_s=now_s) is chain.tip                      # a known header: as it is


def test_the_tip_is_the_branch_with_most_work() -> None:
    chain, main = _regtest_chain(3)
    fork = [main[1]]
    for i in range(3):
        fork.append(_mine(fork[-1], salt=100 + i))
        chain.accept_header(fork[-1], adjusted_time_s=fork[-1].time)
        assert chain.tip.hash == (main[3].hash if i < 2 else fork[-1].hash)   # a tie keeps the first seen
    assert chain.tip.height == 4
    assert [e.hash for e in chain.active] == [main[0].hash, main[1].hash, *(h.hash for h in fork[1:])]
    old_tip = chain.get(main[3].hash)
    assert old_tip is not None
    assert chain.ancestor(old_tip, 2).hash == main[2].hash
    assert chain.ancestor(old_tip, 1).hash == main[1].hash
    assert chain.ancestor(chain.tip, 2).hash == fork[1].hash
