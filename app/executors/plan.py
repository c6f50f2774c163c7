"""Which executor runs the rows, resolved from flags and `batch:`, and opening it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from app.config.execution import BatchSettings, RaySettings
from app.errors import ConfigError, UsageError
from app.executors.jobs import BatchJob, ExperimentJob, Opened

DEFAULT_CONCURRENCY = 8
INSTALL_RAY = "pip install 'agentdeck[ray]'"


@dataclass
class Plan:
    """The executor chosen by flags over `batch:` in agents.yaml over the defaults."""

    executor: str = "local"
    workers: int | None = 1  # ray without a number: one actor per CPU of the cluster
    concurrency: int = DEFAULT_CONCURRENCY  # local: rows at once; otherwise rows at once per worker
    ray: RaySettings = field(default_factory=RaySettings)


def make_plan(
    settings: BatchSettings | None, executor: str | None, workers: int | None, concurrency: int | None
) -> Plan:
    """Resolve the executor settings; a flag that cannot apply is a usage error."""
    base = settings or BatchSettings()
    chosen = executor or base.executor
    if workers is not None and not 1 <= workers <= 256:
        raise UsageError("--workers must be between 1 and 256")
    if workers is not None and chosen == "local":
        raise UsageError("--workers needs --executor processes or ray (local runs every row in this process)")
    if chosen == "ray":
        try:  # before any results file is touched
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError("the ray executor needs Ray, which is not installed", hint=INSTALL_RAY) from None
    count = workers or base.workers
    if count is None and chosen == "processes":
        from app.startup import cores

        count = cores()
    width = concurrency or base.concurrency or DEFAULT_CONCURRENCY
    return Plan(chosen, 1 if chosen == "local" else count, width, base.ray)


@dataclass
class Running:
    """An executor ready for rows."""

    opened: Opened
    concurrency: int  # rows the engine keeps in flight
    alive: Callable[[], int] | None = None  # workers alive, for the progress bar
    pool: Any = None  # the worker pool (None for local)

    def worker_stats(self, wall_s: float) -> list[dict[str, Any]]:
        """Each worker's summary entry (none for local)."""
        return [] if self.pool is None else [w.as_dict(wall_s) for w in self.pool.stats()]

    def requeued(self) -> int:
        """Rows run again because their worker died."""
        return 0 if self.pool is None else int(self.pool.requeued)

    def fetches(self) -> dict[str, int]:
        """tools/list requests per server during the batch."""
        return dict(self.opened.fetches())


async def open_executor(
    stack: AsyncExitStack,
    plan: Plan,
    job: BatchJob | ExperimentJob,
    status_console: Any = None,
    loaded: Any = None,
    stop_batch: Callable[[str], None] | None = None,
) -> Running:
    """Open the job here, or start the workers that each open it; closed with `stack`.

    `stop_batch`: called when every worker is down for good, so the rest of the rows wait for --resume.
    """
    if plan.executor == "local":
        from app.executors.jobs import open_job

        return Running(await open_job(stack, job, status_console, loaded), plan.concurrency)
    pool: Any
    if plan.executor == "processes":
        from app.executors.processes import ProcessPool

        assert plan.workers is not None
        pool = ProcessPool(job, plan.workers, plan.concurrency)
    else:
        from app.executors.ray_actors import RayPool

        pool = RayPool(job, plan.workers, plan.concurrency, plan.ray)
    pool.stop_batch = stop_batch
    stack.push_async_callback(pool.close)
    await pool.start()
    ready = pool.ready
    opened = Opened(pool, ready.get("warnings", []), ready.get("model"), ready.get("offline"), pool.fetches)
    return Running(opened, len(pool.workers) * plan.concurrency, pool.alive, pool)
