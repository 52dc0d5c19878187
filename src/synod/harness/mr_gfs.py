"""MapReduce over a simulated GFS cell (Dean & Ghemawat, OSDI 2004, 3.1 and
3.4; Ghemawat et al., SOSP 2003): the job's coordinator and workers, the
cell's master, shadows and chunkservers, all nodes of one simulation.

- :class:`GfsStorage`: the job's storage (:mod:`synod.mapreduce._storage`)
  as GFS's client library on ``ctx.call``: map tasks read their splits from
  chunkservers, reduce tasks commit their outputs by GFS's atomic rename,
  the coordinator asks the master where each split's first chunk has its
  replicas, all by messages under the run's faults.
- :class:`InputLoader`: a client node that puts the inputs into the cell
  before the job reads them, each file whole under a temporary name and
  then renamed into place, so the coordinator (waiting for its inputs)
  never sees half a file.
- Locality: worker ``i`` runs on chunkserver ``i mod n``'s host; a map task
  whose split starts in a chunk with a replica there is handed to that
  worker first, and the job's status counts those executions (3.4).

:func:`synod.harness.mapreduce.run_sim_job` with ``gfs=GfsCell(...)`` runs
it; the checkers read the committed outputs from the replicas
(:func:`synod.harness.gfs.file_bytes`, :func:`~synod.harness.gfs.files_in`).
"""

from __future__ import annotations

from typing import Any

from synod.core import Context, Node
from synod.gfs.client import GfsClient, GfsError
from synod.harness.gfs import GfsCell

__all__ = ["GfsStorage", "InputLoader"]

LOADER_ID = "gfs-loader"
LOAD_RETRY_MS = 100


class GfsStorage:
    """A GFS cell through a :class:`~synod.gfs.client.GfsClient` of this
    node, made at its first use (one storage object per node object, so
    per life of the node). Implements ``synod.mapreduce._storage.JobStorage``.

    Args:
        masters: the cell's master, then its shadows (node ids).
        rpc_timeout_ms: the client's per-call timeout (virtual ms).
        retry_for_ms: how long the client waits out a master that asks it
            to retry (a master restarting) before an operation fails.
    """

    def __init__(self, masters: tuple[str, ...], *, rpc_timeout_ms: int = 300, retry_for_ms: int = 6_000) -> None:
        self.masters = masters
        self.rpc_timeout_ms = rpc_timeout_ms
        self.retry_for_ms = retry_for_ms
        self._client: GfsClient | None = None

    def client(self, ctx: Context) -> GfsClient:
        """This life's GFS client (made at the first call)."""
        if self._client is None:
            # A client id of this life: data a crashed life pushed, still in
            # flight, is never taken for this one's (its data ids restart at 1).
            life = f"{ctx.rng.getrandbits(32):08x}"
            self._client = GfsClient(self.masters, f"{ctx.node_id}/{life}", rpc_timeout_ms=self.rpc_timeout_ms,
                                     retry_for_ms=self.retry_for_ms)
        return self._client

    @staticmethod
    async def _do(op: Any, path: str) -> Any:
        """Await a client call; GfsError as OSError (FileNotFoundError for NOT_FOUND)."""
        try:
            return await op
        except GfsError as e:
            if e.status == "NOT_FOUND":
                raise FileNotFoundError(path) from None
            raise OSError(f"GFS: {e}") from None

    async def size(self, ctx: Context, path: str) -> int:
        stat = await self._do(self.client(ctx).stat(ctx, path), path)
        if stat.is_dir:
            raise IsADirectoryError(path)
        return int(stat.length)

    async def read(self, ctx: Context, path: str, start: int, end: int | None) -> bytes:
        if end is None:
            end = await self.size(ctx, path)
        if end <= start:
            return b""
        return bytes(await self._do(self.client(ctx).read(ctx, path, start, end - start), path))

    async def replica_hosts(self, ctx: Context, path: str, offset: int) -> list[str]:
        return list(await self._do(self.client(ctx).replicas_at(ctx, path, offset), path))

    async def remove(self, ctx: Context, path: str) -> None:
        try:
            await self._do(self.client(ctx).delete(ctx, path), path)
        except FileNotFoundError:
            pass

    async def ls(self, ctx: Context, directory: str) -> list[str]:
        try:
            names = await self._do(self.client(ctx).list(ctx, directory), directory)
        except FileNotFoundError:
            return []
        return [f"{directory.rstrip('/')}/{name}" for name in names]

    async def commit(self, ctx: Context, temp: str, final: str, data: bytes) -> None:
        gfs = self.client(ctx)
        await self.remove(ctx, temp)   # an earlier try of this same commit
        await self._do(gfs.create(ctx, temp), temp)
        if data:
            await self._do(gfs.write(ctx, temp, 0, data), temp)
        await self._do(gfs.rename(ctx, temp, final), temp)


class InputLoader(Node):
    """Puts ``inputs`` (path -> bytes) into the cell, one file after
    another, each whole under a temporary name and then renamed into place;
    a failed step is tried again."""

    def __init__(self, cell: GfsCell, inputs: dict[str, bytes], out_dir: str) -> None:
        self.cell = cell
        self.inputs = inputs
        self.out_dir = out_dir

    async def on_start(self, ctx: Context) -> None:
        storage = GfsStorage(self.cell.masters, rpc_timeout_ms=self.cell.rpc_timeout_ms)
        gfs = storage.client(ctx)
        for directory in sorted(({p.rsplit("/", 1)[0] for p in self.inputs} | {self.out_dir}) - {""}):
            while not await self._try(ctx, gfs.mkdirs(ctx, directory)):
                await ctx.sleep(LOAD_RETRY_MS)
        for path in sorted(self.inputs):
            temp = f"{path.rsplit('/', 1)[0]}/.loading-{path.rsplit('/', 1)[1]}"
            while True:
                try:
                    await storage.commit(ctx, temp, path, self.inputs[path])
                    break
                except OSError as e:
                    ctx.trace("load_retry", path=path, error=str(e))
                    await ctx.sleep(LOAD_RETRY_MS)
            ctx.trace("loaded", path=path, bytes=len(self.inputs[path]))

    @staticmethod
    async def _try(ctx: Context, op: Any) -> bool:
        try:
            await op
            return True
        except GfsError as e:
            ctx.trace("load_retry", error=str(e))
            return False

