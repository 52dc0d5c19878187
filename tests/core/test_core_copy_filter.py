"""CopyFilter: a call delivered twice runs once; plain messages always run;
only the last ``remembered_max`` calls are remembered."""

from __future__ import annotations

from synod.core.clients import CopyFilter
from synod.core.node import ReplyHandle


def test_a_copy_of_a_call_is_dropped_plain_messages_never_are() -> None:
    f = CopyFilter(3)
    assert f.is_copy(ReplyHandle("c1", 1)) is False
    assert f.is_copy(ReplyHandle("c1", 1)) is True
    assert f.is_copy(ReplyHandle("c2", 1)) is False  # same corr, another client
    assert [f.is_copy(ReplyHandle("c1", 0)) for _ in range(2)] == [False, False]


def test_only_the_last_calls_are_remembered() -> None:
    f = CopyFilter(2)
    for corr in (1, 2, 3):
        assert f.is_copy(ReplyHandle("c", corr)) is False
    assert f.is_copy(ReplyHandle("c", 1)) is False  # forgotten: the bound holds
    assert f.is_copy(ReplyHandle("c", 3)) is True
