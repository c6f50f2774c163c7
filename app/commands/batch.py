"""`agentdeck batch`: run one agent over every record of a file, streaming results to JSONL."""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from app.commands.common import load, run_async, status_console, stderr, stdout
from app.errors import RunError, UsageError


@dataclass
class BatchArgs:
    input: str
    out: str | None = None
    agent: str | None = None
    concurrency: int | None = None
    resume: bool = False
    overwrite: bool = False
    template: str | None = None
    id_field: str | None = None
    input_field: str | None = None
    limit: int | None = None
    max_errors: int | None = None
    timeout: float | None = None
    approve: str | None = None
    summary: str | None = None
    progress_every: float = 10.0
    config: str | None = None
    user: str | None = None
    executor: str | None = None
    workers: int | None = None


def default_out(input_path: Path) -> Path:
    """`questions.txt` -> `questions.results.jsonl`, beside the input."""
    return input_path.with_name(input_path.stem + ".results.jsonl")


def _check(args: BatchArgs) -> None:
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.max_errors is not None and args.max_errors < 1:
        raise UsageError("--max-errors must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")


def resume_argv(args: BatchArgs, out: Path) -> list[str]:
    """The command line that continues this batch."""
    argv = ["agentdeck", "batch", args.input, "-o", str(out), "--resume"]
    for flag, value in (
        ("--config", args.config),
        ("--agent", args.agent),
        ("--template", args.template),
        ("--id-field", args.id_field),
        ("--input-field", args.input_field),
        ("--approve", args.approve),
        ("--executor", args.executor),
        ("--workers", None if args.workers is None else str(args.workers)),
    ):
        if value is not None:
            argv += [flag, value]
    return argv


def batch_command(args: BatchArgs) -> None:
    """Validate everything up front, then connect once (or start the workers) and run the rows."""
    from contextlib import AsyncExitStack

    from app.batch.driver import drive
    from app.batch.engine import BatchOptions, Control
    from app.batch.inputs import count_records, input_spec, read_rows
    from app.batch.results import compact, errors_path, prepare
    from app.batch.stats import BatchStats, summary_lines
    from app.executors.jobs import BatchJob
    from app.executors.plan import make_plan, open_executor
    from app.prices import PriceTable

    _check(args)
    spec = input_spec(Path(args.input), args.template, args.id_field, args.input_field)
    out = Path(args.out) if args.out else default_out(spec.path)
    if out.resolve() == spec.path.resolve():
        raise UsageError("the output file is the input file", hint="give another name with -o")
    summary_path = Path(args.summary) if args.summary else None
    if summary_path is not None and not summary_path.parent.is_dir():
        raise UsageError(f"cannot write the summary to {summary_path}: no such directory")
    loaded = load(args.config)
    plan = make_plan(loaded.config.batch, args.executor, args.workers, args.concurrency)
    existing = prepare(out, args.resume, args.overwrite)
    total = count_records(spec)
    if args.limit is not None:
        total = min(total, args.limit)
    stats = BatchStats(total=total, executor=plan.executor)
    control = Control()
    # Absolute: a Ray actor on a cluster started elsewhere does not work in this directory.
    job = BatchJob(config=str(loaded.path.resolve()), agent=args.agent, approve=args.approve, timeout=args.timeout,
                   user=args.user, session=f"batch:{spec.path.name}")  # fmt: skip

    async def go() -> None:
        started = time.perf_counter()
        async with AsyncExitStack() as stack:
            running = await open_executor(stack, plan, job, status_console(), loaded, control.stop)
            opened = running.opened
            stats.startup_s = time.perf_counter() - started
            stats.model = opened.model
            for warning in opened.warnings:
                stderr().print(f"[yellow]warning:[/] {warning}")
            if opened.offline is not None:
                stderr().print(f"[dim]Using the offline model ({opened.offline}).[/]")
            options = BatchOptions(running.concurrency, args.max_errors, args.limit, unique_ids=bool(args.id_field))
            remaining = max(total - len(existing.done), 0)
            await drive(
                opened.runner, read_rows(spec), existing.done, out, stats, options, control, remaining=remaining,
                progress_every=args.progress_every, alive=running.alive,
            )  # fmt: skip
        stats.tools_list_fetches = running.fetches()
        stats.workers, stats.requeued = running.worker_stats(stats.wall_s), running.requeued()
        stats.total_s = time.perf_counter() - started

    run_async(go())
    stats.cost_usd = PriceTable(loaded.config.defaults.prices).cost(stats.model, stats.tokens)
    if control.failure is not None:
        reason = getattr(control.failure, "strerror", None) or str(control.failure)
        raise RunError(
            f"cannot write results to {out}: {reason}",
            hint=f"rows written before this are kept; fix it and resume with: {shlex.join(resume_argv(args, out))}",
        )
    # Retried rows leave their earlier failure behind; the final file keeps one row per id.
    compact(out)
    stats.stopped = control.reason
    incomplete = bool(control.reason) or stats.errors > 0 or stats.by_status["cancelled"] > 0
    lines = summary_lines(stats, str(out), str(errors_path(out)), resume_argv(args, out) if incomplete else None)
    stdout().print("\n".join(lines), markup=False)
    if summary_path is not None:
        try:
            summary_path.write_text(json.dumps(stats.as_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write the summary to {summary_path}: {exc.strerror}") from None
    sys.stdout.flush()
    if control.interrupted:
        raise SystemExit(130)
    if incomplete:
        raise SystemExit(1)
