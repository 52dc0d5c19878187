"""String commands (GET ... INCRBYFLOAT): registered in synod.kv.commands on import."""
