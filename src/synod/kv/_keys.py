"""Generic key commands and expiry commands (DEL ... PEXPIRETIME): registered in synod.kv.commands on import."""
