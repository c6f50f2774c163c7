"""The base of every config model."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

# The names of servers, agents, providers and gateway profiles (a profile's name is also a URL path).
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, numbers are finite (no .inf or .nan)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
