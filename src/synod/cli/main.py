"""Entry point of the ``synod`` command.

Sub-command groups live in their own modules under ``synod.cli`` and are
added here. A bad argument prints what was wrong and exits with status 2.
"""

from __future__ import annotations

import click

from synod import __version__

__all__ = ["main", "cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="synod")
def cli() -> None:
    """synod: the classic distributed systems, runnable and deterministic."""


def _add_groups() -> None:
    import importlib

    for module, attr in (
        ("synod.cli.node_cmd", "node"),
        ("synod.cli.cluster_cmd", "cluster"),
        ("synod.cli.mr_cmd", "mr"),
        ("synod.cli.demo_cmd", "demo"),
        ("synod.cli.check_cmd", "check"),
        ("synod.cli.trace_cmd", "trace"),
        ("synod.cli.sim_cmd", "sim"),
        ("synod.cli.raft_cmd", "raft"),
    ):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue
        cli.add_command(getattr(mod, attr))


_add_groups()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
