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
        from app.executors.children import descendants
        from app.executors.jobs import JOB, open_job

        if os.path.isdir(cwd):
            os.chdir(cwd)  # a local cluster: relative paths mean what they meant to the driver
        try:
            self.opened = await open_job(self.stack, JOB.validate_json(job_json))
        except AgentdeckError as exc:
            return {"fatal": exc.message, "hint": exc.hint, "code": exc.exit_code}
        gc.freeze()  # as the driver does: what is loaded now lives as long as the actor
        pid = os.getpid()
        return {"pid": pid, "host": socket.gethostname(), "children": descendants(pid), "warnings": self.opened.warnings,
                "model": self.opened.model, "offline": self.opened.offline, "agents": self.opened.agents}  # fmt: skip

    async def run(self, row: dict[str, Any]) -> dict[str, Any]:
        """One row's result, with this actor's CPU time so far."""
        from app.executors.jobs import row_from_wire

        result = await self.opened.runner.run(row_from_wire(row))
        return {"result": result, "cpu": time.process_time()}

    async def close(self) -> dict[str, Any]:
        """Close the decks (and with them the MCP servers)."""
        from app.executors.pool import peak_rss_mb

        fetches = self.opened.fetches() if self.opened is not None else {}
        await self.stack.aclose()
        return {"fetches": fetches, "cpu": time.process_time(), "rss_mb": peak_rss_mb()}
