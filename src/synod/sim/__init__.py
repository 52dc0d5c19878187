"""The deterministic simulator: scheduler, network, disk, clocks, faults, traces."""

from synod.sim.determinism import Divergence, check_determinism, first_divergence, replay_command
from synod.sim.disk import DiskFaults, SimDisk
from synod.sim.nemesis import NEMESIS_KINDS, NEMESIS_NODE, PARTITION_KINDS, Nemesis, chaos_nemesis
from synod.sim.network import (
    Constant,
    Exponential,
    Latency,
    LinkModel,
    LongTail,
    Network,
    Uniform,
)
from synod.sim.simulator import SimHost, Simulator, new_memory_fs
from synod.sim.trace import Tracer

__all__ = [
    "DiskFaults", "SimDisk", "Constant", "Exponential", "Latency", "LinkModel", "LongTail",
    "Network", "Uniform", "SimHost", "Simulator", "new_memory_fs", "Tracer",
    "Nemesis", "PARTITION_KINDS", "NEMESIS_NODE", "NEMESIS_KINDS", "chaos_nemesis",
    "Divergence", "check_determinism", "first_divergence", "replay_command",
]
