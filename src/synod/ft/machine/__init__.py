"""synod.ft.machine: a deterministic RV32IM machine, the substrate of
primary/backup replication by deterministic replay (Scales, Nelson,
Venkitachalam, "The Design of a Practical System for Fault-Tolerant
Virtual Machines", SIGOPS OSR 2010, section 2.1: the backup executes the
same instruction stream, and every input from outside is delivered at the
same instruction).

What it runs (RISC-V Unprivileged ISA 20191213, chapters 2 and 7;
Privileged spec 20211203, chapter 3)
    RV32I and M, one hart. Two kinds of program (``ProgramKind``), read
    from ELF32 files (``elf``): a Linux-style USER program, at privilege U,
    whose ECALLs the machine serves as system calls (``_kernel``: write,
    read, exit); and a BARE_METAL program, starting in M-mode at its entry,
    that reports through the HTIF ``tohost`` word as spike does (a nonzero
    store there ends the run: 1 is success, exit code 0; any other value v
    is exit code v >> 1, the convention of riscv-tests). A file with a
    ``tohost`` symbol is bare metal unless the caller says otherwise.
    Bare-metal programs have the machine-mode CSRs and traps of the
    Privileged spec's chapter 3.1 (``_csr``), MRET to M or U, ECALL and
    EBREAK trapping to mtvec (direct or vectored), the timer and external
    interrupts, WFI, and devices behind 32-bit registers at ``MMIO_BASE``
    (``_devices``: console, timer acknowledge, a block device whose reads
    complete by DMA through a bounce buffer, a network device). FENCE is a
    no-op (one hart, no caches) and FENCE.I ends a block. Misaligned loads
    and stores are performed, not trapped (the Unprivileged ISA, 2.6,
    allows either). An access outside RAM and the device registers is an
    access fault (mcause 1, 5 or 7); in a USER program any trap ends the
    program (``StopReason.FAULTED``, ``Machine.fault`` says which, as a
    Linux signal would). Not modelled: the C, A, F, D extensions, S-mode,
    virtual memory and PMP (their CSRs read zero), misaligned-access traps,
    more than one hart, a real-time clock (time is the cycle count).

Determinism and the inputs
    The state of the machine is a function of the program, of the inputs
    delivered, and of the retired-instruction count at which each was
    delivered; nothing else (no clock, no host randomness, no host
    addresses). ``instret`` counts retired instructions since reset (a
    trapping instruction does not retire; a served system call does) and
    the program cannot change it (the minstret CSR is that count plus an
    offset the program may set). ``run(n)`` stops with exactly n more
    retired, so a caller can stop at any count and ``deliver`` an input
    there (``TimerInterrupt``, ``ConsoleInput``, ``NetworkPacket``,
    ``BlockReadComplete``); an interrupt it makes pending and enabled is
    taken at once. A block read is copied from the disk image into a bounce
    buffer at request time and into guest memory only when its completion
    is delivered, so the instant guest memory changes is an input logged
    like the others (the paper's section 3.5). Outputs (``ConsoleOutput``,
    ``NetworkOutput``, ``BlockWrite``) are held as events tagged with the
    count that produced them, until ``take_outputs``. ``state_hash`` digests
    registers, pc, CSRs, RAM (incrementally, by dirty page) and devices:
    equal hashes at equal counts show a backup in step. ``snapshot`` and
    ``Machine.from_snapshot`` copy a running machine.

Speed: decode once (``_translate``, ``_emit``, ``_codegen``)
    Code is translated on first use into Python functions whose every field
    is a constant: a straight-line block, or the loop a block lies on within
    its page (registers in Python locals), cached by entry pc and dropped
    when a store overwrites a translated instruction; the process keeps the
    compiled code by page contents, so a second machine running the same
    program (a backup beside its primary) decodes and compiles nothing. The few instructions
    that need the exact count or can trap (device and out-of-RAM accesses,
    SYSTEM, illegal encodings) leave the translated code and run one at a
    time on the precise path (``_precise``). ``benchmarks/ft_emulator.py``
    measures instructions per second beside unicorn and qemu-riscv32.
"""

from synod.ft.machine._translate import clear_code_cache
from synod.ft.machine.elf import ElfProgram, Segment, read_elf
from synod.ft.machine.errors import ElfError, MachineError
from synod.ft.machine.machine import Machine
from synod.ft.machine.records import (
    BlockReadComplete,
    BlockRequest,
    BlockWrite,
    ConsoleInput,
    ConsoleOutput,
    DeviceState,
    Fault,
    InputEvent,
    MachineSnapshot,
    NetworkOutput,
    NetworkPacket,
    OutputEvent,
    ProgramKind,
    StopReason,
    TimerInterrupt,
)

__all__ = [
    "Machine", "ProgramKind", "StopReason", "Fault", "MachineSnapshot", "DeviceState", "BlockRequest",
    "InputEvent", "TimerInterrupt", "ConsoleInput", "NetworkPacket", "BlockReadComplete",
    "OutputEvent", "ConsoleOutput", "NetworkOutput", "BlockWrite",
    "ElfProgram", "Segment", "read_elf", "MachineError", "ElfError", "clear_code_cache",
]
