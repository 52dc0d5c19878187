"""synod.zk under faults as real processes, checked (issue 12 section 3,
"Real processes"; Hunt et al., USENIX ATC 2010, section 2.3 guarantees).

A 3- or 5-server ensemble (:func:`synod.harness.zk_real.ensemble_spec`) on
127.0.0.1 and ``clients`` threads, each with one kazoo 2.11 client given
the ensemble's full host list (kazoo picks a server and moves its session
to another by itself when the connection breaks). Each client, one
operation at a time except in its bursts, loops over:

- **cas** on one of :data:`REGISTERS`: getData (a plain read), then
  setData with the version read, or a create when the znode is missing.
  Written values are unique (``c<i>:<n>``) and registers are never deleted,
  so a version names one value and the conditional setData is a
  compare-and-set of the value: BADVERSION (NONODE, NODEEXISTS for a
  create) says the value was not the one read, nothing applied (``fail``);
- **sync + getData** of a register: a linearizable read;
- **getData** of a register: a plain read, served by the connected server;
- **create** of a persistent sequential znode ``/seq/c<i>-<n>-<seq>``: the
  name carries a token unique to the request, so a create applied twice
  shows as two children with one token;
- a **burst**: :data:`BURST_OPS_MIN`..:data:`BURST_OPS_MAX` pipelined
  requests on the session, all sent before any answer is awaited, then
  collected in issue order: blind setData (version -1, a plain write of a
  unique value) and getData of :data:`BURST_KEYS` registers, and
  sequential creates (with their Stat). Each request is its own operation:
  a setData is a ``write`` of the history under a process of its own,
  invoked when sent, completed when its answer is collected (NONODE: the
  register is not created yet, nothing applied, ``fail``); its getData are
  plain reads and its creates sequential creates as above.

Replies are read as Jepsen reads them: an answer is ``ok`` or ``fail`` as
above; CONNECTIONLOSS, SESSIONEXPIRED, any other error and no answer within
:data:`OP_TIMEOUT_S` leave a write unknown (``info``; the client then
continues as a new process of the history, on the same kazoo client, whose
session keeps ZooKeeper's FIFO order). Meanwhile the real nemesis of
:mod:`synod.harness.kv_real` (through :mod:`synod.harness.real`) kills
servers with ``kill -9`` (restarted 1.5 s later), stops them with SIGSTOP
(1.5 s), partitions them in the transport (2 s) and drops 20% of their
messages (2 s), every ~1.5 s, a minority faulty at once.

After the heal (crashed servers restarted, paused ones resumed) the
liveness phase waits until every client completed an operation again.
Then every server is stopped and started over its data directory, and a
client connected to each server alone does sync + getData of every
register (into the history, after every client operation) and sync +
getChildren of ``/seq``. Verdicts:

- ``liveness``: every client made progress after the faults stopped;
- ``linearizability``: cas operations, the bursts' setData, sync reads
  and the final reads, per znode, against the ``cas-register`` model with
  a failed cas read as "not the value expected" (exact, since every value
  is written once).
  An acknowledged setData whose value the final reads neither show nor see
  superseded by a later write has no linearization: the lost write is
  caught here;
- ``sequential``: plain reads (the bursts' too), the cas's reads, sync
  reads and acknowledged writes of each client in issue order, against
  one write order (:func:`~synod.check.sequential.check_sequential`).
  The order is the zxids the servers reported: each acknowledged write's
  ``mzxid`` and the ``mzxid`` in the Stat of every read (the zxid of the
  write that set the value read). Writes nobody saw are missing from it, which can only
  hide a violation, never invent one; one zxid reported with two values is
  itself a violation;
- ``durability``: on every server after the full restart, every
  acknowledged sequential create is there at the path it was given, no
  token appears twice, every child is an acknowledged or unknown create,
  and every server lists the same children;
- ``fifo``: FIFO client order within each burst (Hunt et al. 2.3: "all
  requests from a given client are executed in the order that they were
  sent"): its acknowledged writes (setData, creates) have increasing
  zxids in issue order, its acknowledged creates increasing sequence
  numbers; a getData sees every acknowledged setData of its key issued
  before it in the burst (read-your-writes: a zxid at least the set's) and
  none issued after it. Acknowledged requests only: kazoo fails every
  request sent or queued when a connection drops, and one issued after
  the drop goes out on the next connection, so an unknown request
  followed by an applied one is no violation.

The history's ``write`` is the cas-register model's plain write: a blind
setData replaces whatever value the register holds.

Simplifications: no watches, ephemerals or locks here (the simulated
scenario, :mod:`synod.harness.zk`, checks those); the real runs are not
replayable (their timing is the machine's), the seed fixes the nemesis's
choices and the clients' operations.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, KazooException, NodeExistsError, NoNodeError

from synod.check import CasRegister, ClientOp, OrderedWrite, check_events, check_sequential
from synod.check.sequential import READ, WRITE
from synod.harness.kv_real import REAL_KINDS, real_nemesis
from synod.harness.real import RealRunResult, RealScenario, run_real
from synod.harness.runner import ILLEGAL, OK, UNKNOWN, Verdict
from synod.harness.zk_real import client_ports, ensemble_spec, established_leader, hosts_of
from synod.runtime import LocalCluster, write_config
from synod.workload import HistoryRecorder

__all__ = ["run_zk_real", "BurstOp", "fifo_violations", "reads_after_own_set", "REGISTERS", "SEQ_PATH",
           "BURST_OPS_MIN", "BURST_OPS_MAX", "BURST_KEYS"]

REGISTERS: tuple[str, ...] = tuple(f"/r{i}" for i in range(8))  # enough that each znode's history stays checkable
SEQ_PATH = "/seq"
SESSION_TIMEOUT_S = 3.0      # asked of the servers (granted within 0.2..40 s at tickTime 100 ms)
OP_TIMEOUT_S = 2.0           # no answer by then: the operation's outcome is unknown
START_TIMEOUT_S = 30.0       # a kazoo client's first session, and the ensemble's first leader
FINAL_READ_S = 60.0          # the final reads, per server, after the full restart
CHECK_TIMEOUT_S = 120.0      # the linearizability search's budget
RETRY_S = 0.05               # after an error, before the next operation
THINK_S = 0.002              # between one completion and the next invoke
FINAL_PROCESS = 1_000_000    # history processes of the final reads: FINAL_PROCESS + server index
PROBLEMS_MAX = 20
SEQ_DIGITS = 10              # the sequence number ZooKeeper appends to a sequential znode's name
BURST_OPS_MIN = 5            # requests of one burst, all in flight on one session at once
BURST_OPS_MAX = 20
BURST_KEYS = 2               # registers a burst writes and reads, so its reads follow its writes
BURST_P = 0.1                # a client's step is a burst with this probability
_DEFINITE_FAIL = (BadVersionError, NoNodeError, NodeExistsError)
SET, GET, CREATE = "setData", "getData", "create"
ACKED, FAILED, UNANSWERED = "ok", "fail", "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class BurstOp:
    """One request of a burst, as its client learned its outcome.
    ``kind``: SET, GET or CREATE; ``key``: the register, or the create's
    path as asked (``/seq/<token>``); ``outcome``: ACKED, FAILED (a
    definite refusal, nothing applied) or UNANSWERED; ``value``: the value
    written (SET) or read (GET, None for a missing znode); ``zxid``: the
    mzxid of an acknowledged request's Stat (None for a missing znode);
    ``seq``: an acknowledged create's sequence number."""

    kind: str
    key: str
    outcome: str
    value: str | None = None
    zxid: int | None = None
    seq: int | None = None

    def describe(self, index: int) -> str:
        at = "" if self.zxid is None else f" at zxid {self.zxid:#x}"
        return f"{self.kind} #{index} {self.key}={self.value!r}{at}"


def fifo_violations(label: str, ops: Sequence[BurstOp]) -> list[str]:
    """FIFO client order within one burst (Hunt et al. 2.3; see the module
    doc): ``ops`` in issue order; one line per violation, led by ``label``
    (which client, which burst)."""
    out: list[str] = []
    writes = [(i, op) for i, op in enumerate(ops) if op.kind in (SET, CREATE) and op.outcome == ACKED]
    for (i, a), (j, b) in zip(writes, writes[1:], strict=False):
        assert a.zxid is not None and b.zxid is not None, "an acknowledged write has a zxid"
        if a.zxid >= b.zxid:
            out.append(f"{label}: {b.describe(j)} was applied before {a.describe(i)}, issued before it")
    creates = [(i, op) for i, op in writes if op.kind == CREATE]
    for (i, a), (j, b) in zip(creates, creates[1:], strict=False):
        assert a.seq is not None and b.seq is not None, "an acknowledged create has a sequence number"
        if a.seq >= b.seq:
            out.append(f"{label}: {b.describe(j)} got sequence number {b.seq}, not after {a.seq} of "
                       f"{a.describe(i)}, issued before it")
    for i, read in enumerate(ops):
        if read.kind != GET or read.outcome != ACKED:
            continue
        for j, w in writes:
            if w.kind != SET or w.key != read.key:
                continue
            assert w.zxid is not None, "an acknowledged write has a zxid"
            if j < i and (read.zxid is None or read.zxid < w.zxid or (read.zxid == w.zxid and read.value != w.value)):
                out.append(f"{label}: {read.describe(i)} does not see {w.describe(j)}, issued before it "
                           f"(read-your-writes)")
            if j > i and read.zxid is not None and read.zxid >= w.zxid:
                out.append(f"{label}: {read.describe(i)} sees {w.describe(j)}, issued after it")
    return out


@dataclass(slots=True)
class _Shared:
    """What the clients record, under ``lock``: the linearizability history;
    per client its reads and acknowledged writes in issue order; the write
    order reported by the servers (zxid -> write); sequential creates by
    token (acknowledged: token -> path; unknown); every burst's requests;
    progress since the heal.
    ``clients``: how many client threads; ``stop``: set when they must end."""

    history: HistoryRecorder
    clients: int = 1
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ops: dict[int, list[ClientOp]] = field(default_factory=dict)
    writes: dict[int, OrderedWrite] = field(default_factory=dict)
    order_problems: list[str] = field(default_factory=list)
    acked_creates: dict[str, str] = field(default_factory=dict)
    unknown_creates: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)
    healed: bool = False
    progressed: set[int] = field(default_factory=set)
    bursts: list[tuple[int, list[BurstOp]]] = field(default_factory=list)   # (client, its ops in issue order)

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def observe(self, client: int, kind: str, key: str, value: str | None, zxid: int | None, label: str) -> None:
        """A read (``zxid``: the mzxid of its Stat, None for a missing
        znode) or an acknowledged write (at ``zxid``) by ``client``."""
        with self.lock:
            self.ops.setdefault(client, []).append(ClientOp(kind=kind, key=key, value=value,
                                                            position=zxid if kind == WRITE else None, label=label))
            if zxid is None:
                return
            seen = self.writes.setdefault(zxid, OrderedWrite(position=zxid, key=key, value=value))
            if (seen.key, seen.value) != (key, value) and len(self.order_problems) < PROBLEMS_MAX:
                self.order_problems.append(f"zxid {zxid:#x} reported as {seen.key}={seen.value!r} and as "
                                           f"{key}={value!r} ({label}, c{client + 1})")

    def record(self, process: Hashable, type_: str, f: str, key: str, value: Any) -> None:
        with self.lock:
            self.history.record(process, type_, f, key, value)

    def progress(self, client: int) -> None:
        with self.lock:
            if self.healed:
                self.progressed.add(client)


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")


def _kazoo(hosts: str) -> KazooClient:
    """A kazoo client of ``hosts`` that reconnects quickly and forever (not started)."""
    return KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT_S,
                       connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 1.5, "max_delay": 0.5})


class _Client(threading.Thread):
    """One Jepsen-style client over one kazoo client (see the module doc)."""

    def __init__(self, index: int, hosts: str, shared: _Shared, seed: int) -> None:
        super().__init__(daemon=True, name=f"zk-client-{index}")
        self.index = self.process = index
        self.shared = shared
        self.rng = random.Random(f"zk-real-client:{seed}:{index}")
        self.n = 0   # this client's writes and creates so far: its values and tokens are unique
        self.zk = _kazoo(hosts)
        self.timeout_error = self.zk.handler.timeout_exception

    def run(self) -> None:
        try:
            while not self.shared.stop.is_set():
                self._step()
                time.sleep(THINK_S)
        finally:
            self.zk.stop()
            self.zk.close()

    def _step(self) -> None:
        """A burst with probability :data:`BURST_P`, else one operation:
        cas 40%, sync read 20%, plain read 20%, sequential create 20%."""
        roll = self.rng.random()
        key = REGISTERS[self.rng.randrange(len(REGISTERS))]
        if roll < BURST_P:
            self._burst()
            return
        roll = (roll - BURST_P) / (1.0 - BURST_P)
        if roll < 0.4:
            self._cas(key)
        elif roll < 0.6:
            self._sync_read(key)
        elif roll < 0.8:
            self._plain_read(key)
        else:
            self._create()

    def _unknown(self) -> None:
        """A write's outcome is unknown: later operations are a new process."""
        self.process += self.shared.clients
        time.sleep(RETRY_S)

    def _get(self, key: str) -> tuple[str | None, int, int | None] | None:
        """getData: (value, version, mzxid), a missing znode as (None, -1,
        None); None without an answer. Raises nothing of kazoo's."""
        try:
            data, stat = self.zk.get_async(key).get(timeout=OP_TIMEOUT_S)
        except NoNodeError:
            return None, -1, None
        except (KazooException, self.timeout_error):
            time.sleep(RETRY_S)
            return None
        return _text(data), stat.version, stat.mzxid

    def _read(self, key: str, what: str) -> tuple[str | None, int] | None:
        got = self._get(key)
        if got is None:
            return None
        value, version, zxid = got
        self.shared.observe(self.index, READ, key, value, zxid, f"{what} {key}")
        return value, version

    def _plain_read(self, key: str) -> None:
        if self._read(key, "getData") is not None:
            self.shared.count("plain reads")
            self.shared.progress(self.index)

    def _sync_read(self, key: str) -> None:
        self.shared.record(self.process, "invoke", "read", key, None)
        try:
            self.zk.sync_async(key).get(timeout=OP_TIMEOUT_S)
        except (KazooException, self.timeout_error):
            self.shared.record(self.process, "fail", "read", key, None)   # a read changes nothing
            time.sleep(RETRY_S)
            return
        got = self._read(key, "sync+getData")
        self.shared.record(self.process, "ok" if got is not None else "fail", "read", key,
                           got[0] if got is not None else None)
        if got is not None:
            self.shared.count("sync reads")
            self.shared.progress(self.index)

    def _cas(self, key: str) -> None:
        got = self._read(key, "getData (cas)")
        if got is None:
            return
        old, version = got
        self.n += 1
        new = f"c{self.index + 1}:{self.n}"
        self.shared.record(self.process, "invoke", "cas", key, (old, new))
        try:
            if old is None:
                _, stat = self.zk.create_async(key, new.encode(), include_data=True).get(timeout=OP_TIMEOUT_S)
            else:
                stat = self.zk.set_async(key, new.encode(), version).get(timeout=OP_TIMEOUT_S)
        except _DEFINITE_FAIL:
            self.shared.record(self.process, "fail", "cas", key, (old, new))
            self.shared.count("cas failed")
            self.shared.progress(self.index)
            return
        except (KazooException, self.timeout_error):
            self.shared.record(self.process, "info", "cas", key, (old, new))
            self.shared.count("cas unknown")
            self._unknown()
            return
        self.shared.record(self.process, "ok", "cas", key, (old, new))
        self.shared.observe(self.index, WRITE, key, new, stat.mzxid, f"cas {key} {old}->{new}")
        self.shared.count("cas ok")
        self.shared.progress(self.index)

    def _create(self) -> None:
        self.n += 1
        token = f"c{self.index + 1}-{self.n}-"
        try:
            path = self.zk.create_async(f"{SEQ_PATH}/{token}", b"", sequence=True).get(timeout=OP_TIMEOUT_S)
        except (KazooException, self.timeout_error):
            with self.shared.lock:
                self.shared.unknown_creates.add(token)   # NODEEXISTS cannot be: the name is new
            self.shared.count("creates unknown")
            self._unknown()
            return
        with self.shared.lock:
            self.shared.acked_creates[token] = path
        self.shared.count("creates ok")
        self.shared.progress(self.index)

    def _burst(self) -> None:
        """One burst (module doc): every request sent, then every answer
        collected in issue order, within :data:`OP_TIMEOUT_S` of the last send."""
        keys = self.rng.sample(REGISTERS, BURST_KEYS)
        sent: list[tuple[str, str, str | None, int | None, Any]] = []   # kind, key, value, process, answer
        for _ in range(self.rng.randint(BURST_OPS_MIN, BURST_OPS_MAX)):
            roll, key = self.rng.random(), keys[self.rng.randrange(BURST_KEYS)]
            if roll < 0.4:
                self.n += 1
                new, process = f"c{self.index + 1}:{self.n}", self.process
                self.process += self.shared.clients   # its own process: the burst's writes overlap
                self.shared.record(process, "invoke", "write", key, new)
                sent.append((SET, key, new, process, self.zk.set_async(key, new.encode(), -1)))
            elif roll < 0.7:
                sent.append((GET, key, None, None, self.zk.get_async(key)))
            else:
                self.n += 1
                path = f"{SEQ_PATH}/c{self.index + 1}-{self.n}-"
                sent.append((CREATE, path, None, None,
                             self.zk.create_async(path, b"", sequence=True, include_data=True)))
        deadline = time.monotonic() + OP_TIMEOUT_S
        ops = [self._collect(kind, key, value, process, answer, deadline)
               for kind, key, value, process, answer in sent]
        with self.shared.lock:
            self.shared.bursts.append((self.index, ops))
        self.shared.count("bursts")
        if any(op.outcome == ACKED for op in ops):
            self.shared.progress(self.index)
        if any(op.outcome == UNANSWERED for op in ops):
            time.sleep(RETRY_S)

    def _collect(self, kind: str, key: str, value: str | None, process: int | None, answer: Any,
                 deadline: float) -> BurstOp:
        """The answer to one request of a burst (waiting until ``deadline``,
        monotonic s), recorded; see :meth:`_burst`."""
        try:
            got = answer.get(timeout=max(0.0, deadline - time.monotonic()))
        except _DEFINITE_FAIL as e:
            if kind == GET and isinstance(e, NoNodeError):
                self.shared.observe(self.index, READ, key, None, None, f"getData (burst) {key}")
                self.shared.count("burst reads")
                return BurstOp(kind=kind, key=key, outcome=ACKED)
            if kind == SET:
                self.shared.record(process, "fail", "write", key, value)
                self.shared.count("burst sets failed")
                return BurstOp(kind=kind, key=key, outcome=FAILED, value=value)
            got = e   # a create's name is new, so NODEEXISTS cannot be: unknown, as below
        except (KazooException, self.timeout_error) as e:
            got = e
        if isinstance(got, BaseException):
            if kind == SET:
                self.shared.record(process, "info", "write", key, value)
            elif kind == CREATE:
                with self.shared.lock:
                    self.shared.unknown_creates.add(key[len(SEQ_PATH) + 1:])
            self.shared.count(f"burst {kind} unknown")
            return BurstOp(kind=kind, key=key, outcome=UNANSWERED, value=value)
        if kind == GET:
            data, stat = got
            self.shared.observe(self.index, READ, key, _text(data), stat.mzxid, f"getData (burst) {key}")
            self.shared.count("burst reads")
            return BurstOp(kind=kind, key=key, outcome=ACKED, value=_text(data), zxid=stat.mzxid)
        if kind == SET:
            self.shared.record(process, "ok", "write", key, value)
            self.shared.observe(self.index, WRITE, key, value, got.mzxid, f"setData (burst) {key} {value}")
            self.shared.count("burst sets ok")
            return BurstOp(kind=kind, key=key, outcome=ACKED, value=value, zxid=got.mzxid)
        path, stat = got
        with self.shared.lock:
            self.shared.acked_creates[key[len(SEQ_PATH) + 1:]] = path
        self.shared.count("burst creates ok")
        return BurstOp(kind=kind, key=key, outcome=ACKED, value=path, zxid=stat.mzxid, seq=int(path[-SEQ_DIGITS:]))


def _until(deadline: float, attempt: Any) -> Any:
    """``attempt()`` again until it answers (not None) or ``deadline`` (monotonic s) passes; None then."""
    while time.monotonic() < deadline:
        got = attempt()
        if got is not None:
            return got
        time.sleep(RETRY_S)
    return None


def _synced(zk: KazooClient, call: str, path: str) -> Any:
    """sync, then ``zk.<call>_async(path)``: its answer, (None, None) for a
    missing znode, None without an answer."""
    try:
        zk.sync_async(path).get(timeout=OP_TIMEOUT_S)
        return getattr(zk, f"{call}_async")(path).get(timeout=OP_TIMEOUT_S)
    except NoNodeError:
        return (None, None)
    except (KazooException, zk.handler.timeout_exception):
        return None


def _final_read(port: int, process: int, shared: _Shared) -> list[str] | None:
    """On the server at ``port`` alone (after the full restart): sync +
    getData of every register, recorded in the history as ``process``, and
    sync + getChildren of :data:`SEQ_PATH`: the children (None: no answer
    within :data:`FINAL_READ_S`)."""
    zk = _kazoo(hosts_of([port]))
    deadline = time.monotonic() + FINAL_READ_S
    zk.start_async().wait(FINAL_READ_S)
    try:
        for key in REGISTERS:
            shared.record(process, "invoke", "read", key, None)
            got = _until(deadline, lambda key=key: _synced(zk, "get", key))
            shared.record(process, "ok" if got is not None else "fail", "read", key,
                          None if got is None else _text(got[0]))
        children: list[str] | None = _until(deadline, lambda: _synced(zk, "get_children", SEQ_PATH))
        return children
    finally:
        zk.stop()
        zk.close()


def _durability(children: dict[str, list[str] | None], acked: dict[str, str],
                unknown: set[str]) -> tuple[Verdict, dict[str, list[str]]]:
    """The sequential creates on every server against what the clients were
    told (see the module doc); the verdict and the offending paths/tokens
    (``lost``, ``duplicated``, ``extra``, ``unanswered``, ``disagree``)."""
    bad: dict[str, list[str]] = {"lost": [], "duplicated": [], "extra": [], "unanswered": [], "disagree": []}
    paths = sorted(acked.values())
    bad["duplicated"] += [p for p, q in zip(paths, paths[1:], strict=False) if p == q]   # two acks, one path
    first: set[str] | None = None
    for nid, names in children.items():
        if names is None:
            bad["unanswered"].append(nid)
            continue
        present = {f"{SEQ_PATH}/{name}" for name in names}
        bad["lost"] += [f"{nid}:{p}" for p in paths if p not in present]
        tokens: dict[str, int] = {}
        for name in names:
            tokens[name[:-SEQ_DIGITS]] = tokens.get(name[:-SEQ_DIGITS], 0) + 1
        bad["duplicated"] += [f"{nid}:{t}" for t, n in tokens.items() if n > 1]
        bad["extra"] += [f"{nid}:{t}" for t in tokens if t not in acked and t not in unknown]
        if first is None:
            first = present
        elif present != first:
            bad["disagree"].append(f"{nid}: {len(present ^ first)} children differ from the first server's")
    broken = [f"{k} {v[:3]}" for k, v in bad.items() if v and k != "unanswered"]
    status = ILLEGAL if broken else UNKNOWN if bad["unanswered"] else OK
    summary = ("; ".join(broken) if broken else
               f"{len(acked)} acknowledged sequential creates ({len(unknown)} unknown) on each of "
               f"{len(children) - len(bad['unanswered'])} servers after a restart of every server: none lost, "
               f"none twice, nothing unasked, every server the same"
               + (f"; no answer from {bad['unanswered']}" if bad["unanswered"] else ""))
    return Verdict("durability", status, summary), bad


def _verdicts(shared: _Shared, children: dict[str, list[str] | None], seed: int,
              data: dict[str, Any]) -> list[Verdict]:
    """Linearizability, sequential consistency, durability and FIFO client order (module doc)."""
    model = CasRegister(fail_means_mismatch=True)
    lin = check_events(model, shared.history.events, timeout_s=CHECK_TIMEOUT_S, source=f"real seed {seed}")
    n_ops = sum(1 for e in shared.history.events if e.type == "invoke")
    text = f"{n_ops} cas, write (burst setData) and sync+read operations on {lin.partitions} znodes: {lin.verdict}"
    if lin.verdict == "illegal" and lin.counterexample is not None:
        cex = lin.counterexample
        text += (f"; znode {cex.key}: no linearization past {model.describe(cex.stuck)} (process "
                 f"{cex.stuck.process}, history line {cex.stuck.lines[0]})")
    out = [Verdict("linearizability", {"ok": OK, "illegal": ILLEGAL}.get(lin.verdict, UNKNOWN), text, lin)]
    if shared.order_problems:
        out.append(Verdict("sequential", ILLEGAL, f"write order: {shared.order_problems[0]}"))
    else:
        seq = check_sequential(shared.writes.values(), {f"c{i + 1}": ops for i, ops in shared.ops.items()})
        out.append(Verdict("sequential", OK if seq.ok else ILLEGAL, "; ".join(seq.violations[:2]) if not seq.ok
                           else f"{seq.reads_checked} reads against {len(shared.writes)} writes of known zxid: "
                                f"sequentially consistent, FIFO per client", seq))
    verdict, bad = _durability(children, shared.acked_creates, shared.unknown_creates)
    data.update(children=children, **bad)
    out.append(verdict)
    out.append(_fifo(shared.bursts))
    return out


def _fifo(bursts: list[tuple[int, list[BurstOp]]]) -> Verdict:
    """FIFO client order within every burst (:func:`fifo_violations`)."""
    problems = [p for n, (client, ops) in enumerate(bursts) for p in fifo_violations(f"c{client + 1} burst {n}", ops)]
    if problems:
        return Verdict("fifo", ILLEGAL, f"{len(problems)} violations of FIFO client order, e.g. "
                                        + "; ".join(problems[:3]))
    ops = [op for _, burst in bursts for op in burst]
    acked = sum(1 for op in ops if op.outcome == ACKED)
    return Verdict("fifo", OK, f"{len(bursts)} bursts of {len(ops)} pipelined requests ({acked} answered, "
                               f"{reads_after_own_set(bursts)} reads after an acknowledged setData of their key "
                               "in their burst): writes applied in issue order, reads saw their burst's earlier "
                               "writes and none of its later ones")


def reads_after_own_set(bursts: list[tuple[int, list[BurstOp]]]) -> int:
    """How many answered getData of ``bursts`` follow an acknowledged
    setData of their register in their burst: the read-your-writes checks
    the run really made."""
    n = 0
    for _, ops in bursts:
        written: set[str] = set()
        for op in ops:
            if op.outcome == ACKED and op.kind == GET and op.key in written:
                n += 1
            elif op.outcome == ACKED and op.kind == SET:
                written.add(op.key)
    return n


def _wait_leader(cluster: LocalCluster, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    return _until(deadline, lambda: established_leader(cluster)) is not None


def run_zk_real(seed: int, run_dir: str | Path, *, nodes: int = 3, clients: int = 4, safety_s: float = 12.0,
                liveness_s: float = 20.0, kinds: tuple[str, ...] = REAL_KINDS) -> RealRunResult:
    """One real-process run in ``run_dir`` (created): ``nodes`` servers,
    ``clients`` kazoo clients, ``safety_s`` seconds of faults of ``kinds``
    (:data:`synod.harness.kv_real.REAL_KINDS`), up to ``liveness_s``
    seconds for every client to progress after the heal; see the module
    doc. The result's ``scenario.data`` holds ``history``, ``counts``
    (operations by outcome), ``acked`` and ``unknown`` (sequential creates:
    token -> path, tokens), ``children`` (server -> ``/seq`` children
    after the full restart), ``bursts`` ((client, [:class:`BurstOp`] in
    issue order) per burst) and the durability findings ``lost``,
    ``duplicated``, ``extra``, ``unanswered``, ``disagree``. Verdicts:
    liveness, linearizability, sequential, durability, fifo. Every process
    of the run is stopped on return, whatever happened.

    Raises:
        RuntimeError: no leader established within START_TIMEOUT_S of the start.
        kazoo's timeout error: the set-up client could not connect then.
    """
    _, path = write_config(ensemble_spec(run_dir, nodes))
    cluster = LocalCluster(path)
    try:
        cluster.start()
        if not _wait_leader(cluster, START_TIMEOUT_S):
            raise RuntimeError(f"no leader established within {START_TIMEOUT_S:.0f} s of starting {cluster.node_ids}")
        ports = client_ports(cluster.config)
        setup = _kazoo(hosts_of(ports))
        setup.start(timeout=START_TIMEOUT_S)
        setup.ensure_path(SEQ_PATH)
        setup.stop()
        setup.close()
        t0 = time.monotonic()
        shared = _Shared(HistoryRecorder(lambda: (time.monotonic() - t0) * 1000.0), clients=clients)
        workers = [_Client(i, hosts_of(ports), shared, seed) for i in range(clients)]
        data: dict[str, Any] = {"history": shared.history, "counts": shared.counts,
                                "acked": shared.acked_creates, "unknown": shared.unknown_creates,
                                "bursts": shared.bursts}

        def start_clients() -> None:
            for w in workers:
                w.zk.start_async()
                w.start()

        def after_heal() -> None:
            with shared.lock:
                shared.healed = True

        def stop_clients() -> None:
            shared.stop.set()
            for w in workers:
                w.join(timeout=OP_TIMEOUT_S * 5)

        def check() -> list[Verdict]:
            cluster.stop()
            cluster.start()   # every server again, over its data directory
            _wait_leader(cluster, FINAL_READ_S)
            children = {nid: _final_read(port, FINAL_PROCESS + i, shared) for i, (nid, port) in enumerate(ports.items())}
            return _verdicts(shared, children, seed, data)

        scenario = RealScenario(cluster=cluster, nemesis=real_nemesis(kinds, tuple(cluster.node_ids)),
                                start_clients=start_clients, stop_clients=stop_clients, safety_s=safety_s,
                                liveness_s=liveness_s, liveness_done=lambda: len(shared.progressed) == clients,
                                after_heal=after_heal, check=check, data=data)
        return run_real(seed, scenario)
    finally:
        cluster.stop()
