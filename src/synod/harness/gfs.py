"""GFS under faults (issue 13 section 4; Ghemawat et al., SOSP 2003,
section 2.7), as a scenario of the shared fault runner
(:mod:`synod.harness.runner`).

The cell: a master ``master``, shadow masters ``shadow1..``, chunkservers
``cs1..`` spread over ``racks`` racks, chunks of ``chunk_size_bytes`` (256
KiB: small, so files span several chunks), leases of ``lease_ms``, three
replicas per chunk. The clients:

- writers ``w1..``: writer ``i`` owns region ``i`` of ``/data/regions``
  (``REGION_BYTES``, all inside one chunk) and overwrites it again and
  again with data that names the write (``pattern(writer, seq)``);
- appenders ``a1..``: record appends of self-describing records of 1-8
  KiB to ``/data/log``;
- readers ``r1..``: read random regions.

Faults (``kinds``): ``kill`` crashes chunkservers, the master and shadows
(restarted 400 ms later from their disks); ``partition``; ``loss``
(message loss and duplication); ``corrupt`` (a bit of a synced file of a
crashed node flips: chunk data, chunk records, the operation log; the
next one only once every chunk is back at three verified replicas, the
paper's assumption that GFS reacts before all replicas are lost); and on
every chunkserver's disk throughout: reads corrupted now and then, torn
appends at crashes, slow syncs.

Phases: faults for ``time_ms``; heal; each writer and appender makes one
more write or append, which must succeed, and every chunk must be back at
three up-to-date replicas (liveness); then the checkers (section 2.7):

- ``reads``: every read returned exactly one write's data (or the region's
  initial zeros): a checksum failure never reaches a client, and no read
  returns what was written before the last write acknowledged before the
  reader asked the master where the chunk is (no stale replica is read
  after a version bump; 2.7.1 allows staleness only through a location
  the client cached, and 5.1.3 through a shadow master's, which lags);
- ``regions``: on every replica, each region holds its last write when
  that write was acknowledged (defined; nothing acknowledged lost while a
  replica survives);
- ``appends``: every acknowledged record append is on every replica of its
  chunk, whole, at the offset the client was given;
- ``replication``: every chunk at its goal of up-to-date replicas, all
  holding the same bytes where the checkers look.

The unsafe options (``unsafe``) are the issue's: ``skip-version-bump`` (a
new lease keeps the version, so a replica that missed mutations while
down looks current: ``reads``, ``regions`` or ``appends`` catch it) and
``skip-checksums`` (chunkservers serve reads unverified: ``reads``
catches the flipped bits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from synod.core import Context, Node
from synod.core.errors import ConfigError
from synod.gfs._chunk_store import ChunkCorrupt
from synod.gfs._namespace import Status
from synod.gfs.chunkserver import ChunkserverConfig, ChunkserverNode
from synod.gfs.client import GfsClient, GfsError
from synod.gfs.master import MasterConfig, MasterNode
from synod.harness.runner import ILLEGAL, OK, RunResult, Scenario, Verdict, run_simulated
from synod.sim import DiskFaults, LinkModel, Network, Simulator, Tracer, Uniform
from synod.sim.nemesis import chaos_nemesis

__all__ = ["GFS_NEMESIS_KINDS", "UNSAFE_OPTIONS", "GfsHistory", "gfs_scenario", "run_gfs", "replay_command", "pattern",
           "record_bytes", "GfsCell", "file_bytes", "files_in"]

GFS_NEMESIS_KINDS: tuple[str, ...] = ("kill", "partition", "loss", "corrupt")
MASTER = "master"
REGIONS_FILE = "/data/regions"
LOG_FILE = "/data/log"
REGION_BYTES = 16 * 1024
START_MS = 1_000.0             # clients start once chunkservers have reported
LIVENESS_CHECK_MS = 50.0       # how often the liveness phase looks at every replica


def pattern(writer: str, seq: int, size: int = REGION_BYTES) -> bytes:
    """The data of ``writer``'s write number ``seq``: it names itself."""
    head = f"<{writer}:{seq}>".encode()
    return (head * (size // len(head) + 1))[:size]


def record_bytes(appender: str, seq: int, size: int) -> bytes:
    """A record append's data: it names itself and its length."""
    head = f"[{appender}:{seq}:{size}]".encode()
    return (head * (size // len(head) + 1))[:size]


@dataclass(slots=True)
class Op:
    """One client operation: ``kind`` write | read | append; ``ok`` None
    while it runs, then True or False (indeterminate: it may have applied)."""

    kind: str
    client: str
    seq: int
    region: int
    start_ms: float
    end_ms: float = 0.0
    ok: bool | None = None
    data: bytes = b""
    offset: int = -1
    located_at_ms: float = 0.0
    located_by: str = ""      # the master, or a shadow (whose metadata may lag: 5.1.3)


@dataclass(slots=True)
class GfsHistory:
    ops: list[Op] = field(default_factory=list)
    stop: bool = False                       # set after the heal: one last op each, then stop
    done: set[str] = field(default_factory=set)
    final_ok: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True, kw_only=True)
class GfsCell:
    """The cell's shape and timings (virtual ms)."""

    chunkservers: int = 5
    shadows: int = 2
    racks: int = 2
    chunk_size_bytes: int = 256 * 1024
    lease_ms: int = 2_000
    heartbeat_ms: int = 200
    tick_ms: int = 200
    chunkserver_timeout_ms: int = 1_500
    rpc_timeout_ms: int = 300
    unsafe_skip_version_bump: bool = False
    unsafe_skip_checksums: bool = False

    @property
    def masters(self) -> tuple[str, ...]:
        return (MASTER,) + tuple(f"shadow{i}" for i in range(1, self.shadows + 1))

    @property
    def chunkserver_ids(self) -> tuple[str, ...]:
        return tuple(f"cs{i}" for i in range(1, self.chunkservers + 1))

    def master(self, node_id: str) -> MasterNode:
        common = dict(chunk_size_bytes=self.chunk_size_bytes, lease_ms=self.lease_ms, tick_ms=self.tick_ms,
                      chunkserver_timeout_ms=self.chunkserver_timeout_ms, rpc_timeout_ms=self.rpc_timeout_ms,
                      checkpoint_records=200, deleted_retention_ms=5_000)
        if node_id == MASTER:
            return MasterNode(MasterConfig(shadows=self.masters[1:],
                                           unsafe_skip_version_bump=self.unsafe_skip_version_bump, **common))
        return MasterNode(MasterConfig(master=MASTER, **common))

    def chunkserver(self, node_id: str) -> ChunkserverNode:
        n = int(node_id[2:])
        return ChunkserverNode(ChunkserverConfig(
            masters=self.masters, rack=f"rack{n % self.racks}", capacity_bytes=1 << 30,
            chunk_size_bytes=self.chunk_size_bytes, heartbeat_ms=self.heartbeat_ms,
            rpc_timeout_ms=self.rpc_timeout_ms, scrub_interval_ms=100,
            unsafe_skip_checksums=self.unsafe_skip_checksums))

    def servers(self) -> dict[str, Callable[[], Node]]:
        out: dict[str, Callable[[], Node]] = {}
        for m in self.masters:
            out[m] = lambda m=m: self.master(m)
        for c in self.chunkserver_ids:
            out[c] = lambda c=c: self.chunkserver(c)
        return out


class GfsWorkloadNode(Node):
    """A writer, appender or reader of the module docstring."""

    def __init__(self, cell: GfsCell, history: GfsHistory, role: str, index: int, writers: int) -> None:
        self.cell = cell
        self.history = history
        self.role = role
        self.index = index
        self.writers = writers

    async def on_start(self, ctx: Context) -> None:
        h = self.history
        client = GfsClient(self.cell.masters, ctx.node_id, rpc_timeout_ms=self.cell.rpc_timeout_ms, attempts_max=6,
                           retry_for_ms=3 * self.cell.lease_ms, lease_cache_ms=self.cell.lease_ms // 2)
        await ctx.sleep(START_MS + ctx.rng.uniform(0, 100))
        path = LOG_FILE if self.role == "a" else REGIONS_FILE
        while not await self._setup(ctx, client, path):
            await ctx.sleep(100)
        seq = 0
        while True:
            last = h.stop
            seq += 1
            if self.role == "r":
                if last:
                    break
                await self._read(ctx, client, ctx.rng.randrange(self.writers))
            elif self.role == "w":
                ok = await self._write(ctx, client, seq)
                if last and ok:
                    h.final_ok.add(ctx.node_id)
                    break
            else:
                ok = await self._append(ctx, client, seq, ctx.rng.randint(1024, 8192))
                if last and ok:
                    h.final_ok.add(ctx.node_id)
                    break
            await ctx.sleep(ctx.rng.uniform(5, 50))
        h.done.add(ctx.node_id)

    async def _setup(self, ctx: Context, client: GfsClient, path: str) -> bool:
        try:
            await client.mkdirs(ctx, "/data")
            try:
                await client.create(ctx, path)
            except GfsError as e:
                if e.status != Status.EXISTS.name:
                    raise
            return True
        except GfsError:
            return False

    async def _write(self, ctx: Context, client: GfsClient, seq: int) -> bool:
        data = pattern(ctx.node_id, seq)
        op = Op("write", ctx.node_id, seq, self.index, ctx.now_ms, data=data)
        self.history.ops.append(op)
        try:
            await client.write(ctx, REGIONS_FILE, self.index * REGION_BYTES, data)
            op.ok = True
        except GfsError:
            op.ok = False
        op.end_ms = ctx.now_ms
        return op.ok

    async def _append(self, ctx: Context, client: GfsClient, seq: int, size: int) -> bool:
        data = record_bytes(ctx.node_id, seq, size)
        op = Op("append", ctx.node_id, seq, -1, ctx.now_ms, data=data)
        self.history.ops.append(op)
        try:
            op.offset = await client.record_append(ctx, LOG_FILE, data)
            op.ok = True
        except GfsError:
            op.ok = False
        op.end_ms = ctx.now_ms
        return op.ok

    async def _read(self, ctx: Context, client: GfsClient, region: int) -> None:
        op = Op("read", ctx.node_id, 0, region, ctx.now_ms)
        try:
            op.data = await client.read(ctx, REGIONS_FILE, region * REGION_BYTES, REGION_BYTES)
            op.ok = True
            op.located_at_ms, op.located_by = client.located_at_ms, client.located_by
        except GfsError:
            op.ok = False
        op.end_ms = ctx.now_ms
        self.history.ops.append(op)


# -- the checkers ---------------------------------------------------------------------------------------

def _decode_write(data: bytes) -> tuple[str, int] | None:
    """(writer, seq) if ``data`` is exactly one write's pattern."""
    if not data.startswith(b"<"):
        return None
    end = data.find(b">")
    try:
        writer, seq = data[1:end].decode().split(":")
        if pattern(writer, int(seq), len(data)) == data:
            return writer, int(seq)
    except (ValueError, UnicodeDecodeError):
        return None
    return None


def check_reads(history: GfsHistory, writers: int) -> Verdict:
    writes: dict[int, list[Op]] = {}
    for op in history.ops:
        if op.kind == "write":
            writes.setdefault(op.region, []).append(op)
    problems = []
    reads = [op for op in history.ops if op.kind == "read" and op.ok]
    for op in reads:
        mine = writes.get(op.region, [])
        # Through a shadow, the location may be as old as the shadow's log (5.1.3): only the
        # master's answers promise nothing stale.
        acked_before = [w.seq for w in mine if w.ok and w.end_ms < op.located_at_ms] if op.located_by == MASTER else []
        floor = max(acked_before, default=0)
        if len(op.data) > REGION_BYTES:
            problems.append(f"{op.client} read {len(op.data)} bytes of region {op.region} at {op.start_ms:.0f} ms")
        elif op.data == bytes(len(op.data)):   # never written (short: past the file's end)
            if floor:
                problems.append(f"{op.client} read zeros of region {op.region} at {op.start_ms:.0f} ms after "
                                f"write {floor} was acknowledged (stale)")
        else:
            who = _decode_write(op.data)
            if who is None or who[0] != f"w{op.region + 1}":
                problems.append(f"{op.client} read bytes no client wrote from region {op.region} at "
                                f"{op.start_ms:.0f} ms (corruption reached a client)")
            elif who[1] < floor:
                problems.append(f"{op.client} read write {who[1]} of region {op.region} at {op.start_ms:.0f} ms, "
                                f"write {floor} acknowledged before it located the chunk (stale replica)")
            elif not any(w.seq == who[1] and w.start_ms <= op.end_ms for w in mine):
                problems.append(f"{op.client} read write {who[1]} of region {op.region} before it began")
    if problems:
        return Verdict("reads", ILLEGAL, f"{len(problems)} bad reads of {len(reads)}; first: {problems[0]}", problems)
    return Verdict("reads", OK, f"{len(reads)} reads each returned one write's data, none stale")


def _live_master(sim: Simulator) -> MasterNode | None:
    """The master node, if it is up (the checkers read its metadata)."""
    master = sim.hosts[MASTER].node
    return master if isinstance(master, MasterNode) and sim.hosts[MASTER].up else None


def _replicas(sim: Simulator, cell: GfsCell, path: str) -> tuple[list[tuple[int, int, dict[str, Any]]], str]:
    """For each chunk of ``path``: (handle, version, {server: store}) of
    the live chunkservers holding it at the master's version."""
    master = _live_master(sim)
    if master is None:
        return [], "the master is down"
    meta = master.meta.namespace.lookup(path)
    if meta is None:
        return [], f"{path} is missing"
    out = []
    for handle in meta.chunk_handles:
        info = master.meta.chunks.get(handle)
        version = info.confirmed if info is not None else 0
        holders = {}
        for cs in cell.chunkserver_ids:
            node = sim.hosts[cs].node
            if sim.hosts[cs].up and isinstance(node, ChunkserverNode) and node.store is not None:
                chunk = node.store.chunks.get(handle)
                if chunk is not None and chunk.version >= version:
                    try:
                        node.store.read(handle, 0, chunk.size)   # corrupt at rest and not found yet: not a holder
                    except ChunkCorrupt:
                        continue
                    holders[cs] = node.store
        out.append((handle, version, holders))
    return out, ""


def file_bytes(sim: Simulator, cell: GfsCell, path: str) -> bytes | None:
    """The checkers' view of a whole file: each chunk as a live replica at
    the master's version holds it (a chunk before the last padded to the
    chunk size, as a hole reads). None if the master is down, the file is
    missing, or a chunk has no such replica."""
    chunks, why = _replicas(sim, cell, path)
    if why:
        return None
    parts = []
    for i, (handle, _, holders) in enumerate(chunks):
        if not holders:
            return None
        store = holders[min(holders)]
        data = store.read(handle, 0, store.chunks[handle].size)
        parts.append(data if i == len(chunks) - 1 else data.ljust(cell.chunk_size_bytes, b"\0"))
    return b"".join(parts)


def files_in(sim: Simulator, directory: str) -> list[str]:
    """The full paths of the files and directories in ``directory``, as the
    master's namespace has them ([] if the master is down or it is missing)."""
    master = _live_master(sim)
    if master is None:
        return []
    _, names = master.meta.namespace.list(directory)
    return [f"{directory.rstrip('/')}/{name}" for name in names]


def replication_done(sim: Simulator, cell: GfsCell) -> bool:
    for path in (REGIONS_FILE, LOG_FILE):
        chunks, why = _replicas(sim, cell, path)
        if why or any(len(holders) < 3 for _, _, holders in chunks):
            return False
    return True


def check_replicas(sim: Simulator, cell: GfsCell, history: GfsHistory, writers: int) -> list[Verdict]:
    verdicts = []
    regions, why = _replicas(sim, cell, REGIONS_FILE)
    log, why2 = _replicas(sim, cell, LOG_FILE)
    if why or why2:
        return [Verdict("replication", ILLEGAL, why or why2)]
    short = [h for h, _, holders in regions + log if len(holders) < 3]
    verdicts.append(Verdict("replication", ILLEGAL if short else OK,
                            f"chunks below 3 up-to-date replicas: {short}" if short else
                            f"all {len(regions) + len(log)} chunks at 3 up-to-date replicas"))
    cs = cell.chunk_size_bytes
    problems = []
    last: dict[int, Op] = {}
    for op in history.ops:
        if op.kind == "write":
            last[op.region] = op
    for region, op in sorted(last.items()):
        if not op.ok:
            continue
        at = region * REGION_BYTES
        index = at // cs
        if index >= len(regions):
            problems.append(f"region {region}: its chunk {index} is gone")
            continue
        handle, _, holders = regions[index]
        for server, store in holders.items():
            got = store.read(handle, at % cs, REGION_BYTES)
            if got != op.data:
                who = _decode_write(got)
                problems.append(f"region {region} on {server}: holds {who or 'other bytes'}, not the acknowledged "
                                f"write {op.seq}")
    verdicts.append(Verdict("regions", ILLEGAL if problems else OK,
                            f"{len(problems)} regions lost or differ; first: {problems[0]}" if problems else
                            f"{len(last)} regions hold their last acknowledged write on every replica", problems))
    problems = []
    acked = [op for op in history.ops if op.kind == "append" and op.ok]
    for op in acked:
        index, within = divmod(op.offset, cs)
        if within + len(op.data) > cs or index >= len(log):
            problems.append(f"{op.client}'s record {op.seq} at {op.offset}: outside the file's chunks")
            continue
        handle, _, holders = log[index]
        for server, store in holders.items():
            if store.read(handle, within, len(op.data)) != op.data:
                problems.append(f"{op.client}'s record {op.seq} at {op.offset}: not on {server}")
    verdicts.append(Verdict("appends", ILLEGAL if problems else OK,
                            f"{len(problems)} records missing; first: {problems[0]}" if problems else
                            f"{len(acked)} acknowledged records whole at their offsets on every replica", problems))
    return verdicts


# -- the scenario -----------------------------------------------------------------------------------------

def gfs_network() -> Network:
    return Network(LinkModel(latency=Uniform(1.0, 5.0)))


def replay_command(seed: int, *, writers: int = 4, appenders: int = 3, readers: int = 3, time: str = "10s",
                   nemesis: str = ",".join(GFS_NEMESIS_KINDS), unsafe: str = "", trace: str = "") -> str:
    """The ``synod sim gfs`` command that replays one run."""
    cmd = (f"synod sim gfs --seed {seed} --writers {writers} --appenders {appenders} --readers {readers} "
           f"--time {time} --nemesis {nemesis or chr(39) * 2}")
    return cmd + (f" --unsafe {unsafe}" if unsafe else "") + (f" --trace {trace}" if trace else "")


def gfs_scenario(sim: Simulator, *, writers: int = 4, appenders: int = 3, readers: int = 3,
                 time_ms: float = 10_000.0, kinds: tuple[str, ...] = GFS_NEMESIS_KINDS, cell: GfsCell | None = None,
                 history: GfsHistory | None = None, replay: str = "", disk_faults: bool = True) -> Scenario:
    """The scenario of the module docstring (times in virtual ms)."""
    cell = cell or GfsCell()
    if writers * REGION_BYTES > cell.chunk_size_bytes * 4:
        raise ValueError("too many writers for the regions file")
    h = history if history is not None else GfsHistory()
    clients: dict[str, Callable[[], Node]] = {}
    for role, count in (("w", writers), ("a", appenders), ("r", readers)):
        for i in range(count):
            clients[f"{role}{i + 1}"] = lambda role=role, i=i: GfsWorkloadNode(cell, h, role, i, writers)
    servers = cell.servers()
    faults = DiskFaults(torn_append_probability=0.05, read_corruption_probability=0.001, sync_latency_ms=1.0) \
        if disk_faults else None
    # A bit flips on the disk of one crashed node at a time, and the next only once every chunk is
    # back at three verified replicas: section 4.3's "lost only if all its replicas are lost before
    # GFS can react", not before.
    nemesis = chaos_nemesis(kinds, interval_ms=400.0, disk_paths=("chunks/", "oplog", "checkpoint"),
                            disk_repaired=lambda _node: replication_done(sim, cell)) if kinds else None
    if nemesis is not None:
        nemesis.targets = tuple(servers)
        nemesis.faulty_nodes_max = 2

    def after_heal(now_ms: float) -> None:
        h.stop = True

    looked: dict[str, float | bool] = {"at_ms": -1e18, "done": False}

    def liveness_done() -> bool:
        # Called after every event: the replicas (read and verified whole) are looked at once
        # every LIVENESS_CHECK_MS of virtual time, not per event; once done, it stays done.
        if faults is not None:
            faults.read_corruption_probability = 0.0   # the faults have stopped
        if looked["done"] or len(h.done) != len(clients) or sim.now_ms - looked["at_ms"] < LIVENESS_CHECK_MS:
            return bool(looked["done"])
        looked["at_ms"] = sim.now_ms
        looked["done"] = replication_done(sim, cell)
        return bool(looked["done"])

    def check() -> list[Verdict]:
        if faults is not None:
            faults.read_corruption_probability = 0.0   # the checkers read the disks as they are
        missing = sorted(c for c in clients if c[0] in "wa" and c not in h.final_ok)
        out = [check_reads(h, writers)]
        if missing:
            out.append(Verdict("progress", ILLEGAL, f"no successful operation after the heal from {missing}"))
        return out + check_replicas(sim, cell, h, writers)

    return Scenario(servers=servers, clients=clients, nemesis=nemesis,
                    disk_faults={c: faults for c in cell.chunkserver_ids} if faults else {},
                    safety_ms=time_ms, liveness_ms=30_000.0, liveness_done=liveness_done, after_heal=after_heal,
                    check=check, replay=replay, history=h)


UNSAFE_OPTIONS: tuple[str, ...] = ("skip-version-bump", "skip-checksums")


def run_gfs(seed: int, *, tracer: Tracer | None = None, progress: Callable[[float, float], None] | None = None,
            unsafe: str = "", replay: str | None = None, **options: Any) -> RunResult:
    """One seeded run of :func:`gfs_scenario` (``options``: its keyword
    arguments); ``unsafe``: one of ``UNSAFE_OPTIONS`` or ''. The result
    carries the replay command (``replay``, or :func:`replay_command`'s).

    Raises:
        ConfigError: an unknown unsafe option.
    """
    if unsafe and unsafe not in UNSAFE_OPTIONS:
        raise ConfigError(f"unknown unsafe option {unsafe!r}; choose from {', '.join(UNSAFE_OPTIONS)}")
    if replay is None:
        kinds = options.get("kinds", GFS_NEMESIS_KINDS)
        time_ms = options.get("time_ms", 10_000.0)
        replay = replay_command(seed, writers=options.get("writers", 4), appenders=options.get("appenders", 3),
                                readers=options.get("readers", 3), time=f"{time_ms / 1000:g}s",
                                nemesis=",".join(kinds), unsafe=unsafe)
    cell = options.pop("cell", None) or GfsCell(unsafe_skip_version_bump=unsafe == "skip-version-bump",
                                                unsafe_skip_checksums=unsafe == "skip-checksums")
    return run_simulated(seed, lambda sim: gfs_scenario(sim, cell=cell, replay=replay, **options),
                         network=gfs_network(), tracer=tracer, progress=progress)
