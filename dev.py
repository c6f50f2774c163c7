#!/usr/bin/env python3
"""Bootstrap and run agentdeck from a fresh clone: `python3 dev.py demo` or `python3 dev.py test`.

Needs only Python 3.11+. It installs uv into .uv-bootstrap/, syncs the locked environment into
.venv/ with this same interpreter, and runs the demo or the test suite there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
UV_VERSION = "0.13.9"
BOOT = ROOT / ".uv-bootstrap"
VENV = ROOT / ".venv"
BIN = "Scripts" if os.name == "nt" else "bin"

DEMO_QUESTIONS = [
    ["What files are in the workspace?"],
    ["Read notes.md"],
    ["Find customer Ada Lovelace"],
    ["Show the orders of customer 42"],
    ["Revenue by country"],
    # A write: the customers server asks for approval; the demo declines it (no prompt).
    ["Change the email of customer 7 to ada@example.com", "--approve", "no"],
]


def sh(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    rc = subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)
    if rc:
        raise SystemExit(rc)


def uv() -> Path:
    """uv from PATH if it is the pinned version, else a private copy installed with pip."""
    found = shutil.which("uv")
    if found and UV_VERSION in subprocess.run([found, "--version"], capture_output=True, text=True).stdout:
        return Path(found)
    exe = BOOT / BIN / "uv"
    if not exe.exists():
        sh(sys.executable, "-m", "venv", BOOT)
        sh(BOOT / BIN / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"uv=={UV_VERSION}")
    return exe


def sync() -> dict[str, str]:
    """Create or update .venv from uv.lock; return an environment that uses it."""
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", UV_PROJECT_ENVIRONMENT=str(VENV))
    # Compiled once here: with PYTHONDONTWRITEBYTECODE set (as in CI) every process would otherwise
    # recompile the Agents SDK and openai from source, about 1.7 s more per CLI start.
    sh(uv(), "sync", "--frozen", "--quiet", "--compile-bytecode", "--python", sys.executable, env=env)
    sh(VENV / BIN / "python", "-m", "compileall", "-q", "-j", "0", ROOT / "app", ROOT / "servers", env=env)
    env["VIRTUAL_ENV"] = str(VENV)
    env["PATH"] = str(VENV / BIN) + os.pathsep + env.get("PATH", "")
    return env


def demo() -> None:
    env = sync()
    agentdeck = VENV / BIN / "agentdeck"
    sh(agentdeck, "config", "validate", env=env)
    sh(agentdeck, "tools", "list", env=env)
    for question in DEMO_QUESTIONS:
        print(f"\n>>> agentdeck run {' '.join(repr(q) if ' ' in q else q for q in question)}", flush=True)
        sh(agentdeck, "run", *question, env=env)


def test(extra: list[str]) -> None:
    env = sync()
    sh(VENV / BIN / "python", "-m", "pytest", *extra, env=env)


def main() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be started by an older python3
        raise SystemExit(f"agentdeck needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    args = sys.argv[1:]
    if not args or args[0] not in ("demo", "test", "sync"):
        raise SystemExit("usage: python3 dev.py demo | test [pytest args] | sync")
    if args[0] == "demo":
        demo()
    elif args[0] == "test":
        test(args[1:])
    else:
        sync()


if __name__ == "__main__":
    main()
