"""Reload the gateway's config on SIGHUP or when its files change, without dropping connected clients."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


async def watch(gateway: Any, paths: list[Path], interval: float = 1.0) -> None:
    """Until cancelled: reload when SIGHUP arrives or a file in `paths` changes; say what happened on stderr."""
    loop = asyncio.get_running_loop()
    hup = asyncio.Event()
    with contextlib.suppress(NotImplementedError, AttributeError, RuntimeError):  # no SIGHUP on Windows
        loop.add_signal_handler(signal.SIGHUP, hup.set)
    stamps = {p: _stamp(p) for p in paths}
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hup.wait(), interval)
            now = {p: _stamp(p) for p in paths}
            if not hup.is_set() and now == stamps:
                continue
            hup.clear()
            stamps = now
            print(f"gateway: {await gateway.reload()}", file=sys.stderr, flush=True)
    finally:
        with contextlib.suppress(NotImplementedError, AttributeError, RuntimeError):
            loop.remove_signal_handler(signal.SIGHUP)
