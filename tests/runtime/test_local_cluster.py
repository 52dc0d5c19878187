"""Real processes over TCP (DESIGN.md section 6): a 3-node cluster of the
runtime's test nodes (:mod:`synod.runtime.testing`) under a LocalCluster,
with crashes, pauses, partitions, drops, delays and hostile peers.

Every wait is a poll with a deadline (``wait_until``) or a call timeout.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from synod.core.codec import encode
from synod.runtime import LocalCluster, NodeSpec, Status, StatusRequest, call, local_spec, write_config
from synod.runtime.auth import AuthenticationFailed, Credentials
from synod.runtime.driver import Driver
from synod.runtime.testing import (
    FACTORY,
    Ack,
    Boom,
    Counter,
    Echo,
    EchoReply,
    Exit,
    GetStats,
    Incr,
    Invalid,
    Relay,
    RelayResult,
    Stats,
    authenticated_socket,
    wait_until,
)

PING_MS = 40
FRAME_MAX = 64 * 1024
IDS = ("n1", "n2", "n3")


@pytest.fixture(scope="module", params=[False, True], ids=["popen", "fork_server"])
def cluster(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    """Every test runs twice: nodes started as ``python -m`` processes, and
    forked by the fork server (:mod:`synod.runtime._zygote`)."""
    run_dir = tmp_path_factory.mktemp("cluster")
    _, path = write_config(local_spec(3, FACTORY, run_dir, params={"ping_interval_ms": PING_MS},
                                      frame_size_bytes_max=FRAME_MAX))
    # only n3 is respawned, as a MapReduce worker would be
    cl = LocalCluster(path, respawn=["n3"], fork_server=request.param)
    try:
        cl.start()
        yield cl
    finally:
        cl.stop()


@pytest.fixture(autouse=True)
def healthy(cluster: LocalCluster) -> Iterator[None]:
    """Each test starts and leaves the cluster whole: no faults, all running."""
    yield
    cluster.clear_faults()
    for nid in IDS:
        cluster.resume(nid)
    cluster.start()


def stats(cl: LocalCluster, nid: str) -> Stats:
    reply = cl.call(nid, GetStats(), 3.0)
    assert type(reply) is Stats, reply
    return reply


def status(cl: LocalCluster, nid: str) -> Status:
    reply = cl.call(nid, StatusRequest(), 3.0)
    assert type(reply) is Status, reply
    return reply


def relay(cl: LocalCluster, src: str, dst: str, timeout_ms: float) -> RelayResult:
    """Ask ``src`` to ctx.call ``dst``; the result comes back as a plain message."""
    with cl.client(src) as c:
        assert c.call(Relay(dst=dst, text=f"{src}->{dst}", timeout_ms=timeout_ms), 3.0) == Ack()
        got = c.recv(timeout_ms / 1000.0 + 3.0, kind=RelayResult)
    assert got is not None, f"no RelayResult from {src}"
    return got[1]


def heard_from(cl: LocalCluster, nid: str, src: str) -> int:
    return stats(cl, nid).pings_from.get(src, 0)


def test_three_processes_exchange_messages(cluster: LocalCluster) -> None:
    pids = {cluster.pid(nid) for nid in IDS}
    assert len(pids) == 3
    assert os.getpid() not in pids

    def everyone_heard_everyone() -> bool:
        return all(heard_from(cluster, nid, other) >= 3 for nid in IDS for other in IDS if other != nid)

    wait_until(everyone_heard_everyone, 10, "pings between all three nodes")
    assert cluster.call("n2", Echo(text="hello"), 3.0) == EchoReply(node_id="n2", text="hello")


def test_ctx_call_across_processes_times_out_while_paused(cluster: LocalCluster) -> None:
    ok = relay(cluster, "n1", "n2", 2000)
    assert ok.reply == EchoReply(node_id="n2", text="n1->n2")
    cluster.pause("n2")
    assert cluster.is_paused("n2")
    assert cluster.is_alive("n2")
    timed_out = relay(cluster, "n1", "n2", 300)
    assert timed_out.reply is None
    assert timed_out.elapsed_ms >= 300
    assert cluster.call("n2", Echo(text="anyone?"), 0.3) is None  # a paused node does not answer
    cluster.resume("n2")
    assert not cluster.is_paused("n2")
    assert relay(cluster, "n1", "n2", 2000).reply == EchoReply(node_id="n2", text="n1->n2")


def test_kill_9_and_restart_recovers_durable_state(cluster: LocalCluster) -> None:
    before = stats(cluster, "n3")
    assert cluster.call("n3", Incr(amount=7), 3.0) == Counter(node_id="n3", value=before.value + 7)
    assert cluster.kill("n3") == -9
    assert not cluster.is_alive("n3")
    assert cluster.wait_exit("n3", 2.0) == -9  # killed by the supervisor: not respawned
    with pytest.raises(ConnectionError):
        cluster.call("n3", Echo(text="down?"), 1.0)
    cluster.restart("n3")
    after = stats(cluster, "n3")
    assert after.value == before.value + 7
    assert after.boots == before.boots + 1


def test_partition_stops_delivery_and_heal_restores_it(cluster: LocalCluster) -> None:
    cluster.partition(["n1"], ["n2", "n3"])
    assert status(cluster, "n2").faults.blocked_in == ("n1",)
    assert status(cluster, "n1").faults.blocked_out == ("n2", "n3")
    base = heard_from(cluster, "n2", "n1")
    dropped_before = status(cluster, "n1").messages_dropped
    assert relay(cluster, "n1", "n2", 300).reply is None  # across the partition
    assert relay(cluster, "n2", "n3", 2000).reply == EchoReply(node_id="n3", text="n2->n3")  # within a side
    assert heard_from(cluster, "n2", "n1") == base  # 300+ ms, ~8 ping periods: nothing got through
    assert status(cluster, "n1").messages_dropped > dropped_before
    cluster.heal()
    wait_until(lambda: heard_from(cluster, "n2", "n1") > base, 5, "pings from n1 after heal")
    assert relay(cluster, "n1", "n2", 2000).reply == EchoReply(node_id="n2", text="n1->n2")


def test_one_way_partition_blocks_one_direction_only(cluster: LocalCluster) -> None:
    cluster.partition_one_way(["n1"], ["n2"])
    base_n2 = heard_from(cluster, "n2", "n1")
    base_n1 = heard_from(cluster, "n1", "n2")
    wait_until(lambda: heard_from(cluster, "n1", "n2") >= base_n1 + 3, 5, "n2 -> n1 still flowing")
    assert heard_from(cluster, "n2", "n1") == base_n2


def test_drop_and_delay_faults(cluster: LocalCluster) -> None:
    cluster.drop(1.0, ["n1"])
    assert relay(cluster, "n1", "n2", 300).reply is None
    cluster.drop(0.0, ["n1"])
    cluster.delay(400, ["n1"])
    delayed = relay(cluster, "n1", "n2", 3000)
    assert delayed.reply == EchoReply(node_id="n2", text="n1->n2")
    assert delayed.elapsed_ms >= 400
    cluster.delay(0, ["n1"])
    assert relay(cluster, "n1", "n2", 3000).elapsed_ms < 400


def _count_lines(cl: LocalCluster, nid: str, needle: str) -> int:
    return sum(needle in line for line in cl.read_log(nid).splitlines())


def _closed_by_peer(sock: socket.socket, timeout_s: float) -> bool:
    sock.settimeout(timeout_s)
    try:
        while True:
            if not sock.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


# case -> (bytes a hostile peer sends, what the log line must say)
BAD_INPUTS = {
    "garbage bytes": ((16).to_bytes(4, "big") + b"\xc1 not msgpack, at all", "malformed frame"),
    "oversize frame": ((FRAME_MAX + 1).to_bytes(4, "big") + b"\x00" * 64, "exceeds frame_size_bytes_max"),
    "invalid envelope": (_frame(msgpack.packb({"hello": "world"})), "envelope [src, corr, msg]"),
    "unknown message tag": (_frame(msgpack.packb(["mallory", 1, ["evil.Tag"]])), "unknown message tag 'evil.Tag'"),
    "src change": (b"".join(_frame(encode([src, 0, Echo(text="x")])) for src in ("mallory", "n2")),
                   "src changed"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_peer_is_cut_off_with_one_log_line_and_node_keeps_serving(cluster: LocalCluster, case: str) -> None:
    """A connection that holds the cluster key (a buggy peer) and then sends
    bad bytes is closed with one line; the node serves everyone else."""
    data, reason = BAD_INPUTS[case]
    needle = "protocol error"
    lines_before = _count_lines(cluster, "n1", needle)
    errors_before = status(cluster, "n1").protocol_errors
    pings_before = {src: heard_from(cluster, "n1", src) for src in ("n2", "n3")}
    with authenticated_socket(cluster.addr("n1"), cluster.credentials, "mallory") as sock:
        sock.sendall(data)
        assert _closed_by_peer(sock, 5.0), "n1 kept the bad connection open"
    wait_until(lambda: _count_lines(cluster, "n1", needle) > lines_before, 5, "the protocol-error log line")
    new_line = [line for line in cluster.read_log("n1").splitlines() if needle in line][-1]
    assert reason in new_line
    assert status(cluster, "n1").protocol_errors == errors_before + 1
    # The node serves clients and peers as before.
    assert cluster.call("n1", Echo(text="still here"), 3.0) == EchoReply(node_id="n1", text="still here")
    wait_until(lambda: all(heard_from(cluster, "n1", src) > n for src, n in pings_before.items()), 5,
               "pings from n2 and n3 after the bad connection")
    assert _count_lines(cluster, "n1", needle) == lines_before + 1  # exactly one line


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_a_process_without_the_key_is_refused_with_one_log_line(cluster: LocalCluster, case: str) -> None:
    """Issue 8 part 3: without the cluster key nothing a process sends is
    read as a message, whatever it is; a well-formed request claiming to be
    peer n2 included."""
    data, _reason = BAD_INPUTS[case]
    needle = "refused connection from"
    lines_before = _count_lines(cluster, "n1", needle)
    before = status(cluster, "n1")
    with socket.create_connection(cluster.addr("n1"), timeout=3.0) as sock:
        sock.sendall(data)
        assert _closed_by_peer(sock, 5.0), "n1 kept the unauthenticated connection open"
    wait_until(lambda: _count_lines(cluster, "n1", needle) > lines_before, 5, "the refusal log line")
    after = status(cluster, "n1")
    assert after.auth_failures == before.auth_failures + 1
    assert after.protocol_errors == before.protocol_errors  # nothing was parsed as an envelope
    assert "not authenticated" in [line for line in cluster.read_log("n1").splitlines() if needle in line][-1]
    assert _count_lines(cluster, "n1", needle) == lines_before + 1


def test_forged_peer_message_and_keyless_client_are_refused(cluster: LocalCluster) -> None:
    """Issue 8 part 3: the repro's forged peer (src="n3", a well-formed
    message) and a client built without credentials both get a refusal that
    says why, and nothing they sent reaches the node."""
    value_before = stats(cluster, "n1").value
    refused_before = status(cluster, "n1").auth_failures
    with socket.create_connection(cluster.addr("n1"), timeout=3.0) as sock:
        sock.sendall(_frame(encode(["n3", 0, Incr(amount=1000)])))
        assert _closed_by_peer(sock, 5.0)
    with pytest.raises(AuthenticationFailed, match="requires the cluster key"):
        call(cluster.addr("n1"), Incr(amount=1000), 3.0)
    assert status(cluster, "n1").auth_failures == refused_before + 2
    assert stats(cluster, "n1").value == value_before


def test_a_node_of_another_cluster_cannot_join(cluster: LocalCluster, tmp_path: Path) -> None:
    """Issue 8 part 3: a node of another run dir (another key) whose config
    names n1's address as peer n1 never gets a message through: n1 refuses
    its link, and a client holding that other key is refused too."""
    spec = local_spec(1, FACTORY, tmp_path / "other", params={"ping_interval_ms": PING_MS}, prefix="x")
    spec.nodes["n1"] = NodeSpec(factory=FACTORY, port=cluster.addr("n1")[1])  # n1's address, by mistake
    _, path = write_config(spec)
    refused_before = status(cluster, "n1").auth_failures
    with LocalCluster(path) as other:
        assert other.credentials.key != cluster.credentials.key
        other.start(["x1"])
        wait_until(lambda: status(cluster, "n1").auth_failures >= refused_before + 2, 5, "refusals of x1's link")
        wait_until(lambda: "could not authenticate to n1" in other.read_log("x1"), 5, "x1's log line")
        with pytest.raises(AuthenticationFailed, match="wrong cluster key"):
            call(cluster.addr("n1"), Echo(text="wrong key"), 3.0, credentials=other.credentials)
        with pytest.raises(AuthenticationFailed, match="wrong cluster key"):
            authenticated_socket(cluster.addr("n1"), other.credentials, "n2")
    assert "x1" not in stats(cluster, "n1").pings_from


def test_handler_raising_remote_protocol_error_drops_its_effects_and_the_sender(cluster: LocalCluster) -> None:
    """Issue 8: an impossible message (the handler raises RemoteProtocolError)
    is as if never received: no reply, no send, the sender's connection
    closed with one WARNING line; the node does not crash."""
    needle = "invalid message"
    lines_before = _count_lines(cluster, "n1", needle)
    before = status(cluster, "n1")
    with cluster.client("n1", client_id="liar") as c:
        with pytest.raises(ConnectionError):
            c.call(Invalid(text="entries must be consecutive"), 3.0)
        assert not c.inbox  # the Ping the handler queued was never sent
    wait_until(lambda: _count_lines(cluster, "n1", needle) > lines_before, 5, "the invalid-message log line")
    line = [ln for ln in cluster.read_log("n1").splitlines() if needle in ln][-1]
    assert "liar" in line
    assert "Invalid: entries must be consecutive" in line
    after = status(cluster, "n1")
    assert after.pid == before.pid  # the same process: no crash, no respawn
    assert after.protocol_errors == before.protocol_errors + 1
    assert cluster.call("n1", Echo(text="still here"), 3.0) == EchoReply(node_id="n1", text="still here")
    assert _count_lines(cluster, "n1", needle) == lines_before + 1


def test_nonzero_exit_is_respawned_and_clean_exit_is_final(cluster: LocalCluster) -> None:
    boots = stats(cluster, "n3").boots
    respawns = cluster.respawns("n3")
    assert cluster.call("n3", Exit(code=3), 3.0) == Ack()  # the reply is flushed before exiting
    wait_until(lambda: cluster.respawns("n3") == respawns + 1, 10, "respawn after exit 3")
    cluster.wait_ready(["n3"])
    assert cluster.exit_codes("n3")[-1] == 3
    assert stats(cluster, "n3").boots == boots + 1
    with pytest.raises(ConnectionError):
        cluster.call("n3", Boom(), 3.0)  # the handler raises: the process crashes
    wait_until(lambda: cluster.respawns("n3") == respawns + 2, 10, "respawn after a crash")
    cluster.wait_ready(["n3"])
    assert cluster.exit_codes("n3")[-1] == 1
    assert "Boom: this handler crashes on purpose" in cluster.read_log("n3")
    assert cluster.call("n3", Exit(code=0), 3.0) == Ack()
    assert cluster.wait_exit("n3", 10.0) == 0
    assert not cluster.is_alive("n3")
    assert cluster.respawns("n3") == respawns + 2


def test_nodes_outside_the_respawn_set_stay_down(cluster: LocalCluster) -> None:
    assert cluster.call("n2", Exit(code=4), 3.0) == Ack()
    assert cluster.wait_exit("n2", 10.0) == 4
    assert not cluster.is_alive("n2")
    assert cluster.respawns("n2") == 0


def test_sigterm_stops_a_node_cleanly(cluster: LocalCluster) -> None:
    assert cluster.stop_node("n2") == 0
    events = [json.loads(line) for line in cluster.trace_path("n2").read_text().splitlines()]
    assert events[-1]["kind"] == "exit"
    assert events[-1]["reason"] == "signal SIGTERM"
    assert cluster.exit_codes("n2")[-1] == 0


def test_extra_node_joins_a_running_cluster(tmp_path: Path) -> None:
    _, path = write_config(local_spec(1, FACTORY, tmp_path, params={"ping_interval_ms": PING_MS}))
    with LocalCluster(path) as cl:
        cl.start()
        cl.add_node("w1", FACTORY, {"ping_interval_ms": PING_MS})
        assert cl.node_ids == ["n1", "w1"]
        # n1 started without w1 in its config: w1 is a client to it, yet both ways work.
        wait_until(lambda: heard_from(cl, "n1", "w1") >= 2, 5, "pings from the added node")
        assert relay(cl, "w1", "n1", 2000).reply == EchoReply(node_id="n1", text="w1->n1")
        assert relay(cl, "n1", "w1", 2000).reply == EchoReply(node_id="w1", text="n1->w1")
        cl.restart("n1")  # now n1 knows w1 from the rewritten config
        wait_until(lambda: heard_from(cl, "w1", "n1") >= 2, 5, "pings from n1 after its restart")


def test_driver_gathers_calls_to_one_node_each_with_its_own_reply(cluster: LocalCluster) -> None:
    """A gather's calls to one node go out at once on connections of their
    own; each connection is its own client id, so every call gets its own
    answer (a node answers a client id on one connection: with one id for
    all of them, the replies went to the last connection and the rest timed
    out, and a GFS push of more than one piece failed)."""
    addrs = {nid: cluster.addr(nid) for nid in IDS}

    async def echo_eight(ctx: Any) -> list[Any]:
        return await ctx.gather([ctx.call("n1", Echo(text=f"t{i}"), 5_000) for i in range(8)])

    with Driver(addrs, credentials=Credentials.from_config(cluster.config)) as d:
        for _ in range(3):   # connections reused from the earlier rounds too
            assert d.run(echo_eight) == [EchoReply(node_id="n1", text=f"t{i}") for i in range(8)]
