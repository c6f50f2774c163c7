"""The `batch:` section of agents.yaml: which executor runs batch and experiment rows, and how wide."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from app.config.models_base import Strict

Executor = Literal["local", "processes", "ray"]


class RaySettings(Strict):
    """Where Ray actors run: an existing cluster (`address`) or a local one agentdeck starts and stops."""

    address: str | None = Field(default=None, min_length=1)
    num_cpus: int | None = Field(default=None, ge=1, le=4096)  # for the local cluster agentdeck starts
    runtime_env: dict[str, Any] | None = None


class BatchSettings(Strict):
    """How `batch` and `experiment` run their rows (command-line flags win)."""

    executor: Executor = "local"
    # processes / ray: how many workers (default: the number of cores).
    workers: int | None = Field(default=None, ge=1, le=256)
    # local: rows at once in total; processes / ray: rows at once in each worker.
    concurrency: int | None = Field(default=None, ge=1, le=1024)
    ray: RaySettings = Field(default_factory=RaySettings)
