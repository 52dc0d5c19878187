"""Guest RAM, its page flags, and the incremental memory digest.

RAM is one anonymous memory mapping (zero-filled) of ``size`` bytes at guest-physical ``base``. An
access computes its offset ``o = (address - base) mod 2**32``, so a single
unsigned compare ``o < size`` says whether it is RAM.

Each 4 KiB page of the offset space has a flag byte (``flags``; 2**21 of
them, so that ``o >> 12`` indexes it for any offset a translated store
computes, ``x[rs1] + imm - base`` in (-2**32, 2**33), a negative one from
the end; entries beyond RAM stay 0):

- ``DIRTY``: written since the last digest (its digest is stale);
- ``CODE``: translated code starts in it (a store must drop those
  translations first);
- ``WATCH``: a store needs the precise path (the HTIF ``tohost`` word).

A translated store runs inline only when its page's flag is exactly
``DIRTY``; otherwise it calls the translator's slow store, which flags the
page dirty (``touch``), checks a CODE page's translated words, or hands a
WATCH page to the precise path. Invariants: a page not flagged ``DIRTY``
has its current digest in ``digests``; ``dirty`` lists exactly the pages
flagged ``DIRTY``; ``written`` flags every page written since reset (the
only pages a snapshot needs to look at).

The digest of memory is BLAKE2b over the per-page BLAKE2b-128 digests
(``digests``, 16 bytes a page, pages in address order): a state hash costs
one hash of each page written since the last one plus one pass over
``16 * pages`` bytes (64 KiB for 16 MiB of RAM).
"""

from __future__ import annotations

import hashlib
import mmap
from collections.abc import Callable

from synod.ft.constants import PAGE_SIZE_BYTES

DIRTY = 1
CODE = 2
WATCH = 4

PAGE_SHIFT = 12
_DIGEST_BYTES = 16
_FLAG_PAGES = 1 << 21
assert 1 << PAGE_SHIFT == PAGE_SIZE_BYTES


def _page_digest(data: bytes | bytearray | memoryview) -> bytes:
    return hashlib.blake2b(data, digest_size=_DIGEST_BYTES).digest()


_ZERO_PAGE_DIGEST = _page_digest(bytes(PAGE_SIZE_BYTES))


class Memory:
    """``size`` bytes of RAM at guest-physical ``base`` (both page-aligned)."""

    def __init__(self, base: int, size: int) -> None:
        assert base % PAGE_SIZE_BYTES == 0
        assert size % PAGE_SIZE_BYTES == 0
        assert 0 < size and base + size <= 1 << 32
        self.base = base
        self.size = size
        self.pages = size >> PAGE_SHIFT
        # An anonymous private mapping: zero pages cost nothing until written (a bytearray of
        # 16 MiB is a 6 ms memset), and indexing it is as fast as a bytearray's.
        self.ram = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.flags = bytearray(_FLAG_PAGES)
        self.dirty: list[int] = []
        self.digests = bytearray(_ZERO_PAGE_DIGEST * self.pages)
        self.written = bytearray(self.pages)          # 1: the page has been written since reset
        # Called with (offset, end) before bytes [offset, end) of a CODE page change.
        self.on_code_write: Callable[[int, int], None] = lambda o, end: None

    def offset(self, address: int, length: int) -> int | None:
        """The RAM offset of ``length`` bytes at ``address``, or None when any of them is outside RAM."""
        o = (address - self.base) & 0xFFFF_FFFF
        return o if o + length <= self.size else None

    def touch(self, page: int) -> None:
        """Page ``page`` is about to be written: flag it dirty (its digest is stale)."""
        f = self.flags[page]
        if not f & DIRTY:
            self.dirty.append(page)
            self.flags[page] = f | DIRTY
            self.written[page] = 1

    def write(self, o: int, data: bytes | bytearray | memoryview) -> None:
        """Copy ``data`` to RAM offset ``o`` (the precise path, loader, DMA,
        kernel), dropping translations of the code it overwrites."""
        end = o + len(data)
        assert 0 <= o and end <= self.size
        if not data:
            return
        for page in range(o >> PAGE_SHIFT, ((end - 1) >> PAGE_SHIFT) + 1):
            self.touch(page)
            if self.flags[page] & CODE:
                self.on_code_write(max(o, page << PAGE_SHIFT), min(end, (page + 1) << PAGE_SHIFT))
        self.ram[o:end] = data

    def read(self, o: int, length: int) -> bytes:
        assert 0 <= o and o + length <= self.size
        return bytes(self.ram[o:o + length])

    def watch(self, page: int) -> None:
        self.flags[page] |= WATCH

    def mark_code(self, page: int) -> None:
        self.flags[page] |= CODE

    def unmark_code(self, page: int) -> None:
        self.flags[page] &= ~CODE

    def digest(self) -> bytes:
        """BLAKE2b-256 of all of RAM, rehashing only the pages written since the last call."""
        view = memoryview(self.ram)
        for page in self.dirty:
            start = page << PAGE_SHIFT
            d = _page_digest(view[start:start + PAGE_SIZE_BYTES])
            self.digests[page * _DIGEST_BYTES:(page + 1) * _DIGEST_BYTES] = d
            self.flags[page] &= ~DIRTY
        self.dirty.clear()
        view.release()
        return hashlib.blake2b(self.digests, digest_size=32).digest()

    def nonzero_pages(self) -> dict[int, bytes]:
        """Page number -> contents, for every page that is not all zero (a snapshot's memory)."""
        zero = bytes(PAGE_SIZE_BYTES)
        out: dict[int, bytes] = {}
        page = self.written.find(1)
        while page >= 0:
            chunk = self.ram[page << PAGE_SHIFT:(page + 1) << PAGE_SHIFT]
            if chunk != zero:
                out[page] = chunk
            page = self.written.find(1, page + 1)
        return out

    def load_pages(self, pages: dict[int, bytes]) -> None:
        """Fill a fresh (all-zero) RAM with ``pages`` (page number -> 4 KiB)."""
        assert not any(self.written), "only a fresh machine is loaded from a snapshot"
        for page, data in sorted(pages.items()):
            assert 0 <= page < self.pages
            assert len(data) == PAGE_SIZE_BYTES
            self.write(page << PAGE_SHIFT, data)
