"""``synod cluster``: a local cluster of node processes (DESIGN.md section 6).

::

    synod cluster up --nodes 3 --factory synod.runtime.testing:make_node
    synod cluster up --config cluster.json [--foreground --respawn]
    synod cluster status
    synod cluster kill n2 | pause n2 | resume n2 | restart n2
    synod cluster partition n1 n2,n3        # groups; --one-way: first -> second only
    synod cluster drop 0.2 [--node n1]      # drop probability on sends to peers
    synod cluster delay 50 [--node n1]      # ms added to sends to peers
    synod cluster heal [--all]              # remove partitions (--all: every fault)
    synod cluster down
    synod cluster up                        # again: the run dir's config

Every command finds the cluster through its run directory (``--run-dir``,
default ``runs/cluster``) or its config (``--config``, whose ``run_dir``
counts). ``up`` starts detached node processes and returns, unless
``--foreground``: then it supervises them (``--respawn`` restarts nodes that
exit with a non-zero code) until Ctrl-C, and stops them.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from synod.core.errors import ConfigError, LocalProtocolError

__all__ = ["cluster", "cluster_location_options", "attach_cluster"]

_F = TypeVar("_F", bound=Callable[..., Any])
DEFAULT_RUN_DIR = "runs/cluster"


def cluster_location_options(fn: _F) -> _F:
    """Decorator: the ``--config`` and ``--run-dir`` options that locate a
    cluster (passed on as ``config_path`` and ``run_dir``)."""
    fn = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                      help="The cluster config; its run_dir locates the cluster.")(fn)
    fn = click.option("--run-dir", type=click.Path(file_okay=False), default=None,
                      help=f"The cluster's run directory (default {DEFAULT_RUN_DIR}).")(fn)
    return fn


def _run_dir(run_dir: str | None, config_path: str | None) -> Path:
    if config_path is not None:
        from synod.runtime.config import load_config

        try:
            return load_config(config_path).run_dir
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
    return Path(run_dir or DEFAULT_RUN_DIR)


def attach_cluster(run_dir: str | None, config_path: str | None) -> Any:
    """The running :class:`~synod.runtime.cluster.LocalCluster` found by
    :func:`cluster_location_options`. Raises ClickException if none is there."""
    from synod.runtime.cluster import ClusterError, LocalCluster

    try:
        return LocalCluster.attach(_run_dir(run_dir, config_path))
    except (ClusterError, ConfigError) as e:
        raise click.ClickException(str(e)) from None


def _node_ids(cl: Any, ids: tuple[str, ...]) -> list[str]:
    for nid in ids:
        if nid not in cl.config.nodes:
            raise click.UsageError(f"no node {nid!r} (nodes: {', '.join(cl.node_ids)})")
    return list(ids)


@click.group()
def cluster() -> None:
    """Run a cluster of node processes on this machine and inject faults."""


@cluster.command("up")
@cluster_location_options
@click.option("--nodes", "n", type=click.IntRange(1, 1000), default=None,
              help="Generate a config of N alike nodes (needs --factory).")
@click.option("--factory", default=None, help="package.module:function building each node.")
@click.option("--params", default="{}", help="JSON object passed to the factory.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="With --nodes: the address the nodes listen on; one that is not loopback needs --allow-remote.")
@click.option("--allow-remote", is_flag=True,
              help="With --nodes: allow a --host reachable from other hosts (the cluster key is then required, "
                   "as it is by default; a --config file says \"allow_remote\": true itself).")
@click.option("--foreground", is_flag=True, help="Supervise the nodes until Ctrl-C.")
@click.option("--respawn", is_flag=True, help="With --foreground: restart nodes that exit non-zero.")
def up(run_dir: str | None, config_path: str | None, n: int | None, factory: str | None, params: str,
       seed: int, host: str, allow_remote: bool, foreground: bool, respawn: bool) -> None:
    """Start the cluster's nodes."""
    from synod.runtime.cluster import ClusterError, LocalCluster
    from synod.runtime.config import CONFIG_FILE_NAME, local_spec, write_config

    if respawn and not foreground:
        raise click.UsageError("--respawn needs --foreground (someone must stay to respawn)")
    existing = Path(run_dir or DEFAULT_RUN_DIR) / CONFIG_FILE_NAME
    if config_path is None and n is None and factory is None and existing.exists():
        config_path = str(existing)  # bring a downed cluster back up
    if config_path is None:
        if n is None or factory is None:
            raise click.UsageError("give --config FILE, or --nodes N and --factory package.module:function "
                                   "(or a --run-dir that has a cluster-config.json)")
        try:
            params_obj = json.loads(params)
        except json.JSONDecodeError as e:
            raise click.UsageError(f"--params is not JSON: {e}") from None
        if not isinstance(params_obj, dict):
            raise click.UsageError("--params must be a JSON object")
        try:
            _config, path = write_config(local_spec(n, factory, run_dir or DEFAULT_RUN_DIR, params=params_obj,
                                                    seed=seed, host=host, allow_remote=allow_remote))
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
        config_path = str(path)
    elif n is not None or factory is not None:
        raise click.UsageError("--config and --nodes/--factory exclude each other")
    try:
        cl = LocalCluster(config_path, detach=not foreground, respawn=respawn)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    try:
        already = LocalCluster.attach(cl.run_dir)
        running = [nid for nid in already.node_ids if already.is_alive(nid)]
    except (ClusterError, ConfigError):
        running = []
    if running:
        raise click.ClickException(f"nodes {', '.join(running)} already run in {cl.run_dir}; "
                                   "`synod cluster down` first")
    try:
        cl.start()
    except ClusterError as e:
        cl.stop()
        raise click.ClickException(str(e)) from None
    _print_status(cl)
    if foreground:
        _supervise(cl)


def _supervise(cl: Any) -> None:
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    click.echo("supervising; Ctrl-C stops the cluster")
    while not done.wait(0.5):
        pass
    codes = cl.stop()
    click.echo(f"stopped: {codes}")


@cluster.command("down")
@cluster_location_options
def down(run_dir: str | None, config_path: str | None) -> None:
    """Stop every node (SIGTERM, then SIGKILL)."""
    cl = attach_cluster(run_dir, config_path)
    cl.stop()
    click.echo(f"cluster in {cl.run_dir} is down")


@cluster.command("status")
@cluster_location_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(run_dir: str | None, config_path: str | None, as_json: bool) -> None:
    """Show each node's process, faults and traffic counters."""
    _print_status(attach_cluster(run_dir, config_path), as_json=as_json)


def _print_status(cl: Any, *, as_json: bool = False) -> None:
    states = cl.status()
    if as_json:
        out = {}
        for nid, st in states.items():
            s = st.status
            out[nid] = {
                "addr": f"{st.addr[0]}:{st.addr[1]}", "pid": st.pid, "alive": st.alive, "paused": st.paused,
                "faults": st.faults.to_json(),
                "answering": s is not None,
                "counters": None if s is None else {
                    "frames_received": s.frames_received, "frames_sent": s.frames_sent,
                    "messages_dropped": s.messages_dropped, "protocol_errors": s.protocol_errors},
            }
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"cluster {cl.run_dir}")
    click.echo(f"{'node':<10} {'addr':<22} {'pid':>7} {'state':<8} {'recv':>8} {'sent':>8} {'drop':>6} faults")
    for nid, st in states.items():
        state = "paused" if st.paused else "up" if st.status is not None else "running" if st.alive else "down"
        s = st.status
        counters = ("-", "-", "-") if s is None else (s.frames_received, s.frames_sent, s.messages_dropped)
        faults = "-" if st.faults.is_clear else json.dumps(
            {k: v for k, v in st.faults.to_json().items() if v}, separators=(",", ":"))
        click.echo(f"{nid:<10} {st.addr[0] + ':' + str(st.addr[1]):<22} {st.pid or '-':>7} {state:<8} "
                   f"{counters[0]:>8} {counters[1]:>8} {counters[2]:>6} {faults}")


def _one_node(verb: str, action: Callable[[Any, str], Any], help_text: str) -> None:
    @cluster.command(verb, help=help_text)
    @cluster_location_options
    @click.argument("node_id")
    def command(run_dir: str | None, config_path: str | None, node_id: str) -> None:
        from synod.runtime.cluster import ClusterError

        cl = attach_cluster(run_dir, config_path)
        _node_ids(cl, (node_id,))
        try:
            action(cl, node_id)
        except (ClusterError, LocalProtocolError) as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"{verb} {node_id}: done")


_one_node("kill", lambda cl, nid: cl.kill(nid), "SIGKILL node NODE_ID (a crash).")
_one_node("pause", lambda cl, nid: cl.pause(nid), "SIGSTOP node NODE_ID.")
_one_node("resume", lambda cl, nid: cl.resume(nid), "SIGCONT node NODE_ID.")
_one_node("restart", lambda cl, nid: cl.restart(nid), "Stop node NODE_ID if it runs, then start it.")


@cluster.command("partition")
@cluster_location_options
@click.argument("groups", nargs=-1, required=True)
@click.option("--one-way", is_flag=True, help="Block only messages from the first group to the second.")
def partition(run_dir: str | None, config_path: str | None, groups: tuple[str, ...], one_way: bool) -> None:
    """Partition the cluster into GROUPS (each a comma-separated list of ids;
    unnamed nodes form one more group)."""
    cl = attach_cluster(run_dir, config_path)
    sets = [[g for g in group.split(",") if g] for group in groups]
    for s in sets:
        _node_ids(cl, tuple(s))
    if one_way:
        if len(sets) != 2:
            raise click.UsageError("--one-way needs exactly two groups: FROM TO")
        cl.partition_one_way(sets[0], sets[1])
    else:
        cl.partition(*sets)
    click.echo("partitioned: " + (" -> " if one_way else " | ").join(",".join(s) for s in sets))


@cluster.command("heal")
@cluster_location_options
@click.option("--all", "everything", is_flag=True, help="Also clear drop and delay.")
def heal(run_dir: str | None, config_path: str | None, everything: bool) -> None:
    """Remove every partition."""
    cl = attach_cluster(run_dir, config_path)
    if everything:
        cl.clear_faults()
    else:
        cl.heal()
    click.echo("healed" + (" (all faults cleared)" if everything else ""))


@cluster.command("drop")
@cluster_location_options
@click.argument("probability", type=click.FloatRange(0.0, 1.0))
@click.option("--node", "nodes", multiple=True, help="Only these nodes (default: all).")
def drop(run_dir: str | None, config_path: str | None, probability: float, nodes: tuple[str, ...]) -> None:
    """Drop messages sent to peers with PROBABILITY (0 turns it off)."""
    cl = attach_cluster(run_dir, config_path)
    cl.drop(probability, _node_ids(cl, nodes) or None)
    click.echo(f"drop probability {probability} on {', '.join(nodes) or 'all nodes'}")


@cluster.command("delay")
@cluster_location_options
@click.argument("delay_ms", type=click.FloatRange(0.0, 3_600_000.0))
@click.option("--node", "nodes", multiple=True, help="Only these nodes (default: all).")
def delay(run_dir: str | None, config_path: str | None, delay_ms: float, nodes: tuple[str, ...]) -> None:
    """Delay messages sent to peers by DELAY_MS (0 turns it off)."""
    cl = attach_cluster(run_dir, config_path)
    cl.delay(delay_ms, _node_ids(cl, nodes) or None)
    click.echo(f"delay {delay_ms} ms on {', '.join(nodes) or 'all nodes'}")
