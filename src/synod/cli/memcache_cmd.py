"""``synod memcache``: the memcached-compatible cache tier (Nishtala et al.,
NSDI 2013; issue 11).

``synod memcache serve --port P [--memory-limit-mb M]`` runs one cache
server in the foreground, as ``memcached -p P -m M`` does: a one-node
cluster config is written to a run directory (``--dir``, default a fresh
temporary one) and the node is served in this process until SIGINT or
SIGTERM (exit status 0). A port that is taken or a bad option exits with
status 2.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from synod.core.errors import ConfigError

__all__ = ["memcache"]

NODE_ID = "mc1"


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


if __name__ == "__main__":
    memcache()
