"""The `ray` executor: async Ray actors, each holding its own MCP connections, fed rows by the driver.

Without `ray.address` agentdeck starts a local cluster (no dashboard) and stops it at the end.
A lost actor is replaced and its rows in flight run once more elsewhere, as with worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

from app.batch.inputs import InputRow
from app.config.execution import RaySettings
from app.errors import RunError
from app.executors import children
from app.executors.jobs import BatchJob, ExperimentJob, row_to_wire
from app.executors.pool import STARTUP_TIMEOUT, Gone, Pool, WorkerStats, worker_error


class Actor:
    """One actor and what the driver knows of it."""

    def __init__(self, index: int, concurrency: int) -> None:
        self.stats = WorkerStats(f"a{index + 1}")
        self.concurrency = concurrency
        self.handle: Any = None
        self.ready: dict[str, Any] = {}
        self.running = 0
        self.gone: str | None = "not started"
        self.cpu_before = 0.0

    @property
    def free(self) -> int:
        """Rows it can take now."""
        return 0 if self.gone else self.concurrency - self.running

    def local_children(self) -> list[children.Child]:
        """Its MCP servers' pids when it runs on this machine (elsewhere they cannot be reached from here)."""
        if self.ready.get("host") != socket.gethostname():
            return []
        return children.reported(self.ready)


class RayPool(Pool):
    """Ray actors behind the engine's row-runner interface."""

    def __init__(
        self, job: BatchJob | ExperimentJob, workers: int | None, concurrency: int, settings: RaySettings
    ) -> None:
        super().__init__(job)
        self.wanted = workers  # None: one actor per CPU of the cluster
        self.concurrency = concurrency
        self.settings = settings
        self.actors: list[Actor] = []
        self.ray: Any = None
        self.actor_class: Any = None
        self.started_cluster = False
        self._fetches: dict[str, int] = {}  # tools/list requests per server, summed when the actors close

    async def start(self) -> None:
        """Join or start the cluster, then open the job on every actor."""
        import ray  # make_plan has checked that it is installed

        self.ray = ray
        try:
            await asyncio.to_thread(self._init)
            cpus = int(self.ray.cluster_resources().get("CPU", 0))
            count = self.wanted or cpus
            if not 1 <= count <= cpus:
                raise RunError(
                    f"the Ray cluster has {cpus} CPUs for {count} actors (each takes one)",
                    hint="lower --workers (or batch.workers), or give the cluster more CPUs (batch.ray.num_cpus)",
                )
            self.actors = [Actor(i, self.concurrency) for i in range(count)]
            self.workers = self.actors
            from app.executors.ray_worker import RowActor

            self.actor_class = self.ray.remote(num_cpus=1, max_concurrency=self.concurrency + 4)(RowActor)
        except asyncio.CancelledError:
            self.cancelled = True  # Ctrl-C while starting: close stops everything at once
            raise
        await self._start_all([self._open(a) for a in self.actors])

    def _init(self) -> None:
        ray, settings = self.ray, self.settings
        common: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
        if settings.runtime_env is not None:
            common["runtime_env"] = settings.runtime_env
        try:
            if settings.address is not None:
                _probe(settings.address)
                ray.init(address=settings.address, **common)
            else:
                self.started_cluster = True
                cpus = settings.num_cpus or os.cpu_count() or 1
                ray.init(address="local", num_cpus=cpus, include_dashboard=False, **common)
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
            where = settings.address or "a local cluster"
            raise RunError(
                f"cannot reach the Ray cluster at {where}: {_first_line(exc)}",
                hint="check batch.ray.address (ray status shows the head's address), or remove it to start one here",
            ) from None

    async def _open(self, actor: Actor) -> None:
        ray = self.ray
        actor.handle = self.actor_class.remote()
        # A local cluster's actors work where the driver works; a remote one's use runtime_env.
        cwd = os.getcwd() if self.started_cluster else ""
        try:
            ready = await asyncio.wait_for(actor.handle.open.remote(self.job.model_dump_json(), cwd), STARTUP_TIMEOUT)
        except TimeoutError:
            raise RunError(f"Ray actor {actor.stats.name} did not get ready within {STARTUP_TIMEOUT:g} s") from None
        except ray.exceptions.RayError as exc:
            raise RunError(f"Ray actor {actor.stats.name} could not start: {_first_line(exc)}") from None
        if "fatal" in ready:
            raise worker_error(f"Ray actor {actor.stats.name}", ready)
        actor.ready = ready
        actor.stats.pid = ready.get("pid")
        actor.gone = None

    def fetches(self) -> dict[str, int]:
        """tools/list requests per server, summed over the actors (known once they have closed)."""
        return dict(self._fetches)

    async def _run_on(self, worker: Any, seq: int, row: InputRow) -> dict[str, Any]:
        actor: Actor = worker
        handle = actor.handle
        ref = handle.run.remote(row_to_wire(row))
        actor.running += 1
        try:
            answer = await ref
        except self.ray.exceptions.RayActorError as exc:
            cause = f"Ray actor {actor.stats.name} (pid {actor.stats.pid}) was lost: {_first_line(exc)}"
            if actor.handle is handle and actor.gone is None:  # not a late report about a replaced actor
                actor.cpu_before = actor.stats.cpu_s
                children.kill(actor.local_children())
                self.down(actor, cause)
            raise Gone(cause) from None
        except self.ray.exceptions.RayError as exc:
            raise RuntimeError(_first_line(exc)) from None
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                self.ray.cancel(ref)
            raise
        finally:
            actor.running -= 1
        actor.stats.rows += 1
        actor.stats.cpu_s = actor.cpu_before + answer["cpu"]
        return answer["result"]  # type: ignore[no-any-return]

    async def _replace(self, worker: Any) -> None:
        await self._open(worker)

    async def close(self) -> None:
        """Close every actor (briefly when interrupted), then leave or stop the cluster."""
        if self.ray is None or not self.ray.is_initialized():
            return
        await self._settle()
        live = [a for a in self.actors if a.handle is not None and a.gone is None]
        # Interrupted: the rows still running were recorded as cancelled; closing the decks ends them.
        answers = await asyncio.gather(
            *(self._bye(a, 5 if self.cancelled else 30) for a in live), return_exceptions=True
        )
        for answer in answers:
            for name, count in (answer if isinstance(answer, dict) else {}).get("fetches", {}).items():
                self._fetches[name] = self._fetches.get(name, 0) + count
        for actor in self.actors:
            if actor.handle is not None:
                with contextlib.suppress(Exception):
                    self.ray.kill(actor.handle)
            children.kill(actor.local_children())
        await asyncio.to_thread(self.ray.shutdown)

    async def _bye(self, actor: Actor, timeout: float) -> dict[str, Any]:
        answer: dict[str, Any] = await asyncio.wait_for(actor.handle.close.remote(), timeout)
        actor.stats.closed(answer, actor.cpu_before)
        return answer


def _probe(address: str) -> None:
    """Fail at once when a cluster address does not answer (Ray itself retries for minutes)."""
    from urllib.parse import urlsplit

    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ConnectionError(f"{address!r} is not host:port (or ray://host:port, or auto)")
    try:
        socket.create_connection((parts.hostname, port), timeout=5).close()
    except OSError as exc:
        raise ConnectionError(exc.strerror or str(exc)) from None


def _first_line(exc: BaseException) -> str:
    """The cause of a Ray error in one line (a task error's own first line only names the task)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
