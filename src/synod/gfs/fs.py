"""GFS as an fsspec filesystem, protocol ``gfs://`` (issue 13 section 3).

``fsspec.filesystem("gfs", run_dir=DIR)`` reaches the cell whose cluster
config is in ``DIR`` (``synod gfs up --dir DIR`` writes it): the master,
its shadows and the chunkservers at their configured addresses, with the
cluster key. A URL ``gfs://HOST:PORT/path`` names the master alone (with
``key_file=`` for a cell that has a key): it tells the client where the
other nodes are. ``fsspec.open("gfs://path", run_dir=DIR)``,
``pandas.read_csv("gfs:///data/x.csv", storage_options={"run_dir": DIR})``
and pyarrow work through it with no special code.

Mapping to GFS (Ghemawat et al., SOSP 2003, 2.2-2.4): paths are the
master's full pathnames; ``ls``/``info`` ask the master (a shadow when it
is down); a file's size is its last chunk's end. Reads fetch byte ranges
chunk by chunk from the replicas. Writing opens a new file (``wb``
replaces: delete, then create) and each buffered block is written at its
offset, one mutation per chunk it touches (3.1); ``ab`` appends at the
file's end with plain writes (for record append, concurrent appenders
call :meth:`GfsFileSystem.record_append`). Directories are real
namespace entries (``mkdir``/``makedirs``); ``rm`` of a file hides it and
the master reclaims it later (4.4).

Errors: ``FileNotFoundError`` for a missing path, ``FileExistsError``,
``NotADirectoryError``/``IsADirectoryError``, and ``OSError`` carrying the
:class:`~synod.gfs.client.GfsError` otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from synod.gfs.client import GfsClient, GfsError
from synod.gfs.messages import ClientNodes, NodesReply
from synod.runtime.auth import Credentials, load_key_file
from synod.runtime.config import CONFIG_FILE_NAME, load_config
from synod.runtime.driver import Driver

__all__ = ["GfsFileSystem", "cell_addresses", "masters_in"]

MASTER_ID = "master"


def cell_addresses(run_dir: str | Path) -> tuple[dict[str, tuple[str, int]], Credentials | None]:
    """Every node's address and the cluster's credentials, from the cell's
    config in ``run_dir``.

    Raises:
        ConfigError: no readable config there.
        ValueError: a cluster that is not a GFS cell.
    """
    config = load_config(Path(run_dir) / CONFIG_FILE_NAME)
    if MASTER_ID not in config.nodes:
        raise ValueError(f"no GFS master in {run_dir}")
    return {n: (c.host, c.port) for n, c in config.nodes.items()}, Credentials.from_config(config)


def masters_in(addrs: dict[str, Any]) -> tuple[str, ...]:
    """The master's id, then its shadows', of a cell's node ids."""
    return tuple(n for n in addrs if n == MASTER_ID or n.startswith("shadow"))


def _os_error(e: GfsError) -> OSError:
    kind = {"NOT_FOUND": FileNotFoundError, "EXISTS": FileExistsError, "NOT_A_DIRECTORY": NotADirectoryError,
            "IS_A_DIRECTORY": IsADirectoryError}.get(e.status, OSError)
    return kind(str(e))


class GfsFileSystem(AbstractFileSystem):
    """fsspec filesystem over a synod GFS cell (see the module docstring).

    Args:
        run_dir: the cell's run directory (its cluster config and key).
        rpc_timeout_ms: one call's timeout.

    Raises:
        ValueError: no run_dir, or no GFS master in its config.
    """

    protocol = "gfs"
    root_marker = "/"

    def __init__(self, run_dir: str | None = None, host: str | None = None, port: int | None = None,
                 key_file: str | None = None, rpc_timeout_ms: int = 6_000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if run_dir:
            addrs, credentials = cell_addresses(run_dir)
        elif host and port:
            # Only the master's address (gfs://HOST:PORT/path): it tells where the rest is.
            addrs = {MASTER_ID: (host, int(port))}
            credentials = Credentials(key=load_key_file(Path(key_file))) if key_file else None
        else:
            raise ValueError("gfs:// needs run_dir= (the directory of `synod gfs up --dir DIR`) "
                             "or a master's address (gfs://HOST:PORT/path, key_file= for a keyed cell)")
        self.run_dir = run_dir
        self._driver = Driver(addrs, credentials=credentials)
        if not run_dir:
            reply = self._driver.run(lambda ctx: ctx.call(MASTER_ID, ClientNodes(), rpc_timeout_ms))
            if type(reply) is not NodesReply or not reply.nodes:
                raise ValueError(f"the master at {host}:{port} did not name the cell's nodes")
            for node, address in reply.nodes:
                h, _, p = address.rpartition(":")
                self._driver.addrs[node] = (h, int(p))
        self.client = GfsClient(masters_in(self._driver.addrs), self._driver.client_id, rpc_timeout_ms=rpc_timeout_ms)

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        """``gfs://HOST:PORT/path`` names the master; ``gfs:///path`` nothing."""
        rest = path[len("gfs://"):] if path.startswith("gfs://") else ""
        netloc = rest.split("/", 1)[0]
        h, sep, p = netloc.rpartition(":")
        return {"host": h, "port": int(p)} if sep and h and p.isdigit() else {}

    def _run(self, fn: Any) -> Any:
        try:
            return self._driver.run(fn)
        except GfsError as e:
            raise _os_error(e) from None

    @classmethod
    def _strip_protocol(cls, path: str | list[str]) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = str(path)
        if path.startswith("gfs://"):
            path = path[len("gfs://"):]
            if cls._get_kwargs_from_urls("gfs://" + path):
                path = path.split("/", 1)[1] if "/" in path else ""   # drop HOST:PORT
        path = "/" + path.lstrip("/")
        return path.rstrip("/") or "/"

    # -- metadata -------------------------------------------------------------------------------------
    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        if path == "/":
            return {"name": "/", "size": 0, "type": "directory"}
        st = self._run(lambda ctx: self.client.stat(ctx, path))
        return {"name": path, "size": st.length, "type": "directory" if st.is_dir else "file",
                "chunks": st.chunks, "replication": st.replication}

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        info = self.info(path)
        if info["type"] == "file":
            return [info] if detail else [path]
        names = self._run(lambda ctx: self.client.list(ctx, path))
        full = [(path.rstrip("/") + "/" + n) for n in names]
        return [self.info(p) for p in full] if detail else full

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        self._run(lambda ctx: self.client.mkdirs(ctx, path))

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        path = self._strip_protocol(path)
        if not exist_ok and self.exists(path):
            raise FileExistsError(path)
        self.mkdir(path)

    def rm_file(self, path: str) -> None:
        path = self._strip_protocol(path)
        self._run(lambda ctx: self.client.delete(ctx, path))

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def mv(self, path1: str, path2: str, recursive: bool = False, maxdepth: int | None = None,
           **kwargs: Any) -> None:
        """Rename a file at once, replacing a file at ``path2`` (GFS's rename;
        directories are not renamed)."""
        src, dst = self._strip_protocol(path1), self._strip_protocol(path2)
        self._run(lambda ctx: self.client.rename(ctx, src, dst))

    def rmdir(self, path: str) -> None:
        self.rm_file(path)

    def created(self, path: str) -> Any:
        raise NotImplementedError("GFS keeps no creation time")

    def modified(self, path: str) -> Any:
        raise NotImplementedError("GFS keeps no modification time")

    # -- data -------------------------------------------------------------------------------------------
    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        path = self._strip_protocol(path)
        size = self.info(path)["size"]
        start = 0 if start is None else (start if start >= 0 else max(size + start, 0))
        end = size if end is None else (end if end >= 0 else max(size + end, 0))
        if end <= start:
            return b""
        return self._run(lambda ctx: self.client.read(ctx, path, start, end - start))

    def replica_hosts(self, path: str, offset: int = 0) -> list[str]:
        """The chunkservers holding the chunk of ``path`` at byte ``offset``
        (for placing work beside its data: MapReduce 3.4); [] past the end."""
        path = self._strip_protocol(path)
        return self._run(lambda ctx: self.client.replicas_at(ctx, path, offset))

    def record_append(self, path: str, data: bytes) -> int:
        """GFS record append (3.3): ``data`` appended atomically at least once
        at an offset GFS chooses, returned."""
        path = self._strip_protocol(path)
        return self._run(lambda ctx: self.client.record_append(ctx, path, data))

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, autocommit: bool = True,
              cache_options: dict[str, Any] | None = None, **kwargs: Any) -> GfsFile:
        return GfsFile(self, self._strip_protocol(path), mode, block_size=block_size or 4 * 1024 * 1024,
                       autocommit=autocommit, cache_options=cache_options, **kwargs)


class GfsFile(AbstractBufferedFile):
    """A file of :class:`GfsFileSystem`: ranged reads; writes of each buffered
    block at its offset."""

    fs: GfsFileSystem

    def _fetch_range(self, start: int, end: int) -> bytes:
        client = self.fs.client
        return self.fs._run(lambda ctx: client.read(ctx, self.path, start, end - start))

    def _initiate_upload(self) -> None:
        fs, path = self.fs, self.path
        try:
            size = fs.info(path)["size"]
        except FileNotFoundError:
            size = None
        if "a" in self.mode and size is not None:
            self._at = size
            return
        if size is not None:
            fs.rm_file(path)
        fs._run(lambda ctx: fs.client.create(ctx, path))
        self._at = 0

    def _upload_chunk(self, final: bool = False) -> bool:
        data = self.buffer.getvalue()
        if data:
            at = self._at
            self.fs._run(lambda ctx: self.fs.client.write(ctx, self.path, at, data))
            self._at += len(data)
        return True
