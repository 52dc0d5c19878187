"""A small RV32IM encoder for unit tests that need no cross compiler, and
machines built from its words.

Encodings from the Unprivileged ISA (20191213), chapter 24 (instruction
listings: formats R, I, S, B, U, J); written for these tests.
"""

from __future__ import annotations

from synod.ft import ElfProgram, Machine, ProgramKind, Segment, StopReason

_R = {  # name: (funct7, funct3)
    "add": (0, 0), "sub": (0x20, 0), "sll": (0, 1), "slt": (0, 2), "sltu": (0, 3), "xor": (0, 4), "srl": (0, 5),
    "sra": (0x20, 5), "or": (0, 6), "and": (0, 7), "mul": (1, 0), "mulh": (1, 1), "mulhsu": (1, 2), "mulhu": (1, 3),
    "div": (1, 4), "divu": (1, 5), "rem": (1, 6), "remu": (1, 7),
}
_I = {"addi": 0, "slti": 2, "sltiu": 3, "xori": 4, "ori": 6, "andi": 7}
_SHIFT_I = {"slli": (0, 1), "srli": (0, 5), "srai": (0x20, 5)}
_LOAD = {"lb": 0, "lh": 1, "lw": 2, "lbu": 4, "lhu": 5}
_STORE = {"sb": 0, "sh": 1, "sw": 2}
_BRANCH = {"beq": 0, "bne": 1, "blt": 4, "bge": 5, "bltu": 6, "bgeu": 7}
_CSR = {"csrrw": 1, "csrrs": 2, "csrrc": 3, "csrrwi": 5, "csrrsi": 6, "csrrci": 7}

ECALL, EBREAK, MRET, WFI = 0x0000_0073, 0x0010_0073, 0x3020_0073, 0x1050_0073
FENCE, FENCE_I, NOP = 0x0FF0_000F, 0x0000_100F, 0x0000_0013
A0, A1, A2, A7, T0, T1, T2, SP, RA, S0, S1 = 10, 11, 12, 17, 5, 6, 7, 2, 1, 8, 9


def op(name: str, rd: int, rs1: int, rs2: int) -> int:
    funct7, funct3 = _R[name]
    return (funct7 << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | 0x33


def opi(name: str, rd: int, rs1: int, imm: int) -> int:
    if name in _SHIFT_I:
        funct7, funct3 = _SHIFT_I[name]
        assert 0 <= imm < 32
        return (funct7 << 25) | (imm << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | 0x13
    assert -2048 <= imm < 2048
    return ((imm & 0xFFF) << 20) | (rs1 << 15) | (_I[name] << 12) | (rd << 7) | 0x13


def load(name: str, rd: int, rs1: int, imm: int) -> int:
    assert -2048 <= imm < 2048
    return ((imm & 0xFFF) << 20) | (rs1 << 15) | (_LOAD[name] << 12) | (rd << 7) | 0x03


def store(name: str, rs2: int, rs1: int, imm: int) -> int:
    assert -2048 <= imm < 2048
    imm &= 0xFFF
    return ((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (_STORE[name] << 12) | ((imm & 31) << 7) | 0x23


def branch(name: str, rs1: int, rs2: int, offset: int) -> int:
    assert offset % 2 == 0 and -4096 <= offset < 4096
    o = offset & 0x1FFF
    return (((o >> 12) & 1) << 31) | (((o >> 5) & 0x3F) << 25) | (rs2 << 20) | (rs1 << 15) | (_BRANCH[name] << 12) | (
        ((o >> 1) & 0xF) << 8) | (((o >> 11) & 1) << 7) | 0x63


def lui(rd: int, imm20: int) -> int:
    return ((imm20 & 0xFFFFF) << 12) | (rd << 7) | 0x37


def auipc(rd: int, imm20: int) -> int:
    return ((imm20 & 0xFFFFF) << 12) | (rd << 7) | 0x17


def jal(rd: int, offset: int) -> int:
    assert offset % 2 == 0 and -(1 << 20) <= offset < (1 << 20)
    o = offset & 0x1FFFFF
    return (((o >> 20) & 1) << 31) | (((o >> 1) & 0x3FF) << 21) | (((o >> 11) & 1) << 20) | (
        ((o >> 12) & 0xFF) << 12) | (rd << 7) | 0x6F


def jalr(rd: int, rs1: int, imm: int) -> int:
    return ((imm & 0xFFF) << 20) | (rs1 << 15) | (rd << 7) | 0x67


def csr(name: str, rd: int, number: int, rs1_or_uimm: int) -> int:
    return (number << 20) | (rs1_or_uimm << 15) | (_CSR[name] << 12) | (rd << 7) | 0x73


def li(rd: int, value: int) -> list[int]:
    """LUI + ADDI loading any 32-bit ``value`` into ``rd``."""
    value &= 0xFFFF_FFFF
    low = ((value & 0xFFF) ^ 0x800) - 0x800
    high = ((value - low) >> 12) & 0xFFFFF
    return [lui(rd, high), opi("addi", rd, rd, low)]


EXIT = [*li(A7, 93), ECALL]           # a user program's exit(a0)


def machine(words: list[int], kind: ProgramKind = ProgramKind.USER, *, data: bytes = b"", data_offset: int = 0x2000,
            regs: dict[int, int] | None = None, ram_size_bytes: int = 64 * 1024, tohost_offset: int | None = None,
            disk: bytes = b"") -> Machine:
    """A machine with ``words`` at the start of RAM (pc there), ``data`` at
    RAM + ``data_offset``, and registers ``regs``."""
    m = Machine(kind, ram_size_bytes=ram_size_bytes, disk=disk)
    base = m.memory.base
    code = b"".join(w.to_bytes(4, "little") for w in words)
    segments = [Segment(vaddr=base, data=code, memsz=len(code))]
    if data:
        segments.append(Segment(vaddr=base + data_offset, data=data, memsz=len(data)))
    tohost = None if tohost_offset is None else base + tohost_offset
    m.load(ElfProgram(entry=base, segments=segments, tohost=tohost, fromhost=None))
    for r, v in (regs or {}).items():
        m.x[r] = v & 0xFFFF_FFFF
    return m


def run_user(words: list[int], **kwargs: object) -> Machine:
    """Run ``words`` then exit(a0) as a user program; returns the exited machine."""
    m = machine([*words, *EXIT], **kwargs)  # type: ignore[arg-type]
    stop = m.run(100_000)
    assert stop is StopReason.EXITED, (stop, m.fault)
    return m
