"""A fork server for node processes (Android's zygote, Python's forkserver).

Starting a node as ``python -m synod.cli.node_cmd run ...`` costs each
process about 0.1 s of CPU for the interpreter and its imports (more when
no bytecode cache may be written), which on a small machine is much of a
short MapReduce job. The fork server pays it once per
:class:`~synod.runtime.cluster.LocalCluster`: started the ordinary way
(``python -m synod.runtime._zygote --config FILE``), it imports the node
runtime and the factory modules of the config, then waits for commands and
forks one child per node to start. The supervisor itself is never forked:
it may run threads.

Roles and protocol (one JSON object per line):

- supervisor -> zygote, on its stdin: ``{"op": "start", "id": ID,
  "log": PATH}``;
- zygote -> supervisor, on its stdout: ``{"started": ID, "pid": PID}``
  (or ``{"failed": ID, "error": WHY}`` if ``fork`` failed), and
  ``{"exited": PID, "code": CODE}`` when a child exits (a negative code is
  the signal that ended it, as :attr:`subprocess.Popen.returncode` says).

A child does what ``synod node run --config FILE --id ID --parent-pid Z``
does, with Z the zygote: new session, stdin from /dev/null, stdout and
stderr appended to ``node.log``, exit status 2 for a config error. The
zygote is the parent of every node; it leaves when its stdin closes (the
supervisor stopped or died), and the nodes, which watch their parent, leave
with it. The supervisor signals the children by pid (kill, pause) and learns
their exit codes from the ``exited`` lines: a child's pid is reported
before any exit of it. The zygote reaps a child just before it reports the
exit; Linux hands out pids in increasing order, so one is not reused
before the supervisor reads that line.

Simplifications: Linux only (``os.pidfd_open`` to wait for children and
commands in one ``select``); a factory module that fails to import here is
skipped (the child imports it again and reports the error in its log).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["ZygoteChild", "Zygote", "ZYGOTE_LOG_NAME", "available"]

ZYGOTE_LOG_NAME = "zygote.log"
EXIT_CODE_UNKNOWN = 255  # the zygote died before it reported the child's exit
_START_TIMEOUT_S = 30.0
_LINE_BYTES_MAX = 1 << 16


def available() -> bool:
    """Whether this platform can run the fork server (fork and pidfds)."""
    return sys.platform == "linux" and hasattr(os, "pidfd_open") and hasattr(os, "fork")


# -- the supervisor's side -----------------------------------------------------------------

class ZygoteChild:
    """A node process forked by the zygote, with the part of
    :class:`subprocess.Popen`'s interface the supervisor uses: ``pid``,
    :meth:`poll` and :meth:`wait`."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.zygote = zygote
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """The exit code, once the zygote reported it.

        Raises:
            subprocess.TimeoutExpired: not within ``timeout`` seconds.
        """
        code = self.zygote.wait_exit(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"node pid {self.pid}", timeout or 0.0)
        self.returncode = code
        return code


class Zygote:
    """The supervisor's handle on one fork server.

    Args:
        python: the interpreter to run it with.
        config_path: the cluster config; its factory modules are imported
            before the first fork.
        env: the node processes' environment.
        log_path: the zygote's own stderr.
    """

    def __init__(self, python: str, config_path: Path, env: dict[str, str], log_path: Path) -> None:
        self.config_path = config_path
        with open(log_path, "ab") as err:
            self._popen = subprocess.Popen(
                [python, "-m", "synod.runtime._zygote", "--config", str(config_path)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env, close_fds=True)
        self._cond = threading.Condition()
        self._replies: list[dict[str, Any]] = []
        # Invariant: a pid is in _exits only after its "started" reply was read.
        self._exits: dict[int, int] = {}
        self._pids: set[int] = set()
        self._gone = False  # the zygote's stdout closed: no more reports
        self._reader = threading.Thread(target=self._read, name="synod-zygote-reader", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._popen.pid

    def alive(self) -> bool:
        with self._cond:
            return not self._gone and self._popen.poll() is None

    def start(self, node_id: str, log_path: Path, timeout_s: float = _START_TIMEOUT_S) -> ZygoteChild:
        """Fork node ``node_id``; returns once its pid is known.

        Raises:
            OSError: the zygote is gone, or could not fork.
        """
        line = json.dumps({"op": "start", "id": node_id, "log": str(log_path)}) + "\n"
        assert self._popen.stdin is not None
        with self._cond:
            try:
                self._popen.stdin.write(line.encode())
                self._popen.stdin.flush()
            except (BrokenPipeError, ValueError) as e:
                raise OSError(f"the node fork server is gone: {e}") from None
            ok = self._cond.wait_for(lambda: self._replies or self._gone, timeout_s)
            if not ok or not self._replies:
                raise OSError(f"the node fork server did not start {node_id} (see {ZYGOTE_LOG_NAME})")
            reply = self._replies.pop(0)
        if reply.get("started") != node_id:
            raise OSError(f"the node fork server could not start {node_id}: {reply.get('error', reply)}")
        return ZygoteChild(self, int(reply["pid"]))

    def exit_code(self, pid: int) -> int | None:
        with self._cond:
            return self._exit_code_locked(pid)

    def _exit_code_locked(self, pid: int) -> int | None:
        code = self._exits.get(pid)
        if code is None and self._gone and not _runs(pid):
            return EXIT_CODE_UNKNOWN
        return code

    def wait_exit(self, pid: int, timeout_s: float | None) -> int | None:
        with self._cond:
            self._cond.wait_for(lambda: self._exit_code_locked(pid) is not None or self._gone, timeout_s)
            return self._exit_code_locked(pid)

    def close(self, timeout_s: float = 5.0) -> None:
        """Close its stdin: it exits (its remaining children follow)."""
        if self._popen.stdin is not None and not self._popen.stdin.closed:
            try:
                self._popen.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self._popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()
        self._reader.join(timeout_s)
        if self._popen.stdout is not None:
            self._popen.stdout.close()

    def _read(self) -> None:
        assert self._popen.stdout is not None
        for raw in self._popen.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue  # not ours; the zygote writes nothing else here
            with self._cond:
                if "exited" in msg:
                    self._exits[int(msg["exited"])] = int(msg["code"])
                else:
                    self._replies.append(msg)
                self._cond.notify_all()
        with self._cond:
            self._gone = True
            self._cond.notify_all()


def _runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return False


# -- the zygote's side -----------------------------------------------------------------------

def _preload(config_path: str) -> None:
    """Import what every node process imports, and the config's factories."""
    import asyncio  # noqa: F401
    import gc

    import msgspec  # noqa: F401

    import synod.runtime.host  # noqa: F401
    from synod.core.errors import ConfigError
    from synod.runtime.config import import_factory, load_config

    try:
        config = load_config(config_path)
        for node in config.nodes.values():
            try:
                import_factory(node.factory)
            except ConfigError:
                pass  # the child imports it again and logs why it cannot
    except ConfigError:
        pass  # each child reports it in its own log
    # Objects that exist now are shared with every child; keep the cyclic
    # collector from touching (and so copying) their pages.
    gc.freeze()


def _child(config_path: str, node_id: str, log_path: str) -> int:
    """In the forked child: become what ``synod node run`` is; its exit code."""
    os.setsid()
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.close(null)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = ["synod node run", "--config", config_path, "--id", node_id]
    from synod.core.errors import ConfigError
    from synod.runtime.config import load_config
    from synod.runtime.host import run_node

    try:
        config = load_config(config_path)
        if node_id not in config.nodes:
            raise ConfigError(f"node {node_id!r} is not in {config_path} (nodes: {', '.join(config.nodes)})")
    except ConfigError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    return run_node(config, node_id, parent_pid=os.getppid())


def _fork(config_path: str, node_id: str, log_path: str, keep_fds: list[int]) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid != 0:
        return pid
    code = 1
    try:
        for fd in keep_fds:  # the protocol pipes and pidfds are the zygote's alone
            os.close(fd)
        code = _child(config_path, node_id, log_path)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - a child must never return into the zygote's loop
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    raise AssertionError("unreachable")


def serve(config_path: str) -> int:
    """The zygote's main loop: fork on each command, report each exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle
    cmd_fd = os.dup(0)
    out_fd = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)  # a stray print must not corrupt the protocol
    _preload(config_path)
    pidfds: dict[int, int] = {}  # pidfd -> pid
    buf = b""

    def send(msg: dict[str, Any]) -> None:
        data = (json.dumps(msg) + "\n").encode()
        while data:
            data = data[os.write(out_fd, data):]

    while True:
        ready, _, _ = select.select([cmd_fd, *pidfds], [], [])
        for fd in ready:
            if fd == cmd_fd:
                chunk = os.read(cmd_fd, _LINE_BYTES_MAX)
                if not chunk:
                    return 0  # the supervisor is gone or done
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    req = json.loads(line)
                    assert req["op"] == "start"
                    try:
                        pid = _fork(config_path, req["id"], req["log"], [cmd_fd, out_fd, *pidfds])
                    except OSError as e:
                        send({"failed": req["id"], "error": str(e)})
                        continue
                    pidfds[os.pidfd_open(pid)] = pid
                    send({"started": req["id"], "pid": pid})
            else:
                pid = pidfds.pop(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                send({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    assert sys.argv[1] == "--config", sys.argv
    sys.exit(serve(sys.argv[2]))
