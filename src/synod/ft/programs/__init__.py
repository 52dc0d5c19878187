"""synod's own RV32IM programs for the fault-tolerant machine, with their
sources (written for synod): ``echo`` (console input in upper case, then
the byte count: output independent of when input arrives), ``reads`` (a
line per read: output that depends on when input arrived, which shows a
broken output rule), ``primes`` (compute-bound, a progress line every
1,000 primes), ``spew`` (output-heavy: 20,000 numbered lines), ``netecho`` (network
packets in, each back reversed), ``ticks`` (bare metal: a timer interrupt
handler counts ticks while the program computes; its lines depend on when
the interrupts came), and ``disk`` (bare metal: reads the disk by DMA and
prints a hash of each 4 KiB, racing each read by writing into the buffer
it fills: the disk I/O issues of the paper's section 3.5; its output
depends on when each read completed). The ELF files are built from the
sources here by
``make ft-programs`` (Debian's gcc-riscv64-unknown-elf) and shipped, so
running them needs no compiler.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["PROGRAMS", "program_image", "disk_image"]

PROGRAMS = ("echo", "reads", "primes", "spew", "netecho", "disk", "ticks")


def disk_image(sectors: int = 64) -> bytes:
    """A disk image of ``sectors`` 512-byte sectors whose bytes are a fixed
    pattern (for ``disk``)."""
    return bytes((i * 7 + (i >> 9)) & 0xFF for i in range(sectors * 512))


def program_image(name: str) -> bytes:
    """The ELF file of program ``name`` (one of PROGRAMS).

    Raises:
        ValueError: no such program.
    """
    if name not in PROGRAMS:
        raise ValueError(f"no program {name!r}: one of {', '.join(PROGRAMS)}")
    return resources.files(__name__).joinpath(f"{name}.elf").read_bytes()
