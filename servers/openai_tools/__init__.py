"""The OpenAI tools MCP server: chat, images, embeddings, moderation and function calling on today's API."""
