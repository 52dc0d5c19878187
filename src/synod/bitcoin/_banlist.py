"""Addresses a node refuses on its P2P port for a while (Bitcoin Core's
``banman.cpp``: ``setban``, ``listbanned``, ``clearbanned``, and the
discouragement of a peer that misbehaves).

A peer is banned by its IP address (any port): a new connection from it is
closed before its version is read, until the ban expires. Core bans a
peer on request (``setban``) and, since 0.21, only *discourages* one that
misbehaves; synod keeps one list for both, as Core did before. Times are
Unix seconds, as ``listbanned`` prints them.

Limits: at most ``BANNED_MAX`` entries; a new one beyond that replaces the
one that would expire first. Bans are kept in memory only (Core keeps
``banlist.json``): a restarted node has none.
"""

from __future__ import annotations

import ipaddress

import msgspec

__all__ = ["BANNED_MAX", "BanEntry", "BanList", "ban_host", "is_local"]

BANNED_MAX = 10_000


class BanEntry(msgspec.Struct, frozen=True, kw_only=True):
    created_s: int       # when the ban began, Unix seconds
    until_s: int         # when it ends, Unix seconds


def ban_host(address: str) -> str:
    """The IP a ban applies to, normalized (``"127.0.0.1"``, ``"::1"``), from
    an IP, ``IP/32`` or ``IP/128`` (one address, as Core writes it), or a
    connection's ``host:port`` (``"[::1]:8333"``, ``"::1:8333"``).

    Raises:
        ValueError: not one IP address (a wider subnet is refused).
    """
    text = address.strip()
    ip, _, prefix = text.partition("/")
    if prefix:
        parsed = ipaddress.ip_address(ip)
        if prefix != str(parsed.max_prefixlen):
            raise ValueError(f"{address!r}: only single addresses are banned (/{parsed.max_prefixlen})")
        return str(parsed)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        host = text.rpartition(":")[0].strip("[]")   # host:port
        return str(ipaddress.ip_address(host))


def is_local(host: str) -> bool:
    """A loopback address (Core's ``CNetAddr::IsLocal``): a node never
    discourages a peer on its own host unless told to, since that would
    refuse every local peer."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BanList:
    """IP -> :class:`BanEntry`, expired entries dropped as they are met."""

    def __init__(self) -> None:
        self.entries: dict[str, BanEntry] = {}

    def ban(self, host: str, now_s: int, duration_s: int) -> None:
        """Refuse ``host`` (normalized, see :func:`ban_host`) from ``now_s``
        for ``duration_s`` seconds (>= 0); a ban already there is replaced."""
        self.entries.pop(host, None)
        if len(self.entries) >= BANNED_MAX:
            soonest = min(self.entries, key=lambda h: self.entries[h].until_s)
            del self.entries[soonest]
        self.entries[host] = BanEntry(created_s=now_s, until_s=now_s + max(0, duration_s))

    def unban(self, host: str) -> bool:
        """Lift the ban on ``host``; False if it was not banned."""
        return self.entries.pop(host, None) is not None

    def clear(self) -> None:
        self.entries.clear()

    def is_banned(self, host: str, now_s: int) -> bool:
        entry = self.entries.get(host)
        if entry is None:
            return False
        if entry.until_s <= now_s:
            del self.entries[host]
            return False
        return True

    def current(self, now_s: int) -> list[tuple[str, BanEntry]]:
        """The bans still in force, oldest first."""
        for host in [h for h, e in self.entries.items() if e.until_s <= now_s]:
            del self.entries[host]
        return sorted(self.entries.items(), key=lambda item: item[1].created_s)
