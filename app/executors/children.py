"""A worker's child processes (its stdio MCP servers), found through /proc and stopped when it dies.

MCP's stdio client starts each server in a session of its own, so a worker killed with SIGKILL
leaves them behind; the driver learns their pids when the worker is ready and ends their process
groups itself. A pid is only signalled while its start time still matches, never a reused one.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

Child = tuple[int, int]  # (pid, start time in clock ticks since boot)


def _stat(pid: int) -> tuple[str, int] | None:
    """`pid`'s state letter and start time (fields 3 and 22 of /proc/PID/stat), or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = stat.rpartition(")")[2].split()
    return fields[0], int(fields[19])


def start_time(pid: int) -> int | None:
    """When `pid` started (field 22 of /proc/PID/stat), or None when it is gone."""
    stat = _stat(pid)
    return None if stat is None else stat[1]


def descendants(pid: int) -> list[Child]:
    """Every live descendant of `pid` with its start time (empty where /proc has no children files)."""
    found: list[Child] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                for text in (task / "children").read_text().split():
                    child = int(text)
                    started = start_time(child)
                    if started is not None:
                        found.append((child, started))
                        todo.append(child)
    return found


def alive(children: list[Child]) -> list[Child]:
    """Those of `children` that are still the same running processes (not zombies)."""
    found = []
    for pid, started in children:
        stat = _stat(pid)
        if stat is not None and stat[1] == started and stat[0] != "Z":
            found.append((pid, started))
    return found


def reported(ready: dict[str, Any]) -> list[Child]:
    """The children a worker listed in its ready report (JSON lists back into pairs)."""
    return [(int(pid), int(started)) for pid, started in ready.get("children", [])]


def kill(children: list[Child]) -> None:
    """SIGKILL each child still alive, with its process group when it leads one (npx and its node)."""
    for pid, _ in alive(children):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
