"""synod.zk.sessions: ids, passwords, negotiated timeouts, expiry buckets."""

from __future__ import annotations

import pytest

from synod.zk.sessions import (
    SessionTracker,
    negotiate_timeout_ms,
    session_id_base,
    session_password,
)


def test_ids_of_two_servers_or_two_lives_never_meet() -> None:
    a = session_id_base(1, 1_796_400_000_000)
    b = session_id_base(2, 1_796_400_000_000)
    later = session_id_base(1, 1_796_400_000_001)
    assert a >> 56 == 1 and b >> 56 == 2
    assert later - a == 1 << 16          # the next millisecond leaves 65,536 ids to the last life
    assert 0 < a < 1 << 63               # a jute long
    with pytest.raises(ValueError):
        session_id_base(128, 0)


def test_any_server_recomputes_the_password_and_a_guess_fails() -> None:
    p = session_password(b"ensemble secret", 42)
    assert len(p) == 16 and p == session_password(b"ensemble secret", 42)
    assert p != session_password(b"ensemble secret", 43) and p != session_password(b"other", 42)


def test_timeouts_are_granted_within_2_and_20_ticks() -> None:
    assert negotiate_timeout_ms(100, 2000) == 4000
    assert negotiate_timeout_ms(30_000, 2000) == 30_000
    assert negotiate_timeout_ms(100_000, 2000) == 40_000


def test_a_session_expires_at_the_tick_after_its_timeout_unless_touched() -> None:
    t = SessionTracker(tick_ms=100)
    assert t.add(7, timeout_ms=1000, now_ms=50)       # expires at the tick boundary after 1050: 1100
    assert t.expired(1099) == []
    assert t.touch(7, now_ms=600)                      # now 1700
    assert t.expired(1100) == []
    assert t.expired(1700) == [7]
    assert not t.touch(7, now_ms=1700)                 # closing: not revived
    assert not t.is_live(7)
    t.remove(7)
    assert t.sessions == {} and t.buckets == {}


def test_expired_sessions_come_in_bucket_then_id_order() -> None:
    t = SessionTracker(tick_ms=10)
    for sid, timeout in ((3, 100), (1, 100), (2, 50)):
        t.add(sid, timeout, now_ms=0)
    assert t.expired(200) == [2, 1, 3]
