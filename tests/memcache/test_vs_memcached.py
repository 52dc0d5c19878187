"""Differential test: the same bytes to Debian's memcached 1.6.18 and to a
synod cache server give the same bytes back (memcached doc/protocol.txt;
Nishtala et al. section 3.2.1 for the lease cases).

The corpus runs in order against one memcached and one in-process synod
server (state carries from case to case, so cas uniques must line up all
the way); each case is one connection. Replies must be equal byte for byte,
except where they tell time: ``la=`` / ``l`` (seconds since the last
access) are not compared, and remaining TTLs (``t``, ``exp=``) may differ by
one second (memcached's clock ticks while the corpus runs; ours stands
still). Skipped, with the reason shown, without /usr/bin/memcached.
"""

from __future__ import annotations

import base64
import re
import time

from tests.memcache._memcached import LocalServer, exchange, memcached_server

BIG = 1024 * 1024
B64 = base64.b64encode(b"bin\x00key").decode()

# (name, bytes): each sent on a fresh connection, in this order.
CORPUS: list[tuple[str, bytes]] = [
    # -- storage commands
    ("set get", b"set a 0 0 1\r\nx\r\nget a\r\nget a a b\r\n"),
    ("set flags wrap 32 bits", b"set f 4294967297 0 2\r\nhi\r\ngets f\r\nset f 4294967295 0 1\r\nz\r\ngets f\r\n"),
    ("set negative flags", b"set f -1 0 1\r\nz\r\nset f -0 0 1\r\nz\r\ngets f\r\n"),
    ("number quirks", b"set q +7 \t0 1\r\nz\r\ngets q\r\nset q 7x 0 1\r\nz\r\n"),
    ("set noreply", b"set b 3 0 2 noreply\r\nbb\r\nget b\r\n"),
    ("add", b"add a 0 0 1\r\ny\r\nadd c 0 0 1\r\nc\r\nget a c\r\n"),
    ("replace", b"replace a 5 0 2\r\nrr\r\nreplace nope 0 0 1\r\nx\r\ngets a\r\n"),
    ("append prepend", b"append a 0 0 2\r\n++\r\nprepend a 9 0 2\r\n--\r\nappend nope 0 0 1\r\nx\r\ngets a\r\n"),
    ("cas", b"gets a\r\ncas a 0 0 1 99\r\nZ\r\ncas a 0 0 1 7\r\nY\r\ncas nope 0 0 1 1\r\nx\r\ngets a\r\n"),
    ("cas noreply", b"cas a 0 0 1 8 noreply\r\nW\r\ncas a 0 0 1 noreply\r\nx\r\nget a\r\n"),
    ("bad data chunk", b"set a 0 0 1\r\nxyz\r\nget a\r\n"),
    ("bad data chunk noreply", b"set a 0 0 1 noreply\r\nxyz\r\nget a\r\n"),
    ("set wrong token counts", b"set a 0 0\r\nset a 0 0 1 noreply extra\r\nset\r\ncas a 0 0 1\r\n"),
    ("set bad numbers", b"set a x 0 1\r\nset a 0 x 1\r\nset a 0 0 x\r\nset a 0 0 -1\r\nset a 0 0 1 noreply\r\n"
                        b"x\r\nset a 0 0 2147483647\r\n"),
    ("set key too long", b"set " + b"k" * 251 + b" 0 0 1\r\nx\r\nset " + b"k" * 250 + b" 0 0 1\r\nx\r\n"),
    ("too large", b"set big 0 0 2\r\nok\r\nset big 0 0 %d\r\n" % BIG + b"x" * BIG + b"\r\nget big\r\n"),
    ("largest item", b"set big 0 0 %d\r\n" % (BIG - 48 - 8 - 4 - 3) + b"y" * (BIG - 63) + b"\r\nset big 0 0 %d\r\n"
     % (BIG - 62) + b"y" * (BIG - 62) + b"\r\nmg big s\r\n"),
    ("expired at once", b"set e 0 -1 1\r\nx\r\nget e\r\nset e 0 1 1\r\nx\r\ntouch e -1\r\nget e\r\n"),
    ("absolute exptime", b"set e 0 2000000000 1\r\nx\r\nmg e t\r\nset e 0 1000000000 1\r\nx\r\nget e\r\n"),
    # -- retrieval
    ("get missing", b"get nope\r\ngets nope a\r\nget\r\ngets\r\n"),
    ("multiget many keys", b"get " + b" ".join(b"k%d" % i for i in range(60)) + b" a\r\n"),
    # memcached drops every reply not yet written when a get meets a long key
    # (conn_release_items), so these are alone on their connection.
    ("multiget long key mid-line", b"get a " + b"k" * 251 + b" a\r\n"),
    ("get long key", b"get " + b"k" * 251 + b"\r\n"),
    ("gat gats", b"set t 0 0 1\r\nt\r\ngat 100 t nope\r\ngats 0 t\r\nmg t t\r\ngat x t\r\ngat 10\r\n"),
    ("bget", b"bget a\r\n"),
    ("spaces", b"get  a   a \r\n  get a\r\n"),
    ("NUL ends the line", b"get a\x00 b\r\n"),
    ("CR alone", b"get a\rb\r\n\r\r\n"),
    ("LF only", b"get a\nversion\n"),
    # -- delete, incr/decr, touch
    ("delete", b"set d 0 0 1\r\nd\r\ndelete d\r\ndelete d\r\ndelete d 0\r\ndelete d noreply\r\ndelete d 0 noreply\r\n"
               b"delete d 5\r\ndelete d 5 noreply\r\ndelete d x y z\r\ndelete\r\n"),
    ("incr decr", b"set n 0 0 3\r\n100\r\ndecr n 95\r\nget n\r\nincr n 18446744073709551615\r\nincr n 1\r\n"
                  b"decr n 100\r\nincr nope 1\r\ndecr nope 1\r\n"),
    ("incr grows", b"set n 5 0 2\r\n99\r\nincr n 1\r\ngets n\r\nincr n noreply\r\nincr n 2 noreply\r\nget n\r\n"),
    ("incr errors", b"set s 0 0 3\r\nabc\r\nincr s 1\r\nincr n -1\r\nincr n x\r\nincr n\r\nset z 0 0 0\r\n\r\n"
                    b"incr z 1\r\nset m 0 0 2\r\n-1\r\nincr m 1\r\nset w 0 0 3\r\n 12\r\nincr w 1\r\n"),
    ("touch", b"set t 0 0 1\r\nt\r\ntouch t 10\r\ntouch nope 10\r\ntouch t x\r\ntouch t\r\ntouch t 10 noreply\r\n"),
    # -- misc text commands
    ("version", b"version\r\nversion extra\r\n"),
    ("verbosity", b"verbosity 1\r\nverbosity\r\nverbosity x\r\nverbosity 1 noreply\r\nverbosity 0\r\n"),
    ("stats groups", b"stats reset\r\nstats detail\r\nstats detail on\r\nstats detail dump\r\nstats detail off\r\n"
                     b"stats foo\r\n"),
    ("cache_memlimit", b"cache_memlimit 7\r\ncache_memlimit x\r\ncache_memlimit 2000000000\r\ncache_memlimit\r\n"),
    ("unknown commands", b"GET a\r\nfoo\r\nm\r\nmz\r\ng\r\ngx a\r\nx\r\n\r\nshutdown\r\n"),
    ("token limit", b"set " + b" ".join(b"t%d" % i for i in range(30)) + b"\r\n"),
    ("flush_all", b"flush_all x\r\nflush_all 1 2 3\r\nflush_all\r\nget a b\r\nflush_all 0\r\nflush_all noreply\r\n"
                  b"set a 0 0 1\r\nA\r\nflush_all 100000 noreply\r\nget a\r\nflush_all -1\r\nget a\r\n"),
    ("quit", b"set a 0 0 1\r\nq\r\nget a\r\nquit\r\nget a\r\n"),
    ("http closes", b"GET / HTTP/1.1\r\nversion\r\n"),
    # -- meta get
    ("mg flags", b"set m 7 0 3\r\nabc\r\nmg m v k c f s t h\r\nmg m h O123 k\r\nmg m\r\nmg nope v\r\nmg nope k O9\r\n"),
    ("mg quiet", b"mg nope v q\r\nmg m q\r\nmg m v q\r\nmg nope q k\r\nmn\r\n"),
    ("mg u", b"set u 0 0 1\r\nu\r\nmg u u h\r\nmg u h\r\nmg u h\r\n"),
    ("mg T touches", b"mg m T30 t\r\nmg m t T-1\r\nmg m v\r\n"),
    ("mg errors", b"mg\r\nmg m v v\r\nmg m z\r\nmg m N\r\nmg m Nx T5\r\nmg m " + b"O" + b"x" * 32 + b"\r\n"
                  b"mg m " + b" ".join(b"%c" % c for c in b"kstcfvhuqOPL") + b" a b c d e\r\n"
                  b"mg " + b"k" * 251 + b" v\r\nmg m \xff\r\nmg m E5\r\nmg m x\r\n"),
    ("mg base64 key", b"ms " + B64.encode() + b" 2 b\r\nbk\r\nmg " + B64.encode() + b" b v k\r\nmg YmluAGtleQ v\r\n"
                      b"mg !!!! b v\r\nmg a=== b\r\nmg bm9wZQ== b k v\r\n"),
    # -- meta set
    ("ms modes", b"ms s 2 T0 F5 c k O1\r\nhi\r\nmg s v f c\r\nms s 1 ME\r\nx\r\nms new1 1 ME c\r\nx\r\n"
                 b"ms s 1 MA\r\n!\r\nms s 1 MP\r\n<\r\nms s 1 MR\r\nR\r\nms nope 1 MR\r\nx\r\nms s 1 MS\r\nS\r\n"
                 b"ms nope 1 MA\r\nx\r\nmg s v\r\n"),
    ("ms cas", b"mg s c\r\nms s 1 C1 c\r\nx\r\nms s 1 C0\r\nx\r\nms nope 1 C5\r\nx\r\nms s 1 q\r\nq\r\n"
               b"ms s 1 q C3\r\nq\r\nmn\r\n"),
    ("ms errors", b"ms s\r\nms s 2\r\nhi\r\nms s x\r\nms s -1\r\nms s 2 MX\r\nhi\r\nms s 2 MSS\r\nhi\r\n"
                  b"ms s 2 F-1\r\nhi\r\nms s 2 Tx\r\nhi\r\nms s 2 c c\r\nhi\r\nms s 2 Z\r\nhi\r\nms s 1 O" + b"o" * 40
                  + b"\r\nx\r\nms s 2\r\nhixx\r\nmg s v\r\n"),
    ("ms too large", b"ms big 2\r\nok\r\nms big %d T0\r\n" % BIG + b"x" * BIG + b"\r\nmg big v\r\n"),
    ("ms flags limit", b"ms s 1 " + b" ".join(b"%c" % c for c in b"TFckOqbIMCNs") + b" a b c d e f g\r\nx\r\n"),
    # -- meta delete, arithmetic, debug, noop
    ("md", b"set d 0 0 1\r\nd\r\nmd d q\r\nmd d q\r\nmd d k O5\r\nset d 0 0 1\r\nd\r\nmd d C1\r\nmd d I T30\r\n"
           b"mg d v t c\r\nmd d Cx\r\nmd d x\r\nmd d T5 I q\r\nmd\r\n"),
    ("ma", b"set c 0 0 2\r\n10\r\nma c\r\nma c v\r\nma c MD D20 v\r\nma c M+ D5 v t c k O1\r\nma c M- v\r\n"
           b"ma nope\r\nma nope N0 J42 v t\r\nma nope2 N100 v t\r\nma c C1 v\r\nma c MX\r\nma c Dx\r\n"
           b"ma s v\r\nma c q\r\nma c q v\r\nma nope3 q\r\nmn\r\n"),
    ("me", b"set e 5 0 2\r\nhi\r\nme e\r\nme nope\r\nme\r\nme " + B64.encode() + b" b\r\nme e extra\r\n"),
    # -- leases (Nishtala et al. 3.2.1) through mg N / md I / ms C
    ("lease miss wins once", b"mg L v N30 c t\r\nmg L v N30 c t\r\nmg L v c\r\n"),
    ("lease token", b"mg L c\r\n"),
    ("lease set with token", b"ms L 5 C{cas} T60\r\nvalue\r\nmg L v c t\r\nms L 1 C{cas}\r\nx\r\n"),
    ("lease invalidate then old token", b"set L2 0 0 3\r\nold\r\nmg L2 c\r\nmd L2 I\r\nmg L2 v c N30\r\n"
                                        b"mg L2 v c N30\r\nms L2 3 C1\r\nnew\r\nms L2 3 C1 I\r\nnew\r\nmg L2 v\r\n"),
    ("lease recache", b"set R 0 100 1\r\nr\r\nmg R R30 v\r\nmg R R300 v\r\nmg R R300 v\r\n"),
]

_TIME_TOKEN = re.compile(rb"^(t|exp=)(-?\d+)$")


def same_bytes(theirs: bytes, ours: bytes) -> bool:
    """Equal, but for ``la=`` (not compared) and TTLs within a second."""
    if theirs == ours:
        return True
    a, b = theirs.split(b"\r\n"), ours.split(b"\r\n")
    if len(a) != len(b):
        return False
    for line_a, line_b in zip(a, b, strict=True):
        ta, tb = line_a.split(b" "), line_b.split(b" ")
        if len(ta) != len(tb):
            return False
        for x, y in zip(ta, tb, strict=True):
            if x == y or (x.startswith(b"la=") and y.startswith(b"la=")):
                continue
            mx, my = _TIME_TOKEN.match(x), _TIME_TOKEN.match(y)
            if not (mx and my and mx.group(1) == my.group(1) and abs(int(mx.group(2)) - int(my.group(2))) <= 1):
                return False
    return True


# Ends every case that does not close its connection: its reply marks the end.
SENTINEL = b"mg __sentinel__ k Oend\r\n"
SENTINEL_REPLY = b"EN k__sentinel__ Oend\r\n"


def test_corpus_same_bytes_as_memcached() -> None:
    """Every case of CORPUS: memcached's bytes and ours are the same (the
    error words, noreply and quiet modes, cas uniques, lease flags)."""
    local = LocalServer()
    diffs = []
    with memcached_server() as port:
        last = b""
        for name, data in CORPUS:
            cas = re.findall(rb" c(\d+)", last)
            data = data.replace(b"{cas}", cas[-1] if cas else b"0")
            closes = b"quit" in data or b"HTTP/" in data
            if not closes:
                data += SENTINEL
            theirs = last = exchange(port, data, expect=None if closes else SENTINEL_REPLY)
            local.now_ms = int(time.time() * 1000)  # absolute exptimes are compared against the real clock
            ours = local.exchange(data)
            if not same_bytes(theirs, ours):
                diffs.append(f"{name}: sent {data[:200]!r}\n  memcached: {theirs[:400]!r}\n  synod:     {ours[:400]!r}")
    assert not diffs, f"{len(diffs)} of {len(CORPUS)} cases differ:\n" + "\n".join(diffs)


def test_split_reads_same_bytes() -> None:
    """How TCP splits the bytes changes nothing: each case fed one byte at a
    time (and in 7-byte pieces) gets the bytes it gets in one piece."""
    whole, split1, split7 = LocalServer(), LocalServer(), LocalServer()
    for _, data in CORPUS:
        if len(data) > 100_000 or b"{cas}" in data:
            continue
        want = whole.exchange(data)
        assert split1.exchange(data, list(range(1, len(data)))) == want, data[:200]
        assert split7.exchange(data, list(range(7, len(data), 7))) == want, data[:200]


def test_stats_counters_as_memcached() -> None:
    """After the same commands, the counters memcached's stats shows and we
    model have the same values."""
    names = ("cmd_get", "cmd_set", "cmd_touch", "get_hits", "get_misses", "delete_misses", "delete_hits",
             "incr_misses", "incr_hits", "decr_misses", "decr_hits", "cas_misses", "cas_hits", "cas_badval",
             "touch_hits", "touch_misses", "store_too_large", "curr_items", "bytes", "total_items", "cmd_flush")
    data = (b"set a 0 0 1\r\na\r\nget a b\r\ngets a\r\nadd a 0 0 1\r\nx\r\ncas a 0 0 1 99\r\nx\r\ncas b 0 0 1 1\r\nx\r\n"
            b"cas a 0 0 1 1\r\nc\r\ndelete a\r\ndelete a\r\nset n 0 0 1\r\n1\r\nincr n 5\r\ndecr n 1\r\nincr x 1\r\n"
            b"decr x 1\r\ntouch n 10\r\ntouch x 1\r\ngat 10 n x\r\nmg n v\r\nmg x v\r\nmg n T10\r\nms m 2\r\nmm\r\n"
            b"set big 0 0 %d\r\n" % BIG + b"x" * BIG + b"\r\nset bad 0 0 1\r\nxyz\r\nflush_all 100000\r\n"
            b"md m\r\nmd m\r\nma n\r\nma y\r\nmn\r\n")

    def counters(raw: bytes) -> dict[str, str]:
        pairs = (line.split(b" ") for line in raw.split(b"\r\n") if line.startswith(b"STAT "))
        return {p[1].decode(): p[2].decode() for p in pairs if p[1].decode() in names}

    local = LocalServer()
    with memcached_server() as port:
        exchange(port, data)
        local.exchange(data)
        theirs = counters(exchange(port, b"stats\r\n", expect=b"END\r\n"))
        ours = counters(local.exchange(b"stats\r\n"))
    assert set(theirs) == set(names)
    assert ours == theirs
