"""`agentdeck experiment run|compare`: the same questions under several variants, side by side."""

from __future__ import annotations

import itertools
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.commands.common import run_async, stderr, stdout
from app.errors import RunError, UsageError

REPORT_FILES = ("report.json", "report.md", "report.html")


@dataclass
class ExperimentArgs:
    file: str
    out: str | None = None
    repeat: int | None = None
    concurrency: int | None = None
    resume: bool = False
    overwrite: bool = False
    limit: int | None = None
    progress_every: float = 10.0
    config: str | None = None
    executor: str | None = None
    workers: int | None = None


def default_dir(path: Path) -> Path:
    """`experiments/hosted.yaml` -> `experiments/hosted.results/`."""
    return path.with_name(path.stem + ".results")


def _check(args: ExperimentArgs) -> None:
    for flag, value in (("--repeat", args.repeat), ("--concurrency", args.concurrency), ("--limit", args.limit)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1")
    if not Path(args.file).is_file():
        raise UsageError(f"experiment file {args.file} does not exist or is not a file")


def resume_argv(args: ExperimentArgs, directory: Path) -> list[str]:
    """The command line that continues this experiment."""
    argv = ["agentdeck", "experiment", "run", args.file, "-o", str(directory), "--resume"]
    for flag, value in (
        ("--config", args.config), ("--repeat", args.repeat), ("--limit", args.limit), ("--executor", args.executor),
        ("--workers", args.workers),
    ):  # fmt: skip
        if value is not None:
            argv += [flag, str(value)]
    return argv


def validate(file: str, config: str | None) -> None:
    """Load the experiment and build every variant's config; print a one-line summary."""
    from app.batch.inputs import count_records
    from app.experiment.spec import load_experiment

    _check(ExperimentArgs(file))
    experiment = load_experiment(Path(file), config)
    names = ", ".join(p.name for p in experiment.variants)
    stdout().print(
        f"[green]ok[/] {file}: {count_records(experiment.questions)} question(s) × {len(experiment.variants)} "
        f"variants ({names}) × {experiment.spec.repeat}, config {experiment.base.path}",
        highlight=False,
    )


def run_experiment(args: ExperimentArgs) -> None:
    """Check everything, run the missing rows, then write and print the reports."""
    from contextlib import AsyncExitStack

    from app.batch.driver import drive
    from app.batch.engine import BatchOptions, Control
    from app.batch.inputs import count_records, read_rows
    from app.batch.results import compact, prepare
    from app.batch.stats import BatchStats
    from app.executors.jobs import ExperimentJob
    from app.executors.plan import make_plan, open_executor
    from app.experiment.runner import expand, write_meta, write_reports
    from app.experiment.spec import load_experiment

    _check(args)
    path = Path(args.file)
    experiment = load_experiment(path, args.config)
    repeat = args.repeat or experiment.spec.repeat
    directory = Path(args.out) if args.out else default_dir(path)
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is a file", hint="-o names a directory for rows.jsonl and the reports")
    # The experiment file's own concurrency, if it sets one, over batch.concurrency of the config.
    concurrency = args.concurrency or (
        experiment.spec.concurrency if "concurrency" in experiment.spec.model_fields_set else None
    )
    plan = make_plan(experiment.base.config.batch, args.executor, args.workers, concurrency)
    rows_path = directory / "rows.jsonl"
    existing = prepare(rows_path, args.resume, args.overwrite)
    if args.overwrite:
        for name in REPORT_FILES:
            (directory / name).unlink(missing_ok=True)
    write_meta(experiment, directory, repeat, args.resume)
    names = [p.name for p in experiment.variants]
    questions = count_records(experiment.questions)
    if args.limit is not None:
        questions = min(questions, args.limit)
    stats = BatchStats(total=questions * len(names) * repeat, executor=plan.executor)
    control = Control()
    job = ExperimentJob(  # absolute paths: a Ray actor on a cluster started elsewhere works in another directory
        file=str(path.resolve()), config=str(experiment.base.path.resolve()), timeout=experiment.spec.timeout
    )

    async def go() -> None:
        async with AsyncExitStack() as stack:
            running = await open_executor(stack, plan, job, loaded=experiment, stop_batch=control.stop)
            for warning in running.opened.warnings:
                stderr().print(f"[yellow]warning:[/] {warning}")
            records = read_rows(experiment.questions)
            if args.limit is not None:
                records = itertools.islice(records, args.limit)
            remaining = max(stats.total - len(existing.done), 0)
            options = BatchOptions(running.concurrency, unique_ids=bool(experiment.spec.id_field))
            await drive(
                running.opened.runner, expand(records, names, repeat), existing.done, rows_path, stats, options,
                control, remaining=remaining, progress_every=args.progress_every, alive=running.alive,
            )  # fmt: skip

    run_async(go())
    if control.failure is not None:
        reason = getattr(control.failure, "strerror", None) or str(control.failure)
        raise RunError(
            f"cannot write results to {rows_path}: {reason}",
            hint=f"rows written before this are kept; resume with: {shlex.join(resume_argv(args, directory))}",
        )
    compact(rows_path)
    report, paths = write_reports(directory)
    _print_table(report)
    out = stdout()
    out.print(f"rows: {rows_path}", markup=False)
    out.print("reports: " + ", ".join(str(p) for p in paths), markup=False)
    incomplete = bool(control.reason) or stats.errors > 0 or stats.by_status["cancelled"] > 0
    if control.reason:
        out.print(f"stopped: {control.reason}", markup=False)
    if incomplete:
        out.print(f"resume with: {shlex.join(resume_argv(args, directory))}", markup=False)
    sys.stdout.flush()
    if control.interrupted:
        raise SystemExit(130)
    if incomplete:
        raise SystemExit(1)


def _print_table(report: Any) -> None:
    from rich.table import Table

    from app.experiment.report import table_rows

    table = Table(box=None, pad_edge=False, title=None)
    table.add_column("")
    for v in report.variants:
        table.add_column(v.name, overflow="fold")
    for label, cells in table_rows(report):
        table.add_row(label, *cells)
    stdout().print(table)


# Metrics compared by `experiment compare`: (label, path in a variant's report dict, lower is better).
_METRICS = (
    ("rows", ("rows",), None),
    ("ok", ("by_status", "ok"), False),
    ("errors", ("by_status", "error"), True),
    ("timeouts", ("by_status", "timeout"), True),
    ("latency p50 ms", ("latency_ms", "p50"), True),
    ("latency p95 ms", ("latency_ms", "p95"), True),
    ("model requests", ("requests",), True),
    ("input tokens", ("input_tokens",), True),
    ("output tokens", ("output_tokens",), True),
    ("tool calls local", ("tool_calls", "local"), None),
    ("tool calls hosted", ("tool_calls", "hosted"), None),
    ("tool errors", ("tool_errors",), True),
    ("approvals asked", ("approvals_asked",), None),
    ("cost usd", ("cost_usd",), True),
    ("agreement", ("agreement", "rate"), False),
)


def _dig(data: dict[str, Any] | None, path: tuple[str, ...]) -> Any:
    value: Any = data
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def compare(first: str, second: str, json_out: bool) -> None:
    """Two finished experiments, variant by variant, with the change of every metric."""
    from app.experiment.report import build

    reports = []
    for given in (first, second):
        directory = Path(given)
        if not (directory / "experiment.json").is_file() or not (directory / "rows.jsonl").is_file():
            raise UsageError(
                f"{directory} is not an experiment directory (it needs experiment.json and rows.jsonl)",
                hint="give the -o directories of two `agentdeck experiment run`s",
            )
        reports.append({v.name: v.as_dict() for v in build(directory).variants})
    names = list(dict.fromkeys([*reports[0], *reports[1]]))
    doc: dict[str, Any] = {
        "first": first,
        "second": second,
        "variants": {
            name: {
                label: {"first": _dig(reports[0].get(name), path), "second": _dig(reports[1].get(name), path)}
                for label, path, _ in _METRICS
            }
            for name in names
        },
    }
    if json_out:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    from rich.table import Table

    out = stdout()
    for name in names:
        table = Table(box=None, pad_edge=False, title=f"variant {name}", title_justify="left")
        for col in ("", first, second, "change"):
            table.add_column(col, overflow="fold")
        for label, _, lower_better in _METRICS:
            a, b = doc["variants"][name][label]["first"], doc["variants"][name][label]["second"]
            table.add_row(label, _fmt(a), _fmt(b), _change(a, b, lower_better))
        out.print(table)
        out.print()


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _change(a: Any, b: Any, lower_better: bool | None) -> str:
    if not isinstance(a, int | float) or not isinstance(b, int | float):
        return ""
    delta = b - a
    if delta == 0:
        return "="
    text = f"{delta:+.4g}" + (f" ({delta / a:+.0%})" if a else "")
    if lower_better is None:
        return text
    better = delta < 0 if lower_better else delta > 0
    return f"[green]{text}[/]" if better else f"[red]{text}[/]"
