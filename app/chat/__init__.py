"""The interactive terminal chat: sessions, slash commands, tool panels and approvals."""
