"""The bundled MCP servers."""

from __future__ import annotations


def package_version() -> str:
    """The installed agentdeck version, reported as serverInfo.version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agentdeck")
    except PackageNotFoundError:
        # Run from a source tree that was never installed: still identify as something, not "".
        return "0.0.0+unknown"
