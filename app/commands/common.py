"""Helpers shared by the subcommands: loading the config, consoles, running coroutines."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from rich.console import Console

from app.config import LoadedConfig, find_config_path, load_config

T = TypeVar("T")


def load(config: str | None) -> LoadedConfig:
    """Load the config named by --config, $AGENTDECK_CONFIG or ./agents.yaml."""
    return load_config(find_config_path(config))


def stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


_LIBRARY_LOGGERS = ("agentdeck", "openai.agents", "openai", "mcp", "httpx", "httpx2")


class _RedactingFormatter(logging.Formatter):
    """Debug logs carry URLs, headers and arguments: they pass through the one redaction function."""

    def format(self, record: logging.LogRecord) -> str:
        from app.config.redact import redact, secret_values

        return str(redact(super().format(record), secret_values({}, os.environ)))


def quiet_sdk_logs() -> None:
    """Library logs stay at WARNING; AGENTDECK_DEBUG=1 shows their debug logs on stderr, secrets masked."""
    debug = os.environ.get("AGENTDECK_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")
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
        return
    root = logging.getLogger()
    if not any(getattr(h, "_agentdeck", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._agentdeck = True  # type: ignore[attr-defined]
        root.addHandler(handler)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run with quiet library logs; KeyboardInterrupt propagates after cleanup."""
    quiet_sdk_logs()
    return asyncio.run(coro)
