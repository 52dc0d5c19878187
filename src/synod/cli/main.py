"""Entry point of the ``synod`` command.

Sub-command groups live in their own modules under ``synod.cli`` and are
loaded lazily: ``synod --help`` lists them from the table below without
importing any, and ``synod X ...`` imports only group X's module, so start-up
does not pay for every system. A bad argument prints what was wrong and
exits with status 2.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from synod import __version__

__all__ = ["main", "cli", "COMMANDS"]

# name -> (module, attribute, one-line help shown by ``synod --help``).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "btc": ("synod.cli.btc_cmd", "btc", "Bitcoin (Nakamoto 2008) as Core enforces it: validate real blocks and headers."),
    "check": ("synod.cli.check_cmd", "check", "Check recorded histories (linearizability) of concurrent operations."),
    "cluster": ("synod.cli.cluster_cmd", "cluster", "Run node processes on this machine; kill, pause, partition them."),
    "demo": ("synod.cli.demo_cmd", "demo", "MapReduce with a worker killed (real, then simulated); the KV store, leader killed."),
    "ft": ("synod.cli.ft_cmd", "ft", "VMware FT (Scales et al. 2010): an RV32IM machine replicated by deterministic replay."),
    "gfs": ("synod.cli.gfs_cmd", "gfs", "GFS (SOSP 2003): a local cell of master, shadows, chunkservers, and its client."),
    "kv": ("synod.cli.kv_cmd", "kv", "A Redis-compatible KV store on Raft: local clusters for redis-cli and redis-py."),
    "memcache": ("synod.cli.memcache_cmd", "memcache", "Memcache at Facebook (NSDI 2013): cache servers, routers, database."),
    "mr": ("synod.cli.mr_cmd", "mr", "MapReduce (Dean & Ghemawat, OSDI 2004): real processes or the simulator."),
    "node": ("synod.cli.node_cmd", "node", "Run one node of a cluster as this process."),
    "raft": ("synod.cli.raft_cmd", "raft", "Read and change a Raft cluster run by 'synod cluster'."),
    "sim": ("synod.cli.sim_cmd", "sim", "Simulated runs: one seed, virtual time, injected faults, checked."),
    "trace": ("synod.cli.trace_cmd", "trace", "Traces of simulated and real runs: a space-time diagram as HTML."),
    "zk": ("synod.cli.zk_cmd", "zk", "ZooKeeper on Zab: local ensembles that kazoo and zkCli.sh talk to."),
}


class _LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        spec = COMMANDS.get(name)
        if spec is None:
            return None
        return getattr(importlib.import_module(spec[0]), spec[1])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The short help from the table: listing must not import every group.
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in self.list_commands(ctx)])


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="synod")
def cli() -> None:
    """synod: the classic distributed systems, runnable and deterministic.

    Run `synod COMMAND --help` for a command's options."""


def main(argv: Any = None) -> None:
    cli(argv)


if __name__ == "__main__":
    main()
