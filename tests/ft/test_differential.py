"""synod's machine against references nobody here wrote: qemu-riscv32
(Debian's qemu-user) and unicorn (PyPI), on the sample program, this
folder's programs (compiled here by Debian's riscv64-unknown-elf-gcc) and
seeded random instruction sequences. Same stdout and exit status as qemu;
same registers and pc as unicorn at every compared instruction count, and
the same count of retired instructions (see ``_emulators``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import ci_seeds, shared_data_dir
from tests.ft._emulators import Lockstep, build_bare, build_user, build_user_asm, need_gcc, run_qemu, run_synod
from tests.ft._random_program import random_program

from synod.ft import Machine, StopReason, TimerInterrupt

pytest.importorskip("unicorn", reason="unicorn (the test extra) is not installed")

HELLO_LINE = b"primes<2000=303 q=-3 r=-1 big/1000=81985529216486 fnv=1799114855 cnt=4\n"
STDIN_TEXT = (b"Hello World\nthe quick brown fox\n  jumps  over\tthe lazy dog\n" * 9) + b"no newline at the end"


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """This folder's programs, compiled once for the module (skips without the cross compiler)."""
    need_gcc()
    out = tmp_path_factory.mktemp("ft-programs")
    return {
        "isa": build_user(out, "isa", "isa.c"),
        "stdin_filter": build_user(out, "stdin_filter", "stdin_filter.c"),
        "compute": build_user(out, "compute", "compute.c"),
        "bare": build_bare(out, "bare", "bare.S"),
    }


def hello_elf() -> Path:
    path = shared_data_dir() / "riscv" / "rv32im-hello" / "hello.elf"
    if not path.exists():
        pytest.skip(f"{path} not found (set SYNOD_SHARED_DATA)")
    return path


def assert_lockstep(ls: Lockstep, *, exit_code: int | None = None) -> Machine:
    m = ls.run()
    assert ls.mismatch is None, ls.mismatch
    assert ls.compared > 0
    if exit_code is not None:
        assert ls.unicorn_exit == m.exit_code == exit_code
    return m


# --- the sample program -----------------------------------------------------------------------------


def test_hello_against_qemu() -> None:
    assert run_qemu(hello_elf()) == (HELLO_LINE, 0)


def test_hello_against_unicorn_every_instruction() -> None:
    ls = Lockstep(hello_elf().read_bytes(), every=1)
    m = assert_lockstep(ls, exit_code=0)
    assert ls.unicorn_count == m.instret == 71_657
    assert bytes(ls.unicorn_stdout) == HELLO_LINE


# --- this folder's programs ---------------------------------------------------------------------------


def test_isa_program_against_qemu(programs: dict[str, Path]) -> None:
    out, code, _ = run_synod(programs["isa"])
    assert (out, code) == run_qemu(programs["isa"])
    assert code == 7
    assert b"div/0 ffffffff ffffffff ffffffff" in out
    assert b"overflow 80000000 00000000" in out
    assert b"smc 00000006 00000069" in out, "the patched code ran after FENCE.I"


def test_isa_program_against_unicorn(programs: dict[str, Path]) -> None:
    ls = Lockstep(programs["isa"].read_bytes(), every=5)
    m = assert_lockstep(ls, exit_code=7)
    assert ls.unicorn_count == m.instret > 300_000


def test_stdin_filter_against_qemu_and_unicorn(programs: dict[str, Path]) -> None:
    out, code, _ = run_synod(programs["stdin_filter"], stdin=STDIN_TEXT)
    assert (out, code) == run_qemu(programs["stdin_filter"], stdin=STDIN_TEXT)
    assert code == 27
    assert out.startswith(b"1 Uryyb Jbeyq\n")
    ls = Lockstep(programs["stdin_filter"].read_bytes(), every=3, stdin=STDIN_TEXT)
    assert_lockstep(ls, exit_code=27)
    assert bytes(ls.unicorn_stdout) == out


def test_compute_program_against_qemu_and_unicorn_final_registers(programs: dict[str, Path]) -> None:
    out, code, m = run_synod(programs["compute"])
    assert (out, code) == run_qemu(programs["compute"])
    assert out.startswith(b"primes 2262 ")
    assert m.instret > 2_000_000
    ls = Lockstep(programs["compute"].read_bytes(), every=0)         # unicorn at full speed: final state only
    assert_lockstep(ls, exit_code=0)
    assert bytes(ls.unicorn_stdout) == out


def run_bare(elf: bytes) -> tuple[Machine, int]:
    m = Machine.from_elf(elf)
    timers = 0
    while (stop := m.run(10**6)) is StopReason.WAITING:
        m.deliver(TimerInterrupt())
        timers += 1
    assert stop is StopReason.EXITED, (stop, m.fault)
    return m, timers


def test_bare_metal_program_passes_every_check(programs: dict[str, Path]) -> None:
    m, timers = run_bare(programs["bare"].read_bytes())
    assert m.tohost == 1, f"check {m.tohost >> 1} failed" if m.tohost else "no tohost"
    assert m.exit_code == 0
    assert timers == 3
    assert b"".join(o.data for o in m.take_outputs()) == b"bare-metal: hello from M-mode\n"


def test_bare_metal_program_against_unicorn(programs: dict[str, Path]) -> None:
    ls = Lockstep(programs["bare"].read_bytes(), every=1, stop_symbol="unicorn_stop")
    m = assert_lockstep(ls)
    assert ls.unicorn_count == m.instret > 500
    assert ls.substitutions == 1, "the misa read"
    assert m.csrs.mcause == 11, "the last trap before the stop: the vectored-mode ECALL"


# --- random instruction sequences ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(ci_seeds()))
def test_random_program_against_qemu_and_unicorn(seed: int, tmp_path: Path) -> None:
    """Even seeds: 400 instructions in a row; odd seeds: 60 run 16 times over (a translated loop)."""
    need_gcc()
    length, loop = (400, 1) if seed % 2 == 0 else (60, 16)
    elf = build_user_asm(tmp_path, f"random{seed}", random_program(seed, length=length, loop=loop))
    out, code, m = run_synod(elf)
    assert len(out) == 512
    assert (out, code) == run_qemu(elf), f"seed {seed}: replay with random_program({seed}, {length}, {loop})"
    ls = Lockstep(elf.read_bytes(), every=1)
    assert_lockstep(ls, exit_code=0)
    assert ls.unicorn_count == m.instret
    assert bytes(ls.unicorn_stdout) == out
