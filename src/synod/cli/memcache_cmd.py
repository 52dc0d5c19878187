"""``synod memcache``: the memcached-compatible cache tier (Nishtala et al.,
NSDI 2013; issue 11).

``synod memcache serve --port P [--memory-limit-mb M]`` runs one cache
server in the foreground, as ``memcached -p P -m M`` does: a one-node
cluster config is written to a run directory (``--dir``, default a fresh
temporary one) and the node is served in this process until SIGINT or
SIGTERM (exit status 0). A port that is taken or a bad option exits with
status 2.

The tier of one region, in the background::

    synod memcache up [--clusters 2] [--servers 3] [--base-port P] [--dir runs/memcache]
    synod memcache status [--dir runs/memcache] [--json]
    synod memcache down [--dir runs/memcache]

``up`` starts the nodes of a :class:`~synod.harness.memcache_real.TierLayout`
detached (:class:`~synod.runtime.cluster.LocalCluster`, with a cluster
key): per frontend cluster ``--servers`` cache servers and a router, a
regional pool (keys starting ``r:``) and a gutter pool that every router
shares, a database and mcsqueal, which deletes each written key through
every router. Cache servers listen on P, P+1, ... (memcached's protocol),
the routers after them, then the database's node port; without
``--base-port`` every port is a free one. It prints the map and returns
once every router answers ``version``. A run dir that holds a stopped tier
is started again from its own config (the database's commit log kept).

``status`` asks every cache server and router ``stats`` on its memcached
port: items, bytes, hit rate, evictions; a router's pools, gutter requests
and servers it marks down. ``down`` stops every process ``up`` started.

Exit status: 0 done; 1 the tier is not there, not answering, or a port is
taken; 2 bad arguments.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from synod.core.errors import ConfigError

__all__ = ["memcache"]

NODE_ID = "mc1"
DEFAULT_RUN_DIR = "runs/memcache"
READY_TIMEOUT_S = 20.0   # `up`'s default wait for every router to answer version
POLL_S = 0.05


@click.group()
def memcache() -> None:
    """A memcached-compatible cache tier (Nishtala et al., NSDI 2013)."""


@memcache.command("serve")
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=11211, show_default=True,
              help="The memcached port to listen on (0: a free one, printed).")
@click.option("--listen", "-l", default="127.0.0.1", show_default=True,
              help="The address to listen on (another than 127.0.0.1 serves the network: no authentication).")
@click.option("--memory-limit-mb", "-m", type=click.IntRange(1, 1_000_000), default=64, show_default=True,
              help="Item memory, MiB (memcached's -m).")
@click.option("--item-size-bytes-max", "-I", type=click.IntRange(1024, 1 << 30), default=1 << 20,
              show_default=True, help="Largest item, bytes (memcached's -I).")
@click.option("--lease-interval-ms", type=click.IntRange(0, None), default=10_000, show_default=True,
              help="A lease token is given at most once per key per this interval (0: as memcached).")
@click.option("--dir", "run_dir", type=click.Path(file_okay=False), default=None,
              help="Run directory for the config and log (default: a new temporary one).")
def serve(port: int, listen: str, memory_limit_mb: int, item_size_bytes_max: int, lease_interval_ms: int,
          run_dir: str | None) -> None:
    """Run one cache server in the foreground, as `memcached -p PORT` does."""
    from synod.memcache.node import FACTORY
    from synod.runtime.config import ClusterSpec, NodeSpec, write_config
    from synod.runtime.host import run_node

    folder = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="synod-memcache-"))
    params = {"memory_limit_mb": memory_limit_mb, "item_size_bytes_max": item_size_bytes_max,
              "lease_interval_ms": lease_interval_ms}
    spec = ClusterSpec(run_dir=folder, nodes={NODE_ID: NodeSpec(factory=FACTORY, params=params, host=listen,
                                                                client_ports={"memcache": port})},
                       trace=False, allow_remote=listen not in ("127.0.0.1", "localhost"))
    try:
        config, path = write_config(spec)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    bound = config.nodes[NODE_ID].client_ports["memcache"]
    click.echo(f"synod memcache: serving memcached's protocols on {listen}:{bound} "
               f"({memory_limit_mb} MiB; config {path}); Ctrl-C stops", err=True)
    sys.exit(run_node(config, NODE_ID))


# -- the tier: up, status, down ----------------------------------------------------------------

def _dir_option(fn: Any) -> Any:
    return click.option("--dir", "run_dir", type=click.Path(file_okay=False), default=DEFAULT_RUN_DIR,
                        show_default=True, help="The tier's run directory.")(fn)


def _attach(run_dir: str) -> Any:
    """The tier a detached ``up`` left in ``run_dir`` and its layout;
    ClickException (exit 1) if there is none."""
    from synod.harness.memcache_real import load_layout
    from synod.runtime.cluster import STATE_FILE_NAME, ClusterError, LocalCluster

    saved = load_layout(run_dir)
    if saved is None or not (Path(run_dir) / STATE_FILE_NAME).exists():
        raise click.ClickException(f"no memcache tier in {run_dir}; start one with `synod memcache up --dir "
                                   f"{run_dir}`")
    try:
        return LocalCluster.attach(Path(run_dir)), saved[0]
    except (ClusterError, ConfigError, KeyError) as e:
        raise click.ClickException(f"cannot attach to the memcache tier in {run_dir}: {e}") from None


def _memcache_ports(config: Any) -> dict[str, int]:
    return {nid: n.client_ports["memcache"] for nid, n in config.nodes.items() if "memcache" in n.client_ports}


def _previous(run_path: Path, wanted: dict[str, int | None], base_port: int | None) -> tuple[Any, Any]:
    """The stopped tier's config file and layout in ``run_path``, or (None,
    None) for a new one. Refuses (exit 1) a run dir of another cluster, or
    whose tier differs from the arguments given."""
    from synod.harness.memcache_real import load_layout
    from synod.runtime.config import CONFIG_FILE_NAME

    config_path = run_path / CONFIG_FILE_NAME
    saved = load_layout(run_path)
    if not config_path.exists():
        return None, None
    if saved is None:
        raise click.ClickException(f"{run_path} holds a cluster that is not a memcache tier; give another --dir")
    layout, old_base = saved
    for name, value in wanted.items():
        if value is not None and value != getattr(layout, name):
            raise click.ClickException(
                f"{run_path} holds a tier with {getattr(layout, name)} {name.replace('_', '-')}, not {value}: "
                f"`synod memcache up --dir {run_path}` starts it again, or give another --dir")
    if base_port is not None and base_port != old_base:
        raise click.ClickException(f"{run_path} holds a tier on ports from {old_base or '(free ports)'}, not "
                                   f"{base_port}; `synod memcache up --dir {run_path}` starts it again")
    return config_path, layout


@memcache.command("up")
@_dir_option
@click.option("--clusters", type=click.IntRange(1, 8), default=None, help="Frontend clusters (default 2).")
@click.option("--servers", type=click.IntRange(1, 32), default=None,
              help="Cache servers per frontend cluster (default 3).")
@click.option("--regional-servers", type=click.IntRange(1, 32), default=None,
              help="Servers of the regional pool, keys 'r:...' (default 2).")
@click.option("--gutter-servers", type=click.IntRange(1, 32), default=None,
              help="Servers of the gutter pool (default 1).")
@click.option("--base-port", type=click.IntRange(1, 65535), default=None,
              help="The first cache server's port; the others, the routers and the database follow "
                   "(default: free ports).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.5, 600.0), default=READY_TIMEOUT_S,
              show_default=True, help="Seconds to wait for every router to answer.")
def up(run_dir: str, clusters: int | None, servers: int | None, regional_servers: int | None,
       gutter_servers: int | None, base_port: int | None, timeout_s: float) -> None:
    """Start the tier of one region in the background (Nishtala et al.
    Figure 2): per cluster cache servers and a router, a regional pool, a
    gutter pool, a database and mcsqueal. Prints the map; returns once
    every router answers version.

    Refused (exit 1, nothing started) while a node of RUN_DIR runs, or when
    a port is taken."""
    from synod.cli.kv_cmd import _check_ports_free, _start_detached
    from synod.harness.memcache_real import TierLayout, save_layout, tier_spec
    from synod.runtime.cluster import LocalCluster
    from synod.runtime.config import load_config, write_config

    wanted = {"clusters": clusters, "servers": servers, "regional_servers": regional_servers,
              "gutter_servers": gutter_servers}
    layout = TierLayout(**{k: v for k, v in wanted.items() if v is not None})
    if base_port is not None and base_port + layout.ports_used - 1 > 65535:
        raise click.UsageError(f"--base-port {base_port} with {layout.ports_used} ports ({len(layout.cache_servers)} "
                               f"cache servers, {layout.clusters} routers, the database) goes past port 65535")
    run_path = Path(run_dir).resolve()
    running = LocalCluster.running_in(run_path)
    if running:
        raise click.ClickException(f"a memcache tier already runs in {run_path} ({len(running)} nodes); "
                                   f"`synod memcache status --dir {run_dir}` shows it, `synod memcache down --dir "
                                   f"{run_dir}` stops it")
    config_path, previous = _previous(run_path, wanted, base_port)
    if previous is None:
        if base_port is not None:
            _check_ports_free("127.0.0.1", list(range(base_port, base_port + layout.ports_used)))
        try:
            _config, config_path = write_config(tier_spec(run_path, layout, base_port=base_port))
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
        save_layout(run_path, layout, base_port)
    else:
        layout = previous
    t0 = time.monotonic()
    cl = _start_detached(config_path, load_config(config_path) if previous is not None else None)
    _wait_routers(cl, layout, timeout_s, run_dir)
    _print_map(cl, layout, time.monotonic() - t0, restarted=previous is not None)


def _wait_routers(cl: Any, layout: Any, timeout_s: float, run_dir: str) -> None:
    """Return once every router answers version; ClickException (exit 1) at the deadline."""
    from synod.harness.memcache_real import version_of

    ports = _memcache_ports(cl.config)
    deadline = time.monotonic() + timeout_s
    waiting = list(layout.routers)
    while waiting:
        waiting = [r for r in waiting if version_of(ports[r]) is None]
        if not waiting:
            return
        if time.monotonic() >= deadline:
            raise click.ClickException(f"{', '.join(waiting)} did not answer version within {timeout_s:g} s; the "
                                       f"nodes still run: `synod memcache status --dir {run_dir}`, `synod memcache "
                                       f"down --dir {run_dir}`")
        time.sleep(POLL_S)


def _print_map(cl: Any, layout: Any, took_s: float, *, restarted: bool) -> None:
    from rich.table import Table

    from synod.cli.kv_cmd import _console
    from synod.harness.memcache_real import DATABASE_ID, REGIONAL_PREFIX

    ports = _memcache_ports(cl.config)
    what = "started again (the database's commit log kept)" if restarted else "started"
    console = _console()
    console.print(f"memcache tier of {layout.clusters} frontend clusters in {cl.run_dir} {what}; every router "
                  f"answered after {took_s:.1f} s")
    table = Table()
    for col in ("role", "node", "port", "pid", "connect"):
        table.add_column(col, justify="right" if col in ("port", "pid") else "left")
    for nid, role in layout.roles().items():
        port = ports.get(nid)
        if port is not None:
            hint = f"telnet 127.0.0.1 {port}"
        elif nid == DATABASE_ID:
            port, hint = cl.config.nodes[nid].port, "node port: DbRead / DbWrite, synod client call with the key"
        else:
            port, hint = cl.config.nodes[nid].port, "node port (tails the database, deletes through the routers)"
        table.add_row(role, nid, str(port), str(cl.pid(nid) or "-"), hint)
    console.print(table)
    click.echo(f"keys starting {REGIONAL_PREFIX!r} go to the regional pool; a down server's keys to the gutter.")
    click.echo("talk to a router (or any cache server) with any memcached client:")
    for router in layout.routers:
        p = ports[router]
        click.echo(f"  python -c \"from pymemcache.client.base import Client; c = Client(('127.0.0.1', {p})); "
                   f"c.set('k', 'v'); print(c.get('k'))\"    # {router}")
    dir_arg = f" --dir {cl.run_dir}"
    click.echo(f"then: synod memcache status{dir_arg}  |  synod memcache down{dir_arg}")


def _hit_rate(stats: dict[str, str]) -> float | None:
    hits, misses = int(stats.get("get_hits", 0)), int(stats.get("get_misses", 0))
    return None if hits + misses == 0 else hits / (hits + misses)


def _pools(params: dict[str, Any]) -> str:
    routes = {pool: prefix for prefix, pool in params.get("routes", [])}
    out = []
    for name, servers in params["pools"].items():
        tag = (" (gutter)" if name == params.get("gutter_pool") else f" (keys {routes[name]}*)" if name in routes
               else " (default)" if name == params.get("default_pool") else "")
        out.append(f"{name}{tag}: {','.join(servers)}")
    return "; ".join(out)


def _states(cl: Any, layout: Any) -> dict[str, dict[str, Any]]:
    """node id -> what ``status`` shows: role, pid, port, state ("up",
    "down", "not answering"), and from ``stats``: a cache server's items,
    bytes, hit_rate, evictions; a router's pools, requests, gutter_requests,
    servers_down, servers_marked_down."""
    from synod.harness.memcache_real import stats_of

    ports = _memcache_ports(cl.config)
    out: dict[str, dict[str, Any]] = {}
    for nid, role in layout.roles().items():
        alive = cl.is_alive(nid)
        port = ports.get(nid)
        row: dict[str, Any] = {"role": role, "pid": cl.pid(nid), "port": port or cl.config.nodes[nid].port}
        stats = stats_of(port) if alive and port is not None else None
        row["state"] = "up" if alive and (port is None or stats is not None) else "not answering" if alive else "down"
        if stats is not None and role.startswith("router"):
            row.update(pools=_pools(cl.config.nodes[nid].params), requests=int(stats.get("requests", 0)),
                       gutter_requests=int(stats.get("gutter_requests", 0)),
                       servers_down=int(stats.get("servers_down", 0)),
                       servers_marked_down=int(stats.get("servers_marked_down", 0)))
        elif stats is not None:
            row.update(items=int(stats.get("curr_items", 0)), bytes=int(stats.get("bytes", 0)),
                       hit_rate=_hit_rate(stats), evictions=int(stats.get("evictions", 0)))
        out[nid] = row
    return out


@memcache.command("status")
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON: node id -> fields.")
def status(run_dir: str, as_json: bool) -> None:
    """Per cache server items, bytes, hit rate and evictions; per router its
    pools and gutter use (from stats). Exit 1 if no router answers."""
    from rich.table import Table

    from synod.cli.kv_cmd import _console

    cl, layout = _attach(run_dir)
    states = _states(cl, layout)
    if as_json:
        click.echo(json.dumps(states, indent=2))
    else:
        console = _console()
        caches = Table(title=f"cache servers of the memcache tier in {cl.run_dir}")
        for col in ("node", "role", "port", "pid", "state", "items", "bytes", "hit rate", "evictions"):
            caches.add_column(col, justify="left" if col in ("node", "role", "state") else "right")
        routers = Table(title="routers, database, mcsqueal")
        for col in ("node", "role", "port", "pid", "state", "requests", "gutter requests", "servers down", "pools"):
            routers.add_column(col, justify="left" if col in ("node", "role", "state", "pools") else "right")
        for nid, row in states.items():
            head = (nid, row["role"], str(row["port"]), str(row["pid"] or "-"), row["state"])
            if "items" in row:
                rate = "-" if row["hit_rate"] is None else f"{row['hit_rate']:.0%}"
                caches.add_row(*head, str(row["items"]), str(row["bytes"]), rate, str(row["evictions"]))
            elif "pools" in row:
                routers.add_row(*head, str(row["requests"]), str(row["gutter_requests"]),
                                f"{row['servers_down']} (marked {row['servers_marked_down']} times)", row["pools"])
            elif row["role"].startswith(("cache", "regional", "gutter")):
                caches.add_row(*head)
            else:
                routers.add_row(*head)
        console.print(caches)
        console.print(routers)
    if not any(states[r]["state"] == "up" for r in layout.routers):
        raise click.ClickException(f"no router of the memcache tier in {cl.run_dir} answers; "
                                   f"`synod memcache up --dir {run_dir}` starts it again")


@memcache.command("down")
@_dir_option
def down(run_dir: str) -> None:
    """Stop every process of the tier (SIGTERM, then SIGKILL) and check that
    none runs. Exit 1 if one still does."""
    from synod.cli.kv_cmd import _stop_detached

    cl, _layout = _attach(run_dir)
    _stop_detached(cl, "the memcache tier", lambda running: f"{len(running)} processes")


if __name__ == "__main__":
    memcache()
