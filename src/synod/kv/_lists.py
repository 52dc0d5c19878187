"""List commands (LPUSH ... BLMPOP): registered in synod.kv.commands on import."""
