"""synod.ft: VMware FT, primary/backup replication of a whole machine by
deterministic replay (Scales, Nelson, Venkitachalam, SIGOPS OSR 2010).

Part 1 exists: :mod:`synod.ft.machine`, the deterministic RV32IM machine
whose inputs are explicit and delivered at retired-instruction counts.
The primary/backup replication on top of it (the logging channel, the
output rule, failure detection and going live, restoring redundancy) is to
come.
"""

from synod.ft.machine import (
    BlockReadComplete,
    BlockRequest,
    BlockWrite,
    ConsoleInput,
    ConsoleOutput,
    DeviceState,
    ElfError,
    ElfProgram,
    Fault,
    InputEvent,
    Machine,
    MachineError,
    MachineSnapshot,
    NetworkOutput,
    NetworkPacket,
    OutputEvent,
    ProgramKind,
    Segment,
    StopReason,
    TimerInterrupt,
    clear_code_cache,
    read_elf,
)

__all__ = [
    "Machine", "ProgramKind", "StopReason", "Fault", "MachineSnapshot", "DeviceState", "BlockRequest",
    "InputEvent", "TimerInterrupt", "ConsoleInput", "NetworkPacket", "BlockReadComplete",
    "OutputEvent", "ConsoleOutput", "NetworkOutput", "BlockWrite",
    "ElfProgram", "Segment", "read_elf", "MachineError", "ElfError", "clear_code_cache",
]
