"""Hash commands (HSET ... HSCAN): registered in synod.kv.commands on import."""
