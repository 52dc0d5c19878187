"""Limits and defaults of synod.ft, each with its unit (STYLE.md: "put a limit
on everything").

The machine's memory map (``synod.ft.machine``): guest RAM is one block at
``RAM_BASE_USER`` for a Linux-style user program (so a null pointer faults,
as under Linux, whose static RISC-V programs link at 0x10000) or at
``RAM_BASE_BARE_METAL`` for a machine-mode program (the DRAM base of spike
and qemu's ``virt`` machine, where RISC-V's own test environment links);
the device registers sit at ``MMIO_BASE`` (qemu ``virt``'s UART address).
"""

from __future__ import annotations

__all__ = [
    "PAGE_SIZE_BYTES", "RAM_SIZE_BYTES_DEFAULT", "RAM_SIZE_BYTES_MIN", "RAM_SIZE_BYTES_MAX", "RAM_BASE_USER",
    "RAM_BASE_BARE_METAL", "MMIO_BASE", "MMIO_SIZE_BYTES", "ELF_FILE_BYTES_MAX", "PROGRAM_SIZE_BYTES_MAX",
    "ELF_SEGMENTS_MAX", "BLOCK_INSTRUCTIONS_MAX", "REGION_BLOCKS_MAX", "TRANSLATION_CACHE_ENTRIES_MAX",
    "CODE_CACHE_ENTRIES_MAX", "CONSOLE_INPUT_BYTES_MAX",
    "SYSCALL_IO_BYTES_MAX", "NET_PACKET_BYTES_MAX", "NET_RX_QUEUE_PACKETS_MAX", "OUTPUT_EVENTS_MAX",
    "DISK_SECTOR_BYTES", "DISK_SIZE_BYTES_MAX", "BLOCK_REQUEST_SECTORS_MAX", "TRAPS_WITHOUT_RETIRE_MAX",
]

# --- Memory ---

# Granule of dirty tracking, state hashing and translated-code invalidation, bytes.
PAGE_SIZE_BYTES = 4096

# Guest RAM, bytes: default, smallest and largest accepted (a multiple of a page).
RAM_SIZE_BYTES_DEFAULT = 16 * 1024 * 1024
RAM_SIZE_BYTES_MIN = 64 * 1024
RAM_SIZE_BYTES_MAX = 256 * 1024 * 1024

# Guest-physical address of RAM's first byte, per program kind.
RAM_BASE_USER = 0x0001_0000
RAM_BASE_BARE_METAL = 0x8000_0000

# Device registers (bare-metal programs only), guest-physical address and size in bytes.
MMIO_BASE = 0x1000_0000
MMIO_SIZE_BYTES = 0x1000

# --- Programs ---

# Largest ELF file accepted, bytes.
ELF_FILE_BYTES_MAX = 64 * 1024 * 1024

# Largest sum of the PT_LOAD segments' memory sizes, bytes.
PROGRAM_SIZE_BYTES_MAX = 64 * 1024 * 1024

# Most program headers an ELF file may have.
ELF_SEGMENTS_MAX = 64

# --- Translation (decode once, run many) ---

# Longest straight-line block translated into one Python function, instructions.
BLOCK_INSTRUCTIONS_MAX = 64

# Blocks looked at from a region's entry (breadth first, within its page) to find the loop it is on.
REGION_BLOCKS_MAX = 16

# Translated regions kept by a machine (regions and single instructions together); beyond, all are dropped.
TRANSLATION_CACHE_ENTRIES_MAX = 65536

# Compiled region sources kept by the process, shared by its machines; beyond, all are dropped.
CODE_CACHE_ENTRIES_MAX = 4096

# --- Devices and the user program's kernel ---

# Console input bytes waiting to be read; a delivery beyond is cut (as a UART overrun), counted.
CONSOLE_INPUT_BYTES_MAX = 1024 * 1024

# Most bytes one read or write ecall moves (a larger request is a short read or write, as Linux may do).
SYSCALL_IO_BYTES_MAX = 1024 * 1024

# Largest network packet, in or out, bytes.
NET_PACKET_BYTES_MAX = 65536

# Network packets waiting to be received; a packet delivered to a full queue is dropped, counted.
NET_RX_QUEUE_PACKETS_MAX = 256

# Output events (console writes, packets, block writes) held until taken; at the limit `run` stops early.
OUTPUT_EVENTS_MAX = 4096

# Block device sector, bytes; largest disk image, bytes; most sectors one request moves.
DISK_SECTOR_BYTES = 512
DISK_SIZE_BYTES_MAX = 64 * 1024 * 1024
BLOCK_REQUEST_SECTORS_MAX = 256

# --- Traps ---

# Traps taken one after another with no instruction retired between them; one more is a trap storm
# (mtvec points at code that cannot run) and stops the machine as faulted.
TRAPS_WITHOUT_RETIRE_MAX = 8
