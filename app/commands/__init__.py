"""Implementations of the CLI subcommands (imported lazily by app.cli)."""
