"""What every multi-worker executor shares: handing rows to workers with room, running a row again
once when its worker dies under it, and replacing dead workers."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.batch.engine import base_row
from app.batch.inputs import InputRow
from app.errors import AgentdeckError
from app.executors.jobs import BatchJob, ExperimentJob, Opened

log = logging.getLogger("agentdeck.executors")

RESTARTS = 3  # per worker: past this a worker that keeps dying stays down
STARTUP_TIMEOUT = 120.0  # seconds a worker may take to open its decks


class Gone(Exception):
    """The worker running a row died (or its actor was lost); `cause` says how."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


@dataclass
class WorkerStats:
    """One worker over the batch, for the summary."""

    name: str
    pid: int | None = None
    rows: int = 0
    cpu_s: float = 0.0
    restarts: int = 0
    peak_rss_mb: float | None = None  # the worker's peak memory, reported when it closes

    def closed(self, bye: dict[str, Any], cpu_before: float) -> None:
        """Take a worker's bye report (`cpu_before`: the CPU of its earlier lives)."""
        self.cpu_s = cpu_before + bye["cpu"]
        self.peak_rss_mb = bye.get("rss_mb")

    def as_dict(self, wall_s: float) -> dict[str, Any]:
        """The summary's entry, with rows/s over the batch's rows phase."""
        rate = self.rows / wall_s if wall_s > 0 else 0.0
        return {"name": self.name, "rows": self.rows, "rows_per_s": round(rate, 2), "cpu_s": round(self.cpu_s, 3),
                "restarts": self.restarts, "peak_rss_mb": self.peak_rss_mb}  # fmt: skip


class Worker(Protocol):
    """What the pool needs of a worker process or an actor."""

    stats: WorkerStats
    gone: str | None  # why it is down; None while it is up
    ready: dict[str, Any]  # what it reported once its decks were open

    @property
    def free(self) -> int:
        """Rows it can take now."""
        ...


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB (Linux reports KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def ready_report(opened: Opened) -> dict[str, Any]:
    """What a worker tells the driver once its decks are open: its pid, its MCP servers, the job's report."""
    from app.executors.children import descendants

    pid = os.getpid()
    return {"pid": pid, "children": descendants(pid), "warnings": opened.warnings, "model": opened.model,
            "offline": opened.offline, "agents": opened.agents}  # fmt: skip


def bye_report(fetches: dict[str, int]) -> dict[str, Any]:
    """What a worker tells the driver as it ends: tools/list requests per server, its CPU and peak memory."""
    return {"fetches": fetches, "cpu": time.process_time(), "rss_mb": peak_rss_mb()}


def fatal_report(exc: AgentdeckError) -> dict[str, Any]:
    """Why a worker could not open its job, for `worker_error` in the driver."""
    return {"fatal": exc.message, "hint": exc.hint, "code": exc.exit_code}


def worker_error(name: str, report: dict[str, Any]) -> AgentdeckError:
    """The error a worker could not start with, as the command would have raised it itself."""
    error = AgentdeckError(f"{name}: {report['fatal']}", hint=report.get("hint"))
    error.exit_code = int(report.get("code", 1))
    return error


class Pool:
    """The engine's row runner for workers elsewhere; subclasses say how to reach and replace them."""

    def __init__(self, job: BatchJob | ExperimentJob) -> None:
        self.job = job
        self.workers: Sequence[Worker] = []
        self.ready: dict[str, Any] = {}  # the first worker's report: model, warnings, agents
        self.cancelled = False  # Ctrl-C: close stops the workers instead of letting them finish
        self.closing = False  # no restarts once the batch is over
        self.requeued = 0
        # Set by the command: stop feeding rows (they stay for --resume) once every worker is down.
        self.stop_batch: Callable[[str], None] | None = None
        self.last_cause: str | None = None
        self._seq = 0
        self._restarting: set[Any] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._change = asyncio.Event()

    async def run(self, row: InputRow) -> dict[str, Any]:
        """Run `row` on a worker with room; once more elsewhere if that worker dies."""
        deaths = 0
        try:
            while True:
                worker = await self._worker()
                if worker is None:
                    reason = f"every worker is down ({self.last_cause})"
                    if self.stop_batch is not None:
                        self.stop_batch(reason)
                    return self._result(row, f"not run: {reason}")
                self._seq += 1
                log.debug("row %s -> worker %s (pid %s)", row.id, worker.stats.name, worker.stats.pid)
                try:
                    return await self._run_on(worker, self._seq, row)
                except Gone as gone:
                    deaths += 1
                    if deaths > 1:
                        return self._result(row, f"{gone.cause}; this row's worker died twice, so it was not run again")
                    self.requeued += 1
                finally:
                    self.changed()
        except asyncio.CancelledError:
            self.cancelled = True
            return self._result(row, "the batch was interrupted while this row ran", "cancelled")
        except Exception as exc:  # noqa: BLE001 - one row's failure never ends the batch
            return self._result(row, f"{type(exc).__name__}: {exc}")

    async def _start_all(self, starting: list[Awaitable[None]]) -> None:
        """Start workers at once; the first that cannot start stops the command."""
        try:
            results = await asyncio.gather(*starting, return_exceptions=True)
        except asyncio.CancelledError:
            self.cancelled = True  # Ctrl-C while starting: close stops them at once
            raise
        for result in results:
            if isinstance(result, BaseException):
                raise result
        self.ready = self.workers[0].ready

    async def _worker(self) -> Any:
        """A live worker with room, waiting while workers restart; None when every worker is down for good."""
        while True:
            live = [w for w in self.workers if w.free > 0]
            if live:
                return max(live, key=lambda w: w.free)
            if not any(w.gone is None or w in self._restarting for w in self.workers):
                return None
            self._change.clear()
            await self._change.wait()

    def changed(self) -> None:
        """A slot freed or a worker came back (or went away): waiting rows look again."""
        self._change.set()

    def down(self, worker: Worker, cause: str) -> None:
        """Mark `worker` dead and start replacing it (unless the batch is over or it died too often)."""
        worker.gone = self.last_cause = cause
        if self.closing or worker.stats.restarts >= RESTARTS or worker in self._restarting:
            return
        self._restarting.add(worker)

        async def again() -> None:
            try:
                while worker.stats.restarts < RESTARTS:
                    worker.stats.restarts += 1
                    try:
                        await self._replace(worker)
                        return
                    except AgentdeckError as exc:  # it died again while starting
                        worker.gone = self.last_cause = exc.message
            finally:
                self._restarting.discard(worker)
                self.changed()

        task = asyncio.create_task(again())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _settle(self) -> None:
        """Stop replacing workers: the batch is over (a half-started one is stopped with the rest)."""
        self.closing = True
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    def stats(self) -> list[WorkerStats]:
        """Every worker's numbers, for the summary."""
        return [w.stats for w in self.workers]

    def alive(self) -> int:
        """How many workers are up, for the progress line."""
        return sum(1 for w in self.workers if w.gone is None)

    def _result(self, row: InputRow, error: str, status: str = "error") -> dict[str, Any]:
        """The result of a row no worker answered for (shaped as the worker's runner shapes it)."""
        agents = self.ready.get("agents", {})
        result = base_row(row, agents.get(getattr(row, "variant", ""), ""))
        result.update(status=status, error=error)
        if isinstance(self.job, ExperimentJob):
            from app.experiment.runner import ExperimentRow, tag

            assert isinstance(row, ExperimentRow)
            return tag(row, result, None)
        return result

    async def _run_on(self, worker: Any, seq: int, row: InputRow) -> dict[str, Any]:
        """Run `row` on `worker`; Gone when the worker dies first."""
        raise NotImplementedError

    async def _replace(self, worker: Any) -> None:
        """Start `worker` afresh; AgentdeckError when it cannot start."""
        raise NotImplementedError
