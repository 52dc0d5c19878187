"""A read refused because leadership changed may start the client's next
read from inside the refusal (KvNode pumps the connection's queue): the
new read, asked of the current leader, must stay waiting, and the refusal
loop must not break on it ("dictionary changed size during iteration",
found by the KV workload's cas under the nemesis)."""

from __future__ import annotations

from typing import Any

from tests._fuzzhost import FuzzHost

from synod.kv.simple import SimpleKV
from synod.raft._ready import Ready, SoftState
from synod.raft.messages import ProposeReply
from synod.raft.node import RaftNode, RaftNodeConfig


class ReadsAgainWhenRefused(RaftNode):
    """Answers go to ``answers``; the first refusal issues read 2."""

    def __init__(self) -> None:
        super().__init__(RaftNodeConfig(), SimpleKV())
        self.answers: list[ProposeReply] = []

    def _answer(self, ctx: Any, src: str, reply: ProposeReply) -> None:
        self.answers.append(reply)
        if not reply.ok and len(self.answers) == 1:
            self.read_for(ctx, "c", 2, b"k")


def test_a_read_started_by_a_refusal_stays_waiting() -> None:
    node = ReadsAgainWhenRefused()
    host = FuzzHost(node, "n1", ("n1",))
    for _ in range(200):  # a one-voter cluster elects itself on its first timeouts
        if node.raft.is_leader:
            break
        for name in list(host.timers):
            host.fire(name)
    assert node.raft.is_leader
    node._reads_unindexed[b"old"] = ("c", 1, b"k")  # asked of a leader that is gone
    ready = Ready(hard_state=None, soft_state=SoftState(role="leader", term=node.raft.term, leader="n1"),
                  entries=(), snapshot=None, apply_snapshot=False, committed_entries=(), messages=(),
                  read_states=())
    node._serve_reads(host.ctx, ready)
    assert [(a.request_id, a.ok, a.error) for a in node.answers] == [(1, False, "leadership changed")]
    assert [v[1] for v in node._reads_unindexed.values()] == [2]  # read 2 waits for its read index
