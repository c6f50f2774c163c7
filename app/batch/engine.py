"""Run input rows through one agent with N concurrent workers sharing the Deck's connections."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from app.approvals import Approver
from app.batch.inputs import InputRow
from app.batch.stats import BatchStats
from app.errors import RunError
from app.telemetry import ToolCallLog

if TYPE_CHECKING:
    from app.deck import Deck


@dataclass
class BatchOptions:
    concurrency: int = 8
    max_errors: int | None = None
    limit: int | None = None
    unique_ids: bool = False


class Control:
    """Why and whether the batch is stopping; shared by the feeder, the workers and signal handlers."""

    def __init__(self) -> None:
        self.stopping = False
        self.interrupted = False
        self.reason: str | None = None
        self.failure: Exception | None = None
        self.tasks: list[asyncio.Task[Any]] = []

    def stop(self, reason: str) -> None:
        if not self.stopping:
            self.stopping, self.reason = True, reason

    def fail(self, exc: Exception) -> None:
        """Results cannot be written (disk full, file removed): stop everything, keep what was written."""
        if self.failure is None:
            self.failure = exc
        self.stop(f"cannot write results: {exc}")
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()

    def interrupt(self) -> None:
        """Ctrl-C / SIGTERM: stop feeding and cancel the runs in flight (they are recorded as cancelled)."""
        if self.interrupted:
            return
        self.interrupted = True
        self.stop("interrupted")
        for task in self.tasks:
            task.cancel()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def base_row(row: InputRow, agent: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "line": row.line,
        "input": row.input,
        "agent": agent,
        "output": None,
        "status": "error",
        "error": row.error,
        "tool_calls": [],
        "usage": None,
        "started_at": None,
        "duration_ms": 0.0,
    }


async def run_row(deck: Deck, row: InputRow, approver: Approver, timeout: float | None) -> dict[str, Any]:
    """One input through the agent; every outcome (even cancellation) becomes a result row."""
    from app.runner import describe_run_error, run_question  # the SDK loads while servers start (app.startup)

    result = base_row(row, deck.agent.name)
    result["started_at"] = _now()
    log = ToolCallLog()
    started = time.perf_counter()
    try:
        outcome = await asyncio.wait_for(run_question(deck, row.input, approver, log, row=str(row.id)), timeout)
    except TimeoutError:
        result.update(status="timeout", error=f"no answer within {timeout:g} s (--timeout)")
    except asyncio.CancelledError:
        result.update(status="cancelled", error="the batch was interrupted while this row ran")
    except RunError as exc:
        result.update(error=exc.message)
    except Exception as exc:  # noqa: BLE001 - one row's failure never ends the batch
        result.update(error=describe_run_error(exc))
    else:
        declined = any(c.declined for c in outcome.tool_calls)
        # The model answered without a tool whose server was away: --resume must run the row again.
        lost = next((c for c in outcome.tool_calls if c.unreachable), None)
        result.update(
            output=outcome.output,
            agent=outcome.agent,
            usage=outcome.usage,
            status="error" if lost else "declined" if declined else "ok",
            error=lost.error if lost else None,
        )
    result["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    result["tool_calls"] = [c.row() for c in log.calls]
    result["approvals"] = log.approvals
    return result


class RowRunner(Protocol):
    """How the engine turns an input row into a result row (here, in a worker process or on a Ray actor)."""

    async def run(self, row: InputRow) -> dict[str, Any]:
        """Run one row; every outcome, even cancellation or a row that cannot run (`row.error`), is a result."""
        ...


@dataclass
class DeckRunner:
    """Batch rows: every row through the deck's agent."""

    deck: Deck
    approver: Approver
    timeout: float | None = None

    async def run(self, row: InputRow) -> dict[str, Any]:
        if row.error is not None:
            return base_row(row, self.deck.agent.name)
        return await run_row(self.deck, row, self.approver, self.timeout)


async def run_batch(
    runner: RowRunner,
    rows: Iterator[InputRow],
    done: set[str],
    emit: Callable[[dict[str, Any]], None],
    stats: BatchStats,
    options: BatchOptions,
    control: Control,
) -> None:
    """Feed rows to the workers until the input ends, --limit is reached or the batch is stopped."""
    queue: asyncio.Queue[InputRow | None] = asyncio.Queue(maxsize=options.concurrency * 2)

    def record(result: dict[str, Any]) -> None:
        emit(result)
        if options.max_errors is not None and stats.errors >= options.max_errors:
            control.stop(f"{stats.errors} errors reached --max-errors {options.max_errors}")

    async def worker() -> None:
        while True:
            try:
                row = await queue.get()
            except asyncio.CancelledError:
                return
            if row is None or control.stopping:
                return  # rows not started are simply left for --resume
            try:
                result = await runner.run(row)
            except Exception as exc:  # noqa: BLE001 - a bug in agentdeck: stop rather than lose the row silently
                control.stop(f"a row failed inside agentdeck ({type(exc).__name__}: {exc}); it is left for --resume")
                return
            try:
                record(result)
            except Exception as exc:  # noqa: BLE001 - surfaced by the caller through control.failure
                control.fail(exc)
                return
            if control.interrupted or control.failure:
                return

    control.tasks = [asyncio.create_task(worker()) for _ in range(options.concurrency)]
    seen: set[str] = set()
    started, cpu_started = time.perf_counter(), time.process_time()
    for position, row in enumerate(rows, start=1):
        if control.stopping or (options.limit is not None and position > options.limit):
            break
        if position % 1000 == 0:
            await asyncio.sleep(0)  # long runs of skipped rows must not starve the workers
        if row.id in done:
            stats.skipped += 1
            continue
        if options.unique_ids:
            if row.id in seen:
                stats.duplicates += 1
                continue
            seen.add(row.id)
        if not await _offer(queue, row, control):
            break
    await _close(queue, options.concurrency, control)
    await asyncio.gather(*control.tasks, return_exceptions=True)
    stats.wall_s = time.perf_counter() - started
    stats.cpu_s = time.process_time() - cpu_started


# The queue is polled only while it is full, so a stop (max errors, Ctrl-C) never leaves the feeder
# blocked on workers that have already returned.
_POLL = 0.005


async def _offer(queue: asyncio.Queue[InputRow | None], row: InputRow, control: Control) -> bool:
    while not control.stopping:
        try:
            queue.put_nowait(row)
            return True
        except asyncio.QueueFull:
            await asyncio.sleep(_POLL)
    return False


async def _close(queue: asyncio.Queue[InputRow | None], workers: int, control: Control) -> None:
    """One end marker per worker; on a stop, unstarted rows are dropped first (they stay for --resume)."""
    put = 0
    while put < workers:
        if control.stopping:
            while not queue.empty():
                queue.get_nowait()
            for _ in range(workers):
                queue.put_nowait(None)  # fits: the queue holds twice as many rows as there are workers
            return
        try:
            queue.put_nowait(None)
            put += 1
        except asyncio.QueueFull:
            await asyncio.sleep(_POLL)
