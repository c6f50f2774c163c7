"""`agentdeck tools list|call`: what agents are offered, and direct calls."""

from __future__ import annotations

import json
import time
from typing import Any

from rich.markup import escape

from app.commands.common import load, run_async, stderr, stdout
from app.config.loader import did_you_mean
from app.config.models import HostedServerConfig
from app.errors import ToolCallError, UsageError
from app.filters import is_destructive, is_read_only
from app.telemetry import record_tool_call, recording
from app.toolbox import Toolbox


def _kind(tool: Any) -> str:
    if is_read_only(tool):
        return "read-only"
    return "destructive" if is_destructive(tool) else "write"


def _check_server(loaded: Any, server: str) -> None:
    servers = loaded.config.servers
    if server not in servers:
        raise UsageError(
            f"unknown server '{server}'{did_you_mean(server, set(servers))}",
            hint=f"servers in {loaded.path}: {', '.join(servers) or 'none'}",
        )
    if isinstance(servers[server], HostedServerConfig):
        raise UsageError(
            f"server '{server}' is transport: hosted: only OpenAI connects to it, so agentdeck cannot call it",
            hint=f"`agentdeck tools list --agent AGENT` shows what an agent using '{server}' is offered",
        )


def list_tools(config: str | None, *, agent: str | None, server: str | None, json_out: bool) -> None:
    """Print the tools an agent (or one server) offers after all filters."""
    if agent and server:
        raise UsageError("give --agent or --server, not both")
    loaded = load(config)
    if server:
        _check_server(loaded, server)

    async def go() -> list[dict[str, Any]]:
        if server:
            async with Toolbox(loaded, [server], probe_hosted=False) as box:
                tools = await box.server_tools(server)
                hosted = server in hosted_servers(loaded)
                return [_row(tool.name, server, tool, hosted=hosted) for tool in tools]
        from app.config.checks import pick_agent

        name = pick_agent(loaded, agent)
        async with Toolbox(loaded, loaded.config.agents[name].servers, agent=name) as box:
            for warning in box.warnings():
                stderr().print(f"[yellow]warning:[/] {warning}", markup=True)
            rows = [_row(o.name, o.server, o.tool) for o in await box.offered(name)]
            for warning in box.later_warnings:
                stderr().print(f"[yellow]warning:[/] {warning}", markup=True, highlight=False)
            return rows + hosted_rows(box, name)

    rows = run_async(go())
    if json_out:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("tool", "server", "kind", "runs", "description"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["server"], r["kind"], "hosted" if r["hosted"] else "local", r["description"])
    out = stdout()
    out.print(table) if rows else out.print("No tools are offered.")


def _row(name: str, server: str, tool: Any, hosted: bool = False) -> dict[str, Any]:
    description = (tool.description or "").strip().splitlines()
    return {
        "name": name,
        "server": server,
        "kind": _kind(tool),
        "hosted": hosted,
        "description": description[0] if description else "",
    }


def hosted_servers(loaded: Any) -> set[str]:
    """Names of the entries OpenAI connects to (hosted, or http entries with hosted: true)."""
    from app.config.models import runs_hosted

    return {name for name, cfg in loaded.config.servers.items() if runs_hosted(cfg)}


def hosted_rows(deck: Any, agent: str) -> list[dict[str, Any]]:
    """The hosted tools an agent is offered: by name when agentdeck could list them, else as configured."""
    from app.hosted.spec import tool_config

    rows: list[dict[str, Any]] = []
    for name in deck.loaded.config.agents[agent].servers:
        spec = deck.hosted.get(name)
        if spec is None:
            continue
        listing = deck.listings.get(name)
        allowed = tool_config(deck.loaded, spec, agent, listing).get("allowed_tools")
        if listing is not None and listing.tools is not None:
            names = allowed if isinstance(allowed, list) else (allowed or {}).get("tool_names")
            names = [t.name for t in listing.tools] if names is None else names
            rows += [_row(t.name, name, t, hosted=True) for t in listing.tools if t.name in names]
            continue
        why = f"not listed: {listing.error}" if listing is not None and listing.error else "not listed"
        names = allowed if isinstance(allowed, list) else (allowed or {}).get("tool_names") or ["*"]
        kind = "read-only" if isinstance(allowed, dict) and allowed.get("read_only") else "?"
        rows += [{"name": n, "server": name, "kind": kind, "hosted": True, "description": f"({why})"} for n in names]
    return rows


def result_lines(result: Any) -> list[str]:
    """A tool result as `tools call` prints it: text as is, other blocks described (URI, MIME type, size)."""
    from app.tool_content import describe

    lines = []
    for block in result.content:
        text = getattr(block, "text", None)
        if text is None:
            text = describe(block) or f"[{block.type}: {getattr(block, 'mime_type', None) or 'content'}]"
        lines.append(text)
    return lines


def call_tool(config: str | None, server: str, tool: str, args: str, json_out: bool, user: str | None = None) -> None:
    """Call one tool on one server, without a model; the server's own filters do not apply."""
    try:
        arguments = json.loads(args)
    except ValueError as exc:
        raise UsageError(f"--args is not valid JSON: {exc}", hint='--args \'{"path": "notes.txt"}\'') from None
    if not isinstance(arguments, dict):
        raise UsageError("--args must be a JSON object", hint='--args \'{"path": "notes.txt"}\'')
    loaded = load(config)
    _check_server(loaded, server)
    from app.commands.asking import TerminalAsker, pick_asker, progress_line
    from app.server_requests import Interaction

    # A form the server asks for is asked on a terminal (declined otherwise); progress shows on stderr.
    line = progress_line()
    interaction = Interaction(asker=pick_asker(None), progress=line)
    if isinstance(interaction.asker, TerminalAsker) and line is not None:
        interaction.asker.pause = line.clear

    from app.audit import open_trail

    trail = open_trail(loaded, user, "tools call")  # before any server starts: nothing runs unaudited

    async def go() -> Any:
        async with Toolbox(loaded, [server], probe_hosted=False, interaction=interaction) as box:
            srv = box.server(server)
            try:
                names = [t.name for t in await srv.list_tools()]
            except Exception as exc:  # noqa: BLE001 - transport and protocol errors become one line
                raise ToolCallError(f"{server}: {_cause(exc, box)}") from None
            if tool not in names:
                raise UsageError(
                    f"server '{server}' has no tool '{tool}'{did_you_mean(tool, set(names))}",
                    hint=f"`agentdeck tools list --server {server}` lists its tools",
                )
            with recording() as log:
                log.audit = trail.run(None) if trail is not None else None
                started = time.perf_counter()
                try:
                    result = await srv.call_tool(tool, arguments)
                except Exception as exc:  # noqa: BLE001 - transport and protocol errors become one line
                    cause = _cause(exc, box)
                    record_tool_call(server, tool, arguments, False, time.perf_counter() - started, error=cause)
                    raise ToolCallError(f"calling {server}.{tool} failed: {cause}") from None
                finally:
                    if line is not None:
                        line.clear()
                seconds = time.perf_counter() - started
                record_tool_call(server, tool, arguments, not result.is_error, seconds, result=result)
                return result

    try:
        result = run_async(go())
    finally:
        if trail is not None and (failure := trail.close()):
            stderr().print(f"[yellow]warning:[/] {escape(failure)}")
    if json_out:
        print(
            json.dumps(result.model_dump(mode="json", by_alias=True, exclude_none=True), ensure_ascii=False, indent=2)
        )
    else:
        out = stdout()
        for text in result_lines(result):
            out.print(text, markup=False)
    if result.is_error:
        raise SystemExit(1)


def _cause(exc: BaseException, box: Toolbox) -> str:
    from app.config.redact import known_secrets, redact
    from app.connect import describe_exception

    return str(redact(describe_exception(exc), known_secrets(box.loaded)))
