"""Where agentdeck keeps what outlives a command (chat sessions, OAuth logins, gateway tokens), and how."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any


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


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` with `data` atomically, readable by its owner only (folder 0700, file 0600)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
