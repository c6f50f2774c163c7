"""Convert between Claude Desktop / Cursor `mcpServers` JSON and agentdeck `servers:` entries."""

from __future__ import annotations

import re
from typing import Any

from app.errors import ConfigError

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def _safe_name(name: str) -> str:
    return _UNSAFE.sub("-", name).strip("-") or "server"


def import_servers(data: Any, source: str) -> dict[str, dict[str, Any]]:
    """mcpServers JSON (Claude Desktop, Cursor, VS Code `servers`) -> agentdeck server entries."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object with an 'mcpServers' key")
    entries = data.get("mcpServers", data.get("servers"))
    if not isinstance(entries, dict):
        raise ConfigError(
            f"{source}: no 'mcpServers' object found", hint="Claude Desktop keeps it in claude_desktop_config.json"
        )
    out: dict[str, dict[str, Any]] = {}
    for name, spec in entries.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"{source}: mcpServers.{name} must be an object")
        key = _safe_name(str(name))
        if key in out:
            raise ConfigError(f"{source}: two servers map to the name '{key}'; rename one")
        kind = str(spec.get("type", "")).lower()
        if "command" in spec:
            entry: dict[str, Any] = {"transport": "stdio", "command": str(spec["command"])}
            if spec.get("args"):
                entry["args"] = [str(a) for a in spec["args"]]
            if spec.get("env"):
                entry["env"] = {str(k): str(v) for k, v in spec["env"].items()}
            if spec.get("cwd"):
                entry["cwd"] = str(spec["cwd"])
        elif "url" in spec or "serverUrl" in spec:
            url = str(spec.get("url") or spec.get("serverUrl"))
            sse = kind == "sse" or (not kind and url.rstrip("/").endswith("/sse"))
            entry = {"transport": "sse" if sse else "streamable_http", "url": url}
            if spec.get("headers"):
                entry["headers"] = {str(k): str(v) for k, v in spec["headers"].items()}
        else:
            raise ConfigError(f"{source}: mcpServers.{name} has neither 'command' nor 'url'")
        if spec.get("disabled") is True:
            entry["required"] = False
        out[key] = entry
    return out


def export_servers(raw_servers: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """agentdeck server entries (as written, before interpolation) -> mcpServers JSON, skipped names."""
    out: dict[str, Any] = {}
    skipped: list[str] = []
    for name, spec in raw_servers.items():
        transport = spec.get("transport")
        if transport == "stdio":
            entry: dict[str, Any] = {"command": spec["command"], "args": list(spec.get("args", []))}
            if spec.get("env"):
                entry["env"] = dict(spec["env"])
            if spec.get("cwd"):
                entry["cwd"] = spec["cwd"]
        elif transport in ("sse", "streamable_http"):
            entry = {"type": "sse" if transport == "sse" else "http", "url": spec["url"]}
            if spec.get("headers"):
                entry["headers"] = dict(spec["headers"])
        else:
            skipped.append(name)
            continue
        out[name] = entry
    return {"mcpServers": out}, skipped
