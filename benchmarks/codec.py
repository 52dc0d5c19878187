"""Codec cost per message: encode and decode, in microseconds, side by side.

Every simulated message is encoded once to measure its size (the bandwidth
model) and every real frame is encoded and decoded, so this cost is paid per
message everywhere. Rows (each built once, outside the timing):

- ``append_entries_empty``: a heartbeat AppendEntries (no entries);
- ``append_entries_4x100B``: an AppendEntries carrying 4 entries of 100 bytes;
- ``request_vote``: a RequestVote;
- ``map_task``: a MapReduce MapTask with its JobSpec and an 8-file split;
- ``frame_append_entries``: the wire path: ``pack_frame`` and
  ``open_envelope`` of the 4-entry AppendEntries (envelope and checks included);
- ``region_2000_keys``: a map-output region, a plain ``dict[str, list[str]]``
  of 2,000 keys (how MapReduce stores intermediate data).

Anchors in the same run, on the same values: ``pickle`` (protocol 5; no
validation, so a floor for "Python objects to bytes") and ``msgpack`` of the
same fields as a plain list (no types, no checks).

Method: each (row, codec) is timed with ``timeit`` for about ``--seconds``,
``--repeats`` times; the median is reported. Prints a table, then as its last
line one JSON object with every figure and the ratio of synod to each anchor.

Usage::

    python benchmarks/codec.py [--seconds S] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import timeit
from collections.abc import Callable
from typing import Any

import msgpack
from rich.console import Console
from rich.table import Table

from synod.core.codec import decode, encode
from synod.mapreduce.messages import JobSpec, MapTask
from synod.raft.messages import AppendEntries, Entry, RequestVote
from synod.runtime.framing import open_envelope, pack_frame

FRAME_MAX = 64 * 1024 * 1024


def _fields(obj: Any) -> list[Any]:
    """The message's field values as a plain nested list (the msgpack anchor)."""
    names = getattr(type(obj), "__struct_fields__", None)
    if names is None:
        names = [f for f in type(obj).__dataclass_fields__]
    out = []
    for n in names:
        v = getattr(obj, n)
        if isinstance(v, tuple):
            v = [_fields(x) if hasattr(type(x), "__struct_fields__") or hasattr(type(x), "__dataclass_fields__")
                 else x for x in v]
        elif hasattr(type(v), "__struct_fields__") or hasattr(type(v), "__dataclass_fields__"):
            v = _fields(v)
        out.append(v)
    return out


def _rows() -> dict[str, Any]:
    entries = tuple(Entry(term=3, index=100 + i, data=bytes(100)) for i in range(4))
    append = AppendEntries(term=3, prev_log_index=99, prev_log_term=3,
                           entries=entries, leader_commit=98)
    job = JobSpec(app="synod.mapreduce.apps.wc", app_args={}, inputs=tuple(f"in/f{i}.txt" for i in range(8)),
                  out_dir="out", nreduce=8, split_size_bytes=1 << 20)
    return {
        "append_entries_empty": AppendEntries(term=3, prev_log_index=99, prev_log_term=3,
                                              entries=(), leader_commit=98),
        "append_entries_4x100B": append,
        "request_vote": RequestVote(term=4, last_log_index=120, last_log_term=3),
        "map_task": MapTask(task_id=7, attempt=1, split=tuple((f"in/f{i}.txt", 0, -1) for i in range(8)),
                            job=job, partition_plan=None),
        "frame_append_entries": append,
        "region_2000_keys": {f"word{i}": ["1"] * (1 + i % 3) for i in range(2000)},
    }


def _timed(fn: Callable[[], Any], seconds: float, repeats: int) -> float:
    """Median microseconds per call of ``fn``."""
    n = 1
    while True:
        t = timeit.timeit(fn, number=n)
        if t >= seconds / 5 or n >= 1 << 22:
            break
        n *= 4
    per = max(1, int(n * seconds / max(t, 1e-9)))
    return statistics.median(timeit.timeit(fn, number=per) / per * 1e6 for _ in range(repeats))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=0.2, help="timing per (row, codec, direction), s")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is reported")
    args = ap.parse_args()

    results: dict[str, dict[str, float]] = {}
    for name, obj in _rows().items():
        if name == "frame_append_entries":
            frame = pack_frame("n1", 5, obj, FRAME_MAX)
            payload = frame[4:]
            synod_enc = lambda obj=obj: pack_frame("n1", 5, obj, FRAME_MAX)  # noqa: E731
            synod_dec = lambda payload=payload: open_envelope(payload, FRAME_MAX)  # noqa: E731
            plain: Any = ["n1", 5, _fields(obj)]
        else:
            data = encode(obj)
            synod_enc = lambda obj=obj: encode(obj)  # noqa: E731
            synod_dec = lambda data=data: decode(data)  # noqa: E731
            plain = obj if isinstance(obj, dict) else _fields(obj)
        pickled = pickle.dumps(obj, protocol=5)
        packed = msgpack.packb(plain, use_bin_type=True)
        results[name] = {
            "synod_encode_us": _timed(synod_enc, args.seconds, args.repeats),
            "synod_decode_us": _timed(synod_dec, args.seconds, args.repeats),
            "pickle_encode_us": _timed(lambda o=obj: pickle.dumps(o, protocol=5), args.seconds, args.repeats),
            "pickle_decode_us": _timed(lambda p=pickled: pickle.loads(p), args.seconds, args.repeats),
            "msgpack_encode_us": _timed(lambda p=plain: msgpack.packb(p, use_bin_type=True), args.seconds, args.repeats),
            "msgpack_decode_us": _timed(lambda p=packed: msgpack.unpackb(p, raw=False), args.seconds, args.repeats),
        }
        r = results[name]
        for anchor in ("pickle", "msgpack"):
            for d in ("encode", "decode"):
                r[f"ratio_{d}_vs_{anchor}"] = r[f"synod_{d}_us"] / r[f"{anchor}_{d}_us"]

    table = Table(title="codec: microseconds per message (median)")
    for col in ("message", "synod enc", "synod dec", "pickle enc", "pickle dec", "msgpack enc", "msgpack dec",
                "enc / msgpack", "dec / msgpack"):
        table.add_column(col, justify="left" if col == "message" else "right")
    for name, r in results.items():
        table.add_row(name, *(f"{r[k]:.2f}" for k in ("synod_encode_us", "synod_decode_us", "pickle_encode_us",
                                                        "pickle_decode_us", "msgpack_encode_us",
                                                        "msgpack_decode_us")),
                      f"{r['ratio_encode_vs_msgpack']:.2f}x", f"{r['ratio_decode_vs_msgpack']:.2f}x")
    Console(width=160).print(table)
    print(json.dumps({k: {m: round(v, 3) for m, v in r.items()} for k, r in results.items()}))


if __name__ == "__main__":
    main()
