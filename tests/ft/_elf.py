"""A minimal ELF32 writer for tests (the ELF standard's header, one PT_LOAD
program header, and a symbol table when symbols are given), so ELF loading
and its errors are tested without a cross compiler."""

from __future__ import annotations

import struct

EM_RISCV = 243


def make_elf(code: bytes, vaddr: int, *, entry: int | None = None, memsz: int | None = None,
             symbols: dict[str, int] | None = None, e_machine: int = EM_RISCV, e_flags: int = 0, e_type: int = 2,
             ei_class: int = 1, ei_data: int = 1) -> bytes:
    """An executable with ``code`` loaded at ``vaddr`` (zero-filled to ``memsz``)."""
    entry = vaddr if entry is None else entry
    memsz = len(code) if memsz is None else memsz
    ehsize, phsize, shsize = 52, 32, 40
    code_off = ehsize + phsize
    sections = b""
    shoff = shnum = shstrndx = 0
    tail = b""
    if symbols:
        strtab = b"\0" + b"".join(name.encode() + b"\0" for name in symbols)
        syms = bytes(16)                                          # the null symbol
        at = 1
        for name, value in symbols.items():
            syms += struct.pack("<IIIBBH", at, value, 0, 0x10, 0, 1)   # STB_GLOBAL, STT_NOTYPE, section 1
            at += len(name) + 1
        shstr = b"\0.text\0.symtab\0.strtab\0.shstrtab\0"
        sym_off = code_off + len(code)
        str_off = sym_off + len(syms)
        shstr_off = str_off + len(strtab)
        tail = syms + strtab + shstr
        shoff = shstr_off + len(shstr)
        shoff += (-shoff) % 4
        tail += bytes(shoff - shstr_off - len(shstr))
        sections = bytes(shsize)
        sections += struct.pack("<10I", 1, 1, 7, vaddr, code_off, len(code), 0, 0, 4, 0)            # .text
        sections += struct.pack("<10I", 7, 2, 0, 0, sym_off, len(syms), 3, 1, 4, 16)               # .symtab
        sections += struct.pack("<10I", 15, 3, 0, 0, str_off, len(strtab), 0, 0, 1, 0)             # .strtab
        sections += struct.pack("<10I", 23, 3, 0, 0, shstr_off, len(shstr), 0, 0, 1, 0)            # .shstrtab
        shnum, shstrndx = 5, 4
    ident = b"\x7fELF" + bytes([ei_class, ei_data, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIIIIIHHHHHH", e_type, e_machine, 1, entry, ehsize, shoff, e_flags, ehsize,
                                 phsize, 1, shsize, shnum, shstrndx)
    phdr = struct.pack("<8I", 1, code_off, vaddr, vaddr, len(code), memsz, 7, 4)
    return header + phdr + code + tail + sections
