"""Records of the machine: its inputs, its outputs, why a run stopped, a
snapshot.

Inputs (``InputEvent``) are the only way the outside world reaches the
machine, each delivered between two instructions by ``Machine.deliver``;
primary/backup replay (VMware FT, Scales et al. 2010, section 2.1) logs
each with the retired-instruction count at which it was delivered and
delivers it on the backup at the same count. Outputs (``OutputEvent``) are
what the machine says to the world, each tagged with the count of retired
instructions when it was produced (the instruction that produced it
included), so the output rule (section 2.2) can hold each one until the
log entry it depends on is acknowledged.

All are frozen, keyword-only msgspec Structs, tagged so that a union of
them encodes and decodes with the project's codec.
"""

from __future__ import annotations

import enum

import msgspec

__all__ = [
    "ProgramKind", "StopReason", "Fault", "TimerInterrupt", "ConsoleInput", "NetworkPacket", "BlockReadComplete",
    "InputEvent", "ConsoleOutput", "NetworkOutput", "BlockWrite", "OutputEvent", "BlockRequest", "DeviceState",
    "MachineSnapshot",
]


class ProgramKind(enum.Enum):
    """USER: a Linux-style user program; its ECALLs are system calls the
    machine serves (write 64, read 63, exit 93). BARE_METAL: a machine-mode
    program reporting through HTIF ``tohost``; its ECALLs trap to mtvec."""

    USER = "user"
    BARE_METAL = "bare-metal"


class StopReason(enum.Enum):
    """Why ``Machine.run`` returned."""

    BUDGET = "budget"            # the requested number of instructions retired
    EXITED = "exited"            # exit system call or tohost write: see Machine.exit_code
    WAITING = "waiting"          # WFI with nothing pending, or a read with no input: deliver an input
    FAULTED = "faulted"          # the program cannot go on: see Machine.fault
    OUTPUT_FULL = "output-full"  # OUTPUT_EVENTS_MAX outputs are held: take them, then run on


class Fault(msgspec.Struct, frozen=True, kw_only=True):
    """Why a program cannot go on: a user program's trap (what Linux would
    signal), or a bare-metal trap storm. ``mcause``/``mtval`` as the
    Privileged spec, table 3.6; ``pc`` of the instruction; ``instret`` when."""

    mcause: int
    mtval: int
    pc: int
    instret: int
    message: str


# --- Inputs ---------------------------------------------------------------------------------------


class TimerInterrupt(msgspec.Struct, frozen=True, kw_only=True, tag="timer"):
    """Sets mip.MTIP; taken when mstatus.MIE and mie.MTIE (bare metal). The
    program clears it by writing the TIMER_ACK device register."""


class ConsoleInput(msgspec.Struct, frozen=True, kw_only=True, tag="console-in"):
    """Bytes typed at the console; ``eof`` marks the end of input (a read
    then returns 0 once the bytes are consumed)."""

    data: bytes
    eof: bool = False


class NetworkPacket(msgspec.Struct, frozen=True, kw_only=True, tag="net-in"):
    """One packet arriving on the network device (at most NET_PACKET_BYTES_MAX)."""

    data: bytes


class BlockReadComplete(msgspec.Struct, frozen=True, kw_only=True, tag="block-done"):
    """Completion of the pending block read ``request_id``: ``data`` (the
    request's length) goes into guest memory now, by DMA from the bounce
    buffer. The primary makes it with ``Machine.complete_block_read``; the
    backup receives it from the log."""

    request_id: int
    data: bytes


InputEvent = TimerInterrupt | ConsoleInput | NetworkPacket | BlockReadComplete


# --- Outputs --------------------------------------------------------------------------------------


class ConsoleOutput(msgspec.Struct, frozen=True, kw_only=True, tag="console-out"):
    """Bytes written to the console (``fd`` 1 or 2 for a user program, 1 for the device register)."""

    instret: int
    data: bytes
    fd: int = 1


class NetworkOutput(msgspec.Struct, frozen=True, kw_only=True, tag="net-out"):
    """One packet sent."""

    instret: int
    data: bytes


class BlockWrite(msgspec.Struct, frozen=True, kw_only=True, tag="block-write"):
    """Sectors written to the disk, from ``sector`` on (applied to the machine's disk image at once)."""

    instret: int
    sector: int
    data: bytes


OutputEvent = ConsoleOutput | NetworkOutput | BlockWrite


# --- Device and machine state ---------------------------------------------------------------------


class BlockRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A block read in flight: ``count`` sectors from ``sector`` into guest
    address ``address``; ``bounce`` holds the data since the request."""

    request_id: int
    sector: int
    count: int
    address: int
    bounce: bytes


class DeviceState(msgspec.Struct, frozen=True, kw_only=True):
    """The device registers and queues (everything but the disk image)."""

    console_in: bytes
    console_eof: bool
    console_overrun_bytes: int
    irq_pending: int
    blk_sector: int
    blk_address: int
    blk_count: int
    blk_status: int
    blk_next_request_id: int
    blk_request: BlockRequest | None
    net_tx_address: int
    net_tx_length: int
    net_rx_address: int
    net_rx: list[bytes]
    net_rx_dropped: int


class MachineSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a new machine needs to continue exactly where this one is
    (FT VMotion's role in section 2.3): registers, pc, privilege, counters,
    CSRs, RAM (page number -> 4 KiB, zero pages left out), devices. Held
    outputs are not part of it; the disk image is passed apart."""

    kind: ProgramKind
    ram_base: int
    ram_size: int
    x: list[int]
    pc: int
    priv: int
    instret: int
    csrs: dict[str, int]
    waiting: bool
    tohost: int | None
    exit_code: int | None
    fault: Fault | None
    pages: dict[int, bytes]
    devices: DeviceState
