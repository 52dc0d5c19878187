"""The meta commands' flags, read as memcached 1.6.18's
``_meta_flag_preparse`` (``proto_text.c``) reads them.

Each flag is one token whose first byte names it; some carry a value
(``N30``, ``Oabc``, ``C12``). A flag byte seen twice, a byte >= 127 or an
unknown flag stop the reading at once (``duplicate flag`` / ``invalid
flag``); a bad value is remembered and the reading goes on, so the last bad
value's words are the error (``bad token in command line format``,
``incorrect length for M token``, ``invalid numeric delta value`` ...). The
``b`` flag decodes the key in place (base64). Flags 1.6.18 does not know
(``E``, ``x``, added in later releases) are invalid, as there.
"""

from __future__ import annotations

from synod.memcache._text import b64_decode_key, safe_strtol, safe_strtoul, safe_strtoull
from synod.memcache.messages import MetaFlags

__all__ = ["preparse", "E_BAD_FORMAT"]

E_BAD_FORMAT = "CLIENT_ERROR bad command line format"
_E_BAD_TOKEN = "CLIENT_ERROR bad token in command line format"

# Flags that take no value and set nothing here (their effect is in the reply).
_PLAIN = frozenset(b"OPLkstcflh")


def preparse(key: bytes, tokens: list[bytes]) -> tuple[bytes, MetaFlags | None, str]:
    """Read the flag ``tokens`` of a meta command on ``key``.

    Returns (key, flags, error): the key (base64-decoded under ``b``; empty
    when that failed), the flags, and "" -- or (key, None, the error line)
    when a flag is bad.
    """
    seen: set[int] = set()
    error = ""
    v: dict[str, object] = {}
    for tok in tokens:
        o = tok[0]
        if o >= 127 or o in seen:
            return key, None, "CLIENT_ERROR duplicate flag"
        seen.add(o)
        arg = tok[1:]
        if o in _PLAIN:
            continue
        if o == 98:  # b
            decoded = b64_decode_key(key)
            if decoded is None:
                error = "CLIENT_ERROR error decoding key"
                key = b""
            else:
                key = decoded
            v["key_binary"] = True
        elif o in (78, 84, 82):  # N T R: an exptime
            n = safe_strtol(arg)
            if n is None:
                error = _E_BAD_TOKEN
            else:
                v[{78: "vivify_ttl", 84: "ttl", 82: "recache_ttl"}[o]] = n
        elif o == 118:  # v
            v["value"] = True
        elif o == 117:  # u
            v["no_update"] = True
        elif o == 113:  # q
            v["quiet"] = True
        elif o == 70:  # F: the error keeps the words it had
            f = safe_strtoul(arg)
            if f is None:
                error = error or E_BAD_FORMAT
            else:
                v["client_flags"] = f
        elif o == 67:  # C
            c = safe_strtoull(arg)
            if c is None:
                error = _E_BAD_TOKEN
            else:
                v["compare_cas"] = c
        elif o == 77:  # M
            if len(tok) != 2:
                error = "CLIENT_ERROR incorrect length for M token"
            else:
                v["mode"] = arg
        elif o in (74, 68):  # J D
            n = safe_strtoull(arg)
            if n is None:
                error = ("CLIENT_ERROR invalid numeric initial value" if o == 74
                         else "CLIENT_ERROR invalid numeric delta value")
            else:
                v["initial" if o == 74 else "delta"] = n
        elif o == 73:  # I
            v["invalidate"] = True
        else:
            return key, None, "CLIENT_ERROR invalid flag"
    if error:
        return key, None, error
    return key, MetaFlags(tokens=tuple(tokens), **v), ""  # type: ignore[arg-type]
