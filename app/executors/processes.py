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
import time
from pathlib import Path
from typing import Any

from app.batch.inputs import InputRow
from app.errors import AgentdeckError
from app.executors import children
from app.executors.jobs import BatchJob, ExperimentJob, row_to_wire
from app.executors.pool import Gone, Pool, WorkerStats, worker_error

RESTARTS = 3  # per worker: past this a worker that keeps dying stays down


class WorkerProcess:
    """One worker process and the rows it is running."""

    def __init__(self, index: int, job: BatchJob | ExperimentJob, concurrency: int, on_death: Any = None) -> None:
        self.index = index
        self.on_death = on_death  # called with this worker when it dies unasked
        self.job = job
        self.concurrency = concurrency
        self.stats = WorkerStats(f"w{index + 1}")
        self.proc: asyncio.subprocess.Process | None = None
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.children: list[children.Child] = []
        self.ready: dict[str, Any] = {}
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self.gone: str | None = "not started"
        self.bye: dict[str, Any] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._cpu_before = 0.0  # CPU of earlier lives of this worker
        self.stopping = False

    @property
    def free(self) -> int:
        return 0 if self.gone else self.concurrency - len(self.pending)

    async def start(self) -> None:
        """Start the process and wait until its decks are open; AgentdeckError when it cannot."""
        import app

        root = str(Path(app.__file__).resolve().parent.parent)
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path, "AGENTDECK_DRIVER_PID": str(os.getpid())}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.executors.worker", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
            start_new_session=True,  # Ctrl-C reaches the driver only; it decides what stops
            limit=64 * 1024 * 1024,
        )  # fmt: skip
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(self.job.model_dump_json().encode() + b"\n")
        self._tasks = [asyncio.create_task(self._read_stderr())]
        first = await self.proc.stdout.readline()
        message = json.loads(first) if first.strip() else {}
        if "ready" not in message:
            await self.proc.wait()
            await asyncio.sleep(0)  # let the last of standard error be read
            if "fatal" in message:
                raise worker_error(f"worker {self.stats.name}", message)
            raise AgentdeckError(f"worker {self.stats.name} could not start: {self._cause()}")
        self.ready = message["ready"]
        self.children = [tuple(c) for c in self.ready.get("children", [])]  # type: ignore[misc]
        self.stats.pid = self.proc.pid
        self.stats.started = time.perf_counter()
        self.gone = None
        self._tasks.append(asyncio.create_task(self._read_results()))

    async def run(self, seq: int, row: InputRow) -> dict[str, Any]:
        """Run `row` here; Gone when this worker dies first."""
        assert self.proc is not None and self.proc.stdin is not None
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[seq] = future
        try:
            self.proc.stdin.write(json.dumps({"seq": seq, "row": row_to_wire(row)}).encode() + b"\n")
            return await future
        finally:
            self.pending.pop(seq, None)

    async def _read_results(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            message = json.loads(line)
            if "bye" in message:
                self.bye = message["bye"]
                self.stats.cpu_s = self._cpu_before + message["bye"]["cpu"]
                self.stats.peak_rss_mb = message["bye"].get("rss_mb")
                continue
            self.stats.rows += 1
            self.stats.cpu_s = self._cpu_before + message["cpu"]
            future = self.pending.get(message["seq"])
            if future is not None and not future.done():
                future.set_result(message["result"])
        await self.proc.wait()
        self._died(self._cause())

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.stderr_tail.append(line.decode(errors="replace").rstrip())

    def _cause(self) -> str:
        assert self.proc is not None
        code = self.proc.returncode
        if code is not None and code < 0:
            how = f"was killed by {signal.Signals(-code).name}"
        else:
            how = f"exited with code {code}"
        last = next((line for line in reversed(self.stderr_tail) if line.strip()), None)
        return f"worker {self.stats.name} (pid {self.proc.pid}) {how}" + (f": {last}" if last else "")

    def _died(self, cause: str) -> None:
        self.gone = cause
        self._cpu_before = self.stats.cpu_s
        children.kill(self.children)  # its MCP servers would otherwise outlive it
        for future in self.pending.values():
            if not future.done():
                future.set_exception(Gone(cause))
        if not self.stopping and self.on_death is not None:
            self.on_death(self)

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
        await asyncio.gather(*self._tasks, return_exceptions=True)
        children.kill(self.children)


class ProcessPool(Pool):
    """Worker processes behind the engine's row-runner interface."""

    def __init__(self, job: BatchJob | ExperimentJob, workers: int, concurrency: int) -> None:
        super().__init__(job)
        self.workers = [WorkerProcess(i, job, concurrency, self._restart_soon) for i in range(workers)]

    async def start(self) -> None:
        """Start every worker at once; the first that cannot start stops the command."""
        results = await asyncio.gather(*(w.start() for w in self.workers), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                await self.close()
                raise result
        self.ready = self.workers[0].ready

    def stats(self) -> list[WorkerStats]:
        return [w.stats for w in self.workers]

    def fetches(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for worker in self.workers:
            for name, count in worker.bye.get("fetches", {}).items():
                total[name] = total.get(name, 0) + count
        return total

    def _pick(self) -> WorkerProcess | None:
        live = [w for w in self.workers if w.free > 0]
        return max(live, key=lambda w: w.free) if live else None

    def _all_down(self) -> str | None:
        if any(w.gone is None or w in self._restarting for w in self.workers):
            return None
        return self.workers[-1].gone

    async def _run_on(self, worker: Any, seq: int, row: InputRow) -> dict[str, Any]:
        return await worker.run(seq, row)  # type: ignore[no-any-return]

    def _restart_soon(self, worker: WorkerProcess) -> None:
        if self.closing or worker.stats.restarts >= RESTARTS or worker in self._restarting:
            return
        self._restarting.add(worker)

        async def again() -> None:
            try:
                while worker.stats.restarts < RESTARTS:
                    await worker.stop(now=True)
                    worker.stats.restarts += 1
                    worker.stopping = False
                    try:
                        await worker.start()
                        return
                    except AgentdeckError as exc:  # it died again while starting
                        worker.gone = exc.message
            finally:
                self._restarting.discard(worker)
                self.changed()

        self._spawn(again())

    def alive(self) -> int:
        return sum(1 for w in self.workers if w.gone is None)

    async def close(self) -> None:
        await self._settle()
        await asyncio.gather(*(w.stop(self.cancelled) for w in self.workers))
