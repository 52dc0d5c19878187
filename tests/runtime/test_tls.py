"""TLS between nodes and clients (issue 8 part 3, the option for runs that
span hosts): a cluster CA and node certificates in the run dir; a TLS
cluster works, a plaintext client is refused, and a client that trusts
another cluster's CA will not talk to it."""

from __future__ import annotations

import socket
import ssl
from dataclasses import replace
from pathlib import Path

import pytest

from synod.runtime import LocalCluster, Status, StatusRequest, call, local_spec, write_config
from synod.runtime.auth import Credentials
from synod.runtime.testing import FACTORY, Echo, EchoReply, GetStats, Stats, wait_until

PING_MS = 40


def _pings(cl: LocalCluster, nid: str, src: str) -> int:
    reply = cl.call(nid, GetStats(), 5.0)
    assert type(reply) is Stats, reply
    return reply.pings_from.get(src, 0)


def test_a_tls_cluster_works_and_refuses_plaintext(tmp_path: Path) -> None:
    config, path = write_config(local_spec(2, FACTORY, tmp_path / "a", params={"ping_interval_ms": PING_MS},
                                           tls=True))
    tls_dir = tmp_path / "a" / "tls"
    for name in ("ca.key", "n1.key", "n2.key"):
        assert (tls_dir / name).stat().st_mode & 0o777 == 0o600
    assert (tls_dir / "ca.pem").exists()
    with LocalCluster(path) as cl:
        assert cl.credentials is not None and cl.credentials.tls
        cl.start()
        # Peers talk over TLS links; the supervisor's calls are TLS clients.
        wait_until(lambda: _pings(cl, "n1", "n2") > 3 and _pings(cl, "n2", "n1") > 3, 10, "pings over TLS")
        assert cl.call("n1", Echo(text="secret"), 5.0) == EchoReply(node_id="n1", text="secret")
        status = cl.call("n2", StatusRequest(), 5.0)
        assert type(status) is Status and status.peers_connected == ("n1",)
        # A client with the key but no TLS is refused: the node speaks only TLS.
        plaintext = replace(cl.credentials, ca_file=None)
        with pytest.raises(ConnectionError):
            call(cl.addr("n1"), Echo(text="in the clear"), 3.0, credentials=plaintext)
        # Raw bytes in the clear: the connection is closed without an answer.
        with socket.create_connection(cl.addr("n1"), timeout=3.0) as sock:
            sock.sendall(b"\0\0\0\x05hello")
            sock.settimeout(5.0)
            assert sock.recv(4096) == b""
        # Trusting another cluster's CA: the node's certificate does not verify.
        _, other_path = write_config(local_spec(1, FACTORY, tmp_path / "b", tls=True))
        stranger = Credentials(key=cl.credentials.key, ca_file=tmp_path / "b" / "tls" / "ca.pem")
        with pytest.raises(ssl.SSLCertVerificationError):
            call(cl.addr("n1"), Echo(text="who are you?"), 3.0, credentials=stranger)
        assert cl.call("n1", Echo(text="still"), 5.0) == EchoReply(node_id="n1", text="still")
    assert config.tls
