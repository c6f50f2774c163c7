"""A customer/order database MCP server on SQLite, with safe typed tools and read-only SQL."""
