"""An MCP server with one tool that returns the W3C trace context its caller sent in `_meta`."""

from __future__ import annotations

from mcp.server.mcpserver import Context, MCPServer

mcp = MCPServer("traced")


@mcp.tool()
def trace_context(ctx: Context) -> str:
    """The traceparent this call arrived with (empty when none)."""
    meta = ctx.request_context.meta
    dumped = meta.model_dump(by_alias=True) if hasattr(meta, "model_dump") else dict(meta or {})
    return str(dumped.get("traceparent") or "")


if __name__ == "__main__":
    mcp.run()
