"""Proof of work: targets, their compact form, work, and the retarget.

Whitepaper section 4: a block is valid work when its header's double
SHA-256, read as a 256-bit little-endian number, is at most the *target*.
The header carries the target in 32 bits, the compact form ``bits``
(Core's ``arith_uint256::SetCompact``/``GetCompact``): the top byte is a
size in bytes, the low 23 bits a mantissa, bit 23 a sign. The encoding
admits negative, zero and overflowing values; :func:`target_from_bits`
reports them exactly as Core does and :func:`check_proof_of_work` rejects
them.

Every 2016 blocks the target is recomputed (Core's
``CalculateNextWorkRequired``) from the time the previous 2016 blocks took:
``new = old * timespan_s / two_weeks``, the timespan clamped to
[1/4, 4] x two weeks, the result capped at the proof-of-work limit and sent
through the compact form, so it is exactly the ``bits`` the next header
must carry. (As in Core, the timespan is measured from the first to the
last block of the period: 2015 intervals, not 2016.) Between retargets
the bits do not change, except under regtest's min-difficulty rule.

A block's *work* (Core's ``GetBlockProof``) is the expected number of
hashes to meet its target, ``2**256 // (target + 1)``; the chain with most
cumulative work is the best chain (whitepaper section 4, "longest chain").

:class:`ConsensusParams` holds the per-network constants (mainnet,
regtest) that the rules consult. Everything here is pure integer
arithmetic; Python's integers stand in for ``arith_uint256``, masked to 256
bits where Core's arithmetic wraps.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from synod.bitcoin import constants as C
from synod.bitcoin.errors import RuleViolation
from synod.bitcoin.primitives import BlockHeader, hash_hex

__all__ = [
    "ConsensusParams", "MAINNET", "REGTEST", "target_from_bits", "bits_from_target", "check_proof_of_work",
    "block_work", "calculate_next_work_required", "next_work_required",
]

_MASK_256 = (1 << 256) - 1
_SIGN_BIT = 0x00800000
_MANTISSA_MASK = 0x007FFFFF


class ConsensusParams(msgspec.Struct, frozen=True, kw_only=True):
    """One network's consensus constants (Core's ``Consensus::Params``).

    Heights are the first block at which a rule applies. ``bip30_exempt``
    lists the two mainnet blocks allowed to repeat an earlier coinbase
    (``(height, block hash)``, internal byte order); ``script_flag_exceptions``
    maps a block hash to the script flags it is verified with instead.
    ``bip34_implies_bip30``: on this network, BIP34's height-in-coinbase
    makes the BIP30 scan unnecessary below ``BIP34_IMPLIES_BIP30_LIMIT``
    (Core checks the block at BIP34's height is ``BIP34Hash``; synod takes
    the network's word for it: true on mainnet, false on regtest).
    """

    name: str
    genesis: BlockHeader
    pow_limit: int
    pow_allow_min_difficulty_blocks: bool
    pow_no_retargeting: bool
    pow_target_timespan_s: int = C.POW_TARGET_TIMESPAN_S
    pow_target_spacing_s: int = C.POW_TARGET_SPACING_S
    subsidy_halving_interval: int
    bip34_height: int
    bip65_height: int
    bip66_height: int
    csv_height: int
    segwit_height: int
    taproot_height: int
    bip34_implies_bip30: bool
    bip30_exempt: tuple[tuple[int, bytes], ...] = ()
    script_flag_exceptions: tuple[tuple[bytes, frozenset[str]], ...] = ()

    @property
    def genesis_hash(self) -> bytes:
        return self.genesis.hash

    @property
    def difficulty_adjustment_interval(self) -> int:
        """Blocks between retargets (2016 with the standard timespans)."""
        return self.pow_target_timespan_s // self.pow_target_spacing_s


def _display(h: str) -> bytes:
    """A hash written as explorers show it, in internal byte order."""
    return bytes.fromhex(h)[::-1]


_GENESIS_MERKLE_ROOT = _display("4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b")

MAINNET = ConsensusParams(
    name="main",
    genesis=BlockHeader(version=1, prev_block=bytes(32), merkle_root=_GENESIS_MERKLE_ROOT, time=1231006505,
                        bits=0x1D00FFFF, nonce=2083236893),
    pow_limit=C.POW_LIMIT,
    pow_allow_min_difficulty_blocks=False,
    pow_no_retargeting=False,
    subsidy_halving_interval=C.SUBSIDY_HALVING_INTERVAL,
    bip34_height=C.BIP34_HEIGHT,
    bip65_height=C.BIP65_HEIGHT,
    bip66_height=C.BIP66_HEIGHT,
    csv_height=C.CSV_HEIGHT,
    segwit_height=C.SEGWIT_HEIGHT,
    taproot_height=C.TAPROOT_HEIGHT,
    bip34_implies_bip30=True,
    bip30_exempt=(
        (91842, _display("00000000000a4d0a398161ffc163c503763b1f4360639393e0e4c8e300e0caec")),
        (91880, _display("00000000000743f190a18c5577a3c2d2a1f610ae9601ac046a38084ccb7cd721")),
    ),
    script_flag_exceptions=(
        # BIP16: a block that spent a P2SH output under the old rules, before P2SH was enforced
        (_display("00000000000002dc756eebf4f49723ed8d30cc28a5f108eb94b1ba88ac4f9c22"), frozenset()),
        # taproot: a block with a taproot-invalid spend mined before taproot activated
        (_display("0000000000000000000f14c35b2d841e986ab5441de8c585d5ffe55ea1e395ad"), frozenset({"P2SH", "WITNESS"})),
    ),
)

REGTEST = ConsensusParams(
    name="regtest",
    genesis=BlockHeader(version=1, prev_block=bytes(32), merkle_root=_GENESIS_MERKLE_ROOT, time=1296688602,
                        bits=0x207FFFFF, nonce=2),
    pow_limit=C.REGTEST_POW_LIMIT,
    pow_allow_min_difficulty_blocks=True,
    pow_no_retargeting=True,
    subsidy_halving_interval=150,
    bip34_height=1,
    bip65_height=1,
    bip66_height=1,
    csv_height=1,
    segwit_height=0,
    taproot_height=0,
    bip34_implies_bip30=False,
)


def target_from_bits(bits: int) -> tuple[int, bool, bool]:
    """Decode the compact form (Core's ``SetCompact``).

    Args:
        bits: the header's nBits, a u32.

    Returns:
        ``(target, negative, overflow)``: the 256-bit target (wrapped to 256
        bits, as Core's shift loses the high bits), whether the sign bit is
        set on a non-zero mantissa, and whether the value does not fit in
        256 bits.
    """
    assert 0 <= bits <= 0xFFFFFFFF, "bits is a u32"
    size = bits >> 24
    word = bits & _MANTISSA_MASK
    if size <= 3:
        word >>= 8 * (3 - size)
        target = word
    else:
        target = (word << (8 * (size - 3))) & _MASK_256
    negative = word != 0 and bits & _SIGN_BIT != 0
    overflow = word != 0 and (size > 34 or (word > 0xFF and size > 33) or (word > 0xFFFF and size > 32))
    return target, negative, overflow


def bits_from_target(target: int, negative: bool = False) -> int:
    """Encode a target in compact form (Core's ``GetCompact``): the
    mantissa never has its sign bit set (a byte more of size instead), so
    ``bits_from_target(target_from_bits(b)[0])`` is the canonical form of ``b``."""
    assert 0 <= target <= _MASK_256, "a target is a 256-bit unsigned number"
    size = (target.bit_length() + 7) // 8
    if size <= 3:
        compact = target << (8 * (3 - size))
    else:
        compact = target >> (8 * (size - 3))
    if compact & _SIGN_BIT:
        compact >>= 8
        size += 1
    assert compact & ~_MANTISSA_MASK == 0
    compact |= size << 24
    if negative and compact & _MANTISSA_MASK:
        compact |= _SIGN_BIT
    return compact


def check_proof_of_work(block_hash: bytes, bits: int, pow_limit: int) -> None:
    """Whitepaper section 4 (Core's ``CheckProofOfWork``): ``bits`` must
    decode to a target in (0, ``pow_limit``], and the hash (32 bytes,
    internal order, read little-endian) must not exceed it.

    Raises:
        RuleViolation: ``high-hash`` (bits out of range, or hash above target).
    """
    target, negative, overflow = target_from_bits(bits)
    if negative or overflow or target == 0 or target > pow_limit:
        raise RuleViolation("high-hash", f"bits {bits:08x} out of range")
    if int.from_bytes(block_hash, "little") > target:
        raise RuleViolation("high-hash", f"hash {hash_hex(block_hash)} above the target of bits {bits:08x}")


def block_work(bits: int) -> int:
    """The expected hashes to find a block at ``bits`` (Core's
    ``GetBlockProof``): ``2**256 // (target + 1)``; 0 for invalid bits."""
    target, negative, overflow = target_from_bits(bits)
    if negative or overflow or target == 0:
        return 0
    return (1 << 256) // (target + 1)


def calculate_next_work_required(last_bits: int, last_time_s: int, first_time_s: int, params: ConsensusParams) -> int:
    """The bits of the first block of a new period (Core's
    ``CalculateNextWorkRequired``).

    Args:
        last_bits: bits of the period's last block.
        last_time_s, first_time_s: times of the period's last and first
            blocks (unix seconds).

    Returns:
        The new bits: the old target scaled by the clamped timespan over
        the target timespan, capped at ``params.pow_limit``, in compact form.
    """
    if params.pow_no_retargeting:
        return last_bits
    goal_s = params.pow_target_timespan_s
    timespan_s = min(max(last_time_s - first_time_s, goal_s // 4), goal_s * 4)
    target = target_from_bits(last_bits)[0]
    new_target = ((target * timespan_s) & _MASK_256) // goal_s
    return bits_from_target(min(new_target, params.pow_limit))


def next_work_required(prev_height: int, header_time_s: int, params: ConsensusParams,
                       header_at: Callable[[int], BlockHeader]) -> int:
    """The bits a header must carry after the block at ``prev_height``
    (Core's ``GetNextWorkRequired``).

    Args:
        prev_height: height of the previous block (the new one's parent).
        header_time_s: the new header's time (min-difficulty networks only).
        header_at: the header at a height on the new block's chain, for any
            height up to ``prev_height``.
    """
    limit_bits = bits_from_target(params.pow_limit)
    prev = header_at(prev_height)
    interval = params.difficulty_adjustment_interval
    if (prev_height + 1) % interval != 0:
        if params.pow_allow_min_difficulty_blocks:
            # testnet/regtest: after 20 minutes without a block, a min-difficulty block is allowed
            if header_time_s > prev.time + 2 * params.pow_target_spacing_s:
                return limit_bits
            height, header = prev_height, prev
            while height > 0 and height % interval != 0 and header.bits == limit_bits:
                height -= 1
                header = header_at(height)
            return header.bits
        return prev.bits
    first = header_at(prev_height - (interval - 1))
    return calculate_next_work_required(prev.bits, prev.time, first.time, params)
