"""The GFS master's chunk table: versions, locations, leases and
re-replication (Ghemawat et al., SOSP 2003, sections 2.6.2, 3.1, 4.3, 4.5)."""

from __future__ import annotations

from collections import Counter

import pytest

from synod.core.errors import LocalProtocolError
from synod.gfs import ChunkTable

LEASE_MS = 60_000


def _table(*handles: int) -> ChunkTable:
    t = ChunkTable(lease_duration_ms=LEASE_MS)
    for h in handles:
        t.add(h)
    return t


def test_section_2_6_2_locations_come_from_the_chunkservers_reports() -> None:
    """The master does not persist where replicas are; it asks each
    chunkserver at start-up and keeps the picture fresh from heartbeats: a
    chunk the server no longer reports is no longer one of its locations."""
    t = _table(1, 2)
    assert t.up_to_date(1) == []
    t.report("cs1", [(1, 1), (2, 1)])
    t.report("cs2", [(1, 1)])
    assert t.up_to_date(1) == ["cs1", "cs2"]
    t.report("cs1", [(2, 1)])          # cs1 lost chunk 1 (a disk went bad)
    assert t.up_to_date(1) == ["cs2"]
    assert t.server_lost("cs2") == [1]
    assert t.up_to_date(1) == []


def test_section_4_5_a_new_lease_bumps_the_version_and_a_replica_that_missed_it_is_stale() -> None:
    t = _table(1)
    for cs in ("cs1", "cs2", "cs3"):
        t.report(cs, [(1, 1)])
    lease = t.lease(1, now_ms=0)
    assert lease is not None and lease.new
    assert lease.version == 2
    assert (lease.primary, lease.secondaries) == ("cs2", ("cs1", "cs3"))   # handle 1 of 3 replicas: the second
    # Until every replica of the lease confirmed version 2, version 1 holds all that was acknowledged.
    assert t.report("cs3", [(1, 1)]).stale == ()
    t.confirm(1, 2)   # the master logged ConfirmVersion: mutations run under version 2 now
    # cs3 was down when the new version went out: it reports version 1 when it is back.
    report = t.report("cs3", [(1, 1)])
    assert report.stale == (1,)
    assert t.up_to_date(1) == ["cs1", "cs2"]   # never handed to a client again


def test_section_4_5_a_reported_version_above_the_masters_is_taken_as_current() -> None:
    """The master failed after telling a replica a new version but before
    logging it: it takes the higher version (the caller logs it), and the
    replicas still at the older one are stale."""
    t = _table(1)
    t.report("cs1", [(1, 1)])
    t.report("cs2", [(1, 1)])
    report = t.report("cs2", [(1, 2)])
    assert report.adopted == ((1, 2),)
    t.set_version(1, 2)    # the master logs the adopted version (SetChunkVersion)...
    t.confirm(1, 2)        # ...and that it holds what was acknowledged (ConfirmVersion)
    assert t.get(1).version == 2
    assert t.up_to_date(1) == ["cs2"]
    assert t.report("cs1", [(1, 1)]).stale == (1,)


def test_chunks_nobody_owns_are_orphans() -> None:
    t = _table(1)
    assert t.report("cs1", [(1, 1), (9, 4)]).orphans == (9,)
    t.remove(1)
    assert t.report("cs1", [(1, 1)]).orphans == (1,)


def test_section_3_1_one_primary_at_a_time_until_its_lease_expires() -> None:
    """A lease is extended on the primary's heartbeats; a new primary is
    chosen only after the old lease has expired, even when the master lost
    sight of the old primary (it may still be serving writes)."""
    t = _table(1)
    for cs in ("cs1", "cs2", "cs3"):
        t.report(cs, [(1, 1)])
    first = t.lease(1, now_ms=0)
    assert first is not None and first.primary == "cs2"
    assert not t.extend(1, first.primary, now_ms=50)          # not confirmed yet: nothing to extend
    t.confirm(1, first.version)
    assert t.lease(1, now_ms=10) == type(first)(handle=1, version=first.version, primary=first.primary,
                                                secondaries=first.secondaries, expiry_ms=first.expiry_ms,
                                                new=False)
    assert t.extend(1, first.primary, now_ms=50_000)
    assert not t.extend(1, "cs3", now_ms=50_000)            # not the primary (cs2)
    t.server_lost(first.primary)                              # partitioned away, maybe still writing
    assert t.lease(1, now_ms=100_000) is None                 # its lease runs until 110,000
    second = t.lease(1, now_ms=110_000)
    assert second is not None and second.new
    assert second.primary != first.primary
    assert second.version == first.version + 1
    assert not t.extend(1, first.primary, now_ms=110_001)


def test_a_lease_given_back_frees_the_chunk_at_once() -> None:
    """Section 3.4: the master revokes outstanding leases before a snapshot."""
    t = _table(1)
    t.report("cs1", [(1, 1)])
    t.report("cs2", [(1, 1)])
    first = t.lease(1, now_ms=0, prefer="cs2")
    assert first is not None and first.primary == "cs2"
    assert t.lease_free_at_ms(1) == LEASE_MS
    t.give_back(1, "cs2")
    assert t.lease_free_at_ms(1) == 0
    assert t.lease(1, now_ms=1).new


def test_a_restarted_master_grants_no_lease_for_one_lease_duration() -> None:
    t = _table(1)
    t.report("cs1", [(1, 1)])
    t.hold_leases_until(LEASE_MS)      # (re)started at 0: leases it granted before may run until then
    assert t.lease(1, now_ms=LEASE_MS - 1) is None
    assert t.lease(1, now_ms=LEASE_MS) is not None


def test_section_4_3_re_replication_serves_the_chunks_furthest_below_their_goal_first() -> None:
    t = _table(1, 2, 3, 4)
    t.report("cs1", [(1, 1), (2, 1), (3, 1)])
    t.report("cs2", [(2, 1), (3, 1)])
    t.report("cs3", [(3, 1)])
    goals = {1: 3, 2: 3, 3: 3, 4: 3}
    assert t.under_replicated(goals) == [(1, 2), (2, 1)]   # 3 is complete; 4 has no replica left to copy
    assert t.under_replicated({3: 5}) == [(3, 2)]


def test_handles_are_unique() -> None:
    t = _table(5)
    assert t.next_handle == 6
    with pytest.raises(LocalProtocolError):
        t.add(5)
    t.set_version(5, 3)
    t.set_version(5, 2)   # never lowered
    assert t.get(5).version == 3


def test_the_primaries_of_many_chunks_spread_over_their_replicas() -> None:
    """Every chunk on the same three servers: each server is the primary of
    a third of them (the first in order for all of them would put every
    mutation's coordination on one server)."""
    handles = range(1, 10)
    t = _table(*handles)
    for cs in ("cs1", "cs2", "cs3"):
        t.report(cs, [(h, 1) for h in handles])
    primaries = [lease.primary for h in handles if (lease := t.lease(h, now_ms=0)) is not None]
    assert sorted(Counter(primaries).values()) == [3, 3, 3]
