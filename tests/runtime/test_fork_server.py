"""The node fork server (:mod:`synod.runtime._zygote`): what a forked node
shares with one started as ``python -m synod.cli.node_cmd`` (log, session,
signals, exit codes) and what is its own (its parent is the fork server,
which leaves with the supervisor). The fault tests of
``test_local_cluster.py`` run over both start paths.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from synod.runtime import LocalCluster, _zygote, local_spec, write_config
from synod.runtime._process import pid_runs_node
from synod.runtime.testing import FACTORY, Echo, EchoReply, wait_until

pytestmark = pytest.mark.skipif(not _zygote.available(), reason="the fork server needs Linux (fork, pidfds)")


def _stat(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[-1].split()


def _runs(pid: int) -> bool:
    try:
        return _stat(pid)[0] != b"Z"
    except OSError:
        return False


def test_forked_nodes_are_children_of_the_fork_server_in_their_own_sessions(tmp_path: Path) -> None:
    _, path = write_config(local_spec(2, FACTORY, tmp_path))
    with LocalCluster(path, fork_server=True) as cl:
        cl.start()
        assert cl._zygote is not None
        zygote_pid = cl._zygote.pid
        for nid in ("n1", "n2"):
            pid = cl.pid(nid)
            assert pid is not None
            assert pid != zygote_pid
            stat = _stat(pid)
            assert int(stat[1]) == zygote_pid  # ppid: the fork server, which the node watches
            assert int(stat[3]) == pid  # it leads its own session, as a node started with setsid
            assert pid_runs_node(pid, nid, cl.config_path)
            assert cl.call(nid, Echo(text="hi"), 3.0) == EchoReply(node_id=nid, text="hi")
            assert f"INFO {nid} " in cl.read_log(nid)  # its log lines go to its node.log
        assert not pid_runs_node(zygote_pid, "n1", cl.config_path)
        assert LocalCluster.running_in(tmp_path) == ["n1", "n2"]
    assert not _runs(zygote_pid)  # stop() ends the fork server too


def test_kill_pause_and_exit_codes_of_forked_nodes(tmp_path: Path) -> None:
    _, path = write_config(local_spec(2, FACTORY, tmp_path))
    with LocalCluster(path, fork_server=True) as cl:
        cl.start()
        cl.pause("n1")
        assert cl.is_paused("n1")
        cl.resume("n1")
        assert cl.call("n1", Echo(text="back"), 3.0) == EchoReply(node_id="n1", text="back")
        assert cl.kill("n1") == -signal.SIGKILL
        assert not cl.is_alive("n1")
        cl.start(["n1"])  # a new fork, a new pid
        assert cl.call("n1", Echo(text="again"), 3.0) == EchoReply(node_id="n1", text="again")
        assert cl.stop_node("n2") == 0
        assert cl.exit_codes("n1") == [-signal.SIGKILL]
        assert cl.exit_codes("n2") == [0]


def test_a_node_missing_from_the_config_file_exits_2_with_the_reason_in_its_log(tmp_path: Path) -> None:
    _, path = write_config(local_spec(2, FACTORY, tmp_path))
    with LocalCluster(path, fork_server=True) as cl:
        cl.start(["n1"])
        # n2 leaves the file after the supervisor read it: the child reads
        # the file again, as `synod node run` would, and finds no n2
        raw = json.loads(path.read_text())
        del raw["nodes"]["n2"]
        path.write_text(json.dumps(raw))
        cl.start(["n2"], wait_ready=False)
        assert cl.wait_exit("n2", 10.0) == 2
        assert "Error: node 'n2' is not in" in cl.read_log("n2")
        assert cl.is_alive("n1")


def test_nodes_and_the_fork_server_leave_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    _, path = write_config(local_spec(2, FACTORY, tmp_path))
    script = textwrap.dedent(f"""
        import sys, time
        from synod.runtime import LocalCluster
        cl = LocalCluster({str(path)!r}, fork_server=True)
        cl.start()
        print(cl._zygote.pid, cl.pid("n1"), cl.pid("n2"), flush=True)
        time.sleep(60)
    """)
    sup = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert sup.stdout is not None
        pids = [int(p) for p in sup.stdout.readline().split()]
        assert len(pids) == 3
        assert all(_runs(p) for p in pids)
        sup.kill()  # no stop(): the pipe to the fork server closes with the process
        sup.wait()
        wait_until(lambda: not any(_runs(p) for p in pids), 10, "fork server and nodes gone")
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
        for pid in pids if "pids" in locals() else ():
            if _runs(pid):
                os.kill(pid, signal.SIGKILL)
