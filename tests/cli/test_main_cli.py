"""The ``synod`` entry point: groups load lazily, so ``synod --help`` (and a
command's start-up) does not import every system (issue 9: --help took
0.3-1.6 s)."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from synod.cli.main import COMMANDS, cli


def test_help_lists_every_group_without_importing_them() -> None:
    code = ("import sys\nfrom synod.cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in sys.modules if m.startswith(('synod.runtime', 'synod.mapreduce', "
            "'synod.raft', 'synod.check', 'synod.sim', 'synod.viz', 'fsspec', 'msgpack')))\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    for name in COMMANDS:
        assert f"  {name} " in out, name
    assert "HEAVY []" in out, out


def test_every_group_loads_and_matches_its_table_entry() -> None:
    runner = CliRunner()
    for name in COMMANDS:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["nope"])
    assert result.exit_code == 2
    assert "No such command" in result.output


def _walk(cmd: object, path: str) -> list[tuple[str, object]]:
    import click

    out = [(path, cmd)]
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(click.Context(cmd)):
            out += _walk(cmd.get_command(click.Context(cmd), name), f"{path} {name}")
    return out


def test_every_option_has_help_and_help_shows_no_rst_markup() -> None:
    import click

    missing, markup = [], []
    for path, cmd in _walk(cli, "synod"):
        for p in cmd.params:  # type: ignore[attr-defined]
            if isinstance(p, click.Option) and not p.help and "--help" not in p.opts:
                missing.append(f"{path} {p.opts[0]}")
        text = CliRunner().invoke(cli, [*path.split()[1:], "--help"]).output
        if "``" in text:
            markup.append(path)
    assert not missing, missing
    assert not markup, markup
