"""Activities: every side effect of a run (LLM turns, shell tools, connectors) lives here."""
