"""The devices (bare metal, through the registers at MMIO_BASE) and the user
program's system calls: console, block device with DMA through a bounce
buffer (VMware FT, section 3.5), network in and out, device interrupts."""

from __future__ import annotations

import pytest
from tests.ft._asm import A0, A1, A2, A7, ECALL, EXIT, MRET, T0, T1, T2, branch, csr, jal, li, load, machine, opi, store

from synod.core.errors import LocalProtocolError
from synod.ft import (
    BlockReadComplete,
    BlockWrite,
    ConsoleInput,
    ConsoleOutput,
    NetworkOutput,
    NetworkPacket,
    ProgramKind,
    StopReason,
)
from synod.ft.constants import DISK_SECTOR_BYTES, MMIO_BASE, NET_RX_QUEUE_PACKETS_MAX

BASE = 0x8000_0000
BUF = BASE + 0x3000
SPIN = jal(0, 0)
DISK = b"".join(bytes([i]) * DISK_SECTOR_BYTES for i in range(1, 5))       # sectors filled with 1, 2, 3, 4


def bare(words: list[int], **kwargs: object):  # noqa: ANN201
    return machine([*li(T0, MMIO_BASE), *words, SPIN], kind=ProgramKind.BARE_METAL, **kwargs)


def reg(name: str) -> int:
    from synod.ft.machine import _devices
    return int(getattr(_devices, name))


def test_console_device_output_and_input() -> None:
    m = bare([opi("addi", T1, 0, ord("h")), store("sw", T1, T0, reg("CONSOLE_TX")),
              opi("addi", T1, 0, ord("i")), store("sw", T1, T0, reg("CONSOLE_TX")),
              load("lw", A0, T0, reg("CONSOLE_RX_COUNT")), load("lw", A1, T0, reg("CONSOLE_RX")),
              load("lw", A2, T0, reg("CONSOLE_RX")), load("lw", T2, T0, reg("CONSOLE_RX"))])
    m.deliver(ConsoleInput(data=b"ok"))
    assert m.run(12) is StopReason.BUDGET
    outs = m.take_outputs()
    assert [(o.data, o.instret) for o in outs] == [(b"h", 4), (b"i", 6)]
    assert (m.x[A0], m.x[A1], m.x[A2], m.x[T2]) == (2, ord("o"), ord("k"), 0xFFFF_FFFF)


def test_block_read_completes_by_dma_through_the_bounce_buffer() -> None:
    words = [*li(T1, 1), store("sw", T1, T0, reg("BLK_SECTOR")), *li(T1, BUF), store("sw", T1, T0, reg("BLK_ADDR")),
             *li(T1, 2), store("sw", T1, T0, reg("BLK_COUNT")), *li(T1, 1), store("sw", T1, T0, reg("BLK_CMD")),
             # poll: a0 = status; a1 = the buffer's first word; until status is idle
             load("lw", A0, T0, reg("BLK_STATUS")), *li(A1, BUF), load("lw", A1, A1, 0), branch("bne", A0, 0, -16)]
    m = bare(words, disk=DISK)
    m.run(100)
    req = m.pending_block_request
    assert req is not None
    assert (req.sector, req.count, req.address) == (1, 2, BUF)
    assert req.bounce == bytes([2]) * 512 + bytes([3]) * 512, "copied at request time"
    assert m.x[A0] == 1, "busy"
    assert m.x[A1] == 0, "guest memory untouched until the completion"
    m.devices.disk[512:1024] = bytes(512)                   # the disk changes meanwhile: the bounce buffer does not
    m.run(50)
    assert m.x[A1] == 0
    event = m.complete_block_read()
    assert event == BlockReadComplete(request_id=req.request_id, data=req.bounce)
    assert m.memory.read(0x3000, 1024) == req.bounce
    assert m.pending_block_request is None
    assert m.csrs.mip & (1 << 11), "the completion raises the device interrupt line"
    m.run(50)
    assert m.x[A0] == 0
    assert m.x[A1] == 0x0202_0202


def test_a_backup_without_the_disk_replays_the_completion_from_the_log() -> None:
    words = [*li(T1, 0), store("sw", T1, T0, reg("BLK_SECTOR")), *li(T1, BUF), store("sw", T1, T0, reg("BLK_ADDR")),
             *li(T1, 1), store("sw", T1, T0, reg("BLK_COUNT")), store("sw", T1, T0, reg("BLK_CMD")),
             load("lw", A0, T0, reg("BLK_STATUS")), branch("bne", A0, 0, -4), *li(A1, BUF), load("lw", A1, A1, 0)]
    primary, backup = bare(words, disk=DISK), bare(words, disk=bytes(len(DISK)))
    primary.run(30)
    at = primary.instret
    event = primary.complete_block_read()
    assert event is not None
    primary.run(40)
    backup.run_to(at)
    assert backup.state_hash() == backup.state_hash()
    backup.deliver(event)
    backup.run(40)
    assert backup.x[A1] == primary.x[A1] == 0x0101_0101
    assert backup.state_hash() == primary.state_hash(), "the disk and the bounce buffer are not machine state"
    with pytest.raises(LocalProtocolError, match="no pending block read"):
        backup.deliver(event)


def test_block_write_goes_to_the_disk_at_once_as_an_output() -> None:
    words = [*li(T1, BUF), *li(T2, 0x5A5A_5A5A), store("sw", T2, T1, 0), store("sw", T1, T0, reg("BLK_ADDR")),
             *li(T1, 3), store("sw", T1, T0, reg("BLK_SECTOR")), *li(T1, 1), store("sw", T1, T0, reg("BLK_COUNT")),
             *li(T1, 2), store("sw", T1, T0, reg("BLK_CMD")), load("lw", A0, T0, reg("BLK_STATUS"))]
    m = bare(words, disk=DISK)
    m.run(30)
    assert m.x[A0] == 0
    (out,) = m.take_outputs()
    assert isinstance(out, BlockWrite)
    assert out.sector == 3
    assert out.data[:4] == b"\x5a" * 4
    assert m.disk[3 * 512:3 * 512 + 8] == b"\x5a" * 4 + bytes(4)


def test_a_refused_block_command_sets_the_error_status() -> None:
    words = [*li(T1, 9), store("sw", T1, T0, reg("BLK_SECTOR")), *li(T1, 1), store("sw", T1, T0, reg("BLK_COUNT")),
             *li(T1, BUF), store("sw", T1, T0, reg("BLK_ADDR")), *li(T1, 1), store("sw", T1, T0, reg("BLK_CMD")),
             load("lw", A0, T0, reg("BLK_STATUS"))]
    m = bare(words, disk=DISK)                              # sector 9 is past the 4-sector disk
    m.run(20)
    assert m.x[A0] == 2
    assert m.pending_block_request is None


def test_network_send_and_receive_through_the_registers() -> None:
    words = [*li(T1, BUF), *li(T2, 0x6F6C_6C65), store("sw", T2, T1, 0), store("sw", T1, T0, reg("NET_TX_ADDR")),
             opi("addi", T2, 0, 3), store("sw", T2, T0, reg("NET_TX_LEN")), opi("addi", T2, 0, 1),
             store("sw", T2, T0, reg("NET_TX_CMD")),
             load("lw", A0, T0, reg("NET_RX_LEN")), *li(T1, BUF + 0x100), store("sw", T1, T0, reg("NET_RX_ADDR")),
             store("sw", T2, T0, reg("NET_RX_CMD")), load("lw", A1, T1, 0), load("lw", A2, T0, reg("NET_RX_LEN"))]
    m = bare(words)
    m.deliver(NetworkPacket(data=b"ping"))
    m.run(22)
    (out,) = m.take_outputs()
    assert out == NetworkOutput(instret=out.instret, data=b"ell")
    assert m.x[A0] == 4
    assert m.x[A1] == int.from_bytes(b"ping", "little")
    assert m.x[A2] == 0xFFFF_FFFF


def test_a_full_receive_queue_drops_packets_and_counts_them() -> None:
    m = bare([])
    for i in range(NET_RX_QUEUE_PACKETS_MAX + 3):
        m.deliver(NetworkPacket(data=i.to_bytes(2, "little")))
    assert len(m.devices.net_rx) == NET_RX_QUEUE_PACKETS_MAX
    assert m.devices.net_rx_dropped == 3


def test_device_interrupt_is_taken_and_cleared_by_writing_irq_pending() -> None:
    handler_at = 0x100
    handler = [csr("csrrs", A0, 0x342, 0), load("lw", A1, T0, reg("IRQ_PENDING")), opi("addi", T1, 0, 4),
               store("sw", T1, T0, reg("IRQ_PENDING")), MRET]
    words = [*li(T1, BASE + handler_at), csr("csrrw", 0, 0x305, T1), *li(T1, 0x800), csr("csrrs", 0, 0x304, T1),
             csr("csrrsi", 0, 0x300, 8)]
    body = [*li(T0, MMIO_BASE), *words, SPIN]
    m = machine(body + [0] * (handler_at // 4 - len(body)) + handler, kind=ProgramKind.BARE_METAL)
    m.run(9)
    m.deliver(NetworkPacket(data=b"x"))
    assert m.pc == BASE + handler_at
    m.run(5)
    assert m.x[A0] == 0x8000_000B
    assert m.x[A1] == 4
    assert m.csrs.mip & (1 << 11) == 0, "MEIP follows the pending bits"
    assert m.pc == BASE + 4 * (len(body) - 1), "back to the spin"


def test_user_system_calls() -> None:
    data_at = 0x10000 + 0x2000
    words = [*li(A7, 64), opi("addi", A0, 0, 2), *li(A1, data_at), opi("addi", A2, 0, 3), ECALL, opi("addi", 13, A0, 0),
             opi("addi", A0, 0, 5), ECALL, opi("addi", 14, A0, 0),                          # no such fd
             opi("addi", A0, 0, 1), *li(A1, 0x10), ECALL, opi("addi", 15, A0, 0),           # buffer outside RAM
             opi("addi", A0, 0, 3), *li(A1, data_at), ECALL, opi("addi", 16, A0, 0),        # fd 3: a packet
             *li(A7, 999), ECALL, opi("addi", 28, A0, 0),                                    # no such call
             *li(A7, 63), opi("addi", A0, 0, 3), *li(A1, data_at + 8), opi("addi", A2, 0, 2), ECALL,
             opi("addi", 29, A0, 0), *li(A0, 256 + 9), *li(A7, 94), ECALL]
    m = machine(words, data=b"abc")
    assert m.run(100) is StopReason.WAITING, "read(3) waits for a packet"
    m.deliver(NetworkPacket(data=b"xyz"))
    assert m.run(100) is StopReason.EXITED
    assert m.exit_code == 9, "exit_group's status & 0xff"
    outs = m.take_outputs()
    assert outs[0] == ConsoleOutput(instret=outs[0].instret, data=b"abc", fd=2)
    assert outs[1] == NetworkOutput(instret=outs[1].instret, data=b"abc")
    assert len(outs) == 2
    assert (m.x[13], m.x[14], m.x[15], m.x[16], m.x[28], m.x[29]) == (3, (-9) & 0xFFFF_FFFF, (-14) & 0xFFFF_FFFF, 3,
                                                                     (-38) & 0xFFFF_FFFF, 2)
    assert m.memory.read(0x2008, 2) == b"xy", "the packet cut to the length asked"


def test_user_read_of_the_console_at_end_of_input_returns_zero() -> None:
    m = machine([*li(A7, 63), opi("addi", A0, 0, 0), *li(A1, 0x10000 + 0x2000), opi("addi", A2, 0, 8), ECALL, *EXIT])
    m.deliver(ConsoleInput(data=b"", eof=True))
    assert m.run(100) is StopReason.EXITED
    assert m.exit_code == 0
