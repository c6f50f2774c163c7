"""The agentdeck command line. Subcommands import their heavy dependencies lazily."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, NoReturn

import typer

app = typer.Typer(
    name="agentdeck",
    help="Run OpenAI Agents SDK agents against MCP servers, configured by one agents.yaml.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)
config_app = typer.Typer(
    help="Validate, show, convert and describe agents.yaml.", no_args_is_help=True, rich_markup_mode=None
)
servers_app = typer.Typer(
    help="List and check the configured MCP servers.", no_args_is_help=True, rich_markup_mode=None
)
tools_app = typer.Typer(help="See and call the tools agents are offered.", no_args_is_help=True, rich_markup_mode=None)
experiment_app = typer.Typer(
    help="Run the same questions under several variants and compare them.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(config_app, name="config")
app.add_typer(servers_app, name="servers")
app.add_typer(tools_app, name="tools")
app.add_typer(experiment_app, name="experiment")

CONFIG_HELP = "Path to agents.yaml (default: $AGENTDECK_CONFIG, else ./agents.yaml)."


def _root_config(ctx: typer.Context, value: str | None) -> str | None:
    """A command's own --config, else the one given before the command (`agentdeck -c x.yaml tools list`)."""
    if value:
        return value
    obj = ctx.find_root().obj
    return obj.get("config") if isinstance(obj, dict) else None


ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help=CONFIG_HELP, callback=_root_config)]


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[str | None, typer.Option("--config", "-c", help=CONFIG_HELP)] = None,
) -> None:
    # Kept on the root context; every command's --config falls back to it (its own value wins).
    ctx.obj = {"config": config}


class Approve(StrEnum):
    ask = "ask"
    yes = "yes"
    no = "no"


class BatchApprove(StrEnum):
    yes = "yes"
    no = "no"


class ExportFormat(StrEnum):
    claude = "claude"


@app.command()
def run(
    question: Annotated[str, typer.Argument(help="The question or task for the agent.")],
    agent: Annotated[str | None, typer.Option("--agent", "-a", help="Agent to run (default: defaults.agent).")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Override the agent's model name.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON record of the run.")] = False,
    approve: Annotated[
        Approve | None,
        typer.Option(
            help="Tool calls that need approval: ask (default on a terminal), yes, or no (default otherwise)."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Ask an agent one question and print its answer."""
    from app.commands.run import run_command

    run_command(
        question, agent=agent, model=model, json_out=json_out, approve=approve.value if approve else None, config=config
    )


@app.command()
def chat(
    agent: Annotated[
        str | None, typer.Option("--agent", "-a", help="Agent to start with (default: defaults.agent).")
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", "-s", help="Resume (or start) this named session.")
    ] = None,
    new: Annotated[bool, typer.Option("--new", help="Start a new session (the default without --session).")] = False,
    approve: Annotated[
        Approve | None,
        typer.Option(
            help="ask (default on a terminal), yes, or no (default without one) for calls that need approval."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Chat with an agent in the terminal (or one message per line from a pipe)."""
    from app.commands.chat import chat_command

    chat_command(config, agent, session, new, approve.value if approve else None)


@app.command()
def batch(
    input: Annotated[str, typer.Argument(help="A .txt (one query per line), .jsonl or .csv file.")],
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Results JSONL (default: INPUT's name + .results.jsonl).")
    ] = None,
    agent: Annotated[str | None, typer.Option("--agent", "-a", help="Agent to run (default: defaults.agent).")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-j", help="Rows run at the same time.")] = 8,
    resume: Annotated[bool, typer.Option("--resume", help="Continue OUT: skip finished ids, retry failed.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing OUT.")] = False,
    template: Annotated[
        str | None, typer.Option("--template", help='Build each query from fields: "Summarise {title}: {body}".')
    ] = None,
    id_field: Annotated[str | None, typer.Option("--id-field", help="Field holding each row's id.")] = None,
    input_field: Annotated[
        str | None, typer.Option("--input-field", help="Field holding the query (default: input).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N records of INPUT.")] = None,
    max_errors: Annotated[
        int | None, typer.Option("--max-errors", help="Stop after N failed rows (in-flight rows finish).")
    ] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds each row may take.")] = None,
    approve: Annotated[
        BatchApprove | None, typer.Option(help="yes or no (default) for tool calls that need approval; never prompts.")
    ] = None,
    summary: Annotated[str | None, typer.Option("--summary", help="Also write the summary as JSON here.")] = None,
    progress_every: Annotated[
        float, typer.Option("--progress-every", help="Seconds between progress lines when not on a terminal.")
    ] = 10.0,
    config: ConfigOpt = None,
) -> None:
    """Run an agent over every record of a file; results stream to JSONL, resumable."""
    from app.commands.batch import BatchArgs, batch_command

    batch_command(
        BatchArgs(
            input, out, agent, concurrency, resume, overwrite, template, id_field, input_field, limit,
            max_errors, timeout, approve.value if approve else None, summary, progress_every, config,
        )
    )  # fmt: skip


@experiment_app.command("run")
def experiment_run(
    file: Annotated[str, typer.Argument(help="The experiment file (YAML).")],
    out: Annotated[
        str | None,
        typer.Option("--out", "-o", help="Directory for rows.jsonl and the reports (default: FILE.results)."),
    ] = None,
    repeat: Annotated[int | None, typer.Option("--repeat", help="Runs of each question per variant.")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-j", help="Rows run at the same time.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue DIR: run only the missing rows.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the results in DIR.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N questions.")] = None,
    progress_every: Annotated[
        float, typer.Option("--progress-every", help="Seconds between progress lines when not on a terminal.")
    ] = 10.0,
    config: ConfigOpt = None,
) -> None:
    """Run every question under every variant; print the side-by-side table and write the reports."""
    from app.commands.experiment import ExperimentArgs, run_experiment

    run_experiment(ExperimentArgs(file, out, repeat, concurrency, resume, overwrite, limit, progress_every, config))


@experiment_app.command("validate")
def experiment_validate(
    file: Annotated[str, typer.Argument(help="The experiment file (YAML).")],
    config: ConfigOpt = None,
) -> None:
    """Check an experiment file and every variant's config; report the first problem with its location."""
    from app.commands.experiment import validate

    validate(file, config)


@experiment_app.command("compare")
def experiment_compare(
    first: Annotated[str, typer.Argument(help="A finished experiment's directory.")],
    second: Annotated[str, typer.Argument(help="Another one.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Compare two finished experiments, variant by variant."""
    from app.commands.experiment import compare

    compare(first, second, json_out)


@servers_app.command("list")
def servers_list(config: ConfigOpt = None) -> None:
    """List the configured servers (no connection is made)."""
    from app.commands.servers import list_servers

    list_servers(config)


@servers_app.command("check")
def servers_check(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Connect to every local server and report ok/failed, start time and tool count."""
    from app.commands.servers import check_servers

    check_servers(config, json_out)


@tools_app.command("list")
def tools_list(
    agent: Annotated[str | None, typer.Option("--agent", "-a", help="Show what this agent is offered.")] = None,
    server: Annotated[
        str | None, typer.Option("--server", "-s", help="Show one server's tools after its own filters.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Show the tools after all filters (no model and no API key needed)."""
    from app.commands.tools import list_tools

    list_tools(config, agent=agent, server=server, json_out=json_out)


@tools_app.command("call")
def tools_call(
    server: Annotated[str, typer.Argument(help="Server name from agents.yaml.")],
    tool: Annotated[str, typer.Argument(help="Tool name.")],
    args: Annotated[str, typer.Option("--args", help="Tool arguments as a JSON object.")] = "{}",
    json_out: Annotated[bool, typer.Option("--json", help="Print the raw MCP result as JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Call one tool directly and print its result."""
    from app.commands.tools import call_tool

    call_tool(config, server, tool, args, json_out)


@config_app.command("validate")
def config_validate(config: ConfigOpt = None) -> None:
    """Check agents.yaml and report the first problem with its location."""
    from app.commands.config import validate

    validate(config)


@config_app.command("show")
def config_show(config: ConfigOpt = None) -> None:
    """Print the effective config after interpolation, with secrets redacted."""
    from app.commands.config import show

    show(config)


@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of agents.yaml (for editor completion)."""
    from app.commands.config import schema

    schema()


@config_app.command("import-claude")
def config_import_claude(
    file: Annotated[str, typer.Argument(help="Claude Desktop / Cursor JSON with mcpServers.")],
) -> None:
    """Convert an mcpServers JSON file into a `servers:` YAML section."""
    from app.commands.config import import_claude

    import_claude(file)


@config_app.command("export")
def config_export(
    format: Annotated[ExportFormat, typer.Option("--format", help="Output format.")] = ExportFormat.claude,
    config: ConfigOpt = None,
) -> None:
    """Export the local servers as Claude Desktop / Cursor mcpServers JSON."""
    from app.commands.config import export

    export(config, format.value)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
)
def serve(
    ctx: typer.Context,
    server: Annotated[str | None, typer.Argument(help="filesystem or customers")] = None,
) -> None:
    """Run a bundled MCP server: agentdeck serve filesystem|customers [--transport stdio|sse|http] [--help]."""
    from app.commands.serve import serve_bundled

    serve_bundled(server, list(ctx.args))


@app.command("fake-openai")
def fake_openai(
    rules: Annotated[
        str | None, typer.Option("--rules", help="Offline rules YAML (default: the built-in rules).")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Loopback address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0 picks a free one).")] = 0,
    latency: Annotated[float, typer.Option("--latency", help="Seconds added to every model request.")] = 0.0,
    chunk_delay: Annotated[
        float, typer.Option("--chunk-delay", help="Seconds between streamed text chunks (makes streaming visible).")
    ] = 0.0,
    faults: Annotated[
        str | None,
        typer.Option(
            "--faults", help='JSON list of faults to inject first, e.g. \'[{"status": 429, "retry_after": 1}]\'.'
        ),
    ] = None,
) -> None:
    """Serve the offline model as an OpenAI-compatible API (prints the base URL first)."""
    from app.commands.fake import serve_fake

    serve_fake(rules, host, port, latency, faults, chunk_delay)


def _fail(message: str, hint: str | None, detail: str | None, code: int) -> NoReturn:
    import os

    from rich.console import Console
    from rich.markup import escape

    from app.config.redact import redact, secret_values

    secrets = secret_values({}, os.environ)
    message = str(redact(message, secrets))
    hint = str(redact(hint, secrets)) if hint else None
    detail = str(redact(detail, secrets)) if detail else None
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    err.print(f"[bold red]error:[/] {escape(message)}")
    if detail:
        err.print(escape(detail))
    if hint:
        err.print(f"[dim]hint:[/] {escape(hint)}")
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and render every agentdeck error in one place."""
    from app.errors import AgentdeckError

    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="agentdeck", standalone_mode=False)
    except AgentdeckError as exc:
        _fail(exc.message, exc.hint, exc.detail, exc.exit_code)
    except typer.Exit as exc:
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted", None, None, 130)
    except typer.TyperException as exc:
        # typer vendors click: usage errors carry a context with the usage line.
        ctx = getattr(exc, "ctx", None)
        usage = ctx.get_usage() if ctx is not None else None
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        hint = f"{usage}\nrun with --help for details" if usage else None
        _fail(message, hint, None, int(getattr(exc, "exit_code", 2)))
    except BrokenPipeError:
        sys.stderr.close()
        raise SystemExit(1) from None
    if code == 130:  # typer turns KeyboardInterrupt into exit code 130
        _fail("interrupted", None, None, 130)
    if isinstance(code, int) and code:
        raise SystemExit(code)
