"""Where the master puts chunk replicas (Ghemawat et al., SOSP 2003,
sections 4.2 and 4.3).

Creation, re-replication and rebalancing all choose chunkservers the same
way (4.2, 4.3): spread a chunk's replicas across racks, so that it
survives the loss of a whole rack and its reads can use the bandwidth of
several; among the servers of a rack, prefer those with below-average disk
space utilization; and limit the number of recent creations on each
server, since a new chunk is followed by heavy write traffic. When a chunk
has more replicas than its goal (after rebalancing), the one to remove is
on the server with the least free space.

A rack here is a host group of the simulator or a label in the real
cluster's config. Pure functions: the master gives them its view of the
servers; ties go by server name, so a run is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ServerInfo", "place_replicas", "replica_to_remove", "RECENT_CREATIONS_MAX"]

RECENT_CREATIONS_MAX = 8   # new chunks a server takes per placement window before others are preferred


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """The master's view of one live chunkserver (from its heartbeats)."""

    name: str
    rack: str
    used_bytes: int
    capacity_bytes: int
    recent_creations: int = 0

    @property
    def free_bytes(self) -> int:
        return self.capacity_bytes - self.used_bytes

    @property
    def utilization(self) -> float:
        return self.used_bytes / self.capacity_bytes if self.capacity_bytes > 0 else 1.0


def place_replicas(servers: Iterable[ServerInfo], count: int, *, holders: Iterable[str] = (),
                   chunk_size_bytes: int = 0) -> list[str]:
    """Up to ``count`` servers for new replicas of a chunk already held by
    ``holders`` (none for a new chunk), best first: each on a rack with as
    few of the chunk's replicas as possible, with room for a chunk, fewer
    than ``RECENT_CREATIONS_MAX`` recent creations when possible, then the
    least utilized. Fewer (even none) when not enough servers qualify."""
    pool = {s.name: s for s in servers}
    held = set(holders)
    per_rack: dict[str, int] = {}
    for name in held:
        s = pool.get(name)
        if s is not None:
            per_rack[s.rack] = per_rack.get(s.rack, 0) + 1
    candidates = [s for s in pool.values() if s.name not in held and s.free_bytes >= chunk_size_bytes]
    chosen: list[str] = []
    while candidates and len(chosen) < count:
        best = min(candidates, key=lambda s: (per_rack.get(s.rack, 0), s.recent_creations >= RECENT_CREATIONS_MAX,
                                              s.utilization, s.name))
        chosen.append(best.name)
        per_rack[best.rack] = per_rack.get(best.rack, 0) + 1
        candidates.remove(best)
    return chosen


def replica_to_remove(servers: Iterable[ServerInfo], holders: Iterable[str]) -> str | None:
    """Of a chunk's replicas (on ``holders``), the one to remove when it has
    more than its goal: on a rack holding several of them if any, else the
    server with the least free space (4.3)."""
    pool = {s.name: s for s in servers}
    mine = [pool[n] for n in holders if n in pool]
    if not mine:
        return None
    per_rack: dict[str, int] = {}
    for s in mine:
        per_rack[s.rack] = per_rack.get(s.rack, 0) + 1
    victim = min(mine, key=lambda s: (-per_rack[s.rack], s.free_bytes, s.name))
    return victim.name
