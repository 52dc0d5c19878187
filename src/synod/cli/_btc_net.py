"""``synod btc up|status|down``: a local Bitcoin network of real processes
(issue 14 section 4).

::

    synod btc up [--nodes 5] [--miners 2] [--block-interval 2s] [--dir runs/btc]
    synod btc status [--dir runs/btc] [--json]
    synod btc down [--dir runs/btc]

``up`` writes the spec of :func:`synod.harness.btc_real.network_spec`
(full nodes ``n1..``, miners ``m1..`` splitting the hash power, every node
peered with every other, each with a Bitcoin P2P port and a JSON-RPC port)
and starts it detached (the machinery of ``synod kv up``); it returns once
every node answers RPC. ``status`` asks each node over RPC for its height,
tip, peers and mempool. The RPC password is in ``RUN_DIR/rpc.password``
(user ``synod``), for bitcoin-cli or python-bitcoinlib.

Exit status: 0 done; 1 the network is not there or did not start; 2 bad
arguments.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import click

__all__ = ["up", "status", "down"]

DEFAULT_RUN_DIR = "runs/btc"
READY_TIMEOUT_S = 30.0
POLL_S = 0.1
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min)?\s*$")
_UNIT_MS = {None: 1000.0, "s": 1000.0, "ms": 1.0, "m": 60_000.0, "min": 60_000.0}


def _dir_option(fn: Any) -> Any:
    return click.option("--dir", "run_dir", type=click.Path(file_okay=False), default=DEFAULT_RUN_DIR,
                        show_default=True, help="The network's run directory.")(fn)


def _interval_ms(text: str) -> float:
    m = _DURATION.match(text)
    if m is None or float(m.group(1)) <= 0:
        raise click.BadParameter(f"{text!r}: a duration like 2s, 500ms or 1m", param_hint="--block-interval")
    return float(m.group(1)) * _UNIT_MS[m.group(2)]


def _config(run_dir: str) -> Any:
    from synod.cli.kv_cmd import load_run_config
    from synod.harness.btc_real import is_network

    return load_run_config(run_dir, noun="Bitcoin network", command="btc", is_kind=is_network)


def _statuses(config: Any, run_dir: str, alive: dict[str, bool] | None = None) -> dict[str, dict[str, Any] | None]:
    from synod.harness.btc_real import node_status, rpc_credentials

    credentials = rpc_credentials(run_dir)
    return {nid: (node_status(n.client_ports["rpc"], credentials) if alive is None or alive[nid] else None)
            for nid, n in config.nodes.items()}


@click.command("up")
@_dir_option
@click.option("--nodes", type=click.IntRange(0, 24), default=5, show_default=True, help="Full nodes (no hash power).")
@click.option("--miners", type=click.IntRange(0, 8), default=2, show_default=True,
              help="Miners, splitting the hash power evenly.")
@click.option("--block-interval", "block_interval", default="2s", show_default=True,
              help="Mean time between blocks across the network (2s, 500ms, 1m).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.5, 600.0), default=READY_TIMEOUT_S, show_default=True,
              help="Seconds to wait for every node to answer RPC.")
def up(run_dir: str, nodes: int, miners: int, block_interval: str, timeout_s: float) -> None:
    """Start a network in the background: NODES full nodes and MINERS
    miners on 127.0.0.1, every one peered with every other, mining at
    regtest difficulty. A run dir holding a stopped network starts it again
    (every node replays its blocks).

    Refused (exit 1, nothing started) while a node of RUN_DIR runs."""
    from synod.cli.kv_cmd import start_or_restart
    from synod.harness.btc_real import PASSWORD_FILE, RPC_USER, network_spec

    interval_ms = _interval_ms(block_interval)
    run_path = Path(run_dir).resolve()
    t0 = time.monotonic()
    cl, previous = start_or_restart(run_dir, noun="network", command="btc", load=_config, make_spec=lambda path: network_spec(
        path, nodes=nodes, miners=miners, block_interval_ms=interval_ms))
    deadline = time.monotonic() + timeout_s
    while True:
        states = _statuses(cl.config, str(run_path))
        if all(s is not None for s in states.values()):
            break
        if time.monotonic() >= deadline:
            late = ", ".join(n for n, s in states.items() if s is None)
            raise click.ClickException(f"{late} did not answer RPC within {timeout_s:g} s; the nodes still run: "
                                       f"`synod btc status --dir {run_dir}`, `synod btc down --dir {run_dir}`")
        time.sleep(POLL_S)
    what = "started again (every node replayed its blocks)" if previous else "started"
    click.echo(f"Bitcoin network (regtest) in {cl.run_dir} {what} after {time.monotonic() - t0:.1f} s")
    for nid in cl.node_ids:
        node = cl.config.nodes[nid]
        share = node.params.get("hash_share", 0.0)
        click.echo(f"  {nid:4} p2p {node.client_ports['p2p']:5}  rpc {node.client_ports['rpc']:5}  "
                   f"pid {cl.pid(nid) or '-':>7}  {'miner, hash share ' + format(share, '.2f') if share else 'full node'}")
    first = cl.config.nodes[cl.node_ids[0]].client_ports["rpc"]
    click.echo(f"RPC user {RPC_USER}, password in {cl.run_dir / PASSWORD_FILE}; e.g.")
    click.echo(f"  bitcoin-cli -regtest -rpcport={first} -rpcuser={RPC_USER} "
               f"-rpcpassword=$(cat {cl.run_dir / PASSWORD_FILE}) getblockchaininfo")
    click.echo(f"then: synod btc status --dir {run_dir}  |  synod btc down --dir {run_dir}")


@click.command("status")
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(run_dir: str, as_json: bool) -> None:
    """Each node's process, height, tip, peers and mempool (over RPC)."""
    from synod.runtime.cluster import ClusterError, LocalCluster

    config = _config(run_dir)
    try:
        cl = LocalCluster.attach(Path(run_dir))
    except ClusterError as e:
        raise click.ClickException(str(e)) from None
    alive = {nid: cl.is_alive(nid) for nid in cl.node_ids}
    states = _statuses(config, run_dir, alive)
    rows = {nid: {"pid": cl.pid(nid), "alive": alive[nid], "miner": config.nodes[nid].params.get("hash_share", 0.0) > 0,
                  **(states[nid] or {})} for nid in cl.node_ids}
    if as_json:
        click.echo(json.dumps({"nodes": rows}))
        return
    for nid, r in rows.items():
        if "height" in r:
            click.echo(f"{nid:4} up    pid {r['pid']:>7}  height {r['height']:6}  tip {r['tip'][:16]}…  "
                       f"peers {r['peers']:2}  mempool {r['mempool']}")
        else:
            click.echo(f"{nid:4} {'up' if r['alive'] else 'down':5} pid {r['pid'] or '-':>7}"
                       + ("  (not answering RPC)" if r["alive"] else ""))
    tips = {r["tip"] for r in rows.values() if "tip" in r}
    if tips:
        click.echo("every node on one tip" if len(tips) == 1 else f"{len(tips)} different tips (a fork, or a block in flight)")


@click.command("down")
@_dir_option
def down(run_dir: str) -> None:
    """Stop every process of the network (SIGTERM, then SIGKILL). Exit 1 if one still runs."""
    from synod.cli.kv_cmd import stop_in

    stop_in(run_dir, noun="the network", load=_config)
