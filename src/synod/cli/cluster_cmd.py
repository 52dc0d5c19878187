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
    synod cluster up --new --nodes 5 ...    # a new cluster; the old run moves to RUN_DIR/old-<time>/

Every command finds the cluster through its run directory (``--run-dir``,
default ``runs/cluster``) or its config (``--config``, whose ``run_dir``
counts). ``up`` starts detached node processes and returns, unless
``--foreground``: then it supervises them (``--respawn`` restarts nodes that
exit with a non-zero code) until Ctrl-C, and stops them.

A run directory belongs to one cluster. ``up`` checks before it changes
anything, and a refused ``up`` changes nothing: it refuses while a node of
the run dir runs, when another process listens on a node's address, and
when the nodes, factories or params differ from those of the cluster whose
data the run dir holds (a Raft cluster's membership changes only through
``synod raft member``). ``--new`` starts a new cluster there: the old run's
node folders and state file move to ``RUN_DIR/old-<time>/`` (with a copy of
its config); nothing is deleted. A generated config is written atomically, after the
checks. When a node fails to start, ``up`` names it with the end of its
``node.log`` and exits 1; the nodes that started keep running (a
``--foreground`` supervisor stops them, and says so).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from synod.core.errors import ConfigError, LocalProtocolError

__all__ = ["cluster", "cluster_location_options", "attach_cluster"]

_F = TypeVar("_F", bound=Callable[..., Any])
DEFAULT_RUN_DIR = "runs/cluster"
OLD_RUN_PREFIX = "old-"  # `up --new` moves an old run into RUN_DIR/old-<time>/


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
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the nodes' randomness (each start also mixes in a fresh nonce).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="With --nodes: the address the nodes listen on; one that is not loopback needs --allow-remote.")
@click.option("--allow-remote", is_flag=True,
              help="With --nodes: allow a --host reachable from other hosts (the cluster key is then required, "
                   "as it is by default; a --config file says \"allow_remote\": true itself).")
@click.option("--new", "new_cluster", is_flag=True,
              help=f"Start a new cluster in a run dir that holds another: move the old run's node "
                   f"directories and state to RUN_DIR/{OLD_RUN_PREFIX}<time>/ (nothing is deleted).")
@click.option("--foreground", is_flag=True, help="Supervise the nodes until Ctrl-C.")
@click.option("--respawn", is_flag=True, help="With --foreground: restart nodes that exit non-zero.")
def up(run_dir: str | None, config_path: str | None, n: int | None, factory: str | None, params: str,
       seed: int, host: str, allow_remote: bool, new_cluster: bool, foreground: bool, respawn: bool) -> None:
    """Start the cluster's nodes.

    Checks first and changes nothing when it refuses: a node of the run dir
    still runs; another process listens on a node's address; or the nodes,
    factories or params differ from those of the cluster whose data the run
    dir holds (its membership changes only through membership changes,
    `synod raft member`), unless --new. A node that fails to start is named
    with the end of its node.log; the nodes that did start keep running
    (`synod cluster restart ID` retries one, `synod cluster down` stops all).
    """
    from synod.runtime.cluster import ClusterError, LocalCluster, check_addresses_free
    from synod.runtime.config import load_config, local_spec, write_config

    if respawn and not foreground:
        raise click.UsageError("--respawn needs --foreground (someone must stay to respawn)")
    if config_path is not None and (n is not None or factory is not None):
        raise click.UsageError("--config and --nodes/--factory exclude each other")
    run_path = _run_dir(run_dir, config_path).resolve()
    previous, previous_path = _previous_config(run_path, new_cluster)
    spec = None
    if config_path is not None:
        try:
            target = load_config(config_path)
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
    elif n is None and factory is None:
        if previous is None:
            raise click.UsageError("give --config FILE, or --nodes N and --factory package.module:function "
                                   "(or a --run-dir that has a cluster-config.json)")
        target, config_path = previous, str(previous_path)  # bring a downed cluster back up
    else:
        if n is None or factory is None:
            raise click.UsageError("--nodes and --factory go together")
        try:
            spec = local_spec(n, factory, run_path, params=_params(params), seed=seed, host=host,
                              allow_remote=allow_remote)
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
        target = spec
    # Every check before any change (a refused command changes nothing).
    running = LocalCluster.running_in(run_path)
    if running:
        raise click.ClickException(f"nodes {', '.join(running)} already run in {run_path}; "
                                   "`synod cluster down` first")
    if not new_cluster:
        _check_same_membership(run_path, previous, target)
    if spec is None:
        try:
            check_addresses_free(target, target.nodes)
        except ClusterError as e:
            raise click.ClickException(str(e)) from None
    old_config = previous_path.read_bytes() if new_cluster and previous_path is not None else None
    if spec is not None:
        try:
            _config, path = write_config(spec)  # validates first; then atomically: temp file + rename
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
        config_path = str(path)
    if new_cluster:
        moved = _move_old_run(run_path, old_config)
        if moved is not None:
            click.echo(f"moved the old run to {moved}")
    try:
        cl = LocalCluster(config_path, detach=not foreground, respawn=respawn)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    try:
        cl.start()
    except ClusterError as e:
        _report_failed_start(cl, e, stop_others=foreground)
    _print_status(cl)
    if foreground:
        _supervise(cl)


def _params(text: str) -> dict[str, Any]:
    try:
        params = json.loads(text)
    except json.JSONDecodeError as e:
        raise click.UsageError(f"--params is not JSON: {e}") from None
    if not isinstance(params, dict):
        raise click.UsageError("--params must be a JSON object")
    return params


def _previous_config(run_path: Path, new_cluster: bool) -> tuple[Any, Path | None]:
    """The config of the cluster that ran in ``run_path`` (the one its state
    file names, else its cluster-config.json) and that file; (None, None)
    if there is none. One that does not load is an error, unless
    ``new_cluster`` (it is then moved aside with the rest)."""
    from synod.runtime.cluster import STATE_FILE_NAME
    from synod.runtime.config import CONFIG_FILE_NAME, load_config

    candidates = []
    try:
        candidates.append(Path(json.loads((run_path / STATE_FILE_NAME).read_text())["config"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    candidates.append(run_path / CONFIG_FILE_NAME)
    for path in candidates:
        if not path.exists():
            continue
        try:
            return load_config(path), path
        except ConfigError as e:
            if new_cluster:
                return None, None
            raise click.ClickException(f"{e}; fix it, or start a new cluster with --new") from None
    return None, None


def _members(nodes: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """node id -> (factory, params as canonical JSON): what decides a cluster's membership."""
    return {nid: (node.factory, json.dumps(node.params, sort_keys=True)) for nid, node in nodes.items()}


def _check_same_membership(run_path: Path, previous: Any, target: Any) -> None:
    """Refuse (ClickException) to start ``target`` over the data of a
    different cluster: other node ids, factories or params."""
    if previous is None:
        if _node_dirs(run_path):
            raise click.ClickException(f"{run_path} holds node data but no cluster config; start a new "
                                       f"cluster there with --new (moves the old data to {OLD_RUN_PREFIX}<time>/)")
        return
    old, new = _members(previous.nodes), _members(target.nodes)
    if old == new:
        return
    if set(old) != set(new):
        what = f"nodes {', '.join(new)} where it holds {', '.join(old)}"
    else:
        what = f"other factory or params for {', '.join(nid for nid in new if new[nid] != old[nid])}"
    raise click.ClickException(
        f"{run_path} holds a cluster of {len(old)} nodes; starting {what} would change its membership: use "
        f"`synod raft member`, or start a new cluster with --new (moves the old run to {OLD_RUN_PREFIX}<time>/)")


def _node_dirs(run_path: Path) -> list[Path]:
    """The folders of ``run_path`` that a node has used (a data dir or a log)."""
    from synod.runtime.host import LOG_FILE_NAME

    if not run_path.is_dir():
        return []
    return sorted(d for d in run_path.iterdir() if d.is_dir() and not d.name.startswith(OLD_RUN_PREFIX)
                  and ((d / "data").is_dir() or (d / LOG_FILE_NAME).exists()))


def _move_old_run(run_path: Path, old_config: bytes | None) -> Path | None:
    """Move the old run's node folders and state file into
    ``run_path/old-<time>/``, with its config (``old_config``, the file's
    bytes) beside them; supervisor.log and the cluster key stay. The folder,
    or None if there was nothing to move."""
    import time

    from synod.runtime.cluster import STATE_FILE_NAME
    from synod.runtime.config import CONFIG_FILE_NAME

    names = [d.name for d in _node_dirs(run_path)]
    names += [STATE_FILE_NAME] if (run_path / STATE_FILE_NAME).exists() else []
    if not names:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = run_path / f"{OLD_RUN_PREFIX}{stamp}"
    i = 1
    while dest.exists():
        dest, i = run_path / f"{OLD_RUN_PREFIX}{stamp}-{i}", i + 1
    dest.mkdir()
    if old_config is not None:
        (dest / CONFIG_FILE_NAME).write_bytes(old_config)
    for name in names:
        os.replace(run_path / name, dest / name)
    return dest


def _report_failed_start(cl: Any, e: Any, *, stop_others: bool) -> None:
    """Say which nodes did not start and why (one line, then the end of each
    one's log), and which run; exit 1. ``stop_others`` (a foreground
    supervisor, whose nodes cannot outlive it): stop them, and say so."""
    if not e.failed:  # nothing was started (an address is taken)
        raise click.ClickException(str(e))
    reasons = "; ".join(f"{nid} {why}" for nid, why in e.failed.items())
    click.echo(f"Error: {', '.join(e.failed)} did not start: {reasons}", err=True)
    for nid in e.failed:
        click.echo(f"  last lines of {cl.log_path(nid)}:", err=True)
        for line in cl.log_tail(nid, 5):
            click.echo(f"    {line}", err=True)
    others = [nid for nid in cl.node_ids if nid not in e.failed and cl.is_alive(nid)]
    if stop_others and others:
        cl.stop()
        click.echo(f"stopped {', '.join(others)} (a foreground cluster does not outlive its supervisor)", err=True)
    elif others:
        first = next(iter(e.failed))
        click.echo(f"{', '.join(others)} {'is' if len(others) == 1 else 'are'} running: fix {first}, then "
                   f"`synod cluster restart {first}`; or `synod cluster down`", err=True)
    sys.exit(1)


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
