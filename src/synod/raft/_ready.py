"""What the Raft state machine hands its host after each batch of inputs
(etcd-io/raft's ``Ready``), and the durable state it is rebuilt from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from synod.raft._log import Snapshot
from synod.raft.messages import Entry

__all__ = ["HardState", "SoftState", "ReadState", "Ready", "Recovered"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HardState:
    """State that must be on stable storage before any message that depends
    on it is sent (Figure 2, "persistent state").

    ``repair_term`` and ``repair_index`` (both 0: none) bound from above the
    last entry of a log this server lost to a corrupt disk (protocol-aware
    recovery, Alagappan et al., FAST 2018): the server may have acknowledged
    entries up to there, so until a leader has given it back a log that
    reaches that far it votes only for candidates at least that up to date
    and never campaigns (see ``Raft.repair_bound``)."""

    term: int = 0
    vote: str | None = None
    commit: int = 0
    repair_term: int = 0
    repair_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SoftState:
    """Volatile state worth tracing: the role, term and known leader."""

    role: str
    term: int
    leader: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadState:
    """A linearizable read identified by ``ctx`` may be served once the state
    machine has applied ``index`` (thesis 6.4)."""

    index: int
    ctx: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    """The host must, in this order: persist ``snapshot`` (if any), append
    ``entries`` (the first may overwrite a persisted index: truncate there
    first) and ``hard_state`` (if not None), make them durable, then send
    ``messages``, apply ``snapshot`` if ``apply_snapshot`` and then
    ``committed_entries``, serve ``read_states`` once applied far enough,
    and call ``Raft.advance(ready)``."""

    hard_state: HardState | None
    soft_state: SoftState | None
    entries: tuple[Entry, ...]
    snapshot: Snapshot | None
    apply_snapshot: bool
    committed_entries: tuple[Entry, ...]
    messages: tuple[tuple[str, Any], ...]
    read_states: tuple[ReadState, ...]
    events: tuple[tuple[str, dict[str, Any]], ...] = field(default=())

    @property
    def must_sync(self) -> bool:
        return self.hard_state is not None or bool(self.entries) or self.snapshot is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovered:
    """Durable state read back at start: the hard state, the latest
    snapshot, and the log entries after it, in order."""

    hard_state: HardState = HardState()
    snapshot: Snapshot | None = None
    entries: tuple[Entry, ...] = ()
