"""Errors of synod.ft.machine.

A program the machine cannot load is bad input from outside: ``ElfError``.
A guest that faults is not an error of the host: its run stops with
``StopReason.FAULTED`` and a ``Fault`` record (``records``). Misuse of the
API (delivering a block completion with no request pending, a negative
instruction budget) raises ``synod.core.errors.LocalProtocolError``.
"""

from __future__ import annotations

from synod.core.errors import SynodError

__all__ = ["MachineError", "ElfError"]


class MachineError(SynodError):
    """Base class of the errors the emulated machine raises on purpose."""


class ElfError(MachineError):
    """The program is not one this machine runs: not a 32-bit little-endian
    RISC-V executable, compressed or floating-point code, too large, or a
    segment outside guest RAM. The message says which."""
