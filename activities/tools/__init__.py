"""Builtin tools: callable by agents (`tools:`) and by tool nodes (`call:`) through one registry."""
