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


def quiet_sdk_logs() -> None:
    """SDK and MCP client logs stay at WARNING unless AGENTDECK_DEBUG is set."""
    level = logging.DEBUG if os.environ.get("AGENTDECK_DEBUG") else logging.WARNING
    for name in ("openai.agents", "mcp", "httpx", "httpx2", "openai"):
        logging.getLogger(name).setLevel(level)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run with quiet library logs; KeyboardInterrupt propagates after cleanup."""
    quiet_sdk_logs()
    return asyncio.run(coro)
