"""The agentdeck command line. Subcommands import their heavy dependencies lazily."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, NoReturn

import typer

from app.cli_groups import audit_app, auth_app, config_app, experiment_app, gateway_app, servers_app, tools_app
from app.cli_shared import (
    CONFIG_HELP,
    AgentOpt,
    Command,
    ConfigOpt,
    ExecutorOpt,
    Group,
    ProgressEveryOpt,
    UserOpt,
    WorkersOpt,
    arg,
    opt,
)

app = typer.Typer(
    name="agentdeck",
    help="Run OpenAI Agents SDK agents against MCP servers, configured by one agents.yaml.\n\n"
    "New here? `agentdeck init` writes a starter config. For tab completion of commands and options,\n"
    "run `agentdeck --install-completion` once (bash, zsh, fish or PowerShell).\n\n"
    'Example: agentdeck run "What tools do you have?"',
    cls=Group,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)
app.add_typer(config_app, name="config")
app.add_typer(servers_app, name="servers")
app.add_typer(tools_app, name="tools")
app.add_typer(auth_app, name="auth")
app.add_typer(audit_app, name="audit")
app.add_typer(gateway_app, name="gateway")
app.add_typer(experiment_app, name="experiment")


def _print_version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        print(f"agentdeck {version('agentdeck')}")
    except PackageNotFoundError:  # run from a source tree that was never installed
        print("agentdeck (version unknown: not installed)")
    raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[str | None, opt("--config", "-c", metavar="PATH", help=CONFIG_HELP)] = None,
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True)
    ] = False,
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


class Elicit(StrEnum):
    ask = "ask"
    decline = "decline"


class Template(StrEnum):
    basic = "basic"
    filesystem = "filesystem"
    customers = "customers"
    hosted = "hosted"


@app.command(cls=Command)
def init(
    path: Annotated[str | None, arg("PATH", "Where to write (default: --config, else ./agents.yaml).")] = None,
    template: Annotated[
        Template,
        opt(
            "--template",
            "-t",
            metavar="NAME",
            help="basic, filesystem, customers or hosted (OpenAI-hosted MCP).",
        ),
    ] = Template.basic,
    force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Write a commented starter agents.yaml.

    Every template validates and runs at once: without OPENAI_API_KEY on the offline model.
    An existing file is never replaced without --force.

    Example: agentdeck init --template filesystem
    """
    from app.commands.init import init_command

    init_command(template.value, path or config, force)


@app.command(cls=Command)
def run(
    question: Annotated[
        str | None, arg("QUESTION", 'The question or task; "-" (or none, with input piped) reads standard input.')
    ] = None,
    files: Annotated[
        list[str] | None,
        opt("--file", "-f", metavar="PATH", help="Attach a text file or image to the question (repeatable)."),
    ] = None,
    resources: Annotated[
        list[str] | None,
        opt("--resource", "-r", metavar="URI", help="Attach a resource of the agent's servers (repeatable)."),
    ] = None,
    agent: AgentOpt = None,
    model: Annotated[str | None, opt("--model", "-m", metavar="NAME", help="Override the agent's model name.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON record of the run.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print the answer alone: no streaming tool panels.")
    ] = False,
    approve: Annotated[
        Approve | None,
        opt("--approve", metavar="MODE", help="Calls that need approval: ask (default on a terminal), yes, or no."),
    ] = None,
    elicit: Annotated[
        Elicit | None,
        opt(
            "--elicit",
            metavar="MODE",
            help="A server asking for input (a form, a URL): ask (default on a terminal) or decline.",
        ),
    ] = None,
    user: UserOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Ask an agent one question and print its answer.

    Example: agentdeck run "Summarise this file" -f notes.md
    """
    from app.commands.run import run_command

    run_command(
        question, agent=agent, model=model, json_out=json_out, approve=approve.value if approve else None,
        config=config, files=list(files or []), quiet=quiet, elicit=elicit.value if elicit else None,
        resources=list(resources or []), user=user,
    )  # fmt: skip


@app.command(cls=Command)
def chat(
    agent: Annotated[
        str | None, opt("--agent", "-a", metavar="NAME", help="Agent to start with (default: defaults.agent).")
    ] = None,
    session: Annotated[
        str | None, opt("--session", "-s", metavar="NAME", help="Resume (or start) this named session.")
    ] = None,
    new: Annotated[bool, typer.Option("--new", help="Start a new session (the default without --session).")] = False,
    approve: Annotated[
        Approve | None,
        opt("--approve", metavar="MODE", help="Calls that need approval: ask (default on a terminal), yes, or no."),
    ] = None,
    user: UserOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Chat with an agent in the terminal.

    From a pipe it reads one message per line.

    Example: agentdeck chat --session support
    """
    from app.commands.chat import chat_command

    chat_command(config, agent, session, new, approve.value if approve else None, user)


@app.command(cls=Command)
def batch(
    input: Annotated[str, arg("INPUT", "A .txt (one query per line), .jsonl or .csv file.")],
    out: Annotated[
        str | None, opt("--out", "-o", metavar="PATH", help="Results JSONL (default: INPUT's name + .results.jsonl).")
    ] = None,
    agent: AgentOpt = None,
    concurrency: Annotated[
        int | None,
        opt("--concurrency", "-j", metavar="N", help="Rows run at the same time (per worker); default 8."),
    ] = None,
    executor: ExecutorOpt = None,
    workers: WorkersOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue OUT: skip finished ids, retry failed.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing OUT.")] = False,
    template: Annotated[
        str | None,
        opt("--template", metavar="TEXT", help='Build each query from fields: "Summarise {title}: {body}".'),
    ] = None,
    id_field: Annotated[str | None, opt("--id-field", metavar="FIELD", help="Field holding each row's id.")] = None,
    input_field: Annotated[
        str | None, opt("--input-field", metavar="FIELD", help="Field holding the query (default: input).")
    ] = None,
    limit: Annotated[int | None, opt("--limit", metavar="N", help="Only the first N records of INPUT.")] = None,
    max_errors: Annotated[
        int | None, opt("--max-errors", metavar="N", help="Stop after N failed rows (in-flight rows finish).")
    ] = None,
    timeout: Annotated[float | None, opt("--timeout", metavar="SECONDS", help="Time each row may take.")] = None,
    approve: Annotated[
        BatchApprove | None,
        opt("--approve", metavar="MODE", help="yes or no (default) for calls that need approval; never prompts."),
    ] = None,
    summary: Annotated[
        str | None, opt("--summary", metavar="PATH", help="Also write the summary as JSON here.")
    ] = None,
    progress_every: ProgressEveryOpt = 10.0,
    user: UserOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run an agent over every record of a file into JSONL.

    Results stream to the file as rows finish; --resume continues an interrupted batch.

    Example: agentdeck batch questions.txt -o answers.jsonl --concurrency 4
    """
    from app.commands.batch import BatchArgs, batch_command

    batch_command(
        BatchArgs(
            input, out, agent, concurrency, resume, overwrite, template, id_field, input_field, limit,
            max_errors, timeout, approve.value if approve else None, summary, progress_every, config, user,
            executor.value if executor else None, workers,
        )
    )  # fmt: skip


# Everything after NAME is the server's own (`agentdeck serve filesystem --help` is the server's help).
@app.command(
    cls=Command,
    no_args_is_help=True,
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
def serve(
    server: Annotated[str, arg("NAME", "filesystem, customers, openai or conversations.")],
    args: Annotated[
        list[str] | None, arg("ARGS", "The server's own options (--transport stdio|sse|http, --port N, ...).")
    ] = None,
) -> None:
    """Run one of the bundled MCP servers (NAME lists them).

    Everything after NAME goes to the server: `agentdeck serve NAME --help` lists its options.

    Example: agentdeck serve filesystem --root . --transport http --port 8000
    """
    from app.commands.serve import serve_bundled

    serve_bundled(server, list(args or []))


@app.command("fake-openai", cls=Command)
def fake_openai(
    rules: Annotated[
        str | None, opt("--rules", metavar="PATH", help="Offline rules YAML (default: the built-in rules).")
    ] = None,
    host: Annotated[str, opt("--host", metavar="HOST", help="Loopback address to bind.")] = "127.0.0.1",
    port: Annotated[int, opt("--port", metavar="PORT", help="Port (0 picks a free one).")] = 0,
    latency: Annotated[float, opt("--latency", metavar="SECONDS", help="Added to every model request.")] = 0.0,
    chunk_delay: Annotated[
        float, opt("--chunk-delay", metavar="SECONDS", help="Between streamed text chunks (makes streaming visible).")
    ] = 0.0,
    faults: Annotated[
        str | None,
        opt("--faults", metavar="JSON", help='Faults to inject first, e.g. \'[{"status": 429, "retry_after": 1}]\'.'),
    ] = None,
) -> None:
    """Serve the offline model as an OpenAI-compatible API.

    Binds loopback only and prints the base URL first. POST /_admin/faults queues more faults (the same JSON list).

    Example: agentdeck fake-openai --port 8766 --rules rules.yaml
    """
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
        if type(exc).__name__ == "NoArgsIsHelpError":  # `agentdeck config` alone: its help, not an error
            print(getattr(exc, "message", exc), file=sys.stderr)
            raise SystemExit(2) from None
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


def entry() -> None:
    """The `agentdeck` executable: main(), then exit without the interpreter's teardown (servers.exiting).

    AGENTDECK_DEBUG keeps the full teardown, so that its warnings stay visible.
    """
    from app.debug import debug_enabled
    from servers.exiting import run_main

    if debug_enabled():
        main()
    else:
        run_main(main)
