"""Leaving a finished process quickly: exit handlers run and output is flushed, the teardown is skipped.

Unloading the `mcp` or Agents SDK modules at interpreter exit takes a fifth to a third of a second,
paid by every CLI command and, for a stdio server, by every client that waits for it to exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Callable


def exit_now(code: int = 0) -> None:
    """Run the exit handlers (trace export, logging, temporary files), flush stdio, and end the process."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def run_main(main: Callable[[], object]) -> None:
    """main(), then exit_now with the code it exited with (a message instead of a code: printed, 1)."""
    try:
        main()
        code: int = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    exit_now(code)
