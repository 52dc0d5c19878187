"""Decode once: RV32IM code translated into Python functions.

A *block* is the straight-line run of instructions from a start pc up to
and including the first control transfer (branch, JAL, JALR), FENCE.I, an
instruction that needs the precise path (below), the end of its 4 KiB page,
or BLOCK_INSTRUCTIONS_MAX. A *region* is the block at an entry pc and, when
that block lies on a loop within its page, the other blocks of the loop
(found breadth first among at most REGION_BLOCKS_MAX blocks reachable from
the entry; a call counts as reaching its return address). A region becomes
one Python function (``_codegen``), every instruction one statement or a
few with its fields (rd, rs1, rs2, imm, funct3, its pc) folded into
constants; for the CRC loop of tests/ft/programs/compute.c (registers in
locals, a block that branches to itself an inner loop)::

    def _r(room, x=x, mem=mem, ...):      # room: instructions it may retire
        n = 0                             # instructions retired so far
        pc = 65944
        r12 = x[12]; r13 = x[13]; ...
        try:
            while True:
                if pc == 65944:           # one arm per block
                    while n + 7 <= room:
                        r15 = r14 & 1
                        r15 = (0 - r15) & 4294967295
                        ...
                        n += 7
                        if not (r13 != 0): pc = 65972; break
                    else:
                        break             # budget spent
                elif pc == 65972:
                    ...
                else:
                    break                 # left the region
        except Slow:
            x[13] = r13; ...; raise       # the precise path sees every register
        x[13] = r13; ...
        return pc, n

It returns the next pc and the number of instructions retired. A loop
whose blocks are all in one page so runs inside one call, and the run loop
dispatches (a dict lookup and a call) once per region entry instead of
once per block. Decoding and the dispatch on opcode and funct3 are paid
once per translation, not once per execution.

Registers are the list ``x`` of unsigned 32-bit ints; x0 is never written
(an instruction whose rd is x0 and has no other effect emits nothing, but
still counts). Signed comparisons flip the sign bit
(``a ^ 2**31 < b ^ 2**31`` is the signed order of a and b).

The fast path and the precise path. A load or store whose address is in
RAM (``0 <= o < size``, ``o`` its offset from RAM's base, not reduced mod
2**32: one that wraps falls outside) runs inline; a store must also find
its page's flag equal to exactly
``DIRTY`` (written since the last state hash, holds no translated code, is
not watched for ``tohost``), else it calls ``store``. Any access that is
not plain RAM (device registers, an address outside RAM), a SYSTEM
instruction, an illegal encoding, and a jump to an address that is not a
multiple of 4 instead raise ``Slow(pc, retired)`` *before* the instruction
has any effect; ``retired`` counts the instructions of this call that ran
before it. The run loop adds them and executes that one instruction on the
precise path (``_precise``), which knows the exact retired-instruction
count and takes traps. So a trap in the middle of a block is exact: the
instructions before it retired, it did not.

Self-modifying code. Each translated instruction word is recorded per
page (``_covered``). ``store`` (the out-of-line store) lets a store into a
code page through when it overwrites no translated word (data beside
code), and otherwise raises ``Slow``: the precise path performs the store,
which drops the page's translations (``Memory.on_code_write``), and the
next instruction is decoded afresh. A program therefore sees its own
stores to code at once, as under qemu and unicorn; the Unprivileged ISA,
section 2.7, promises no more than that after FENCE.I, which also ends a
region.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from types import CodeType
from typing import Any

from synod.ft.constants import (
    BLOCK_INSTRUCTIONS_MAX,
    CODE_CACHE_ENTRIES_MAX,
    PAGE_SIZE_BYTES,
    REGION_BLOCKS_MAX,
    TRANSLATION_CACHE_ENTRIES_MAX,
)
from synod.ft.machine import _codegen, _isa
from synod.ft.machine._emit import Emitter, Term
from synod.ft.machine._isa import MASK32
from synod.ft.machine._memory import CODE, WATCH, Memory

# Compiled regions for the process, by (the 4 KiB page's bytes, entry pc, limits, RAM base and size) ->
# (code, the (first word, count) of each block in it): a region depends on nothing else, so machines
# running the same program (a primary and its backups, the runs of a simulation) decode and compile once.
_CODE_CACHE: dict[tuple[bytes, int, int, int, int, int], tuple[CodeType, tuple[tuple[int, int], ...]]] = {}

Region = Callable[[int], tuple[int, int]]


def clear_code_cache() -> None:
    """Forget the process's compiled regions (so the next machine pays for
    decoding and compiling again, as the first one did: for measurements)."""
    _CODE_CACHE.clear()


_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_S16 = struct.Struct("<h")
_WORDS_PER_PAGE = PAGE_SIZE_BYTES // 4


class Slow(Exception):
    """Raised by translated code: the instruction at ``pc`` has had no effect
    and must run on the precise path; ``retired`` instructions of the same
    call ran before it."""

    def __init__(self, pc: int, retired: int) -> None:
        self.pc = pc
        self.retired = retired


def _raise_slow(pc: int, retired: int) -> int:
    raise Slow(pc, retired)


class _Block:
    """One decoded block: its start pc, statements, instruction count and terminator."""

    def __init__(self, pc: int, lines: list[str], count: int, term: Term) -> None:
        self.pc = pc
        self.lines = lines
        self.count = count
        self.term = term


class Translator:
    """The translation cache: ``pc -> region`` for regions (``region``) and
    single instructions (``single``, used to stop at an exact instruction
    count), with what each page holds so that stores into code drop it."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory
        self.regions: dict[int, Region] = {}
        self.singles: dict[int, Region] = {}
        self._page_pcs: dict[int, list[int]] = {}
        self._covered: dict[int, bytearray] = {}     # page -> 1 per translated instruction word
        self._decoded: dict[tuple[int, int], _Block] = {}
        self._page_decoded: dict[int, list[tuple[int, int]]] = {}
        self._emitter = Emitter(memory.base, memory.size)
        self.translations = 0
        self._namespace: dict[str, Any] = {
            "x": None, "mem": memory.ram, "pf": memory.flags, "u32": _U32.unpack_from, "u16": _U16.unpack_from,
            "s16": _S16.unpack_from, "p32": _U32.pack_into, "p16": _U16.pack_into, "slow": _raise_slow,
            "Slow": Slow, "store": self._store_slow, "div": _isa.div, "rem": _isa.rem,
        }
        memory.on_code_write = self._code_written

    def bind_registers(self, x: list[int]) -> None:
        """Translated code reads and writes ``x`` (32 unsigned ints) in place."""
        assert len(x) == 32
        self._namespace["x"] = x
        self.flush()

    def region(self, pc: int) -> Region:
        """The region entered at ``pc``, translated on first use."""
        found = self.regions.get(pc)
        if found is None:
            found = self._translate(pc, BLOCK_INSTRUCTIONS_MAX, REGION_BLOCKS_MAX, self.regions)
        return found

    def single(self, pc: int) -> Region:
        """The one instruction at ``pc`` as a region of one."""
        found = self.singles.get(pc)
        if found is None:
            found = self._translate(pc, 1, 1, self.singles)
        return found

    def _translate(self, pc: int, block_max: int, blocks_max: int, cache: dict[int, Region]) -> Region:
        mem = self.memory
        offset = (pc - mem.base) & MASK32
        if pc & 3 or offset + 4 > mem.size:                      # fetch fault: the precise path traps
            return lambda room: _raise_slow(pc, 0)
        if len(self.regions) + len(self.singles) >= TRANSLATION_CACHE_ENTRIES_MAX:
            self.flush()                                     # first: a flush forgets which words are code
        page = offset >> 12
        start = page << 12
        key = (mem.ram[start:start + PAGE_SIZE_BYTES], pc, block_max, blocks_max, mem.base, mem.size)
        found = _CODE_CACHE.get(key)
        if found is None:
            blocks = self._loop_of(pc, page, block_max, blocks_max)
            spans = tuple(((b.pc - mem.base - start) >> 2, b.count) for b in blocks.values())
            if len(_CODE_CACHE) >= CODE_CACHE_ENTRIES_MAX:
                _CODE_CACHE.clear()
            found = _CODE_CACHE[key] = (self._compile(pc, blocks), spans)
        code, spans = found
        covered = self._covered.setdefault(page, bytearray(_WORDS_PER_PAGE))
        for first, count in spans:                          # (a miss has marked them while decoding)
            covered[first:first + count] = b"\x01" * count
        mem.mark_code(page)
        scope: dict[str, Any] = {}
        exec(code, self._namespace, scope)
        fn: Region = scope["_r"]
        cache[pc] = fn
        self._page_pcs.setdefault(page, []).append(pc)
        self.translations += 1
        return fn

    def _loop_of(self, entry: int, page: int, block_max: int, blocks_max: int) -> dict[int, _Block]:
        """The blocks of the region entered at ``entry``: the entry block, and
        when it lies on a loop within its page, the blocks of that loop (those
        reachable from the entry, breadth first, that lead back to it; a call
        counts as leading to its return address)."""
        base = self.memory.base
        found: dict[int, _Block] = {}
        queue = [entry]
        while queue and len(found) < blocks_max:
            start = queue.pop(0)
            if start in found:
                continue
            found[start] = block = self._block(start, block_max)
            for succ in block.term.links():
                if ((succ - base) & MASK32) >> 12 == page and succ not in found:
                    queue.append(succ)
        preds: dict[int, list[int]] = {pc: [] for pc in found}
        for pc, block in found.items():
            for succ in block.term.links():
                if succ in preds:
                    preds[succ].append(pc)
        loop, stack = {entry}, [entry]
        while stack:
            for p in preds[stack.pop()]:
                if p not in loop:
                    loop.add(p)
                    stack.append(p)
        if entry not in preds[entry] and len(loop) == 1:
            return {entry: found[entry]}
        return {pc: b for pc, b in found.items() if pc in loop}

    def _block(self, pc: int, block_max: int) -> _Block:
        """The block at ``pc``, decoded once (and again only after its page changes)."""
        key = (pc, block_max)
        block = self._decoded.get(key)
        if block is None:
            mem = self.memory
            block = self._decoded[key] = self._decode_block(pc, block_max)
            offset = (pc - mem.base) & MASK32
            page = offset >> 12
            self._page_decoded.setdefault(page, []).append(key)
            covered = self._covered.setdefault(page, bytearray(_WORDS_PER_PAGE))
            first = (offset & (PAGE_SIZE_BYTES - 1)) >> 2
            covered[first:first + block.count] = b"\x01" * block.count
            mem.mark_code(page)
        return block

    def _decode_block(self, pc: int, block_max: int) -> _Block:
        mem = self.memory
        offset = (pc - mem.base) & MASK32
        page_end = (offset | (PAGE_SIZE_BYTES - 1)) + 1
        lines: list[str] = []
        k = 0
        at = pc
        while True:
            w = _U32.unpack_from(mem.ram, offset)[0]
            body, term = self._emitter.emit(w, at, k)
            lines.extend(body)
            k += 1
            at = (at + 4) & MASK32
            offset += 4
            if term is not None:
                return _Block(pc, lines, k, term)
            if offset >= page_end or k == block_max:
                return _Block(pc, lines, k, Term.jump(at))

    @staticmethod
    def _compile(entry: int, blocks: dict[int, _Block]) -> CodeType:
        first = blocks[entry]
        if len(blocks) == 1 and entry not in first.term.successors:
            src = _codegen.flat(entry, first.lines, first.count, first.term)
        else:
            src = _codegen.looped(entry, [(b.pc, b.lines, b.count, b.term) for b in blocks.values()])
        return compile(src, f"<rv32 region 0x{entry:08x}>", "exec")

    def _code_written(self, o: int, end: int) -> None:
        """Bytes [o, end) of one CODE page are about to change: drop the page's
        translations when any of those bytes is a translated instruction."""
        page = o >> 12
        covered = self._covered.get(page)
        if covered is None:
            return
        first, last = (o & (PAGE_SIZE_BYTES - 1)) >> 2, ((end - 1) & (PAGE_SIZE_BYTES - 1)) >> 2
        if any(covered[first:last + 1]):
            self.invalidate_page(page)

    def invalidate_page(self, page: int) -> None:
        """Drop every translation that starts in RAM page ``page`` (a region never leaves its page)."""
        for pc in self._page_pcs.pop(page, ()):
            self.regions.pop(pc, None)
            self.singles.pop(pc, None)
        for key in self._page_decoded.pop(page, ()):
            self._decoded.pop(key, None)
        self._covered.pop(page, None)
        self.memory.unmark_code(page)

    def flush(self) -> None:
        """Drop every translation."""
        for page in list(self._page_pcs) + list(self._page_decoded):
            self.invalidate_page(page)

    def _store_slow(self, o: int, size: int, value: int, pc: int, retired: int) -> None:
        """A store the inline test did not let through: into a page not yet
        dirty, holding code, or watched; across a page; or outside RAM."""
        mem = self.memory
        end = o + size
        if o < 0 or end > mem.size:
            raise Slow(pc, retired)
        flags = mem.flags
        first, last = o >> 12, (end - 1) >> 12
        if (flags[first] | flags[last]) & WATCH:
            raise Slow(pc, retired)
        for page in (first, last) if last != first else (first,):
            if flags[page] & CODE:
                covered = self._covered.get(page)
                lo = max(o, page << 12) & (PAGE_SIZE_BYTES - 1)
                hi = (min(end, (page + 1) << 12) - 1) & (PAGE_SIZE_BYTES - 1)
                if covered is not None and any(covered[lo >> 2:(hi >> 2) + 1]):
                    raise Slow(pc, retired)                  # overwrites translated code: the precise path
            mem.touch(page)
        mem.ram[o:end] = value.to_bytes(size, "little")
