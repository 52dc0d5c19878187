"""``synod mr run`` over GFS: inputs and output as ``gfs://`` paths in the
cell of ``--gfs-dir`` (``synod gfs up --dir``). Every node's ``ctx.fs`` is
then that cell (the cluster config's ``fs``): map tasks read their splits
from GFS, reduce tasks commit their outputs there by rename (Dean &
Ghemawat, OSDI 2004, 3.1 and 3.3; Ghemawat et al., SOSP 2003)."""

from __future__ import annotations

import fnmatch
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

__all__ = ["is_gfs", "run_gfs_job"]

PREFIX = "gfs://"


def is_gfs(path: str) -> bool:
    return path.startswith(PREFIX)


def _path(url: str) -> str:
    return "/" + url[len(PREFIX):].lstrip("/")


def _expand(fs: Any, inputs: tuple[str, ...], pattern: str) -> list[str]:
    """Files of the ``gfs://`` INPUTS: a file as itself, a directory's files
    (recursively) whose names match ``pattern``. UsageError if one is missing."""
    out: list[str] = []
    for url in inputs:
        path = _path(url)
        try:
            info = fs.info(path)
        except FileNotFoundError:
            raise click.UsageError(f"{url}: no such file or directory in GFS") from None
        if info["type"] == "file":
            out.append(path)
            continue
        for found in sorted(fs.find(path)):
            if fnmatch.fnmatch(found.rsplit("/", 1)[-1], pattern):
                out.append(found)
    if not out:
        raise click.UsageError("no input files in GFS (check the paths and --glob)")
    return out


def run_gfs_job(console: Any, *, gfs_dir: str, inputs: tuple[str, ...], out_dir: str, force: bool, pattern: str,
                build: Any, workers: int, run_dir: str | None, keep: bool, app_dir: str | None) -> int:
    """Run the job ``build(inputs, out_dir, split_size_bytes)`` makes over
    GFS; returns the exit status (0: committed)."""
    import fsspec

    from synod.cli.mr_real import run_real_job

    if not all(is_gfs(u) for u in inputs) or not is_gfs(out_dir):
        raise click.UsageError("with gfs:// every input and --out must be gfs:// (one storage per job)")
    opts = {"run_dir": str(Path(gfs_dir).resolve())}
    try:
        fs = fsspec.filesystem("gfs", **opts)
    except (ValueError, OSError) as e:
        raise click.UsageError(f"--gfs-dir {gfs_dir}: {e}") from None
    files = _expand(fs, inputs, pattern)
    out = _path(out_dir)
    if fs.exists(out) and fs.ls(out, detail=False):
        if not force:
            raise click.UsageError(f"{out_dir} holds files already; give another --out, or --force to replace them")
        for old in fs.ls(out, detail=False):
            fs.rm_file(old)
    job = build(files, out)
    # On one machine every process is on 127.0.0.1: worker i runs "beside" chunkserver i (modulo
    # their number), so map tasks can still be placed near a replica of their input (3.4).
    from synod.mapreduce.simjob import worker_ids
    from synod.runtime.config import CONFIG_FILE_NAME, load_config

    chunkservers = sorted((n for n in load_config(Path(opts["run_dir"]) / CONFIG_FILE_NAME).nodes
                           if n.startswith("cs")), key=lambda n: int(n[2:]))
    hosts = {w: chunkservers[i % len(chunkservers)] for i, w in enumerate(worker_ids(workers))} if chunkservers else {}
    temp_run = run_dir is None
    run_path = Path(run_dir).resolve() if run_dir else Path(tempfile.mkdtemp(prefix="synod-mr-"))
    console.print(f"[bold]synod mr[/]: {job.app} over {len(files)} GFS files, {workers} workers, R={job.nreduce}")
    summary = run_real_job(job, workers=workers, run_dir=run_path, progress=console.is_terminal,
                           say=console.print, app_dir=app_dir, fork_server=True,
                           fs={"protocol": "gfs", "options": opts}, worker_hosts=hosts)
    if temp_run and not keep and summary.done:
        shutil.rmtree(run_path, ignore_errors=True)
    else:
        console.print(f"node logs kept in {run_path}")
    if summary.done:
        console.print(f"committed {', '.join(summary.outcome.committed)} and _SUCCESS to {out_dir} "
                      f"in {summary.wall_s:.1f} s")
        st = summary.status
        if st is not None and st.placeable_map_executions:
            console.print(f"map tasks run beside a replica of their input: {st.local_map_executions} of "
                          f"{st.placeable_map_executions} ({st.local_map_executions / st.placeable_map_executions:.0%})")
        return 0
    print(f"synod mr: the job failed: {summary.reason}", file=sys.stderr)
    return 1
