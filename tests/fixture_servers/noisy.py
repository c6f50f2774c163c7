"""A server whose handlers print to stdout, served the way the bundled servers are (servers.serving).

Usage: python noisy.py   (stdio only)
"""

from __future__ import annotations

import subprocess

from mcp.server.mcpserver import MCPServer

from servers.serving import serve


def build() -> MCPServer:
    mcp = MCPServer("noisy")

    @mcp.tool()
    def shout(text: str) -> str:
        """Upper-case text, printing to stdout and having a child print there too."""
        print("stray print from the handler")
        subprocess.run(["echo", "stray output from a child"], check=True)
        return text.upper()

    @mcp.tool()
    async def echo(text: str) -> str:
        """Echo text back without leaving the event loop."""
        return text

    return mcp


if __name__ == "__main__":
    serve(build(), "stdio")
