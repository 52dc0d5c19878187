"""``synod kv``: a local cluster of KV servers (:mod:`synod.kv.node`) that
real Redis clients talk to.

::

    synod kv up --nodes 3 [--base-port 7001] [--dir runs/kv]   # then: redis-cli -p 7001
    synod kv status [--dir runs/kv] [--json]
    synod kv member add n4 | remove n1 [--dir runs/kv]
    synod kv down [--dir runs/kv]

``up`` writes a cluster config of N :class:`~synod.kv.node.KvNode` servers
(factory ``synod.kv.node:factory``), each with a RESP port (``client_ports``:
``--base-port B`` gives node i the port B+i-1, otherwise free ports; the
Raft ports are always free ones), starts them detached with the machinery of
``synod cluster up`` (:class:`~synod.runtime.cluster.LocalCluster`, its run
dir and state file) and returns once a leader has served a write: a SET of
a private key, through the log, then its DEL. A run dir that holds a stopped
KV cluster is started again from its own config (its data kept); ``--new``
moves the old run to ``RUN_DIR/old-<time>/`` first, as ``synod cluster up
--new`` does.

``status`` asks every node ``INFO replication`` on its RESP port (role,
term, leader, commit and applied index, voters and learners). ``member``
changes membership through Raft, one server at a time (thesis 4.1), with the
requests and retries of ``synod raft member``: ``add`` writes the new node
into the config with ``voters`` = the leader's current voters (so it starts
as a learner that never campaigns, thesis 4.2.1), starts its process, adds
it as a learner and promotes it once it has caught up (the leader refuses
before); ``remove`` removes it from the voters (there is no
demote-to-learner change), then stops its process and drops it from the
config. The running servers keep the config they started with; the new
node announces itself to each of them in its authenticated handshake, and
they record its address (:mod:`synod.runtime.transport`, "Address book"),
so the leader, and every later one, reaches it.

Exit status: 0 done; 1 the cluster is not there or not answering, a node
did not start, or no write was served in time (a message says which); 2 bad
arguments; 3 a membership change whose outcome is unknown (as ``synod raft
member``).

The RESP client here (:func:`resp_call`) is a few lines over
:func:`~synod.kv.resp_client.encode_command` and
:class:`~synod.kv.resp_client.RespReader`, so the CLI needs no Redis library.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from synod.cli.cluster_cmd import _move_old_run, _node_dirs, _previous_config
from synod.core.errors import ConfigError, RemoteProtocolError

__all__ = ["kv", "resp_call", "info_replication", "wait_for_write", "DEFAULT_RUN_DIR", "READY_KEY"]

DEFAULT_RUN_DIR = "runs/kv"
READY_KEY = "__synod:kv-up:ready__"   # the private key `up` writes (then deletes) to see a leader serve
READY_TIMEOUT_S = 20.0                 # `up`'s default wait for a served write
CALL_TIMEOUT_S = 1.0                   # one RESP call's wait for its reply
POLL_S = 0.05                          # pause between rounds of attempts
REPLY_BYTES_MAX = 1 << 20              # what resp_call reads before giving up on a reply
FACTORY = "synod.kv.node:factory"      # synod.kv.node.FACTORY, without importing the server here


# -- a small RESP client ----------------------------------------------------------------------

def resp_call(port: int, *args: bytes | str | int, host: str = "127.0.0.1",
              timeout_s: float = CALL_TIMEOUT_S) -> Any:
    """Send one command on a new connection and return its reply, a
    :mod:`synod.kv.replies` value (an error reply is a ``SimpleError``, not
    an exception).

    Raises:
        OSError: cannot connect, no reply within ``timeout_s`` seconds (per
            read), or the connection closed first.
        RemoteProtocolError: the bytes are not RESP, or over
            ``REPLY_BYTES_MAX``.
    """
    from synod.kv.resp_client import RespReader, encode_command

    with socket.create_connection((host, port), timeout=timeout_s) as s:
        s.sendall(encode_command(args))
        reader = RespReader(buffer_bytes_max=REPLY_BYTES_MAX)
        while True:
            data = s.recv(65536)
            if not data:
                raise ConnectionError(f"{host}:{port} closed the connection before replying")
            replies = reader.receive_data(data)
            if replies:
                return replies[0]


def _error_text(reply: Any) -> str | None:
    from synod.kv.replies import SimpleError

    return reply.text if type(reply) is SimpleError else None


def info_replication(port: int, *, host: str = "127.0.0.1", timeout_s: float = CALL_TIMEOUT_S) -> dict[str, str] | None:
    """``INFO replication`` of the server on ``port`` as field -> text
    (``role``, ``raft_role``, ``raft_term``, ``raft_leader``,
    ``raft_commit_index``, ``raft_applied_index``, ``raft_members``,
    ``raft_learners``); None if it does not answer or answers an error."""
    try:
        reply = resp_call(port, "INFO", "replication", host=host, timeout_s=timeout_s)
    except (OSError, RemoteProtocolError):
        return None
    text = getattr(reply, "text", None)
    if text is None:
        data = getattr(reply, "data", None)
        text = data.decode(errors="replace") if isinstance(data, bytes) else None
    if text is None or _error_text(reply) is not None:
        return None
    fields = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


def wait_for_write(ports: dict[str, int], timeout_s: float, *, key: str = READY_KEY,
                   host: str = "127.0.0.1") -> tuple[str, float]:
    """Send ``SET key <time>`` to each server in turn until one answers OK
    (a leader committed it, or a follower forwarded it and relayed the
    answer), then DEL it the same way. ``ports``: node id -> RESP port.
    Returns (the node that answered the SET, seconds waited).

    Raises:
        TimeoutError: no OK within ``timeout_s`` seconds; its message is
            the last answer or error seen.
    """
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    why = "no answer"
    for command in (("SET", key, str(time.time())), ("DEL", key)):
        served = None
        while served is None:
            for nid, port in ports.items():
                try:
                    reply = resp_call(port, *command, host=host)
                except (OSError, RemoteProtocolError) as e:
                    why = f"{nid}: {e or type(e).__name__}"
                    continue
                err = _error_text(reply)
                if err is None:
                    served = nid
                    break
                why = f"{nid}: {err}"  # TRYAGAIN (no leader yet) or UNCERTAIN: try again
            if served is None:
                if time.monotonic() >= deadline:
                    raise TimeoutError(why)
                time.sleep(POLL_S)
        if command[0] == "SET":
            first, waited_s = served, time.monotonic() - t0
    return first, waited_s


# -- the cluster ----------------------------------------------------------------------------

def _dir_option(fn: Any) -> Any:
    return click.option("--dir", "run_dir", type=click.Path(file_okay=False), default=DEFAULT_RUN_DIR,
                        show_default=True, help="The cluster's run directory.")(fn)


def _attach(run_dir: str) -> Any:
    """The cluster a detached ``up`` left in ``run_dir``; ClickException
    (exit 1) if there is none."""
    from synod.runtime.cluster import STATE_FILE_NAME, ClusterError, LocalCluster

    state = Path(run_dir) / STATE_FILE_NAME
    if not state.exists():
        raise click.ClickException(f"no KV cluster in {run_dir} (no {STATE_FILE_NAME} there); start one with "
                                   f"`synod kv up --dir {run_dir}`")
    try:
        return LocalCluster.attach(Path(run_dir))
    except (ClusterError, ConfigError, KeyError) as e:
        raise click.ClickException(f"cannot attach to the KV cluster in {run_dir}: {e}") from None


def _resp_ports(config: Any) -> dict[str, int]:
    """node id -> RESP port, for the nodes of ``config`` that have one."""
    return {nid: n.client_ports["resp"] for nid, n in config.nodes.items() if "resp" in n.client_ports}


def _check_ports_free(host: str, ports: list[int]) -> None:
    """ClickException (exit 1) naming the first of ``ports`` that cannot be bound."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as e:
                raise click.ClickException(f"port {port} on {host} is not free ({e.strerror}); "
                                           "give another --base-port, or none for free ports") from None


def _stop_detached(cl: Any, what: str, stopped: Callable[[list[str]], str]) -> None:
    """``down`` of a detached cluster (kv, memcache, zk): stop every process
    of ``cl`` (SIGTERM, then SIGKILL) and say what was stopped, as
    ``stopped(running node ids)``, or that nothing ran.

    Raises:
        click.ClickException: a process of the run dir still runs (exit 1).
    """
    from synod.runtime.cluster import LocalCluster

    running = [nid for nid in cl.node_ids if cl.is_alive(nid)]
    cl.stop()
    left = LocalCluster.running_in(cl.run_dir)
    if left:
        raise click.ClickException(f"still running after stop: {', '.join(left)}")
    if running:
        click.echo(f"stopped {stopped(running)}; nothing of {what} in {cl.run_dir} runs")
    else:
        click.echo(f"nothing was running in {cl.run_dir}")


def _nodes_table(states: dict[str, dict[str, Any]], columns: tuple[str, ...], keys: tuple[str, str]) -> Any:
    """The table ``up`` prints: per node its id, its client and node ports
    (``keys``: their names in ``states``' rows), pid and role; ``columns``:
    the five headers."""
    from rich.table import Table

    table = Table()
    for col in columns:
        table.add_column(col, justify="right" if "port" in col or col == "pid" else "left")
    for nid, row in states.items():
        table.add_row(nid, str(row[keys[0]]), str(row[keys[1]]), str(row["pid"] or "-"), row.get("role", row["state"]))
    return table


def _start_detached(config_path: Path, previous: Any) -> Any:
    """Start the cluster of ``config_path`` in the background (its
    processes outlive this CLI) and return its LocalCluster. ``previous``:
    the config of a stopped cluster being started again (None: a new one),
    whose ports are checked first (ClickException, exit 1, if one is taken).
    A node that does not start: :func:`_fail_start`. Shared by ``synod kv up``
    and ``synod memcache up``."""
    from synod.runtime.cluster import ClusterError, LocalCluster, check_addresses_free

    if previous is not None:
        for node in previous.nodes.values():
            _check_ports_free(node.host, list(node.client_ports.values()))
        try:
            check_addresses_free(previous, previous.nodes)
        except ClusterError as e:
            raise click.ClickException(str(e)) from None
    cl = LocalCluster(config_path, detach=True)
    try:
        cl.start()
    except ClusterError as e:
        _fail_start(cl, e)
    return cl


def load_run_config(run_dir: str, *, noun: str, command: str, is_kind: Any) -> Any:
    """The config of the cluster in ``run_dir``, read for ``synod <command>``:
    a clear error (ClickException) when there is none (naming ``synod
    <command> up``), it cannot be read, or ``is_kind(config)`` says it is
    another kind of cluster than a ``noun``. Shared by gfs and btc."""
    from synod.runtime.config import CONFIG_FILE_NAME, load_config

    path = Path(run_dir) / CONFIG_FILE_NAME
    if not path.exists():
        raise click.ClickException(f"no {noun} in {run_dir}; start one with `synod {command} up --dir {run_dir}`")
    try:
        config = load_config(path)
    except ConfigError as e:
        raise click.ClickException(f"cannot read the {noun}'s config in {run_dir}: {e}") from None
    if not is_kind(config):
        raise click.ClickException(f"{run_dir} holds a cluster that is not a {noun}")
    return config


def start_or_restart(run_dir: str, *, noun: str, command: str, make_spec: Any, load: Any) -> tuple[Any, bool]:
    """``synod <command> up``'s common part: refuse while a node of
    ``run_dir`` runs; start the stopped cluster found there again (its
    config read by ``load(run_dir)``), or write ``make_spec(run_path)``'s
    config (a ``ConfigError``/``ValueError`` from it is a usage error) and
    start that; returns (the LocalCluster, whether it was started again).
    Shared by ``synod gfs up`` and ``synod btc up``."""
    from synod.runtime.cluster import LocalCluster
    from synod.runtime.config import CONFIG_FILE_NAME, load_config, write_config

    run_path = Path(run_dir).resolve()
    if LocalCluster.running_in(run_path):
        raise click.ClickException(f"a {noun} already runs in {run_path}; `synod {command} status --dir {run_dir}` "
                                   f"shows it, `synod {command} down --dir {run_dir}` stops it")
    config_path = run_path / CONFIG_FILE_NAME
    restarted = config_path.exists()
    if restarted:
        load(str(run_path))   # (refuses a run dir holding another kind of cluster)
    else:
        try:
            _, config_path = write_config(make_spec(run_path))
        except (ConfigError, ValueError) as e:
            raise click.UsageError(str(e)) from None
    return _start_detached(config_path, load_config(config_path) if restarted else None), restarted


def stop_in(run_dir: str, *, noun: str, load: Any) -> None:
    """``synod <command> down``'s common part: the cluster of ``run_dir``
    (its config read by ``load(run_dir)``, which refuses another kind)
    stopped, SIGTERM then SIGKILL; exit 1 if a process still runs. Shared
    by ``synod gfs down`` and ``synod btc down``."""
    from synod.runtime.cluster import ClusterError, LocalCluster

    load(run_dir)
    try:
        cl = LocalCluster.attach(Path(run_dir))
    except ClusterError as e:
        raise click.ClickException(str(e)) from None
    _stop_detached(cl, noun, lambda running: ", ".join(running))


def _fail_start(cl: Any, e: Any) -> None:
    """A node did not start: stop the others, name each failed node with the
    end of its log, exit 1."""
    cl.stop()
    for nid, why in (e.failed or {"cluster": str(e)}).items():
        click.echo(f"Error: {nid} did not start: {why}", err=True)
        if nid in cl.config.nodes:
            for line in cl.log_tail(nid, 5):
                click.echo(f"    {line}", err=True)
    click.echo(f"stopped the nodes that did start; logs are in {cl.run_dir}", err=True)
    raise SystemExit(1)


@click.group()
def kv() -> None:
    """A Redis-compatible KV store on Raft: local clusters for redis-cli and redis-py.

    Exit status: 0 done; 1 the cluster is not there or not answering; 2 bad
    arguments; 3 a membership change whose outcome is unknown.
    """


def _target_config(run_path: Path, n: int | None, base_port: int | None,
                   new_cluster: bool) -> tuple[Any, Path | None]:
    """The config to start in ``run_path`` and its file: the stopped
    cluster's own, or (None, None): write a new one (after moving the old
    run aside, with --new).
    Refuses (ClickException) a run dir whose cluster differs from the
    arguments, or that holds data of no known cluster."""
    previous, previous_path = _previous_config(run_path, new_cluster)
    if new_cluster:
        old = previous_path.read_bytes() if previous_path is not None else None
        moved = _move_old_run(run_path, old)
        if moved is not None:
            click.echo(f"moved the old run to {moved}")
        return None, None
    hint = "or start a new cluster there with --new (moves the old run to RUN_DIR/old-<time>/)"
    if previous is None:
        if _node_dirs(run_path):
            raise click.ClickException(f"{run_path} holds node data but no cluster config; {hint}")
        return None, None
    if any(node.factory != FACTORY for node in previous.nodes.values()):
        raise click.ClickException(f"{run_path} holds a cluster that is not a KV cluster; {hint}")
    ports = sorted(_resp_ports(previous).values())
    if n is not None and n != len(previous.nodes):
        raise click.ClickException(f"{run_path} holds a KV cluster of {len(previous.nodes)} nodes, not {n}: "
                                   f"`synod kv up --dir {run_path}` starts it again, {hint}")
    if base_port is not None and ports != list(range(base_port, base_port + len(ports))):
        raise click.ClickException(f"{run_path} holds a KV cluster on RESP ports {ports}, not from {base_port}: "
                                   f"`synod kv up --dir {run_path}` starts it again, {hint}")
    return previous, previous_path


@kv.command("up")
@_dir_option
@click.option("--nodes", "n", type=click.IntRange(1, 99), default=None,
              help="Servers in a new cluster (default 3).")
@click.option("--base-port", type=click.IntRange(1, 65535), default=None,
              help="RESP port of n1; node i gets BASE_PORT+i-1 (default: free ports).")
@click.option("--new", "new_cluster", is_flag=True,
              help="The run dir holds another cluster: move it to RUN_DIR/old-<time>/ and start a new one.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.5, 600.0), default=READY_TIMEOUT_S,
              show_default=True, help="Seconds to wait for a leader to serve a write.")
def up(run_dir: str, n: int | None, base_port: int | None, new_cluster: bool, timeout_s: float) -> None:
    """Start a local KV cluster in the background; return once a leader
    serves a write, printing each node's RESP port and a redis-cli line.

    Refused (exit 1, nothing changed) while a node of RUN_DIR runs, or
    when a RESP port is taken."""
    from synod.runtime.cluster import LocalCluster
    from synod.runtime.config import local_spec, write_config

    size = n if n is not None else 3
    if base_port is not None and base_port + size - 1 > 65535:
        raise click.UsageError(f"--base-port {base_port} with {size} nodes goes past port 65535")
    run_path = Path(run_dir).resolve()
    running = LocalCluster.running_in(run_path)
    if running:
        raise click.ClickException(f"a KV cluster already runs in {run_path} (nodes {', '.join(running)}); "
                                   f"`synod kv status --dir {run_dir}` shows it, `synod kv down --dir {run_dir}` "
                                   "stops it")
    if base_port is not None:
        _check_ports_free("127.0.0.1", list(range(base_port, base_port + size)))
    previous, config_path = _target_config(run_path, n, base_port, new_cluster)
    if previous is None:
        spec = local_spec(size, FACTORY, run_path, client_protocols=("resp",))
        if base_port is not None:
            for i, node in enumerate(spec.nodes.values()):
                node.client_ports["resp"] = base_port + i
        try:
            _config, config_path = write_config(spec)
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
    t0 = time.monotonic()
    cl = _start_detached(config_path, previous)
    ports = _resp_ports(cl.config)
    try:
        wait_for_write(ports, timeout_s)
    except TimeoutError as e:
        raise click.ClickException(f"no leader served a write within {timeout_s:g} s (last answer: {e}); the "
                                   f"nodes still run: `synod kv status --dir {run_dir}`, `synod kv down --dir "
                                   f"{run_dir}`") from None
    _print_up(cl, ports, time.monotonic() - t0, restarted=previous is not None)


def _console() -> Any:
    from rich.console import Console

    console = Console(soft_wrap=True, highlight=False)
    if not console.is_terminal:  # a pipe or a file: room for the whole table
        console = Console(soft_wrap=True, highlight=False, width=160)
    return console


def _states(cl: Any) -> dict[str, dict[str, Any]]:
    """node id -> what ``status`` shows: pid, ports, ``state`` ("up", "down"
    or "not answering") and, when up, the INFO replication fields as
    ``role``, ``term``, ``leader``, ``commit_index``, ``applied_index``,
    ``members`` (voters) and ``learners`` (lists of ids)."""
    out: dict[str, dict[str, Any]] = {}
    for nid, node in cl.config.nodes.items():
        port = node.client_ports.get("resp")
        alive = cl.is_alive(nid)
        info = info_replication(port, host=node.host) if alive and port is not None else None
        row: dict[str, Any] = {"pid": cl.pid(nid), "resp_port": port, "raft_port": node.port,
                               "state": "up" if info is not None else "not answering" if alive else "down"}
        if info is not None:
            row.update(role=info.get("raft_role", info.get("role", "?")), term=int(info.get("raft_term", 0)),
                       leader=info.get("raft_leader") or None,
                       commit_index=int(info.get("raft_commit_index", 0)),
                       applied_index=int(info.get("raft_applied_index", 0)),
                       members=[m for m in info.get("raft_members", "").split(",") if m],
                       learners=[m for m in info.get("raft_learners", "").split(",") if m])
        out[nid] = row
    return out


def _leader(states: dict[str, dict[str, Any]]) -> tuple[str | None, int]:
    """The highest-term node that says it leads, and its term (None, 0 if none)."""
    leaders = [(row["term"], nid) for nid, row in states.items() if row.get("role") == "leader"]
    if not leaders:
        return None, 0
    term, nid = max(leaders)
    return nid, term


def _print_up(cl: Any, ports: dict[str, int], took_s: float, *, restarted: bool) -> None:

    states = _states(cl)
    leader, term = _leader(states)
    console = _console()
    what = "started again (its data kept)" if restarted else "started"
    console.print(f"KV cluster of {len(ports)} nodes in {cl.run_dir} {what}; leader {leader or '?'} (term {term}) "
                  f"served a write after {took_s:.1f} s")
    console.print(_nodes_table(states, ("node", "RESP port", "raft port", "pid", "role"), ("resp_port", "raft_port")))
    click.echo("connect with any of (followers forward writes to the leader):")
    for nid, port in ports.items():
        click.echo(f"  redis-cli -p {port}    # {nid}")
    dir_arg = f" --dir {cl.run_dir}"
    click.echo(f"then: synod kv status{dir_arg}  |  synod kv down{dir_arg}")


@kv.command("status")
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON: node id -> fields.")
def status(run_dir: str, as_json: bool) -> None:
    """Each node's role, term, leader, commit and applied index and members,
    from INFO replication on its RESP port. Exit 1 if no node answers."""
    from rich.table import Table

    cl = _attach(run_dir)
    states = _states(cl)
    if as_json:
        click.echo(json.dumps(states, indent=2))
    else:
        table = Table(title=f"KV cluster in {cl.run_dir}")
        for col in ("node", "RESP port", "pid", "role", "term", "leader", "commit", "applied", "members"):
            table.add_column(col, justify="right" if col in ("RESP port", "pid", "term", "commit", "applied")
                             else "left")
        for nid, row in states.items():
            if row["state"] != "up":
                table.add_row(nid, str(row["resp_port"]), str(row["pid"] or "-"), row["state"])
                continue
            members = ",".join(row["members"]) + (f" learners={','.join(row['learners'])}" if row["learners"] else "")
            table.add_row(nid, str(row["resp_port"]), str(row["pid"]), row["role"], str(row["term"]),
                          row["leader"] or "-", str(row["commit_index"]), str(row["applied_index"]), members)
        _console().print(table)
    if not any(row["state"] == "up" for row in states.values()):
        raise click.ClickException(f"no node of the KV cluster in {cl.run_dir} answers; "
                                   f"`synod kv up --dir {run_dir}` starts it again")


@kv.command("down")
@_dir_option
def down(run_dir: str) -> None:
    """Stop every node process of the cluster (SIGTERM, then SIGKILL) and
    check that none runs. Exit 1 if one still does."""
    _stop_detached(_attach(run_dir), "the KV cluster", lambda running: ", ".join(running))


@kv.group("member")
def member() -> None:
    """Add or remove one server, through Raft (thesis 4.1)."""


_timeout = click.option("--timeout", "timeout_s", type=click.FloatRange(0.1, 3600.0), default=10.0,
                        show_default=True, help="Seconds to keep sending each membership change.")


@member.command("add")
@_dir_option
@_timeout
@click.option("--resp-port", type=click.IntRange(0, 65535), default=0,
              help="The new node's RESP port (default: a free one).")
@click.argument("node_id")
def member_add(run_dir: str, timeout_s: float, resp_port: int, node_id: str) -> None:
    """Start NODE_ID as a new server and make it a voter: written into the
    config, started as a learner (its voters are the current ones),
    added as a learner, promoted once caught up (thesis 4.2.1). NODE_ID must
    be new to the cluster (1-64 of [A-Za-z0-9_.-])."""
    from synod.cli.raft_cmd import _until_applied
    from synod.raft.messages import ConfChangeRequest
    from synod.runtime.cluster import ClusterError

    cl = _attach(run_dir)
    _need_running(cl, run_dir)
    if node_id in cl.config.nodes and cl.is_alive(node_id):
        raise click.UsageError(f"{node_id} already runs in this cluster (nodes: {', '.join(cl.node_ids)})")
    if node_id in cl.config.nodes or cl.data_dir(node_id).exists():
        # The servers started with it in their config would keep sending to
        # its old address; a new id is learned from its own handshake.
        raise click.UsageError(f"{node_id} was in this cluster before ({cl.node_dir(node_id)}); "
                               f"add the server under a new id")
    if resp_port:
        _check_ports_free("127.0.0.1", [resp_port])
    voters = _current_voters(cl, timeout_s)
    try:
        cl.add_node(node_id, FACTORY, {"voters": voters}, client_ports={"resp": resp_port}, start=False)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    try:
        cl.start([node_id])
    except ClusterError as e:
        _fail_one(cl, node_id, e)
    added = _until_applied(cl, lambda rid: ConfChangeRequest(request_id=rid, op="add-learner", node_id=node_id),
                           timeout_s)
    click.echo(f"index {added.index}: {node_id} added as a learner")
    promoted = _until_applied(cl, lambda rid: ConfChangeRequest(request_id=rid, op="promote", node_id=node_id),
                              timeout_s)
    click.echo(f"index {promoted.index}: {node_id} promoted to voter")
    port = cl.config.nodes[node_id].client_ports["resp"]
    click.echo(f"{node_id} serves RESP on port {port}:  redis-cli -p {port}")


def _need_running(cl: Any, run_dir: str) -> None:
    """ClickException (exit 1) unless some node of ``cl`` runs."""
    if not any(cl.is_alive(nid) for nid in cl.node_ids):
        raise click.ClickException(f"no node of the KV cluster in {cl.run_dir} runs; "
                                   f"`synod kv up --dir {run_dir}` starts it again")


def _current_voters(cl: Any, timeout_s: float) -> list[str]:
    """The voters of the leader's configuration (thesis 4.1: the latest in
    its log), asked until ``timeout_s`` passes; ClickException (exit 1,
    nothing changed) if no leader answers."""
    from synod.harness.raft_client import RETRY_PAUSE_S, leader_of, status_of

    deadline = time.monotonic() + timeout_s
    while True:
        leader = leader_of(cl)
        st = status_of(cl, leader) if leader is not None else None
        if st is not None and st.role == "leader" and st.voters:
            return list(st.voters)
        if time.monotonic() >= deadline:
            raise click.ClickException(f"no leader answered within {timeout_s:g} s, so the current voters are "
                                       f"unknown; nothing was changed (`synod kv status --dir {cl.run_dir}`)")
        time.sleep(RETRY_PAUSE_S)


def _fail_one(cl: Any, node_id: str, e: Any) -> None:
    """``node_id`` did not start: stop it, take it out of the config again,
    show the end of its log; exit 1."""
    from synod.runtime.config import parse_config

    cl.stop_node(node_id)
    raw = cl.config.to_json()
    del raw["nodes"][node_id]
    parse_config(raw, source=str(cl.config_path)).save(cl.config_path)
    click.echo(f"Error: {node_id} did not start: {e.failed.get(node_id, e)}", err=True)
    for line in cl.log_tail(node_id, 5):
        click.echo(f"    {line}", err=True)
    raise SystemExit(1)


@member.command("remove")
@_dir_option
@_timeout
@click.argument("node_id")
def member_remove(run_dir: str, timeout_s: float, node_id: str) -> None:
    """Remove NODE_ID from the voters through Raft, then stop its process
    and drop it from the config (its folder stays)."""
    from synod.cli.raft_cmd import _until_applied
    from synod.raft.messages import ConfChangeRequest
    from synod.runtime.config import parse_config

    cl = _attach(run_dir)
    _need_running(cl, run_dir)
    if node_id not in cl.config.nodes:
        raise click.UsageError(f"no node {node_id!r} in the KV cluster (nodes: {', '.join(cl.node_ids)})")
    if len(cl.config.nodes) == 1:
        raise click.UsageError(f"{node_id} is the only node: `synod kv down --dir {run_dir}` stops the cluster")
    removed = _until_applied(cl, lambda rid: ConfChangeRequest(request_id=rid, op="remove", node_id=node_id),
                             timeout_s)
    click.echo(f"index {removed.index}: {node_id} removed from the members")
    cl.stop_node(node_id)
    raw = cl.config.to_json()
    del raw["nodes"][node_id]
    parse_config(raw, source=str(cl.config_path)).save(cl.config_path)
    click.echo(f"stopped {node_id}; its folder {cl.node_dir(node_id)} stays")
