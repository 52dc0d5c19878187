"""Shared helpers of the MapReduce tests: the books, job specs, and a seeded
run that names its seed and replay command when it fails."""

from __future__ import annotations

from pathlib import Path

from synod.mapreduce.messages import JobSpec
from synod.mapreduce.reference import output_lines, run_sequential
from synod.mapreduce.simjob import SIM_OUT_DIR


def load_books(files: list[Path]) -> dict[str, bytes]:
    return {str(f): f.read_bytes() for f in files}


def spec(app: str, inputs: dict[str, bytes], *, nreduce: int = 10, **kw) -> JobSpec:
    return JobSpec(app=app, app_args=kw.pop("app_args", {}), inputs=tuple(sorted(inputs)),
                   out_dir=SIM_OUT_DIR, nreduce=nreduce, **kw)


def reference(app: str, inputs: dict[str, bytes], app_args: dict[str, str] | None = None) -> list[str]:
    return run_sequential(app, [(p, inputs[p].decode("utf-8")) for p in sorted(inputs)], app_args)


def lines_of(outputs: dict[str, bytes]) -> list[str]:
    return output_lines(outputs[name] for name in sorted(outputs))


def replay_hint(seed: int, extra: str) -> str:
    return f"seed {seed}; replay: synod mr run --sim --seed {seed} {extra}"
