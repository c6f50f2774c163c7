"""AGENTDECK_DEBUG: the user asked to see what agentdeck normally keeps quiet (library logs, teardown warnings).

Kept apart so that the CLI's entry point can ask without importing anything heavy.
"""

from __future__ import annotations

import os


def debug_enabled() -> bool:
    """AGENTDECK_DEBUG is set to something other than off."""
    return os.environ.get("AGENTDECK_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")
