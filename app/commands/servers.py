"""`agentdeck servers list|check`."""

from __future__ import annotations

import json
from typing import Any

from app.commands.common import load, run_async, stdout
from app.config.models import HostedServerConfig, StdioServerConfig, runs_hosted


def _target(cfg: Any) -> str:
    if isinstance(cfg, StdioServerConfig):
        return " ".join([cfg.command, *cfg.args])
    if isinstance(cfg, HostedServerConfig):
        return cfg.server_url or (f"connector {cfg.connector_id}" if cfg.connector_id else f"tunnel {cfg.tunnel_id}")
    if cfg.hosted and cfg.tunnel_id:
        return f"{cfg.url} (OpenAI: tunnel {cfg.tunnel_id})"
    if cfg.hosted and cfg.public_url:
        return f"{cfg.url} (OpenAI: {cfg.public_url})"
    return str(cfg.url)


def list_servers(config: str | None) -> None:
    """A table of servers: transport, target, required, used by which agents."""
    from rich.table import Table

    from app.config.redact import known_secrets, redact

    loaded = load(config)
    secrets = known_secrets(loaded)
    table = Table(box=None, pad_edge=False)
    for col in ("server", "transport", "target", "required", "agents"):
        table.add_column(col, overflow="fold")
    for name, cfg in loaded.config.servers.items():
        users = [a for a, spec in loaded.config.agents.items() if name in spec.servers]
        hosted = runs_hosted(cfg)
        required = "-" if hosted else ("yes" if cfg.required else "no")  # type: ignore[union-attr]
        transport = cfg.transport if isinstance(cfg, HostedServerConfig) or not hosted else f"{cfg.transport}, hosted"
        table.add_row(name, transport, redact(_target(cfg), secrets), required, ", ".join(users) or "-")
    out = stdout()
    out.print(table) if loaded.config.servers else out.print("No servers are configured.")


def check_servers(config: str | None, json_out: bool) -> None:
    """Connect to every local server and look at every hosted one; exit 1 if any failed."""
    from app.toolbox import Toolbox

    loaded = load(config)

    async def go() -> list[dict[str, Any]]:
        rows = []
        async with Toolbox(loaded, list(loaded.config.servers), all_optional=True) as deck:
            for name in loaded.config.servers:
                if name in deck.hosted:
                    rows.append(_hosted_row(deck, name))
                    continue
                slot = deck.pool.slots[name]
                row: dict[str, Any] = {
                    "server": name,
                    "status": "ok" if slot.connected else "failed",
                    "ok": slot.connected,
                    "hosted": False,
                    "start_ms": None,
                    "tools": None,
                    "error": slot.error,
                }
                if slot.connected:
                    row["start_ms"] = round(slot.start_ms or 0, 1)
                    try:
                        row["tools"] = len(await slot.server.list_tools())
                    except Exception as exc:  # noqa: BLE001
                        from app.config.redact import known_secrets, redact
                        from app.connect import describe_exception

                        error = redact(f"tools/list failed: {describe_exception(exc)}", known_secrets(loaded))
                        row.update(ok=False, status="failed", error=error)
                else:
                    tail = slot.stderr_tail(max_lines=3)
                    if tail:
                        row["stderr"] = tail
                rows.append(row)
        return rows

    from app.config.redact import known_secrets, redact

    rows = redact(run_async(go()), known_secrets(loaded))
    if json_out:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        for col in ("server", "status", "start", "tools", "error"):
            table.add_column(col, overflow="fold")
        styles = {
            "ok": "[green]ok[/]",
            "failed": "[red]failed[/]",
            "remote-only": "[yellow]only OpenAI can reach it[/]",
        }
        for r in rows:
            status = styles[r["status"]] + (" [dim](hosted)[/]" if r["hosted"] else "")
            start = f"{r['start_ms']:.0f} ms" if r["start_ms"] is not None else "-"
            error = (r["error"] or "") + (f"\n{r['stderr']}" if r.get("stderr") else "")
            table.add_row(r["server"], status, start, str(r["tools"] if r["tools"] is not None else "-"), error)
        stdout().print(table) if rows else stdout().print("No servers are configured.")
    failed = [r["server"] for r in rows if r["status"] == "failed"]
    if failed:
        from app.errors import ServerStartError

        raise ServerStartError(
            f"{len(failed)} of {len(rows)} servers failed: {', '.join(failed)}",
            hint="the table shows why; `agentdeck tools list --server NAME` starts one server on its own",
        )


def _hosted_row(deck: Any, name: str) -> dict[str, Any]:
    """A hosted server as agentdeck sees it: tools after the server's filters, or why it cannot look."""
    from app.hosted.spec import passes_filters
    from app.remote_mcp import is_local_url

    spec, listing = deck.hosted[name], deck.listings[name]
    row: dict[str, Any] = {"server": name, "hosted": True, "start_ms": None, "tools": None, "error": listing.error}
    if listing.tools is not None:
        row["tools"] = sum(1 for t in listing.tools if passes_filters(spec, None, t))
        row.update(status="ok", ok=True, error=None)
    elif listing.status in (401, 403):
        row.update(status="failed", ok=False, error=f"the server refused the credentials: {listing.error}")
    elif spec.probe_url is None:
        row.update(status="remote-only", ok=None, error="a connector or tunnel: only OpenAI can connect to it")
    elif listing.unreachable and not is_local_url(spec.probe_url):
        row.update(status="remote-only", ok=None, error=f"not reachable from this machine ({listing.error})")
    else:
        row.update(status="failed", ok=False)
    return row
