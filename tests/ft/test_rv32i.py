"""RV32I, instruction group by instruction group, with the edge cases of the
Unprivileged ISA (20191213) chapter 2: integer computational instructions
(2.4), control transfer (2.5), loads and stores (2.6), FENCE (2.7)."""

from __future__ import annotations

import pytest
from tests.ft._asm import A0, A1, A2, RA, T0, T1, auipc, branch, csr, jal, jalr, li, load, lui, machine, op, opi, run_user, store

from synod.ft import ProgramKind, StopReason

M = 0xFFFF_FFFF
NEG = {"-1": M, "-7": (-7) & M, "min": 0x8000_0000, "max": 0x7FFF_FFFF}


def reg_reg(name: str, a: int, b: int) -> int:
    return run_user([op(name, A2, A0, A1)], regs={A0: a, A1: b}).x[A2]


def reg_imm(name: str, a: int, imm: int) -> int:
    return run_user([opi(name, A2, A0, imm)], regs={A0: a}).x[A2]


@pytest.mark.parametrize("name,a,b,want", [
    ("add", 0xFFFF_FFFF, 1, 0),                         # wraps mod 2**32
    ("add", 0x7FFF_FFFF, 1, 0x8000_0000),
    ("sub", 0, 1, M),
    ("sub", 0x8000_0000, 1, 0x7FFF_FFFF),
    ("sll", 1, 31, 0x8000_0000),
    ("sll", 1, 32, 1),                                  # shift amount is rs2[4:0]
    ("sll", 3, 0xFFFF_FFE1, 6),
    ("srl", 0x8000_0000, 31, 1),
    ("srl", 0x8000_0000, 63, 1),
    ("sra", 0x8000_0000, 31, M),
    ("sra", 0x8000_0000, 1, 0xC000_0000),
    ("sra", 0x7FFF_FFFF, 31, 0),
    ("slt", M, 0, 1),                                   # signed: -1 < 0
    ("slt", 0, M, 0),
    ("slt", 0x8000_0000, 0x7FFF_FFFF, 1),
    ("sltu", M, 0, 0),                                  # unsigned: 2**32-1 > 0
    ("sltu", 0, M, 1),
    ("xor", 0xF0F0_F0F0, M, 0x0F0F_0F0F),
    ("or", 0xF000_0000, 0x0000_000F, 0xF000_000F),
    ("and", 0xFF00_FF00, 0x0FF0_0FF0, 0x0F00_0F00),
])
def test_register_register(name: str, a: int, b: int, want: int) -> None:
    assert reg_reg(name, a, b) == want


@pytest.mark.parametrize("name,a,imm,want", [
    ("addi", 1, -1, 0),
    ("addi", 0xFFFF_FFFF, 1, 0),
    ("addi", 0, -2048, (-2048) & M),
    ("addi", 0, 2047, 2047),
    ("slti", M, 0, 1),
    ("slti", 0, -1, 0),
    ("sltiu", 5, -1, 1),                                # imm sign-extended, then compared unsigned
    ("sltiu", M, -1, 0),
    ("sltiu", 0, 1, 1),                                 # seqz
    ("xori", 0x1234_5678, -1, 0xEDCB_A987),             # not
    ("ori", 0, -2048, 0xFFFF_F800),
    ("andi", 0xFFFF_FFFF, 0x7FF, 0x7FF),
    ("andi", 0x1234_5678, -16, 0x1234_5670),
    ("slli", 1, 31, 0x8000_0000),
    ("srli", 0x8000_0000, 31, 1),
    ("srai", 0x8000_0000, 31, M),
    ("srai", 0x8000_0000, 0, 0x8000_0000),
])
def test_register_immediate(name: str, a: int, imm: int, want: int) -> None:
    assert reg_imm(name, a, imm) == want


def test_shift_immediate_with_bit_5_set_is_illegal_in_rv32() -> None:
    m = machine([opi("slli", A0, A0, 1) | (1 << 25)])     # shamt[5] = 1: reserved
    assert m.run(10) is StopReason.FAULTED
    assert m.fault is not None and m.fault.mcause == 2


def test_lui_and_auipc() -> None:
    m = run_user([lui(A0, 0xFFFFF), lui(A1, 0x80000), auipc(A2, 1), auipc(T0, 0xFFFFF)])
    base = m.memory.base
    assert m.x[A0] == 0xFFFF_F000
    assert m.x[A1] == 0x8000_0000
    assert m.x[A2] == base + 8 + 0x1000
    assert m.x[T0] == (base + 12 - 0x1000) & M


def test_writes_to_x0_are_discarded() -> None:
    m = run_user([opi("addi", 0, 0, 5), lui(0, 0x12345), op("add", 0, A0, A0), auipc(0, 1), jal(0, 4),
                  load("lw", 0, A1, 0), op("mul", 0, A0, A0), op("add", A2, 0, 0)],
                 regs={A0: 7, A1: 0x10000 + 0x2000}, data=b"\x01\x02\x03\x04")
    assert m.x[0] == 0
    assert m.x[A2] == 0


def test_load_to_x0_still_faults_outside_ram() -> None:
    m = machine([load("lw", 0, A0, 0)], regs={A0: 0x10})
    assert m.run(10) is StopReason.FAULTED
    assert m.fault is not None
    assert (m.fault.mcause, m.fault.mtval) == (5, 0x10)


DATA = bytes([0x80, 0xFF, 0x7F, 0x01, 0x34, 0x12, 0xCD, 0xAB])
DATA_AT = 0x10000 + 0x2000


@pytest.mark.parametrize("name,offset,want", [
    ("lb", 0, 0xFFFF_FF80), ("lb", 2, 0x7F), ("lbu", 0, 0x80), ("lbu", 1, 0xFF),
    ("lh", 0, 0xFFFF_FF80), ("lh", 1, 0x7FFF), ("lh", 6, 0xFFFF_ABCD), ("lhu", 6, 0xABCD), ("lhu", 0, 0xFF80),
    ("lw", 0, 0x017F_FF80), ("lw", 4, 0xABCD_1234),
    ("lw", 1, 0x3401_7FFF), ("lw", 3, 0xCD12_3401), ("lh", 3, 0x3401), ("lhu", 5, 0xCD12),    # misaligned
])
def test_loads_sign_and_zero_extend_and_allow_misalignment(name: str, offset: int, want: int) -> None:
    m = run_user([load(name, A0, A1, offset)], regs={A1: DATA_AT}, data=DATA)
    assert m.x[A0] == want


def test_load_with_negative_offset() -> None:
    m = run_user([load("lw", A0, A1, -4)], regs={A1: DATA_AT + 8}, data=DATA)
    assert m.x[A0] == 0xABCD_1234


@pytest.mark.parametrize("name,offset,want", [
    ("sb", 0, bytes([0x44, 0xFF, 0x7F, 0x01, 0x34, 0x12, 0xCD, 0xAB])),
    ("sh", 1, bytes([0x80, 0x44, 0x33, 0x01, 0x34, 0x12, 0xCD, 0xAB])),
    ("sw", 3, bytes([0x80, 0xFF, 0x7F, 0x44, 0x33, 0x22, 0x11, 0xAB])),          # misaligned
    ("sw", 4, bytes([0x80, 0xFF, 0x7F, 0x01, 0x44, 0x33, 0x22, 0x11])),
])
def test_stores_write_the_low_bytes(name: str, offset: int, want: bytes) -> None:
    m = run_user([store(name, A0, A1, offset)], regs={A0: 0x1122_3344, A1: DATA_AT}, data=DATA)
    assert m.memory.read(0x2000, 8) == want


def test_misaligned_word_across_a_page_boundary() -> None:
    at = 0x10000 + 0x2FFE
    m = run_user([store("sw", A0, A1, 0), load("lw", A2, A1, 0), load("lhu", T0, A1, 2)],
                 regs={A0: 0xA1B2_C3D4, A1: at})
    assert m.x[A2] == 0xA1B2_C3D4
    assert m.x[T0] == 0xA1B2
    assert m.memory.read(0x2FFE, 4) == bytes([0xD4, 0xC3, 0xB2, 0xA1])


def test_store_outside_ram_faults_a_user_program() -> None:
    m = machine([store("sw", A0, A1, 0)], regs={A1: 0x4000_0000})
    assert m.run(10) is StopReason.FAULTED
    assert m.fault is not None
    assert (m.fault.mcause, m.fault.mtval, m.fault.instret) == (7, 0x4000_0000, 0)
    assert "store access fault" in m.fault.message


def test_access_that_straddles_the_end_of_ram_faults() -> None:
    end = 0x10000 + 64 * 1024
    m = machine([load("lw", A0, A1, 0)], regs={A1: end - 2})
    assert m.run(10) is StopReason.FAULTED
    assert m.fault is not None and m.fault.mcause == 5


PAIRS = [(0, 0), (1, 2), (2, 1), (M, 0), (0, M), (0x8000_0000, 0x7FFF_FFFF), (0x7FFF_FFFF, 0x8000_0000), (M, M)]


@pytest.mark.parametrize("a,b", PAIRS)
@pytest.mark.parametrize("name", ["beq", "bne", "blt", "bge", "bltu", "bgeu"])
def test_branches(name: str, a: int, b: int) -> None:
    sa, sb = (a ^ 0x8000_0000) - 0x8000_0000, (b ^ 0x8000_0000) - 0x8000_0000
    taken = {"beq": a == b, "bne": a != b, "blt": sa < sb, "bge": sa >= sb, "bltu": a < b, "bgeu": a >= b}[name]
    m = run_user([branch(name, A0, A1, 8), opi("addi", A2, 0, 1), opi("addi", T0, 0, 1)], regs={A0: a, A1: b})
    assert m.x[A2] == (0 if taken else 1)
    assert m.x[T0] == 1


def test_backward_branch_loop_counts_every_instruction() -> None:
    # a0 = 0; a1 = 100; loop: a0 += 1; bne a0, a1, loop
    m = run_user([opi("addi", A0, 0, 0), opi("addi", A1, 0, 100), opi("addi", A0, A0, 1), branch("bne", A0, A1, -4),
                  opi("addi", A0, 0, 0)])
    assert m.instret == 2 + 2 * 100 + 1 + 3


def test_jal_links_and_jalr_clears_bit_0() -> None:
    base = 0x10000
    m = run_user([jal(RA, 8), opi("addi", A0, 0, 99), *li(T0, base + 24 + 1), jalr(T1, T0, 0),
                  opi("addi", A1, 0, 99), opi("addi", A2, 0, 1)])
    assert m.x[RA] == base + 4
    assert m.x[A0] == 0
    assert m.x[T1] == base + 20
    assert m.x[A1] == 0
    assert m.x[A2] == 1


def test_jalr_with_rd_equal_rs1_uses_the_old_value() -> None:
    base = 0x10000
    m = run_user([*li(RA, base + 12), jalr(RA, RA, 0), opi("addi", A0, 0, 1)])
    assert m.x[RA] == base + 12
    assert m.x[A0] == 1


def test_jump_to_an_address_not_a_multiple_of_4_traps_at_the_jump() -> None:
    base = 0x8000_0000
    handler = base + 0x40
    words = [*li(T1, handler), csr("csrrw", 0, 0x305, T1), *li(T0, base + 0x102), jalr(RA, T0, 0)]
    words += [0] * (0x40 // 4 - len(words)) + [jal(0, 0)]          # the handler: spin
    m = machine(words, kind=ProgramKind.BARE_METAL)
    assert m.run(10) is StopReason.BUDGET
    assert m.pc == handler
    assert m.csrs.mcause == 0                                        # instruction address misaligned
    assert m.csrs.mtval == base + 0x102
    assert m.csrs.mepc == base + 20
    assert m.x[RA] == 0, "rd is not written by a jump that traps"
    assert m.instret == 10, "5 before the jump, which did not retire, then 5 turns of the handler"


def test_taken_branch_to_a_misaligned_target_traps_and_not_taken_does_not() -> None:
    word = branch("beq", A0, A1, 6)
    m = machine([word, opi("addi", A2, 0, 1)], regs={A0: 1, A1: 2})
    assert m.run(2) is StopReason.BUDGET
    assert m.x[A2] == 1
    m = machine([word], regs={A0: 1, A1: 1})
    assert m.run(2) is StopReason.FAULTED
    assert m.fault is not None and m.fault.mcause == 0


def test_fence_and_fence_i_are_no_ops_that_retire() -> None:
    from tests.ft._asm import FENCE, FENCE_I
    m = run_user([FENCE, FENCE_I, opi("addi", A0, 0, 3)])
    assert m.x[A0] == 3
    assert m.instret == 3 + 3
