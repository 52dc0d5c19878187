"""Replica placement (Ghemawat et al., SOSP 2003, sections 4.2 and 4.3)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from synod.gfs._placement import RECENT_CREATIONS_MAX, ServerInfo, place_replicas, replica_to_remove

GB = 1 << 30


def _cluster() -> list[ServerInfo]:
    return [ServerInfo("cs1", "r1", 10 * GB, 100 * GB), ServerInfo("cs2", "r1", 50 * GB, 100 * GB),
            ServerInfo("cs3", "r2", 20 * GB, 100 * GB), ServerInfo("cs4", "r2", 90 * GB, 100 * GB),
            ServerInfo("cs5", "r3", 70 * GB, 100 * GB)]


def test_section_4_2_replicas_spread_across_racks_before_filling_any() -> None:
    """Three replicas on five servers in three racks: one per rack, the
    least utilized server of each."""
    assert place_replicas(_cluster(), 3) == ["cs1", "cs3", "cs5"]


def test_section_4_3_re_replication_avoids_the_racks_that_hold_the_chunk() -> None:
    assert place_replicas(_cluster(), 1, holders=["cs1", "cs3"]) == ["cs5"]
    # With every rack used, the least utilized remaining server.
    assert place_replicas(_cluster(), 1, holders=["cs1", "cs3", "cs5"]) == ["cs2"]


def test_section_4_2_a_server_with_many_recent_creations_is_spared() -> None:
    busy = [ServerInfo("cs1", "r1", 0, 100 * GB, recent_creations=RECENT_CREATIONS_MAX),
            ServerInfo("cs2", "r1", 60 * GB, 100 * GB)]
    assert place_replicas(busy, 1) == ["cs2"]
    assert place_replicas(busy, 2) == ["cs2", "cs1"]   # still used when nothing else is left


def test_no_server_without_room_and_fewer_when_too_few() -> None:
    full = [ServerInfo("cs1", "r1", 99 * GB, 100 * GB), ServerInfo("cs2", "r2", 0, 100 * GB)]
    assert place_replicas(full, 3, chunk_size_bytes=2 * GB) == ["cs2"]
    assert place_replicas([], 3) == []


def test_section_4_3_the_replica_removed_is_on_a_crowded_rack_then_the_fullest_server() -> None:
    cluster = _cluster()
    assert replica_to_remove(cluster, ["cs1", "cs2", "cs3"]) == "cs2"   # r1 holds two; cs2 has less free space
    assert replica_to_remove(cluster, ["cs3", "cs4", "cs5"]) == "cs4"   # r2 holds two; cs4 is fuller
    assert replica_to_remove(cluster, ["cs1", "cs3", "cs5"]) == "cs5"   # one per rack: the fullest
    assert replica_to_remove(cluster, ["gone"]) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["r1", "r2", "r3", "r4"]), st.integers(0, 100)), min_size=0, max_size=12),
       st.integers(1, 5))
def test_placement_never_repeats_a_server_and_uses_as_many_racks_as_it_can(servers: list, count: int) -> None:
    infos = [ServerInfo(f"cs{i}", rack, used * GB, 100 * GB) for i, (rack, used) in enumerate(servers)]
    chosen = place_replicas(infos, count)
    assert len(chosen) == len(set(chosen)) == min(count, len(infos))
    racks = {s.rack for s in infos}
    used = [next(s.rack for s in infos if s.name == n) for n in chosen]
    assert len(set(used)) == min(len(chosen), len(racks))
