"""Loading MapReduce applications and the partition function.

An application is a Python module (or ``.py`` file) with::

    map(filename: str, contents: str) -> Iterable[tuple[str, str]]
    reduce(key: str, values: list[str]) -> str
    combine(key: str, values: list[str]) -> str          # optional (paper section 4.3)
    configure(args: dict[str, str]) -> None              # optional: app options
    partition_plan(fs, inputs: list[str], nreduce: int)  # optional, with
    partition(key: str, nreduce: int, plan) -> int       #   a custom partitioner

``map`` and ``reduce`` may instead be ``async def map(filename, contents,
env)`` / ``async def reduce(key, values, env)``: the lab's timing and crash
test apps need to sleep, look at the shared file system and exit, which they
do through ``env`` (a :class:`TaskEnv`), so they stay deterministic in the
simulator.

The default partition is ``partition_hash(key) % R`` (paper section 4.1,
"hash(key) mod R"), the CRC-32 of the UTF-8 key. The lab's ``ihash`` (FNV-1a)
is kept for an app that wants the lab's exact ``mr-out-X`` contents:
``def partition(key, nreduce, plan): return ihash(key) % nreduce``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from synod.core import ConfigError

__all__ = ["App", "TaskEnv", "TaskAborted", "load_app", "partition_hash", "fnv1a_32", "ihash", "BUILTIN_APPS"]

BUILTIN_APPS = (
    "wc", "indexer", "grep", "sort",
    "mtiming", "rtiming", "jobcount", "early_exit", "crash", "nocrash",
)


def fnv1a_32(data: bytes) -> int:
    """32-bit FNV-1a hash (Go's hash/fnv New32a), as the lab's ihash uses."""
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def ihash(key: str) -> int:
    """The lab's ``ihash``: FNV-1a of the UTF-8 key, top bit cleared."""
    return fnv1a_32(key.encode("utf-8")) & 0x7FFFFFFF


def partition_hash(key: str) -> int:
    """The default partitioning hash (paper section 4.1): CRC-32 (zlib) of
    the UTF-8 key, 0 .. 2**32 - 1. The same in every process (Python's own
    ``hash`` of a str is salted per process) and computed in C: the demo's
    job took 0.19 s less CPU with it than with the lab's FNV-1a, a byte at
    a time in Python (docs/mapreduce.md)."""
    return zlib.crc32(key.encode("utf-8"))


class TaskAborted(Exception):
    """Raised inside an app by :meth:`TaskEnv.exit`: the worker stops the task
    and exits (the lab's crash app calls os.Exit mid-task)."""


class TaskEnv:
    """What an ``async`` map or reduce may use besides its arguments.

    Attributes: ``worker_id`` (str), ``task_id`` (int), ``attempt`` (int),
    ``phase`` ("map" or "reduce"), ``out_dir`` (str), ``fs`` (the job's
    fsspec filesystem), ``rng`` (the worker's seeded random.Random).
    """

    def __init__(self, ctx: Any, *, task_id: int, attempt: int, phase: str, out_dir: str) -> None:
        self._ctx = ctx
        self.worker_id: str = ctx.node_id
        self.task_id = task_id
        self.attempt = attempt
        self.phase = phase
        self.out_dir = out_dir
        self.fs = ctx.fs
        self.rng = ctx.rng

    @property
    def now_ms(self) -> float:
        return self._ctx.now_ms

    def sleep(self, delay_ms: float) -> Any:
        """Awaitable: pause this task for ``delay_ms``."""
        return self._ctx.sleep(delay_ms)

    def exit(self, code: int) -> None:
        """Exit the worker now with ``code`` (raises :class:`TaskAborted`)."""
        self._ctx.exit(code)
        raise TaskAborted(f"worker exits with status {code}")


@dataclass(frozen=True, slots=True)
class App:
    """A loaded application; see the module docstring for the contract."""

    name: str
    map: Callable[..., Any]
    map_combined: Callable[[str, str], Any] | None  # map then combine in one pass, if the app has it
    reduce: Callable[..., Any]
    combine: Callable[[str, list[str]], str] | None
    map_is_async: bool
    reduce_is_async: bool
    partition: Callable[[str, int, Any], int] | None
    partition_plan: Callable[[Any, list[str], int], Any] | None


_cache: dict[str, App] = {}
_modules: dict[str, ModuleType] = {}
_configured: dict[str, dict[str, str]] = {}  # app spec -> the options it was last configured with


def _import(spec: str) -> ModuleType:
    if spec in BUILTIN_APPS:
        spec = f"synod.mapreduce.apps.{spec}"
    if spec.endswith(".py"):
        loader_spec = importlib.util.spec_from_file_location(f"synod_user_app_{abs(hash(spec))}", spec)
        if loader_spec is None or loader_spec.loader is None:
            raise ConfigError(f"cannot load app file {spec!r}")
        module = importlib.util.module_from_spec(loader_spec)
        try:
            loader_spec.loader.exec_module(module)
        except FileNotFoundError:
            raise ConfigError(f"app file {spec!r} not found") from None
        return module
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as e:
        raise ConfigError(f"app module {spec!r} not found ({e})") from None


def load_app(spec: str, args: dict[str, str] | None = None) -> App:
    """Load (once per process and args) the app named by ``spec``: a built-in
    name (``wc``), a module path, or a ``.py`` file.

    Raises:
        ConfigError: the module cannot be imported or lacks map/reduce, or its
            ``configure`` rejects ``args``.
    """
    args = dict(args or {})
    app = _cache.get(spec)
    if app is not None and _configured.get(spec) == args:
        return app
    module = _modules.get(spec)
    if module is None:
        module = _modules[spec] = _import(spec)
    for fn in ("map", "reduce"):
        if not callable(getattr(module, fn, None)):
            raise ConfigError(f"app {spec!r} has no {fn}() function")
    configure = getattr(module, "configure", None)
    if callable(configure):
        try:
            configure(dict(args))
        except (KeyError, ValueError) as e:
            raise ConfigError(f"app {spec!r}: bad options {args!r}: {e}") from None
    elif args:
        raise ConfigError(f"app {spec!r} takes no options, got {sorted(args)}")
    partition = getattr(module, "partition", None)
    plan = getattr(module, "partition_plan", None)
    if (partition is None) != (plan is None):
        raise ConfigError(f"app {spec!r} must define both partition and partition_plan, or neither")
    app = App(
        name=spec,
        map=module.map,
        map_combined=getattr(module, "map_combined", None),
        reduce=module.reduce,
        combine=getattr(module, "combine", None),
        map_is_async=inspect.iscoroutinefunction(module.map),
        reduce_is_async=inspect.iscoroutinefunction(module.reduce),
        partition=partition,
        partition_plan=plan,
    )
    _cache[spec] = app
    _configured[spec] = args
    return app
