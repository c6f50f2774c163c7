"""The conversations MCP server: the Assistants API tools on Conversations and Responses."""
