"""Apache ZooKeeper 3.8 ensembles for differential tests: Debian's
``zookeeper`` package, ``QuorumPeerMain`` JVMs on 127.0.0.1 with free
ports, every four-letter word allowed (``4lw.commands.whitelist=*``), TTL
nodes enabled (``zookeeper.extendedTypesEnabled``) and the ContainerManager
every ``container_check_ms``. Skips (with the reason) when java or the
package is missing or the ensemble does not come up."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from synod.harness.zk_real import srvr
from synod.runtime.config import free_ports

ZK_JAR = Path("/usr/share/java/zookeeper.jar")
START_DEADLINE_S = 90.0
STOP_WAIT_S = 10.0


def missing() -> str | None:
    """Why no ZooKeeper can run here, or None."""
    if not shutil.which("java"):
        return "java is not on PATH (Debian's zookeeper package brings it)"
    if not ZK_JAR.exists():
        return f"{ZK_JAR} is missing (apt-get install zookeeper)"
    return None


def _modes(ports: list[int]) -> list[str] | None:
    out = []
    for port in ports:
        fields = srvr(port)
        if fields is None or fields.get("Mode") not in ("leader", "follower", "standalone"):
            return None
        out.append(fields["Mode"])
    return out if "leader" in out or out == ["standalone"] else None


@contextlib.contextmanager
def zookeeper_ensemble(home: Path, n: int = 3, *, container_check_ms: int = 3_600_000,
                       tick_ms: int = 2000) -> Iterator[list[int]]:
    """``n`` ZooKeeper servers (1: standalone), yielded as their client
    ports once one leads and the others follow; stopped at the end."""
    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    ports = free_ports(3 * n)
    client = ports[:n]
    servers = "" if n == 1 else "".join(
        f"server.{i + 1}=127.0.0.1:{ports[n + 2 * i]}:{ports[n + 2 * i + 1]}\n" for i in range(n))
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for i in range(n):
            d = home / f"zk{i + 1}"
            (d / "data").mkdir(parents=True)
            (d / "data" / "myid").write_text(f"{i + 1}\n")
            cfg = d / "zoo.cfg"
            cfg.write_text(f"tickTime={tick_ms}\ninitLimit=10\nsyncLimit=5\ndataDir={d / 'data'}\n"
                           f"clientPort={client[i]}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                           "4lw.commands.whitelist=*\n" + servers)
            main = "org.apache.zookeeper.server.ZooKeeperServerMain" if n == 1 else \
                "org.apache.zookeeper.server.quorum.QuorumPeerMain"
            log = d / "server.log"
            with log.open("wb") as out:
                procs.append((subprocess.Popen(
                    ["java", "-Dzookeeper.extendedTypesEnabled=true",
                     f"-Dznode.container.checkIntervalMs={container_check_ms}", f"-Dzookeeper.log.dir={d}",
                     "-cp", f"/etc/zookeeper/conf:{ZK_JAR}", main, str(cfg)],
                    stdout=out, stderr=subprocess.STDOUT), log))
        deadline = time.monotonic() + START_DEADLINE_S
        while _modes(client) is None:
            dead = [log for p, log in procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                tail = (dead or [procs[0][1]])[0].read_text(errors="replace")[-800:]
                pytest.skip(f"ZooKeeper did not come up within {START_DEADLINE_S} s: {tail}")
            time.sleep(0.1)
        yield client
    finally:
        for p, _ in procs:
            p.terminate()
        for p, _ in procs:
            try:
                p.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
