"""The Ray actor that runs rows: the same job and row runner as a worker process, inside Ray."""

from __future__ import annotations

import gc
import os
import socket
import time
from contextlib import AsyncExitStack
from typing import Any


class RowActor:
    """Opens the job once (its own MCP connections and tool caches), then runs rows until closed."""

    def __init__(self) -> None:
        self.stack = AsyncExitStack()
        self.opened: Any = None

    async def open(self, job_json: str, cwd: str) -> dict[str, Any]:
        """Open the job's decks; what the driver needs to know, or `fatal` with the reason."""
        from app.errors import AgentdeckError
        from app.executors.jobs import JOB, open_job
        from app.executors.pool import fatal_report, ready_report

        if os.path.isdir(cwd):
            os.chdir(cwd)  # a local cluster: relative paths mean what they meant to the driver
        try:
            self.opened = await open_job(self.stack, JOB.validate_json(job_json))
        except AgentdeckError as exc:
            return fatal_report(exc)
        gc.freeze()  # as the driver does: what is loaded now lives as long as the actor
        return {**ready_report(self.opened), "host": socket.gethostname()}

    async def run(self, row: dict[str, Any]) -> dict[str, Any]:
        """One row's result, with this actor's CPU time so far."""
        from app.executors.jobs import row_from_wire

        result = await self.opened.runner.run(row_from_wire(row))
        return {"result": result, "cpu": time.process_time()}

    async def close(self) -> dict[str, Any]:
        """Close the decks (and with them the MCP servers)."""
        from app.executors.pool import bye_report

        fetches = self.opened.fetches() if self.opened is not None else {}
        await self.stack.aclose()
        return bye_report(fetches)
