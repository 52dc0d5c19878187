"""The cluster-key handshake as sans-IO machines, key files, and config
rules for exposure (issue 8 part 3; :mod:`synod.runtime.auth`)."""

from __future__ import annotations

import os
from pathlib import Path

import msgpack
import pytest

from synod.core.errors import ConfigError
from synod.runtime.auth import (
    ROLE_CLIENT,
    ROLE_NODE,
    AuthError,
    ClientHandshake,
    Credentials,
    ServerHandshake,
    create_key_file,
    is_loopback,
    key_id,
    load_key_file,
    refusal_reason,
    refused_payload,
)
from synod.runtime.config import local_spec, parse_config, write_config
from synod.runtime.constants import HANDSHAKE_FRAME_BYTES_MAX, NODE_ID_BYTES_MAX
from synod.runtime.testing import FACTORY

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


def _run(client: ClientHandshake, server: ServerHandshake) -> None:
    proof = client.receive(server.receive(client.hello()))
    assert server.receive(proof) is None


def test_both_ends_authenticate_and_learn_who_is_there() -> None:
    client = ClientHandshake(KEY, ROLE_NODE, "n1", expect_server_id="n2")
    server = ServerHandshake(KEY, "n2")
    _run(client, server)
    assert client.done and server.done
    assert client.server_id == "n2"
    assert (server.peer_role, server.peer_id) == (ROLE_NODE, "n1")


def test_handshake_messages_fit_the_pre_authentication_frame_bound() -> None:
    long_id = "x" * NODE_ID_BYTES_MAX
    client = ClientHandshake(KEY, ROLE_CLIENT, long_id)
    server = ServerHandshake(KEY, long_id)
    hello = client.hello()
    challenge = server.receive(hello)
    assert challenge is not None
    proof = client.receive(challenge)
    assert max(len(hello), len(challenge), len(proof)) <= HANDSHAKE_FRAME_BYTES_MAX


def test_a_node_announces_its_listen_address_bound_into_the_proofs() -> None:
    """The address a node announces (for the peers' address books) is part
    of the transcript: changed on the way, the node's proof does not check
    out for the connector, which then sends no proof of its own."""
    client = ClientHandshake(KEY, ROLE_NODE, "n4", listen_addr=("127.0.0.1", 7004))
    server = ServerHandshake(KEY, "n1")
    _run(client, server)
    assert (server.peer_role, server.peer_id, server.peer_addr) == (ROLE_NODE, "n4", ("127.0.0.1", 7004))
    plain = ServerHandshake(KEY, "n1")
    _run(ClientHandshake(KEY, ROLE_NODE, "n2"), plain)
    assert plain.peer_addr is None
    longest = ClientHandshake(KEY, ROLE_NODE, "x" * NODE_ID_BYTES_MAX, listen_addr=("h" * 255, 65535))
    assert len(longest.hello()) <= HANDSHAKE_FRAME_BYTES_MAX

    client = ClientHandshake(KEY, ROLE_NODE, "n4", listen_addr=("127.0.0.1", 7004))
    hello = msgpack.unpackb(client.hello())
    hello[5] = ["127.0.0.1", 6666]  # a man in the middle redirects n4's traffic
    server = ServerHandshake(KEY, "n1")
    challenge = server.receive(msgpack.packb(hello))
    with pytest.raises(AuthError, match="proof of the cluster key is wrong"):
        client.receive(challenge)  # n4 sends no proof: the server never completes with that address
    assert not server.done


@pytest.mark.parametrize(("addr", "needle"), [
    (["127.0.0.1", 0], "listen address must be"),
    (["", 7004], "listen address must be"),
    (["h" * 256, 7004], "listen address must be"),
    ("127.0.0.1:7004", "listen address must be"),
])
def test_a_malformed_listen_address_fails_the_handshake(addr: object, needle: str) -> None:
    hello = msgpack.unpackb(ClientHandshake(KEY, ROLE_NODE, "n4").hello())
    with pytest.raises(AuthError, match=needle):
        ServerHandshake(KEY, "n1").receive(msgpack.packb([*hello, addr]))


def test_only_a_node_announces_an_address() -> None:
    hello = msgpack.unpackb(ClientHandshake(KEY, ROLE_CLIENT, "c").hello())
    with pytest.raises(AuthError, match="only a node announces"):
        ServerHandshake(KEY, "n1").receive(msgpack.packb([*hello, ["127.0.0.1", 7004]]))


def test_another_clusters_key_is_refused_by_name_on_both_sides() -> None:
    server = ServerHandshake(KEY, "n2")
    with pytest.raises(AuthError, match="wrong cluster key"):
        server.receive(ClientHandshake(OTHER, ROLE_NODE, "n1").hello())
    # A challenge under another cluster's key id: the client says so.
    client = ClientHandshake(KEY, ROLE_CLIENT, "c")
    client.hello()
    foreign = msgpack.packb(["synod-auth/1 challenge", "n9", b"\1" * 32, key_id(OTHER), b"\2" * 32])
    with pytest.raises(AuthError, match="another cluster"):
        client.receive(foreign)


def test_a_forger_who_copies_the_key_id_cannot_produce_a_proof() -> None:
    """The key id is public; a proof needs the key."""
    server = ServerHandshake(KEY, "n2")
    hello = msgpack.unpackb(ClientHandshake(KEY, ROLE_NODE, "n3").hello())
    server.receive(msgpack.packb(hello))  # a hello needs no secret
    with pytest.raises(AuthError, match="wrong proof"):
        server.receive(msgpack.packb(["synod-auth/1 proof", b"\0" * 32]))
    assert not server.done


def test_a_server_that_does_not_hold_the_key_cannot_fool_the_client() -> None:
    client = ClientHandshake(KEY, ROLE_CLIENT, "c")
    client.hello()
    forged = msgpack.packb(["synod-auth/1 challenge", "n2", b"\1" * 32, key_id(KEY), b"\2" * 32])
    with pytest.raises(AuthError, match="proof of the cluster key is wrong"):
        client.receive(forged)


def test_a_replayed_proof_fails_against_a_fresh_server_nonce() -> None:
    client = ClientHandshake(KEY, ROLE_CLIENT, "c", nonce=b"\7" * 32)
    first = ServerHandshake(KEY, "n1", nonce=b"\1" * 32)
    hello = client.hello()
    proof = client.receive(first.receive(hello))
    second = ServerHandshake(KEY, "n1", nonce=b"\2" * 32)
    second.receive(hello)  # the eavesdropper replays the whole exchange
    with pytest.raises(AuthError, match="wrong proof"):
        second.receive(proof)


def test_the_server_proof_cannot_be_reflected_as_a_client_proof() -> None:
    client = ClientHandshake(KEY, ROLE_CLIENT, "c")
    server = ServerHandshake(KEY, "n1")
    challenge = msgpack.unpackb(server.receive(client.hello()))
    with pytest.raises(AuthError, match="wrong proof"):
        server.receive(msgpack.packb(["synod-auth/1 proof", challenge[4]]))


def test_client_checks_it_reached_the_expected_node() -> None:
    client = ClientHandshake(KEY, ROLE_NODE, "n1", expect_server_id="n2")
    with pytest.raises(AuthError, match="expected node 'n2', reached 'n3'"):
        client.receive(ServerHandshake(KEY, "n3").receive(client.hello()))


@pytest.mark.parametrize(("payload", "needle"), [
    (b"\xc1garbage", "not msgpack"),
    (msgpack.packb(["n1", 0, "an envelope, not a hello"]), "requires the cluster key"),
    (msgpack.packb(["synod-auth/1 hello", "root", "n1", b"\0" * 32, key_id(KEY)]), "role must be"),
    (msgpack.packb(["synod-auth/1 hello", ROLE_NODE, "", b"\0" * 32, key_id(KEY)]), "id must be"),
    (msgpack.packb(["synod-auth/1 hello", ROLE_NODE, "n1", b"\0" * 31, key_id(KEY)]), "nonce must be 32 bytes"),
    (msgpack.packb(["synod-auth/1 proof", b"\0" * 32]), "requires the cluster key"),
])
def test_malformed_or_out_of_turn_input_fails_the_server(payload: bytes, needle: str) -> None:
    server = ServerHandshake(KEY, "n1")
    with pytest.raises(AuthError, match=needle):
        server.receive(payload)
    with pytest.raises(AuthError):  # failed for good
        server.receive(ClientHandshake(KEY, ROLE_NODE, "n2").hello())


def test_refusal_reaches_the_client_as_a_reason() -> None:
    payload = refused_payload("not authenticated: wrong cluster key")
    assert refusal_reason(payload) == "not authenticated: wrong cluster key"
    assert refusal_reason(msgpack.packb(["n1", 0, 1])) is None
    client = ClientHandshake(KEY, ROLE_CLIENT, "c")
    client.hello()
    with pytest.raises(AuthError, match="refused: not authenticated"):
        client.receive(payload)


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "run" / "cluster.key"
    key = create_key_file(path)
    assert len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert create_key_file(path) == key  # kept, not replaced
    assert load_key_file(path) == key


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cluster.key"
    create_key_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_key_file(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_key_file(tmp_path / "missing.key")


def _raw(host: str, **top: object) -> dict:
    return {"run_dir": "/tmp/x", "seed": 0, "nodes": {"n1": {"host": host, "port": 7001, "factory": FACTORY}},
            **top}


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_need_no_key(host: str) -> None:
    assert is_loopback(host)
    assert parse_config(_raw(host)).key_file is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.7", "db.example.com"])
def test_listening_beyond_loopback_needs_allow_remote_and_a_key(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ConfigError, match=r"not a loopback address; set \"allow_remote\": true .*--allow-remote"):
        parse_config(_raw(host))
    with pytest.raises(ConfigError, match="allow_remote needs a key_file"):
        parse_config(_raw(host, allow_remote=True))
    config = parse_config(_raw(host, allow_remote=True, key_file="cluster.key"))
    assert config.key_file == Path("/tmp/x/cluster.key")
    assert config.to_json()["key_file"] == "cluster.key"  # kept relative to run_dir


def test_tls_needs_a_key() -> None:
    with pytest.raises(ConfigError, match="tls needs a key_file"):
        parse_config(_raw("127.0.0.1", tls=True))


def test_write_config_creates_the_key_and_credentials_load_it(tmp_path: Path) -> None:
    config, _ = write_config(local_spec(2, FACTORY, tmp_path))
    assert config.key_file == tmp_path / "cluster.key"
    creds = Credentials.from_config(config)
    assert creds is not None
    assert creds.key == load_key_file(tmp_path / "cluster.key")
    assert not creds.tls
    keyless, _ = write_config(local_spec(1, FACTORY, tmp_path / "k", key=False))
    assert Credentials.from_config(keyless) is None
