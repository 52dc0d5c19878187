"""The machine-mode CSRs (Privileged spec 20211203, chapter 3.1) and the
user-level counters (Unprivileged ISA 20191213, chapter 10).

Kept: mstatus (MIE, MPIE, MPP: U or M, WARL), misa (RV32IM, writes
ignored), mie (MSIE, MTIE, MEIE), mip (read-only here: MTIP is set by the
timer input and cleared through the TIMER_ACK device register, MEIP follows
the devices' pending bits), mtvec (direct or vectored, WARL), mscratch,
mepc (bits 1:0 read as zero: IALIGN is 32, no C extension), mcause, mtval,
the counters mcycle/minstret and their high halves (writable), and their
read-only user views cycle/time/instret(h). mhartid and the other
information registers read zero. satp, pmpcfg/pmpaddr, medeleg/mideleg,
mcounteren, menvcfg, mstatush and the hpm counters read zero and ignore
writes (riscv-tests' reset code writes some of them). Any other number is
an illegal instruction (the precise path decides, with the privilege check
of CSR bits 9:8 and the read-only check of bits 11:10).

Counters are deterministic: one cycle per retired instruction, and time
is the cycle count. A counter is the machine's retired-instruction count
plus an offset that a CSR write sets, so the count the machine stops and
replays at (``Machine.instret``) never moves backwards, whatever the
program writes to minstret. A write to a counter sets the value the next
instruction reads (the writing instruction's own increment does not apply
on top of it).
"""

from __future__ import annotations

from synod.ft.machine import _isa
from synod.ft.machine._isa import MASK32

_MASK64 = (1 << 64) - 1
_MSTATUS_WRITABLE = _isa.MSTATUS_MIE | _isa.MSTATUS_MPIE | _isa.MSTATUS_MPP

# Field names of the kept registers, in the order a state hash and a snapshot list them.
FIELDS = ("mstatus", "mie", "mip", "mtvec", "mscratch", "mepc", "mcause", "mtval", "cycle_offset",
          "instret_offset")


class Csrs:
    """The CSR file of one hart. Registers are unsigned 32-bit ints; the
    counter offsets are mod 2**64."""

    def __init__(self) -> None:
        self.mstatus = 0
        self.mie = 0
        self.mip = 0
        self.mtvec = 0
        self.mscratch = 0
        self.mepc = 0
        self.mcause = 0
        self.mtval = 0
        self.cycle_offset = 0
        self.instret_offset = 0

    def state(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in FIELDS}

    def set_state(self, state: dict[str, int]) -> None:
        assert set(state) == set(FIELDS)
        for name in FIELDS:
            setattr(self, name, state[name])

    def read(self, csr: int, instret: int) -> int | None:
        """The value of ``csr`` while the instruction at retired count
        ``instret`` runs; None when there is no such CSR."""
        if csr in (_isa.CSR_MCYCLE, _isa.CSR_CYCLE, _isa.CSR_TIME):
            return (instret + self.cycle_offset) & MASK32
        if csr in (_isa.CSR_MCYCLEH, _isa.CSR_CYCLEH, _isa.CSR_TIMEH):
            return ((instret + self.cycle_offset) & _MASK64) >> 32
        if csr in (_isa.CSR_MINSTRET, _isa.CSR_INSTRET):
            return (instret + self.instret_offset) & MASK32
        if csr in (_isa.CSR_MINSTRETH, _isa.CSR_INSTRETH):
            return ((instret + self.instret_offset) & _MASK64) >> 32
        simple = _READS.get(csr)
        if simple is not None:
            return simple(self)
        if csr in _isa.CSRS_WRITES_IGNORED or csr in _isa.CSRS_READ_ZERO:
            return 0
        return None

    def write(self, csr: int, value: int, instret: int) -> bool:
        """Write ``value`` to ``csr`` by the instruction at retired count
        ``instret``; False when ``csr`` cannot be written (no such CSR)."""
        if csr == _isa.CSR_MSTATUS:
            mpp = (value >> _isa.MSTATUS_MPP_SHIFT) & 3
            value = (value & _MSTATUS_WRITABLE & ~_isa.MSTATUS_MPP) | (
                (_isa.PRIV_M if mpp == _isa.PRIV_M else _isa.PRIV_U) << _isa.MSTATUS_MPP_SHIFT)
            self.mstatus = value
        elif csr == _isa.CSR_MIE:
            self.mie = value & _isa.MIE_WRITABLE
        elif csr == _isa.CSR_MTVEC:
            mode = value & 3
            self.mtvec = (value & ~3 & MASK32) | (mode if mode <= 1 else 0)
        elif csr == _isa.CSR_MSCRATCH:
            self.mscratch = value
        elif csr == _isa.CSR_MEPC:
            self.mepc = value & ~3 & MASK32
        elif csr == _isa.CSR_MCAUSE:
            self.mcause = value
        elif csr == _isa.CSR_MTVAL:
            self.mtval = value
        elif csr in (_isa.CSR_MCYCLE, _isa.CSR_MCYCLEH):
            self.cycle_offset = self._counter_offset(csr == _isa.CSR_MCYCLEH, value, instret, self.cycle_offset)
        elif csr in (_isa.CSR_MINSTRET, _isa.CSR_MINSTRETH):
            self.instret_offset = self._counter_offset(csr == _isa.CSR_MINSTRETH, value, instret,
                                                       self.instret_offset)
        elif csr in (_isa.CSR_MISA, _isa.CSR_MIP) or csr in _isa.CSRS_WRITES_IGNORED:
            pass
        else:
            return False
        return True

    @staticmethod
    def _counter_offset(high: bool, value: int, instret: int, offset: int) -> int:
        """The offset that makes the 64-bit counter, read by the next
        instruction (count ``instret + 1``), show ``value`` in its low or high half."""
        current = (instret + offset) & _MASK64
        wanted = (current & MASK32) | (value << 32) if high else (current & ~MASK32) | value
        return (wanted - (instret + 1)) & _MASK64


_READS = {
    _isa.CSR_MSTATUS: lambda c: c.mstatus,
    _isa.CSR_MISA: lambda c: _isa.MISA_RV32IM,
    _isa.CSR_MIE: lambda c: c.mie,
    _isa.CSR_MIP: lambda c: c.mip,
    _isa.CSR_MTVEC: lambda c: c.mtvec,
    _isa.CSR_MSCRATCH: lambda c: c.mscratch,
    _isa.CSR_MEPC: lambda c: c.mepc,
    _isa.CSR_MCAUSE: lambda c: c.mcause,
    _isa.CSR_MTVAL: lambda c: c.mtval,
}
