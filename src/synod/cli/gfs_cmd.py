"""``synod gfs``: a local GFS cell (Ghemawat et al., SOSP 2003) and a client
for it.

::

    synod gfs up [--chunkservers 5] [--shadows 2] [--chunk-size 64MiB] [--dir runs/gfs]
    synod gfs status|fsck [--dir runs/gfs] [--json]
    synod gfs ls PATH | mkdir PATH | put LOCAL PATH | get PATH LOCAL | cat PATH
    synod gfs append PATH TEXT | snapshot SRC DST | rm PATH
    synod gfs down [--dir runs/gfs]

``up`` writes the spec of :func:`synod.harness.gfs_real.cell_spec` (the
master, shadow masters ``shadow1..``, chunkservers ``cs1..`` on two racks),
starts it detached (the machinery of ``synod kv up``) and returns once
every chunkserver has reported to the master. The file commands run the
client library (:class:`synod.gfs.client.GfsClient`) over the nodes' ports
(:class:`synod.runtime.driver.Driver`), the same one ``gfs://`` in fsspec
uses. ``fsck`` reports chunks below their replication goal (0 replicas:
lost), and per chunkserver the replicas it holds, the corrupt ones it
reported and the orphans it still holds.

Exit status: 0 done; 1 the cell is not there, an operation failed (the
message says why), or fsck found a chunk below its goal; 2 bad arguments.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

__all__ = ["gfs"]

DEFAULT_RUN_DIR = "runs/gfs"
READY_TIMEOUT_S = 60.0
POLL_S = 0.1
SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "m": 1024 ** 2, "mib": 1024 ** 2, "g": 1024 ** 3, "gib": 1024 ** 3}


def _dir_option(fn: Any) -> Any:
    return click.option("--dir", "run_dir", type=click.Path(file_okay=False), default=DEFAULT_RUN_DIR,
                        show_default=True, help="The cell's run directory.")(fn)


@click.group()
def gfs() -> None:
    """GFS (SOSP 2003): a local cell (master, shadows, chunkservers) and its client.

    Exit status: 0 done; 1 the cell is not there or an operation failed;
    2 bad arguments.
    """


def _size(text: str) -> int:
    t = text.strip().lower()
    num = t.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = t[len(num):]
    if not num or unit not in SIZE_UNITS:
        raise click.BadParameter(f"{text!r}: a size like 64MiB, 256KiB or 1048576", param_hint="--chunk-size")
    return int(float(num) * SIZE_UNITS[unit])


def _config(run_dir: str) -> Any:
    from synod.cli.kv_cmd import load_run_config

    return load_run_config(run_dir, noun="GFS cell", command="gfs", is_kind=lambda config: "master" in config.nodes)


class _Session:
    """The client library over the cell's ports."""

    def __init__(self, run_dir: str) -> None:
        from synod.gfs.client import GfsClient
        from synod.gfs.fs import cell_addresses, masters_in
        from synod.runtime.driver import Driver

        _config(run_dir)   # (a clear message when there is no cell)
        addrs, credentials = cell_addresses(run_dir)
        self.driver = Driver(addrs, credentials=credentials)
        self.client = GfsClient(masters_in(addrs), self.driver.client_id, rpc_timeout_ms=6_000, retry_for_ms=20_000)

    def run(self, fn: Any) -> Any:
        from synod.gfs.client import GfsError

        try:
            return self.driver.run(fn)
        except GfsError as e:
            raise click.ClickException(str(e)) from None


@gfs.command("up")
@_dir_option
@click.option("--chunkservers", type=click.IntRange(1, 64), default=5, show_default=True, help="Chunkservers.")
@click.option("--shadows", type=click.IntRange(0, 8), default=2, show_default=True, help="Shadow masters.")
@click.option("--chunk-size", "chunk_size", default="64MiB", show_default=True,
              help="Chunk size (a multiple of 64KiB; smaller shows chunks with small files).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.5, 600.0), default=READY_TIMEOUT_S,
              show_default=True, help="Seconds to wait for every chunkserver to report.")
def up(run_dir: str, chunkservers: int, shadows: int, chunk_size: str, timeout_s: float) -> None:
    """Start a cell in the background: the master, SHADOWS shadow masters
    and CHUNKSERVERS chunkservers on two racks. Returns once every
    chunkserver has reported to the master. A run dir holding a stopped
    cell starts it again (its operation log and chunks kept).

    Refused (exit 1, nothing started) while a node of RUN_DIR runs."""
    from synod.cli.kv_cmd import start_or_restart
    from synod.harness.gfs_real import cell_spec

    size = _size(chunk_size)
    run_path = Path(run_dir).resolve()
    t0 = time.monotonic()
    cl, previous = start_or_restart(run_dir, noun="cell", command="gfs", load=_config, make_spec=lambda path: cell_spec(
        path, chunkservers=chunkservers, shadows=shadows, chunk_size_bytes=size))
    session = _Session(str(run_path))
    wanted = sum(1 for n in cl.config.nodes if n.startswith("cs"))
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            report = session.driver.run(lambda ctx: session.client.fsck(ctx))
            if len(report.servers) >= wanted:
                break
        except Exception:  # the master is still starting
            pass
        if time.monotonic() >= deadline:
            raise click.ClickException(f"not every chunkserver reported within {timeout_s:g} s; the nodes still run: "
                                       f"`synod gfs fsck --dir {run_dir}`, `synod gfs down --dir {run_dir}`")
        time.sleep(POLL_S)
    what = "started again (its operation log and chunks kept)" if previous else "started"
    click.echo(f"GFS cell in {cl.run_dir} {what}: master, {'its' if previous else shadows} shadow masters, "
               f"{wanted} chunkservers reported after {time.monotonic() - t0:.1f} s")
    for nid in cl.node_ids:
        node = cl.config.nodes[nid]
        click.echo(f"  {nid:10} {node.host}:{node.port}  pid {cl.pid(nid) or '-'}")
    click.echo(f"then: synod gfs put FILE /path --dir {run_dir}  |  python -c \"import fsspec; "
               f"print(fsspec.filesystem('gfs', run_dir='{cl.run_dir}').ls('/'))\"")
    master = cl.config.nodes["master"]
    click.echo(f"      or by URL: gfs://{master.host}:{master.port}/path with key_file='{cl.run_dir}/cluster.key'")
    click.echo(f"      synod gfs fsck --dir {run_dir}  |  synod gfs down --dir {run_dir}")


@gfs.command("down")
@_dir_option
def down(run_dir: str) -> None:
    """Stop every process of the cell (SIGTERM, then SIGKILL). Exit 1 if one still runs."""
    from synod.cli.kv_cmd import stop_in

    stop_in(run_dir, noun="the cell", load=_config)


@gfs.command("status")
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(run_dir: str, as_json: bool) -> None:
    """Which processes run, and the master's view of the chunkservers."""
    from synod.runtime.cluster import ClusterError, LocalCluster

    _config(run_dir)
    try:
        cl = LocalCluster.attach(Path(run_dir))
    except ClusterError as e:
        raise click.ClickException(str(e)) from None
    procs = {nid: {"pid": cl.pid(nid), "alive": cl.is_alive(nid)} for nid in cl.node_ids}
    report = _fsck_report(run_dir) if cl.is_alive("master") or any(
        cl.is_alive(n) for n in cl.node_ids if n.startswith("shadow")) else None
    if as_json:
        click.echo(json.dumps({"nodes": procs, "health": report}))
        return
    for nid, p in procs.items():
        click.echo(f"{nid:10} {'up' if p['alive'] else 'down':5} pid {p['pid'] or '-'}")
    if report is not None:
        click.echo(f"master: {report['files']} files, {report['chunks']} chunks, log at record {report['lsn']}, "
                   f"{len(report['servers'])} chunkservers reporting")


def _fsck_report(run_dir: str) -> dict[str, Any] | None:
    session = _Session(run_dir)
    try:
        reply = session.driver.run(lambda ctx: session.client.fsck(ctx))
    except Exception:
        return None

    def fields(m: Any) -> dict[str, Any]:
        return {f: getattr(m, f) for f in m.__struct_fields__}

    return {"files": reply.files, "chunks": reply.chunks, "lsn": reply.lsn,
            "servers": [fields(s) for s in reply.servers],
            "under_replicated": [fields(c) for c in reply.under_replicated]}


@gfs.command("fsck")
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def fsck(run_dir: str, as_json: bool) -> None:
    """Chunks below their replication goal (0: lost), and per chunkserver the
    replicas it holds, the corrupt replicas it reported and the orphans it
    holds. Exit 1 if a chunk is below its goal."""
    report = _fsck_report(run_dir)
    if report is None:
        raise click.ClickException(f"neither the master nor a shadow of {run_dir} answered")
    if as_json:
        click.echo(json.dumps(report))
    else:
        click.echo(f"{report['files']} files, {report['chunks']} chunks; {len(report['servers'])} chunkservers:")
        for s in report["servers"]:
            click.echo(f"  {s['server']:8} {s['rack']:7} {s['replicas']:6} replicas {s['used_bytes']:>14,} bytes  "
                       f"corrupt reported {s['corrupt_reported']}  orphans {s['orphans']}")
        for c in report["under_replicated"]:
            click.echo(f"  {'LOST' if c['replicas'] == 0 else 'under-replicated'}: {c['path']} chunk {c['index']} "
                       f"(handle {c['handle']}): {c['replicas']} of {c['goal']} replicas")
        if not report["under_replicated"]:
            click.echo("every chunk at its replication goal")
    if report["under_replicated"]:
        raise SystemExit(1)


@gfs.command("ls")
@_dir_option
@click.argument("path", default="/")
def ls(run_dir: str, path: str) -> None:
    """List a directory (or show a file): name, type, length."""
    s = _Session(run_dir)
    st = s.run(lambda ctx: s.client.stat(ctx, path))
    if not st.is_dir:
        click.echo(f"{path}  file  {st.length:,} bytes  {st.chunks} chunks")
        return
    for name in s.run(lambda ctx: s.client.list(ctx, path)):
        full = path.rstrip("/") + "/" + name
        e = s.run(lambda ctx, p=full: s.client.stat(ctx, p))
        click.echo(f"{name}{'/' if e.is_dir else ''}" + ("" if e.is_dir else f"  {e.length:,} bytes  {e.chunks} chunks"))


@gfs.command("mkdir")
@_dir_option
@click.argument("path")
def mkdir(run_dir: str, path: str) -> None:
    """Make a directory and its missing parents."""
    s = _Session(run_dir)
    s.run(lambda ctx: s.client.mkdirs(ctx, path))


@gfs.command("put")
@_dir_option
@click.argument("local", type=click.Path(exists=True, dir_okay=False))
@click.argument("path")
def put(run_dir: str, local: str, path: str) -> None:
    """Copy a local file to PATH (replacing a file there)."""
    import fsspec

    data = Path(local).read_bytes()
    with fsspec.open(f"gfs://{path}", "wb", run_dir=run_dir) as f:
        f.write(data)
    click.echo(f"{path}: {len(data):,} bytes")


@gfs.command("get")
@_dir_option
@click.argument("path")
@click.argument("local", type=click.Path(dir_okay=False))
def get(run_dir: str, path: str, local: str) -> None:
    """Copy PATH to a local file."""
    s = _Session(run_dir)
    st = s.run(lambda ctx: s.client.stat(ctx, path))
    data = s.run(lambda ctx: s.client.read(ctx, path, 0, st.length))
    Path(local).write_bytes(data)
    click.echo(f"{local}: {len(data):,} bytes")


@gfs.command("cat")
@_dir_option
@click.argument("path")
def cat(run_dir: str, path: str) -> None:
    """Print a file's bytes."""
    s = _Session(run_dir)
    st = s.run(lambda ctx: s.client.stat(ctx, path))
    click.echo(s.run(lambda ctx: s.client.read(ctx, path, 0, st.length)), nl=False)


@gfs.command("append")
@_dir_option
@click.argument("path")
@click.argument("text")
def append(run_dir: str, path: str, text: str) -> None:
    """Record-append TEXT (and a newline) to PATH, creating it if missing;
    prints the offset GFS chose (section 3.3)."""
    from synod.gfs.client import GfsError

    s = _Session(run_dir)
    try:
        s.driver.run(lambda ctx: s.client.create(ctx, path))
    except GfsError as e:
        if e.status != "EXISTS":
            raise click.ClickException(str(e)) from None
    offset = s.run(lambda ctx: s.client.record_append(ctx, path, text.encode() + b"\n"))
    click.echo(f"{path}: appended at offset {offset}")


@gfs.command("snapshot")
@_dir_option
@click.argument("src")
@click.argument("dst")
def snapshot(run_dir: str, src: str, dst: str) -> None:
    """Copy a file or a tree at once (section 3.4: copy-on-write)."""
    s = _Session(run_dir)
    s.run(lambda ctx: s.client.snapshot(ctx, src, dst))
    click.echo(f"{dst}: a snapshot of {src}")


@gfs.command("rm")
@_dir_option
@click.argument("path")
def rm(run_dir: str, path: str) -> None:
    """Delete a file (hidden, reclaimed later: section 4.4) or an empty directory."""
    s = _Session(run_dir)
    s.run(lambda ctx: s.client.delete(ctx, path))


if __name__ == "__main__":
    gfs()
