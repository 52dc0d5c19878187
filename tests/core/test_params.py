"""Factory params are typed and decoded strictly (issue 10 part 1)."""

from __future__ import annotations

from typing import Any

import pytest

from synod.core import ConfigError, LocalProtocolError
from synod.kv.simple import factory
from synod.mapreduce.factories import coordinator, job_to_params, worker
from synod.mapreduce.messages import JobSpec
from synod.raft.node import RaftNode


@pytest.mark.parametrize(("params", "needle"), [
    ({"pre_vote": "false"}, "Expected `bool`, got `str` - at pre_vote"),
    ({"election_ticks": 15.9}, "Expected `int`, got `float` - at election_ticks"),
    ({"election_ticks": True}, "Expected `int`, got `bool`"),
    ({"voters": "n1"}, "Expected `array`, got `str` - at voters"),
    ({"voters": [""]}, "voters must be non-empty node ids"),
    ({"pre_votes": True}, "unknown field `pre_votes`"),
    ([], "Expected `object`, got `array`"),
])
def test_raft_factory_rejects_what_it_would_once_have_coerced(params: Any, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        factory("n1", params)
    assert needle in str(err.value)


def test_raft_factory_reads_good_params_and_ints_for_floats() -> None:
    node = factory("n1", {"tick_interval_ms": 20, "election_ticks": 12, "pre_vote": False, "voters": ["n1", "n2"]})
    assert isinstance(node, RaftNode)
    assert node.config.tick_interval_ms == 20.0 and node.config.voters == ("n1", "n2")
    assert node.config.raft.election_ticks == 12 and node.config.raft.pre_vote is False
    with pytest.raises(LocalProtocolError):  # typed right, but the timings do not validate
        factory("n1", {"election_ticks": 1, "heartbeat_ticks": 5})


def test_mapreduce_factories_round_trip_the_job_and_reject_bad_params() -> None:
    job = JobSpec(app="synod.mapreduce.apps.wc", app_args={}, inputs=("a.txt",), out_dir="out", nreduce=2)
    assert coordinator("c", {"job": job_to_params(job)}).job == job
    with pytest.raises(ConfigError, match="at job mr.JobSpec.nreduce"):
        coordinator("c", {"job": [*job_to_params(job)[:5], "2"]})
    assert worker("w1", {"coordinator": "c"}).coordinator == "c"
    with pytest.raises(ConfigError, match="coordinator"):
        worker("w1", {"coordinator": 3})
    with pytest.raises(ConfigError, match="done_marker"):
        worker("w1", {"coordinator": "c", "done_marker": ["x"]})
