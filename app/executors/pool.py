"""What every multi-worker executor shares: handing rows to workers with room, and running a row
again once when its worker dies under it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from app.batch.engine import base_row
from app.batch.inputs import InputRow
from app.errors import AgentdeckError
from app.executors.jobs import BatchJob, ExperimentJob

log = logging.getLogger("agentdeck.executors")


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
    started: float = 0.0
    peak_rss_mb: float | None = None  # the worker's peak memory, reported when it closes

    def as_dict(self, wall_s: float) -> dict[str, Any]:
        rate = self.rows / wall_s if wall_s > 0 else 0.0
        return {"name": self.name, "rows": self.rows, "rows_per_s": round(rate, 2), "cpu_s": round(self.cpu_s, 3),
                "restarts": self.restarts, "peak_rss_mb": self.peak_rss_mb}  # fmt: skip


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB (Linux reports KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def worker_error(name: str, report: dict[str, Any]) -> AgentdeckError:
    """The error a worker could not start with, as the command would have raised it itself."""
    error = AgentdeckError(f"{name}: {report['fatal']}", hint=report.get("hint"))
    error.exit_code = int(report.get("code", 1))
    return error


class Pool:
    """The engine's row runner for workers elsewhere; subclasses say how to reach and restart them."""

    def __init__(self, job: BatchJob | ExperimentJob) -> None:
        self.job = job
        self.ready: dict[str, Any] = {}  # the first worker's report: model, warnings, agents
        self.cancelled = False  # Ctrl-C: close stops the workers instead of letting them finish
        self.requeued = 0
        self.closing = False  # no restarts once the batch is over
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
                    return self._result(row, f"no worker is left to run it: {self._all_down()}")
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

    async def _worker(self) -> Any:
        """A live worker with room, waiting while workers restart; None when every worker is down for good."""
        while True:
            worker = self._pick()
            if worker is not None:
                return worker
            if self._all_down() is not None:
                return None
            self._change.clear()
            await self._change.wait()

    def changed(self) -> None:
        """A slot freed or a worker came back (or went away): waiting rows look again."""
        self._change.set()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _settle(self) -> None:
        """Stop restarting workers: the batch is over (a half-started one is stopped with the rest)."""
        self.closing = True
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    def _result(self, row: InputRow, error: str, status: str = "error") -> dict[str, Any]:
        """The result of a row no worker answered for (shaped as the worker's runner shapes it)."""
        agents = self.ready.get("agents", {})
        variant = getattr(row, "variant", "")
        result = base_row(row, agents.get(variant, ""))
        result.update(status=status, error=error)
        if isinstance(self.job, ExperimentJob):
            from app.experiment.runner import ExperimentRow, tag

            assert isinstance(row, ExperimentRow)
            return tag(row, result, None)
        return result

    # Subclasses: which worker has room, why all are down (None while any can still run rows), how to run.
    def _pick(self) -> Any:
        raise NotImplementedError

    def _all_down(self) -> str | None:
        raise NotImplementedError

    async def _run_on(self, worker: Any, seq: int, row: InputRow) -> dict[str, Any]:
        raise NotImplementedError
