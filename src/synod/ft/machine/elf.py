"""Reading a program: ELF32 RISC-V executables (the ELF standard's program
header view; the RISC-V ELF psABI for e_machine 243 and e_flags).

Only what the loader needs is kept: the PT_LOAD segments (virtual address,
file bytes, memory size; the rest of a segment beyond its file bytes is
zero, as .bss), the entry point, and the addresses of the HTIF symbols
``tohost``/``fromhost`` when the symbol table has them. Rejected, with an
``ElfError`` that says why: not ELF, not 32-bit, not little-endian, not
RISC-V, not an executable (ET_EXEC), code built for the C extension
(e_flags bit 0) or a floating-point ABI (bits 1-2), more than
ELF_SEGMENTS_MAX program headers, segments summing over
PROGRAM_SIZE_BYTES_MAX, a file over ELF_FILE_BYTES_MAX, and any file that
pyelftools cannot parse.
"""

from __future__ import annotations

import io

import msgspec
from elftools.common.exceptions import ELFError as _PyElfError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from synod.ft import constants as c
from synod.ft.machine.errors import ElfError

__all__ = ["Segment", "ElfProgram", "read_elf"]

_EM_RISCV = 243
_EF_RISCV_RVC = 0x1
_EF_RISCV_FLOAT_ABI = 0x6


class Segment(msgspec.Struct, frozen=True, kw_only=True):
    """One PT_LOAD segment: ``data`` at ``vaddr``, zero-filled to ``memsz`` bytes."""

    vaddr: int
    data: bytes
    memsz: int


class ElfProgram(msgspec.Struct, frozen=True, kw_only=True):
    """A loadable program: its segments, entry pc, and HTIF symbol addresses (None when absent)."""

    entry: int
    segments: list[Segment]
    tohost: int | None
    fromhost: int | None


def read_elf(image: bytes) -> ElfProgram:
    """Parse ``image`` (the bytes of an ELF file). Raises ElfError."""
    if len(image) > c.ELF_FILE_BYTES_MAX:
        raise ElfError(f"ELF file of {len(image)} bytes is over ELF_FILE_BYTES_MAX ({c.ELF_FILE_BYTES_MAX})")
    if image[:4] != b"\x7fELF":
        raise ElfError("not an ELF file (no \\x7fELF magic)")
    if len(image) < 52 or image[4] != 1:
        raise ElfError("not a 32-bit ELF file (EI_CLASS is not ELFCLASS32): this machine is RV32")
    if image[5] != 1:
        raise ElfError("not a little-endian ELF file (EI_DATA is not ELFDATA2LSB)")
    try:
        return _parse(ELFFile(io.BytesIO(image)))
    except ElfError:
        raise
    except _PyElfError as e:
        raise ElfError(f"malformed ELF file: {e}") from e
    except Exception as e:  # a truncated or inconsistent file makes pyelftools fail in many ways (construct, struct)
        raise ElfError(f"malformed ELF file: {type(e).__name__}: {e}") from e


def _parse(elf: ELFFile) -> ElfProgram:
    header = elf.header
    if header["e_machine"] not in ("EM_RISCV", _EM_RISCV):
        raise ElfError(f"not a RISC-V ELF file (e_machine {header['e_machine']})")
    if header["e_type"] != "ET_EXEC":
        raise ElfError(f"not an executable (e_type {header['e_type']}): link it statically, non-PIE")
    flags = header["e_flags"]
    if flags & _EF_RISCV_RVC:
        raise ElfError("built for the C extension (e_flags RVC): this machine runs RV32IM; use -march=rv32im")
    if flags & _EF_RISCV_FLOAT_ABI:
        raise ElfError("built for a floating-point ABI: this machine runs RV32IM; use -mabi=ilp32")
    if elf.num_segments() > c.ELF_SEGMENTS_MAX:
        raise ElfError(f"{elf.num_segments()} program headers, over ELF_SEGMENTS_MAX ({c.ELF_SEGMENTS_MAX})")
    segments: list[Segment] = []
    total = 0
    for seg in elf.iter_segments():
        if seg["p_type"] != "PT_LOAD" or seg["p_memsz"] == 0:
            continue
        if seg["p_filesz"] > seg["p_memsz"]:
            raise ElfError(f"segment at 0x{seg['p_vaddr']:08x}: p_filesz > p_memsz")
        total += seg["p_memsz"]
        if total > c.PROGRAM_SIZE_BYTES_MAX:
            raise ElfError(f"segments of over {c.PROGRAM_SIZE_BYTES_MAX} bytes (PROGRAM_SIZE_BYTES_MAX)")
        data = seg.data()
        if len(data) != seg["p_filesz"]:
            raise ElfError(f"segment at 0x{seg['p_vaddr']:08x}: file ends inside it")
        segments.append(Segment(vaddr=seg["p_vaddr"], data=data, memsz=seg["p_memsz"]))
    if not segments:
        raise ElfError("no PT_LOAD segment")
    symbols = {"tohost": None, "fromhost": None}
    for section in elf.iter_sections():
        if isinstance(section, SymbolTableSection):
            for name in symbols:
                found = section.get_symbol_by_name(name)
                if found:
                    symbols[name] = found[0]["st_value"]
    return ElfProgram(entry=header["e_entry"], segments=segments, tohost=symbols["tohost"],
                      fromhost=symbols["fromhost"])
