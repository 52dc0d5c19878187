"""ZooKeeper sessions: ids, passwords, negotiated timeouts and the
leader's expiry buckets (ZooKeeper's ``SessionTrackerImpl`` and
``ExpiryQueue``; Hunt et al., USENIX ATC 2010, section 2: a session ends
when the service hears nothing from its client for the session timeout, and
its ephemeral znodes go with it).

- **Ids.** A server numbers the sessions it creates as ZooKeeper does: its
  server index in the top byte, then the creation time in milliseconds
  shifted into the middle bits, then a counter, so ids from two servers
  never collide and a restarted server does not reuse the ids of its last
  life (the time has moved on). The time is the host's (``ctx.unix_ms``):
  virtual in the simulator.
- **Passwords.** 16 bytes any server can recompute from the session id and
  the ensemble's secret (ZooKeeper seeds a generator with id XOR secret;
  here HMAC-SHA256, truncated), so a client may move to another server and
  prove the session is its own.
- **Timeouts.** The client asks; the server grants it within
  ``[2, 20] x tick_ms`` (ZooKeeper's minSessionTimeout and
  maxSessionTimeout defaults).
- **Expiry.** The leader keeps each live session in the bucket of the tick
  at which it expires (its last touch plus its timeout, rounded up to a
  whole tick, as ``ExpiryQueue.roundToNextInterval``), so checking for
  expired sessions looks at whole buckets, not at every session. An expired
  session is marked closing until its CloseSession transaction commits
  (then :meth:`SessionTracker.remove`); touching it no longer helps.

Pure: times are arguments, nothing here reads a clock.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

__all__ = ["SessionTracker", "Session", "session_id_base", "session_password", "negotiate_timeout_ms",
           "PASSWORD_BYTES", "MIN_TIMEOUT_TICKS", "MAX_TIMEOUT_TICKS", "SESSIONS_MAX"]

PASSWORD_BYTES = 16
MIN_TIMEOUT_TICKS = 2       # ZooKeeper's minSessionTimeout default: 2 x tickTime
MAX_TIMEOUT_TICKS = 20      # maxSessionTimeout default: 20 x tickTime
SESSIONS_MAX = 60_000       # live sessions one tracker holds (ZooKeeper's default maxClientCnxns is per host)
SERVER_INDEX_MAX = 127      # the id's top byte (a jute long is signed)


def session_id_base(server_index: int, unix_ms: int) -> int:
    """The first session id a server hands out in this life (ZooKeeper's
    ``initializeNextSession``): ``server_index`` in the top byte, the time
    (ms) in the 40 bits below it, a counter of 16 bits at the bottom.

    Raises:
        ValueError: ``server_index`` outside 0..127 or a negative time.
    """
    if not 0 <= server_index <= SERVER_INDEX_MAX or unix_ms < 0:
        raise ValueError(f"server index {server_index} or time {unix_ms} out of range")
    return (server_index << 56) | (((unix_ms << 24) & ((1 << 64) - 1)) >> 8)


def session_password(secret: bytes, session_id: int) -> bytes:
    """The session's password: what any server of the ensemble computes for
    ``session_id`` from the shared ``secret`` (16 bytes)."""
    return hmac.new(secret, b"synod-zk-session\0" + session_id.to_bytes(8, "big", signed=True),
                    hashlib.sha256).digest()[:PASSWORD_BYTES]


def negotiate_timeout_ms(requested_ms: int, tick_ms: int, max_ms: int | None = None) -> int:
    """The timeout a server grants for ``requested_ms``: within
    ``[MIN_TIMEOUT_TICKS, MAX_TIMEOUT_TICKS] x tick_ms``, or up to
    ``max_ms`` when given (ZooKeeper's maxSessionTimeout setting)."""
    high = MAX_TIMEOUT_TICKS * tick_ms if max_ms is None else max(max_ms, MIN_TIMEOUT_TICKS * tick_ms)
    return max(MIN_TIMEOUT_TICKS * tick_ms, min(high, requested_ms))


@dataclass(slots=True)
class Session:
    session_id: int
    timeout_ms: int
    expires_ms: int       # the tick boundary it expires at, if not touched before
    closing: bool = False


class SessionTracker:
    """The leader's view of every session's liveness (see the module
    docstring). ``tick_ms``: the bucket width (ZooKeeper's tickTime)."""

    def __init__(self, tick_ms: int) -> None:
        if tick_ms <= 0:
            raise ValueError(f"tick_ms must be positive, got {tick_ms}")
        self.tick_ms = tick_ms
        self.sessions: dict[int, Session] = {}
        self.buckets: dict[int, set[int]] = {}   # expiry time (a tick boundary) -> session ids

    def _round_up(self, t_ms: int) -> int:
        return (t_ms // self.tick_ms + 1) * self.tick_ms

    def _place(self, s: Session, expires_ms: int) -> None:
        if s.expires_ms in self.buckets:
            bucket = self.buckets[s.expires_ms]
            bucket.discard(s.session_id)
            if not bucket:
                del self.buckets[s.expires_ms]
        s.expires_ms = expires_ms
        self.buckets.setdefault(expires_ms, set()).add(s.session_id)

    def add(self, session_id: int, timeout_ms: int, now_ms: int) -> bool:
        """Track a session created (or re-validated) at ``now_ms``; False
        when the tracker is full (the connection is refused)."""
        s = self.sessions.get(session_id)
        if s is None:
            if len(self.sessions) >= SESSIONS_MAX:
                return False
            s = self.sessions[session_id] = Session(session_id, timeout_ms, -1)
        s.timeout_ms = timeout_ms
        s.closing = False
        self._place(s, self._round_up(now_ms + timeout_ms))
        return True

    def touch(self, session_id: int, now_ms: int) -> bool:
        """The client was heard at ``now_ms``; False if the session is
        unknown or already closing (it must not be revived)."""
        s = self.sessions.get(session_id)
        if s is None or s.closing:
            return False
        expires = self._round_up(now_ms + s.timeout_ms)
        if expires > s.expires_ms:
            self._place(s, expires)
        return True

    def expired(self, now_ms: int) -> list[int]:
        """Every session whose bucket is at or before ``now_ms``, in bucket
        then id order, marked closing (the caller proposes CloseSession)."""
        out: list[int] = []
        for t in sorted(b for b in self.buckets if b <= now_ms):
            for sid in sorted(self.buckets.pop(t)):
                s = self.sessions[sid]
                s.closing = True
                s.expires_ms = -1
                out.append(sid)
        return out

    def set_closing(self, session_id: int) -> None:
        """The client asked to close: no touch revives it any more."""
        s = self.sessions.get(session_id)
        if s is not None:
            s.closing = True

    def remove(self, session_id: int) -> None:
        """Its CloseSession committed: forget it."""
        s = self.sessions.pop(session_id, None)
        if s is not None and s.expires_ms in self.buckets:
            self.buckets[s.expires_ms].discard(session_id)
            if not self.buckets[s.expires_ms]:
                del self.buckets[s.expires_ms]

    def is_live(self, session_id: int) -> bool:
        s = self.sessions.get(session_id)
        return s is not None and not s.closing
