"""Helpers shared by the subcommands: loading the config, consoles, running coroutines."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import warnings
from collections.abc import Coroutine
from typing import Any, TypeVar

from rich.console import Console

from app.config import LoadedConfig, find_config_path, load_config
from app.debug import debug_enabled

T = TypeVar("T")


def load(config: str | None) -> LoadedConfig:
    """Load the config named by --config, $AGENTDECK_CONFIG or ./agents.yaml."""
    return load_config(find_config_path(config))


def stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def status_console(wanted: bool = True) -> Console | None:
    """Standard error when it is a terminal (for the start-up line), else None."""
    console = stderr()
    return console if wanted and console.is_terminal else None


_LIBRARY_LOGGERS = ("agentdeck", "openai.agents", "openai", "mcp", "httpx", "httpx2")


class _RedactingFormatter(logging.Formatter):
    """Debug logs carry URLs, headers and arguments: they pass through the one redaction function."""

    def format(self, record: logging.LogRecord) -> str:
        from app.config.redact import redact, secret_values

        return str(redact(super().format(record), secret_values({}, os.environ)))


def quiet_sdk_logs() -> None:
    """Library logs stay at WARNING; AGENTDECK_DEBUG=1 shows their debug logs on stderr, secrets masked."""
    debug = debug_enabled()
    level = logging.DEBUG if debug else logging.WARNING
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        # Without a handler Python prints warnings anyway ("[non-fatal] Tracing request failed",
        # "Error streaming response"); agentdeck shows failures itself, so libraries stay silent.
        logger.propagate = debug or name == "agentdeck"
        if not logger.propagate and not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())  # or Python's last-resort handler prints them
    if not debug:
        # A turn cancelled by Ctrl-C leaves an SDK coroutine unawaited; its warning is noise to a user.
        warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
        return
    root = logging.getLogger()
    if not any(getattr(h, "_agentdeck", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._agentdeck = True  # type: ignore[attr-defined]
        root.addHandler(handler)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run with quiet library logs; Ctrl-C cancels the work, cleans up, then raises KeyboardInterrupt."""
    quiet_sdk_logs()
    interrupts = 0

    async def guarded() -> T:
        # asyncio.run turns Ctrl-C into a cancellation of this task, but reports KeyboardInterrupt only
        # when that cancellation escapes; a library that absorbs it (a cancelled tool call reported to
        # the model as a failure) would make an interrupted run end as a success. Count the signal.
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def on_sigint() -> None:
            nonlocal interrupts
            interrupts += 1
            if interrupts > 1:
                raise KeyboardInterrupt  # a second Ctrl-C stops waiting for cleanup
            if task is not None:
                task.cancel()

        try:
            loop.add_signal_handler(signal.SIGINT, on_sigint)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals
            return await coro
        try:
            return await coro
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    try:
        result = asyncio.run(guarded())
    except asyncio.CancelledError:
        if interrupts:
            raise KeyboardInterrupt from None
        raise
    if interrupts:
        raise KeyboardInterrupt
    return result
