"""`agentdeck servers list|check`."""

from __future__ import annotations

import json
from typing import Any

from app.commands.common import load, run_async, stdout
from app.config.models import HostedServerConfig, StdioServerConfig


def _target(cfg: Any) -> str:
    if isinstance(cfg, StdioServerConfig):
        return " ".join([cfg.command, *cfg.args])
    if isinstance(cfg, HostedServerConfig):
        return cfg.server_url or f"connector {cfg.connector_id}"
    return str(cfg.url)


def list_servers(config: str | None) -> None:
    """A table of servers: transport, target, required, used by which agents."""
    from rich.table import Table

    loaded = load(config)
    table = Table(box=None, pad_edge=False)
    for col in ("server", "transport", "target", "required", "agents"):
        table.add_column(col, overflow="fold")
    for name, cfg in loaded.config.servers.items():
        users = [a for a, spec in loaded.config.agents.items() if name in spec.servers]
        required = "-" if isinstance(cfg, HostedServerConfig) else ("yes" if cfg.required else "no")
        table.add_row(name, cfg.transport, _target(cfg), required, ", ".join(users) or "-")
    out = stdout()
    out.print(table) if loaded.config.servers else out.print("No servers are configured.")


def check_servers(config: str | None, json_out: bool) -> None:
    """Connect to every local server; exit 1 if any failed."""
    from app.deck import Deck, DeckOptions

    loaded = load(config)
    names = [n for n, c in loaded.config.servers.items() if not isinstance(c, HostedServerConfig)]

    async def go() -> list[dict[str, Any]]:
        rows = []
        options = DeckOptions(servers=names, apply_filters=False, all_optional=True)
        async with Deck(loaded, options) as deck:
            assert deck.pool is not None
            for name, slot in deck.pool.slots.items():
                row: dict[str, Any] = {
                    "server": name,
                    "ok": slot.connected,
                    "start_ms": None,
                    "tools": None,
                    "error": slot.error,
                }
                if slot.connected:
                    row["start_ms"] = round(slot.start_ms or 0, 1)
                    try:
                        row["tools"] = len(await slot.server.list_tools())
                    except Exception as exc:  # noqa: BLE001
                        from app.connect import describe_exception

                        row.update(ok=False, error=f"tools/list failed: {describe_exception(exc)}")
                else:
                    tail = slot.server.stderr_tail(max_lines=3)
                    if tail:
                        row["stderr"] = tail
                rows.append(row)
        return rows

    rows = run_async(go())
    if json_out:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        for col in ("server", "status", "start", "tools", "error"):
            table.add_column(col, overflow="fold")
        for r in rows:
            status = "[green]ok[/]" if r["ok"] else "[red]failed[/]"
            start = f"{r['start_ms']:.0f} ms" if r["start_ms"] is not None else "-"
            error = (r["error"] or "") + (f"\n{r['stderr']}" if r.get("stderr") else "")
            table.add_row(r["server"], status, start, str(r["tools"] if r["tools"] is not None else "-"), error)
        stdout().print(table) if rows else stdout().print("No local servers are configured.")
    if any(not r["ok"] for r in rows):
        raise SystemExit(1)
