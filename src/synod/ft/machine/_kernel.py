"""The user program's kernel: Linux-style system calls on ECALL.

A USER program's ECALL does not trap: the machine serves it as Linux's
RISC-V ABI does (system call number in a7, arguments in a0..a2, result in
a0, a negative errno on failure), and the ECALL retires like any other
instruction (as under qemu-riscv32 and unicorn, which count it):

- 64 ``write(fd, buf, len)``: fd 1 and 2 -> the console (one
  ``ConsoleOutput``), fd 3 -> the network (one ``NetworkOutput`` packet);
- 63 ``read(fd, buf, len)``: fd 0 <- console input (what is waiting, at
  most len; 0 at end of input), fd 3 <- the next packet (cut to len);
  with nothing waiting the machine waits: the ECALL does not retire and
  ``run`` returns ``WAITING`` until an input is delivered;
- 93 ``exit(status)`` and 94 ``exit_group(status)``: the program ends with
  ``status & 0xFF`` as its exit code (as a Linux parent sees it).

Any other number returns -ENOSYS; an unknown fd -EBADF; a buffer outside
RAM -EFAULT; a packet over NET_PACKET_BYTES_MAX -EMSGSIZE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synod.ft import constants as c
from synod.ft.machine._isa import MASK32
from synod.ft.machine.records import ConsoleOutput, StopReason

if TYPE_CHECKING:
    from synod.ft.machine.machine import Machine

SYS_READ, SYS_WRITE, SYS_EXIT, SYS_EXIT_GROUP = 63, 64, 93, 94
FD_STDIN, FD_STDOUT, FD_STDERR, FD_NET = 0, 1, 2, 3
EBADF, EFAULT, ENOSYS, EMSGSIZE = 9, 14, 38, 90
_A0, _A1, _A2, _A7 = 10, 11, 12, 17


class Wait(Exception):
    """The call cannot complete until an input is delivered."""


def syscall(m: Machine) -> StopReason | None:
    """Serve the ECALL at ``m.pc``: retire it (a0 set, pc + 4) and return
    None, or ``EXITED``; or leave it unretired and return ``WAITING``."""
    x = m.x
    number, a0, a1, a2 = x[_A7], x[_A0], x[_A1], x[_A2]
    if number in (SYS_EXIT, SYS_EXIT_GROUP):
        m.retire_system()
        m.exit(a0 & 0xFF)
        return StopReason.EXITED
    try:
        if number == SYS_WRITE:
            result = _write(m, a0, a1, a2)
        elif number == SYS_READ:
            result = _read(m, a0, a1, a2)
        else:
            result = -ENOSYS
    except Wait:
        m.waiting = True
        return StopReason.WAITING
    x[_A0] = result & MASK32
    m.retire_system()
    return None


def _write(m: Machine, fd: int, buf: int, length: int) -> int:
    length = min(length, c.SYSCALL_IO_BYTES_MAX)
    if fd not in (FD_STDOUT, FD_STDERR, FD_NET):
        return -EBADF
    o = m.memory.offset(buf, length)
    if o is None:
        return -EFAULT
    if fd == FD_NET:
        sent = m.devices.send_packet(buf, length, m.instret)
        return -EMSGSIZE if sent is None else sent
    if length:
        m.devices.emit(ConsoleOutput(instret=m.instret + 1, data=m.memory.read(o, length), fd=fd))
    return length


def _read(m: Machine, fd: int, buf: int, length: int) -> int:
    length = min(length, c.SYSCALL_IO_BYTES_MAX)
    dev = m.devices
    if fd == FD_NET:
        if not dev.net_rx:
            raise Wait
        got = dev.receive_packet(buf, length)
        return -EFAULT if got is None else got
    if fd != FD_STDIN:
        return -EBADF
    if m.memory.offset(buf, length) is None:
        return -EFAULT
    if not dev.console_in and length:
        if dev.console_eof:
            return 0
        raise Wait
    n = min(length, len(dev.console_in))
    data = bytes(dev.console_in.popleft() for _ in range(n))
    o = m.memory.offset(buf, n)
    assert o is not None
    m.memory.write(o, data)
    return n
