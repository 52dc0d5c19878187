"""Where a job's input and output live, as its coordinator and workers see
them (Dean & Ghemawat, OSDI 2004, 3.1: input and output in a global file
system; 3.4: map tasks placed beside a replica of their input).

One interface of coroutines, each taking the node's ``ctx``, and two kinds:

- :class:`FsStorage`: ``ctx.fs``, an fsspec file system: the local one in
  real runs, the simulator's shared in-memory one, or a GFS cell through
  :class:`synod.gfs.fs.GfsFileSystem` (``synod mr run ... gfs://``). Its
  coroutines never suspend, so a handler that awaits them runs in one step,
  as if it called ``ctx.fs`` itself.
- ``synod.harness.mr_gfs.GfsStorage``: a GFS cell whose nodes are the
  job's peers (the simulator's MapReduce over GFS), through GFS's client
  library on ``ctx.call``: every read and commit is messages, under the same
  faults as the rest of the run. (It lives in the harness: MapReduce does
  not import GFS, pyproject's import contracts.)

Paths are absolute (``/in/a.txt``). Errors: ``OSError`` (FileNotFoundError
for a missing file) from either kind, so callers handle one family.
"""

from __future__ import annotations

from typing import Protocol

from synod.core import Context

__all__ = ["JobStorage", "FsStorage"]


class JobStorage(Protocol):
    """What MapReduce needs of its file system."""

    async def size(self, ctx: Context, path: str) -> int:
        """The file's length in bytes. Raises FileNotFoundError."""
        ...

    async def read(self, ctx: Context, path: str, start: int, end: int | None) -> bytes:
        """Bytes ``start`` up to ``end`` (None: the file's end; fewer past it)."""
        ...

    async def replica_hosts(self, ctx: Context, path: str, offset: int) -> list[str]:
        """Where the chunk holding byte ``offset`` has replicas ([]: unknown)."""
        ...

    async def remove(self, ctx: Context, path: str) -> None:
        """Delete a file; a missing one is no error."""
        ...

    async def ls(self, ctx: Context, directory: str) -> list[str]:
        """The full paths in ``directory`` ([] if it does not exist)."""
        ...

    async def commit(self, ctx: Context, temp: str, final: str, data: bytes) -> None:
        """Write ``data`` to ``temp``, then rename it to ``final`` at once,
        replacing a file there (3.3: readers see one execution's output)."""
        ...


class FsStorage:
    """``ctx.fs`` (see the module docstring)."""

    async def size(self, ctx: Context, path: str) -> int:
        return int(ctx.fs.size(path))

    async def read(self, ctx: Context, path: str, start: int, end: int | None) -> bytes:
        return bytes(ctx.fs.cat_file(path, start=start, end=end))

    async def replica_hosts(self, ctx: Context, path: str, offset: int) -> list[str]:
        where = getattr(ctx.fs, "replica_hosts", None)   # GFS, or the simulator's placement model
        return list(where(path, offset)) if where is not None else []

    async def remove(self, ctx: Context, path: str) -> None:
        if ctx.fs.exists(path):
            ctx.fs.rm_file(path)

    async def ls(self, ctx: Context, directory: str) -> list[str]:
        if not ctx.fs.exists(directory):
            return []
        return list(ctx.fs.ls(directory, detail=False))

    async def commit(self, ctx: Context, temp: str, final: str, data: bytes) -> None:
        ctx.fs.pipe_file(temp, data)
        ctx.fs.mv(temp, final)
