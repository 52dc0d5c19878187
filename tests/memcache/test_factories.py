"""The database's and mcsqueal's config factories: typed params, strict."""

from __future__ import annotations

import pytest

from synod.core.errors import ConfigError
from synod.memcache.factories import database_factory, mcsqueal_factory


def test_database_factory_builds_a_master_or_a_replica() -> None:
    assert database_factory("db", {}).master is None
    replica = database_factory("db2", {"master": "db", "shipping_interval_ms": 50})
    assert (replica.master, replica.shipping_interval_ms) == ("db", 50)


@pytest.mark.parametrize("params", [{"master": ""}, {"shipping_interval_ms": 0}, {"shipping_interval_ms": "9"},
                                    {"replicas": 2}])
def test_database_factory_refuses_bad_params(params: dict) -> None:
    with pytest.raises(ConfigError):
        database_factory("db", params)


def test_mcsqueal_factory() -> None:
    node = mcsqueal_factory("sq", {"database": "db", "endpoints": ["r1", "r2"], "batch_max": 8})
    assert (node.database, node.endpoints, node.batch_max) == ("db", ("r1", "r2"), 8)
    for bad in ({"database": "db", "endpoints": []}, {"endpoints": ["r1"]},
                {"database": "db", "endpoints": ["r1"], "batch_max": 0}):
        with pytest.raises(ConfigError):
            mcsqueal_factory("sq", bad)
