"""synod.kv: a Redis-compatible, linearizable key-value service on Raft
(issue 10; under construction).

Parts so far: :mod:`synod.kv.replies` (typed replies), :mod:`synod.kv.protocol`
(RESP2/RESP3, sans-IO), :mod:`synod.kv.store` (the deterministic keyspace
every replica applies).
"""
