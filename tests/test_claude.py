"""Claude Desktop / Cursor mcpServers import and export."""

from __future__ import annotations

import json

import pytest

from app.config.claude import export_servers, import_servers
from app.errors import ConfigError

CLAUDE = {
    "mcpServers": {
        "filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
        "github": {
            "command": "docker",
            "args": ["run", "-i", "ghcr.io/github/github-mcp-server"],
            "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"},
        },
        "remote docs": {"url": "https://example.com/mcp", "headers": {"X-Team": "a"}},
        "legacy": {"type": "sse", "url": "https://example.com/events"},
    }
}


def test_import_maps_every_kind():
    servers = import_servers(CLAUDE, "claude.json")
    assert servers["filesystem"] == {
        "transport": "stdio",
        "command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
    }
    assert servers["github"]["env"] == {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}
    assert servers["remote-docs"] == {
        "transport": "streamable_http",
        "url": "https://example.com/mcp",
        "headers": {"X-Team": "a"},
    }
    assert servers["legacy"]["transport"] == "sse"


def test_round_trip_is_lossless():
    servers = import_servers(CLAUDE, "claude.json")
    exported, skipped = export_servers(servers)
    assert skipped == []
    back = import_servers(json.loads(json.dumps(exported)), "again")
    assert back == servers


def test_export_skips_hosted():
    doc, skipped = export_servers(
        {"h": {"transport": "hosted", "server_url": "https://x"}, "s": {"transport": "stdio", "command": "x"}}
    )
    assert skipped == ["h"] and list(doc["mcpServers"]) == ["s"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected a JSON object"),
        ({"other": {}}, "no 'mcpServers' object"),
        ({"mcpServers": {"x": 3}}, "must be an object"),
        ({"mcpServers": {"x": {"args": []}}}, "neither 'command' nor 'url'"),
    ],
)
def test_import_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        import_servers(data, "f.json")
