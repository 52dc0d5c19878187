"""Scripted Raft interactions in the style of etcd-io/raft's
``interaction_env``: several :class:`~synod.raft.raft.Raft` servers driven
directly (sans-IO) through a deterministic in-memory message router, one
command at a time, each command returning the text of what happened.

The test driver (``tests/raft/_datadriven.py``) reads scripts of these
commands from ``tests/raft/testdata/*.txt`` and compares the text with the
expected block under each command. Nothing here reads a clock: time is
``tick``, randomness comes from the caller (``rng_for(node_id)``, for
example a ``random.Random`` seeded by the id; this package imports no
``random``).

Servers are named ``1`` .. ``N``. Log positions print as ``index@term``;
an entry as ``2@1 "x"`` (a leader's no-op as ``2@1 <no-op>``, a membership
change as ``5@2 conf(voters=1,2,3 learners=4)``).

Commands (positional arguments, then ``key=value`` options):

- ``add-nodes N [pre-vote=true] [check-quorum=true] [election=10]
  [heartbeat=5] [max-entries=256] [snapshot-chunk=16384]
  [unsafe-commit-old-term=false]``: create servers 1..N.
- ``campaign ID``: election timeout now (a pre-vote first if enabled).
- ``tick ID [N]``, ``tick-heartbeat ID``, ``tick-election ID``: N ticks; a
  heartbeat period; enough ticks for the election timeout to fire (a
  leader: one election timeout, which runs its check-quorum).
- ``process-ready ID...``: each server persists its Ready (the storage
  the server recovers from after ``crash``), queues its messages, applies
  committed entries; prints the Ready.
- ``deliver-msgs [ID...]``: deliver the queued messages to these servers
  (default all) in send order; a message across a partition or to a down
  server is dropped (printed as such).
- ``drop-msgs [from=ID] [to=ID]``: drop queued messages matching both.
- ``stabilize``: process-ready and deliver-msgs on every server until
  nothing is left to do.
- ``partition 1 | 2 3``: only servers in one group hear each other;
  ``heal``: one group again.
- ``propose ID VALUE``, ``transfer-leadership from=ID to=ID``,
  ``compact ID INDEX`` (snapshot of the applied state through INDEX).
- ``add-learner ID NEW``, ``promote ID TARGET``, ``remove ID TARGET``:
  leader ID proposes a single-server membership change (thesis 4.1);
  ``add-learner`` first starts server NEW if it does not exist (empty, a
  learner in the configuration it is given: the leader's voters);
  ``conf ID...``: each server's configuration in effect.
- ``crash ID``: the server loses everything not persisted by
  ``process-ready``; ``restart ID``: it recovers from that storage.
- ``raft-state``: role, term, vote, leader and indexes of every server;
  ``log ID``: its snapshot and entries; ``status ID``: a leader's progress.

Every server's applied entries are also checked against every other's: two
different entries applied at one index print a ``SAFETY VIOLATION`` line
(State Machine Safety, Raft section 5.4.3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from synod.core.errors import LocalProtocolError
from synod.raft._confchange import ADD_LEARNER, PROMOTE, REMOVE, ConfChange, ConfState
from synod.raft._log import Snapshot
from synod.raft._ready import HardState, Ready, Recovered
from synod.raft.messages import (
    AppendEntries,
    AppendEntriesReply,
    Entry,
    Heartbeat,
    HeartbeatReply,
    InstallSnapshot,
    InstallSnapshotReply,
    ReadIndexReply,
    ReadIndexRequest,
    RequestVote,
    RequestVoteReply,
    TimeoutNow,
)
from synod.raft.raft import LEADER, Raft, RaftConfig, Rng

__all__ = ["InteractionEnv", "Command", "parse_command"]

STABILIZE_ROUNDS_MAX = 200     # a script that never settles is a bug in the script or in Raft
_BOOL = {"true": True, "false": False}


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One script line: ``name``, positional ``args`` and ``key=value`` ``options``."""

    name: str
    args: tuple[str, ...]
    options: dict[str, str] = field(default_factory=dict)


def parse_command(line: str) -> Command:
    """``"transfer-leadership from=1 to=2"`` -> Command(name, args, options)."""
    words = line.split()
    if not words:
        raise LocalProtocolError("empty command")
    args, options = [], {}
    for w in words[1:]:
        if "=" in w:
            k, _, v = w.partition("=")
            options[k] = v
        else:
            args.append(w)
    return Command(name=words[0], args=tuple(args), options=options)


# -- formatting ------------------------------------------------------------------------

def fmt_entry(e: Entry) -> str:
    if e.conf_change:
        assert e.data is not None
        return f"{e.index}@{e.term} conf({ConfState.decode(e.data).describe()})"
    return f"{e.index}@{e.term} " + ("<no-op>" if e.data is None else f'"{e.data.decode()}"')


def fmt_entries(entries: tuple[Entry, ...] | list[Entry]) -> str:
    return "[" + ", ".join(fmt_entry(e) for e in entries) + "]"


def fmt_msg(src: str, dst: str, m: Any) -> str:
    """One message on one line, etcd style: ``1->2 Vote term=2 log=1@1``."""
    head = f"{src}->{dst}"
    match m:
        case RequestVote():
            kind = "PreVote" if m.pre_vote else "Vote"
            extra = " transfer" if m.transfer else ""
            return f"{head} {kind} term={m.term} log={m.last_log_index}@{m.last_log_term}{extra}"
        case RequestVoteReply():
            kind = "PreVoteResp" if m.pre_vote else "VoteResp"
            return f"{head} {kind} term={m.term} {'granted' if m.vote_granted else 'rejected'}"
        case AppendEntries():
            return (f"{head} App term={m.term} prev={m.prev_log_index}@{m.prev_log_term} "
                    f"commit={m.leader_commit} entries={fmt_entries(m.entries)}")
        case AppendEntriesReply():
            if m.success:
                return f"{head} AppResp term={m.term} match={m.match_index}"
            return (f"{head} AppResp term={m.term} reject prev={m.match_index} "
                    f"hint={m.conflict_index}@{m.conflict_term}")
        case Heartbeat():
            return f"{head} Heartbeat term={m.term} commit={m.commit} read={m.read_seq}"
        case HeartbeatReply():
            return f"{head} HeartbeatResp term={m.term} read={m.read_seq}"
        case InstallSnapshot():
            conf = f" conf({ConfState.decode(m.conf).describe()})" if m.conf else ""
            return (f"{head} Snap term={m.term} snap={m.last_included_index}@{m.last_included_term} "
                    f"offset={m.offset} data={m.data.decode()!r}{' done' if m.done else ''}{conf}")
        case InstallSnapshotReply():
            return (f"{head} SnapResp term={m.term} snap={m.last_included_index} next={m.next_offset}"
                    f"{' done' if m.done else ''}")
        case TimeoutNow():
            return f"{head} TimeoutNow term={m.term}"
        case ReadIndexRequest() | ReadIndexReply():
            return f"{head} {type(m).__name__} term={m.term}"
    raise LocalProtocolError(f"no format for {type(m).__name__}")


# -- the environment ------------------------------------------------------------------

@dataclass(slots=True)
class _Storage:
    """What ``process-ready`` made durable for one server."""

    hard_state: HardState = HardState()
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)


@dataclass(slots=True)
class _StateMachine:
    """Applied values by index (no-ops skipped); snapshot data ``"2=a,3=b"``."""

    values: dict[int, str] = field(default_factory=dict)

    def snapshot(self, index: int) -> bytes:
        return ",".join(f"{i}={v}" for i, v in sorted(self.values.items()) if i <= index).encode()

    def restore(self, data: bytes) -> None:
        self.values = {}
        for item in filter(None, data.decode().split(",")):
            i, _, v = item.partition("=")
            self.values[int(i)] = v


class InteractionEnv:
    """Servers, their storage, the in-flight messages and the partition.
    :meth:`handle` runs one command and returns its output text.
    ``rng_for(node_id)``: a fresh seeded generator for a server (called at
    each start and restart, so a script replays identically)."""

    def __init__(self, rng_for: Callable[[str], Rng]) -> None:
        self.rng_for = rng_for
        self.ids: list[str] = []
        self.config = RaftConfig()
        self.rafts: dict[str, Raft | None] = {}   # None: crashed
        self.storage: dict[str, _Storage] = {}
        self.sms: dict[str, _StateMachine] = {}
        # In flight, in send order: (src, dst, msg).
        self.inflight: list[tuple[str, str, Any]] = []
        self.group_of: dict[str, int] = {}
        # State Machine Safety: the entry first applied at each index.
        self.applied: dict[int, tuple[str, Entry]] = {}
        # The configuration each server was started with: (voters, learners).
        self.initial: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}

    # -- dispatch ------------------------------------------------------------------
    def handle(self, line: str) -> str:
        cmd = parse_command(line)
        fn = getattr(self, "_cmd_" + cmd.name.replace("-", "_"), None)
        if fn is None:
            raise LocalProtocolError(f"unknown command {cmd.name!r}")
        out = fn(cmd)
        return "\n".join(out) if out else "ok"

    def _raft(self, nid: str) -> Raft:
        r = self.rafts.get(nid)
        if r is None:
            raise LocalProtocolError(f"server {nid} is down or does not exist")
        return r

    def _new_raft(self, nid: str, recovered: Recovered | None) -> Raft:
        voters, learners = self.initial[nid]
        return Raft(nid, voters, self.rng_for(nid), self.config, recovered, learners=learners)

    def _start_server(self, nid: str, voters: tuple[str, ...], learners: tuple[str, ...]) -> None:
        self.ids.append(nid)
        self.initial[nid] = (voters, learners)
        self.storage[nid] = _Storage()
        self.sms[nid] = _StateMachine()
        self.rafts[nid] = self._new_raft(nid, None)
        self.group_of[nid] = 0

    # -- setup ---------------------------------------------------------------------
    def _cmd_add_nodes(self, cmd: Command) -> list[str]:
        assert not self.ids, "add-nodes once per script"
        o = cmd.options
        self.config = RaftConfig(
            pre_vote=_BOOL[o.get("pre-vote", "true")],
            check_quorum=_BOOL[o.get("check-quorum", "true")],
            election_ticks=int(o.get("election", 10)),
            heartbeat_ticks=int(o.get("heartbeat", 5)),
            message_entries_max=int(o.get("max-entries", 256)),
            snapshot_chunk_bytes=int(o.get("snapshot-chunk", 16 * 1024)),
            unsafe_commit_old_term=_BOOL[o.get("unsafe-commit-old-term", "false")],
        )
        ids = tuple(str(i) for i in range(1, int(cmd.args[0]) + 1))
        for nid in ids:
            self._start_server(nid, ids, ())
        return [self._state_line(nid) for nid in self.ids]

    # -- time and elections -----------------------------------------------------------
    def _cmd_tick(self, cmd: Command) -> list[str]:
        r = self._raft(cmd.args[0])
        for _ in range(int(cmd.args[1]) if len(cmd.args) > 1 else 1):
            r.tick()
        return []

    def _cmd_tick_heartbeat(self, cmd: Command) -> list[str]:
        r = self._raft(cmd.args[0])
        for _ in range(r.config.heartbeat_ticks):
            r.tick()
        return []

    def _cmd_tick_election(self, cmd: Command) -> list[str]:
        r = self._raft(cmd.args[0])
        if r.role == LEADER:
            n = r.config.election_ticks - r.election_elapsed
        else:
            n = r.randomized_election_ticks - r.election_elapsed
        for _ in range(max(n, 1)):
            r.tick()
        return []

    def _cmd_campaign(self, cmd: Command) -> list[str]:
        self._raft(cmd.args[0]).campaign(transfer=False)
        return []

    # -- client inputs ----------------------------------------------------------------
    def _cmd_propose(self, cmd: Command) -> list[str]:
        r = self._raft(cmd.args[0])
        placed = r.propose(cmd.args[1].encode())
        if placed is not None:
            return [f"index={placed[0]} term={placed[1]}"]
        if r.role != LEADER:
            return [f"refused: {r.role}, leader={r.leader or '-'}"]
        return ["refused: " + ("transferring leadership" if r.transferee is not None else "too many pending")]

    def _cmd_transfer_leadership(self, cmd: Command) -> list[str]:
        ok = self._raft(cmd.options["from"]).transfer_leadership(cmd.options["to"])
        return [] if ok else ["refused"]

    def _conf_change(self, cmd: Command, op: str) -> list[str]:
        r = self._raft(cmd.args[0])
        voters = tuple(sorted(r.conf.voters))
        placed = r.propose_conf_change(ConfChange(op=op, node_id=cmd.args[1]))
        if isinstance(placed, str):
            return [f"refused: {placed}"]
        out = [f"index={placed[0]} term={placed[1]} {r.conf.describe()}"]
        new = cmd.args[1]
        if op == ADD_LEARNER and new not in self.rafts:
            self._start_server(new, voters, (new,))
            out.append(f"started {self._state_line(new)}")
        return out

    def _cmd_add_learner(self, cmd: Command) -> list[str]:
        return self._conf_change(cmd, ADD_LEARNER)

    def _cmd_promote(self, cmd: Command) -> list[str]:
        return self._conf_change(cmd, PROMOTE)

    def _cmd_remove(self, cmd: Command) -> list[str]:
        return self._conf_change(cmd, REMOVE)

    def _cmd_conf(self, cmd: Command) -> list[str]:
        out = []
        for nid in cmd.args or self.ids:
            r = self.rafts.get(nid)
            out.append(f"{nid}: down" if r is None else f"{nid}: {r.conf.describe()} index={r.conf_index}")
        return out

    def _cmd_compact(self, cmd: Command) -> list[str]:
        nid, index = cmd.args[0], int(cmd.args[1])
        self._raft(nid).compact(index, self.sms[nid].snapshot(index))
        return []

    # -- Ready and messages -------------------------------------------------------------
    def _cmd_process_ready(self, cmd: Command) -> list[str]:
        out: list[str] = []
        for nid in cmd.args or self.ids:
            if self.rafts.get(nid) is not None and self.rafts[nid].has_ready():
                out += self._process_ready(nid)
        return out

    def _process_ready(self, nid: str) -> list[str]:
        r = self._raft(nid)
        rd = r.ready()
        out = [f"> {nid} handling Ready"]
        self._persist(nid, r, rd)
        if rd.soft_state is not None:
            s = rd.soft_state
            out.append(f"  state: {s.role} term={s.term} leader={s.leader or '-'}")
        if rd.hard_state is not None:
            h = rd.hard_state
            out.append(f"  hard state: term={h.term} vote={h.vote or '-'} commit={h.commit}")
        if rd.snapshot is not None:
            conf = f" conf({rd.snapshot.conf.describe()})" if rd.snapshot.conf is not None else ""
            out.append(f"  snapshot: {rd.snapshot.index}@{rd.snapshot.term} data={rd.snapshot.data.decode()!r}{conf}")
        if rd.entries:
            out.append(f"  entries: {fmt_entries(rd.entries)}")
        if rd.messages:
            out.append("  messages:")
            out += [f"    {fmt_msg(nid, dst, m)}" for dst, m in rd.messages]
            self.inflight += [(nid, dst, m) for dst, m in rd.messages]
        if rd.snapshot is not None and rd.apply_snapshot:
            self.sms[nid].restore(rd.snapshot.data)
            out.append(f"  applied snapshot {rd.snapshot.index}@{rd.snapshot.term}")
        if rd.committed_entries:
            out.append(f"  committed: {fmt_entries(rd.committed_entries)}")
            out += self._apply(nid, rd.committed_entries)
        for name, fields in rd.events:
            out.append("  event: " + " ".join([name] + [f"{k}={v!r}" for k, v in fields.items()]))
        r.advance(rd)
        return out

    def _persist(self, nid: str, r: Raft, rd: Ready) -> None:
        st = self.storage[nid]
        if rd.snapshot is not None:
            st.snapshot = rd.snapshot
            st.entries = list(r.log.entries)  # the log after the snapshot, whole (as RaftNode does)
        elif rd.entries:
            first = rd.entries[0].index
            st.entries = [e for e in st.entries if e.index < first] + list(rd.entries)
        if rd.hard_state is not None:
            st.hard_state = rd.hard_state

    def _apply(self, nid: str, entries: tuple[Entry, ...]) -> list[str]:
        out = []
        for e in entries:
            if e.data is not None and not e.conf_change:
                self.sms[nid].values[e.index] = e.data.decode()
            first = self.applied.setdefault(e.index, (nid, e))
            if first[1] != e:
                out.append(f"  SAFETY VIOLATION: {nid} applied {fmt_entry(e)}, "
                           f"{first[0]} applied {fmt_entry(first[1])}")
        return out

    def _blocked(self, src: str, dst: str) -> str | None:
        if self.rafts.get(dst) is None:
            return "down"
        if self.group_of[src] != self.group_of[dst]:
            return "partition"
        return None

    def _cmd_deliver_msgs(self, cmd: Command) -> list[str]:
        out: list[str] = []
        for nid in cmd.args or self.ids:
            out += self._deliver(nid)
        return out

    def _deliver(self, dst: str) -> list[str]:
        mine = [x for x in self.inflight if x[1] == dst]
        if not mine:
            return []
        self.inflight = [x for x in self.inflight if x[1] != dst]
        out = [f"> {dst} receiving messages"]
        for src, _, m in mine:
            why = self._blocked(src, dst)
            if why is not None:
                out.append(f"  {fmt_msg(src, dst, m)} DROPPED ({why})")
                continue
            out.append(f"  {fmt_msg(src, dst, m)}")
            self._raft(dst).step(src, m)
        return out

    def _cmd_drop_msgs(self, cmd: Command) -> list[str]:
        src, dst = cmd.options.get("from"), cmd.options.get("to")
        keep, out = [], []
        for x in self.inflight:
            if (src is None or x[0] == src) and (dst is None or x[1] == dst):
                out.append(f"dropped: {fmt_msg(*x)}")
            else:
                keep.append(x)
        self.inflight = keep
        return out

    def _cmd_stabilize(self, cmd: Command) -> list[str]:
        out: list[str] = []
        for _ in range(STABILIZE_ROUNDS_MAX):
            before = len(out)
            out += self._cmd_process_ready(Command(name="process-ready", args=()))
            out += self._cmd_deliver_msgs(Command(name="deliver-msgs", args=()))
            if len(out) == before:
                return out
        raise AssertionError(f"not stable after {STABILIZE_ROUNDS_MAX} rounds")

    # -- faults --------------------------------------------------------------------------
    def _cmd_partition(self, cmd: Command) -> list[str]:
        groups = " ".join(cmd.args).split("|")
        seen = set()
        for g, members in enumerate(groups):
            for nid in members.split():
                assert nid in self.group_of, f"unknown server {nid}"
                assert nid not in seen, f"server {nid} in two groups"
                seen.add(nid)
                self.group_of[nid] = g
        for nid in self.ids:
            if nid not in seen:
                self.group_of[nid] = len(groups)  # unnamed servers: alone together
        return []

    def _cmd_heal(self, cmd: Command) -> list[str]:
        for nid in self.ids:
            self.group_of[nid] = 0
        return []

    def _cmd_crash(self, cmd: Command) -> list[str]:
        nid = cmd.args[0]
        self._raft(nid)
        self.rafts[nid] = None
        self.sms[nid] = _StateMachine()
        return []

    def _cmd_restart(self, cmd: Command) -> list[str]:
        nid = cmd.args[0]
        assert self.rafts[nid] is None, f"server {nid} is running"
        st = self.storage[nid]
        r = self.rafts[nid] = self._new_raft(
            nid, Recovered(hard_state=st.hard_state, snapshot=st.snapshot, entries=tuple(st.entries)))
        if st.snapshot is not None:
            self.sms[nid].restore(st.snapshot.data)
        return [self._state_line(nid), *self._log_lines(r)]

    # -- state --------------------------------------------------------------------------
    def _state_line(self, nid: str) -> str:
        r = self.rafts.get(nid)
        if r is None:
            return f"{nid}: down"
        log = r.log
        return (f"{nid}: {r.role} term={r.term} vote={r.vote or '-'} leader={r.leader or '-'} "
                f"last={log.last_index}@{log.last_term} commit={log.commit_index} applied={log.applied_index}")

    def _cmd_raft_state(self, cmd: Command) -> list[str]:
        return [self._state_line(nid) for nid in self.ids]

    def _log_lines(self, r: Raft) -> list[str]:
        log = r.log
        out = []
        if log.snapshot.index:
            conf = f" conf({log.snapshot.conf.describe()})" if log.snapshot.conf is not None else ""
            out.append(f"snapshot {log.snapshot.index}@{log.snapshot.term} data={log.snapshot.data.decode()!r}{conf}")
        out += [fmt_entry(e) for e in log.entries]
        return out or ["(empty log)"]

    def _cmd_log(self, cmd: Command) -> list[str]:
        nid = cmd.args[0]
        return self._log_lines(self._raft(nid)) + [f"applied values: {self.sms[nid].snapshot(1 << 62).decode()!r}"]

    def _cmd_status(self, cmd: Command) -> list[str]:
        r = self._raft(cmd.args[0])
        if r.role != LEADER:
            return [f"{r.id} is {r.role}, no progress"]
        return [f"{p}: {pr.state} match={pr.match_index} next={pr.next_index}"
                + (f" snapshot={pr.snapshot_index}" if pr.snapshot_index else "")
                + (" learner" if p in r.conf.learners else "")
                for p, pr in sorted(r.progress.items())]
