"""Cluster-config factories (DESIGN.md section 9): a replica of the pair,
whose params are :class:`~synod.ft.node.FtConfig` (``program`` names one
of synod's programs or an ELF file, read here, at the boundary), and the
shared storage's test-and-set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synod.core import parse_params
from synod.core.errors import ConfigError
from synod.ft.constants import ELF_FILE_BYTES_MAX
from synod.ft.machine import ElfError, read_elf
from synod.ft.node import FtConfig, FtNode, StorageNode
from synod.ft.programs import PROGRAMS, program_image

__all__ = ["ft_factory", "storage_factory", "FT_FACTORY", "STORAGE_FACTORY", "load_program"]

FT_FACTORY = "synod.ft.factories:ft_factory"
STORAGE_FACTORY = "synod.ft.factories:storage_factory"


def load_program(program: str) -> bytes:
    """The ELF file ``program`` names: one of synod's programs (``echo``,
    ``reads``, ``primes``) or a path.

    Raises:
        ConfigError: no such program or file, or a file over ELF_FILE_BYTES_MAX.
    """
    if program in PROGRAMS:
        return program_image(program)
    path = Path(program)
    try:
        size = path.stat().st_size
        if size > ELF_FILE_BYTES_MAX:
            raise ConfigError(f"program {program}: {size} bytes, over {ELF_FILE_BYTES_MAX}")
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(f"program {program!r}: not one of {', '.join(PROGRAMS)} and not a readable file "
                          f"({e.strerror})") from None


def ft_factory(node_id: str, params: dict[str, Any]) -> FtNode:
    """Cluster-config factory ``synod.ft.factories:ft_factory``.

    Raises:
        ConfigError: params that are not an :class:`FtConfig`, or a program that cannot be read.
    """
    config = parse_params(params, FtConfig)
    image = load_program(config.program)
    try:
        read_elf(image)
    except ElfError as e:
        raise ConfigError(f"program {config.program!r}: {e}") from None
    return FtNode(config, image)


def storage_factory(node_id: str, params: dict[str, Any]) -> StorageNode:
    """Cluster-config factory ``synod.ft.factories:storage_factory`` (no params)."""
    if params:
        raise ConfigError(f"the storage node takes no params, got {sorted(params)}")
    return StorageNode()
