"""`agentdeck serve NAME [options]`: run a bundled MCP server (options are the server's own)."""

from __future__ import annotations

from app.config.loader import did_you_mean
from app.errors import UsageError

BUNDLED = {
    "filesystem": "servers.filesystem.__main__",
    "customers": "servers.customers.__main__",
    "openai": "servers.openai_tools.__main__",
    "conversations": "servers.conversations.__main__",
}


def serve_bundled(name: str | None, argv: list[str]) -> None:
    """Hand the remaining arguments to the server's own command line."""
    import importlib

    if name in (None, "-h", "--help"):
        print(
            "usage: agentdeck serve {filesystem,customers,openai,conversations} [--transport stdio|sse|http] [--host H] [--port P] [--token T] ..."
        )
        print("       agentdeck serve filesystem --help   (each server lists its own options)")
        return
    if name not in BUNDLED:
        raise UsageError(
            f"unknown server '{name}'{did_you_mean(name, set(BUNDLED))}",
            hint="bundled servers: filesystem, customers, openai, conversations",
        )
    module = importlib.import_module(BUNDLED[name])
    module.main(argv)
