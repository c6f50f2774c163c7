"""A filesystem MCP server at parity with the reference server, with stricter path safety."""
