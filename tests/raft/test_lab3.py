"""MIT 6.5840 Lab 3's Raft tests (3A election, 3B agreement, 3C persistence,
3D snapshots), by name and intent, over the simulated cluster of
:mod:`synod.raft.sim`; each runs over several seeds and every run is also
checked by the white-box safety checker (Raft Figure 3).

Deviation from the lab: a new leader appends a no-op entry of its term
(thesis 6.4, needed by ReadIndex), so log indexes of client commands are not
1, 2, 3...; tests that checked exact indexes check relative ones instead.
"""

from __future__ import annotations

import pytest

from synod.raft.node import HARDSTATE_PATH, WAL_PATH
from synod.raft.sim import ELECTION_TIMEOUT_MS as ET
from synod.raft.sim import LabCluster

SNAPSHOT_INTERVAL = 10
MAX_LOG_SIZE_BYTES = 2000


@pytest.fixture
def make(request: pytest.FixtureRequest, seed: int):  # type: ignore[no-untyped-def]
    def build(n: int, **kw) -> LabCluster:  # type: ignore[no-untyped-def]
        replay = f"pytest '{request.node.nodeid.split('[')[0]}' --raft-seed {seed}"
        return LabCluster(n, seed, replay=replay, **kw)

    return build


def _rand(c: LabCluster) -> int:
    return c.rng.randrange(1 << 31)


# -- 3A: leader election ---------------------------------------------------------------

@pytest.mark.seeds(5)
def test_initial_election(make) -> None:  # type: ignore[no-untyped-def]
    """Raft section 5.2: a leader is elected and stays while nothing fails."""
    c = make(3)
    c.check_one_leader()
    c.sleep(50)
    term1 = c.check_terms()
    assert term1 >= 1, f"term is {term1}, but election should have happened (seed {c.seed})"
    c.sleep(2 * ET)
    term2 = c.check_terms()
    if term1 != term2:
        c.fail(f"term changed from {term1} to {term2} with no failures")
    c.check_one_leader()


@pytest.mark.seeds(5)
def test_re_election(make) -> None:  # type: ignore[no-untyped-def]
    """Section 5.2: a new leader after the old one is cut off; none without a quorum."""
    c = make(3)
    leader1 = c.check_one_leader()
    c.disconnect(leader1)
    c.check_one_leader()
    c.connect(leader1)
    leader2 = c.check_one_leader()
    c.disconnect(leader2)
    c.disconnect((leader2 + 1) % 3)
    c.sleep(2 * ET)
    c.check_no_leader()
    c.connect((leader2 + 1) % 3)
    c.check_one_leader()
    c.connect(leader2)
    c.check_one_leader()


@pytest.mark.seeds(3)
def test_many_elections(make) -> None:  # type: ignore[no-untyped-def]
    """Seven servers, three cut off at random, ten times: always one leader."""
    c = make(7)
    c.check_one_leader()
    for _ in range(10):
        i1, i2, i3 = (c.rng.randrange(7) for _ in range(3))
        for i in (i1, i2, i3):
            c.disconnect(i)
        c.check_one_leader()
        for i in (i1, i2, i3):
            c.connect(i)
    c.check_one_leader()


# -- 3B: log replication -----------------------------------------------------------------

@pytest.mark.seeds(5)
def test_basic_agree(make) -> None:  # type: ignore[no-untyped-def]
    """Section 5.3: commands commit at consecutive indexes on every server."""
    c = make(3)
    prev = None
    for k in range(1, 4):
        nd, _ = c.n_committed(c.max_index + 1)
        if nd > 0:
            c.fail("some have committed before Start()")
        index = c.one(k * 100, 3, False)
        if prev is not None and index != prev + 1:
            c.fail(f"got index {index} but expected {prev + 1}")
        prev = index


@pytest.mark.seeds(3)
def test_rpc_bytes(make) -> None:  # type: ignore[no-untyped-def]
    """Each command is sent to each follower about once (no redundant copies)."""
    c = make(3, count_bytes=True)
    c.one(99, 3, False)
    bytes0 = c.bytes_total()
    sent = 0
    for _ in range(2, 11):
        cmd = "".join(chr(97 + c.rng.randrange(26)) for _ in range(5000))
        c.one(cmd, 3, False)
        sent += len(cmd)
    got = c.bytes_total() - bytes0
    if got > 3 * sent + 50_000:
        c.fail(f"too many RPC bytes; got {got}, expected {3 * sent}")


@pytest.mark.seeds(5)
def test_follower_failure(make) -> None:  # type: ignore[no-untyped-def]
    """Agreement with one follower down; none with both down."""
    c = make(3)
    c.one(101, 3, False)
    leader1 = c.check_one_leader()
    c.disconnect((leader1 + 1) % 3)
    c.one(102, 2, False)
    c.sleep(ET)
    c.one(103, 2, False)
    leader2 = c.check_one_leader()
    c.disconnect((leader2 + 1) % 3)
    c.disconnect((leader2 + 2) % 3)
    index, _, ok = c.start(leader2, 104)
    if not ok:
        c.fail("leader rejected Start()")
    c.sleep(2 * ET)
    n, _ = c.n_committed(index)
    if n > 0:
        c.fail(f"{n} committed but no majority")


@pytest.mark.seeds(5)
def test_leader_failure(make) -> None:  # type: ignore[no-untyped-def]
    c = make(3)
    c.one(101, 3, False)
    leader1 = c.check_one_leader()
    c.disconnect(leader1)
    c.one(102, 2, False)
    c.sleep(ET)
    c.one(103, 2, False)
    leader2 = c.check_one_leader()
    c.disconnect(leader2)
    indexes = [c.start(i, 104)[0] for i in range(3)]
    c.sleep(2 * ET)
    for index in indexes:
        if index > 0 and c.n_committed(index)[1] == 104:
            c.fail("104 committed without a majority")


@pytest.mark.seeds(5)
def test_fail_agree(make) -> None:  # type: ignore[no-untyped-def]
    """A follower that was cut off catches up after reconnecting."""
    c = make(3)
    c.one(101, 3, False)
    leader = c.check_one_leader()
    c.disconnect((leader + 1) % 3)
    for cmd in (102, 103):
        c.one(cmd, 2, False)
    c.sleep(ET)
    for cmd in (104, 105):
        c.one(cmd, 2, False)
    c.connect((leader + 1) % 3)
    c.one(106, 3, True)
    c.sleep(ET)
    c.one(107, 3, True)


@pytest.mark.seeds(5)
def test_fail_no_agree(make) -> None:  # type: ignore[no-untyped-def]
    """No commit with three of five cut off; recovery after healing."""
    c = make(5)
    c.one(10, 5, False)
    leader = c.check_one_leader()
    for k in (1, 2, 3):
        c.disconnect((leader + k) % 5)
    index, _, ok = c.start(leader, 20)
    if not ok:
        c.fail("leader rejected Start()")
    c.sleep(2 * ET)
    n, _ = c.n_committed(index)
    if n > 0:
        c.fail(f"{n} committed but no majority")
    for k in (1, 2, 3):
        c.connect((leader + k) % 5)
    leader2 = c.check_one_leader()
    index2, _, ok2 = c.start(leader2, 30)
    if not ok2:
        c.fail("leader2 rejected Start()")
    if index2 < index - 1 or index2 > index + 3:
        c.fail(f"unexpected index {index2}")
    c.one(1000, 5, True)


@pytest.mark.seeds(5)
def test_concurrent_starts(make) -> None:  # type: ignore[no-untyped-def]
    c = make(3)
    for attempt in range(5):
        if attempt > 0:
            c.sleep(3000)
        leader = c.check_one_leader()
        _, term, ok = c.start(leader, 1)
        if not ok:
            continue
        placed = [(c.start(leader, 100 + i), 100 + i) for i in range(5)]
        if any(t != term or not ok for (_, t, ok), _ in placed):
            continue
        got = [c.wait(index, 3, term) for (index, _, _), _ in placed]
        if -1 in got:
            continue
        if sorted(got) != [100 + i for i in range(5)]:
            c.fail(f"committed {got}")
        return
    c.fail("term changed too often")


@pytest.mark.seeds(5)
def test_rejoin(make) -> None:  # type: ignore[no-untyped-def]
    """A partitioned leader's uncommitted entries are replaced when it rejoins."""
    c = make(3)
    c.one(101, 3, True)
    leader1 = c.check_one_leader()
    c.disconnect(leader1)
    for cmd in (102, 103, 104):
        c.start(leader1, cmd)
    c.one(103, 2, True)
    leader2 = c.check_one_leader()
    c.disconnect(leader2)
    c.connect(leader1)
    c.one(104, 2, True)
    c.connect(leader2)
    c.one(105, 3, True)


@pytest.mark.seeds(3)
def test_backup(make) -> None:  # type: ignore[no-untyped-def]
    """Section 5.3's fast backup over many conflicting uncommitted entries."""
    c = make(5)
    c.one(_rand(c), 5, True)
    leader1 = c.check_one_leader()
    for k in (2, 3, 4):
        c.disconnect((leader1 + k) % 5)
    for _ in range(50):
        c.start(leader1, _rand(c))
    c.sleep(ET / 2)
    c.disconnect(leader1)
    c.disconnect((leader1 + 1) % 5)
    for k in (2, 3, 4):
        c.connect((leader1 + k) % 5)
    for _ in range(50):
        c.one(_rand(c), 3, True)
    leader2 = c.check_one_leader()
    other = (leader1 + 2) % 5
    if other == leader2:
        other = (leader2 + 1) % 5
    c.disconnect(other)
    for _ in range(50):
        c.start(leader2, _rand(c))
    c.sleep(ET / 2)
    for i in range(5):
        c.disconnect(i)
    for i in (leader1, (leader1 + 1) % 5, other):
        c.connect(i)
    for _ in range(50):
        c.one(_rand(c), 3, True)
    for i in range(5):
        c.connect(i)
    c.one(_rand(c), 5, True)


@pytest.mark.seeds(3)
def test_count(make) -> None:  # type: ignore[no-untyped-def]
    """Lab 3B's RPC-count bounds: election, ten agreements, one idle second."""
    c = make(3)
    leader = c.check_one_leader()
    total1 = c.rpc_total()
    if not 1 <= total1 <= 30:
        c.fail(f"too many or few RPCs ({total1}) to elect initial leader")
    for _ in range(5):
        if _ != 0:
            c.sleep(3000)
        leader = c.check_one_leader()
        total1 = c.rpc_total()
        iters = 10
        start, term, ok = c.start(leader, 1)
        if not ok:
            continue
        cmds = []
        good = True
        for i in range(1, iters + 2):
            x = _rand(c)
            cmds.append(x)
            index1, term1, ok = c.start(leader, x)
            if term1 != term or not ok:
                good = False
                break
            if start + i != index1:
                c.fail("Start() failed")
        if not good:
            continue
        for i in range(1, iters + 2):
            cmd = c.wait(start + i, 3, term)
            if cmd != cmds[i - 1]:
                if cmd == -1:
                    good = False
                    break
                c.fail(f"wrong value {cmd} committed for index {start + i}; expected {cmds}")
        if not good or any(c.get_state(j)[0] != term for j in range(3)):
            continue
        total2 = c.rpc_total()
        if total2 - total1 > (iters + 1 + 3) * 3:
            c.fail(f"too many RPCs ({total2 - total1}) for {iters} entries")
        break
    else:
        c.fail("term changed too often")
    c.sleep(ET)
    total3 = c.rpc_total()
    if total3 - total2 > 3 * 20:
        c.fail(f"too many RPCs ({total3 - total2}) for 1 second of idleness")


# -- 3C: persistence -----------------------------------------------------------------------

def _restart(c: LabCluster, i: int) -> None:
    c.start1(i)
    c.connect(i)


@pytest.mark.seeds(5)
def test_persist1(make) -> None:  # type: ignore[no-untyped-def]
    """Section 5.1 / Figure 2: term, vote and log survive crashes."""
    c = make(3)
    c.one(11, 3, True)
    for i in range(3):
        c.start1(i)
    for i in range(3):
        c.connect(i)
    c.one(12, 3, True)
    leader1 = c.check_one_leader()
    _restart(c, leader1)
    c.one(13, 3, True)
    leader2 = c.check_one_leader()
    c.crash1(leader2)
    index = c.one(14, 2, True)
    _restart(c, leader2)
    c.wait(index, 3, -1)
    i3 = (c.check_one_leader() + 1) % 3
    c.crash1(i3)
    c.one(15, 2, True)
    _restart(c, i3)
    c.one(16, 3, True)


@pytest.mark.seeds(3)
def test_persist2(make) -> None:  # type: ignore[no-untyped-def]
    c = make(5)
    index = 1
    for _ in range(5):
        c.one(10 + index, 5, True)
        index += 1
        leader1 = c.check_one_leader()
        c.crash1((leader1 + 1) % 5)
        c.crash1((leader1 + 2) % 5)
        c.one(10 + index, 3, True)
        index += 1
        for k in (0, 3, 4):
            c.crash1((leader1 + k) % 5)
        _restart(c, (leader1 + 1) % 5)
        _restart(c, (leader1 + 2) % 5)
        c.sleep(ET)
        _restart(c, (leader1 + 3) % 5)
        c.one(10 + index, 3, True)
        index += 1
        _restart(c, (leader1 + 4) % 5)
        _restart(c, leader1)
    c.one(1000, 5, True)


@pytest.mark.seeds(5)
def test_persist3(make) -> None:  # type: ignore[no-untyped-def]
    """A partitioned leader and a follower crash; the survivor's log wins."""
    c = make(3)
    c.one(101, 3, True)
    leader = c.check_one_leader()
    c.disconnect((leader + 2) % 3)
    c.one(102, 2, True)
    c.crash1(leader % 3)
    c.crash1((leader + 1) % 3)
    c.connect((leader + 2) % 3)
    _restart(c, leader % 3)
    c.one(103, 2, True)
    _restart(c, (leader + 1) % 3)
    c.one(104, 3, True)


@pytest.mark.seeds(3)
def test_figure8(make) -> None:  # type: ignore[no-untyped-def]
    """Figure 8: leaders crash at random right after appending; committed entries survive."""
    c = make(5)
    c.one(_rand(c), 1, True)
    nup = 5
    for _ in range(300):
        leader = -1
        for i in range(5):
            if c.up(i) and c.start(i, _rand(c))[2]:
                leader = i
        if c.rng.randrange(1000) < 100:
            c.sleep(c.rng.randrange(ET // 2))
        else:
            c.sleep(c.rng.randrange(13))
        if leader != -1:
            c.crash1(leader)
            nup -= 1
        if nup < 3:
            s = c.rng.randrange(5)
            if not c.up(s):
                _restart(c, s)
                nup += 1
    for i in range(5):
        if not c.up(i):
            _restart(c, i)
    c.one(_rand(c), 5, True)


@pytest.mark.seeds(3)
def test_unreliable_agree(make) -> None:  # type: ignore[no-untyped-def]
    c = make(5, unreliable=True)
    for it in range(1, 50):
        for j in range(4):
            c.one_background(100 * it + j, 1, True)
        c.one(it, 1, True)
    c.set_unreliable(False)
    c.wait_background()  # every background command reached agreement
    c.one(100, 5, True)


@pytest.mark.seeds(3)
def test_figure8_unreliable(make) -> None:  # type: ignore[no-untyped-def]
    c = make(5, unreliable=True)
    c.one(_rand(c) % 10000, 1, True)
    nup = 5
    for it in range(300):
        if it == 100:
            c.set_long_reordering(True)
        leader = -1
        for i in range(5):
            if c.start(i, _rand(c) % 10000)[2] and c.connected[i]:
                leader = i
        if c.rng.randrange(1000) < 100:
            c.sleep(c.rng.randrange(ET // 2))
        else:
            c.sleep(c.rng.randrange(13))
        if leader != -1 and c.rng.randrange(1000) < ET // 2:
            c.disconnect(leader)
            nup -= 1
        if nup < 3:
            s = c.rng.randrange(5)
            if not c.connected[s]:
                c.connect(s)
                nup += 1
    for i in range(5):
        c.connect(i)
    c.set_long_reordering(False)
    c.one(_rand(c) % 10000, 5, True)


def _churn(c: LabCluster) -> None:
    """Lab 3C's internalChurn: three clients submit while servers are cut
    off, crashed and restarted at random; whatever a client saw committed must
    be in the final log."""
    seen: list[int] = []
    stop = {"now": False}

    def client(me: int) -> None:
        if stop["now"]:
            return
        x = _rand(c)
        index = -1
        for i in range(c.n):
            if c.up(i):
                idx, _, ok = c.start(i, x)
                if ok:
                    index = idx
        if index == -1:
            c.sim.call_after(17 + c.rng.randrange(79), client, me)
            return
        check(me, x, index, 10)

    def check(me: int, x: int, index: int, to: float) -> None:
        v = next((log.get(index) for k, log in enumerate(c.logs)
                  if c.last_applied[k] >= index and log.get(index) is not None), None)
        if v is not None:
            if v == x:
                seen.append(x)
            c.sim.call_after(17 + c.rng.randrange(79), client, me)
        elif to < 1000 and not stop["now"]:
            c.sim.call_after(to, check, me, x, index, to * 2)
        else:
            c.sim.call_after(17 + c.rng.randrange(79), client, me)

    for me in range(3):
        c.sim.call_after(0, client, me)
    for _ in range(20):
        if c.rng.randrange(1000) < 200:
            c.disconnect(c.rng.randrange(c.n))
        if c.rng.randrange(1000) < 500:
            i = c.rng.randrange(c.n)
            if not c.up(i):
                c.start1(i)
            c.connect(i)
        if c.rng.randrange(1000) < 200:
            i = c.rng.randrange(c.n)
            if c.up(i):
                c.crash1(i)
        c.sleep(ET * 7 / 10)
    c.sleep(ET)
    c.set_unreliable(False)
    for i in range(c.n):
        if not c.up(i):
            c.start1(i)
        c.connect(i)
    stop["now"] = True
    c.sleep(ET)
    last_index = c.one(_rand(c), c.n, True)
    really = [c.wait(index, c.n, -1) for index in range(1, last_index + 1)]
    for x in seen:
        if x not in really:
            c.fail(f"didn't find a value {x} a client saw committed")


@pytest.mark.seeds(3)
def test_reliable_churn(make) -> None:  # type: ignore[no-untyped-def]
    _churn(make(5))


@pytest.mark.seeds(3)
def test_unreliable_churn(make) -> None:  # type: ignore[no-untyped-def]
    _churn(make(5, unreliable=True))


# -- 3D: snapshots ---------------------------------------------------------------------------

def _log_size_bytes(c: LabCluster, i: int) -> int:
    disk = c.sim.hosts[c.ids[i]].disk
    return sum(len(disk.read(p) or b"") for p in (WAL_PATH, HARDSTATE_PATH))


def _snap_common(c: LabCluster, disconnect: bool, crash: bool) -> None:
    servers = 3
    c.one(_rand(c), servers, True)
    leader1 = c.check_one_leader()
    for i in range(30):
        victim, sender = (leader1 + 1) % servers, leader1
        if i % 3 == 1:
            sender, victim = (leader1 + 1) % servers, leader1
        if disconnect:
            c.disconnect(victim)
            c.one(_rand(c), servers - 1, True)
        if crash:
            c.crash1(victim)
            c.one(_rand(c), servers - 1, True)
        for _ in range(SNAPSHOT_INTERVAL // 2 + c.rng.randrange(SNAPSHOT_INTERVAL)):
            c.start(sender, _rand(c))
        if not disconnect and not crash:
            c.one(_rand(c), servers, True)
        else:
            c.one(_rand(c), servers - 1, True)
        for k in range(servers):
            if c.up(k) and _log_size_bytes(c, k) >= MAX_LOG_SIZE_BYTES:
                c.fail(f"log size too large on {c.ids[k]}: {_log_size_bytes(c, k)} bytes")
        if disconnect:
            c.connect(victim)
            c.one(_rand(c), servers, True)
            leader1 = c.check_one_leader()
        if crash:
            _restart(c, victim)
            c.one(_rand(c), servers, True)
            leader1 = c.check_one_leader()


@pytest.mark.seeds(3)
def test_snapshot_basic(make) -> None:  # type: ignore[no-untyped-def]
    _snap_common(make(3, snapshot=True, snapshot_interval=SNAPSHOT_INTERVAL), False, False)


@pytest.mark.seeds(3)
def test_snapshot_install(make) -> None:  # type: ignore[no-untyped-def]
    """Section 7: a lagging follower catches up by InstallSnapshot."""
    _snap_common(make(3, snapshot=True, snapshot_interval=SNAPSHOT_INTERVAL), True, False)


@pytest.mark.seeds(3)
def test_snapshot_install_unreliable(make) -> None:  # type: ignore[no-untyped-def]
    _snap_common(make(3, snapshot=True, snapshot_interval=SNAPSHOT_INTERVAL, unreliable=True), True, False)


@pytest.mark.seeds(3)
def test_snapshot_install_crash(make) -> None:  # type: ignore[no-untyped-def]
    _snap_common(make(3, snapshot=True, snapshot_interval=SNAPSHOT_INTERVAL), False, True)


@pytest.mark.seeds(3)
def test_snapshot_install_uncrash(make) -> None:  # type: ignore[no-untyped-def]
    _snap_common(make(3, snapshot=True, snapshot_interval=SNAPSHOT_INTERVAL, unreliable=True), False, True)


@pytest.mark.seeds(3)
def test_snapshot_all_crash(make) -> None:  # type: ignore[no-untyped-def]
    """Every server restarts from snapshot plus log tail, and indexes go on."""
    c = make(3, snapshot=True, snapshot_interval=SNAPSHOT_INTERVAL)
    c.one(_rand(c), 3, True)
    for _ in range(5):
        for _ in range(SNAPSHOT_INTERVAL // 2 + c.rng.randrange(SNAPSHOT_INTERVAL)):
            c.one(_rand(c), 3, True)
        index1 = c.one(_rand(c), 3, True)
        for i in range(3):
            c.crash1(i)
        for i in range(3):
            _restart(c, i)
        index2 = c.one(_rand(c), 3, True)
        if index2 < index1 + 1:
            c.fail(f"index decreased from {index1} to {index2}")


@pytest.mark.seeds(3)
def test_snapshot_init(make) -> None:  # type: ignore[no-untyped-def]
    """A restart right after snapshots still serves the snapshot (Lab 3D's bug)."""
    c = make(3, snapshot=True, snapshot_interval=SNAPSHOT_INTERVAL)
    c.one(_rand(c), 3, True)
    for _ in range(SNAPSHOT_INTERVAL + 1):
        c.one(_rand(c), 3, True)
    for _round in range(2):
        for i in range(3):
            c.crash1(i)
        for i in range(3):
            _restart(c, i)
        c.one(_rand(c), 3, True)
