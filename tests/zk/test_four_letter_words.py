"""Four-letter words on the client port (issue 12 section 2): synod's
``mntr``, ``conf``, ``envi``, ``srvr`` and ``stat`` against Apache
ZooKeeper 3.8's, each a 3-server ensemble on 127.0.0.1 that served the
same few kazoo requests.

Formats are compared, not values (zxids, times, sizes differ by
construction): ``srvr``/``stat`` the same ``Name: value`` lines in the same
order per role (the leader's with its proposal sizes), ``stat``'s client
lines in ZooKeeper's shape; ``mntr`` tab-separated, every key synod prints
one that ZooKeeper prints in the same role, a core set in both, numbers
where ZooKeeper has numbers; ``conf`` key=value with synod's keys among
ZooKeeper's; ``envi`` ``Environment:`` then key=value. Synod's own values
are checked where they mean something: the role, the znodes and
ephemerals the clients made, the packets a client sent, the latency's
order, the learners a leader counts. Skips, saying why, without java or
Debian's zookeeper package."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from tests.zk._real_zookeeper import zookeeper_ensemble

from synod.harness.zk_real import four_letter_word, running_ensemble
from synod.zk._four_letter_words import NOT_SERVING, AdminConfig, Facts, ServerStats, answer

IDS = ("zk1", "zk2", "zk3")
WAIT_S = 30.0
WORDS = ("mntr", "conf", "envi", "srvr", "stat")
# mntr keys both print, and the leader's beside them.
MNTR_CORE = {"zk_version", "zk_server_state", "zk_znode_count", "zk_watch_count", "zk_ephemerals_count",
             "zk_approximate_data_size", "zk_outstanding_requests", "zk_num_alive_connections",
             "zk_packets_received", "zk_packets_sent", "zk_avg_latency", "zk_min_latency", "zk_max_latency",
             "zk_global_sessions", "zk_uptime", "zk_quorum_size", "zk_peer_state"}
MNTR_LEADER = {"zk_learners", "zk_synced_followers", "zk_synced_observers", "zk_last_proposal_size",
               "zk_min_proposal_size", "zk_max_proposal_size", "zk_leader_uptime"}
CONF_CORE = {"clientPort", "dataDir", "tickTime", "maxClientCnxns", "minSessionTimeout", "maxSessionTimeout",
             "serverId", "initLimit", "syncLimit", "electionAlg", "peerType"}
STAT_CLIENT = re.compile(r"^ /[0-9.]+:\d+\[[01]\]\(queued=\d+,recved=\d+,sent=\d+\)$")


@pytest.fixture
def synod_ports(tmp_path: Path) -> Iterator[list[int]]:
    with running_ensemble(tmp_path / "synod", len(IDS)) as (_, ports):
        yield ports


def _workload(ports: list[int]) -> list[KazooClient]:
    """The same requests on either ensemble: a znode with data, an
    ephemeral, a watch, through each server. The clients stay connected
    (the ephemeral's session open) until the caller closes them."""
    clients = [KazooClient(hosts=f"127.0.0.1:{p}", timeout=10) for p in ports]
    for zk in clients:
        zk.start(timeout=WAIT_S)
    clients[0].create("/app", b"x" * 100)
    clients[1].create("/app/e", b"", ephemeral=True)
    for zk in clients:
        zk.sync("/app")
        zk.get("/app", watch=lambda event: None)
    return clients


def _close(clients: list[KazooClient]) -> None:
    for zk in clients:
        zk.stop()
        zk.close()


def _by_mode(port: int) -> str:
    text = four_letter_word(port, "srvr") or ""
    mode = re.search(r"^Mode: (\w+)$", text, re.M)
    return mode.group(1) if mode else ""


def _answers(ports: list[int]) -> dict[str, dict[str, str]]:
    """role (leader, follower) -> word -> answer, one server per role."""
    out: dict[str, dict[str, str]] = {}
    for port in ports:
        mode = _by_mode(port)
        if mode in ("leader", "follower") and mode not in out:
            out[mode] = {w: four_letter_word(port, w) or "" for w in WORDS}
    assert set(out) == {"leader", "follower"}, out.keys()
    return out


def _mntr(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines():
        key, sep, value = line.partition("\t")
        assert sep and re.fullmatch(r"zk_[a-z0-9_]+", key), f"not a mntr line: {line!r}"
        rows[key] = value
    return rows


def _key_values(lines: list[str]) -> dict[str, str]:
    rows = {}
    for line in lines:
        key, sep, value = line.partition("=")
        assert sep and key and " " not in key, f"not key=value: {line!r}"
        rows[key] = value
    return rows


def _conf(text: str) -> dict[str, str]:
    # ZooKeeper's quorum conf ends with "membership:" and server lines, then version=.
    lines = text.splitlines()
    if "membership: " in lines:
        lines = lines[:lines.index("membership: ")]
    return _key_values(lines)


def _envi(text: str) -> dict[str, str]:
    lines = text.splitlines()
    assert lines[0] == "Environment:", lines[:1]
    return _key_values(lines[1:])


def _srvr_keys(text: str) -> list[str]:
    return [line.split(":", 1)[0] for line in text.splitlines() if ":" in line and not line.startswith(" /")]


def _number(value: str) -> bool:
    return re.fullmatch(r"-?\d+(\.\d+)?", value) is not None


def test_mntr_conf_envi_srvr_stat_in_zookeepers_formats(synod_ports: list[int], tmp_path: Path) -> None:
    with zookeeper_ensemble(tmp_path / "zookeeper") as zk_ports:
        zk_clients = _workload(zk_ports)
        try:
            real = _answers(zk_ports)
        finally:
            _close(zk_clients)
    synod_clients = _workload(synod_ports)
    try:
        ours = _answers(synod_ports)
    finally:
        _close(synod_clients)

    for role in ("leader", "follower"):
        theirs, mine = real[role], ours[role]
        real_mntr, synod_mntr = _mntr(theirs["mntr"]), _mntr(mine["mntr"])
        core = MNTR_CORE | (MNTR_LEADER if role == "leader" else set())
        assert core <= set(real_mntr), f"{role}: ZooKeeper lacks {core - set(real_mntr)}"
        assert core <= set(synod_mntr), f"{role}: synod lacks {core - set(synod_mntr)}"
        assert set(synod_mntr) <= set(real_mntr), f"{role}: not ZooKeeper's keys: {set(synod_mntr) - set(real_mntr)}"
        for key in synod_mntr:
            if _number(real_mntr[key]):
                assert _number(synod_mntr[key]), f"{role} {key}: {synod_mntr[key]!r} where ZooKeeper has a number"
        assert synod_mntr["zk_server_state"] == real_mntr["zk_server_state"] == role
        assert synod_mntr["zk_peer_state"] == real_mntr["zk_peer_state"]
        assert int(synod_mntr["zk_znode_count"]) == 6   # /, /zookeeper{,/quota,/config}, /app, /app/e
        assert int(synod_mntr["zk_ephemerals_count"]) == int(real_mntr["zk_ephemerals_count"]) == 1
        assert int(synod_mntr["zk_global_sessions"]) == int(real_mntr["zk_global_sessions"]) == 3
        assert int(synod_mntr["zk_packets_received"]) >= 3   # connect, sync, get at least
        assert int(synod_mntr["zk_min_latency"]) <= int(synod_mntr["zk_max_latency"])
        assert int(synod_mntr["zk_approximate_data_size"]) >= len("/app") + 100 + len("/app/e")
        if role == "leader":
            assert synod_mntr["zk_learners"] == synod_mntr["zk_synced_followers"] == real_mntr["zk_learners"] == "2"
            assert int(synod_mntr["zk_max_proposal_size"]) > 0

        real_conf, synod_conf = _conf(theirs["conf"]), _conf(mine["conf"])
        assert CONF_CORE <= set(real_conf) and CONF_CORE <= set(synod_conf)
        assert set(synod_conf) <= set(real_conf), f"not ZooKeeper's conf keys: {set(synod_conf) - set(real_conf)}"
        assert int(synod_conf["clientPort"]) in synod_ports
        assert int(synod_conf["minSessionTimeout"]) == 2 * int(synod_conf["tickTime"])
        assert synod_conf["peerType"] == real_conf["peerType"] == "0"

        real_env, synod_env = _envi(theirs["envi"]), _envi(mine["envi"])
        shared = {"zookeeper.version", "host.name", "os.name", "os.arch", "os.version", "user.name", "user.home"}
        assert shared <= set(real_env) and shared <= set(synod_env)
        assert synod_env["os.name"] == real_env["os.name"] == "Linux"

        assert _srvr_keys(mine["srvr"]) == _srvr_keys(theirs["srvr"]), (mine["srvr"], theirs["srvr"])
        assert _srvr_keys(mine["stat"]) == _srvr_keys(theirs["stat"]), (mine["stat"], theirs["stat"])
        for text in (mine["stat"], theirs["stat"]):
            lines = text.splitlines()
            clients = lines[lines.index("Clients:") + 1:lines.index("")]
            assert clients and all(STAT_CLIENT.match(line) for line in clients), clients
        received = int(re.search(r"^Received: (\d+)$", mine["srvr"], re.M).group(1))  # type: ignore[union-attr]
        assert received >= 3


def test_words_of_a_server_that_is_not_serving() -> None:
    """As ZooKeeper 3.8: mntr and conf say the server is not serving;
    ruok answers imok, isro null; envi still answers; a word outside the
    list is refused in ZooKeeper's words."""
    facts = Facts(serving=False, mode="not serving", peer_state="looking - election", zxid=0, outstanding=0,
                  znode_count=4, watch_count=0, ephemerals_count=0, global_sessions=0, quorum_size=3, uptime_ms=5,
                  stats=ServerStats())
    config = AdminConfig(client_port=0, data_dir="", tick_ms=100, connections_max=10, min_session_timeout_ms=200,
                         max_session_timeout_ms=2000, server_index=1, init_limit_ticks=10, sync_limit_ticks=5,
                         observer=False, environment=(("os.name", "Linux"),))
    assert answer("mntr", facts, config) == answer("conf", facts, config) == NOT_SERVING
    assert answer("ruok", facts, config) == "imok"
    assert answer("isro", facts, config) == "null"
    assert answer("envi", facts, config).splitlines() == ["Environment:", "zookeeper.version=synod (ZooKeeper 3.8 "
                                                          "protocol)", "os.name=Linux"]
    assert "Mode: not serving" in answer("srvr", facts, config)
    assert answer("wchs", facts, config) == "wchs is not executed because it is not in the whitelist.\n"


def test_latency_and_proposal_figures() -> None:
    s = ServerStats()
    assert (s.avg_latency(), s.latency_min_ms, s.latency_max_ms) == (0.0, 0, 0)
    for ms in (3.7, 1.2, 8.0):
        s.latency(ms)
    assert (s.latency_min_ms, s.latency_max_ms, s.avg_latency()) == (1, 8, 4.0)
    s.proposal(10)
    s.proposal(4)
    assert (s.proposal_count, s.proposal_last_bytes, s.proposal_min_bytes, s.proposal_max_bytes) == (2, 4, 4, 10)
