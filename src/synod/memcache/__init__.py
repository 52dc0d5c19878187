"""Memcache at Facebook (Nishtala et al., NSDI 2013): a memcached-protocol
cache tier with leases, mcrouter-style routing, regions and invalidation
(issue 11; being built)."""
