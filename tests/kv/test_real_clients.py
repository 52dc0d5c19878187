"""Real Redis clients against a real 3-node KV cluster (issue 10 part 2):
redis-py through every node (followers forward writes to the leader),
pipelines, MULTI/EXEC with WATCH under a concurrent writer, RESP3,
redis-cli, redis-benchmark, blocked pops through a follower (served, and
not served to a client that left), and the leader killed with SIGKILL mid-stream
(Raft section 5.4: every acknowledged write survives the new leader).

One cluster for the module (owned node processes: they exit with this
process, and the fixture stops them). ``SYNOD_KV_BENCH_REQUESTS`` sets
redis-benchmark's ``-n`` (default 5000: the module takes ~20 s on 2 idle
cores, the benchmark ~15 s of it; under a loaded disk a lone write's fsyncs
take ~25 ms and it can take a minute).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from synod.cli.kv_cmd import info_replication, wait_for_write
from synod.kv.node import FACTORY
from synod.runtime import LocalCluster, local_spec, write_config

DEADLINE_S = 15.0
BENCH_REQUESTS = int(os.environ.get("SYNOD_KV_BENCH_REQUESTS", "5000"))
BENCH_TESTS = "set,get,incr,lpush,rpush,lpop,rpop,lrange_100,mset,hset"
BENCH_LINES = ("SET", "GET", "INCR", "LPUSH", "RPUSH", "LPOP", "RPOP", "LPUSH (needed to benchmark LRANGE)",
               "LRANGE_100 (first 100 elements)", "MSET (10 keys)", "HSET")


def needs(tool: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} is not on PATH (apt-get install redis-tools)")


def wait_until(what: str, check: Callable[[], Any], deadline_s: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + deadline_s
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"not within {deadline_s} s: {what}"
        time.sleep(0.02)


class Cluster:
    """The module's cluster: ``cl`` and each node's RESP port."""

    def __init__(self, cl: LocalCluster) -> None:
        self.cl = cl
        self.ports = {nid: cl.config.nodes[nid].client_ports["resp"] for nid in cl.node_ids}

    def client(self, nid: str, **kwargs: Any) -> redis.Redis:
        return redis.Redis(port=self.ports[nid], socket_timeout=10, **kwargs)

    def leader(self, among: list[str] | None = None, *, term_above: int = 0) -> tuple[str, int] | None:
        """(leader, term) if one of ``among`` (default all) leads in a term above ``term_above``."""
        best = None
        for nid in among or self.cl.node_ids:
            info = info_replication(self.ports[nid])
            if info and info["raft_role"] == "leader" and int(info["raft_term"]) > term_above:
                best = max(best or (nid, 0), (nid, int(info["raft_term"])), key=lambda x: x[1])
        return best


@pytest.fixture(scope="module")
def kv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    run: Path = tmp_path_factory.mktemp("kv-real")
    _, path = write_config(local_spec(3, FACTORY, run, client_protocols=("resp",)))
    cl = LocalCluster(path)
    try:
        cl.start()
        c = Cluster(cl)
        wait_for_write(c.ports, DEADLINE_S)
        yield c
    finally:
        cl.stop()
        assert not any(cl.is_alive(nid) for nid in cl.node_ids)


def test_basic_commands_through_every_node(kv: Cluster) -> None:
    """Each node takes writes (a follower forwards them to the leader) and
    every node reads every write (ReadIndex, thesis 6.4)."""
    for nid in kv.cl.node_ids:
        r = kv.client(nid)
        assert r.ping() is True
        assert r.set(f"s:{nid}", nid) is True
        assert r.incr(f"c:{nid}", 5) == 5
        assert r.rpush(f"l:{nid}", "a", "b", "c") == 3
        assert r.hset(f"h:{nid}", mapping={"f": "1", "g": "2"}) == 2
        assert r.set(f"gone:{nid}", "x") and r.delete(f"gone:{nid}") == 1
    for reader in kv.cl.node_ids:
        r = kv.client(reader, decode_responses=True)
        for nid in kv.cl.node_ids:
            assert r.get(f"s:{nid}") == nid
            assert r.get(f"c:{nid}") == "5"
            assert r.lrange(f"l:{nid}", 0, -1) == ["a", "b", "c"]
            assert r.hgetall(f"h:{nid}") == {"f": "1", "g": "2"}
            assert r.exists(f"gone:{nid}") == 0
        assert r.mget([f"s:{n}" for n in kv.cl.node_ids]) == kv.cl.node_ids


def test_pipeline_of_1000_sets_then_gets(kv: Cluster) -> None:
    """A non-transactional pipeline through a follower: 1,000 SETs, then
    1,000 GETs that see them (a pipeline sees its own writes)."""
    leader, _ = wait_until("a leader", kv.leader)
    follower = next(n for n in kv.cl.node_ids if n != leader)
    r = kv.client(follower, decode_responses=True)
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.set(f"p:{i}", f"v{i}")
    assert pipe.execute() == [True] * 1000
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.get(f"p:{i}")
    assert pipe.execute() == [f"v{i}" for i in range(1000)]


def test_multi_exec_and_watch_under_a_concurrent_writer(kv: Cluster) -> None:
    """MULTI/EXEC is one log entry; WATCH makes an optimistic
    read-modify-write: three threads increment one counter with
    ``r.transaction`` (GET, then MULTI SET EXEC, retried on WatchError) while
    a fourth INCRs it, so EXECs fail and retry, and no increment is lost."""
    r = kv.client(kv.cl.node_ids[0])
    with r.pipeline(transaction=True) as pipe:
        assert pipe.set("tx:a", 1).incr("tx:a").get("tx:a").execute() == [True, 2, b"2"]

    per_thread, retries, done, errors = 25, [0], [0], []
    lock = threading.Lock()

    def increment(pipe: redis.client.Pipeline) -> None:
        with lock:
            retries[0] += 1
        value = int(pipe.get("tx:counter") or 0)
        pipe.multi()
        pipe.set("tx:counter", value + 1)

    def transactions(nid: str) -> None:
        client = kv.client(nid)
        try:
            for _ in range(per_thread):
                assert client.transaction(increment, "tx:counter") == [True]
                with lock:
                    done[0] += 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def writer() -> None:
        client = kv.client(kv.cl.node_ids[1])
        try:
            for _ in range(per_thread):
                client.incr("tx:counter")
                with lock:
                    done[0] += 1
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=transactions, args=(nid,)) for nid in kv.cl.node_ids]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert done[0] == 4 * per_thread
    assert int(r.get("tx:counter")) == done[0]
    assert retries[0] >= 3 * per_thread  # one call of increment per attempt; more when a WATCH fired


def test_resp3(kv: Cluster) -> None:
    """redis-py speaking RESP3 (HELLO 3 on connect): maps come back as dicts."""
    r = kv.client(kv.cl.node_ids[2], protocol=3, decode_responses=True)
    hello = r.execute_command("HELLO", 3)
    assert hello["proto"] == 3 and hello["server"] == "redis"
    assert r.hset("r3:h", mapping={"a": "1", "b": "2"}) == 2
    got = r.hgetall("r3:h")
    assert isinstance(got, dict) and got == {"a": "1", "b": "2"}
    assert r.get("r3:missing") is None


@needs("redis-cli")
def test_redis_cli(kv: Cluster) -> None:
    def cli(nid: str, *args: str) -> str:
        proc = subprocess.run(["redis-cli", "-p", str(kv.ports[nid]), *args], capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    n1, n2, n3 = kv.cl.node_ids
    assert cli(n1, "PING") == "PONG"
    assert cli(n2, "SET", "cli:k", "hello world") == "OK"
    assert cli(n3, "GET", "cli:k") == "hello world"
    assert cli(n1, "GET", "cli:k") == "hello world"


@needs("redis-benchmark")
def test_redis_benchmark(kv: Cluster) -> None:
    """redis-benchmark's ten tests against the leader: every line present with
    a positive rate, no error replies."""
    leader, _ = wait_until("a leader", kv.leader)
    proc = subprocess.run(["redis-benchmark", "-p", str(kv.ports[leader]), "-t", BENCH_TESTS,
                           "-n", str(BENCH_REQUESTS), "-c", "20", "--csv"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    errors = [line for line in lines + proc.stderr.splitlines() if line.startswith(("Error", "ERR", "WRONGTYPE"))]
    assert not errors, errors
    assert not proc.stderr.strip(), proc.stderr
    assert lines[0].startswith('"test","rps"'), lines[0]
    rps = {}
    for line in lines[1:]:
        fields = [f.strip('"') for f in line.split('","')]
        rps[fields[0]] = float(fields[1])
    assert sorted(rps) == sorted(BENCH_LINES), rps
    assert all(v > 0 for v in rps.values()), rps


def test_leader_killed_mid_stream_keeps_every_acknowledged_write(kv: Cluster) -> None:
    """Raft section 5.4 (leader completeness): a client writes through a
    follower while the leader is killed with SIGKILL; after a new leader is
    elected, every write acknowledged before and after it is read back from
    every node (the killed one restarted). TRYAGAIN answers were not
    applied; UNCERTAIN ones may or may not have been."""
    old, term = wait_until("a leader", kv.leader)
    follower = next(n for n in kv.cl.node_ids if n != old)
    acked: dict[str, str] = {}
    uncertain: list[str] = []
    stop = threading.Event()
    failures: list[Exception] = []

    def write() -> None:
        r = kv.client(follower)
        i = 0
        while not stop.is_set():
            key = f"w:{i}"
            try:
                r.set(key, str(i))
                acked[key] = str(i)
            except redis.exceptions.TryAgainError:  # -TRYAGAIN: not applied (redis-py strips the word)
                pass
            except redis.ResponseError as e:
                if not str(e).startswith("UNCERTAIN"):
                    failures.append(e)
                    return
                uncertain.append(key)
            except redis.RedisError as e:
                failures.append(e)
                return
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        wait_until("20 writes acknowledged", lambda: len(acked) >= 20)
        kv.cl.kill(old)
        killed_at = len(acked)
        new, new_term = wait_until("a new leader among the survivors",
                                   lambda: kv.leader([n for n in kv.cl.node_ids if n != old], term_above=term))
        assert new != old and new_term > term
        wait_until("20 more writes acknowledged after the election", lambda: len(acked) >= killed_at + 20)
    finally:
        stop.set()
        writer.join(30)
    assert not failures, failures
    kv.cl.start([old])
    keys = sorted(acked)
    for nid in kv.cl.node_ids:
        r = kv.client(nid, decode_responses=True)

        def read_all(r: redis.Redis = r) -> list[str | None] | None:
            try:
                return r.mget(keys)
            except redis.exceptions.TryAgainError:  # the restarted node has not heard from the leader yet
                return None

        values = wait_until(f"{nid} serving reads", read_all)
        missing = [k for k, v in zip(keys, values) if v != acked[k]]
        assert not missing, f"{nid} lost acknowledged writes {missing[:10]} (uncertain: {uncertain})"


def _blocked_clients(port: int) -> int | None:
    r = redis.Redis(port=port, socket_timeout=10, decode_responses=True)
    try:
        return int(r.info("clients")["blocked_clients"])
    finally:
        r.close()


def test_blocked_pop_through_a_follower_served_and_a_leaver_pops_nothing(kv: Cluster) -> None:
    """The job-queue pattern over real connections: BLPOP through a
    follower is served by an RPUSH through another node; a client that
    closes its connection while blocked leaves the next element queued."""
    leader, _ = wait_until("a leader", kv.leader)
    follower = next(n for n in kv.cl.node_ids if n != leader)
    other = next(n for n in kv.cl.node_ids if n not in (leader, follower))
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(kv.client(follower).blpop(["jobs"], timeout=0)))
    waiter.start()
    wait_until("the waiter blocked on the follower", lambda: _blocked_clients(kv.ports[follower]) == 1)
    assert kv.client(other).rpush("jobs", "j1") == 1
    waiter.join(DEADLINE_S)
    assert got == [(b"jobs", b"j1")]

    leaver = kv.client(follower)
    conn = leaver.connection_pool.get_connection()
    conn.send_command("BLPOP", "jobs", 0)
    wait_until("the leaver blocked on the follower", lambda: _blocked_clients(kv.ports[follower]) == 1)
    conn.disconnect()
    wait_until("the follower forgot the leaver", lambda: _blocked_clients(kv.ports[follower]) == 0)
    assert kv.client(leader).rpush("jobs", "j2") == 1
    r = kv.client(other)
    assert r.llen("jobs") == 1 and r.lpop("jobs") == b"j2"
