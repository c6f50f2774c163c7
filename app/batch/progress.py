"""Batch progress on standard error: a rich bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

from app.batch.stats import BatchStats


def _rate_eta(done: int, total: int, elapsed: float) -> tuple[float, float | None]:
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (total - done) / rate if rate > 0 and total >= done else None
    return rate, eta


def plain_line(stats: BatchStats, total: int, elapsed: float, alive: int | None = None) -> str:
    """`progress: 120/200 rows · 3 errors · 12.0 rows/s · ETA 7 s` (and `· 2 workers` when there are workers)."""
    done = stats.finished
    rate, eta = _rate_eta(done, total, elapsed)
    eta_text = f"{eta:.0f} s" if eta is not None else "?"
    workers = "" if alive is None else f" · {alive} workers"
    return f"progress: {done}/{total} rows · {stats.errors} errors · {rate:.1f} rows/s · ETA {eta_text}{workers}"


class Progress:
    """Shows how far the batch is; `tick` after each row, `close` at the end."""

    def __init__(
        self, console: Console, stats: BatchStats, total: int, interval: float, alive: Callable[[], int] | None = None
    ) -> None:
        self.console = console
        self.alive = alive  # how many workers are up (processes and ray executors)
        self.stats = stats
        self.total = total
        self.interval = interval
        self.started = time.perf_counter()
        self.bar: Any = None
        self.task: Any = None
        self.ticker: asyncio.Task[None] | None = None
        if console.is_terminal and not console.is_dumb_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self.bar = Bar(
                TextColumn("[bold]batch"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.1f} rows/s"),
                TextColumn("[red]{task.fields[errors]} errors"),
                TextColumn("{task.fields[workers]}"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self.task = self.bar.add_task("batch", total=total, rate=0.0, errors=0, workers=self._workers())
            self.bar.start()
        else:
            self.ticker = asyncio.get_running_loop().create_task(self._print_every())

    async def _print_every(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            alive = None if self.alive is None else self.alive()
            self.console.print(
                plain_line(self.stats, self.total, time.perf_counter() - self.started, alive), markup=False
            )

    def _workers(self) -> str:
        return "" if self.alive is None else f"{self.alive()} workers"

    def tick(self) -> None:
        if self.bar is not None:
            done = self.stats.finished
            rate, _ = _rate_eta(done, self.total, time.perf_counter() - self.started)
            self.bar.update(self.task, completed=done, rate=rate, errors=self.stats.errors, workers=self._workers())

    async def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        if self.ticker is not None:
            self.ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.ticker
