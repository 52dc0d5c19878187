"""``synod node``: run one node of a cluster as this process (DESIGN.md section 6).

``synod node run --config FILE --id ID`` builds node ``ID`` from the cluster
config and serves it until the node exits (``ctx.exit``), SIGTERM or SIGINT
(exit status 0), or a handler raises (status 1). A bad config, an unknown id,
a factory that fails or a port that is taken exit with status 2.

The supervisor starts nodes as ``python -m synod.cli.node_cmd run ...``,
which is the same command without importing every other CLI group.
"""

from __future__ import annotations

import sys

import click

from synod.core.errors import ConfigError

__all__ = ["node"]


@click.group()
def node() -> None:
    """Run one node of a cluster as this process."""


@node.command("run")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The cluster config (JSON).")
@click.option("--id", "node_id", required=True, help="Which node of the config to run.")
@click.option("--parent-pid", type=int, default=None,
              help="Exit when this process (the supervisor) is gone.")
def run(config_path: str, node_id: str, parent_pid: int | None) -> None:
    """Serve node ID of the cluster in FILE until it exits."""
    from synod.runtime.config import load_config
    from synod.runtime.host import run_node

    try:
        config = load_config(config_path)
        if node_id not in config.nodes:
            raise ConfigError(f"node {node_id!r} is not in {config_path} (nodes: {', '.join(config.nodes)})")
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    sys.exit(run_node(config, node_id, parent_pid=parent_pid))


if __name__ == "__main__":
    node()
