"""What the CLI's command modules share: help with real metavars and whole summaries, common options."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup


def _summary(text: str | None) -> str:
    """The first paragraph of a help text, whole (click would cut it to fit with "...")."""
    return " ".join((text or "").split("\n\n")[0].split())


class Command(TyperCommand):
    """Help with real metavars: `QUESTION` and `[QUESTION]`, not `{question}` or `question <str>`."""

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or _summary(self.help)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or str(param.name).upper()
                name = name if param.required else f"[{name}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        args, opts = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if isinstance(param, TyperArgument):
                args.append((param.metavar or str(param.name).upper(), record[1]))
            else:
                opts.append(record)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class Group(TyperGroup):
    """Command lists show each command's whole one-line summary."""

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or _summary(self.help)


def sub_app(help: str) -> typer.Typer:
    """A command group (`agentdeck config ...`)."""
    return typer.Typer(help=help, cls=Group, no_args_is_help=True, rich_markup_mode=None)


CONFIG_HELP = "Path to agents.yaml (default: $AGENTDECK_CONFIG, else ./agents.yaml)."


def root_config(ctx: typer.Context, value: str | None) -> str | None:
    """A command's own --config, else the one given before the command (`agentdeck -c x.yaml tools list`)."""
    if value:
        return value
    obj = ctx.find_root().obj
    return obj.get("config") if isinstance(obj, dict) else None


def opt(*names: str, metavar: str, help: str, **settings: Any) -> Any:
    """An option that takes a value, shown with a real metavar."""
    return typer.Option(*names, metavar=metavar, help=help, **settings)


def arg(metavar: str, help: str) -> Any:
    """An argument, shown as its metavar."""
    return typer.Argument(metavar=metavar, help=help, show_default=False)


ConfigOpt = Annotated[str | None, opt("--config", "-c", metavar="PATH", help=CONFIG_HELP, callback=root_config)]
AgentOpt = Annotated[str | None, opt("--agent", "-a", metavar="NAME", help="Agent to run (default: defaults.agent).")]


class ExecutorName(StrEnum):
    local = "local"
    processes = "processes"
    ray = "ray"


ExecutorOpt = Annotated[
    ExecutorName | None,
    opt("--executor", metavar="NAME", help="local (default), processes or ray: where rows run (or batch.executor)."),
]
WorkersOpt = Annotated[
    int | None,
    opt("--workers", metavar="N", help="Worker processes or Ray actors (default: batch.workers, else the cores)."),
]
ProgressEveryOpt = Annotated[
    float, opt("--progress-every", metavar="SECONDS", help="Time between progress lines when not on a terminal.")
]
UserOpt = Annotated[
    str | None,
    opt(
        "--user",
        metavar="NAME",
        help="Who is running this, for the audit trail (default: $AGENTDECK_USER, else your login name).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
