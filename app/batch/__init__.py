"""`agentdeck batch`: many inputs, one shared set of connections, results streamed to JSONL."""
