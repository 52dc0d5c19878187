"""VMware FT in the simulator (issue 15 section 3): a primary/backup pair
running one of synod's RV32IM programs under faults, a console client
feeding it input and reading its output, and checkers of the paper's
guarantees (Scales et al. 2010, sections 2.2-2.3).

Nodes: replicas ``p1`` (starts the program) and ``p2`` (joins as its
backup), the shared storage ``storage`` and the console client ``console``
(both never faulted: the paper's shared storage is itself redundant, and
the client is the outside world). The client sends its input in chunks
every ``input_interval_ms`` to whichever replica is live (console bytes
ending with EOF; for ``netecho`` packets ending with an empty one), sends
again what is not acknowledged, acknowledges the outputs it has, and
records every output it receives (from whom, its index, its bytes). The
timer interrupts ``ticks`` needs come every 10 ms of the primary's clock;
``disk`` runs on a 512 KiB disk image.

Faults, one at a time (the paper tolerates one failure until redundancy
is restored): a fault driver of its own (the runner's ``tester``) waits
until the pair is whole (a primary with a backup), then, after a random
pause, does one of: crash the primary or the backup (a SIGKILL: the
replica's machine is gone; it restarts after ``restart_delay_ms`` as a
new backup, FT VMotion's role), partition the logging channel, pause one
replica for longer than the failure timeout, or make the channel lossy,
duplicating and slow for a while. A replica that lost the test-and-set
halts (its process exits); the driver restarts it (a new backup, as
VMware's would start one elsewhere). ``faults`` counts each kind.

Checkers:

- ``outputs-consistent``: every output the client saw under one index
  has the same bytes every time (a copy after a failover is allowed; a
  different output under one index is an output the backup could not
  reproduce: the output rule broken).
- ``outputs-complete``: the client saw every index from 0 to the exit's,
  and every input was acknowledged (nothing lost).
- ``reference`` (programs whose output depends on the input only: echo,
  primes, spew, netecho): the console bytes and packets, in index order,
  and the exit code equal those of the same program run alone, without
  faults, on the same input.
- ``one-live-primary``: output released with no backup's acknowledgement
  comes only from the test-and-set's winner of that generation, and only
  before the next generation is won (the test-and-set held: never two
  live primaries).
- ``state-hashes``: every state hash a backup compared with its primary's
  at the same instruction count matched, and no backup diverged.

Unsafe options (:data:`synod.ft.node.UNSAFE_OPTIONS`):
``release-output-early`` (outputs leave before the backup has the log:
with ``reads``, whose lines depend on when input arrived,
``outputs-consistent`` catches a failover that lost the input, or
``outputs-complete`` an acknowledged input lost with it) and
``skip-test-and-set`` (``one-live-primary`` catches two replicas live
after a partition).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, NamedTuple

from synod.core import Context, Node
from synod.ft.machine import ConsoleInput, ConsoleOutput, Machine, NetworkOutput, NetworkPacket, StopReason
from synod.ft.messages import Attach, ConsoleIn, InputAck, NotPrimary, Output, OutputAck, WhoIsPrimary
from synod.ft.node import UNSAFE_OPTIONS, FtConfig, FtNode, StorageNode
from synod.ft.programs import PROGRAMS, disk_image, program_image
from synod.harness.runner import ILLEGAL, OK, RunResult, Scenario, Verdict, run_simulated
from synod.sim import LinkModel, Simulator, Tracer, Uniform

__all__ = ["FtConsole", "FtScenario", "run_ft", "replay_command", "reference_run", "Reference", "FAULT_KINDS",
           "INPUT_SENSITIVE", "NET_PROGRAMS"]

REPLICAS = ("p1", "p2")
FAULT_KINDS = ("crash-primary", "crash-backup", "partition", "pause", "link")
INPUT_SENSITIVE = ("reads", "disk", "ticks")   # output depends on when input came: no reference run to compare
NET_PROGRAMS = ("netecho",)                     # their input is network packets, not console bytes
TIMER_PROGRAMS = {"ticks": 10.0}                # program -> the timer interrupt's interval, ms
RESEND_INTERVAL_MS = 100.0
CHUNK_BYTES = 24
DISK_SECTORS = 1024   # the disk program's image: 128 reads of 8 sectors


def input_chunks(rng: random.Random, count: int) -> list[bytes]:
    """``count`` chunks of lower-case words, each at most CHUNK_BYTES."""
    words = ("alpha", "bravo", "delta", "echo", "lima", "oscar", "tango", "zulu")
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 3))).encode()[:CHUNK_BYTES] + b"\n"
            for _ in range(count)]


class Reference(NamedTuple):
    """What a program does alone, without faults: its console bytes, its exit code, its packets."""

    console: bytes
    exit_code: int | None
    packets: tuple[bytes, ...]


def reference_run(program: str, chunks: list[bytes]) -> Reference:
    """The program alone, no faults, all input at once (console bytes then
    EOF; for a network program each chunk a packet, then an empty one)."""
    m = Machine.from_elf(program_image(program))
    if program in NET_PROGRAMS:
        for chunk in [*chunks, b""]:
            m.deliver(NetworkPacket(data=chunk))
    else:
        m.deliver(ConsoleInput(data=b"".join(chunks), eof=True))
    out = bytearray()
    packets: list[bytes] = []
    while True:
        stop = m.run(10_000_000)
        for o in m.take_outputs():
            if isinstance(o, ConsoleOutput):
                out += o.data
            elif isinstance(o, NetworkOutput):
                packets.append(o.data)
        if stop in (StopReason.EXITED, StopReason.FAULTED) or m.instret > 2_000_000_000:
            return Reference(bytes(out), m.exit_code, tuple(packets))


class FtConsole(Node):
    """The outside world: input in, output out (see the module docstring)."""

    def __init__(self, chunks: list[bytes], input_interval_ms: float, *, net: bool = False) -> None:
        self.chunks = chunks
        self.input_interval_ms = input_interval_ms
        self.net = net                                # the chunks are packets (the last one empty)
        self.seen: list[tuple[str, Output]] = []     # (replica, output) in arrival order
        self.by_index: dict[int, Output] = {}
        self.acked = 0                                # inputs acknowledged
        self.sent = 0                                 # inputs sent at least once
        self.primary = REPLICAS[0]
        self.attached = False

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("input", self.input_interval_ms)
        ctx.set_timer("resend", RESEND_INTERVAL_MS)

    @property
    def done(self) -> bool:
        """The exit seen, every input acknowledged."""
        return self.acked >= len(self.chunks) + 1 and any(o.kind == "exit" for o in self.by_index.values())

    def _input(self, seq: int) -> ConsoleIn:
        if seq <= len(self.chunks):
            return ConsoleIn(input_seq=seq, data=self.chunks[seq - 1], net=self.net)
        return ConsoleIn(input_seq=seq, data=b"", eof=not self.net, net=self.net)

    def on_timer(self, ctx: Context, name: Any) -> None:
        if name == "input":
            if self.sent <= len(self.chunks):
                self.sent += 1
                ctx.send(self.primary, self._input(self.sent))
                ctx.set_timer("input", self.input_interval_ms)
        elif name == "resend":
            for seq in range(self.acked + 1, min(self.sent, self.acked + 16) + 1):
                ctx.send(self.primary, self._input(seq))
            if self.acked < self.sent or not self.done:
                for r in REPLICAS:   # who is live? (the answer re-attaches)
                    ctx.send(r, WhoIsPrimary())
            ctx.set_timer("resend", RESEND_INTERVAL_MS)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if isinstance(msg, Output):
            self.seen.append((src, msg))
            self.by_index.setdefault(msg.index, msg)
        elif isinstance(msg, InputAck):
            self.acked = max(self.acked, msg.input_seq)
        elif isinstance(msg, NotPrimary) and msg.holder == src:
            contiguous = 0
            while contiguous in self.by_index:
                contiguous += 1
            if self.primary != src or not self.attached:   # (a new live replica: what did I miss?)
                self.primary, self.attached = src, True
                ctx.send(src, Attach(from_index=contiguous))
            else:
                ctx.send(src, OutputAck(index=contiguous))


class _Recorder(Tracer):
    """Keeps the replicas' trace events the checkers read, passing every
    event on to ``inner`` (the run's own tracer, if any)."""

    def __init__(self, inner: Tracer | None) -> None:
        super().__init__()
        self.inner = inner
        self.emitted: list[tuple[float, str, int, int]] = []   # (t, node, generation, index): released alone
        self.tas: list[tuple[float, int, str]] = []           # (t, generation, holder): test-and-sets won
        self.checks = 0
        self.mismatches: list[tuple[str, int]] = []
        self.diverged: list[tuple[str, str]] = []

    def emit(self, t_ms: float, node: str, kind: str, fields: dict[str, Any]) -> None:
        self.count += 1
        if kind == "ft_output" and fields["alone"]:
            self.emitted.append((t_ms, node, fields["generation"], fields["index"]))
        elif kind == "ft_tas":
            self.tas.append((t_ms, fields["generation"], fields["holder"]))
        elif kind == "ft_state_check":
            self.checks += 1
            if not fields["match"]:
                self.mismatches.append((node, fields["instret"]))
        elif kind == "ft_diverged":
            self.diverged.append((node, fields["error"]))
        if self.inner is not None:
            self.inner.emit(t_ms, node, kind, fields)


class FtScenario:
    """The builder of one run (see the module docstring): called with the
    simulator, it returns the :class:`Scenario`; ``faults`` is then the
    run's fault driver (its ``counts`` by kind).

    Raises:
        ValueError: an unknown program, fault kind or unsafe option.
    """

    def __init__(self, *, program: str = "echo", inputs: int = 60, input_interval_ms: float = 20.0,
                 kinds: tuple[str, ...] = FAULT_KINDS, fault_gap_ms: tuple[float, float] = (50.0, 400.0),
                 restart_delay_ms: float = 100.0, safety_ms: float = 4_000.0, liveness_ms: float = 20_000.0,
                 slice_instructions: int = 5_000, unsafe: str = "", replay: str = "") -> None:
        if program not in PROGRAMS:
            raise ValueError(f"program: one of {', '.join(PROGRAMS)}")
        if unknown := set(kinds) - set(FAULT_KINDS):
            raise ValueError(f"fault kinds: {', '.join(sorted(unknown))} unknown; one of {', '.join(FAULT_KINDS)}")
        if unsafe and unsafe not in UNSAFE_OPTIONS:
            raise ValueError(f"unsafe: one of {', '.join(UNSAFE_OPTIONS)}")
        self.program, self.inputs, self.input_interval_ms = program, inputs, input_interval_ms
        self.kinds, self.fault_gap_ms = kinds, fault_gap_ms
        self.restart_delay_ms, self.safety_ms, self.liveness_ms = restart_delay_ms, safety_ms, liveness_ms
        self.slice_instructions, self.unsafe, self.replay = slice_instructions, unsafe, replay
        self.image = program_image(program)
        self.faults: _FaultDriver | None = None

    def _replica(self, nid: str) -> Callable[[], Node]:
        peer = REPLICAS[1] if nid == REPLICAS[0] else REPLICAS[0]
        config = FtConfig(peer=peer, first=nid == REPLICAS[0], console_client="console",
                          slice_instructions=self.slice_instructions, unsafe=self.unsafe,
                          timer_interval_ms=TIMER_PROGRAMS.get(self.program, 0.0))
        disk = disk_image(DISK_SECTORS) if self.program == "disk" else b""
        return lambda: FtNode(config, self.image, disk)

    def __call__(self, sim: Simulator) -> Scenario:
        rng = random.Random(sim.rng.random())
        chunks = input_chunks(rng, self.inputs)
        recorder = _Recorder(inner=sim.tracer)
        sim.tracer = recorder
        console = FtConsole(chunks, self.input_interval_ms, net=self.program in NET_PROGRAMS)
        faults = self.faults = _FaultDriver(sim, rng, self.kinds, self.fault_gap_ms, self.restart_delay_ms)
        return Scenario(
            servers={nid: self._replica(nid) for nid in REPLICAS},
            clients={"storage": StorageNode, "console": lambda: console},
            tester=faults.step, safety_ms=self.safety_ms, liveness_ms=self.liveness_ms,
            after_heal=faults.heal, liveness_done=lambda: console.done and faults.whole(),
            check=lambda: _check(self.program, chunks, console, recorder), replay=self.replay)


class _FaultDriver:
    """One fault at a time, only while the pair is whole (see the module docstring)."""

    def __init__(self, sim: Simulator, rng: random.Random, kinds: tuple[str, ...],
                 gap_ms: tuple[float, float], restart_delay_ms: float) -> None:
        self.sim, self.rng, self.kinds, self.gap_ms = sim, rng, kinds, gap_ms
        self.restart_delay_ms = restart_delay_ms
        self.counts: dict[str, int] = {}
        self.healed = False
        self.next_ms = rng.uniform(*gap_ms)
        self.busy_until_ms = 0.0
        self.down_until_ms: dict[str, float] = {}   # a crashed replica stays down until then

    def _node(self, nid: str) -> FtNode | None:
        host = self.sim.hosts[nid]
        node = host.node
        return node if host.up and isinstance(node, FtNode) else None

    def whole(self) -> bool:
        roles = sorted((n.role if n is not None else "down") for n in map(self._node, REPLICAS))
        return roles == ["backup", "primary"]

    def heal(self, now_ms: float) -> None:
        self.healed = True

    def step(self, now_ms: float) -> float | None:
        sim = self.sim
        for nid in REPLICAS:   # a replica that lost the test-and-set halted: start a new backup in its place
            if not sim.hosts[nid].up and now_ms >= self.down_until_ms.get(nid, 0.0):
                sim.restart(nid)
        if self.healed:   # (a replica may still halt after the heal: keep restarting until the pair is whole)
            return None if self.whole() else now_ms + 10.0
        if now_ms < self.busy_until_ms:
            return max(self.busy_until_ms, now_ms + 10.0)
        if not self.whole():
            return now_ms + 10.0
        if not self.kinds:
            return None
        if now_ms < self.next_ms:
            return self.next_ms
        self._inject(now_ms)
        self.next_ms = self.busy_until_ms + self.rng.uniform(*self.gap_ms)
        return self.busy_until_ms

    def _inject(self, now_ms: float) -> None:
        sim, rng = self.sim, self.rng
        kind = rng.choice(self.kinds)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        nodes = {n.role: nid for nid in REPLICAS if (n := self._node(nid)) is not None}
        duration = rng.uniform(200.0, 800.0)
        if kind in ("crash-primary", "crash-backup"):
            victim = nodes["primary" if kind == "crash-primary" else "backup"]
            sim.crash(victim)
            self.down_until_ms[victim] = now_ms + self.restart_delay_ms   # (the driver restarts it then)
            duration = self.restart_delay_ms
        elif kind == "partition":   # the logging channel cut both ways; storage and client still reach both
            for a, b in ((REPLICAS[0], REPLICAS[1]), (REPLICAS[1], REPLICAS[0])):
                sim.network.block(a, b)
                sim.call_after(duration, sim.network.unblock, a, b)
        elif kind == "pause":
            victim = rng.choice(REPLICAS)
            sim.pause(victim)
            sim.call_after(duration, sim.resume, victim)
        else:
            link = LinkModel(latency=Uniform(1.0, 40.0), loss_probability=0.2, duplicate_probability=0.1)
            for a, b in ((REPLICAS[0], REPLICAS[1]), (REPLICAS[1], REPLICAS[0])):
                sim.network.set_link(a, b, link)
                sim.call_after(duration, sim.network.set_link, a, b, None)
        self.busy_until_ms = now_ms + duration + 1.0


def _check(program: str, chunks: list[bytes], console: FtConsole, rec: _Recorder) -> list[Verdict]:
    verdicts = []
    differing = sorted({out.index for _, out in console.seen if out != console.by_index[out.index]})
    copies = len(console.seen) - len(console.by_index)
    verdicts.append(Verdict("outputs-consistent", ILLEGAL if differing else OK,
                            f"{len(differing)} indexes seen with different bytes (first {differing[:3]})" if differing
                            else f"{len(console.by_index)} outputs, {copies} copies, each the same"))
    exits = [i for i, o in console.by_index.items() if o.kind == "exit"]
    last = exits[0] if exits else max(console.by_index, default=-1)
    missing = [i for i in range(last + 1) if i not in console.by_index]
    complete = exits and not missing and console.acked >= len(chunks) + 1
    verdicts.append(Verdict("outputs-complete", OK if complete else ILLEGAL,
                            f"outputs 0..{last} seen, exit {'seen' if exits else 'not seen'}, "
                            f"{len(missing)} missing, inputs acknowledged {console.acked}/{len(chunks) + 1}"))
    if program not in INPUT_SENSITIVE:
        want = reference_run(program, chunks)
        ordered = [console.by_index[i] for i in sorted(console.by_index)]
        got = b"".join(o.data for o in ordered if o.kind == "console")
        packets = tuple(o.data for o in ordered if o.kind == "net")
        exit_code = console.by_index[exits[0]].fd if exits else None
        same = (got, exit_code, packets) == (want.console, want.exit_code, want.packets)
        alone = ("as the run without faults" if same else
                 f"the run without faults: {len(want.console)} bytes, {len(want.packets)} packets, exit {want.exit_code}")
        verdicts.append(Verdict("reference", OK if same else ILLEGAL,
                                f"console {len(got)} bytes, {len(packets)} packets, exit {exit_code}: {alone}"))
    verdicts.append(_one_live_primary(rec))
    bad = rec.mismatches or rec.diverged
    verdicts.append(Verdict("state-hashes", ILLEGAL if bad else OK,
                            f"{rec.checks} compared, {len(rec.mismatches)} differed, {len(rec.diverged)} divergences"))
    return verdicts


def _one_live_primary(rec: _Recorder) -> Verdict:
    """A replica releases output with no backup's acknowledgement only as
    the test-and-set's holder of its generation, and only until a later
    generation's holder exists (an older primary may still release what its
    backup acknowledged: the new one holds those outputs and sends them again)."""
    holder = {generation: node for _, generation, node in rec.tas}
    began = {generation: t for t, generation, _ in rec.tas}
    for t, node, generation, index in sorted(rec.emitted):
        if holder.get(generation) != node:
            return Verdict("one-live-primary", ILLEGAL, f"{node} released output {index} alone at {t:.1f} ms in "
                                                          f"generation {generation}, whose holder is {holder.get(generation)}")
        if began.get(generation + 1, float("inf")) <= t:
            return Verdict("one-live-primary", ILLEGAL, f"{node} released output {index} alone at {t:.1f} ms in "
                                                          f"generation {generation}, after generation {generation + 1} began")
    return Verdict("one-live-primary", OK, f"{len(holder)} generations, each won by one replica; "
                                           f"{len(rec.emitted)} outputs released alone, each by its holder in time")


def replay_command(seed: int, *, program: str = "echo", time: str = "4s", nemesis: str = ",".join(FAULT_KINDS),
                   unsafe: str = "", trace: str = "") -> str:
    """The ``synod sim ft`` command that replays one run."""
    cmd = f"synod sim ft --seed {seed} --program {program} --time {time} --nemesis {nemesis or chr(39) * 2}"
    return cmd + (f" --unsafe {unsafe}" if unsafe else "") + (f" --trace {trace}" if trace else "")


def run_ft(seed: int, *, program: str = "echo", time_ms: float = 4_000.0, kinds: tuple[str, ...] = FAULT_KINDS,
           unsafe: str = "", tracer: Tracer | None = None, progress: Callable[[float, float], None] | None = None,
           replay: str | None = None) -> RunResult:
    """One seeded run of :func:`ft_scenario` in the shared fault runner;
    ``result.faults`` counts the fault driver's faults by kind.

    Raises:
        ValueError: an unknown program, fault kind or unsafe option.
    """
    if replay is None:
        replay = replay_command(seed, program=program, time=f"{time_ms / 1000:g}s", nemesis=",".join(kinds),
                                unsafe=unsafe)
    builder = FtScenario(program=program, kinds=kinds, safety_ms=time_ms, unsafe=unsafe, replay=replay)
    result = run_simulated(seed, builder, tracer=tracer, progress=progress)
    result.faults = dict(builder.faults.counts) if builder.faults is not None else {}
    return result
