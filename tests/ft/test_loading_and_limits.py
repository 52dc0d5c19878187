"""Loading programs (ELF32 RISC-V executables, through pyelftools) and the
errors of a program or a call the machine refuses: a clear ElfError or
LocalProtocolError, never an IndexError or a bare assertion."""

from __future__ import annotations

import pytest
from tests.ft._asm import EXIT, opi
from tests.ft._elf import make_elf

from synod.core.errors import LocalProtocolError
from synod.ft import ElfError, Machine, NetworkPacket, ProgramKind, StopReason, read_elf
from synod.ft.constants import RAM_BASE_BARE_METAL, RAM_BASE_USER, RAM_SIZE_BYTES_DEFAULT

CODE = b"".join(w.to_bytes(4, "little") for w in [opi("addi", 10, 0, 5), *EXIT])


def test_a_user_program_loads_and_runs() -> None:
    m = Machine.from_elf(make_elf(CODE, RAM_BASE_USER, memsz=0x2000))
    assert m.kind is ProgramKind.USER
    assert m.run(100) is StopReason.EXITED
    assert m.exit_code == 5


def test_the_tohost_symbol_makes_it_bare_metal_unless_told_otherwise() -> None:
    image = make_elf(CODE, RAM_BASE_BARE_METAL, memsz=0x1000, symbols={"tohost": RAM_BASE_BARE_METAL + 0x800})
    program = read_elf(image)
    assert program.tohost == RAM_BASE_BARE_METAL + 0x800
    assert program.fromhost is None
    assert Machine.from_elf(image).kind is ProgramKind.BARE_METAL
    with pytest.raises(ElfError, match="outside RAM"):
        Machine.from_elf(image, kind=ProgramKind.USER)         # 0x80000000 is not in a user program's RAM


def test_a_store_to_tohost_ends_a_bare_metal_run() -> None:
    from tests.ft._asm import li, store
    words = [*li(5, RAM_BASE_BARE_METAL + 0x800), opi("addi", 6, 0, (21 << 1) | 1), store("sw", 6, 5, 0),
             opi("addi", 7, 0, 1)]
    code = b"".join(w.to_bytes(4, "little") for w in words)
    m = Machine.from_elf(make_elf(code, RAM_BASE_BARE_METAL, memsz=0x1000,
                                  symbols={"tohost": RAM_BASE_BARE_METAL + 0x800}))
    assert m.run(100) is StopReason.EXITED
    assert (m.exit_code, m.tohost, m.instret) == (21, 43, 4)
    assert m.x[7] == 0, "nothing runs after the tohost store"


@pytest.mark.parametrize("change,message", [
    (lambda e: b"MZ" + e[2:], "not an ELF file"),
    (lambda e: e[:4] + b"\x02" + e[5:], "not a 32-bit"),
    (lambda e: e[:5] + b"\x02" + e[6:], "not a little-endian"),
    (lambda e: e[:40], "not a 32-bit ELF|malformed"),
    (lambda e: e[:18] + (62).to_bytes(2, "little") + e[20:], "not a RISC-V"),
    (lambda e: e[:16] + (3).to_bytes(2, "little") + e[18:], "not an executable"),
    (lambda e: e[:36] + (1).to_bytes(4, "little") + e[40:], "C extension"),
    (lambda e: e[:36] + (2).to_bytes(4, "little") + e[40:], "floating-point"),
    (lambda e: e[:90], "malformed|file ends"),
    (lambda e: e[:52 + 4] + (0xFFFF_0000).to_bytes(4, "little") + e[60:], "malformed|file ends"),
])
def test_malformed_files_raise_elf_error(change, message: str) -> None:  # noqa: ANN001
    image = change(make_elf(CODE, RAM_BASE_USER))
    with pytest.raises(ElfError, match=message):
        Machine.from_elf(image)


def test_segments_and_entry_outside_ram_raise_elf_error() -> None:
    with pytest.raises(ElfError, match="outside RAM"):
        Machine.from_elf(make_elf(CODE, 0x1000))                             # below a user program's RAM
    with pytest.raises(ElfError, match="outside RAM"):
        Machine.from_elf(make_elf(CODE, RAM_BASE_USER, memsz=RAM_SIZE_BYTES_DEFAULT + 4096))   # runs past its end
    with pytest.raises(ElfError, match="entry"):
        Machine.from_elf(make_elf(CODE, RAM_BASE_USER, entry=0x10))
    with pytest.raises(ElfError, match="PROGRAM_SIZE_BYTES_MAX"):
        Machine.from_elf(make_elf(CODE, RAM_BASE_USER, memsz=1 << 30))


def test_limits_and_misuse_raise_local_protocol_error() -> None:
    with pytest.raises(LocalProtocolError, match="ram_size_bytes"):
        Machine(ProgramKind.USER, ram_size_bytes=1000)
    with pytest.raises(LocalProtocolError, match="ram_size_bytes"):
        Machine(ProgramKind.USER, ram_size_bytes=1 << 30)
    with pytest.raises(LocalProtocolError, match="disk"):
        Machine(ProgramKind.BARE_METAL, disk=b"x" * 100)
    m = Machine.from_elf(make_elf(CODE, RAM_BASE_USER))
    with pytest.raises(LocalProtocolError):
        m.run(-1)
    m.run(2)
    with pytest.raises(LocalProtocolError, match="behind"):
        m.run_to(1)
    with pytest.raises(LocalProtocolError, match="NET_PACKET_BYTES_MAX"):
        m.deliver(NetworkPacket(data=bytes(70_000)))
    with pytest.raises(LocalProtocolError, match="not an input event"):
        m.deliver("hello")  # type: ignore[arg-type]


def test_a_user_program_that_runs_off_into_unmapped_memory_faults_clearly() -> None:
    jump_away = b"".join(w.to_bytes(4, "little") for w in [0x000000E7 | (0 << 15)])   # jalr ra, 0(x0)
    m = Machine.from_elf(make_elf(jump_away, RAM_BASE_USER))
    assert m.run(10) is StopReason.FAULTED
    assert m.fault is not None
    assert m.fault.mcause == 1
    assert m.fault.pc == 0
    assert "instruction access fault at pc 0x00000000" in m.fault.message
