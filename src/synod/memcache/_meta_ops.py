"""The meta commands on a :class:`~synod.memcache.store.Cache`: mg, ms, md,
ma, as memcached 1.6.18's ``process_mget_command``,
``process_mset_command`` (with ``_finalize_mset``),
``process_mdelete_command`` and ``process_marithmetic_command`` answer them.

Return flags are written in the order the request gave its flags. The lease
flags (Nishtala et al. 3.2.1, see :mod:`synod.memcache.store`): mg's ``N``
vivifies a miss into a placeholder and wins (``W``); a later reader of an
item whose win was given sees ``Z``; a stale item (``X``) gives its first
reader the win; ``R`` wins when the item's TTL is below the token.
"""

from __future__ import annotations

from synod.memcache.messages import Line, MetaArith, MetaDelete, MetaGet, MetaReply, MetaSet, Store
from synod.memcache.store import Cache, Item

__all__ = ["meta_get", "meta_set", "meta_delete", "meta_arith"]

_E_NON_NUMERIC = b"CLIENT_ERROR cannot increment or decrement non-numeric value"


def _opaque_key(cache: Cache, tokens: tuple[bytes, ...], key: bytes, binary: bool) -> list[bytes]:
    """The O and k return flags of a reply without an item."""
    out: list[bytes] = []
    for tok in tokens:
        if tok[0] == 79:  # O
            out.append(tok)
        elif tok[0] == 107:  # k
            out += cache.key_flag(key, binary)
    return out


def _lease_expired(cache: Cache, it: Item, now_ms: int) -> bool:
    """A win given more than the lease interval ago on an item still waiting
    to be filled (the paper's one token per key per interval): the next
    reader wins again."""
    return (bool(cache.lease_interval_ms) and it.token_sent and (it.placeholder or it.stale)
            and now_ms - it.token_sent_ms >= cache.lease_interval_ms)


def meta_get(cache: Cache, req: MetaGet, now_ms: int) -> MetaReply:  # noqa: C901 (one case per flag, as memcached)
    """mg: a hit (``VA``/``HD`` with the asked-for flags), a miss (``EN``),
    or, under ``N``, a placeholder that this reader won."""
    now_s = now_ms // 1000
    f = req.flags
    c = cache.counters
    it = cache.lookup(req.key, now_s)
    created = False
    if it is None and f.vivify_ttl is not None:
        placeholder = Item(req.key, b"", 0, 0)
        placeholder.placeholder = True
        if cache.link(placeholder, now_s):
            it, created = placeholder, True
    if it is None:
        c["cmd_get"] += 1
        c["get_misses"] += 1
        return MetaReply(code=b"EN", flags=tuple(_opaque_key(cache, f.tokens, req.key, f.key_binary)))
    won = ttl_set = False
    if _lease_expired(cache, it, now_ms):
        it.token_sent = False
        won = True
    fetched_before, time_before = it.fetched, it.time_s
    out: list[bytes] = []
    for tok in f.tokens:
        o = tok[0]
        if o == 84:  # T
            ttl_set = True
            it.exptime_s = cache.realtime(f.ttl or 0, now_s)
        elif o == 78:  # N
            if created:
                it.exptime_s = cache.realtime(f.vivify_ttl or 0, now_s)
                won = True
        elif o == 82:  # R
            if (not it.token_sent and not created and it.exptime_s
                    and it.exptime_s < cache.realtime(f.recache_ttl or 0, now_s)):
                won = True
        elif o == 115:  # s
            out.append(b"s%d" % len(it.value))
        elif o == 116:  # t
            out.append(cache.ttl_flag(it, now_s))
        elif o == 99:  # c
            out.append(b"c%d" % it.cas)
        elif o == 102:  # f
            out.append(b"f%d" % it.client_flags)
        elif o == 108:  # l
            out.append(b"l%d" % (now_s - time_before))
        elif o == 104:  # h
            out.append(b"h1" if fetched_before else b"h0")
        elif o == 79:  # O
            out.append(tok)
        elif o == 107:  # k
            out += cache.key_flag(it.key, it.key_binary)
    if it.token_sent:
        out.append(b"Z")
    if it.stale:
        out.append(b"X")
        if not it.token_sent:
            won = True  # a stale item's first reader refills it
    if won:
        out.append(b"W")
        it.token_sent = True
        it.token_sent_ms = now_ms
    if not f.no_update:
        cache.bump(it, now_s)
    if ttl_set:
        c["cmd_touch"] += 1
        c["touch_hits"] += 1
    else:
        c["cmd_get"] += 1
        c["get_hits"] += 1
    if f.value:
        return MetaReply(code=b"VA", flags=tuple(out), value=it.value)
    return MetaReply(code=b"HD", flags=tuple(out))


def meta_set(cache: Cache, req: MetaSet, now_ms: int) -> MetaReply | Line:
    """ms: store in the mode of ``M`` (set, add ``E``, append ``A``, prepend
    ``P``, replace ``R``); with ``C`` a compare-and-swap (``I``: an older
    token still stores, marked stale)."""
    f = req.flags
    mode = {b"E": "add", b"A": "append", b"P": "prepend", b"R": "replace"}.get(f.mode, "set")
    if f.compare_cas is not None and mode in ("set", "replace"):
        mode = "cas"
    store = Store(mode=mode, key=req.key, client_flags=f.client_flags, exptime=f.ttl or 0, data=req.data,
                  cas_unique=f.compare_cas or 0)
    outcome, cas = cache.store(store, now_ms, stale_ok=f.invalidate and mode == "cas", key_binary=f.key_binary)
    code = {b"STORED": b"HD", b"NOT_STORED": b"NS", b"EXISTS": b"EX", b"NOT_FOUND": b"NF"}.get(outcome)
    if code is None:
        return Line(text=outcome)  # out of memory
    out: list[bytes] = []
    for tok in f.tokens:
        if tok[0] == 79:
            out.append(tok)
        elif tok[0] == 107:
            out += cache.key_flag(req.key, f.key_binary)
        elif tok[0] == 99:
            out.append(b"c%d" % cas)
    return MetaReply(code=code, flags=tuple(out))


def meta_delete(cache: Cache, req: MetaDelete, now_ms: int) -> MetaReply:
    """md: delete (``HD``), or with ``I`` mark stale and give a new cas (the
    leases' invalidation: a set with the old token now fails); ``C`` must
    match the item's cas (else ``EX``); ``NF`` on a miss."""
    now_s = now_ms // 1000
    f = req.flags
    c = cache.counters
    flags = tuple(_opaque_key(cache, f.tokens, req.key, f.key_binary))
    it = cache.lookup(req.key, now_s)
    if it is None:
        c["delete_misses"] += 1
        return MetaReply(code=b"NF", flags=flags)
    if f.compare_cas is not None and it.cas != f.compare_cas:
        c["delete_misses"] += 1
        return MetaReply(code=b"EX", flags=flags)
    if f.invalidate:
        if f.ttl is not None:
            it.exptime_s = cache.realtime(f.ttl, now_s)
        it.stale = True
        it.token_sent = False
        it.cas = cache.take_cas()
    else:
        c["delete_hits"] += 1
        cache.unlink(it)
    return MetaReply(code=b"HD", flags=flags)


def meta_arith(cache: Cache, req: MetaArith, now_ms: int) -> MetaReply | Line:
    """ma: incr (default, ``MI`` / ``M+``) or decr (``MD`` / ``M-``) by ``D``
    (default 1); ``N`` creates a miss with ``J`` (default 0); ``C`` must match."""
    now_s = now_ms // 1000
    f = req.flags
    incr = f.mode not in (b"D", b"-")
    outcome, it, number = cache.add_delta(req.key, incr, f.delta, now_s, f.compare_cas or 0)
    created = False
    if outcome == "non_numeric":
        return Line(text=_E_NON_NUMERIC)
    if outcome == "no_memory":
        return Line(text=b"SERVER_ERROR out of memory")
    if outcome == "not_found" and f.vivify_ttl is not None:
        number = b"%d" % f.initial
        new = Item(req.key, number, 0, 0)
        if not cache.link(new, now_s):
            return Line(text=b"SERVER_ERROR Out of memory allocating new item")
        it, created = new, True
    elif outcome == "not_found":
        cache.counters["incr_misses" if incr else "decr_misses"] += 1
        return MetaReply(code=b"NF", flags=tuple(_opaque_key(cache, f.tokens, req.key, f.key_binary)))
    elif outcome == "cas_mismatch":
        return MetaReply(code=b"EX", flags=tuple(_opaque_key(cache, f.tokens, req.key, f.key_binary)))
    assert it is not None
    out: list[bytes] = []
    for tok in f.tokens:
        o = tok[0]
        if o == 99:
            out.append(b"c%d" % it.cas)
        elif o == 116:
            out.append(cache.ttl_flag(it, now_s))
        elif o == 84:
            it.exptime_s = cache.realtime(f.ttl or 0, now_s)
        elif o == 78:
            if created:
                it.exptime_s = cache.realtime(f.vivify_ttl or 0, now_s)
        elif o == 79:
            out.append(tok)
        elif o == 107:
            out += cache.key_flag(req.key, f.key_binary)
    if f.value:
        return MetaReply(code=b"VA", flags=tuple(out), value=number)
    return MetaReply(code=b"HD", flags=tuple(out))
