"""The command groups: `config`, `servers`, `tools`, `auth`, `audit`, `gateway` and `experiment`."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from app.cli_shared import (
    Command,
    ConfigOpt,
    ExecutorOpt,
    JsonOpt,
    ProgressEveryOpt,
    UserOpt,
    WorkersOpt,
    arg,
    opt,
    sub_app,
)

config_app = sub_app("Validate, show, convert and describe agents.yaml.\n\nExample: agentdeck config validate")
servers_app = sub_app("List and check the configured MCP servers.\n\nExample: agentdeck servers check")
tools_app = sub_app("See and call the tools agents are offered.\n\nExample: agentdeck tools list --agent assistant")
auth_app = sub_app("Log in to OAuth servers; see or delete saved logins.\n\nExample: agentdeck auth login github")
audit_app = sub_app(
    "Read the audit trail: who called which tool, and how it went.\n\n"
    "Example: agentdeck audit query --since 1h --status error"
)
gateway_app = sub_app(
    "One governed MCP endpoint over many servers, per-caller tools.\n\nExample: agentdeck gateway serve"
)
gateway_token_app = sub_app(
    "Give callers of the gateway their tokens.\n\nExample: agentdeck gateway token add alice --profile support"
)
gateway_app.add_typer(gateway_token_app, name="token")
experiment_app = sub_app(
    "Run questions under several variants and compare them.\n\nExample: agentdeck experiment run exp.yaml"
)


class ExportFormat(StrEnum):
    claude = "claude"


@experiment_app.command("run", cls=Command)
def experiment_run(
    file: Annotated[str, arg("FILE", "The experiment file (YAML).")],
    out: Annotated[
        str | None,
        opt("--out", "-o", metavar="DIR", help="Directory for rows.jsonl and the reports (default: FILE.results)."),
    ] = None,
    repeat: Annotated[int | None, opt("--repeat", metavar="N", help="Runs of each question per variant.")] = None,
    concurrency: Annotated[
        int | None, opt("--concurrency", "-j", metavar="N", help="Rows run at the same time (per worker).")
    ] = None,
    executor: ExecutorOpt = None,
    workers: WorkersOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue DIR: run only the missing rows.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the results in DIR.")] = False,
    limit: Annotated[int | None, opt("--limit", metavar="N", help="Only the first N questions.")] = None,
    progress_every: ProgressEveryOpt = 10.0,
    config: ConfigOpt = None,
) -> None:
    """Run every question under every variant; write reports.

    Prints the side-by-side table and writes the reports into DIR.

    Example: agentdeck experiment run exp.yaml -o runs/exp --repeat 3
    """
    from app.commands.experiment import ExperimentArgs, run_experiment

    run_experiment(
        ExperimentArgs(
            file, out, repeat, concurrency, resume, overwrite, limit, progress_every, config,
            executor.value if executor else None, workers,
        )
    )  # fmt: skip


@experiment_app.command("validate", cls=Command)
def experiment_validate(
    file: Annotated[str, arg("FILE", "The experiment file (YAML).")], config: ConfigOpt = None
) -> None:
    """Check an experiment file and every variant's config.

    The first problem is reported with its location.

    Example: agentdeck experiment validate exp.yaml
    """
    from app.commands.experiment import validate

    validate(file, config)


@experiment_app.command("compare", cls=Command)
def experiment_compare(
    first: Annotated[str, arg("DIR1", "A finished experiment's directory.")],
    second: Annotated[str, arg("DIR2", "Another one.")],
    json_out: JsonOpt = False,
) -> None:
    """Compare two finished experiments, variant by variant.

    Example: agentdeck experiment compare runs/before runs/after
    """
    from app.commands.experiment import compare

    compare(first, second, json_out)


@servers_app.command("list", cls=Command)
def servers_list(config: ConfigOpt = None) -> None:
    """List the configured servers (no connection is made).

    Example: agentdeck servers list -c agents.yaml
    """
    from app.commands.servers import list_servers

    list_servers(config)


@servers_app.command("check", cls=Command)
def servers_check(json_out: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Connect to every server; report ok/failed and tools.

    Local servers are started and listed (start time, tool count); hosted ones are looked at.

    Example: agentdeck servers check --json
    """
    from app.commands.servers import check_servers

    check_servers(config, json_out)


@tools_app.command("list", cls=Command)
def tools_list(
    agent: Annotated[str | None, opt("--agent", "-a", metavar="NAME", help="Show what this agent is offered.")] = None,
    server: Annotated[
        str | None, opt("--server", "-s", metavar="NAME", help="Show one server's tools after its own filters.")
    ] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Show the tools after all filters (no model needed).

    Example: agentdeck tools list --server files
    """
    from app.commands.tools import list_tools

    list_tools(config, agent=agent, server=server, json_out=json_out)


@tools_app.command("call", cls=Command)
def tools_call(
    server: Annotated[str, arg("SERVER", "Server name from agents.yaml.")],
    tool: Annotated[str, arg("TOOL", "Tool name.")],
    args: Annotated[str, opt("--args", metavar="JSON", help="Tool arguments as a JSON object.")] = "{}",
    json_out: Annotated[bool, typer.Option("--json", help="Print the raw MCP result as JSON.")] = False,
    user: UserOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Call one tool directly and print its result.

    Example: agentdeck tools call files list_directory --args '{"path": "."}'
    """
    from app.commands.tools import call_tool

    call_tool(config, server, tool, args, json_out, user)


@config_app.command("validate", cls=Command)
def config_validate(config: ConfigOpt = None) -> None:
    """Check agents.yaml; report the first problem and where.

    Example: agentdeck config validate -c agents.yaml
    """
    from app.commands.config import validate

    validate(config)


@config_app.command("show", cls=Command)
def config_show(config: ConfigOpt = None) -> None:
    """Print the effective config, secrets redacted.

    Shows the values after ${VAR} interpolation, with every secret as ***.

    Example: agentdeck config show -c agents.yaml
    """
    from app.commands.config import show

    show(config)


@config_app.command("schema", cls=Command)
def config_schema() -> None:
    """Print the JSON Schema of agents.yaml.

    Editors use it for completion and checks.

    Example: agentdeck config schema > agents.schema.json
    """
    from app.commands.config import schema

    schema()


@config_app.command("import-claude", cls=Command)
def config_import_claude(
    file: Annotated[str, arg("FILE", "Claude Desktop / Cursor JSON with mcpServers.")],
) -> None:
    """Convert mcpServers JSON into a `servers:` section.

    Reads Claude Desktop, Cursor or VS Code JSON and prints the YAML.

    Example: agentdeck config import-claude claude_desktop_config.json
    """
    from app.commands.config import import_claude

    import_claude(file)


@config_app.command("export", cls=Command)
def config_export(
    format: Annotated[
        ExportFormat, opt("--format", metavar="FORMAT", help="Output format: claude (mcpServers JSON).")
    ] = ExportFormat.claude,
    gateway: Annotated[
        str | None,
        opt(
            "--gateway", metavar="URL", help="Point the client at this gateway profile (http://HOST:PORT/mcp/PROFILE)."
        ),
    ] = None,
    token_env: Annotated[
        str, opt("--token-env", metavar="VAR", help="The variable the client reads the gateway token from.")
    ] = "AGENTDECK_GATEWAY_TOKEN",
    config: ConfigOpt = None,
) -> None:
    """Export the local servers (or a gateway profile) for Claude.

    The JSON Claude Desktop, Cursor and VS Code read; secrets stay ${VAR} references.

    Example: agentdeck config export --format claude --gateway http://127.0.0.1:8900/mcp/support
    """
    from app.commands.config import export, export_gateway

    if gateway is not None:
        export_gateway(gateway, token_env)
        return
    export(config, format.value)


@auth_app.command("login", cls=Command)
def auth_login(
    server: Annotated[str, arg("SERVER", "Server name from agents.yaml (one with `auth:`).")],
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the login URL instead of opening a browser.")
    ] = False,
    timeout: Annotated[
        float, opt("--timeout", metavar="SECONDS", help="How long to wait for the browser to come back.", min=1)
    ] = 300.0,
    config: ConfigOpt = None,
) -> None:
    """Log in to a server and save its tokens.

    Tokens are saved in the state directory (files 0600). An `oauth` server opens your browser (the URL is printed too) and waits for it to return to a
    loopback port; a `client_credentials` server gets a token for this machine. Other commands then
    use and refresh the saved token.

    Example: agentdeck auth login github
    """
    from app.commands.auth import login

    login(config, server, open_browser=not no_browser, timeout=timeout)


@auth_app.command("status", cls=Command)
def auth_status(
    server: Annotated[str | None, arg("SERVER", "Only this server.")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Which servers are logged in, where, and until when.

    Shows each server's issuer, scopes and token expiry (never the token).

    Example: agentdeck auth status
    """
    from app.commands.auth import status

    status(config, server, json_out)


@auth_app.command("logout", cls=Command)
def auth_logout(
    server: Annotated[str, arg("SERVER", "Server name from agents.yaml.")],
    config: ConfigOpt = None,
) -> None:
    """Delete a server's saved tokens.

    The client registration is kept, so the next login does not register again.

    Example: agentdeck auth logout github
    """
    from app.commands.auth import logout

    logout(config, server)


AuditPathOpt = Annotated[
    str | None, opt("--path", metavar="FILE", help="Read this trail (.jsonl, or .sqlite) instead of audit.path.")
]
SinceOpt = Annotated[
    str | None, opt("--since", metavar="WHEN", help="Only records from this long ago (30m, 1h, 2d) or this date.")
]


@audit_app.command("tail", cls=Command)
def audit_tail(
    lines: Annotated[int, opt("--lines", "-n", metavar="N", help="How many of the last records to show.", min=0)] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing records as they are written.")] = False,
    path: AuditPathOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the records as JSON lines.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Show the latest records, one per line (-f follows new ones).

    Example: agentdeck audit tail -f
    """
    from app.commands.audit import tail_command

    tail_command(config, path, lines, follow, json_out)


@audit_app.command("query", cls=Command)
def audit_query(
    since: SinceOpt = None,
    tool: Annotated[str | None, opt("--tool", metavar="GLOB", help="Tool name (glob: 'write_*').")] = None,
    server: Annotated[str | None, opt("--server", metavar="GLOB", help="Server name (glob).")] = None,
    status: Annotated[
        str | None, opt("--status", metavar="STATUS", help="ok, error, declined, unreachable or cancelled.")
    ] = None,
    user: Annotated[str | None, opt("--user", metavar="NAME", help="Who made the call.")] = None,
    agent: Annotated[str | None, opt("--agent", "-a", metavar="GLOB", help="Agent name (glob).")] = None,
    kind: Annotated[
        str | None, opt("--kind", metavar="KIND", help="tool_call, model_call, run_start or run_end.")
    ] = None,
    run: Annotated[str | None, opt("--run", metavar="ID", help="One run's records.")] = None,
    limit: Annotated[int | None, opt("--limit", metavar="N", help="Only the last N matches.", min=1)] = None,
    path: AuditPathOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the records as JSON lines.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Find records by time, tool, server, status, user or run.

    Example: agentdeck audit query --since 1h --tool 'write_*' --status error --user alice
    """
    from app.audit.reading import Query, parse_since
    from app.commands.audit import query_command

    query = Query(parse_since(since) if since else None, kind, server, tool, status, user, agent, run)
    query_command(config, path, query, limit, json_out)


@audit_app.command("stats", cls=Command)
def audit_stats(
    since: SinceOpt = None,
    user: Annotated[str | None, opt("--user", metavar="NAME", help="Only this caller's calls.")] = None,
    path: AuditPathOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Calls, errors and p50/p95 duration per server and tool.

    Example: agentdeck audit stats --since 1d
    """
    from app.audit.reading import Query, parse_since
    from app.commands.audit import stats_command

    stats_command(config, path, Query(parse_since(since) if since else None, user=user), json_out)


@gateway_app.command("serve", cls=Command)
def gateway_serve(
    host: Annotated[str | None, opt("--host", metavar="HOST", help="Address to bind (default: gateway.host).")] = None,
    port: Annotated[
        int | None, opt("--port", metavar="PORT", help="Port (default: gateway.port; 0 picks a free one).")
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        opt("--allow-host", metavar="NAME", help="Another Host/Origin name to accept (a proxy in front; repeatable)."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Serve each gateway profile at /mcp/PROFILE until interrupted.

    Example: agentdeck gateway serve --port 8900
    """
    from app.commands.gateway import serve_gateway

    serve_gateway(config, host, port, list(allow_host or []))


@gateway_token_app.command("add", cls=Command)
def gateway_token_add(
    name: Annotated[str, arg("NAME", "The caller's name (it appears in the audit trail and metrics).")],
    profile: Annotated[
        list[str] | None, opt("--profile", "-p", metavar="PROFILE", help="A profile it may use (repeatable).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Create a caller and print its new token (once; only its hash is kept).

    Example: agentdeck gateway token add alice --profile support
    """
    from app.commands.gateway import token_add

    token_add(config, name, list(profile or []))
