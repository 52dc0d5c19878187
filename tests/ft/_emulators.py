"""The references synod's machine is compared with, and how programs are built.

- ``build``: compile this folder's programs with Debian's
  riscv64-unknown-elf-gcc (rv32im, ilp32, no libc) into a temp dir.
- ``run_qemu``: a user-level program under qemu-riscv32 (Debian's
  qemu-user): its stdout and exit status.
- ``Lockstep``: the same ELF under unicorn (PyPI) and synod side by side;
  at every ``every``-th instruction unicorn is about to execute, synod is run
  to the same retired count and all 32 registers and the pc are compared.
  User programs get Linux's write/read/exit in unicorn's interrupt hook.
  Bare-metal programs need a shim: unicorn reports exceptions to the hook
  but does not enter them, and stops at WFI; the hook therefore enters the
  trap as the Privileged spec (3.1.6.1, 3.1.7, 3.3.1) says (mepc, mcause,
  mtval, mstatus.MPIE/MIE/MPP, privilege, pc := mtvec), and at WFI delivers
  the machine timer interrupt, as the synod side's harness does (and at
  EBREAK, which unicorn treats as the end of the run, the breakpoint). The
  handler's instructions, the CSR instructions and MRET are unicorn's own.
  Unicorn models RV32GC: a read of misa gives its value, so the reading
  instruction's destination register is set to synod's value before the
  compare (the one register substitution, counted in ``substitutions``).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from synod.ft import ConsoleInput, Machine, ProgramKind, StopReason, TimerInterrupt

PROGRAMS = Path(__file__).resolve().parent / "programs"
GCC = "riscv64-unknown-elf-gcc"
QEMU = "qemu-riscv32"
# gcc 12 picks its rv32im/ilp32 libgcc only for exactly -march=rv32im; assembly-only programs may
# name the CSR and FENCE.I extensions (they link no libgcc).
C_FLAGS = ["-march=rv32im", "-mabi=ilp32", "-O2", "-ffreestanding", "-nostdlib", "-nostartfiles", "-static",
           "-fno-pic", "-fno-builtin", "-Wl,--build-id=none", "-Wl,--no-warn-rwx-segments"]
ASM_FLAGS = ["-march=rv32im_zicsr_zifencei", "-mabi=ilp32", "-nostdlib", "-nostartfiles", "-static",
             "-Wl,--build-id=none", "-Wl,--no-warn-rwx-segments"]


def need_gcc() -> str:
    """The cross compiler's path, or skip the test saying how to get it."""
    path = shutil.which(GCC)
    if path is None:
        pytest.skip(f"{GCC} not installed (apt-get install gcc-riscv64-unknown-elf; .ci/run does)")
    return path


def need_qemu() -> str:
    path = shutil.which(QEMU)
    if path is None:
        pytest.skip(f"{QEMU} not installed (apt-get install qemu-user; .ci/run does)")
    return path


def build_user(out_dir: Path, name: str, *sources: Path | str) -> Path:
    """Link ``sources`` (this folder's file names or paths) with user_start.S
    and user.ld into ``out_dir/name.elf``."""
    files = [str(PROGRAMS / "user_start.S")] + [str(PROGRAMS / s) if isinstance(s, str) else str(s) for s in sources]
    elf = out_dir / f"{name}.elf"
    _gcc([*C_FLAGS, "-I", str(PROGRAMS), "-T", str(PROGRAMS / "user.ld"), "-o", str(elf), *files, "-lgcc"])
    return elf


def build_bare(out_dir: Path, name: str, *sources: Path | str) -> Path:
    """Link bare-metal ``sources`` with bare.ld into ``out_dir/name.elf``."""
    files = [str(PROGRAMS / s) if isinstance(s, str) else str(s) for s in sources]
    elf = out_dir / f"{name}.elf"
    _gcc([*ASM_FLAGS, "-T", str(PROGRAMS / "bare.ld"), "-o", str(elf), *files])
    return elf


def build_user_asm(out_dir: Path, name: str, text: str) -> Path:
    """Assemble and link the whole user program ``text`` (its own _start) with user.ld."""
    source = out_dir / f"{name}.S"
    source.write_text(text)
    elf = out_dir / f"{name}.elf"
    _gcc([*ASM_FLAGS, "-T", str(PROGRAMS / "user.ld"), "-o", str(elf), str(source)])
    return elf


def _gcc(args: list[str]) -> None:
    proc = subprocess.run([need_gcc(), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def run_qemu(elf: Path, stdin: bytes = b"") -> tuple[bytes, int]:
    """stdout and exit status of ``elf`` under qemu-riscv32."""
    proc = subprocess.run([need_qemu(), str(elf)], input=stdin, capture_output=True, timeout=300)
    return proc.stdout, proc.returncode


def run_synod(elf: Path | bytes, stdin: bytes = b"", max_instructions: int = 10**9) -> tuple[bytes, int | None, Machine]:
    """stdout, exit code and the machine after running a user program to its end."""
    m = Machine.from_elf(elf if isinstance(elf, bytes) else elf.read_bytes())
    m.deliver(ConsoleInput(data=stdin, eof=True))
    stop = m.run(max_instructions)
    assert stop is StopReason.EXITED, (stop, m.fault)
    out = b"".join(e.data for e in m.take_outputs() if getattr(e, "fd", 1) == 1)
    return out, m.exit_code, m


# --- unicorn ---------------------------------------------------------------------------------------

_MSTATUS_MIE, _MSTATUS_MPIE, _MSTATUS_MPP = 0x8, 0x80, 0x1800
_WFI = 0x1050_0073
_EBREAK = 0x0010_0073


@dataclass
class Lockstep:
    """Runs ``elf`` under unicorn and synod in lockstep (see the module docstring)."""

    elf: bytes
    every: int = 1                          # 0: no per-instruction hook; compare the final registers only
    stdin: bytes = b""
    stop_symbol: str | None = None          # bare metal: compare up to this label only
    compared: int = 0                       # register-file comparisons made
    substitutions: int = 0
    unicorn_count: int = 0                  # instructions unicorn retired
    unicorn_stdout: bytearray = field(default_factory=bytearray)
    unicorn_exit: int | None = None
    mismatch: str | None = None

    def run(self) -> Machine:
        """Run both to the end (or ``stop_symbol``); returns the synod machine.
        ``mismatch`` names the first difference, if any."""
        from unicorn import UC_ARCH_RISCV, UC_HOOK_CODE, UC_HOOK_INTR, UC_MODE_RISCV32, Uc
        from unicorn import riscv_const as rc

        self._rc = rc
        self.machine = m = Machine.from_elf(self.elf)
        self.bare = m.kind is ProgramKind.BARE_METAL
        if not self.bare:
            m.deliver(ConsoleInput(data=self.stdin, eof=True))
        elf = ELFFile(io.BytesIO(self.elf))
        uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV32)
        self._map(uc, elf)
        self._stdin = bytearray(self.stdin)
        self._stop_at = self._symbol(elf, self.stop_symbol) if self.stop_symbol else None
        self._pending_rd: int | None = None
        self._after_trap = False
        self._last = 0
        if self.every:
            uc.hook_add(UC_HOOK_CODE, self._on_code)
        uc.hook_add(UC_HOOK_INTR, self._on_interrupt)
        uc.emu_start(elf.header["e_entry"], 0xFFFF_FFFF)
        if self.every == 0:
            assert not self.bare, "a bare-metal program needs the per-instruction hook (its shim)"
            assert m.run(10**10) is StopReason.EXITED
            self.unicorn_count = m.instret               # unicorn did not count: compare registers and pc only
        if self.mismatch is None and self._stop_at != -1:
            self._compare(uc, uc.reg_read(rc.UC_RISCV_REG_PC))
        return m

    def _map(self, uc, elf: ELFFile) -> None:
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_LOAD":
                continue
            base = seg["p_vaddr"] & ~0xFFF
            size = ((seg["p_vaddr"] + seg["p_memsz"] + 0xFFF) & ~0xFFF) - base
            uc.mem_map(base, size)
            uc.mem_write(seg["p_vaddr"], seg.data())
        if self.bare:
            uc.mem_map(0x1000_0000, 0x1000)             # the device registers, as plain memory here

    @staticmethod
    def _symbol(elf: ELFFile, name: str) -> int:
        found = elf.get_section_by_name(".symtab").get_symbol_by_name(name)
        assert found, f"no symbol {name}"
        return int(found[0]["st_value"])

    def _regs(self, uc) -> list[int]:
        rc = self._rc
        return [0] + [uc.reg_read(getattr(rc, f"UC_RISCV_REG_X{i}")) & 0xFFFF_FFFF for i in range(1, 32)]

    def _compare(self, uc, pc: int) -> None:
        m = self.machine
        stop = m.run_to(self.unicorn_count)
        while stop is StopReason.WAITING and self.bare:
            m.deliver(TimerInterrupt())
            stop = m.run_to(self.unicorn_count)
        if m.instret != self.unicorn_count:
            self.mismatch = f"synod retired {m.instret}, unicorn {self.unicorn_count}"
        elif m.pc != pc:
            self.mismatch = f"after {m.instret} instructions: pc synod 0x{m.pc:08x} unicorn 0x{pc:08x}"
        else:
            theirs = self._regs(uc)
            diff = [i for i in range(32) if theirs[i] != m.x[i]]
            if diff:
                self.mismatch = (f"after {m.instret} instructions (pc 0x{pc:08x}): " + ", ".join(
                    f"x{i} synod 0x{m.x[i]:08x} unicorn 0x{theirs[i]:08x}" for i in diff))
        self.compared += 1
        if self.mismatch:
            uc.emu_stop()

    def _on_code(self, uc, address: int, size: int, _data: object) -> None:
        if self.mismatch:
            return
        rc = self._rc
        if self._pending_rd is not None:                 # the misa read just retired: use synod's value
            rd, self._pending_rd = self._pending_rd, None
            self.machine.run_to(self.unicorn_count)
            uc.reg_write(getattr(rc, f"UC_RISCV_REG_X{rd}"), self.machine.x[rd])
            self.substitutions += 1
        if address == self._stop_at:
            self._compare(uc, address)
            uc.emu_stop()
            self._stop_at = -1
            return
        if self._after_trap:
            self._after_trap = False                     # synod takes the trap with the next instruction
        elif self.unicorn_count % self.every == 0:
            self._compare(uc, address)
            if self.mismatch:
                return
        self._last = address
        word = int.from_bytes(uc.mem_read(address, 4), "little")
        if self.bare and word == _EBREAK:                 # unicorn ends the run at EBREAK: enter the trap here
            self._enter(uc, 3, address, next_pc=address)
            self._after_trap = True
            return
        self.unicorn_count += 1
        if self.bare and word & 0x7F == 0x73 and (word >> 12) & 3 and word >> 20 == 0x301 and (word >> 7) & 31:
            self._pending_rd = (word >> 7) & 31
        if self.bare and word == _WFI:                    # WFI retires; the timer interrupt is taken
            self._enter(uc, 0x8000_0007, 0, next_pc=address + 4)

    def _on_interrupt(self, uc, intno: int, _data: object) -> None:
        rc = self._rc
        if not self.bare:
            self._syscall(uc)
            return
        self.unicorn_count -= 1                          # a trapping instruction does not retire
        word = int.from_bytes(uc.mem_read(self._last, 4), "little")
        priv = uc.reg_read(rc.UC_RISCV_REG_PRIV)
        cause = 8 + (3 if priv == 3 else 0) if intno == 8 else intno
        tval = {2: word, 3: self._last}.get(cause, 0)
        self._enter(uc, cause, tval, next_pc=self._last)
        self._after_trap = True

    def _enter(self, uc, cause: int, tval: int, next_pc: int) -> None:
        rc = self._rc
        priv = uc.reg_read(rc.UC_RISCV_REG_PRIV)
        uc.reg_write(rc.UC_RISCV_REG_PRIV, 3)              # first: unicorn writes CSRs with the current privilege
        status = uc.reg_read(rc.UC_RISCV_REG_MSTATUS)
        status = (status & ~(_MSTATUS_MIE | _MSTATUS_MPIE | _MSTATUS_MPP)) | (_MSTATUS_MPIE if status & _MSTATUS_MIE
                                                                            else 0) | (priv << 11)
        uc.reg_write(rc.UC_RISCV_REG_MSTATUS, status)
        uc.reg_write(rc.UC_RISCV_REG_MEPC, next_pc)
        uc.reg_write(rc.UC_RISCV_REG_MCAUSE, cause)
        uc.reg_write(rc.UC_RISCV_REG_MTVAL, tval)
        mtvec = uc.reg_read(rc.UC_RISCV_REG_MTVEC)
        vectored = mtvec & 1 and cause & 0x8000_0000
        uc.reg_write(rc.UC_RISCV_REG_PC, (mtvec & ~3) + (4 * (cause & 0xFFFF) if vectored else 0))

    def _syscall(self, uc) -> None:
        rc = self._rc
        a0, a1, a2, a7 = (uc.reg_read(getattr(rc, f"UC_RISCV_REG_{r}")) for r in ("A0", "A1", "A2", "A7"))
        if a7 == 64:
            data = bytes(uc.mem_read(a1, a2))
            if a0 == 1:
                self.unicorn_stdout += data
            uc.reg_write(rc.UC_RISCV_REG_A0, a2)
        elif a7 == 63:
            data = bytes(self._stdin[:a2])
            del self._stdin[:a2]
            uc.mem_write(a1, data)
            uc.reg_write(rc.UC_RISCV_REG_A0, len(data))
        elif a7 in (93, 94):
            self.unicorn_exit = a0 & 0xFF
            uc.emu_stop()
        else:
            uc.reg_write(rc.UC_RISCV_REG_A0, (-38) & 0xFFFF_FFFF)
