"""A small MCP server for agentdeck's tests: annotated tools, a tools/list counter, list_changed.

Usage: python toy.py [stdio|sse|http] [--port N] [--count-file F] [--prefix P]
                   [--pid-file F] [--delay SECONDS] [--fail-after-delay]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True)
SAFE_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False)
CUSTOMERS = {1: "Ada Lovelace", 2: "Linus Torvalds", 3: "Grace Hopper"}


class CountingServer(MCPServer):
    """Counts tools/list requests in a file, so tests can see caching from the server side."""

    count_file: Path | None = None

    async def list_tools(self):  # type: ignore[no-untyped-def]
        if self.count_file is not None:
            n = int(self.count_file.read_text() or 0) if self.count_file.exists() else 0
            self.count_file.write_text(str(n + 1))
        return await super().list_tools()


def build(prefix: str) -> CountingServer:
    mcp = CountingServer(f"toy{prefix}", instructions="A toy server for tests.", log_level="WARNING")

    @mcp.tool(name=f"{prefix}add", annotations=READ)
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @mcp.tool(name=f"{prefix}get_customer", annotations=READ)
    def get_customer(customer_id: int) -> str:
        """Look up a customer's name by id."""
        if customer_id not in CUSTOMERS:
            raise ToolError(f"no customer with id {customer_id}")
        return CUSTOMERS[customer_id]

    @mcp.tool(name=f"{prefix}delete_customer", annotations=DESTRUCTIVE)
    def delete_customer(customer_id: int) -> str:
        """Delete a customer."""
        return f"deleted customer {customer_id}"

    @mcp.tool(name=f"{prefix}save_note", annotations=SAFE_WRITE)
    def save_note(text: str) -> str:
        """Save a note (a write that destroys nothing)."""
        return f"saved: {text}"

    @mcp.tool(name=f"{prefix}echo")
    def echo(text: str) -> str:
        """Echo text back (no annotations at all)."""
        return text

    @mcp.tool(name=f"{prefix}nap", annotations=READ)
    async def nap(seconds: float) -> str:
        """Sleep, then answer (for cancellation tests)."""
        await anyio.sleep(seconds)
        return f"slept {seconds}"

    @mcp.tool(name=f"{prefix}grow", annotations=SAFE_WRITE)
    async def grow(ctx: Context) -> str:
        """Register one more tool and announce that the tool list changed."""

        def late(x: int) -> int:
            """A tool that appears at run time."""
            return x * 2

        mcp.add_tool(late, name=f"{prefix}late_tool", annotations=READ)
        await ctx.notify_tools_changed()  # 2026-07-28 clients listen for this
        with contextlib.suppress(Exception):  # not every connection accepts it
            await ctx.session.send_tool_list_changed()  # 2025-era clients get a notification
        return "grown"

    return mcp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", nargs="?", default="stdio", choices=["stdio", "sse", "http"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--count-file")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--pid-file", help="append this process's pid on start (counts starts)")
    parser.add_argument("--delay", type=float, default=0.0, help="a slow start: wait this long before serving")
    parser.add_argument("--fail-after-delay", action="store_true", help="then exit 1 instead of serving")
    parser.add_argument("--linger", action="store_true", help="stdio: keep running after stdin closes (until a signal)")
    args = parser.parse_args()
    if args.pid_file:
        with open(args.pid_file, "a") as fh:
            fh.write(f"{os.getpid()}\n")
    time.sleep(args.delay)
    if args.fail_after_delay:
        print("toy: cannot open its database (as asked)", file=sys.stderr)
        raise SystemExit(1)
    server = build(args.prefix)
    if args.count_file:
        server.count_file = Path(args.count_file)
    if args.transport == "stdio":
        server.run()
        if args.linger:  # a server that ignores its client going away: only a signal ends it
            time.sleep(3600)
    elif args.transport == "sse":
        server.run("sse", host="127.0.0.1", port=args.port)
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
