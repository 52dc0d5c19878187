"""The simulated network (DESIGN.md section 5): a model per directed link and
partitions over the whole cluster.

Every random choice comes from the simulator's seeded rng, in the order the
sends happen, so a seed reproduces the network exactly.

A link has a latency distribution, loss, duplication, reordering (an extra
delay for some messages), a bandwidth (messages on a link are serialised, the
codec measuring their size) and can be clogged (held until a time, as
FoundationDB's simulator does). Partitions are a set of blocked directed
pairs; the helpers build the usual shapes: symmetric, one-way, isolate-one,
majority/minority and bridge.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from synod.core.codec import encoded_size_bytes
from synod.core.errors import ConfigError

__all__ = [
    "Latency", "Constant", "Uniform", "Exponential", "LongTail", "LinkModel", "Network",
]


class Latency:
    """A one-way latency distribution, in ms."""

    def sample(self, rng: random.Random) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Constant(Latency):
    delay_ms: float = 1.0

    def sample(self, rng: random.Random) -> float:
        return self.delay_ms


@dataclass(frozen=True, slots=True)
class Uniform(Latency):
    low_ms: float = 1.0
    high_ms: float = 10.0

    def __post_init__(self) -> None:
        if not 0 <= self.low_ms <= self.high_ms:
            raise ConfigError(f"uniform latency needs 0 <= low <= high, got {self.low_ms}, {self.high_ms}")

    def sample(self, rng: random.Random) -> float:
        return self.low_ms + (self.high_ms - self.low_ms) * rng.random()


@dataclass(frozen=True, slots=True)
class Exponential(Latency):
    """``base_ms`` plus an exponential tail of mean ``mean_extra_ms``."""

    base_ms: float = 1.0
    mean_extra_ms: float = 5.0

    def sample(self, rng: random.Random) -> float:
        return self.base_ms + rng.expovariate(1.0 / self.mean_extra_ms)


@dataclass(frozen=True, slots=True)
class LongTail(Latency):
    """Mostly uniform; with ``tail_probability`` a Pareto-distributed extra
    delay (shape ``tail_alpha``, scale ``tail_scale_ms``), capped."""

    low_ms: float = 1.0
    high_ms: float = 10.0
    tail_probability: float = 0.01
    tail_scale_ms: float = 100.0
    tail_alpha: float = 1.5
    tail_ms_max: float = 10_000.0

    def sample(self, rng: random.Random) -> float:
        d = self.low_ms + (self.high_ms - self.low_ms) * rng.random()
        if rng.random() < self.tail_probability:
            d += min(self.tail_ms_max, self.tail_scale_ms * rng.paretovariate(self.tail_alpha))
        return d


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkModel:
    """Behaviour of one directed link (or the default for all links).

    Frozen: change a link with ``Network.set_default`` / ``set_link`` and
    ``dataclasses.replace``, so the network sees every change.
    """

    latency: Latency = field(default_factory=Uniform)
    loss_probability: float = 0.0
    duplicate_probability: float = 0.0
    reorder_probability: float = 0.0
    reorder_delay_ms: float = 50.0
    bandwidth_bytes_per_ms: float = math.inf

    def __post_init__(self) -> None:
        for name in ("loss_probability", "duplicate_probability", "reorder_probability"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {v}")
        if self.bandwidth_bytes_per_ms <= 0:
            raise ConfigError("bandwidth_bytes_per_ms must be positive")

    @property
    def plain(self) -> bool:
        """True when only latency matters (the simulator's fast path)."""
        return (
            self.loss_probability == 0.0
            and self.duplicate_probability == 0.0
            and self.reorder_probability == 0.0
            and self.bandwidth_bytes_per_ms == math.inf
        )


class Network:
    """Links and partitions. The simulator asks :meth:`arrivals` for each send.

    ``fast_latency`` is the default latency when nothing else applies (no
    partitions, no per-link models, a plain default link), else None; the
    simulator uses it to skip the general path.
    """

    def __init__(self, default: LinkModel | None = None) -> None:
        self.default = default or LinkModel()
        self._links: dict[tuple[str, str], LinkModel] = {}
        self._blocked: set[tuple[str, str]] = set()
        self._clogged_until: dict[tuple[str, str], float] = {}
        self._busy_until: dict[tuple[str, str], float] = {}
        self.fast_latency: Latency | None = None
        # Called after every change of fast_latency's inputs (the simulator
        # keeps its inlined fast path in step this way).
        self._listeners: list[Callable[[], None]] = []
        self._refresh()

    def add_listener(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` after every configuration change."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    @property
    def blocked(self) -> frozenset[tuple[str, str]]:
        """The directed links (src, dst) a partition cuts (a snapshot; change
        it through the partition methods so the simulator sees the change)."""
        return frozenset(self._blocked)

    def is_blocked(self, src: str, dst: str) -> bool:
        return (src, dst) in self._blocked

    # -- configuration -------------------------------------------------------
    def set_default(self, link: LinkModel) -> None:
        self.default = link
        self._refresh()

    def set_link(self, src: str, dst: str, link: LinkModel | None) -> None:
        """Give the directed link src->dst its own model (None: the default)."""
        if link is None:
            self._links.pop((src, dst), None)
        else:
            self._links[(src, dst)] = link
        self._refresh()

    def clog(self, src: str, dst: str, until_ms: float) -> None:
        """Hold every message on src->dst until virtual time ``until_ms``."""
        self._clogged_until[(src, dst)] = until_ms
        self._refresh()

    # -- partitions ----------------------------------------------------------
    def heal(self) -> None:
        """Remove every partition and clog."""
        self._blocked.clear()
        self._clogged_until.clear()
        self._refresh()

    def block(self, src: str, dst: str) -> None:
        """Drop messages on the directed link src->dst (a one-way cut)."""
        self._blocked.add((src, dst))
        self._refresh()

    def unblock(self, src: str, dst: str) -> None:
        """Undo :meth:`block` for the directed link src->dst."""
        self._blocked.discard((src, dst))
        self._refresh()

    def partition(self, groups: Sequence[Iterable[str]]) -> None:
        """Symmetric partition: nodes in different groups cannot talk."""
        sets = [list(g) for g in groups]
        for i, a in enumerate(sets):
            for j, b in enumerate(sets):
                if i != j:
                    for x in a:
                        for y in b:
                            self._blocked.add((x, y))
        self._refresh()

    def one_way(self, srcs: Iterable[str], dsts: Iterable[str]) -> None:
        """Asymmetric partition: ``srcs`` cannot reach ``dsts``; the reverse works."""
        dst_list = list(dsts)
        for x in srcs:
            for y in dst_list:
                if x != y:
                    self._blocked.add((x, y))
        self._refresh()

    def isolate(self, node: str, nodes: Iterable[str]) -> None:
        """Cut ``node`` off from every other node in ``nodes``."""
        self.partition([[node], [n for n in nodes if n != node]])

    def majority_minority(self, nodes: Sequence[str], rng: random.Random) -> tuple[list[str], list[str]]:
        """Split ``nodes`` at random into a majority and a minority side."""
        shuffled = sorted(nodes)
        rng.shuffle(shuffled)
        cut = len(shuffled) // 2 + 1
        major, minor = sorted(shuffled[:cut]), sorted(shuffled[cut:])
        self.partition([major, minor])
        return major, minor

    def bridge(self, nodes: Sequence[str], rng: random.Random) -> tuple[list[str], str, list[str]]:
        """Two halves that cannot talk to each other, and one bridge node that
        talks to both (Jepsen's bridge)."""
        shuffled = sorted(nodes)
        rng.shuffle(shuffled)
        mid = len(shuffled) // 2
        bridge = shuffled[mid]
        left, right = sorted(shuffled[:mid]), sorted(shuffled[mid + 1 :])
        for x in left:
            for y in right:
                self._blocked.add((x, y))
                self._blocked.add((y, x))
        self._refresh()
        return left, bridge, right

    # -- per send --------------------------------------------------------------
    def arrivals(self, now_ms: float, src: str, dst: str, msg: Any, rng: random.Random) -> list[float]:
        """Virtual arrival times of one send: [] if dropped, two if duplicated."""
        if (src, dst) in self._blocked:
            return []
        link = self._links.get((src, dst), self.default)
        if link.loss_probability and rng.random() < link.loss_probability:
            return []
        start = now_ms
        clog = self._clogged_until.get((src, dst))
        if clog is not None:
            if clog > start:
                start = clog
            else:
                # An expired clog: forget it so the fast path can come back.
                del self._clogged_until[(src, dst)]
                self._refresh()
        if link.bandwidth_bytes_per_ms != math.inf:
            key = (src, dst)
            start = max(start, self._busy_until.get(key, 0.0))
            start += encoded_size_bytes(msg) / link.bandwidth_bytes_per_ms
            self._busy_until[key] = start
        t = start + link.latency.sample(rng)
        if link.reorder_probability and rng.random() < link.reorder_probability:
            t += link.reorder_delay_ms * rng.random()
        out = [t]
        if link.duplicate_probability and rng.random() < link.duplicate_probability:
            out.append(start + link.latency.sample(rng))
        return out

    def _refresh(self) -> None:
        simple = not self._blocked and not self._links and not self._clogged_until and self.default.plain
        self.fast_latency = self.default.latency if simple else None
        for fn in self._listeners:
            fn()
