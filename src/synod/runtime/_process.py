"""Process helpers of the supervisor: is a pid still our node, is it stopped
(Linux procfs; elsewhere a live pid is trusted), and the supervisor's log."""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["is_stopped", "pid_runs_node", "supervisor_logger"]


def _proc_file(pid: int, name: str) -> bytes | None:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:
        return None


def is_stopped(pid: int) -> bool:
    stat = _proc_file(pid, "stat")
    if stat is None:
        return False
    state = stat.rsplit(b")", 1)[-1].split()[0]
    return state in (b"T", b"t")


def pid_runs_node(pid: int, node_id: str, config_path: Path) -> bool:
    """Whether ``pid`` is a live ``node run`` of ``node_id`` with this config,
    or a node the fork server of this config forked (so a recycled pid is
    never signalled)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    cmdline = _proc_file(pid, "cmdline")
    if cmdline is None:
        return not os.path.isdir("/proc")  # no procfs: trust the pid
    stat = _proc_file(pid, "stat")
    if stat is not None and stat.rsplit(b")", 1)[-1].split()[0] == b"Z":
        return False
    args = cmdline.split(b"\0")
    want_id = node_id.encode()
    want_cfg = str(config_path).encode()
    if b"synod.runtime._zygote" in args and stat is not None:
        # forked by the fork server: its command line is the server's, and
        # unlike the server it leads its own session (field 6 of stat)
        return want_cfg in args and stat.rsplit(b")", 1)[-1].split()[3] == str(pid).encode()
    has_id = any(a == b"--id" and b == want_id for a, b in zip(args, args[1:]))
    return has_id and want_cfg in args


def supervisor_logger(run_dir: Path, file_name: str) -> logging.Logger:
    logger = logging.getLogger(f"synod.cluster.{run_dir}")
    if not logger.handlers:
        handler = logging.FileHandler(run_dir / file_name)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger
