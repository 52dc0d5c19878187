"""Errors shared by every synod layer (STYLE.md, "Messages and errors").

Expected outcomes (not the leader, a timeout, a missing key) are return values
or reply messages, never exceptions. Exceptions are for misuse and for bad
input from outside.
"""

__all__ = ["SynodError", "LocalProtocolError", "RemoteProtocolError", "ConfigError"]


class SynodError(Exception):
    """Base class of every error synod raises on purpose."""


class LocalProtocolError(SynodError):
    """The caller misused an API (a programming error on this side)."""


class RemoteProtocolError(SynodError):
    """A peer or client sent something malformed: bad bytes, an unknown type
    tag, a field of the wrong type, or a frame over the size limit. The runtime
    closes that connection and the node runs on."""


class ConfigError(SynodError):
    """A configuration or command-line value is invalid; the message says which
    and why."""
