"""The `processes` executor: N worker processes, each with its own decks, fed rows by the driver.

Each worker runs up to `concurrency` rows at once and is sent a row only when it has room, so
memory stays flat however long the input. A worker that dies has its rows in flight run again
once elsewhere (a second death is that row's error), its MCP servers are stopped, and it is
started again; the batch goes on with the others meanwhile.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from app.batch.inputs import InputRow
from app.errors import AgentdeckError
from app.executors import children
from app.executors.jobs import BatchJob, ExperimentJob, row_to_wire
from app.executors.pool import STARTUP_TIMEOUT, Gone, Pool, WorkerStats, worker_error

LINE_LIMIT = 64 * 1024 * 1024  # one result line; a longer one is a broken worker


class RowFailed(Exception):
    """The worker could not produce this row's result (a bug there, not a death)."""


class WorkerProcess:
    """One worker process and the rows it is running."""

    def __init__(
        self, index: int, job: BatchJob | ExperimentJob, concurrency: int, on_death: Callable[[Any, str], None]
    ) -> None:
        self.job = job
        self.concurrency = concurrency
        self.on_death = on_death  # called with this worker and the cause when it dies unasked
        self.stats = WorkerStats(f"w{index + 1}")
        self.proc: asyncio.subprocess.Process | None = None
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.children: list[children.Child] = []
        self.ready: dict[str, Any] = {}
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self.gone: str | None = "not started"
        self.bye: dict[str, Any] = {}
        self.stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._cpu_before = 0.0  # CPU of earlier lives of this worker

    @property
    def free(self) -> int:
        """Rows it can take now."""
        return 0 if self.gone else self.concurrency - len(self.pending)

    async def start(self) -> None:
        """Start the process and wait until its decks are open; AgentdeckError when it cannot."""
        name = f"worker {self.stats.name}"
        # -P: the directory the batch runs in may hold a package of its own named `app`.
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-P", "-m", "app.executors.worker", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "AGENTDECK_DRIVER_PID": str(os.getpid())},
                start_new_session=True,  # Ctrl-C reaches the driver only; it decides what stops
                limit=LINE_LIMIT,
            )  # fmt: skip
        except OSError as exc:
            raise AgentdeckError(f"{name} could not start: {exc.strerror or exc}") from None
        self.proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(self.job.model_dump_json().encode() + b"\n")
        self._tasks = [asyncio.create_task(self._read_stderr(proc))]
        try:
            first = await asyncio.wait_for(proc.stdout.readline(), STARTUP_TIMEOUT)
            message = json.loads(first) if first.strip() else {}
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise AgentdeckError(
                f"{name} did not get ready within {STARTUP_TIMEOUT:g} s: {self._cause(proc)}"
            ) from None
        except ValueError:
            message = {}
        if not isinstance(message, dict) or "ready" not in message:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            await asyncio.sleep(0.05)  # let the last of standard error be read
            if isinstance(message, dict) and "fatal" in message:
                raise worker_error(name, message)
            raise AgentdeckError(f"{name} could not start: {self._cause(proc)}")
        self.ready = message["ready"]
        self.children = children.reported(self.ready)
        self.stats.pid = proc.pid
        self.gone = None
        self._tasks.append(asyncio.create_task(self._read_results(proc)))

    async def run(self, seq: int, row: InputRow) -> dict[str, Any]:
        """Run `row` here; Gone when this worker dies first."""
        assert self.proc is not None and self.proc.stdin is not None
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[seq] = future
        try:
            self.proc.stdin.write(json.dumps({"seq": seq, "row": row_to_wire(row)}).encode() + b"\n")
            message = await future
        finally:
            self.pending.pop(seq, None)
        if "error" in message:
            raise RowFailed(message["error"])
        return message["result"]  # type: ignore[no-any-return]

    async def _read_results(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while line := await proc.stdout.readline():
                try:
                    self._take(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by the worker's death; its row is failed below
        except ValueError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()  # a line past the limit: this worker cannot be read any more
        finally:
            await proc.wait()
            self._died(self._cause(proc))

    def _take(self, message: dict[str, Any]) -> None:
        if "bye" in message:
            self.bye = message["bye"]
            self.stats.closed(self.bye, self._cpu_before)
            return
        self.stats.rows += 1
        self.stats.cpu_s = self._cpu_before + message.get("cpu", 0.0)
        future = self.pending.get(message["seq"])
        if future is not None and not future.done():
            future.set_result(message)

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        with contextlib.suppress(ValueError):
            while line := await proc.stderr.readline():
                self.stderr_tail.append(line.decode(errors="replace").rstrip())

    def _cause(self, proc: asyncio.subprocess.Process) -> str:
        """How the worker ended, with the last line it wrote to standard error (secrets masked)."""
        from app.config.redact import redact, secret_values

        code = proc.returncode
        if code is not None and code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        last = next((line for line in reversed(self.stderr_tail) if line.strip()), None)
        text = f"worker {self.stats.name} (pid {proc.pid}) {how}" + (f": {last}" if last else "")
        return str(redact(text, secret_values({}, os.environ)))

    def _died(self, cause: str) -> None:
        self._cpu_before = self.stats.cpu_s
        children.kill(self.children)  # its MCP servers would otherwise outlive it
        for future in self.pending.values():
            if not future.done():
                future.set_exception(Gone(cause))
        if self.stopping:
            self.gone = cause
        else:
            self.on_death(self, cause)

    async def stop(self, now: bool) -> None:
        """Finish (end of input) or, when `now`, cancel what runs; then make sure nothing is left."""
        proc = self.proc
        if proc is None:
            return
        self.stopping = True
        if proc.returncode is None:
            if now:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
            elif proc.stdin is not None:
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        _, late = await asyncio.wait(self._tasks, timeout=2) if self._tasks else (set(), set())
        for task in late:
            task.cancel()
        children.kill(self.children)


class ProcessPool(Pool):
    """Worker processes behind the engine's row-runner interface."""

    def __init__(self, job: BatchJob | ExperimentJob, workers: int, concurrency: int) -> None:
        super().__init__(job)
        self.processes = [WorkerProcess(i, job, concurrency, self.down) for i in range(workers)]
        self.workers = self.processes

    async def start(self) -> None:
        """Start every worker at once; the first that cannot start stops the command."""
        await self._start_all([w.start() for w in self.processes])

    def fetches(self) -> dict[str, int]:
        """tools/list requests per server, summed over the workers (known once they have closed)."""
        total: dict[str, int] = {}
        for worker in self.processes:
            for name, count in worker.bye.get("fetches", {}).items():
                total[name] = total.get(name, 0) + count
        return total

    async def _run_on(self, worker: Any, seq: int, row: InputRow) -> dict[str, Any]:
        return await worker.run(seq, row)  # type: ignore[no-any-return]

    async def _replace(self, worker: Any) -> None:
        await worker.stop(now=True)
        worker.stopping = False
        await worker.start()

    async def close(self) -> None:
        """Let the workers finish (or stop them at once after Ctrl-C) and leave nothing running."""
        await self._settle()
        await asyncio.gather(*(w.stop(self.cancelled) for w in self.processes))
