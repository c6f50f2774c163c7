"""`agentdeck config validate|show|schema|import-claude|export`."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from app.commands.common import load, stderr, stdout
from app.errors import ConfigError


def _yaml_dump(data: Any) -> str:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment,attr-defined]
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()


def validate(config: str | None) -> None:
    """Load the config; print a one-line summary."""
    loaded = load(config)
    cfg = loaded.config
    stdout().print(
        f"[green]ok[/] {loaded.path}: {len(cfg.agents)} agent(s), {len(cfg.servers)} server(s), "
        f"{len(cfg.providers)} provider(s)"
    )


def show(config: str | None) -> None:
    """The effective config as YAML, secrets masked."""
    from app.config.redact import redact

    loaded = load(config)
    data = loaded.config.model_dump(mode="json", exclude_none=True)
    print(_yaml_dump(redact(data)), end="")


def schema() -> None:
    """JSON Schema of the config models."""
    from app.config.models import Config

    doc = Config.model_json_schema()
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "agentdeck agents.yaml"
    print(json.dumps(doc, indent=2))


def import_claude(file: str) -> None:
    """Print a servers: section converted from mcpServers JSON."""
    from app.config.claude import import_servers

    path = Path(file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: invalid JSON: {exc}") from None
    servers = import_servers(data, str(path))
    print(_yaml_dump({"servers": servers}), end="")


def export(config: str | None, fmt: str) -> None:
    """mcpServers JSON for the local servers, with values as written (secrets stay ${VAR})."""
    from app.config.claude import export_servers
    from app.config.loader import read_yaml

    loaded = load(config)
    raw, _ = read_yaml(loaded.path)
    doc, skipped = export_servers(raw.get("servers") or {})
    for name in skipped:
        stderr().print(f"[yellow]note:[/] skipped hosted server '{name}' (Claude runs local servers only)")
    for name in _with_literal_secrets(doc):
        stderr().print(
            f"[yellow]warning:[/] server '{name}' is written with a literal secret; "
            "write it as a ${VAR} reference in agents.yaml to keep it out of exported files"
        )
    print(json.dumps(doc, indent=2, ensure_ascii=False))


def export_gateway(url: str, token_env: str) -> None:
    """mcpServers JSON with one entry: a gateway profile, its token read from `token_env`."""
    import re
    from urllib.parse import urlsplit

    from app.config.models_base import NAME_RE
    from app.errors import UsageError

    parts = urlsplit(url)
    match = re.fullmatch(rf"/mcp/({NAME_RE.pattern})/?", parts.path)
    if parts.scheme not in ("http", "https") or not parts.netloc or match is None:
        raise UsageError(
            f"--gateway {url!r} is not a gateway profile URL",
            hint="use http://HOST:PORT/mcp/PROFILE, as `agentdeck gateway serve` prints it",
        )
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token_env):
        raise UsageError(f"--token-env {token_env!r} is not an environment variable name")
    entry = {"type": "http", "url": url, "headers": {"Authorization": f"Bearer ${{{token_env}}}"}}
    print(json.dumps({"mcpServers": {f"agentdeck-{match.group(1)}": entry}}, indent=2))


def _with_literal_secrets(doc: dict[str, Any]) -> list[str]:
    """Exported servers holding a secret written out as a value, not a ${VAR} reference."""
    from app.config.redact import secret_values

    servers = doc.get("mcpServers") or {}
    return [name for name, entry in servers.items() if any("${" not in v for v in secret_values(entry))]
