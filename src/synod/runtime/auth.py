"""Who may speak on a node's port: the cluster key and its handshake (issue 8).

Theory of operation. A cluster created by the supervisor has a *cluster key*:
32 random bytes (``secrets``), hex in ``run_dir/cluster.key``, file mode 0600,
named by the config's ``key_file``. Every connection to a node's port, from a
peer node or from a client (the CLI, :mod:`synod.runtime.client`, the
supervisor's status and fault calls), proves knowledge of the key before any
envelope is accepted, with a mutual HMAC-SHA256 challenge-response
(RFC 2104; the shape of SCRAM's proofs, RFC 5802, without passwords)::

    connector -> node   Hello(role, id, client_nonce, key_id[, listen_addr])
    node -> connector   Challenge(server_id, server_nonce, key_id, server_proof)
    connector -> node   Proof(client_proof)

    T            = msgpack([version, role, id, client_nonce, server_id, server_nonce, key_id, listen_addr])
    server_proof = HMAC-SHA256(key, "synod-auth server\\0" || T)
    client_proof = HMAC-SHA256(key, "synod-auth client\\0" || T)

Both nonces are fresh 32-byte random strings, so neither proof can be
replayed; the labels keep one side's proof from serving as the other's. The
node proves itself first, so a client learns it reached its own cluster
before it sends anything. ``key_id`` (a hash of the key, not the key) lets
both ends say "another cluster" rather than "forged" when keys differ. The
authenticated ``id`` is bound to the connection: every envelope on it must
carry that ``src``. A node that refuses a handshake sends ``Refused(reason)``
and closes; the refusal is one WARNING line in its log.

``listen_addr`` (``[host, port]``, or absent: None) is where a connector of
role ``node`` accepts connections itself. It is part of T, so a node that
checked the proof knows the address comes from a holder of the key as well:
the transport's address book (:mod:`synod.runtime.transport`) learns a node
that is not in its config from it. A client announces no address.

What this does not do: it authenticates the start of a connection, not each
frame, and hides nothing. Between hosts, turn on TLS (``tls: true`` in the
config; :mod:`synod.runtime.tls` makes a cluster CA and node certificates):
the handshake then runs inside TLS, whose server certificate the connector
checks against the cluster CA.

States (both machines): ``start -> wait_challenge|wait_hello -> wait_proof ->
done``, or ``failed`` from anywhere; any input out of turn fails.

The machines here are sans-IO (h11's shape): they take and return payloads;
the transport, the blocking client and the asyncio client frame them
(:func:`synod.runtime.framing.frame`) and move the bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from synod.core.errors import ConfigError, RemoteProtocolError
from synod.runtime.constants import CLUSTER_KEY_BYTES, NODE_ID_BYTES_MAX

__all__ = [
    "AuthError",
    "AuthenticationFailed",
    "ServerHandshake",
    "ClientHandshake",
    "Credentials",
    "refused_payload",
    "refusal_reason",
    "create_key_file",
    "load_key_file",
    "key_id",
    "is_loopback",
    "KEY_FILE_NAME",
    "TLS_DIR_NAME",
    "ROLE_NODE",
    "ROLE_CLIENT",
]

KEY_FILE_NAME = "cluster.key"
TLS_DIR_NAME = "tls"
ROLE_NODE = "node"
ROLE_CLIENT = "client"
_ROLES = (ROLE_NODE, ROLE_CLIENT)
_VERSION = 1
_HELLO = "synod-auth/1 hello"
_CHALLENGE = "synod-auth/1 challenge"
_PROOF = "synod-auth/1 proof"
_REFUSED = "synod-auth/1 refused"
_NONCE_BYTES = 32
_MAC_BYTES = 32
_KEY_ID_CHARS = 16
_KEY_BYTES_MIN = 16
_KEY_BYTES_MAX = 1024
_REASON_CHARS_MAX = 200
_HOST_BYTES_MAX = 255  # a DNS name's limit (RFC 1035); IP literals are shorter


class AuthError(RemoteProtocolError):
    """The other end failed the handshake: it sent something out of turn or
    malformed, proved the wrong key, or refused us (``reason`` says which, in
    words fit for the other end and for a log line)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AuthenticationFailed(ConnectionError):
    """Raised to a client (an ``OSError``, like the other connection
    failures): the node refused the connection (no key or the wrong one), or
    it could not prove this cluster's key, or it is not the node expected."""


def key_id(key: bytes) -> str:
    """A short public name of ``key`` (a hash; reveals nothing of the key)."""
    return hashlib.sha256(b"synod-key-id\0" + key).hexdigest()[:_KEY_ID_CHARS]


def _transcript(role: str, peer_id: str, client_nonce: bytes, server_id: str, server_nonce: bytes,
                kid: str, listen_addr: tuple[str, int] | None) -> bytes:
    addr = None if listen_addr is None else list(listen_addr)
    return msgspec.msgpack.encode([_VERSION, role, peer_id, client_nonce, server_id, server_nonce, kid, addr])


def _mac(key: bytes, label: bytes, transcript: bytes) -> bytes:
    return hmac.new(key, b"synod-auth " + label + b"\0" + transcript, hashlib.sha256).digest()


def _unpack(payload: bytes, kind: str, *lengths: int) -> list[Any]:
    try:
        obj = msgspec.msgpack.decode(payload)
    except msgspec.DecodeError:
        raise AuthError("a handshake message is not msgpack (this end requires the cluster key)") from None
    if type(obj) is list and obj and obj[0] == _REFUSED and len(obj) == 2 and type(obj[1]) is str:
        raise AuthError(f"refused: {obj[1][:_REASON_CHARS_MAX]}")
    if type(obj) is not list or len(obj) not in lengths or obj[0] != kind:
        if kind == _HELLO:
            raise AuthError("this node requires the cluster key (expected a handshake hello)")
        raise AuthError(f"expected a handshake {kind.split()[-1]} (does the other end run with this cluster's key?)")
    return obj


def _check_id(value: Any, what: str) -> str:
    if type(value) is not str or not value or len(value.encode()) > NODE_ID_BYTES_MAX:
        raise AuthError(f"handshake {what} must be a non-empty str of <= {NODE_ID_BYTES_MAX} bytes")
    return value


def _check_addr(value: Any) -> tuple[str, int]:
    if (type(value) is not list or len(value) != 2 or type(value[0]) is not str or type(value[1]) is not int
            or not value[0] or len(value[0].encode()) > _HOST_BYTES_MAX or not 1 <= value[1] <= 65535):
        raise AuthError(f"handshake listen address must be [host of 1..{_HOST_BYTES_MAX} bytes, port 1..65535]")
    return (value[0], value[1])


def _check_bytes(value: Any, n: int, what: str) -> bytes:
    if type(value) is not bytes or len(value) != n:
        raise AuthError(f"handshake {what} must be {n} bytes")
    return value


def refused_payload(reason: str) -> bytes:
    """The payload a node sends before closing a connection it refuses."""
    return msgspec.msgpack.encode([_REFUSED, reason[:_REASON_CHARS_MAX]])


def refusal_reason(payload: bytes) -> str | None:
    """The reason in a ``Refused`` payload, or None if ``payload`` is not one
    (lets a client without a key explain why a keyed node closed on it)."""
    try:
        obj = msgspec.msgpack.decode(payload)
    except msgspec.DecodeError:
        return None
    if type(obj) is list and len(obj) == 2 and obj[0] == _REFUSED and type(obj[1]) is str:
        return obj[1]
    return None


class ServerHandshake:
    """The node's side: answers a Hello with a Challenge, checks the Proof.

    Args:
        key: the cluster key.
        server_id: this node's id (bound into both proofs).
        nonce: the server nonce (tests); default 32 fresh random bytes.

    After :attr:`done`: :attr:`peer_role` (``"node"`` or ``"client"``) and
    :attr:`peer_id` are the authenticated identity of the other end, and
    :attr:`peer_addr` the ``(host, port)`` a node announced (None if it did
    not; a client never does).
    """

    __slots__ = ("_key", "_key_id", "server_id", "_nonce", "_state", "peer_role", "peer_id", "peer_addr",
                 "_transcript")

    def __init__(self, key: bytes, server_id: str, *, nonce: bytes | None = None) -> None:
        self._key = key
        self._key_id = key_id(key)
        self.server_id = server_id
        self._nonce = nonce if nonce is not None else secrets.token_bytes(_NONCE_BYTES)
        self._state = "wait_hello"
        self.peer_role: str | None = None
        self.peer_id: str | None = None
        self.peer_addr: tuple[str, int] | None = None
        self._transcript = b""

    @property
    def done(self) -> bool:
        return self._state == "done"

    def receive(self, payload: bytes) -> bytes | None:
        """Take the next handshake payload from the connector; returns the
        payload to send back (the Challenge) or None (the Proof checked out:
        :attr:`done`).

        Raises:
            AuthError: malformed or out of turn, another cluster's key, or a
                wrong proof. The machine is then failed; the caller sends
                :func:`refused_payload` of the reason and closes.
        """
        state, self._state = self._state, "failed"  # until this step succeeds
        if state == "wait_hello":
            _, role, peer_id, client_nonce, kid, *rest = _unpack(payload, _HELLO, 5, 6)
            if role not in _ROLES:
                raise AuthError(f"handshake role must be one of {_ROLES}")
            _check_id(peer_id, "id")
            _check_bytes(client_nonce, _NONCE_BYTES, "nonce")
            addr = None if not rest or rest[0] is None else _check_addr(rest[0])
            if addr is not None and role != ROLE_NODE:
                raise AuthError("only a node announces a listen address in its handshake")
            if kid != self._key_id:
                raise AuthError(f"wrong cluster key: the connector's key id is {str(kid)[:_KEY_ID_CHARS]!r}, "
                                f"this cluster's is {self._key_id!r} (another cluster's run dir?)")
            self.peer_role, self.peer_id, self.peer_addr = role, peer_id, addr
            self._transcript = _transcript(role, peer_id, client_nonce, self.server_id, self._nonce, self._key_id,
                                           addr)
            self._state = "wait_proof"
            return msgspec.msgpack.encode([_CHALLENGE, self.server_id, self._nonce, self._key_id,
                                  _mac(self._key, b"server", self._transcript)])
        if state == "wait_proof":
            _, proof = _unpack(payload, _PROOF, 2)
            _check_bytes(proof, _MAC_BYTES, "proof")
            if not hmac.compare_digest(proof, _mac(self._key, b"client", self._transcript)):
                raise AuthError("wrong proof of the cluster key")
            self._state = "done"
            return None
        raise AuthError(f"handshake message after the handshake {state}")


class ClientHandshake:
    """The connector's side (a peer link or a client).

    Args:
        key: the cluster key.
        role: ``"node"`` for a peer link, ``"client"`` otherwise.
        client_id: the id this connection will send envelopes under.
        expect_server_id: if given, the node must prove to be this one.
        listen_addr: role ``"node"`` only: the ``(host, port)`` this node
            listens on, announced in the Hello and bound into both proofs.
        nonce: the client nonce (tests); default 32 fresh random bytes.
    """

    __slots__ = ("_key", "_key_id", "role", "client_id", "expect_server_id", "listen_addr", "_nonce", "_state",
                 "server_id")

    def __init__(self, key: bytes, role: str, client_id: str, *, expect_server_id: str | None = None,
                 listen_addr: tuple[str, int] | None = None, nonce: bytes | None = None) -> None:
        assert role in _ROLES, role
        assert listen_addr is None or role == ROLE_NODE, "only a node announces a listen address"
        if listen_addr is not None:
            _check_addr(list(listen_addr))  # the server checks it the same way
        self._key = key
        self._key_id = key_id(key)
        self.role = role
        self.client_id = client_id
        self.expect_server_id = expect_server_id
        self.listen_addr = None if listen_addr is None else (listen_addr[0], listen_addr[1])
        self._nonce = nonce if nonce is not None else secrets.token_bytes(_NONCE_BYTES)
        self._state = "start"
        self.server_id: str | None = None

    @property
    def done(self) -> bool:
        return self._state == "done"

    def hello(self) -> bytes:
        """The first payload to send."""
        assert self._state == "start", self._state
        self._state = "wait_challenge"
        hello = [_HELLO, self.role, self.client_id, self._nonce, self._key_id]
        if self.listen_addr is not None:
            hello.append(list(self.listen_addr))
        return msgspec.msgpack.encode(hello)

    def receive(self, payload: bytes) -> bytes:
        """Take the node's Challenge; returns the Proof to send (then :attr:`done`).

        Raises:
            AuthError: the node refused us, belongs to another cluster, is not
                ``expect_server_id``, or proved the wrong key.
        """
        state, self._state = self._state, "failed"
        if state != "wait_challenge":
            raise AuthError(f"handshake message in state {state}")
        _, server_id, server_nonce, kid, proof = _unpack(payload, _CHALLENGE, 5)
        _check_id(server_id, "server id")
        _check_bytes(server_nonce, _NONCE_BYTES, "nonce")
        _check_bytes(proof, _MAC_BYTES, "proof")
        if kid != self._key_id:
            raise AuthError(f"the node belongs to another cluster (key id {str(kid)[:_KEY_ID_CHARS]!r}, "
                            f"ours is {self._key_id!r})")
        if self.expect_server_id is not None and server_id != self.expect_server_id:
            raise AuthError(f"expected node {self.expect_server_id!r}, reached {server_id!r}")
        transcript = _transcript(self.role, self.client_id, self._nonce, server_id, server_nonce, self._key_id,
                                 self.listen_addr)
        if not hmac.compare_digest(proof, _mac(self._key, b"server", transcript)):
            raise AuthError("the node's proof of the cluster key is wrong")
        self.server_id = server_id
        self._state = "done"
        return msgspec.msgpack.encode([_PROOF, _mac(self._key, b"client", transcript)])


# -- key files -------------------------------------------------------------------

def create_key_file(path: str | os.PathLike[str]) -> bytes:
    """Create a cluster key at ``path`` (mode 0600, hex, fsynced) unless one
    is there; returns the key either way.

    Raises:
        ConfigError: the existing file is not a valid key file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(CLUSTER_KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_key_file(path)
    try:
        os.write(fd, key.hex().encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def load_key_file(path: str | os.PathLike[str]) -> bytes:
    """Read a cluster key file (hex; readable by its owner only).

    Raises:
        ConfigError: missing, readable by group or others, or not a key.
    """
    path = Path(path)
    try:
        st = path.stat()
        text = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"cluster key file {path} does not exist (`synod cluster up` creates it)") from None
    except OSError as e:
        raise ConfigError(f"cannot read cluster key file {path}: {e}") from None
    if os.name == "posix" and st.st_mode & 0o077:
        raise ConfigError(f"cluster key file {path} is readable by others (mode {st.st_mode & 0o777:04o}); "
                          f"chmod 600 it")
    try:
        key = bytes.fromhex(text.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise ConfigError(f"cluster key file {path} is not hex") from None
    if not _KEY_BYTES_MIN <= len(key) <= _KEY_BYTES_MAX:
        raise ConfigError(f"cluster key file {path}: a key is {_KEY_BYTES_MIN}..{_KEY_BYTES_MAX} bytes, "
                          f"got {len(key)}")
    return key


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP literal or ``localhost``) is a loopback address;
    any other name, and 0.0.0.0 / ::, is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- what a process holds ---------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """What a process needs to talk to a keyed cluster.

    Get one with :meth:`from_config` (a node passes its own id to get its TLS
    certificate as well). Pass it to :class:`synod.runtime.client.Client`,
    :func:`~synod.runtime.client.call` and
    :func:`~synod.runtime.client.call_async` (``credentials=``); a
    :class:`~synod.runtime.cluster.LocalCluster` does so for its own calls.

    Attributes:
        key: the cluster key.
        ca_file: with TLS: the cluster CA's certificate (PEM); connections are
            TLS and the node's certificate must be signed by this CA.
        cert_file, cert_key_file: with TLS, for a node: its certificate and
            private key (PEM).
    """

    key: bytes
    ca_file: Path | None = None
    cert_file: Path | None = None
    cert_key_file: Path | None = None

    @property
    def key_id(self) -> str:
        return key_id(self.key)

    @property
    def tls(self) -> bool:
        return self.ca_file is not None

    @classmethod
    def from_config(cls, config: Any, node_id: str | None = None) -> Credentials | None:
        """The credentials a :class:`~synod.runtime.config.ClusterConfig`
        names (None if it has no ``key_file``: no authentication).

        Raises:
            ConfigError: the key file or a TLS file is missing or bad.
        """
        if config.key_file is None:
            return None
        key = load_key_file(config.key_file)
        if not config.tls:
            return cls(key=key)
        tls_dir = config.run_dir / TLS_DIR_NAME
        ca = tls_dir / "ca.pem"
        cert = key_file = None
        if node_id is not None:
            cert, key_file = tls_dir / f"{node_id}.pem", tls_dir / f"{node_id}.key"
        for p in (ca, cert, key_file):
            if p is not None and not p.exists():
                raise ConfigError(f"TLS file {p} does not exist (`synod cluster up` creates the cluster's CA "
                                  f"and certificates)")
        return cls(key=key, ca_file=ca, cert_file=cert, cert_key_file=key_file)

    def client_ssl(self) -> ssl.SSLContext | None:
        """The TLS context for connecting (None without TLS): verifies the
        node's certificate against the cluster CA. Host names are not checked:
        the CA signs only this cluster's nodes, and nodes may be reached by
        any of their addresses."""
        if self.ca_file is None:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            ctx.load_verify_locations(cafile=str(self.ca_file))
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(f"cannot load the cluster CA {self.ca_file}: {e}") from None
        return ctx

    def server_ssl(self) -> ssl.SSLContext | None:
        """The TLS context for a node's listener (None without TLS).

        Raises:
            ConfigError: TLS is on but this holds no node certificate.
        """
        if self.ca_file is None:
            return None
        if self.cert_file is None or self.cert_key_file is None:
            raise ConfigError("TLS is on but no node certificate was loaded (Credentials.from_config(config, id))")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(str(self.cert_file), str(self.cert_key_file))
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(f"cannot load the node certificate {self.cert_file}: {e}") from None
        return ctx
