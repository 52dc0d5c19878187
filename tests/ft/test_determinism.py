"""What primary/backup replay (Scales et al. 2010, section 2.1) needs of the
machine: ``run`` stops at exact counts, the same inputs at the same counts
give the same state (state hash) and the same outputs (tagged with their
counts), a snapshot continues exactly, and stores into code are seen at
once (translations are dropped, never stale)."""

from __future__ import annotations

import random

import msgspec
import pytest
from tests.conftest import shared_data_dir
from tests.ft._asm import A0, A1, A2, A7, ECALL, EXIT, S0, S1, T0, T1, auipc, branch, li, load, machine, op, opi, run_user, store

from synod.ft import ConsoleInput, ConsoleOutput, Machine, MachineSnapshot, ProgramKind, StopReason
from synod.ft.machine.records import DeviceState

BUF = 0x10000 + 0x3000
HELLO_LINE = b"primes<2000=303 q=-3 r=-1 big/1000=81985529216486 fnv=1799114855 cnt=4\n"


def printing_loop(iterations: int = 200) -> list[int]:
    """for s0 in 1..n: buf[0] = '0' + s0 % 10; t0 = mixed state; write(1, buf, 1); then exit(0)."""
    body = [
        opi("addi", S0, S0, 1),
        opi("addi", T1, 0, 10), op("remu", T0, S0, T1), opi("addi", T0, T0, 48),
        *li(A1, BUF), store("sb", T0, A1, 0),
        load("lw", T1, A1, 4), op("mul", T1, T1, S0), opi("xori", T1, T1, 0x5A5), store("sw", T1, A1, 4),
        opi("addi", A0, 0, 1), opi("addi", A2, 0, 1), *li(A7, 64), ECALL,
    ]
    return [*li(S1, iterations), opi("addi", S0, 0, 0), *body,
            branch("bne", S0, S1, -4 * len(body)), opi("addi", A0, 0, 0), *EXIT]


def hello_elf() -> bytes:
    path = shared_data_dir() / "riscv" / "rv32im-hello" / "hello.elf"
    if not path.exists():
        pytest.skip(f"{path} not found (set SYNOD_SHARED_DATA)")
    return path.read_bytes()


def test_hello_prints_its_line_exits_0_after_71657_instructions() -> None:
    """The sample program (../shared/data/riscv/rv32im-hello): its line, exit 0, and the count
    qemu-riscv32 -singlestep and unicorn give."""
    m = Machine.from_elf(hello_elf())
    assert m.run(10**6) is StopReason.EXITED
    assert b"".join(o.data for o in m.take_outputs()) == HELLO_LINE
    assert m.exit_code == 0
    assert m.instret == 71_657


def test_run_stops_at_exactly_the_requested_count() -> None:
    m = machine(printing_loop())
    rng = random.Random(7)
    total = 0
    while True:
        n = rng.randint(0, 37)
        stop = m.run(n)
        if stop is StopReason.EXITED:
            break
        assert stop is StopReason.BUDGET
        total += n
        assert m.instret == total
    one = machine(printing_loop())
    assert one.run(10**6) is StopReason.EXITED
    assert m.instret == one.instret
    assert m.state_hash() == one.state_hash()


def test_same_program_same_counts_same_hash_and_outputs() -> None:
    a, b = machine(printing_loop()), machine(printing_loop())
    points = list(range(0, 3300, 97))
    ha, hb = [], []
    for p in points:
        a.run_to(p)
        ha.append(a.state_hash())
    for p in points:
        b.run_to(p)
        b.step()                            # a different path to the same count: single steps
        b.run_to(p + 1)
        hb.append(b.state_hash())
        assert b.instret == p + 1
    a2 = machine(printing_loop())
    for p, h in zip(points, ha):
        a2.run_to(p)
        assert a2.state_hash() == h
    assert len(set(ha)) == len(ha), "the state changes between points"
    a.run(10**6)
    b.run(10**6)
    assert a.take_outputs() == b.take_outputs()


def test_state_hash_sees_registers_memory_and_csrs() -> None:
    m = machine(printing_loop())
    m.run(50)
    h = m.state_hash()
    assert m.state_hash() == h, "hashing does not change the state"
    m.x[5] ^= 1
    assert m.state_hash() != h
    m.x[5] ^= 1
    assert m.state_hash() == h
    m.memory.write(0x8000, b"\x01")
    assert m.state_hash() != h
    m.memory.write(0x8000, b"\x00")
    assert m.state_hash() == h, "page digests are recomputed from the contents"
    m.csrs.mscratch = 1
    assert m.state_hash() != h


def test_outputs_are_tagged_with_the_count_that_produced_them() -> None:
    m = machine(printing_loop(5))
    assert m.run(10**6) is StopReason.EXITED
    outs = m.take_outputs()
    assert [o.data for o in outs] == [b"1", b"2", b"3", b"4", b"5"]
    prologue, body, ecall_at = 3, 17, 16         # the write ECALL is the 16th instruction of the loop body
    assert [o.instret for o in outs] == [prologue + body * i + ecall_at for i in range(5)]
    assert all(isinstance(o, ConsoleOutput) and o.fd == 1 for o in outs)
    assert m.take_outputs() == []


def test_snapshot_restores_a_machine_that_continues_identically() -> None:
    a = machine(printing_loop())
    a.run(1234)
    snap = a.snapshot()
    assert isinstance(snap, MachineSnapshot)
    wire = msgspec.msgpack.encode(snap)
    b = Machine.from_snapshot(msgspec.msgpack.decode(wire, type=MachineSnapshot))
    assert b.state_hash() == a.state_hash()
    a.take_outputs()
    for n in (1, 10, 333, 10**6):
        assert a.run(n) == b.run(n)
        assert a.state_hash() == b.state_hash()
        assert a.take_outputs() == b.take_outputs()
    assert b.exit_code == 0


def test_snapshot_of_hello_mid_run_finishes_the_line() -> None:
    a = Machine.from_elf(hello_elf())
    a.run(70_300)
    first = b"".join(o.data for o in a.take_outputs())
    b = Machine.from_snapshot(a.snapshot())
    assert b.run(10**6) is StopReason.EXITED
    rest = b"".join(o.data for o in b.take_outputs())
    assert first + rest == HELLO_LINE
    assert b.instret == 71_657
    assert len(a.snapshot().pages) < 10, "only pages with data are in a snapshot"


def test_inputs_at_the_same_counts_give_the_same_run() -> None:
    # read(0, buf, 4) in a loop, echoing what it got with write; inputs arrive at chosen counts.
    body = [opi("addi", A0, 0, 0), *li(A1, BUF), opi("addi", A2, 0, 4), *li(A7, 63), ECALL,
            op("add", A2, A0, 0), branch("beq", A2, 0, 4 + 6 * 4 + 4),
            opi("addi", A0, 0, 1), *li(A1, BUF), *li(A7, 64), ECALL]
    words = [*body, branch("beq", 0, 0, -4 * len(body)), *EXIT]

    def run(schedule: list[tuple[int, bytes]]) -> tuple[bytes, list[object], list[tuple[int, bytes]]]:
        """Deliver each input at its count (or where the machine waits before it); the log of where."""
        m = machine(words)
        log = []
        for at, data in schedule:
            stop = m.run_to(max(at, m.instret))
            assert stop in (StopReason.BUDGET, StopReason.WAITING)
            log.append((m.instret, data))
            m.deliver(ConsoleInput(data=data, eof=not data))
        assert m.run(10**5) is StopReason.EXITED
        return m.state_hash(), m.take_outputs(), log

    primary = run([(0, b"ab"), (10, b"cdefg"), (41, b"h"), (200, b"")])
    assert b"".join(o.data for o in primary[1]) == b"abcdefgh"
    logged = [at for at, _ in primary[2]]
    assert logged[:2] == [0, 10], "delivered while running: at the count asked"
    assert logged[3] < 200, "the program waited in read() before count 200: delivered there"
    backup = run(primary[2])                  # replayed at the logged counts
    assert backup == primary
    other = run([(0, b"ab"), (3, b"cdefg"), (41, b"h"), (200, b"")])     # before the first read retires
    assert b"".join(o.data for o in other[1]) == b"abcdefgh"
    assert [o.data for o in other[1]][0] == b"abcd"
    assert other[0] != primary[0], "the same bytes at another count: another run"


def test_a_read_with_no_input_waits_without_retiring() -> None:
    m = machine([*li(A1, BUF), opi("addi", A2, 0, 8), *li(A7, 63), ECALL, *EXIT])
    assert m.run(100) is StopReason.WAITING
    assert m.instret == 5
    assert m.run(100) is StopReason.WAITING
    m.deliver(ConsoleInput(data=b"xyz"))
    assert m.run(100) is StopReason.EXITED
    assert m.exit_code == 3


def test_a_store_into_the_running_block_is_seen_by_the_next_instruction() -> None:
    new = opi("addi", A0, 0, 7)
    words = [*li(T0, new), auipc(T1, 0), store("sw", T0, T1, 12), opi("addi", 0, 0, 0), opi("addi", A0, 0, 1)]
    m = run_user(words)
    assert m.exit_code == 7, "the patched instruction ran, as on qemu and unicorn"


def test_data_beside_code_does_not_drop_translations() -> None:
    # A loop that stores into its own page, but not over an instruction.
    words = [*li(S1, 300), auipc(T1, 0), opi("addi", S0, S0, 1), store("sw", S0, T1, 0x400),
             branch("bne", S0, S1, -8), op("add", A0, 0, 0)]
    m = run_user(words)
    assert m.memory.read(0x400 + 8, 4) == (300).to_bytes(4, "little")
    assert m.translations < 10, "the loop was translated once, not once per store"


def test_translations_are_dropped_when_code_is_overwritten_later() -> None:
    # Run a function twice, patching it in between: the second call runs the new code.
    func = 0x100
    words = [opi("addi", A0, 0, 0), *li(T1, 0x10000 + func),
             0x000300E7,                                       # jalr ra, 0(t1)
             *li(T0, opi("addi", A0, A0, 100)), store("sw", T0, T1, 0),
             0x000300E7, *EXIT]
    words += [0] * (func // 4 - len(words)) + [opi("addi", A0, A0, 1), 0x00008067]   # addi a0, a0, 1; ret
    m = machine(words)
    assert m.run(10**4) is StopReason.EXITED
    assert m.exit_code == 101


def test_state_records_round_trip() -> None:
    m = Machine(ProgramKind.BARE_METAL, ram_size_bytes=64 * 1024)
    state = m.devices.state()
    assert isinstance(state, DeviceState)
    m.devices.set_state(state)
    assert m.devices.state() == state


def test_small_translation_caches_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the caches emptied every few translations, the run is the same (and code stays coherent)."""
    from synod.ft.machine import _translate
    reference = machine(printing_loop())
    reference.run(10**6)
    monkeypatch.setattr(_translate, "TRANSLATION_CACHE_ENTRIES_MAX", 2)
    monkeypatch.setattr(_translate, "CODE_CACHE_ENTRIES_MAX", 3)
    m = machine(printing_loop())
    assert m.run(10**6) is StopReason.EXITED
    assert m.state_hash() == reference.state_hash()
    assert m.take_outputs() == reference.take_outputs()
    patched = run_user([*li(T0, opi("addi", A0, 0, 7)), auipc(T1, 0), store("sw", T0, T1, 12), opi("addi", 0, 0, 0),
                        opi("addi", A0, 0, 1)])
    assert patched.exit_code == 7
