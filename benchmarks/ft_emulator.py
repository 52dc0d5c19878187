"""Emulator speed (issue 15, sections 1 and 5): instructions per second of
synod's RV32IM machine beside unicorn and qemu-riscv32, on the same
programs, side by side in one run.

Programs:

- ``hello``: the sample program ``../shared/data/riscv/rv32im-hello/hello.elf``
  (71,657 instructions: a prime count, a few divisions, printing);
- ``compute``: ``tests/ft/programs/compute.c`` (prime sieve, CRC-32, shell
  sort, integer matrix product, 64-bit arithmetic through libgcc) built with
  ``-DSCALE=--scale`` (default 8: about 19 million instructions) by Debian's
  riscv64-unknown-elf-gcc into a temp dir, when the compiler is installed.

Contenders, each running the whole program to its exit:

- ``synod cold``: ``Machine.from_elf`` + ``run`` in a process whose cache of
  compiled regions is emptied first: ELF parsing, decoding, compiling the
  translated regions and running, all counted (what the first machine of a
  program costs);
- ``synod warm``: the same with the process's decoded and compiled regions
  cached (what a second machine of the same program costs: a backup beside
  its primary, or a re-run);
- ``unicorn``: unicorn 2 (qemu's TCG, JIT to x86) with only the interrupt
  hook that serves the system calls: its native speed. The instruction
  count is synod's (the differential tests show both retire the same);
- ``unicorn + count``: the same with a per-instruction code hook counting
  instructions, as one must to stop unicorn at an exact count (the FT
  machine's requirement);
- ``qemu-riscv32``: the wall time of the whole qemu-user process (startup
  included: the physical limit here); ``qemu net`` subtracts the median
  wall time of a program that exits at once (shown only when what remains
  is at least half that startup time: for the sample program qemu's run
  is lost in its startup).

Method: ``--repeats`` rounds (default 5); in each round every contender
runs each program once; each figure is the median over the rounds. All
outputs are checked equal to synod's. Prints a table, then as its last
line one JSON object with every figure and the ratios (unicorn / synod and
qemu / synod, in instructions per second).

Usage::

    python benchmarks/ft_emulator.py [--repeats 5] [--scale 8] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from synod.ft import ConsoleInput, Machine, StopReason, clear_code_cache

REPO = Path(__file__).resolve().parent.parent
PROGRAMS = REPO / "tests" / "ft" / "programs"
GCC, QEMU = "riscv64-unknown-elf-gcc", "qemu-riscv32"
C_FLAGS = ["-march=rv32im", "-mabi=ilp32", "-O2", "-ffreestanding", "-nostdlib", "-nostartfiles", "-static",
           "-fno-pic", "-fno-builtin", "-Wl,--build-id=none", "-Wl,--no-warn-rwx-segments"]
QUICK_REPEATS, QUICK_SCALE = 2, 1
# qemu's time net of its startup is shown only when it is at least this fraction of the startup time.
QEMU_NET_OVER_STARTUP_MIN = 0.5


def default_hello() -> Path:
    env = os.environ.get("SYNOD_SHARED_DATA")
    return (Path(env) if env else REPO.parent / "shared" / "data") / "riscv" / "rv32im-hello" / "hello.elf"


def build_compute(out: Path, scale: int) -> Path:
    elf = out / "compute.elf"
    subprocess.run([GCC, *C_FLAGS, f"-DSCALE={scale}", "-I", str(PROGRAMS), "-T", str(PROGRAMS / "user.ld"), "-o",
                    str(elf), str(PROGRAMS / "user_start.S"), str(PROGRAMS / "compute.c"), "-lgcc"],
                   check=True, capture_output=True, timeout=120)
    return elf


def null_elf(out: Path) -> Path:
    """A RISC-V program that exits at once (li a7, 93; li a0, 0; ecall): qemu's startup cost."""
    code = struct.pack("<3I", 0x05D00893, 0x00000513, 0x00000073)
    vaddr, size = 0x10000, 52 + 32 + len(code)               # the whole file is the segment (page-aligned offset 0)
    header = b"\x7fELF\x01\x01\x01" + bytes(9) + struct.pack("<HHIIIIIHHHHHH", 2, 243, 1, vaddr + 84, 52, 0, 0, 52,
                                                             32, 1, 40, 0, 0)
    phdr = struct.pack("<8I", 1, 0, vaddr, vaddr, size, size, 5, 0x1000)
    path = out / "null.elf"
    path.write_bytes(header + phdr + code)
    path.chmod(0o755)
    return path


# --- contenders --------------------------------------------------------------------------------------


def run_synod(image: bytes, cold: bool) -> tuple[float, int, bytes]:
    if cold:
        clear_code_cache()
    t0 = time.perf_counter()
    m = Machine.from_elf(image)
    m.deliver(ConsoleInput(data=b"", eof=True))
    stop = m.run(10**12)
    elapsed = time.perf_counter() - t0
    assert stop is StopReason.EXITED, (stop, m.fault)
    return elapsed, m.instret, b"".join(o.data for o in m.take_outputs())


def run_unicorn(image: bytes, count: bool) -> tuple[float, int, bytes]:
    import io

    from elftools.elf.elffile import ELFFile
    from unicorn import UC_ARCH_RISCV, UC_HOOK_CODE, UC_HOOK_INTR, UC_MODE_RISCV32, Uc
    from unicorn.riscv_const import UC_RISCV_REG_A0, UC_RISCV_REG_A1, UC_RISCV_REG_A2, UC_RISCV_REG_A7

    elf = ELFFile(io.BytesIO(image))
    uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV32)
    for seg in elf.iter_segments():
        if seg["p_type"] == "PT_LOAD":
            base = seg["p_vaddr"] & ~0xFFF
            uc.mem_map(base, ((seg["p_vaddr"] + seg["p_memsz"] + 0xFFF) & ~0xFFF) - base)
            uc.mem_write(seg["p_vaddr"], seg.data())
    out = bytearray()
    n = [0]

    def interrupt(uc: Any, intno: int, _: Any) -> None:
        a7 = uc.reg_read(UC_RISCV_REG_A7)
        if a7 == 64:
            out.extend(uc.mem_read(uc.reg_read(UC_RISCV_REG_A1), uc.reg_read(UC_RISCV_REG_A2)))
            uc.reg_write(UC_RISCV_REG_A0, uc.reg_read(UC_RISCV_REG_A2))
        elif a7 == 93:
            uc.emu_stop()

    def code(uc: Any, address: int, size: int, _: Any) -> None:
        n[0] += 1

    uc.hook_add(UC_HOOK_INTR, interrupt)
    if count:
        uc.hook_add(UC_HOOK_CODE, code)
    t0 = time.perf_counter()
    uc.emu_start(elf.header["e_entry"], 0xFFFF_FFFF)
    return time.perf_counter() - t0, n[0], bytes(out)


def run_qemu(path: Path) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    proc = subprocess.run([QEMU, str(path)], capture_output=True, timeout=600)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    return elapsed, proc.stdout


# --- measurement -----------------------------------------------------------------------------------------


def measure(name: str, path: Path, repeats: int, skipped: dict[str, str], qemu_floor_s: float | None) -> dict[str, Any]:
    image = path.read_bytes()
    _, instret, expected = run_synod(image, cold=True)
    times: dict[str, list[float]] = {k: [] for k in ("synod_cold", "synod_warm", "unicorn", "unicorn_count", "qemu")}
    runs: dict[str, Callable[[], float]] = {
        "synod_cold": lambda: _checked(run_synod(image, cold=True), instret, expected),
        "synod_warm": lambda: _checked(run_synod(image, cold=False), instret, expected),
    }
    if "unicorn" not in skipped:
        runs["unicorn"] = lambda: _checked(run_unicorn(image, count=False), None, expected)
        runs["unicorn_count"] = lambda: _checked(run_unicorn(image, count=True), instret, expected)
    if "qemu" not in skipped:
        runs["qemu"] = lambda: _checked_qemu(run_qemu(path), expected)
    for _ in range(repeats):
        for key, run in runs.items():
            times[key].append(run())
    row: dict[str, Any] = {"program": name, "instructions": instret}
    for key, values in times.items():
        if values:
            row[f"{key}_s"] = statistics.median(values)
            row[f"{key}_ips"] = instret / row[f"{key}_s"]
    if "qemu_s" in row and qemu_floor_s is not None and row["qemu_s"] - qemu_floor_s > QEMU_NET_OVER_STARTUP_MIN * qemu_floor_s:
        row["qemu_net_s"] = row["qemu_s"] - qemu_floor_s          # else startup is all there is to see
        row["qemu_net_ips"] = instret / row["qemu_net_s"]
    for anchor in ("unicorn", "unicorn_count", "qemu", "qemu_net"):
        if f"{anchor}_ips" in row:
            row[f"{anchor}_over_synod_warm"] = row[f"{anchor}_ips"] / row["synod_warm_ips"]
    return row


def _checked(result: tuple[float, int, bytes], instret: int | None, expected: bytes) -> float:
    elapsed, n, out = result
    assert out == expected, "the same output as synod"
    assert instret is None or n == instret, f"{n} instructions, synod {instret}"
    return elapsed


def _checked_qemu(result: tuple[float, bytes], expected: bytes) -> float:
    elapsed, out = result
    assert out == expected, "the same output as synod"
    return elapsed


def table(rows: list[dict[str, Any]], skipped: dict[str, str]) -> None:
    t = Table(title="RV32IM emulator speed: million instructions per second (median)")
    for col in ("program", "instructions", "synod cold", "synod warm", "unicorn", "unicorn + count", "qemu",
                "qemu net", "unicorn / synod", "qemu net / synod"):
        t.add_column(col, justify="left" if col == "program" else "right")

    def mips(row: dict[str, Any], key: str) -> str:
        return f"{row[key] / 1e6:.2f}" if key in row else "-"

    def ratio(row: dict[str, Any], key: str) -> str:
        return f"{row[key]:.1f}x" if key in row else "-"

    for r in rows:
        t.add_row(r["program"], f"{r['instructions']:,}", mips(r, "synod_cold_ips"), mips(r, "synod_warm_ips"),
                  mips(r, "unicorn_ips"), mips(r, "unicorn_count_ips"), mips(r, "qemu_ips"), mips(r, "qemu_net_ips"),
                  ratio(r, "unicorn_over_synod_warm"), ratio(r, "qemu_net_over_synod_warm"))
    Console(width=160).print(t)
    for name, why in skipped.items():
        print(f"{name} not run: {why}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=None, help="rounds; the median is kept (default 5)")
    ap.add_argument("--scale", type=int, default=None, help="compute.c's SCALE (default 8)")
    ap.add_argument("--hello", type=Path, default=default_hello(), help="the sample program")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_REPEATS} rounds, SCALE {QUICK_SCALE}")
    args = ap.parse_args(argv)
    args.repeats = args.repeats or (QUICK_REPEATS if args.quick else 5)
    args.scale = args.scale or (QUICK_SCALE if args.quick else 8)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    skipped: dict[str, str] = {}
    try:
        import unicorn  # noqa: F401
    except ImportError:
        skipped["unicorn"] = "the unicorn package is not installed (pip install -e '.[test]')"
    if shutil.which(QEMU) is None:
        skipped["qemu"] = f"{QEMU} not installed (apt-get install qemu-user)"
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = []
    with tempfile.TemporaryDirectory(prefix="synod-ft-bench-") as tmp:
        floor = None
        if "qemu" not in skipped:
            null = null_elf(Path(tmp))
            floor = statistics.median(run_qemu(null)[0] for _ in range(max(3, args.repeats)))
        if args.hello.exists():
            rows.append(measure("hello", args.hello, args.repeats, skipped, floor))
        else:
            skipped["hello"] = f"{args.hello} not found (set SYNOD_SHARED_DATA or --hello)"
        if shutil.which(GCC) is None:
            skipped["compute"] = f"{GCC} not installed (apt-get install gcc-riscv64-unknown-elf)"
        else:
            rows.append(measure(f"compute (SCALE {args.scale})", build_compute(Path(tmp), args.scale), args.repeats,
                                skipped, floor))
    load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    table(rows, skipped)
    print(f"synod cold: ELF, decoding, compiling and running; warm: decoded and compiled regions cached. unicorn: no "
          f"per-instruction hook; + count: one counting every instruction. qemu: the whole process, net: less "
          f"{floor * 1e3 if floor else float('nan'):.1f} ms of startup. Medians of {args.repeats} rounds; "
          f"{os.cpu_count()} cores, load average {load_start} at the start, {load_end} at the end.")
    summary = {"benchmark": "ft_emulator", "quick": args.quick, "repeats": args.repeats, "scale": args.scale,
               "python": platform.python_version(), "cpus": os.cpu_count(), "loadavg_start": load_start,
               "loadavg_end": load_end, "qemu_startup_s": floor, "programs": rows, "skipped": skipped}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
