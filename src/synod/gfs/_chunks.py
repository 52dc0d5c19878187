"""The master's chunk table: versions, replica locations and leases
(Ghemawat et al., SOSP 2003, sections 2.6.2, 3.1, 4.3 and 4.5).

Persistent (in the operation log): each chunk's handle and version. Not
persistent (2.6.2): where the replicas are. The master learns them from the
chunkservers' reports at start-up and keeps them fresh from heartbeats:
a chunkserver has the final word on what it holds.

Versions (4.5): whenever the master grants a new lease on a chunk it bumps
the chunk's version and tells the up-to-date replicas, before any client
hears of the lease; a replica that missed it (it was down) reports an older
version later: it is stale, is never handed to a client, and is deleted by
garbage collection. A reported version above the master's means the master
failed after bumping it in a replica but before logging it: the master takes
the higher one as current (the caller logs it).

Leases (3.1): one primary per chunk at a time, for ``LEASE_DURATION_MS``,
extended on the primary's heartbeats while it keeps mutating the chunk. A
new lease is granted only after the old one has expired (or was given back),
so two primaries never overlap: a lease never ends because the master lost
sight of its primary, and a master that restarts grants none for one lease
duration, not knowing which it granted before (``hold_leases_until``).

Re-replication (4.3): a chunk with fewer live up-to-date replicas than its
goal is copied again, the ones furthest below their goal first.

Deterministic and free of I/O: the master node feeds it reports and time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from synod.core.errors import LocalProtocolError
from synod.gfs.constants import LEASE_DURATION_MS

__all__ = ["ChunkTable", "ChunkInfo", "Lease", "Report"]


@dataclass(slots=True)
class ChunkInfo:
    """One chunk: ``version`` (persistent), ``replicas`` (chunkserver ->
    the version it holds, as last reported or told; volatile), the lease."""

    handle: int
    version: int
    replicas: dict[str, int] = field(default_factory=dict)
    primary: str | None = None
    lease_expiry_ms: int = 0   # meaningful while primary is not None
    # the secondaries the running lease was granted with: every mutation
    # under it goes to them, even if one drops out of ``replicas`` meanwhile
    lease_secondaries: tuple[str, ...] = ()
    # the version of the last lease every replica of it confirmed
    # (persistent). Mutations run only under such a lease, so a replica at
    # this version or above holds every acknowledged mutation; one below
    # is stale. ``version`` is above it while a new lease is being
    # confirmed, or after one that was not.
    confirmed: int = 1
    grant: int = 0   # the number of the running lease's grant (volatile; NewVersion, RevokeLease)


@dataclass(frozen=True, slots=True)
class Lease:
    """What a client is told (3.1, Figure 2 steps 1-2): the primary, the
    secondaries, the chunk version they hold, and when the lease ends."""

    handle: int
    version: int
    primary: str
    secondaries: tuple[str, ...]
    expiry_ms: int
    new: bool   # granted just now: the version was bumped (log it, tell the replicas)


@dataclass(frozen=True, slots=True)
class Report:
    """What the master concludes from a chunkserver's report of its chunks:
    ``stale`` (older version: delete), ``orphans`` (no such chunk any more:
    delete), ``adopted`` ((handle, version) above the master's: log it)."""

    stale: tuple[int, ...] = ()
    orphans: tuple[int, ...] = ()
    adopted: tuple[tuple[int, int], ...] = ()


class ChunkTable:
    """Chunk handle -> :class:`ChunkInfo` (see the module docstring)."""

    def __init__(self, lease_duration_ms: int = LEASE_DURATION_MS) -> None:
        self.lease_duration_ms = lease_duration_ms
        self._chunks: dict[int, ChunkInfo] = {}
        self.next_handle = 1   # persistent through the handles the log allocates
        self.no_lease_before_ms = 0

    def hold_leases_until(self, ms: int) -> None:
        """Grant no new lease before ``ms`` (a master that (re)starts at t
        holds them until t + lease duration)."""
        self.no_lease_before_ms = max(self.no_lease_before_ms, ms)

    def __len__(self) -> int:
        return len(self._chunks)

    def get(self, handle: int) -> ChunkInfo | None:
        return self._chunks.get(handle)

    def handles(self) -> list[int]:
        return sorted(self._chunks)

    # -- persistent changes (applied from the operation log) -----------------------
    def add(self, handle: int, version: int = 1, confirmed: int | None = None) -> None:
        """A new chunk (the log's record of its allocation, or a copy's).

        Raises:
            LocalProtocolError: the handle exists already.
        """
        if handle in self._chunks:
            raise LocalProtocolError(f"chunk {handle} exists already")
        self._chunks[handle] = ChunkInfo(handle=handle, version=version,
                                         confirmed=version if confirmed is None else confirmed)
        self.next_handle = max(self.next_handle, handle + 1)

    def remove(self, handle: int) -> None:
        """Forget a chunk (its file is gone); its replicas become orphans."""
        self._chunks.pop(handle, None)

    def set_version(self, handle: int, version: int) -> None:
        """The log's record of a version bump or adoption (never lowers it)."""
        info = self._chunks.get(handle)
        if info is not None and version > info.version:
            info.version = version

    def confirm(self, handle: int, version: int) -> None:
        """The log's record that every replica of the lease at ``version`` confirmed it."""
        info = self._chunks.get(handle)
        if info is not None and info.confirmed < version <= info.version:
            info.confirmed = version

    # -- what chunkservers say -------------------------------------------------------
    def report(self, server: str, held: list[tuple[int, int]], *, adopt: bool = True) -> Report:
        """``server`` holds these (handle, version) pairs, the whole list
        (2.6.2: at start-up and in heartbeats). Up-to-date ones become (or
        stay) locations; the server's other locations are dropped. With
        ``adopt`` False (a shadow master, whose versions come from the log
        alone) a higher version is noted for the replica but not taken."""
        stale, orphans, adopted = [], [], []
        seen = set()
        for handle, version in held:
            info = self._chunks.get(handle)
            if info is None:
                orphans.append(handle)
                continue
            seen.add(handle)
            if version > info.version and not adopt:
                info.replicas[server] = version   # ahead of this (shadow's) log: not handed out until it catches up
                continue
            if version > info.version:
                # 4.5: the master failed after a bump it had not logged; the caller logs the higher
                # version (and that it is confirmed), and the others then report stale.
                adopted.append((handle, version))
                info.replicas[server] = version
                continue
            if version < info.confirmed:
                stale.append(handle)
                info.replicas.pop(server, None)
                continue
            info.replicas[server] = version
        for info in self._chunks.values():
            if server in info.replicas and info.handle not in seen:
                del info.replicas[server]
        return Report(stale=tuple(sorted(stale)), orphans=tuple(sorted(orphans)), adopted=tuple(adopted))

    def server_lost(self, server: str) -> list[int]:
        """``server`` stopped heartbeating: drop it everywhere. Its leases run
        out on their own (a new primary waits for expiry). Returns the
        handles it held."""
        lost = []
        for info in self._chunks.values():
            if info.replicas.pop(server, None) is not None:
                lost.append(info.handle)
        return sorted(lost)

    def up_to_date(self, handle: int) -> list[str]:
        """The replicas at the confirmed version or above (and not above the
        current one), sorted: the only ones a client is ever given (4.5)."""
        info = self._chunks.get(handle)
        if info is None:
            return []
        return sorted(s for s, v in info.replicas.items() if info.confirmed <= v <= info.version)

    # -- leases --------------------------------------------------------------------
    def lease(self, handle: int, now_ms: int, prefer: str | None = None) -> Lease | None:
        """The chunk's lease for a client: the current one if it runs, else a
        new one to an up-to-date replica (``prefer`` if it is one, else the
        one at ``handle`` modulo their number: the primaries of many chunks
        spread over the servers), with the version bumped. None: no up-to-date
        replica is known, or the old lease has not expired yet but its
        primary is no longer an up-to-date replica (wait for it)."""
        info = self._chunks.get(handle)
        if info is None:
            return None
        replicas = self.up_to_date(handle)
        if info.primary is not None:
            if now_ms < info.lease_expiry_ms:
                if info.primary not in replicas:
                    return None   # a primary we cannot reach may still act until its lease ends
                return self._lease_of(info, replicas, new=False)
            self._end_lease(info)
        if info.lease_expiry_ms > now_ms:
            return None   # a primary that never confirmed may hold it still
        if not replicas or now_ms < self.no_lease_before_ms:
            return None
        primary = prefer if prefer in replicas else replicas[handle % len(replicas)]
        info.version += 1
        for s in replicas:
            info.replicas[s] = info.version   # told with the lease; one that misses it reports stale
        info.primary = primary
        info.lease_expiry_ms = now_ms + self.lease_duration_ms
        info.lease_secondaries = tuple(s for s in replicas if s != primary)
        return self._lease_of(info, replicas, new=True)

    def extend(self, handle: int, primary: str, now_ms: int) -> bool:
        """The primary asks to keep its lease (3.1, on heartbeats)."""
        info = self._chunks.get(handle)
        if info is None or info.primary != primary or now_ms >= info.lease_expiry_ms:
            return False
        if info.replicas.get(primary) != info.version or info.confirmed != info.version:
            return False
        info.lease_expiry_ms = now_ms + self.lease_duration_ms
        return True

    def give_back(self, handle: int, primary: str) -> None:
        """The primary confirmed it gave the lease up (the master revoked it
        for a snapshot, 3.4): a new lease may be granted at once."""
        info = self._chunks.get(handle)
        if info is not None and info.primary == primary:
            self._end_lease(info)

    def lease_free_at_ms(self, handle: int) -> int:
        """When a new lease can be granted (0: now, if no lease runs)."""
        info = self._chunks.get(handle)
        return 0 if info is None else info.lease_expiry_ms

    # -- re-replication ------------------------------------------------------------
    def under_replicated(self, goal_of: dict[int, int]) -> list[tuple[int, int]]:
        """(handle, replicas missing) for each chunk below its goal
        (``goal_of``: handle -> goal), furthest below first, then by handle
        (4.3). A chunk with no up-to-date replica left cannot be copied and
        is not listed (fsck reports it lost)."""
        out = []
        for handle, goal in goal_of.items():
            have = len(self.up_to_date(handle))
            if 0 < have < goal:
                out.append((handle, goal - have))
        out.sort(key=lambda hm: (-hm[1], hm[0]))
        return out

    @staticmethod
    def _lease_of(info: ChunkInfo, replicas: list[str], *, new: bool) -> Lease:
        assert info.primary is not None
        return Lease(handle=info.handle, version=info.version, primary=info.primary,
                     secondaries=info.lease_secondaries, expiry_ms=info.lease_expiry_ms, new=new)

    @staticmethod
    def _end_lease(info: ChunkInfo) -> None:
        info.primary = None
        info.lease_expiry_ms = 0
        info.lease_secondaries = ()
