"""The data path's state on a chunkserver (Ghemawat et al., SOSP 2003,
sections 3.1-3.3).

Data flow is decoupled from control flow (3.2): a client pushes its data
to every replica, along a chain, and each chunkserver keeps it in an LRU
buffer keyed by a data id until a write uses it or it ages out
(:class:`PushBuffer`). Only then does the client ask the primary to write:
the primary numbers the mutations of a chunk and has every replica apply
them in that order (3.1; the chunkserver node pipelines them, each
reaching a secondary behind the one numbered before it).

Record append (3.3): the primary picks the offset. If the record does not
fit in what is left of the chunk, the chunk is padded to its full size on
every replica and the client retries on the next chunk
(:func:`plan_record_append`); a record is at most a quarter of a chunk so
padding stays bounded.

Pure state; the chunkserver node feeds it messages and its clock's time.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from synod.core.errors import LocalProtocolError
from synod.gfs.constants import PUSH_BUFFER_AGE_MS_MAX, PUSH_BUFFER_BYTES_MAX, RECORD_APPEND_FRACTION_MAX

__all__ = ["PushBuffer", "AppendPlan", "plan_record_append"]


class PushBuffer:
    """Pushed data by data id, least recently used first, within
    ``bytes_max`` (the oldest dropped to make room) and ``age_ms_max``."""

    def __init__(self, bytes_max: int = PUSH_BUFFER_BYTES_MAX, age_ms_max: int = PUSH_BUFFER_AGE_MS_MAX) -> None:
        self.bytes_max = bytes_max
        self.age_ms_max = age_ms_max
        self._items: OrderedDict[tuple[str, int], tuple[bytes, int]] = OrderedDict()
        self.bytes = 0   # Invariant: the sum of the lengths held, <= bytes_max

    def __len__(self) -> int:
        return len(self._items)

    def put(self, data_id: tuple[str, int], data: bytes, now_ms: int) -> bool:
        """Hold ``data`` (a client's id and its number for it). False if it is
        larger than the whole buffer (the client must push smaller parts)."""
        if len(data) > self.bytes_max:
            return False
        self.pop(data_id)
        while self.bytes + len(data) > self.bytes_max:
            _, (old, _) = self._items.popitem(last=False)
            self.bytes -= len(old)
        self._items[data_id] = (data, now_ms)
        self.bytes += len(data)
        return True

    def get(self, data_id: tuple[str, int]) -> bytes | None:
        item = self._items.get(data_id)
        if item is None:
            return None
        self._items.move_to_end(data_id)
        return item[0]

    def pop(self, data_id: tuple[str, int]) -> bytes | None:
        item = self._items.pop(data_id, None)
        if item is None:
            return None
        self.bytes -= len(item[0])
        return item[0]

    def age_out(self, now_ms: int) -> int:
        """Drop what was pushed more than ``age_ms_max`` ago; how many."""
        old = [k for k, (_, at) in self._items.items() if now_ms - at > self.age_ms_max]
        for k in old:
            self.pop(k)
        return len(old)


@dataclass(frozen=True, slots=True)
class AppendPlan:
    """Where a record append goes: at ``offset`` of this chunk, or (``pad``)
    pad the chunk to its end and retry on the next one."""

    offset: int
    pad: bool


def plan_record_append(chunk_size_bytes: int, size_bytes: int, record_bytes: int) -> AppendPlan:
    """The primary's choice for a record of ``record_bytes`` on a chunk
    holding ``size_bytes`` (3.3).

    Raises:
        LocalProtocolError: the record is empty or over a quarter of a chunk.
    """
    if not 0 < record_bytes <= chunk_size_bytes // RECORD_APPEND_FRACTION_MAX:
        raise LocalProtocolError(f"a record of {record_bytes} bytes (at most a quarter of a chunk)")
    if size_bytes + record_bytes > chunk_size_bytes:
        return AppendPlan(offset=size_bytes, pad=True)
    return AppendPlan(offset=size_bytes, pad=False)
