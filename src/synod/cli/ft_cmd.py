"""``synod ft``: VMware FT (Scales et al. 2010) on this machine: a program
of synod's RV32IM machine run by a primary/backup pair of real processes
(:mod:`synod.harness.ft_real`), its console on this terminal."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import click

__all__ = ["ft"]


@click.group("ft")
def ft() -> None:
    """VMware FT: primary/backup replication of a whole RV32IM machine by
    deterministic replay (Scales, Nelson, Venkitachalam 2010)."""


@ft.command("run")
@click.argument("program")
@click.option("--backup/--no-backup", default=True, show_default=True,
              help="Run a backup beside the primary (without: one replica, no fault tolerance).")
@click.option("--kill-primary-at-insn", "kill_at", default=0, type=click.IntRange(0, None),
              help="The primary's process dies (as from SIGKILL) when it has retired this many instructions; "
                   "the backup goes live and the program runs on. 0: never.")
@click.option("--input", "input_path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="The program's console input (default: standard input when it is not a terminal, else none).")
@click.option("--timer-ms", "timer_ms", default=10.0, show_default=True, type=click.FloatRange(0, None),
              help="A timer interrupt this often (a bare-metal program with mie.MTIE set takes it; 0: none).")
@click.option("--net", "net", is_flag=True,
              help="The input's lines are packets for the machine's network device (then an empty one); the "
                   "program's packets are printed one per line, after 'net: '.")
@click.option("--dir", "run_dir", default=None, type=click.Path(file_okay=False),
              help="Where the processes keep their logs (default: a temporary directory, removed after).")
@click.option("--timeout", "timeout_s", default=300.0, show_default=True, type=click.FloatRange(0.1, None),
              help="Give up after this many seconds.")
def run_cmd(program: str, backup: bool, kill_at: int, input_path: str | None, timer_ms: float, net: bool,
            run_dir: str | None, timeout_s: float) -> None:
    """Run PROGRAM (an RV32IM ELF file, or one of synod's: echo, reads,
    primes, spew, netecho, disk, ticks) under FT on 127.0.0.1: a shared storage, the primary and (by
    default) a backup, each a process. The program's console output goes
    to this terminal, its input comes from --input or standard input;
    the exit status is the program's. A failover is reported on standard
    error.

    Exit status: the program's; 1 it did not finish in --timeout; 2 bad
    arguments."""
    from synod.core.errors import ConfigError
    from synod.ft.factories import load_program
    from synod.ft.machine import ElfError, read_elf

    try:
        read_elf(load_program(program))
    except (ConfigError, ElfError) as e:
        raise click.BadParameter(str(e), param_hint="PROGRAM") from None
    if kill_at and not backup:
        raise click.BadParameter("needs a backup to go live", param_hint="--kill-primary-at-insn")
    if input_path is not None:
        data = Path(input_path).read_bytes()
    else:
        data = b"" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer.read()
    if run_dir is None:
        with tempfile.TemporaryDirectory(prefix="synod-ft-") as tmp:
            code = _run(program, backup, kill_at, data, net, timer_ms, Path(tmp), timeout_s)
    else:
        code = _run(program, backup, kill_at, data, net, timer_ms, Path(run_dir), timeout_s)
        click.echo(f"logs: {run_dir}/<node>/node.log", err=True)
    sys.exit(code)


def _run(program: str, backup: bool, kill_at: int, data: bytes, net: bool, timer_ms: float, run_dir: Path,
         timeout_s: float) -> int:
    from synod.ft.messages import Output
    from synod.harness.ft_real import Console, pair_spec
    from synod.runtime.cluster import LocalCluster
    from synod.runtime.config import write_config

    program = str(Path(program).resolve()) if Path(program).exists() else program
    _, path = write_config(pair_spec(run_dir, program=program, backup=backup, crash_at_instret=kill_at,
                                     timer_interval_ms=timer_ms))
    started = time.monotonic()
    with LocalCluster(path, respawn=True) as cluster:
        cluster.start()
        console = Console(cluster)
        if net:
            console.feed_packets(data.splitlines(), end=True)
        else:
            console.feed(data, eof=True)
        live = None

        def show(out: Output) -> None:
            nonlocal live
            if console.live != live:
                if live is not None:
                    click.echo(f"[ft] {console.live} went live after {live} failed "
                               f"({time.monotonic() - started:.2f} s)", err=True)
                live = console.live
            if out.kind == "console":
                stream = sys.stdout.buffer if out.fd != 2 else sys.stderr.buffer
                stream.write(out.data)
                stream.flush()
            elif out.kind == "net":
                sys.stdout.buffer.write(b"net: " + out.data + b"\n")
                sys.stdout.buffer.flush()

        code = console.run(timeout_s, on_output=show)
        console.close()
    if code is None:
        click.echo(f"[ft] the program did not finish within {timeout_s:g} s", err=True)
        return 1
    if console.failovers:
        click.echo(f"[ft] exit {code}; {console.failovers} failover(s), {console.copies} output(s) received twice",
                   err=True)
    return code
