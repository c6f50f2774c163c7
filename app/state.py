"""Where agentdeck keeps what outlives a command: chat sessions, OAuth logins."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def state_dir(environ: dict[str, str] | None = None) -> Path:
    """$AGENTDECK_STATE_DIR, else the platform's per-user state folder for agentdeck."""
    env = os.environ if environ is None else environ
    if env.get("AGENTDECK_STATE_DIR"):
        return Path(env["AGENTDECK_STATE_DIR"])
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "agentdeck"
    if os.name == "nt":
        return Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local") / "agentdeck"
    return Path(env.get("XDG_STATE_HOME") or home / ".local" / "state") / "agentdeck"
