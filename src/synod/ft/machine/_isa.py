"""RV32IM encodings: opcodes, immediates, CSR numbers, trap causes.

Unprivileged ISA (20191213) chapter 2 (RV32I: 2.2 base formats, 2.3
immediate encoding variants) and chapter 7 (M); Privileged spec (20211203)
chapter 2 (CSR address map, table 2.2) and 3.1 (machine-level CSRs:
mstatus 3.1.6, mtvec 3.1.7, mip/mie 3.1.9, mcause table 3.6).

Registers hold unsigned 32-bit values (0 .. 2**32-1); signed views are
taken where an instruction asks for one.
"""

from __future__ import annotations

MASK32 = 0xFFFF_FFFF
SIGN32 = 0x8000_0000

# Major opcodes (table 24.1, bits 6:0).
OP_LOAD = 0x03
OP_MISC_MEM = 0x0F
OP_IMM = 0x13
OP_AUIPC = 0x17
OP_STORE = 0x23
OP_OP = 0x33
OP_LUI = 0x37
OP_BRANCH = 0x63
OP_JALR = 0x67
OP_JAL = 0x6F
OP_SYSTEM = 0x73

# Whole-word SYSTEM instructions (funct3 = 0).
ECALL = 0x0000_0073
EBREAK = 0x0010_0073
MRET = 0x3020_0073
WFI = 0x1050_0073

# Privilege levels (Privileged 1.2).
PRIV_U = 0
PRIV_M = 3

# Exception causes (mcause, interrupt bit clear; Privileged table 3.6).
CAUSE_MISALIGNED_FETCH = 0
CAUSE_FETCH_ACCESS = 1
CAUSE_ILLEGAL_INSTRUCTION = 2
CAUSE_BREAKPOINT = 3
CAUSE_LOAD_ACCESS = 5
CAUSE_STORE_ACCESS = 7
CAUSE_ECALL_U = 8
CAUSE_ECALL_M = 11

# Interrupt numbers (mcause with the interrupt bit set; mip/mie bit positions).
IRQ_MSI = 3
IRQ_MTI = 7
IRQ_MEI = 11
MIP_MSIP = 1 << IRQ_MSI
MIP_MTIP = 1 << IRQ_MTI
MIP_MEIP = 1 << IRQ_MEI
MIE_WRITABLE = MIP_MSIP | MIP_MTIP | MIP_MEIP
# Taken in this order when several are pending (Privileged 3.1.9: MEI, MSI, MTI).
IRQ_PRIORITY = (IRQ_MEI, IRQ_MSI, IRQ_MTI)

# mstatus fields (Privileged 3.1.6).
MSTATUS_MIE = 1 << 3
MSTATUS_MPIE = 1 << 7
MSTATUS_MPP_SHIFT = 11
MSTATUS_MPP = 3 << MSTATUS_MPP_SHIFT

# misa: MXL=1 (32-bit), extensions I and M, and U-mode (Privileged 3.1.1).
MISA_RV32IM = (1 << 30) | (1 << 8) | (1 << 12) | (1 << 20)

# CSR numbers (Privileged table 2.2 to 2.5).
CSR_MSTATUS = 0x300
CSR_MISA = 0x301
CSR_MEDELEG = 0x302
CSR_MIDELEG = 0x303
CSR_MIE = 0x304
CSR_MTVEC = 0x305
CSR_MCOUNTEREN = 0x306
CSR_MENVCFG = 0x30A
CSR_MSTATUSH = 0x310
CSR_MENVCFGH = 0x31A
CSR_MCOUNTINHIBIT = 0x320
CSR_MSCRATCH = 0x340
CSR_MEPC = 0x341
CSR_MCAUSE = 0x342
CSR_MTVAL = 0x343
CSR_MIP = 0x344
CSR_SATP = 0x180
CSR_MCYCLE = 0xB00
CSR_MINSTRET = 0xB02
CSR_MCYCLEH = 0xB80
CSR_MINSTRETH = 0xB82
CSR_CYCLE = 0xC00
CSR_TIME = 0xC01
CSR_INSTRET = 0xC02
CSR_CYCLEH = 0xC80
CSR_TIMEH = 0xC81
CSR_INSTRETH = 0xC82
CSR_MVENDORID = 0xF11
CSR_MARCHID = 0xF12
CSR_MIMPID = 0xF13
CSR_MHARTID = 0xF14
CSR_MCONFIGPTR = 0xF15

# Accepted, read as zero, writes ignored: protection, translation, delegation and the
# performance counters this machine does not have (riscv-tests' reset code writes some).
CSRS_WRITES_IGNORED = frozenset(
    [CSR_SATP, CSR_MEDELEG, CSR_MIDELEG, CSR_MCOUNTEREN, CSR_MENVCFG, CSR_MENVCFGH, CSR_MSTATUSH,
     CSR_MCOUNTINHIBIT]
    + list(range(0x3A0, 0x3B0))      # pmpcfg0..15
    + list(range(0x3B0, 0x3F0))      # pmpaddr0..63
    + list(range(0xB03, 0xB20))      # mhpmcounter3..31
    + list(range(0xB83, 0xBA0))      # mhpmcounter3h..31h
    + list(range(0x323, 0x340))      # mhpmevent3..31
)
# Read-only machine information registers: read as zero.
CSRS_READ_ZERO = frozenset([CSR_MVENDORID, CSR_MARCHID, CSR_MIMPID, CSR_MHARTID, CSR_MCONFIGPTR])


def imm_i(w: int) -> int:
    """I-type immediate, sign-extended (Unprivileged 2.3, figure 2.4)."""
    return ((w >> 20) ^ 0x800) - 0x800


def imm_s(w: int) -> int:
    """S-type immediate, sign-extended."""
    return ((((w >> 25) << 5) | ((w >> 7) & 0x1F)) ^ 0x800) - 0x800


def imm_b(w: int) -> int:
    """B-type immediate (a multiple of 2), sign-extended."""
    v = ((w >> 31) << 12) | (((w >> 7) & 1) << 11) | (((w >> 25) & 0x3F) << 5) | (((w >> 8) & 0xF) << 1)
    return (v ^ 0x1000) - 0x1000


def imm_u(w: int) -> int:
    """U-type immediate: bits 31:12 in place (unsigned 32-bit)."""
    return w & 0xFFFF_F000


def imm_j(w: int) -> int:
    """J-type immediate (a multiple of 2), sign-extended."""
    v = ((w >> 31) << 20) | (((w >> 12) & 0xFF) << 12) | (((w >> 20) & 1) << 11) | (((w >> 21) & 0x3FF) << 1)
    return (v ^ 0x10_0000) - 0x10_0000


def signed(v: int) -> int:
    """The two's-complement value of 32-bit ``v``."""
    return (v ^ SIGN32) - SIGN32


def div(a: int, b: int) -> int:
    """DIV (Unprivileged 7.2): signed quotient rounded toward zero; by zero -> -1;
    -2**31 / -1 -> -2**31 (the overflow wraps). Operands and result unsigned 32-bit."""
    if b == 0:
        return MASK32
    sa, sb = (a ^ SIGN32) - SIGN32, (b ^ SIGN32) - SIGN32
    q = abs(sa) // abs(sb)
    return (-q if (sa < 0) != (sb < 0) else q) & MASK32


def rem(a: int, b: int) -> int:
    """REM: remainder with the dividend's sign; by zero -> the dividend;
    -2**31 % -1 -> 0."""
    if b == 0:
        return a
    sa, sb = (a ^ SIGN32) - SIGN32, (b ^ SIGN32) - SIGN32
    r = abs(sa) % abs(sb)
    return (-r if sa < 0 else r) & MASK32
