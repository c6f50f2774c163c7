"""OpenAI-hosted MCP servers on agentdeck's side: configs, listing, approvals and call records."""
