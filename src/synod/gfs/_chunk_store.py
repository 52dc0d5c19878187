"""A chunkserver's chunks on its disk, checksummed by block (Ghemawat et
al., SOSP 2003, sections 2.5 and 5.2).

Each chunk replica is a plain file ``chunks/<handle>`` on ``ctx.disk`` (2.5),
read and written in place (``read_range``/``write_at``). It is cut into
``BLOCK_SIZE_BYTES`` (64 KB) blocks, each with a 32-bit checksum (CRC-32C)
kept in memory and stored persistently with logging, separate from the data
(5.2): ``chunks/<handle>.meta`` is an append-only file of checksummed
records, each the chunk's version or one block's (index, length, crc); the
last record of a block wins. Data and records become durable together at
the node's next sync.

Every read verifies the blocks it touches before returning anything; a
block that fails is read once more (a read that went wrong on the way is
not damage at rest), and a mismatch that stays is reported (:class:`ChunkCorrupt`) and nothing of the bad block is
returned: the chunkserver tells the reader to go to another replica and
the master to re-replicate the chunk (5.2). A write that overwrites part of
a block first verifies that block, so that a corrupt block is never given
a fresh checksum over bad bytes. An append only extends the last block: its
checksum is recomputed from the bytes it holds.

After a crash the data file and its records may disagree (one was made
durable and not the other, or an unsynced write was lost): the block then
fails verification and is treated as corrupt, as GFS does.

No clock, socket or randomness: the chunkserver node drives it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from synod.core import Disk, RemoteProtocolError, decode, encode, pack_record, scan_records
from synod.core.errors import LocalProtocolError
from synod.core.records import checksum
from synod.gfs.constants import BLOCK_SIZE_BYTES, CORRUPT_REPLICAS_KEPT_MAX

__all__ = ["ChunkStore", "ChunkCorrupt", "StoredChunk", "CHUNK_DIR", "CORRUPT_DIR"]

CHUNK_DIR = "chunks"
CORRUPT_DIR = "corrupt"


class ChunkCorrupt(Exception):
    """A block of a chunk failed its checksum (or its record is missing)."""

    def __init__(self, handle: int, block: int) -> None:
        super().__init__(f"chunk {handle}: block {block} fails its checksum")
        self.handle = handle
        self.block = block


@dataclass(slots=True)
class StoredChunk:
    """What the store knows of one replica: its version, and per block its
    length and checksum. Invariant: every block but the last is full."""

    version: int
    lengths: list[int] = field(default_factory=list)
    crcs: list[int] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(self.lengths)


def _data_path(handle: int) -> str:
    return f"{CHUNK_DIR}/{handle}"


def _meta_path(handle: int) -> str:
    return f"{CHUNK_DIR}/{handle}.meta"


class ChunkStore:
    """The replicas on one chunkserver's disk.

    Args:
        disk: the node's ``ctx.disk``.
        chunk_size_bytes: the most a chunk holds (a multiple of the block size).
    """

    def __init__(self, disk: Disk, chunk_size_bytes: int, block_size_bytes: int = BLOCK_SIZE_BYTES) -> None:
        if chunk_size_bytes <= 0 or chunk_size_bytes % block_size_bytes:
            raise LocalProtocolError(f"chunk size {chunk_size_bytes} is not a positive multiple of the block size")
        self.disk = disk
        self.chunk_size_bytes = chunk_size_bytes
        self.block_size_bytes = block_size_bytes
        self.chunks: dict[int, StoredChunk] = {}
        self.transient_errors = 0   # blocks that failed a read and passed the read after

    # -- start-up --------------------------------------------------------------
    def load(self) -> list[int]:
        """Read every replica's records (at start). Returns the handles whose
        records were damaged: those replicas are kept aside
        (:meth:`keep_aside`) and not served; the master re-replicates them."""
        damaged = []
        names = {p.split("/")[1].split(".")[0] for p in self.disk.list(CHUNK_DIR + "/")}
        handles = sorted(int(n) for n in names if n.isdigit())
        for handle in handles:
            chunk = self._load_one(handle)
            if chunk is None:
                damaged.append(handle)
                self.keep_aside(handle)
            else:
                self.chunks[handle] = chunk
        return damaged

    def _load_one(self, handle: int) -> StoredChunk | None:
        raw = self.disk.read(_meta_path(handle))
        if not raw:
            return None
        scan = scan_records(raw)
        if scan.corrupt or not scan.records:
            return None
        chunk: StoredChunk | None = None
        try:
            for rec in scan.records:
                kind, a, b, c = decode(rec, tuple[str, int, int, int])
                if kind == "v" and a >= 1:
                    chunk = chunk or StoredChunk(version=a)
                    chunk.version = a
                elif kind == "b" and chunk is not None and 0 <= a <= len(chunk.lengths) \
                        and 0 < b <= self.block_size_bytes:
                    if a == len(chunk.lengths):
                        chunk.lengths.append(b)
                        chunk.crcs.append(c)
                    else:
                        chunk.lengths[a], chunk.crcs[a] = b, c
                else:
                    return None
        except RemoteProtocolError:
            return None
        if chunk is None or any(n != self.block_size_bytes for n in chunk.lengths[:-1]):
            return None
        return chunk

    # -- the replicas ------------------------------------------------------------------
    def held(self) -> list[tuple[int, int]]:
        """(handle, version) of every replica, for the master (2.6.2)."""
        return sorted((h, c.version) for h, c in self.chunks.items())

    def create(self, handle: int, version: int) -> None:
        """A new, empty replica.

        Raises:
            LocalProtocolError: it exists already.
        """
        if handle in self.chunks:
            raise LocalProtocolError(f"chunk {handle} exists already")
        self.disk.delete(_data_path(handle))
        self.disk.write(_meta_path(handle), pack_record(encode(("v", version, 0, 0))))
        self.chunks[handle] = StoredChunk(version=version)

    def set_version(self, handle: int, version: int) -> None:
        """The master granted a new lease at ``version`` (4.5)."""
        chunk = self._chunk(handle)
        chunk.version = version
        self.disk.append(_meta_path(handle), pack_record(encode(("v", version, 0, 0))))

    def copy(self, handle: int, new_handle: int) -> None:
        """Copy-on-write (3.4): a new replica ``new_handle`` with the bytes and
        version of ``handle``, made locally (no network), every block
        verified on the way.

        Raises:
            ChunkCorrupt: a block of ``handle`` fails its checksum (nothing made).
            LocalProtocolError: no such replica, or ``new_handle`` exists.
        """
        chunk = self._chunk(handle)
        if new_handle in self.chunks:
            raise LocalProtocolError(f"chunk {new_handle} exists already")
        data = self.read(handle, 0, chunk.size)
        self.create(new_handle, chunk.version)
        if data:
            self.write(new_handle, 0, data)

    def keep_aside(self, handle: int) -> str | None:
        """Move a damaged replica's files out of the store, under
        ``corrupt/``, so that nothing serves them and an operator can look
        (5.2). At most ``CORRUPT_REPLICAS_KEPT_MAX`` are kept: past that the
        replica is deleted. Returns where it was kept, or None."""
        self.chunks.pop(handle, None)
        kept = self.disk.list(CORRUPT_DIR + "/")
        if len({p.rsplit(".", 1)[0] if p.endswith(".meta") else p for p in kept}) >= CORRUPT_REPLICAS_KEPT_MAX:
            self.delete(handle)
            return None
        n = 1
        while f"{CORRUPT_DIR}/{handle}-{n}" in kept or f"{CORRUPT_DIR}/{handle}-{n}.meta" in kept:
            n += 1
        dest = f"{CORRUPT_DIR}/{handle}-{n}"
        for src, dst in ((_data_path(handle), dest), (_meta_path(handle), dest + ".meta")):
            if self.disk.read_range(src, 0, 0) is not None:
                self.disk.rename(src, dst)
        return dest

    def used_bytes(self) -> int:
        """Bytes the replicas hold."""
        return sum(c.size for c in self.chunks.values())

    def delete(self, handle: int) -> None:
        self.chunks.pop(handle, None)
        self.disk.delete(_data_path(handle))
        self.disk.delete(_meta_path(handle))

    # -- data --------------------------------------------------------------------------
    def read(self, handle: int, offset: int, length: int) -> bytes:
        """At most ``length`` bytes from ``offset`` (fewer past the end),
        every touched block verified.

        Raises:
            ChunkCorrupt: a touched block fails its checksum.
            LocalProtocolError: no such replica, or a negative range.
        """
        chunk = self._chunk(handle)
        if offset < 0 or length < 0:
            raise LocalProtocolError(f"read of chunk {handle}: negative range")
        end = min(offset + length, chunk.size)
        if offset >= end:
            return b""
        first, last = offset // self.block_size_bytes, (end - 1) // self.block_size_bytes
        data = self._verified(handle, chunk, first, last)
        start = offset - first * self.block_size_bytes
        return data[start:start + (end - offset)]

    def read_unverified(self, handle: int, offset: int, length: int) -> bytes:
        """The bytes as the disk returns them, no checksum looked at: only
        for the checkers' unsafe option (a chunkserver that skips 5.2).

        Raises:
            LocalProtocolError: no such replica, or a negative range.
        """
        chunk = self._chunk(handle)
        end = min(offset + length, chunk.size)
        return self.disk.read_range(_data_path(handle), offset, max(end - offset, 0)) or b""

    def write(self, handle: int, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` (at most the chunk's end; a gap past
        the replica's end reads as zeros), updating the touched blocks'
        checksums.

        Raises:
            ChunkCorrupt: a block partly overwritten fails its checksum (nothing written).
            LocalProtocolError: no such replica, a negative offset, or past the chunk size.
        """
        chunk = self._chunk(handle)
        if offset < 0 or offset + len(data) > self.chunk_size_bytes:
            raise LocalProtocolError(f"write of {len(data)} bytes at {offset} outside chunk {handle}")
        if not data:
            return
        size = chunk.size
        bs = self.block_size_bytes
        write_start, write_end = min(offset, size), offset + len(data)   # a gap past the end is written as zeros
        first, last = write_start // bs, (write_end - 1) // bs
        if write_start == offset and offset % bs == 0 and (write_end % bs == 0 or write_end >= size):
            # Whole blocks from a block boundary (the last one may end the replica): nothing
            # is kept, so the data is written and checksummed as it is (a 1 MB write's case).
            self.disk.write_at(_data_path(handle), offset, data)
            self._checksum_blocks(handle, chunk, first, last, max(size, write_end),
                                  lambda block: data[(block - first) * bs:(block + 1 - first) * bs])
            return
        # The touched blocks' new bytes, built in memory: a block holding
        # bytes that stay is read and verified first (never a fresh checksum
        # over bad bytes), then the gap's zeros and the data laid over it.
        region = bytearray((last + 1 - first) * bs)
        for block in range(first, min(last, len(chunk.lengths) - 1) + 1):
            if block * bs < write_start or block * bs + chunk.lengths[block] > write_end:
                kept = self._verified(handle, chunk, block, block)[:chunk.lengths[block]]
                region[(block - first) * bs:(block - first) * bs + len(kept)] = kept
        region[write_start - first * bs:offset - first * bs] = bytes(offset - write_start)
        region[offset - first * bs:write_end - first * bs] = data
        new_size = max(size, write_end)
        view = memoryview(region)   # (slices of a view copy once, into bytes)
        self.disk.write_at(_data_path(handle), write_start, bytes(view[write_start - first * bs:write_end - first * bs]))
        self._checksum_blocks(handle, chunk, first, last, new_size,
                              lambda block: bytes(view[(block - first) * bs:(block + 1 - first) * bs]))

    def _checksum_blocks(self, handle: int, chunk: StoredChunk, first: int, last: int, new_size: int,
                         block_bytes: Callable[[int], bytes]) -> None:
        """Blocks ``first..last`` hold new bytes (``block_bytes(i)``, at
        least the block's length): record their lengths and checksums."""
        bs = self.block_size_bytes
        records = []
        for block in range(first, last + 1):
            length = min(bs, new_size - block * bs)
            crc = checksum(block_bytes(block)[:length])
            if block == len(chunk.lengths):
                chunk.lengths.append(length)
                chunk.crcs.append(crc)
            else:
                chunk.lengths[block], chunk.crcs[block] = length, crc
            records.append(pack_record(encode(("b", block, length, crc))))
        self.disk.append(_meta_path(handle), b"".join(records))

    def append(self, handle: int, data: bytes) -> int:
        """Append at the replica's end; returns the offset written at.

        Raises:
            ChunkCorrupt: the last, partly filled block fails its checksum.
            LocalProtocolError: no such replica, or the chunk would overflow.
        """
        offset = self._chunk(handle).size
        self.write(handle, offset, data)
        return offset

    def size(self, handle: int) -> int:
        return self._chunk(handle).size

    # -- helpers -------------------------------------------------------------------
    def _chunk(self, handle: int) -> StoredChunk:
        chunk = self.chunks.get(handle)
        if chunk is None:
            raise LocalProtocolError(f"no replica of chunk {handle} here")
        return chunk

    def _verified(self, handle: int, chunk: StoredChunk, first: int, last: int) -> bytes:
        """Blocks first..last (whole), each checked against its checksum."""
        bs = self.block_size_bytes
        raw = self.disk.read_range(_data_path(handle), first * bs, (last + 1 - first) * bs) or b""
        for block in range(first, last + 1):
            length = chunk.lengths[block]
            piece = raw[(block - first) * bs:(block - first) * bs + length]
            if len(piece) != length or checksum(piece) != chunk.crcs[block]:
                # Read the block once more: a read that went wrong on the way is not a bad
                # block at rest (only what fails twice is reported and kept aside).
                again = self.disk.read_range(_data_path(handle), block * bs, length) or b""
                if len(again) != length or checksum(again) != chunk.crcs[block]:
                    raise ChunkCorrupt(handle, block)
                self.transient_errors += 1
                raw = raw[:(block - first) * bs] + again + raw[(block - first) * bs + length:]
        return raw
