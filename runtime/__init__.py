"""Wiring between the CLI/worker and Temporal: settings, the client, the local dev server."""
