"""synod.kv: a Redis-compatible, linearizable key-value service on Raft
(issue 10; theory of operation in :mod:`synod.kv.node` and docs/kv.md).

Parts: :mod:`synod.kv.node` (the server: Redis commands over a
Raft-replicated keyspace, follower forwarding, ReadIndex reads, blocking
pops), :mod:`synod.kv.store` (the deterministic keyspace every replica
applies; its command groups in ``_strings``, ``_keys``, ``_lists``,
``_hashes``), :mod:`synod.kv.commands` (the command table),
:mod:`synod.kv.messages` and :mod:`synod.kv.replies` (typed requests and
replies), :mod:`synod.kv.protocol` (RESP2/RESP3 server side, sans-IO) and
:mod:`synod.kv.resp_client` (its client side), :mod:`synod.kv.simple` (the
Lab 4 string store on the same Raft).
"""
