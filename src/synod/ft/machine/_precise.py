"""The precise path: one instruction at a time, knowing the exact
retired-instruction count.

Translated blocks hand over to this path (by ``Slow``) every instruction
that is not plain computation on registers and RAM: loads and stores
outside RAM or into a watched page, SYSTEM instructions, illegal
encodings, jumps to an address not a multiple of 4. Here an instruction
either retires (``Machine.retire``: pc moves on, the count goes up by one)
or raises ``Trap``, which the machine takes (Privileged 3.1.6.1, 3.3.1:
mepc, mcause, mtval, mstatus.MPIE/MIE/MPP, pc := mtvec) before the
instruction has any effect.

SYSTEM (Unprivileged chapter 9 "Zicsr", Privileged 3.3): CSRRW/S/C and
their immediate forms, ECALL, EBREAK, MRET, WFI. A CSR instruction that
would write (CSRRW always; CSRRS/C unless rs1 is x0; the immediate forms
unless uimm is 0) to a read-only CSR (bits 11:10 = 3), or names a CSR of a
higher privilege (bits 9:8) or one the machine lacks, is illegal. A USER
program may read only cycle/time/instret(h).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from synod.ft import constants as c
from synod.ft.machine import _isa, _kernel
from synod.ft.machine._isa import MASK32, SIGN32
from synod.ft.machine.records import ProgramKind, StopReason

if TYPE_CHECKING:
    from synod.ft.machine.machine import Machine

_U32 = struct.Struct("<I")
_USER_CSRS = frozenset([_isa.CSR_CYCLE, _isa.CSR_TIME, _isa.CSR_INSTRET, _isa.CSR_CYCLEH, _isa.CSR_TIMEH,
                        _isa.CSR_INSTRETH])
_LOAD_WIDTH = {0: 1, 1: 2, 2: 4, 4: 1, 5: 2}
_LOAD_SIGN_BIT = {0: 0x80, 1: 0x8000}


class Trap(Exception):
    """A synchronous exception: ``cause`` (mcause, table 3.6) and ``tval`` (mtval)."""

    def __init__(self, cause: int, tval: int) -> None:
        self.cause = cause
        self.tval = tval


def execute(m: Machine) -> StopReason | None:
    """Execute the instruction at ``m.pc``; a reason to stop, or None."""
    pc = m.pc
    try:
        o = m.memory.offset(pc, 4)
        if pc & 3:
            raise Trap(_isa.CAUSE_MISALIGNED_FETCH, pc)
        if o is None:
            raise Trap(_isa.CAUSE_FETCH_ACCESS, pc)
        w = _U32.unpack_from(m.memory.ram, o)[0]
        op = w & 0x7F
        if op == _isa.OP_LOAD:
            _load(m, w)
        elif op == _isa.OP_STORE:
            return _store(m, w)
        elif op == _isa.OP_SYSTEM:
            return _system(m, w)
        elif op in (_isa.OP_JAL, _isa.OP_JALR, _isa.OP_BRANCH):
            _jump(m, w, op)
        else:
            raise Trap(_isa.CAUSE_ILLEGAL_INSTRUCTION, w)
    except Trap as t:
        return m.trap(t.cause, t.tval)
    return None


def _load(m: Machine, w: int) -> None:
    funct3, rd, rs1 = (w >> 12) & 7, (w >> 7) & 31, (w >> 15) & 31
    width = _LOAD_WIDTH.get(funct3)
    if width is None:
        raise Trap(_isa.CAUSE_ILLEGAL_INSTRUCTION, w)
    address = (m.x[rs1] + _isa.imm_i(w)) & MASK32
    v = load(m, address, width)
    sign = _LOAD_SIGN_BIT.get(funct3)
    if sign is not None and v & sign:
        v |= MASK32 & ~((sign << 1) - 1)
    if rd:
        m.x[rd] = v
    m.retire((m.pc + 4) & MASK32)


def _store(m: Machine, w: int) -> StopReason | None:
    funct3, rs1, rs2 = (w >> 12) & 7, (w >> 15) & 31, (w >> 20) & 31
    if funct3 > 2:
        raise Trap(_isa.CAUSE_ILLEGAL_INSTRUCTION, w)
    width = 1 << funct3
    address = (m.x[rs1] + _isa.imm_s(w)) & MASK32
    stop = store(m, address, width, m.x[rs2] & ((1 << (8 * width)) - 1))
    m.retire((m.pc + 4) & MASK32)
    return stop


def load(m: Machine, address: int, width: int) -> int:
    """``width`` bytes at guest ``address`` (little-endian, any alignment);
    a device register by an aligned LW. Raises Trap (load access fault)."""
    o = m.memory.offset(address, width)
    if o is not None:
        return int.from_bytes(m.memory.ram[o:o + width], "little")
    reg = _mmio_register(m, address, width)
    value = None if reg is None else m.devices.read(reg)
    if value is None:
        raise Trap(_isa.CAUSE_LOAD_ACCESS, address)
    return value


def store(m: Machine, address: int, width: int, value: int) -> StopReason | None:
    """Store ``value`` (``width`` bytes) at guest ``address``: RAM (with the
    HTIF ``tohost`` check), or a device register by an aligned SW. Raises
    Trap (store access fault); returns EXITED when tohost says so."""
    mem = m.memory
    o = mem.offset(address, width)
    if o is not None:
        mem.write(o, value.to_bytes(width, "little"))
        if m.tohost_offset is not None and o < m.tohost_offset + 4 and m.tohost_offset < o + width:
            code = _U32.unpack_from(mem.ram, m.tohost_offset)[0]
            if code:
                m.exit(0 if code == 1 else code >> 1, tohost=code)
                return StopReason.EXITED
        return None
    reg = _mmio_register(m, address, width)
    acked = None if reg is None else m.devices.write(reg, value, m.instret)
    if acked is None:
        raise Trap(_isa.CAUSE_STORE_ACCESS, address)
    if acked:
        m.csrs.mip &= ~_isa.MIP_MTIP
    m.sync_device_interrupt()
    return None


def _mmio_register(m: Machine, address: int, width: int) -> int | None:
    reg = address - c.MMIO_BASE
    if m.kind is not ProgramKind.BARE_METAL or width != 4 or address & 3 or not 0 <= reg < c.MMIO_SIZE_BYTES:
        return None
    return reg


def _jump(m: Machine, w: int, op: int) -> None:
    pc, x = m.pc, m.x
    rd, funct3, rs1, rs2 = (w >> 7) & 31, (w >> 12) & 7, (w >> 15) & 31, (w >> 20) & 31
    if op == _isa.OP_JAL:
        target = (pc + _isa.imm_j(w)) & MASK32
    elif op == _isa.OP_JALR:
        if funct3:
            raise Trap(_isa.CAUSE_ILLEGAL_INSTRUCTION, w)
        target = (x[rs1] + _isa.imm_i(w)) & MASK32 & ~1
    else:
        a, b = x[rs1], x[rs2]
        taken = {0: a == b, 1: a != b, 4: a ^ SIGN32 < b ^ SIGN32, 5: a ^ SIGN32 >= b ^ SIGN32, 6: a < b,
                 7: a >= b}.get(funct3)
        if taken is None:
            raise Trap(_isa.CAUSE_ILLEGAL_INSTRUCTION, w)
        target = (pc + _isa.imm_b(w)) & MASK32 if taken else (pc + 4) & MASK32
        rd = 0
    if target & 3:
        raise Trap(_isa.CAUSE_MISALIGNED_FETCH, target)
    if rd:
        x[rd] = (pc + 4) & MASK32
    m.retire(target)


def _system(m: Machine, w: int) -> StopReason | None:
    funct3 = (w >> 12) & 7
    bare = m.kind is ProgramKind.BARE_METAL
    if funct3 == 0:
        if w == _isa.ECALL:
            if not bare:
                return _kernel.syscall(m)
            raise Trap(_isa.CAUSE_ECALL_M if m.priv == _isa.PRIV_M else _isa.CAUSE_ECALL_U, 0)
        if w == _isa.EBREAK:
            raise Trap(_isa.CAUSE_BREAKPOINT, m.pc)
        if w == _isa.MRET and bare and m.priv == _isa.PRIV_M:
            m.mret()
            return None
        if w == _isa.WFI and bare:
            m.retire((m.pc + 4) & MASK32)
            if not m.csrs.mip & m.csrs.mie:
                m.waiting = True
                return StopReason.WAITING
            return None
        raise Trap(_isa.CAUSE_ILLEGAL_INSTRUCTION, w)
    if funct3 == 4:
        raise Trap(_isa.CAUSE_ILLEGAL_INSTRUCTION, w)
    _csr_instruction(m, w, funct3)
    return None


def _csr_instruction(m: Machine, w: int, funct3: int) -> None:
    csr, rd, rs1 = w >> 20, (w >> 7) & 31, (w >> 15) & 31
    operand = rs1 if funct3 & 4 else m.x[rs1]                    # the immediate forms: uimm in the rs1 field
    op = funct3 & 3                                               # 1 write, 2 set, 3 clear
    writes = op == 1 or rs1 != 0
    illegal = (
        (m.kind is ProgramKind.USER and csr not in _USER_CSRS)
        or (csr >> 8) & 3 > m.priv
        or (writes and csr >> 10 == 3)
    )
    old = None if illegal else m.csrs.read(csr, m.instret)
    if old is None:
        raise Trap(_isa.CAUSE_ILLEGAL_INSTRUCTION, w)
    if writes:
        new = operand if op == 1 else (old | operand if op == 2 else old & ~operand & MASK32)
        written = m.csrs.write(csr, new, m.instret)
        assert written, f"CSR 0x{csr:03x} is readable and not read-only, so writable"
    if rd:
        m.x[rd] = old
    m.retire((m.pc + 4) & MASK32)
