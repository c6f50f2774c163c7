"""A batch worker process: it opens the job, runs the rows the driver sends, and streams results back.

Run by the `processes` executor as `python -m app.executors.worker`. JSON lines both ways:
- in: the job, then `{"seq": N, "row": {...}}` per row; the end of input means finish.
- out: `{"ready": {...}}` once the decks are open (or `{"fatal": ..., "hint": ..., "code": N}`), then
  `{"seq": N, "result": {...}, "cpu": seconds}` (or `"error": text`) per row, and `{"bye": {...}}` last.
Standard output carries nothing else (anything printed goes to standard error). SIGTERM cancels the
rows in flight and closes the MCP connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import sys
import time
from contextlib import AsyncExitStack
from typing import Any


def _writer(fd: int) -> Any:
    def send(message: dict[str, Any]) -> None:
        data = (json.dumps(message, ensure_ascii=False, default=str) + "\n").encode()
        try:
            while data:  # a pipe may take part of a long line
                data = data[os.write(fd, data) :]
        except BrokenPipeError:
            pass  # the driver is gone; SIGTERM (its death signal) ends this worker

    return send


async def serve(send: Any) -> None:
    """Open the job named on the first input line and run rows until the input ends."""
    from app.errors import AgentdeckError
    from app.executors.jobs import JOB, open_job, row_from_wire
    from app.executors.pool import bye_report, fatal_report, ready_report

    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    main = asyncio.current_task()
    assert main is not None

    def terminate() -> None:
        for task in tasks:
            task.cancel()
        main.cancel()  # the decks close on the way out, and with them the MCP servers

    loop.add_signal_handler(signal.SIGTERM, terminate)
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        job = JOB.validate_json(await reader.readline())
        async with AsyncExitStack() as stack:
            opened = await open_job(stack, job)
            gc.freeze()  # as the driver does: what is loaded now lives as long as the worker
            send({"ready": ready_report(opened)})

            async def run(seq: int, row: Any) -> None:
                try:
                    result = await opened.runner.run(row)
                except Exception as exc:  # noqa: BLE001 - the driver records it as this row's error
                    send({"seq": seq, "error": f"{type(exc).__name__}: {exc}", "cpu": time.process_time()})
                    return
                send({"seq": seq, "result": result, "cpu": time.process_time()})

            while line := await reader.readline():
                message = json.loads(line)
                task = asyncio.create_task(run(message["seq"], row_from_wire(message["row"])))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks, return_exceptions=True)
            send({"bye": bye_report(opened.fetches())})
    except AgentdeckError as exc:
        send(fatal_report(exc))
    except asyncio.CancelledError:
        pass  # SIGTERM: the driver records the rows that were running


def _die_with_parent() -> None:
    """Ask Linux for SIGTERM when the driver dies (even by SIGKILL), so no worker outlives it."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != int(os.environ.pop("AGENTDECK_DRIVER_PID", os.getppid())):
        sys.exit(0)  # the driver died before we asked


def main() -> None:
    """Keep standard output for results, then serve."""
    _die_with_parent()
    results = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # The driver decides what Ctrl-C stops. A handler, not SIG_IGN, which the MCP servers would inherit.
    signal.signal(signal.SIGINT, lambda *_: None)
    asyncio.run(serve(_writer(results)))


if __name__ == "__main__":
    main()
