"""The machine: one RV32IM hart, its RAM and devices, and the run loop.

See the package docstring (``synod.ft.machine``) for the theory of
operation. This module holds the state every part shares (registers ``x``,
``pc``, privilege, the retired-instruction count ``instret``, CSRs, RAM,
devices), the run loop that alternates translated blocks with the precise
path, trap and interrupt entry, input delivery, the state hash and
snapshots.
"""

from __future__ import annotations

import hashlib
import struct

import msgspec

from synod.core.errors import LocalProtocolError
from synod.ft import constants as c
from synod.ft.machine import _isa, _precise
from synod.ft.machine._csr import Csrs
from synod.ft.machine._devices import Devices
from synod.ft.machine._isa import MASK32
from synod.ft.machine._memory import Memory
from synod.ft.machine._translate import Slow, Translator
from synod.ft.machine.elf import ElfProgram, read_elf
from synod.ft.machine.errors import ElfError
from synod.ft.machine.records import (
    BlockReadComplete,
    BlockRequest,
    ConsoleInput,
    Fault,
    InputEvent,
    MachineSnapshot,
    NetworkPacket,
    OutputEvent,
    ProgramKind,
    StopReason,
    TimerInterrupt,
)

__all__ = ["Machine"]

_REGS = struct.Struct("<32I")
_CAUSE_NAMES = {
    _isa.CAUSE_MISALIGNED_FETCH: "instruction address misaligned", _isa.CAUSE_FETCH_ACCESS: "instruction access fault",
    _isa.CAUSE_ILLEGAL_INSTRUCTION: "illegal instruction", _isa.CAUSE_BREAKPOINT: "breakpoint",
    _isa.CAUSE_LOAD_ACCESS: "load access fault", _isa.CAUSE_STORE_ACCESS: "store access fault",
    _isa.CAUSE_ECALL_U: "environment call from U-mode", _isa.CAUSE_ECALL_M: "environment call from M-mode",
}


class Machine:
    """One RV32IM hart with ``ram_size_bytes`` of RAM, running a program of
    ``kind``. Usually made by :meth:`from_elf`.

    Public state (read it; change it only through the methods): ``x`` (32
    unsigned 32-bit registers, x[0] == 0), ``pc``, ``priv`` (0 U, 3 M),
    ``instret`` (instructions retired since reset; never written by the
    program), ``exit_code`` (after EXITED), ``fault`` (after FAULTED),
    ``waiting`` (WFI or a blocked read: deliver an input).

    ``ram_base`` defaults to RAM_BASE_USER or RAM_BASE_BARE_METAL by
    ``kind``; ``disk`` is the block device's image (a multiple of
    DISK_SECTOR_BYTES). Raises LocalProtocolError for a RAM size that is not
    a multiple of a page or outside [RAM_SIZE_BYTES_MIN, RAM_SIZE_BYTES_MAX],
    or a disk image that is not whole sectors or over DISK_SIZE_BYTES_MAX.
    """

    def __init__(self, kind: ProgramKind, *, ram_size_bytes: int = c.RAM_SIZE_BYTES_DEFAULT,
                 ram_base: int | None = None, disk: bytes | bytearray = b"") -> None:
        if not c.RAM_SIZE_BYTES_MIN <= ram_size_bytes <= c.RAM_SIZE_BYTES_MAX or ram_size_bytes % c.PAGE_SIZE_BYTES:
            raise LocalProtocolError(f"ram_size_bytes {ram_size_bytes}: a multiple of {c.PAGE_SIZE_BYTES} in "
                                     f"[{c.RAM_SIZE_BYTES_MIN}, {c.RAM_SIZE_BYTES_MAX}]")
        if len(disk) % c.DISK_SECTOR_BYTES or len(disk) > c.DISK_SIZE_BYTES_MAX:
            raise LocalProtocolError(f"disk of {len(disk)} bytes: a multiple of {c.DISK_SECTOR_BYTES}, "
                                     f"at most DISK_SIZE_BYTES_MAX ({c.DISK_SIZE_BYTES_MAX})")
        if ram_base is None:
            ram_base = c.RAM_BASE_BARE_METAL if kind is ProgramKind.BARE_METAL else c.RAM_BASE_USER
        self.kind = kind
        self.memory = Memory(ram_base, ram_size_bytes)
        self.devices = Devices(self.memory, disk)
        self.csrs = Csrs()
        self.x: list[int] = [0] * 32
        self.pc = ram_base
        self.priv = _isa.PRIV_M if kind is ProgramKind.BARE_METAL else _isa.PRIV_U
        self.instret = 0
        self.waiting = False
        self.exit_code: int | None = None
        self.fault: Fault | None = None
        self.tohost: int | None = None             # the HTIF word's value at exit, when it ended the run
        self.tohost_offset: int | None = None      # RAM offset of the tohost symbol
        self._halted: StopReason | None = None
        self._last_trap_instret = -1
        self._traps_in_a_row = 0
        self._translator = Translator(self.memory)
        self._translator.bind_registers(self.x)

    # --- loading ---------------------------------------------------------------------------------

    @classmethod
    def from_elf(cls, image: bytes, *, kind: ProgramKind | None = None,
                 ram_size_bytes: int = c.RAM_SIZE_BYTES_DEFAULT, disk: bytes | bytearray = b"") -> Machine:
        """A machine with the ELF file ``image`` loaded, pc at its entry.
        ``kind`` defaults to BARE_METAL when the file has a ``tohost``
        symbol, else USER. Raises ElfError (malformed, or a segment outside RAM)."""
        program = read_elf(image)
        if kind is None:
            kind = ProgramKind.BARE_METAL if program.tohost is not None else ProgramKind.USER
        m = cls(kind, ram_size_bytes=ram_size_bytes, disk=disk)
        m.load(program)
        return m

    def load(self, program: ElfProgram) -> None:
        """Copy ``program``'s segments into RAM, zero-filled to their memory
        size, and set pc to its entry. Raises ElfError when a segment or the
        entry lies outside RAM."""
        mem = self.memory
        for seg in program.segments:
            o = mem.offset(seg.vaddr, seg.memsz)
            if o is None or seg.vaddr < mem.base:
                raise ElfError(f"segment [0x{seg.vaddr:08x}, +0x{seg.memsz:x}) lies outside RAM "
                               f"[0x{mem.base:08x}, 0x{mem.base + mem.size:08x})")
            mem.write(o, seg.data + bytes(seg.memsz - len(seg.data)))
        if mem.offset(program.entry, 4) is None:
            raise ElfError(f"entry 0x{program.entry:08x} lies outside RAM")
        if self.kind is ProgramKind.BARE_METAL and program.tohost is not None:
            o = mem.offset(program.tohost, 8)
            if o is None:
                raise ElfError(f"tohost 0x{program.tohost:08x} lies outside RAM")
            self.tohost_offset = o
            mem.watch(o >> 12)
            mem.watch((o + 7) >> 12)
        self.pc = program.entry

    # --- running ---------------------------------------------------------------------------------

    def run(self, max_instructions: int) -> StopReason:
        """Run until ``max_instructions`` more instructions have retired
        (BUDGET: ``instret`` is then exactly the old value plus it), or the
        program exits, faults, waits for input, or holds OUTPUT_EVENTS_MAX
        outputs. Raises LocalProtocolError for a negative budget."""
        if max_instructions < 0:
            raise LocalProtocolError(f"max_instructions {max_instructions} < 0")
        if self._halted is not None:
            return self._halted
        if len(self.devices.outputs) >= c.OUTPUT_EVENTS_MAX:
            return StopReason.OUTPUT_FULL
        stop = self._take_interrupt()
        if stop is not None:
            return stop
        if self.waiting and self.kind is ProgramKind.BARE_METAL:
            return StopReason.WAITING
        self.waiting = False
        target = self.instret + max_instructions
        tr = self._translator
        regions, singles, region, single = tr.regions, tr.singles, tr.region, tr.single
        pc, instret = self.pc, self.instret
        while instret < target:
            try:
                while instret < target:
                    pc, n = (regions.get(pc) or region(pc))(target - instret)
                    if not n:                            # its first block is longer than the budget left
                        pc, n = (singles.get(pc) or single(pc))(1)
                    instret += n
            except Slow as s:
                # The region ran s.retired instructions; the one at s.pc runs on the precise path.
                self.pc, self.instret = s.pc, instret + s.retired
                stop = self._precise_step()
                pc, instret = self.pc, self.instret
                if stop is not None:
                    return stop
        self.pc, self.instret = pc, instret
        return StopReason.BUDGET

    def run_to(self, instret: int) -> StopReason:
        """Run until ``instret`` instructions have retired since reset (see
        ``run``); raises LocalProtocolError when that count is behind."""
        if instret < self.instret:
            raise LocalProtocolError(f"instret {instret} is behind the machine's {self.instret}")
        return self.run(instret - self.instret)

    def step(self) -> StopReason:
        """Retire one instruction, taking on the way any trap it or an interrupt causes: ``run(1)``."""
        return self.run(1)

    def _precise_step(self) -> StopReason | None:
        stop = _precise.execute(self)
        if stop is None:
            stop = self._take_interrupt()
        if stop is None and len(self.devices.outputs) >= c.OUTPUT_EVENTS_MAX:
            stop = StopReason.OUTPUT_FULL
        return stop

    # --- used by the precise path and the kernel -----------------------------------------------------

    def retire(self, next_pc: int) -> None:
        """The instruction at pc has completed: pc := ``next_pc``, one more retired."""
        self.pc = next_pc
        self.instret += 1

    def retire_system(self) -> None:
        self.retire((self.pc + 4) & MASK32)

    def exit(self, code: int, *, tohost: int | None = None) -> None:
        self.exit_code = code
        self.tohost = tohost
        self._halted = StopReason.EXITED

    def trap(self, cause: int, tval: int, *, interrupt: bool = False) -> StopReason | None:
        """Enter the trap handler for ``cause`` at the current pc (Privileged
        3.1.6.1, 3.1.7, 3.3.1); a USER program cannot go on (FAULTED)."""
        if self.kind is ProgramKind.USER:
            return self._fail(cause, tval, f"{_CAUSE_NAMES.get(cause, f'cause {cause}')} at pc 0x{self.pc:08x}"
                              f" (mtval 0x{tval:08x}) after {self.instret} instructions")
        if self.instret == self._last_trap_instret:
            self._traps_in_a_row += 1
            if self._traps_in_a_row > c.TRAPS_WITHOUT_RETIRE_MAX:
                return self._fail(cause, tval, f"trap storm: {self._traps_in_a_row} traps with no instruction "
                                  f"retired (mtvec 0x{self.csrs.mtvec:08x}, last cause {cause})")
        else:
            self._last_trap_instret, self._traps_in_a_row = self.instret, 1
        cs = self.csrs
        cs.mepc = self.pc
        cs.mcause = (cause | _isa.SIGN32) if interrupt else cause
        cs.mtval = tval
        mie = cs.mstatus & _isa.MSTATUS_MIE
        cs.mstatus = ((cs.mstatus & ~(_isa.MSTATUS_MIE | _isa.MSTATUS_MPIE | _isa.MSTATUS_MPP))
                      | (_isa.MSTATUS_MPIE if mie else 0) | (self.priv << _isa.MSTATUS_MPP_SHIFT))
        self.priv = _isa.PRIV_M
        base = cs.mtvec & ~3 & MASK32
        self.pc = (base + 4 * cause) & MASK32 if interrupt and cs.mtvec & 1 else base
        return None

    def mret(self) -> None:
        """Return from a machine-mode trap (Privileged 3.3.2): priv := MPP,
        MIE := MPIE, MPIE := 1, MPP := U, pc := mepc."""
        cs = self.csrs
        ms = cs.mstatus
        self.priv = (ms & _isa.MSTATUS_MPP) >> _isa.MSTATUS_MPP_SHIFT
        cs.mstatus = ((ms & ~(_isa.MSTATUS_MIE | _isa.MSTATUS_MPP)) | _isa.MSTATUS_MPIE
                      | (_isa.MSTATUS_MIE if ms & _isa.MSTATUS_MPIE else 0))
        self.retire(cs.mepc)

    def sync_device_interrupt(self) -> None:
        """mip.MEIP follows the devices' pending bits."""
        cs = self.csrs
        cs.mip = (cs.mip & ~_isa.MIP_MEIP) | (_isa.MIP_MEIP if self.devices.irq_pending else 0)

    def _take_interrupt(self) -> StopReason | None:
        """Take the highest-priority interrupt that is pending and enabled
        (Privileged 3.1.9: in M-mode only while mstatus.MIE; in U-mode always)."""
        if self.kind is not ProgramKind.BARE_METAL or self._halted is not None:
            return None
        cs = self.csrs
        pending = cs.mip & cs.mie
        if not pending:
            return None
        self.waiting = False
        if self.priv == _isa.PRIV_M and not cs.mstatus & _isa.MSTATUS_MIE:
            return None
        irq = next(i for i in _isa.IRQ_PRIORITY if pending & (1 << i))
        return self.trap(irq, 0, interrupt=True)

    def _fail(self, cause: int, tval: int, message: str) -> StopReason:
        self.fault = Fault(mcause=cause, mtval=tval, pc=self.pc, instret=self.instret, message=message)
        self._halted = StopReason.FAULTED
        return StopReason.FAULTED

    # --- inputs and outputs ----------------------------------------------------------------------

    def deliver(self, event: InputEvent) -> None:
        """Apply one input now, between two instructions (the primary logs it
        with ``instret``; the backup delivers it at the same count). An
        interrupt it makes pending and enabled is taken at once. Raises
        LocalProtocolError for a packet over NET_PACKET_BYTES_MAX or a
        completion that matches no pending block read."""
        if isinstance(event, TimerInterrupt):
            self.csrs.mip |= _isa.MIP_MTIP
        elif isinstance(event, ConsoleInput):
            self.devices.console_input(event)
        elif isinstance(event, NetworkPacket):
            if len(event.data) > c.NET_PACKET_BYTES_MAX:
                raise LocalProtocolError(f"packet of {len(event.data)} bytes > NET_PACKET_BYTES_MAX")
            self.devices.network_input(event)
        elif isinstance(event, BlockReadComplete):
            if not self.devices.block_read_complete(event):
                raise LocalProtocolError(f"no pending block read {event.request_id} of {len(event.data)} bytes")
        else:
            raise LocalProtocolError(f"not an input event: {event!r}")
        self.sync_device_interrupt()
        self.waiting = False
        self._take_interrupt()

    @property
    def pending_block_request(self) -> BlockRequest | None:
        """The block read in flight, if any (its data already in the bounce buffer)."""
        return self.devices.blk_request

    def complete_block_read(self) -> BlockReadComplete | None:
        """Complete the block read in flight from its bounce buffer, now; the
        delivered event (to log), or None when no read is in flight."""
        req = self.devices.blk_request
        if req is None:
            return None
        event = BlockReadComplete(request_id=req.request_id, data=req.bounce)
        self.deliver(event)
        return event

    def take_outputs(self) -> list[OutputEvent]:
        """The outputs produced since the last call, oldest first."""
        out = self.devices.outputs
        self.devices.outputs = []
        return out

    @property
    def disk(self) -> bytes:
        """The disk image as it is now (block writes applied)."""
        return bytes(self.devices.disk)

    @property
    def translations(self) -> int:
        """Regions (and single instructions) translated so far: the cost side of decode-once."""
        return self._translator.translations

    # --- state -----------------------------------------------------------------------------------

    def state_hash(self) -> bytes:
        """BLAKE2b-256 of the architectural state: registers, pc, privilege,
        instret, CSRs, RAM (incremental: pages written since the last call
        are rehashed), the device registers and queues (not the disk image nor
        a read's bounce buffer: a backup need not hold the same disk), waiting
        and the exit state. Equal on primary and backup at the same count."""
        h = hashlib.blake2b(digest_size=32)
        h.update(_REGS.pack(*self.x))
        h.update(struct.pack("<IBQB", self.pc, self.priv, self.instret, self.waiting))
        h.update(struct.pack(f"<{len(self.csrs.state())}Q", *self.csrs.state().values()))
        h.update(self.memory.digest())
        dev = self.devices.state()
        if dev.blk_request is not None:
            dev = msgspec.structs.replace(dev, blk_request=msgspec.structs.replace(dev.blk_request, bounce=b""))
        h.update(msgspec.msgpack.encode(dev))
        h.update(msgspec.msgpack.encode([self.exit_code, self.fault]))
        return h.digest()

    def snapshot(self) -> MachineSnapshot:
        """Everything needed to continue this machine elsewhere (outputs held here stay here)."""
        return MachineSnapshot(
            kind=self.kind, ram_base=self.memory.base, ram_size=self.memory.size, x=list(self.x), pc=self.pc,
            priv=self.priv, instret=self.instret, csrs=self.csrs.state(), waiting=self.waiting,
            tohost=None if self.tohost_offset is None else self.memory.base + self.tohost_offset,
            exit_code=self.exit_code, fault=self.fault, pages=self.memory.nonzero_pages(),
            devices=self.devices.state())

    @classmethod
    def from_snapshot(cls, snap: MachineSnapshot, *, disk: bytes | bytearray = b"") -> Machine:
        """A machine that continues exactly where ``snap`` was taken, with ``disk`` as its disk image."""
        m = cls(snap.kind, ram_size_bytes=snap.ram_size, ram_base=snap.ram_base, disk=disk)
        m.memory.load_pages(snap.pages)
        m.x[:] = snap.x
        m.pc, m.priv, m.instret, m.waiting = snap.pc, snap.priv, snap.instret, snap.waiting
        m.csrs.set_state(snap.csrs)
        m.devices.set_state(snap.devices)
        m.exit_code, m.fault = snap.exit_code, snap.fault
        if snap.exit_code is not None:
            m._halted = StopReason.EXITED
        elif snap.fault is not None:
            m._halted = StopReason.FAULTED
        if snap.tohost is not None:
            o = m.memory.offset(snap.tohost, 8)
            assert o is not None
            m.tohost_offset = o
            m.memory.watch(o >> 12)
            m.memory.watch((o + 7) >> 12)
        return m
