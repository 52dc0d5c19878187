"""The cluster config file (DESIGN.md section 6): validation and writing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synod.core.errors import ConfigError
from synod.runtime.config import (
    ClusterSpec,
    NodeSpec,
    build_node,
    load_config,
    local_spec,
    parse_config,
    write_config,
)
from synod.runtime.testing import FACTORY, EchoNode


def _raw(**overrides: object) -> dict:
    raw: dict = {
        "run_dir": "run",
        "seed": 3,
        "fs_root": None,
        "nodes": {"n1": {"host": "127.0.0.1", "port": 7001, "factory": FACTORY, "params": {}}},
    }
    raw.update(overrides)
    return raw


def test_valid_config_parses_with_defaults(tmp_path: Path) -> None:
    config = parse_config(_raw(), base_dir=tmp_path)
    assert config.run_dir == (tmp_path / "run").resolve()
    assert config.seed == 3
    assert config.fs_root is None
    assert config.nodes["n1"].addr == ("127.0.0.1", 7001)
    assert config.trace is True
    assert config.trace_messages is False
    assert config.node_dir("n1") == config.run_dir / "n1"


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (_raw(seed=True), "seed must be int"),
        (_raw(colour="blue"), "unknown key(s) ['colour']"),
        (_raw(nodes={}), "nodes is empty"),
        (_raw(run_dir=""), "run_dir must not be empty"),
        (_raw(fs_root=5), "fs_root must be a string or null"),
        (_raw(frame_size_bytes_max=1), "frame_size_bytes_max"),
        (_raw(trace="yes"), "trace must be true or false"),
        (_raw(nodes={"n1": {"port": 0, "factory": FACTORY}}), "port must be in [1, 65535]"),
        (_raw(nodes={"n1": {"port": 70000, "factory": FACTORY}}), "port must be in [1, 65535]"),
        (_raw(nodes={"n1": {"port": 7001}}), "missing key 'factory'"),
        (_raw(nodes={"n1": {"port": 7001, "factory": "no_colon"}}), "factory must look like"),
        (_raw(nodes={"n1": {"port": 7001, "factory": FACTORY, "params": []}}), "params must be an object"),
        (_raw(nodes={"n1": {"port": 7001, "factory": FACTORY, "prams": {}}}), "unknown key(s) ['prams']"),
        (_raw(nodes={"bad id": {"port": 7001, "factory": FACTORY}}), "node id"),
        (_raw(nodes={"n1": {"port": 7001, "factory": FACTORY}, "n2": {"port": 7001, "factory": FACTORY}}),
         "both use 127.0.0.1:7001"),
        ([1, 2], "expected a JSON object"),
        (_raw(fs="gfs"), "fs must be null or"),
        (_raw(fs={"protocol": "", "options": {}}), "fs must be null or"),
        (_raw(fs={"protocol": "gfs", "options": []}), "fs must be null or"),
        (_raw(fs={"protocol": "gfs", "colour": 1}), "fs must be null or"),
    ],
)
def test_invalid_config_raises_config_error_naming_the_problem(raw: object, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert needle in str(err.value)


def test_load_config_reports_missing_file_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read JSON"):
        load_config(bad)


def test_write_config_gives_distinct_free_ports_and_round_trips(tmp_path: Path) -> None:
    config, path = write_config(local_spec(5, FACTORY, tmp_path / "run", params={"ping_interval_ms": 10}, seed=9))
    assert path == (tmp_path / "run" / "cluster-config.json").resolve()
    ports = [n.port for n in config.nodes.values()]
    assert len(set(ports)) == 5
    assert all(p > 0 for p in ports)
    assert list(config.nodes) == ["n1", "n2", "n3", "n4", "n5"]
    assert load_config(path) == config
    assert json.loads(path.read_text())["seed"] == 9


def test_write_config_keeps_explicit_ports_and_rejects_non_json_params(tmp_path: Path) -> None:
    spec = ClusterSpec(run_dir=tmp_path, nodes={"a": NodeSpec(factory=FACTORY, port=7123)})
    config, _ = write_config(spec)
    assert config.nodes["a"].port == 7123
    spec = ClusterSpec(run_dir=tmp_path, nodes={"a": NodeSpec(factory=FACTORY, params={"x": object()})})
    with pytest.raises(ConfigError, match="plain JSON"):
        write_config(spec)


def test_build_node_imports_the_factory_and_checks_what_it_returns(tmp_path: Path) -> None:
    def config_with(factory: str, params: dict | None = None):
        return parse_config(_raw(nodes={"n1": {"port": 7001, "factory": factory, "params": params or {}}}),
                            base_dir=tmp_path)

    assert isinstance(build_node(config_with(FACTORY), "n1"), EchoNode)
    with pytest.raises(ConfigError, match="cannot import 'no_such_module'"):
        build_node(config_with("no_such_module:f"), "n1")
    with pytest.raises(ConfigError, match="has no callable 'nothing'"):
        build_node(config_with("synod.runtime.testing:nothing"), "n1")
    with pytest.raises(ConfigError, match="not a synod.core.Node"):
        build_node(config_with("operator:eq"), "n1")
    with pytest.raises(ConfigError, match="failed for node 'n1': ConfigError: bad params for EchoParams: "
                                          "Object contains unknown field `bogus`"):
        build_node(config_with(FACTORY, {"bogus": 1}), "n1")
    with pytest.raises(ConfigError, match="not in the config"):
        build_node(config_with(FACTORY), "n9")


def test_the_fs_key_names_ctx_fs_and_round_trips(tmp_path: Path) -> None:
    spec = {"protocol": "gfs", "options": {"run_dir": "/runs/gfs"}}
    config = parse_config(_raw(fs=spec), base_dir=tmp_path)
    assert config.fs == spec
    assert parse_config(config.to_json(), base_dir=tmp_path).fs == spec
    assert parse_config(_raw(), base_dir=tmp_path).fs is None
