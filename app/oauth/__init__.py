"""OAuth logins to remote MCP servers: the flow (flow.py) and where tokens are kept (store.py)."""
