"""Temporal workflows: the interpreter that runs a compiled .iter graph (next issue)."""
