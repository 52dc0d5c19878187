"""RESP, the Redis wire protocol, as sans-IO objects (h11's shape).

Spec: https://redis.io/docs/latest/develop/reference/protocol-spec/ (RESP2
and RESP3); request parsing as Redis 7's ``src/networking.c``
(``processInputBuffer``, ``processMultibulkBuffer``, ``processInlineBuffer``)
and ``sdssplitargs`` do it, error words included.

Roles
    :class:`RespProtocol` is the server side of one client connection: bytes
    in (:meth:`~RespProtocol.receive_data`) -> :class:`~synod.kv.messages.Command`
    requests; replies in (:meth:`~RespProtocol.send`) -> bytes, answered in
    request order. :func:`render` is the pure reply renderer; the client
    side is :mod:`synod.kv.resp_client`. Nothing here reads a socket or a
    clock.

Requests ("Sending commands to a Redis server")
    A request starting with ``*`` is a multibulk ``*<n>\\r\\n`` then n
    ``$<len>\\r\\n<len bytes>\\r\\n``; anything else is an inline command, a
    line split into words as ``sdssplitargs`` does ("double" quotes with
    ``\\xHH``, ``\\n``, ``\\r``, ``\\t``, ``\\b``, ``\\a`` escapes; 'single'
    quotes with ``\\'``; a closing quote must be followed by a space). An
    empty inline line and ``*0`` / ``*-1`` are skipped.

States
    Between commands; inside a multibulk (``_left`` arguments to go, the
    next one's length ``_bulk_len`` known or -1); failed (after a
    :class:`RespProtocolError`; :meth:`~RespProtocol.receive_data` then
    raises ``LocalProtocolError`` and the gateway closes the connection).
    Bytes not yet parsed sit in ``_tail``; ``_need`` / ``_wait_byte`` say
    what must arrive before parsing again, so a 512 MiB bulk arriving in
    16 KiB reads is copied once, not once per read.

Two parsers, one answer
    The fast path (:meth:`~RespProtocol._parse_well_formed`) takes whole
    multibulk commands whose lines all end in CRLF and whose headers are
    common sizes with one ``bytes.split``; the general parser takes over
    where it stops (a partial command, inline, data holding CRLF, anything
    malformed), so every error comes from the general parser. About 0.8 us
    a 3-word SET pipelined, 1.25 us alone (CPython 3.11).

Errors
    Redis answers the commands before the bad bytes, then writes the error
    and closes; :class:`RespProtocolError` carries those commands so the
    gateway can do the same.

Invariants
    ``buffered_bytes <= buffer_bytes_max`` after every call that returns;
    a declared length (``$<len>``, ``*<n>``) is checked against its limit
    before any of its data is buffered.

Redis's quirks kept (so a byte stream gets the same answer from us as from
Redis 7): the byte after a header's ``\\r`` and the two bytes after a bulk's
data are skipped unchecked; a NUL byte before a header's ``\\r`` or an inline
line's ``\\n`` hides that terminator (Redis searches with ``strchr``), so
the line waits until it is too big. Simplifications: a header or inline line
over ``inline_bytes_max`` is refused even when its terminator arrived in the
same read (Redis refuses it only while unterminated, so the answer would
depend on how TCP split the bytes); ``*<n>`` is bounded by
``multibulk_len_max`` (1024*1024, Redis 2.6-6.2's bound; 7 allows INT_MAX).

Replies are rendered per the table in :mod:`synod.kv.replies`; doubles as
Redis 7.2+ writes them (shortest round-trip digits, ``inf``, ``-inf``,
``nan``; an integral value within 2**62 as an integer).
"""

from __future__ import annotations

import math
import re
from collections import deque

from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.kv import constants as C
from synod.kv._resp import CR, CRLF, DOLLAR, LF, STAR, RespProtocolError, string2ll
from synod.kv.messages import Command
from synod.kv.replies import (
    OK,
    Array,
    Boolean,
    BulkString,
    Double,
    Integer,
    Map,
    Reply,
    Set,
    SimpleError,
    SimpleString,
    VerbatimString,
)

__all__ = ["RespProtocol", "RespProtocolError", "render", "format_double"]

_HELLO = b"hello"

# Redis's reply texts (src/networking.c), as "-ERR <text>\r\n" carries them.
_E_MBULK_LEN = "Protocol error: invalid multibulk length"
_E_BULK_LEN = "Protocol error: invalid bulk length"
_E_MBULK_BIG = "Protocol error: too big mbulk count string"
_E_BULK_BIG = "Protocol error: too big bulk count string"
_E_INLINE_BIG = "Protocol error: too big inline request"
_E_QUOTES = "Protocol error: unbalanced quotes in request"
_PROTOCOL_ERROR_PREFIX = "Protocol error: "


# Header lines of the common sizes, parsed once: one dict lookup replaces
# checking the type byte, the digits and the leading zero on the hot path.
_COUNT_HEADERS = {b"*%d" % i: i for i in range(1, 1025)}
_BULK_HEADERS = {b"$%d" % i: i for i in range(0, 10000)}
# Largest buffer the fast path splits (it copies the buffer once).
_FAST_PATH_BYTES_MAX = 4 * 1024 * 1024


def _split_args(line: bytes) -> list[bytes] | None:
    """An inline line split into words as Redis's ``sdssplitargs`` does; None
    for unbalanced quotes or a closing quote followed by a non-space."""
    if _NEEDS_SLOW_SPLIT.search(line) is None:
        return line.split()  # ASCII whitespace = sdssplitargs's separators here
    return _split_args_slow(line)


# Outside quotes, sdssplitargs skips C isspace() between words but ends a word
# only at ' ', '\t', '\r', '\n' (a '\v' or '\f' inside a word is kept), so
# bytes.split() agrees with it on lines without quotes, '\v' and '\f'.
_NEEDS_SLOW_SPLIT = re.compile(rb"[\"'\x0b\x0c]")
_ISSPACE = frozenset(b" \t\n\v\f\r")
_WORD_END = frozenset(b" \t\n\r")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}


def _split_args_slow(line: bytes) -> list[bytes] | None:
    """sdssplitargs on a line with quotes (rare: typed by hand in telnet)."""
    words: list[bytes] = []
    n = len(line)
    i = 0
    while True:
        while i < n and line[i] in _ISSPACE:
            i += 1
        if i >= n:
            return words
        word = bytearray()
        quote = 0  # 0, '"' or "'"
        while True:
            if i >= n:
                if quote:
                    return None  # unterminated quotes
                break
            c = line[i]
            if quote == 34:  # inside "double quotes"
                if c == 92 and i + 3 < n and line[i + 1] == 120 and line[i + 2] in _HEX and line[i + 3] in _HEX:
                    word.append(int(line[i + 2:i + 4], 16))
                    i += 4
                elif c == 92 and i + 1 < n:
                    word.append(_ESCAPES.get(line[i + 1], line[i + 1]))
                    i += 2
                elif c == 34:
                    if i + 1 < n and line[i + 1] not in _ISSPACE:
                        return None  # "foo"bar
                    i += 1
                    break
                else:
                    word.append(c)
                    i += 1
            elif quote == 39:  # inside 'single quotes'
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    word.append(39)
                    i += 2
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in _ISSPACE:
                        return None
                    i += 1
                    break
                else:
                    word.append(c)
                    i += 1
            elif c in _WORD_END:
                i += 1
                break
            elif c == 34 or c == 39:
                quote = c
                i += 1
            else:
                word.append(c)
                i += 1
        words.append(bytes(word))


class RespProtocol:
    """Server side of one client connection (sans-IO).

    Args (limits, each checked where bytes are added; defaults in
    :mod:`synod.kv.constants`):
        bulk_bytes_max: largest ``$<len>`` argument, bytes.
        multibulk_len_max: most arguments in one ``*<n>`` request.
        inline_bytes_max: longest inline line or header line, bytes.
        buffer_bytes_max: most received bytes not yet a whole command.

    Attributes:
        version: 2 or 3, the RESP version replies are written in (starts at 2;
            HELLO switches it, see :meth:`send`).
    """

    def __init__(self, *, bulk_bytes_max: int = C.BULK_BYTES_MAX, multibulk_len_max: int = C.MULTIBULK_LEN_MAX,
                 inline_bytes_max: int = C.INLINE_BYTES_MAX,
                 buffer_bytes_max: int = C.QUERY_BUFFER_BYTES_MAX) -> None:
        assert bulk_bytes_max >= 0
        assert multibulk_len_max >= 1
        assert inline_bytes_max >= 1
        assert buffer_bytes_max >= 1
        self.bulk_bytes_max = bulk_bytes_max
        self.multibulk_len_max = multibulk_len_max
        self.inline_bytes_max = inline_bytes_max
        self.buffer_bytes_max = buffer_bytes_max
        self.version = 2
        # The fast path knows only headers up to these sizes.
        self._fast = bulk_bytes_max >= max(_BULK_HEADERS.values()) and multibulk_len_max >= max(_COUNT_HEADERS.values())
        # Unparsed bytes: the start of an incomplete command or argument.
        self._tail = bytearray()
        # Parsing resumes only once len(_tail) >= _need, and (when set) only
        # once a read brings _wait_byte, the terminator of the line in _tail.
        self._need = 0
        self._wait_byte: bytes | None = None
        # The multibulk in progress: its arguments so far, how many to go,
        # the next one's declared length (-1: header not read yet), and the
        # bytes consumed for it outside _tail.
        # Invariant: _left == 0 iff no multibulk is in progress (then _args == []).
        self._args: list[bytes] = []
        self._left = 0
        self._bulk_len = -1
        self._partial_bytes = 0
        # Commands handed out / answered; HELLO <protover> among them as
        # (sequence number, protover), oldest first.
        # Invariant: _answered <= _received.
        self._received = 0
        self._answered = 0
        self._hellos: deque[tuple[int, int]] = deque()
        self._quits: deque[int] = deque()  # command numbers of QUITs not yet answered
        # True once the reply to a QUIT has been rendered: the gateway closes
        # the connection after writing it (Redis's QUIT).
        self.wants_close = False
        self._error: RespProtocolError | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes received that are not yet part of a whole command."""
        return self._partial_bytes + len(self._tail)

    @property
    def pending(self) -> int:
        """Commands handed out by :meth:`receive_data` and not yet answered."""
        return self._received - self._answered

    # -- requests ---------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Command]:
        """Feed bytes read from the client; returns every command they
        complete, in order (none while a command is still partial).

        Raises:
            RespProtocolError (a RemoteProtocolError): malformed input or a
                limit exceeded, with Redis's words; the object is then failed.
            LocalProtocolError: called again after that error.
        """
        if self._error is not None:
            raise LocalProtocolError(f"receive_data after a protocol error ({self._error}); close the connection")
        tail = self._tail
        if tail or self._need:
            if self._wait_byte is not None and self._wait_byte not in data:
                tail += data
                self._check_waiting_line()
                self._check_buffer()
                return []
            tail += data
            if len(tail) < self._need:
                self._check_buffer()
                return []
            b = bytes(tail)
        else:
            b = data if type(data) is bytes else bytes(data)
        commands: list[Command] = []
        pos = 0
        if not self._left and self._fast and 0 < len(b) <= _FAST_PATH_BYTES_MAX and b[0] == STAR:
            pos = self._parse_well_formed(b, commands)
            if pos == len(b):  # the common case: whole commands only
                if tail:
                    self._tail = bytearray()
                    self._need, self._wait_byte = 0, None
                self._count(commands)
                return commands
        try:
            self._parse(b, pos, commands)
        except RespProtocolError as e:
            self._count(e.commands)
            self._error = e
            raise
        self._count(commands)
        self._check_buffer()
        return commands

    def _count(self, commands: list[Command]) -> None:
        """Number the new commands; note the QUITs among them (their reply
        closes the connection, see :attr:`wants_close`)."""
        for i, c in enumerate(commands):
            a0 = c.args[0]
            if len(a0) == 4 and a0.lower() == b"quit":
                self._quits.append(self._received + i)
        self._received += len(commands)

    def _fail(self, text: str, out: list[Command]) -> RespProtocolError:
        return RespProtocolError(text, out)

    def _parse(self, b: bytes, pos: int, out: list[Command]) -> None:
        """The general parser: commands from ``b[pos:]`` (``b`` = the old
        tail + new data) into ``out``, any form, resuming a multibulk in
        progress; what is left goes to ``_tail``, and ``_need`` /
        ``_wait_byte`` say what must arrive before parsing again."""
        n = len(b)
        self._need, self._wait_byte = 0, None
        cmd_start = 0  # where the multibulk in progress begins in b (0: it began before b)
        while True:
            if not self._left:
                self._partial_bytes = 0
                cmd_start = pos
                if pos >= n:
                    break
                end = self._inline(b, pos, n, out) if b[pos] != STAR else self._multibulk_header(b, pos, n, out)
                if end < 0:
                    break
                pos = end
                if not self._left:
                    continue
            pos = self._arguments(b, pos, n, out)
            if self._left:
                break
        if self._left:
            self._partial_bytes += pos - cmd_start
        self._tail = bytearray(b[pos:]) if pos < n else bytearray()

    def _header_end(self, b: bytes, pos: int, n: int, too_big: str, out: list[Command]) -> int:
        """Where the header line at ``pos`` (``*<n>`` or ``$<len>``) ends (its
        ``\r``), or -1 if it has not all arrived (``_need`` / ``_wait_byte``
        set). Raises ``too_big`` for a line over ``inline_bytes_max``."""
        nl = b.find(CR, pos)
        if nl < 0:
            return self._wait_line(pos, n, too_big, out)
        if nl - pos > self.inline_bytes_max:
            raise self._fail(too_big, out)
        if nl + 1 >= n:  # the byte after '\r' (not checked, as in Redis) has not arrived
            self._need = n - pos + 1
            return -1
        return nl

    def _wait_line(self, pos: int, n: int, too_big: str, out: list[Command]) -> int:
        """The line at ``pos`` has no terminator yet (or Redis's ``strchr``
        would not see it past a NUL): wait for one, unless already too big."""
        if n - pos > self.inline_bytes_max:
            raise self._fail(too_big, out)
        self._need, self._wait_byte = n - pos + 1, CR
        return -1

    def _multibulk_header(self, b: bytes, pos: int, n: int, out: list[Command]) -> int:
        """Read ``*<n>\r\n`` at ``pos``: returns the position after it
        (a multibulk begun unless n <= 0), or -1 to wait."""
        nl = self._header_end(b, pos, n, _E_MBULK_BIG, out)
        if nl < 0:
            return -1
        s = b[pos + 1:nl]
        count = string2ll(s)
        if count is None:
            if b"\0" in s:
                return self._wait_line(pos, n, _E_MBULK_BIG, out)
            raise self._fail(_E_MBULK_LEN, out)
        if count > self.multibulk_len_max:
            raise self._fail(_E_MBULK_LEN, out)
        if count > 0:
            self._left, self._args, self._bulk_len = count, [], -1
        return nl + 2

    def _arguments(self, b: bytes, pos: int, n: int, out: list[Command]) -> int:
        """Read the arguments of the multibulk in progress from ``pos``;
        returns where it stopped (``_left`` > 0: waiting for more bytes)."""
        args = self._args
        while self._left:
            if self._bulk_len < 0:
                nl = self._header_end(b, pos, n, _E_BULK_BIG, out) if pos < n else -1
                if nl < 0:
                    return pos
                s = b[pos + 1:nl]
                size = string2ll(s) if b[pos] == DOLLAR else None
                if size is None or size < 0 or size > self.bulk_bytes_max:
                    if b.find(b"\0", pos, nl) >= 0:
                        self._wait_line(pos, n, _E_BULK_BIG, out)
                        return pos
                    if b[pos] != DOLLAR:
                        got = chr(b[pos]) if b[pos] not in (10, 13) else " "
                        raise self._fail(f"Protocol error: expected '$', got '{got}'", out)
                    raise self._fail(_E_BULK_LEN, out)
                self._bulk_len = size
                pos = nl + 2
            end = pos + self._bulk_len
            if end + 2 > n:
                self._need = self._bulk_len + 2
                return pos
            args.append(b[pos:end])
            pos = end + 2  # the two bytes after the data are not checked, as in Redis
            self._bulk_len = -1
            self._left -= 1
        if len(args[0]) == 5 and len(args) >= 2 and args[0].lower() == _HELLO:
            self._note_hello(args, len(out))
        out.append(Command(args=tuple(args)))
        self._args = []
        return pos

    def _parse_well_formed(self, b: bytes, out: list[Command]) -> int:
        """The fast path: whole multibulk commands at the start of ``b``
        whose every line ends in CRLF and whose headers are common sizes,
        found with one ``split``; returns where it stopped (the general
        loop takes over from there: a partial command, an inline one, data
        holding CRLF, anything unusual)."""
        pieces = b.split(CRLF)
        complete = len(pieces) - 1  # the last piece is not followed by CRLF
        counts = _COUNT_HEADERS
        bulks = _BULK_HEADERS
        i = 0
        while i < complete:
            count = counts.get(pieces[i])
            if count is None:
                break
            j = i + 1 + 2 * count
            if j > complete:
                break
            # Each header's length equals its data piece's length iff no data
            # holds CRLF and every data is followed by CRLF.
            k = i + 1
            while k < j and bulks.get(pieces[k]) == len(pieces[k + 1]):
                k += 2
            if k < j:
                break
            data = pieces[i + 2:j:2]
            a0 = data[0]
            if len(a0) == 5 and count >= 2 and a0.lower() == _HELLO:
                self._note_hello(data, len(out))
            out.append(Command(args=tuple(data)))
            i = j
        if i == complete and not pieces[-1]:
            return len(b)
        return sum(map(len, pieces[:i])) + 2 * i

    def _inline(self, b: bytes, pos: int, n: int, out: list[Command]) -> int:
        """Parse one inline line at ``pos``; returns the position after it,
        or -1 if its ``\\n`` has not arrived (``_need`` / ``_wait_byte`` set)."""
        nl = b.find(LF, pos)
        if nl < 0 or b.find(b"\0", pos, nl) >= 0:  # Redis's strchr stops at a NUL
            if n - pos > self.inline_bytes_max:
                raise self._fail(_E_INLINE_BIG, out)
            self._need, self._wait_byte = n - pos + 1, LF
            return -1
        if nl - pos > self.inline_bytes_max:
            raise self._fail(_E_INLINE_BIG, out)
        line = b[pos:nl - 1] if nl > pos and b[nl - 1] == 13 else b[pos:nl]
        words = _split_args(line)
        if words is None:
            raise self._fail(_E_QUOTES, out)
        if words:
            a0 = words[0]
            if len(a0) == 5 and len(words) >= 2 and a0.lower() == _HELLO:
                self._note_hello(words, len(out))
            out.append(Command(args=tuple(words)))
        return nl + 1

    def _check_waiting_line(self) -> None:
        """A line waiting for its terminator must stay within the line limit."""
        n = len(self._tail)
        if n <= self.inline_bytes_max:
            return
        if self._tail[0] != STAR and not self._left:
            text = _E_INLINE_BIG
        else:
            text = _E_BULK_BIG if self._left else _E_MBULK_BIG
        self._error = RespProtocolError(text)
        raise self._error

    def _check_buffer(self) -> None:
        if self.buffered_bytes > self.buffer_bytes_max:
            self._error = RespProtocolError(
                f"closing client that reached max query buffer length "
                f"({self.buffered_bytes} bytes > {self.buffer_bytes_max})")
            raise self._error

    def _note_hello(self, args: list[bytes], index: int) -> None:
        """Record a ``HELLO 2`` / ``HELLO 3`` (Redis reads protover with
        string2ll, so ``03`` is not 3); :meth:`send` switches on its reply."""
        if args[1] == b"2" or args[1] == b"3":
            self._hellos.append((self._received + index, int(args[1])))

    # -- replies ----------------------------------------------------------

    def send(self, reply: Reply) -> bytes:
        """The bytes of ``reply``, the answer to the oldest unanswered command.

        A reply to ``HELLO 2`` / ``HELLO 3`` that is not a SimpleError first
        switches :attr:`version`, so the HELLO reply itself is in the new
        version (as Redis does).

        Raises:
            LocalProtocolError: no command is waiting for a reply, or
                ``reply`` is not a Reply.
        """
        if self._answered >= self._received:
            raise LocalProtocolError("send() with no command waiting for a reply")
        hellos = self._hellos
        if hellos and hellos[0][0] == self._answered:
            protover = hellos.popleft()[1]
            if type(reply) is not SimpleError:
                self.version = protover
        quits = self._quits
        if quits and quits[0] == self._answered:
            quits.popleft()
            self.wants_close = True
        self._answered += 1
        return render(reply, self.version)

    def error_bytes(self, error: RemoteProtocolError) -> bytes:
        """What Redis writes before closing on ``error``:
        ``b"-ERR Protocol error: ...\\r\\n"``; ``b""`` for an error Redis
        answers by closing silently (an overfull query buffer)."""
        text = str(error)
        if not text.startswith(_PROTOCOL_ERROR_PREFIX):
            return b""
        return b"-ERR " + _one_line(text).encode("latin-1", "replace") + CRLF


# -- rendering ------------------------------------------------------------


def _one_line(text: str) -> str:
    """``text`` with CR and LF replaced by spaces, as Redis does for errors."""
    if "\r" in text or "\n" in text:
        return text.replace("\r", " ").replace("\n", " ")
    return text


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def format_double(x: float) -> bytes:
    """``x`` as Redis 7.2+ writes a double (``d2string``): ``nan``, ``inf``,
    ``-inf``, ``0`` / ``-0``; an integral value within 2**62 as an integer;
    otherwise the shortest digits that read back as ``x``, in plain notation
    when the decimal exponent is small, else ``d.ddde+XX``."""
    if x != x:
        return b"nan"
    if x == math.inf:
        return b"inf"
    if x == -math.inf:
        return b"-inf"
    if x == 0.0:
        return b"-0" if math.copysign(1.0, x) < 0 else b"0"
    if -4611686018427387903.0 <= x <= 4611686018427387903.0 and x == int(x):
        return b"%d" % int(x)
    # Shortest round-trip digits and exponent K (x = digits * 10**K) from repr.
    r = repr(abs(x))
    mant, _, exp = r.partition("e")
    whole, _, frac = mant.partition(".")
    digits = (whole + frac).lstrip("0")
    k = (int(exp) if exp else 0) - len(frac)
    stripped = digits.rstrip("0")
    k += len(digits) - len(stripped)
    digits = stripped
    nd = len(digits)
    sign = "-" if x < 0 else ""
    e10 = abs(k + nd - 1)
    if k >= 0 and e10 < nd + 7:
        return (sign + digits + "0" * k).encode()
    if k < 0 and (k > -7 or e10 < 4):
        offset = nd + k
        if offset <= 0:
            return (sign + "0." + "0" * -offset + digits).encode()
        return (sign + digits[:offset] + "." + digits[offset:]).encode()
    m = digits[0] + ("." + digits[1:] if nd > 1 else "")
    return f"{sign}{m}e{'-' if k + nd - 1 < 0 else '+'}{e10}".encode()


def render(reply: Reply, version: int) -> bytes:
    """``reply`` as RESP ``version`` (2 or 3) bytes, per the table in
    :mod:`synod.kv.replies`. SimpleString / SimpleError texts have CR and LF
    replaced by spaces; texts are written as UTF-8 (surrogate escapes give
    back the original bytes).

    Raises:
        LocalProtocolError: ``reply`` (or an item in it) is not a Reply, or
            ``version`` is not 2 or 3.
    """
    if reply is OK:
        return b"+OK\r\n"
    t = type(reply)
    if t is BulkString:
        d = reply.data
        if d is not None:
            return b"$%d\r\n%s\r\n" % (len(d), d)
    elif t is Integer:
        return b":%d\r\n" % reply.value
    if version != 2 and version != 3:
        raise LocalProtocolError(f"RESP version must be 2 or 3, not {version!r}")
    out: list[bytes] = []
    _render_into(reply, version == 3, out)
    return b"".join(out)


def _render_into(reply: Reply, resp3: bool, out: list[bytes]) -> None:  # noqa: C901
    t = type(reply)
    if t is BulkString:
        d = reply.data
        if d is None:
            out.append(b"_\r\n" if resp3 else b"$-1\r\n")
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(d), d))
    elif t is SimpleString:
        out.append(b"+" + _utf8(_one_line(reply.text)) + CRLF)
    elif t is SimpleError:
        out.append(b"-" + _utf8(_one_line(reply.text)) + CRLF)
    elif t is Integer:
        out.append(b":%d\r\n" % reply.value)
    elif t is Array or t is Set:
        items = reply.items
        if items is None:
            out.append(b"_\r\n" if resp3 else b"*-1\r\n")
            return
        out.append((b"~%d\r\n" if resp3 and t is Set else b"*%d\r\n") % len(items))
        for item in items:
            _render_into(item, resp3, out)
    elif t is Map:
        pairs = reply.pairs
        out.append((b"%%%d\r\n" if resp3 else b"*%d\r\n") % (len(pairs) if resp3 else 2 * len(pairs)))
        for key, value in pairs:
            _render_into(key, resp3, out)
            _render_into(value, resp3, out)
    elif t is Double:
        text = format_double(reply.value)
        out.append(b",%s\r\n" % text if resp3 else b"$%d\r\n%s\r\n" % (len(text), text))
    elif t is Boolean:
        if resp3:
            out.append(b"#t\r\n" if reply.value else b"#f\r\n")
        else:
            out.append(b":1\r\n" if reply.value else b":0\r\n")
    elif t is VerbatimString:
        text = _utf8(reply.text)
        if resp3:
            fmt = _utf8(reply.format)
            if len(fmt) != 3 or b":" in fmt:
                raise LocalProtocolError(f"verbatim string format must be 3 bytes, got {reply.format!r}")
            out.append(b"=%d\r\n%s:%s\r\n" % (len(text) + 4, fmt, text))
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(text), text))
    else:
        raise LocalProtocolError(f"cannot render {t.__name__}: not a synod.kv.replies Reply")
