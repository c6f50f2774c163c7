"""The base of every config model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, numbers are finite (no .inf or .nan)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
