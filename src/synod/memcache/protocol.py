"""memcached's text and meta protocols as a sans-IO object (h11's shape).

Spec: memcached ``doc/protocol.txt``; behaviour as memcached 1.6.18's
``proto_text.c`` (``process_command_ascii`` and the ``process_*_command``
functions), its error words and its quirks included, so a byte stream gets
the same answer here as from memcached (the differential test in
``tests/memcache/test_vs_memcached.py`` checks it).

Roles
    :class:`MemcacheProtocol` is the server side of one client connection:
    bytes in (:meth:`~MemcacheProtocol.receive_data`) -> typed requests of
    :mod:`synod.memcache.messages`; replies in (:meth:`~MemcacheProtocol.send`)
    -> bytes, answered in request order. :func:`render` writes one reply.
    Nothing here reads a socket or a clock.

States
    Reading a command line; reading a storage command's data block
    (``_data_need`` bytes, then the request is complete); swallowing the
    data block of a refused storage command (``_swallow`` bytes, as
    memcached's ``conn_swallow``); closed (after quit, or a line memcached
    would close the connection for: nothing more is parsed).

Requests
    A line ends at ``\\n``; one ``\\r`` before it is dropped; a NUL byte ends
    the line early (memcached reads it with ``strlen``). Words are split at
    spaces only, 24 tokens at a time (a get takes its keys in rounds, so a
    multiget has no key count limit). Errors are answered in request order
    as :class:`~synod.memcache.messages.Invalid` requests whose reply is
    memcached's line; a line memcached closes the connection for becomes a
    :class:`~synod.memcache.messages.Disconnect`, so the requests before it
    are answered first. :meth:`~MemcacheProtocol.receive_data` never raises
    on client bytes.

Replies and quiet modes
    A text command with ``noreply`` gets no bytes, whatever the outcome (its
    refusals included, where memcached read the ``noreply`` before refusing).
    A meta command with ``q`` hides ``EN`` (mg), ``HD`` (ms, md), ``HD`` and
    ``VA`` (ma); errors always show.

Limits (:mod:`synod.memcache.constants`)
    A line longer than ``LINE_BYTES_MAX`` (2048) closes the connection unless
    it is a get / gets / gat / gats, which may reach ``GET_LINE_BYTES_MAX``;
    a value whose item would exceed ``item_size_bytes_max`` is refused with
    ``SERVER_ERROR object too large for cache`` and its bytes swallowed
    without being buffered. Invariant: ``buffered_bytes`` stays within
    ``GET_LINE_BYTES_MAX + item_size_bytes_max + 2``.

Simplifications: memcached closes on a long line only while its ``\\n`` has
not arrived (so its answer depends on how TCP split the bytes); here the
length of the line decides, wherever it was split. memcached checks an mg,
ma opaque's length after acting on the item; here before. The refusal of an
over-long line to a gat / gats is as for get (memcached lets only get and
gets grow).
"""

from __future__ import annotations

from collections import deque

from synod.core.errors import LocalProtocolError
from synod.memcache import constants as C
from synod.memcache._meta import E_BAD_FORMAT, preparse
from synod.memcache._text import b64_decode_key, safe_strtol, safe_strtoul, safe_strtoull, tokenize
from synod.memcache.messages import (
    Arith,
    CacheMemlimit,
    Close,
    Delete,
    Disconnect,
    FlushAll,
    Get,
    Invalid,
    Line,
    MetaArith,
    MetaDebug,
    MetaDelete,
    MetaFlags,
    MetaGet,
    MetaNoop,
    MetaReply,
    MetaSet,
    Quit,
    Reply,
    Request,
    Stats,
    StatsReply,
    Store,
    Touch,
    Values,
    Verbosity,
    Version,
)

__all__ = ["MemcacheProtocol", "render", "item_size_bytes", "E_TOO_LARGE", "E_BAD_CHUNK"]

_INT_MAX = 2**31 - 1
_GET_PREFIXES = (b"get ", b"gets ", b"gat ", b"gats ")
E_TOO_LARGE = "SERVER_ERROR object too large for cache"
E_BAD_CHUNK = "CLIENT_ERROR bad data chunk"
_E_EXPTIME = "CLIENT_ERROR invalid exptime argument"

# How a reply is written, per request (kept in request order).
_NORMAL = 0
_NOREPLY = 1      # a text command with noreply: nothing at all
_QUIET_EN = 2     # mg q: hide EN
_QUIET_HD = 3     # ms q, md q: hide HD
_QUIET_MA = 4     # ma q: hide HD and VA
_CLOSE = 5        # quit / disconnect: nothing, then close

_STORE_COMMANDS = {b"set": "set", b"add": "add", b"replace": "replace", b"append": "append",
                   b"prepend": "prepend", b"cas": "cas"}
_MS_MODES = {b"": "set", b"S": "set", b"E": "add", b"A": "append", b"P": "prepend", b"R": "replace"}


def item_size_bytes(key_len: int, value_len: int, client_flags: int) -> int:
    """An item's size as memcached counts it (``ITEM_ntotal``): header and
    cas unique, the key and its NUL, the value and its CRLF, and 4 bytes of
    client flags when they are not 0."""
    return C.ITEM_HEADER_BYTES + key_len + 1 + value_len + 2 + (4 if client_flags else 0)


class MemcacheProtocol:
    """Server side of one memcached client connection (sans-IO).

    Args (limits; defaults in :mod:`synod.memcache.constants`):
        item_size_bytes_max: largest item, header included (memcached's -I).
        line_bytes_max: longest command line, bytes.
        get_line_bytes_max: longest get / gets / gat / gats line, bytes.

    Attributes:
        wants_close: True once the reply to a quit (or a close-worthy line)
            has been rendered: the gateway closes after writing it.
    """

    def __init__(self, *, item_size_bytes_max: int = C.ITEM_SIZE_BYTES_MAX, line_bytes_max: int = C.LINE_BYTES_MAX,
                 get_line_bytes_max: int = C.GET_LINE_BYTES_MAX) -> None:
        assert item_size_bytes_max > C.ITEM_HEADER_BYTES
        assert 1 <= line_bytes_max <= get_line_bytes_max
        self.item_size_bytes_max = item_size_bytes_max
        self.line_bytes_max = line_bytes_max
        self.get_line_bytes_max = get_line_bytes_max
        self._buf = bytearray()
        # A storage command waiting for its data block: the request to build
        # once _data_need bytes (data + CRLF) are here.
        # Invariant: _data_need > 0 iff _data_for is not None.
        self._data_need = 0
        self._data_for: tuple[str, bytes, int, int, int, bool, MetaFlags | None] | None = None
        self._swallow = 0  # bytes of a refused data block still to drop
        self._modes: deque[int] = deque()  # one per request handed out and not yet answered
        self._closed = False  # a quit or a close-worthy line was parsed: read nothing more
        self.wants_close = False

    @property
    def buffered_bytes(self) -> int:
        """Bytes received that are not yet part of a whole request."""
        return len(self._buf)

    @property
    def pending(self) -> int:
        """Requests handed out by :meth:`receive_data` and not yet answered."""
        return len(self._modes)

    # -- requests ----------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Request]:
        """Feed bytes read from the client; returns every request they
        complete, in order. Never raises on client bytes: refusals are
        :class:`Invalid` / :class:`Disconnect` requests."""
        if self._closed:
            return []
        buf = self._buf
        buf += data
        out: list[Request] = []
        pos = 0
        n = len(buf)
        while not self._closed:
            if self._swallow:
                take = min(self._swallow, n - pos)
                pos += take
                self._swallow -= take
                if self._swallow:
                    break
            elif self._data_need:
                if n - pos < self._data_need:
                    break
                end = pos + self._data_need
                self._add(out, self._with_data(bytes(buf[pos:end])))
                pos = end
            else:
                nl = buf.find(b"\n", pos)
                length = (n if nl < 0 else nl) - pos
                if length > self.line_bytes_max and (length > self.get_line_bytes_max
                                                     or not self._get_like(buf, pos)):
                    self._add(out, Disconnect(reason=f"command line over {self.line_bytes_max} bytes"))
                    break
                if nl < 0:
                    break
                line = bytes(buf[pos:nl])
                pos = nl + 1
                if len(line) > 1 and line[-1] == 13:
                    line = line[:-1]
                z = line.find(0)
                if z >= 0:
                    line = line[:z]
                req = self._command(line)
                if req is not None:
                    self._add(out, req)
        if self._closed:
            buf.clear()
        else:
            del buf[:pos]
        return out

    @staticmethod
    def _get_like(buf: bytearray, pos: int) -> bool:
        head = bytes(buf[pos:pos + 110])
        stripped = head.lstrip(b" ")
        return len(head) - len(stripped) <= 100 and stripped.startswith(_GET_PREFIXES)

    def _add(self, out: list[Request], req: Request) -> None:
        t = type(req)
        if t is Quit or t is Disconnect:
            mode = _CLOSE
            self._closed = True
        elif getattr(req, "noreply", False):
            mode = _NOREPLY
        elif t is MetaGet or t is MetaSet or t is MetaDelete or t is MetaArith:
            if req.flags.quiet:  # type: ignore[union-attr]
                mode = _QUIET_EN if t is MetaGet else _QUIET_MA if t is MetaArith else _QUIET_HD
            else:
                mode = _NORMAL
        else:
            mode = _NORMAL
        self._modes.append(mode)
        out.append(req)

    def _with_data(self, block: bytes) -> Request:
        """The storage request waiting for ``block`` (its data and CRLF)."""
        assert self._data_for is not None
        mode, key, client_flags, exptime, cas_unique, noreply, flags = self._data_for
        self._data_for, self._data_need = None, 0
        if block[-2:] != b"\r\n":
            # memcached shows this even to a quiet ms (it clears noreply), not to a noreply set.
            return Invalid(text=E_BAD_CHUNK, noreply=noreply and flags is None)
        if flags is not None:
            return MetaSet(key=key, flags=flags, data=block[:-2])
        return Store(mode=mode, key=key, client_flags=client_flags, exptime=exptime, data=block[:-2],
                     cas_unique=cas_unique, noreply=noreply)

    def _expect_data(self, mode: str, key: bytes, client_flags: int, exptime: int, vlen: int, cas_unique: int,
                     noreply: bool, flags: MetaFlags | None) -> Request | None:
        """After a storage command line: wait for its ``vlen`` bytes (data
        and CRLF), or refuse an item over the size limit and swallow them."""
        if item_size_bytes(len(key), vlen - 2, client_flags) > self.item_size_bytes_max:
            self._swallow = vlen
            # memcached drops the key's old item rather than leave it stale
            # (text: a set only; ms: any mode).
            unlink = flags is not None or mode == "set"
            return Invalid(text=E_TOO_LARGE, noreply=noreply, unlink_key=key if unlink else None)
        self._data_need = vlen
        self._data_for = (mode, key, client_flags, exptime, cas_unique, noreply, flags)
        return None

    def _command(self, line: bytes) -> Request | None:  # noqa: C901 (one dispatch table, as memcached's)
        tokens, rest = tokenize(line, C.TOKENS_MAX)
        ntokens = len(tokens) + 1
        if ntokens < 2 or len(tokens[0]) < 2:
            return Invalid(text="ERROR")
        cmd = tokens[0]
        if cmd[0] == 109 and len(cmd) == 2:  # 'm': meta
            c = cmd[1]
            if c == 103:
                return self._meta_get(tokens, ntokens)
            if c == 115:
                return self._meta_set(tokens, ntokens)
            if c == 100 or c == 97:
                return self._meta_delete_arith(tokens, ntokens, c == 100)
            if c == 110:
                return MetaNoop()
            if c == 101:
                return self._meta_debug(tokens, ntokens)
            return Invalid(text="ERROR")
        if cmd in (b"get", b"gets", b"gat", b"gats", b"bget"):
            if ntokens < 3:
                return Invalid(text="ERROR")
            return self._get(tokens, rest, return_cas=cmd in (b"gets", b"gats"), touch=cmd in (b"gat", b"gats"))
        if cmd[0] == 103:  # any other 'g...'
            return Invalid(text="ERROR")
        mode = _STORE_COMMANDS.get(cmd)
        if mode is not None:
            want = (7, 8) if mode == "cas" else (6, 7)
            if ntokens not in want:
                return Invalid(text="ERROR")
            return self._update(tokens, ntokens, mode)
        if cmd == b"incr" or cmd == b"decr":
            if ntokens not in (4, 5):
                return Invalid(text="ERROR")
            return self._arith(tokens, ntokens, cmd == b"incr")
        if cmd == b"delete":
            if not 3 <= ntokens <= 5:
                return Invalid(text="ERROR")
            return self._delete(tokens, ntokens)
        if cmd in _MISC_COMMANDS:
            return _misc_command(cmd, tokens, ntokens)
        if cmd == b"shutdown":
            return Invalid(text="ERROR: shutdown not enabled")
        if tokens[-1].startswith(b"HTTP/"):
            return Disconnect(reason="an HTTP request")
        return Invalid(text="ERROR")

    # -- text commands -----------------------------------------------------------------------------

    def _get(self, tokens: list[bytes], rest: bytes | None, *, return_cas: bool, touch: bool) -> Get:
        exptime = 0
        keys_from = 1
        if touch:
            e = safe_strtol(tokens[1])
            if e is None:
                return Get(keys=(), error=_E_EXPTIME)
            exptime = e
            keys_from = 2
        keys: list[bytes] = []
        words = tokens[keys_from:]
        while True:
            for key in words:
                if len(key) > C.KEY_BYTES_MAX:
                    return Get(keys=tuple(keys), return_cas=return_cas, touch=touch, exptime=exptime,
                               error=E_BAD_FORMAT)
                keys.append(key)
            if rest is None:
                break
            words, rest = tokenize(rest, C.TOKENS_MAX)
        return Get(keys=tuple(keys), return_cas=return_cas, touch=touch, exptime=exptime)

    def _update(self, tokens: list[bytes], ntokens: int, mode: str) -> Request | None:
        noreply = _noreply(tokens, ntokens)
        key = tokens[1]
        if len(key) > C.KEY_BYTES_MAX:
            return Invalid(text=E_BAD_FORMAT, noreply=noreply)
        client_flags = safe_strtoul(tokens[2])
        exptime = safe_strtol(tokens[3])
        vlen = safe_strtol(tokens[4])
        if client_flags is None or exptime is None or vlen is None:
            return Invalid(text=E_BAD_FORMAT, noreply=noreply)
        cas_unique = 0
        if mode == "cas":
            c = safe_strtoull(tokens[5])
            if c is None:
                return Invalid(text=E_BAD_FORMAT, noreply=noreply)
            cas_unique = c
        if vlen < 0 or vlen > _INT_MAX - 2:
            return Invalid(text=E_BAD_FORMAT, noreply=noreply)
        return self._expect_data(mode, key, client_flags, exptime, vlen + 2, cas_unique, noreply, None)

    def _arith(self, tokens: list[bytes], ntokens: int, incr: bool) -> Request:
        noreply = _noreply(tokens, ntokens)
        if len(tokens[1]) > C.KEY_BYTES_MAX:
            return Invalid(text=E_BAD_FORMAT, noreply=noreply)
        delta = safe_strtoull(tokens[2])
        if delta is None:
            return Invalid(text="CLIENT_ERROR invalid numeric delta argument", noreply=noreply)
        return Arith(key=tokens[1], incr=incr, delta=delta, noreply=noreply)

    def _delete(self, tokens: list[bytes], ntokens: int) -> Request:
        noreply = False
        if ntokens > 3:
            hold_is_zero = tokens[2] == b"0"
            noreply = _noreply(tokens, ntokens)
            if not ((ntokens == 4 and (hold_is_zero or noreply)) or (ntokens == 5 and hold_is_zero and noreply)):
                return Invalid(text="CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
                               noreply=noreply)
        if len(tokens[1]) > C.KEY_BYTES_MAX:
            return Invalid(text=E_BAD_FORMAT, noreply=noreply)
        return Delete(key=tokens[1], noreply=noreply)

    # -- meta commands -----------------------------------------------------------------------------

    def _meta_get(self, tokens: list[bytes], ntokens: int) -> Request:
        refused = _meta_line(tokens, ntokens, "CLIENT_ERROR options flags are too long")
        if refused is not None:
            return refused
        key, flags, error = preparse(tokens[1], tokens[2:])
        if flags is None:
            return Invalid(text=error)
        if _opaque_too_long(flags):
            return Invalid(text="CLIENT_ERROR opaque token too long")
        return MetaGet(key=key, flags=flags)

    def _meta_set(self, tokens: list[bytes], ntokens: int) -> Request | None:
        if ntokens < 3:
            return Invalid(text="ERROR")
        if len(tokens[1]) > C.KEY_BYTES_MAX or ntokens == 3:
            return Invalid(text=E_BAD_FORMAT)
        if ntokens > C.META_TOKENS_MAX:
            return Invalid(text="CLIENT_ERROR options flags too long")
        vlen = safe_strtol(tokens[2])
        if vlen is None or vlen < 0 or vlen > _INT_MAX - 2:
            return Invalid(text=E_BAD_FORMAT)
        vlen += 2
        key, flags, error = preparse(tokens[1], tokens[3:])
        if flags is not None and _opaque_too_long(flags):
            error = "CLIENT_ERROR opaque token too long"
        elif flags is not None and flags.mode not in _MS_MODES:
            error = "CLIENT_ERROR invalid mode for ms M token"
        if error:
            self._swallow = vlen
            return Invalid(text=error)
        assert flags is not None
        mode = _MS_MODES[flags.mode]
        if flags.compare_cas is not None and mode in ("set", "replace"):
            mode = "cas"
        return self._expect_data(mode, key, flags.client_flags, flags.ttl or 0, vlen, flags.compare_cas or 0,
                                 False, flags)

    def _meta_delete_arith(self, tokens: list[bytes], ntokens: int, delete: bool) -> Request:
        refused = _meta_line(tokens, ntokens, "CLIENT_ERROR options flags too long")
        if refused is not None:
            return refused
        key, flags, _ = preparse(tokens[1], tokens[2:])
        if flags is None:
            return Invalid(text="CLIENT_ERROR invalid or duplicate flag")
        if not delete and flags.mode not in (b"", b"I", b"+", b"D", b"-"):
            return Invalid(text="CLIENT_ERROR invalid mode for ma M token")
        if _opaque_too_long(flags):
            return Invalid(text="CLIENT_ERROR opaque token too long")
        if delete:
            return MetaDelete(key=key, flags=flags)
        return MetaArith(key=key, flags=flags)

    def _meta_debug(self, tokens: list[bytes], ntokens: int) -> Request:
        if ntokens < 3 or len(tokens[1]) > C.KEY_BYTES_MAX:
            return Invalid(text=E_BAD_FORMAT)
        if ntokens >= 4 and tokens[2] == b"b":
            key = b64_decode_key(tokens[1])
            if key is None:
                return Invalid(text=E_BAD_FORMAT)
            return MetaDebug(key=key, key_binary=True)
        return MetaDebug(key=tokens[1])

    # -- replies -----------------------------------------------------------------------------------

    def send(self, reply: Reply) -> bytes:
        """The bytes of ``reply``, the answer to the oldest unanswered
        request (empty when that request's quiet mode hides it).

        Raises:
            LocalProtocolError: no request waits for an answer, or ``reply``
                is not a :mod:`synod.memcache.messages` reply.
        """
        if not self._modes:
            raise LocalProtocolError("send() with no request waiting for its reply")
        mode = self._modes.popleft()
        if mode == _NORMAL:
            return render(reply)
        if mode == _CLOSE:
            self.wants_close = True
            return b""
        if mode == _NOREPLY:
            render(reply)  # still checked
            return b""
        if type(reply) is MetaReply:
            code = reply.code
            hidden = (code == b"EN") if mode == _QUIET_EN else (code == b"HD" or (mode == _QUIET_MA and code == b"VA"))
            if hidden:
                return b""
        return render(reply)

    def error_bytes(self, error: Exception) -> bytes:
        """Bytes written before a protocol-error close: none (memcached closes
        silently, and client bytes never raise here)."""
        return b""


_MISC_COMMANDS = frozenset((b"touch", b"stats", b"flush_all", b"version", b"quit", b"verbosity", b"cache_memlimit"))


def _misc_command(cmd: bytes, tokens: list[bytes], ntokens: int) -> Request:  # noqa: C901 (one case per command)
    """touch, stats, flush_all, version, quit, verbosity, cache_memlimit."""
    if cmd == b"touch":
        if ntokens not in (4, 5):
            return Invalid(text="ERROR")
        noreply = _noreply(tokens, ntokens)
        if len(tokens[1]) > C.KEY_BYTES_MAX:
            return Invalid(text=E_BAD_FORMAT, noreply=noreply)
        exptime = safe_strtol(tokens[2])
        if exptime is None:
            return Invalid(text=_E_EXPTIME, noreply=noreply)
        return Touch(key=tokens[1], exptime=exptime, noreply=noreply)
    if cmd == b"stats":
        return Stats(args=tuple(tokens[1:]))
    if cmd == b"flush_all":
        if not 2 <= ntokens <= 4:
            return Invalid(text="ERROR")
        noreply = _noreply(tokens, ntokens)
        delay = 0
        if ntokens != (3 if noreply else 2):
            d = safe_strtol(tokens[1])
            if d is None:
                return Invalid(text=_E_EXPTIME, noreply=noreply)
            delay = d
        return FlushAll(delay_s=delay, noreply=noreply)
    if cmd == b"version":
        return Version()
    if cmd == b"quit":
        return Quit()
    if cmd == b"verbosity":
        if ntokens not in (3, 4):
            return Invalid(text="ERROR")
        noreply = _noreply(tokens, ntokens)
        level = safe_strtoul(tokens[1])
        if level is None:
            return Invalid(text=E_BAD_FORMAT, noreply=noreply)
        return Verbosity(level=min(level, C.VERBOSITY_MAX), noreply=noreply)
    if cmd == b"cache_memlimit":
        if ntokens not in (3, 4):
            return Invalid(text="ERROR")
        noreply = _noreply(tokens, ntokens)
        mb = safe_strtoul(tokens[1])
        if mb is None:
            return Invalid(text="ERROR", noreply=noreply)
        if mb < C.MEMLIMIT_MB_MIN:
            return Invalid(text="MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m", noreply=noreply)
        if mb > C.MEMLIMIT_MB_MAX:
            return Invalid(text="MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes", noreply=noreply)
        return CacheMemlimit(memory_limit_mb=mb, noreply=noreply)
    raise AssertionError(f"not a misc command: {cmd!r}")


def _noreply(tokens: list[bytes], ntokens: int) -> bool:
    """memcached's set_noreply_maybe: the last token is ``noreply``."""
    return tokens[ntokens - 2] == b"noreply"


def _meta_line(tokens: list[bytes], ntokens: int, too_many: str) -> Invalid | None:
    """mg / md / ma's first checks: a key, not too long, and not too many
    flags (``too_many``: mg's words differ from md's and ma's)."""
    if ntokens < 3:
        return Invalid(text="ERROR")
    if len(tokens[1]) > C.KEY_BYTES_MAX:
        return Invalid(text=E_BAD_FORMAT)
    if ntokens > C.META_TOKENS_MAX:
        return Invalid(text=too_many)
    return None


def _opaque_too_long(flags: MetaFlags) -> bool:
    return any(t[0] == 79 and len(t) > C.OPAQUE_BYTES_MAX for t in flags.tokens)


def render(reply: Reply) -> bytes:
    """``reply`` in memcached's words.

    Raises:
        LocalProtocolError: ``reply`` is not a reply of
            :mod:`synod.memcache.messages`.
    """
    t = type(reply)
    if t is Line:
        return reply.text + b"\r\n"  # type: ignore[union-attr]
    if t is MetaReply:
        r: MetaReply = reply  # type: ignore[assignment]
        head = r.code + (b" %d" % len(r.value) if r.code == b"VA" and r.value is not None else b"")
        flags = b"".join(b" " + f for f in r.flags)
        if r.value is not None and r.code == b"VA":
            return b"%s%s\r\n%s\r\n" % (head, flags, r.value)
        return head + flags + b"\r\n"
    if t is Values:
        v: Values = reply  # type: ignore[assignment]
        if v.error:
            return v.error.encode() + b"\r\n"
        parts = []
        for item in v.values:
            if v.return_cas:
                parts.append(b"VALUE %s %d %d %d\r\n%s\r\n" % (item.key, item.client_flags, len(item.data),
                                                             item.cas_unique, item.data))
            else:
                parts.append(b"VALUE %s %d %d\r\n%s\r\n" % (item.key, item.client_flags, len(item.data), item.data))
        parts.append(b"END\r\n")
        return b"".join(parts)
    if t is StatsReply:
        s: StatsReply = reply  # type: ignore[assignment]
        return b"".join(b"STAT %s %s\r\n" % (k.encode(), val.encode()) for k, val in s.stats) + b"END\r\n"
    if t is Close:
        return b""
    raise LocalProtocolError(f"cannot render {t.__name__}: not a synod.memcache.messages reply")
