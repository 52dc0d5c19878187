"""The data path's chunkserver state (Ghemawat et al., SOSP 2003, sections
3.1-3.3): pushed data in a bounded LRU buffer, mutations applied in the
primary's serial order, record appends padded at a chunk's end."""

from __future__ import annotations

from collections import Counter

import pytest

from synod.core.errors import LocalProtocolError
from synod.gfs._data_path import AppendPlan, PushBuffer, plan_record_append
from synod.gfs.client import replica_order


def test_section_3_2_pushed_data_waits_in_an_lru_buffer_until_used_or_aged_out() -> None:
    buf = PushBuffer(bytes_max=10, age_ms_max=100)
    assert buf.put(("c1", 1), b"aaaa", now_ms=0)
    assert buf.put(("c1", 2), b"bbbb", now_ms=10)
    assert buf.get(("c1", 1)) == b"aaaa"          # now the most recently used
    assert buf.put(("c2", 1), b"cccc", now_ms=20)  # over 10 bytes: the least recently used goes
    assert buf.get(("c1", 2)) is None
    assert buf.bytes == 8
    assert not buf.put(("c3", 1), b"x" * 11, now_ms=30)   # never fits
    assert buf.age_out(now_ms=101) == 1                    # ("c1", 1), pushed at 0
    assert buf.pop(("c2", 1)) == b"cccc"
    assert len(buf) == 0 and buf.bytes == 0


def test_section_3_3_a_record_that_does_not_fit_pads_the_chunk_and_goes_to_the_next() -> None:
    assert plan_record_append(64, 10, 16) == AppendPlan(offset=10, pad=False)
    assert plan_record_append(64, 48, 16) == AppendPlan(offset=48, pad=False)   # exactly fills it
    assert plan_record_append(64, 49, 16) == AppendPlan(offset=49, pad=True)
    with pytest.raises(LocalProtocolError):
        plan_record_append(64, 0, 17)    # over a quarter of a chunk
    with pytest.raises(LocalProtocolError):
        plan_record_append(64, 0, 0)


def test_readers_start_at_different_replicas_and_each_keeps_its_order() -> None:
    replicas = ("cs1", "cs2", "cs3")
    firsts = Counter(replica_order(replicas, f"client-{i}", 7)[0] for i in range(300))
    assert set(firsts) == set(replicas) and min(firsts.values()) > 60   # spread over the replicas
    for i in range(20):
        order = replica_order(replicas, f"client-{i}", 7)
        assert sorted(order) == list(replicas)                          # every replica, each once
        assert order == replica_order(replicas, f"client-{i}", 7)       # the same on every call
    assert replica_order(("cs1",), "c", 1) == ("cs1",) and replica_order((), "c", 1) == ()
