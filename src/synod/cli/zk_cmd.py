"""``synod zk``: a local ZooKeeper ensemble (:mod:`synod.zk.server` on Zab)
that real ZooKeeper clients (kazoo, zkCli.sh) talk to.

::

    synod zk up --nodes 3 [--base-port 2181] [--dir runs/zk]   # then: kazoo or zkCli.sh -server 127.0.0.1:2181
    synod zk status [--dir runs/zk] [--json]
    synod zk down [--dir runs/zk]

``up`` writes the spec of :func:`synod.harness.zk_real.ensemble_spec`
(servers zk1..zkN, client port of zk<i> ``--base-port``+i-1, otherwise free
ports), starts the servers detached with the machinery of ``synod kv up``
(:func:`synod.cli.kv_cmd._start_detached`: a :class:`LocalCluster` whose
processes outlive the CLI) and returns once a leader is established (Zab
phase 3: it broadcasts) and every other server follows it in its epoch. It
prints the servers, their ports and roles, and a kazoo one-liner. A run dir
that holds a stopped ensemble is started again from its own config (its
transaction logs and snapshots kept).

``status`` shows per server its role, epoch, last zxid and leader (its
``ZabStatus``, asked on the node port) and its sessions and znodes (the
four-letter word ``srvr`` on the client port: ``Connections`` less the
``srvr`` connection itself, ``Node count``).

Exit status: 0 done; 1 the ensemble is not there, a node of the run dir
runs already, a port is taken, a server did not start or no leader was
established in time (a message says which); 2 bad arguments.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from synod.core.errors import ConfigError

__all__ = ["zk", "DEFAULT_RUN_DIR"]

DEFAULT_RUN_DIR = "runs/zk"
READY_TIMEOUT_S = 20.0           # `up`'s default wait for an established leader
NODES_MAX = 9                    # synod.harness.zk_real.NODES_MAX, without importing the runtime here
POLL_S = 0.05
ROLES = {"leading": "leader", "following": "follower", "observing": "observer", "looking": "looking"}


def _dir_option(fn: Any) -> Any:
    return click.option("--dir", "run_dir", type=click.Path(file_okay=False), default=DEFAULT_RUN_DIR,
                        show_default=True, help="The ensemble's run directory.")(fn)


@click.group()
def zk() -> None:
    """ZooKeeper on Zab: local ensembles for kazoo and zkCli.sh.

    Exit status: 0 done; 1 the ensemble is not there or not answering, or
    a port is taken; 2 bad arguments.
    """


def _attach(run_dir: str) -> Any:
    """The ensemble a detached ``up`` left in ``run_dir``; ClickException (exit 1) if there is none."""
    from synod.harness.zk_real import is_ensemble
    from synod.runtime.cluster import STATE_FILE_NAME, ClusterError, LocalCluster

    if not (Path(run_dir) / STATE_FILE_NAME).exists():
        raise click.ClickException(f"no ZooKeeper ensemble in {run_dir} (no {STATE_FILE_NAME} there); start one "
                                   f"with `synod zk up --dir {run_dir}`")
    try:
        cl = LocalCluster.attach(Path(run_dir))
    except (ClusterError, ConfigError, KeyError) as e:
        raise click.ClickException(f"cannot attach to the ensemble in {run_dir}: {e}") from None
    if not is_ensemble(cl.config):
        raise click.ClickException(f"{run_dir} holds a cluster that is not a ZooKeeper ensemble")
    return cl


def _previous(run_path: Path, n: int | None, base_port: int | None) -> tuple[Any, Path | None]:
    """The stopped ensemble's config and file in ``run_path``, or (None,
    None) for a new one. Refuses (exit 1) a run dir of another cluster, or
    of an ensemble that differs from the arguments."""
    from synod.cli.cluster_cmd import _node_dirs, _previous_config
    from synod.harness.zk_real import client_ports, is_ensemble

    previous, path = _previous_config(run_path, False)
    if previous is None:
        if _node_dirs(run_path):
            raise click.ClickException(f"{run_path} holds node data but no cluster config; give another --dir")
        return None, None
    if not is_ensemble(previous):
        raise click.ClickException(f"{run_path} holds a cluster that is not a ZooKeeper ensemble; give another --dir")
    again = f"`synod zk up --dir {run_path}` starts it again, or give another --dir"
    if n is not None and n != len(previous.nodes):
        raise click.ClickException(f"{run_path} holds an ensemble of {len(previous.nodes)} servers, not {n}: {again}")
    ports = list(client_ports(previous).values())
    if base_port is not None and ports != list(range(base_port, base_port + len(ports))):
        raise click.ClickException(f"{run_path} holds an ensemble on client ports {ports}, not from {base_port}: "
                                   f"{again}")
    return previous, path


@zk.command("up")
@_dir_option
@click.option("--nodes", "n", type=click.IntRange(1, NODES_MAX), default=None, help="Servers in a new ensemble (default 3).")
@click.option("--base-port", type=click.IntRange(1, 65535), default=None,
              help="Client port of zk1; zk<i> gets BASE_PORT+i-1 (default: free ports).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.5, 600.0), default=READY_TIMEOUT_S,
              show_default=True, help="Seconds to wait for an established leader.")
def up(run_dir: str, n: int | None, base_port: int | None, timeout_s: float) -> None:
    """Start a local ZooKeeper ensemble in the background; return once a
    leader is established and followed, printing each server's client port
    and a kazoo line.

    Refused (exit 1, nothing started) while a node of RUN_DIR runs, or when
    a client port is taken."""
    from synod.cli.kv_cmd import _check_ports_free, _start_detached
    from synod.harness.zk_real import ensemble_spec
    from synod.runtime.cluster import LocalCluster
    from synod.runtime.config import write_config

    size = n if n is not None else 3
    if base_port is not None and base_port + size - 1 > 65535:
        raise click.UsageError(f"--base-port {base_port} with {size} servers goes past port 65535")
    run_path = Path(run_dir).resolve()
    running = LocalCluster.running_in(run_path)
    if running:
        raise click.ClickException(f"an ensemble already runs in {run_path} (nodes {', '.join(running)}); "
                                   f"`synod zk status --dir {run_dir}` shows it, `synod zk down --dir {run_dir}` "
                                   "stops it")
    previous, config_path = _previous(run_path, n, base_port)
    if previous is None:
        if base_port is not None:
            _check_ports_free("127.0.0.1", list(range(base_port, base_port + size)))
        try:
            _config, config_path = write_config(ensemble_spec(run_path, size, base_port=base_port))
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
    t0 = time.monotonic()
    cl = _start_detached(config_path, previous)
    leader = _wait_established(cl, timeout_s, run_dir)
    _print_up(cl, leader, time.monotonic() - t0, restarted=previous is not None)


def _wait_established(cl: Any, timeout_s: float, run_dir: str) -> str:
    """The leader, once it is established and every other server follows it
    in its epoch; ClickException (exit 1) at the deadline."""
    from synod.harness.zk_real import established_leader, zab_status

    deadline = time.monotonic() + timeout_s
    while True:
        found = established_leader(cl)
        if found is not None:
            leader, status = found
            others = [zab_status(cl, nid) for nid in cl.node_ids if nid != leader]
            if all(s is not None and s.leader == leader and s.current_epoch == status.current_epoch for s in others):
                return leader
        if time.monotonic() >= deadline:
            why = "no leader established" if found is None else "not every server follows the leader"
            raise click.ClickException(f"{why} within {timeout_s:g} s; the servers still run: `synod zk status "
                                       f"--dir {run_dir}`, `synod zk down --dir {run_dir}`")
        time.sleep(POLL_S)


def _print_up(cl: Any, leader: str, took_s: float, *, restarted: bool) -> None:

    from synod.cli.kv_cmd import _console, _nodes_table
    from synod.harness.zk_real import client_ports, hosts_of

    states = _states(cl)
    ports = client_ports(cl.config)
    console = _console()
    what = "started again (its logs and snapshots kept)" if restarted else "started"
    console.print(f"ZooKeeper ensemble of {len(ports)} servers in {cl.run_dir} {what}; {leader} leads epoch "
                  f"{states[leader].get('epoch', '?')}, established after {took_s:.1f} s")
    console.print(_nodes_table(states, ("server", "client port", "zab port", "pid", "role"),
                               ("client_port", "zab_port")))
    hosts = hosts_of(ports)
    click.echo("connect with any ZooKeeper client (writes go through the leader, reads are served locally):")
    click.echo(f"  python -c \"from kazoo.client import KazooClient; zk = KazooClient(hosts='{hosts}'); "
               f"zk.start(); zk.ensure_path('/hello'); zk.set('/hello', b'world'); print(zk.get('/hello')[0]); "
               "zk.stop()\"")
    click.echo(f"  /usr/share/zookeeper/bin/zkCli.sh -server {hosts}")
    dir_arg = f" --dir {cl.run_dir}"
    click.echo(f"then: synod zk status{dir_arg}  |  synod zk down{dir_arg}")


def _states(cl: Any) -> dict[str, dict[str, Any]]:
    """server id -> what ``status`` shows: pid, client_port, zab_port,
    ``state`` ("up", "down" or "not answering") and, when up, ``role``
    (leader, follower, looking), ``epoch``, ``last_zxid`` (text),
    ``leader``, ``established``, ``sessions`` and ``znodes``."""
    from synod.harness.zk_real import client_ports, srvr, zab_status, zxid_text

    ports = client_ports(cl.config)
    out: dict[str, dict[str, Any]] = {}
    for nid, node in cl.config.nodes.items():
        alive = cl.is_alive(nid)
        status = zab_status(cl, nid) if alive else None
        row: dict[str, Any] = {"pid": cl.pid(nid), "client_port": ports.get(nid), "zab_port": node.port,
                               "state": "up" if status is not None else "not answering" if alive else "down"}
        if status is not None:
            row.update(role=ROLES.get(status.role, status.role), epoch=status.current_epoch,
                       last_zxid=zxid_text(status.last_zxid), leader=status.leader,
                       established=bool(status.extra.get("established")))
            fields = srvr(ports[nid], host=node.host) if nid in ports else None
            if fields is not None:
                # the srvr connection is one of the server's connections: not a session
                row.update(sessions=max(0, int(fields.get("Connections", "1")) - 1),
                           znodes=int(fields.get("Node count", "0")), serving=fields.get("Mode") != "not serving")
        out[nid] = row
    return out


@zk.command("status")
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON: server id -> fields.")
def status(run_dir: str, as_json: bool) -> None:
    """Each server's role, epoch, last zxid and leader (Zab's status on
    its node port), sessions and znodes (srvr on its client port). Exit 1
    if no server answers."""
    from rich.table import Table

    from synod.cli.kv_cmd import _console

    cl = _attach(run_dir)
    states = _states(cl)
    if as_json:
        click.echo(json.dumps(states, indent=2))
    else:
        table = Table(title=f"ZooKeeper ensemble in {cl.run_dir}")
        cols = ("server", "client port", "pid", "role", "epoch", "last zxid", "leader", "sessions", "znodes")
        for col in cols:
            table.add_column(col, justify="left" if col in ("server", "role", "leader", "last zxid") else "right")
        for nid, row in states.items():
            head = (nid, str(row["client_port"]), str(row["pid"] or "-"))
            if row["state"] != "up":
                table.add_row(*head, row["state"])
                continue
            role = row["role"] + ("" if row["established"] or row["role"] != "leader" else " (not established)")
            table.add_row(*head, role, str(row["epoch"]), row["last_zxid"], row["leader"] or "-",
                          str(row.get("sessions", "-")), str(row.get("znodes", "-")))
        _console().print(table)
    if not any(row["state"] == "up" for row in states.values()):
        raise click.ClickException(f"no server of the ensemble in {cl.run_dir} answers; "
                                   f"`synod zk up --dir {run_dir}` starts it again")


@zk.command("down")
@_dir_option
def down(run_dir: str) -> None:
    """Stop every server process (SIGTERM, then SIGKILL) and check that
    none runs. Exit 1 if one still does."""
    from synod.cli.kv_cmd import _stop_detached

    _stop_detached(_attach(run_dir), "the ensemble", lambda running: ", ".join(running))


if __name__ == "__main__":
    zk()
