"""`agentdeck init`: write a commented starter agents.yaml from a bundled template."""

from __future__ import annotations

import os
import shlex
from importlib.resources import files
from pathlib import Path

from app.commands.common import stdout
from app.config import find_config_path
from app.errors import UsageError

# Template name -> the question the printed next step asks (one the offline model's built-in rules answer).
TEMPLATES = {
    "basic": "Hello",
    "filesystem": "What tools do you have?",
    "customers": "What tools do you have?",
    "hosted": "What tools do you have?",
}


def template_text(name: str) -> str:
    """The text of a bundled template (package data in app/templates/)."""
    return files("app").joinpath("templates", f"{name}.yaml").read_text(encoding="utf-8")


def init_command(template: str, path: str | None, force: bool) -> None:
    """Write the template to PATH (else --config, $AGENTDECK_CONFIG, ./agents.yaml); never clobber unasked."""
    if template not in TEMPLATES:
        raise UsageError(f"unknown template '{template}'", hint=f"templates: {', '.join(TEMPLATES)}")
    target = find_config_path(path)
    if target.is_dir():
        raise UsageError(f"{target} is a directory", hint=f"give a file name, e.g. {target / 'agents.yaml'}")
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {target}: no such directory '{target.parent}'")
    if target.exists() and not force:
        raise UsageError(f"{target} already exists; not overwriting it", hint="add --force to replace it")
    _write(target, template_text(template))
    # The next command needs -c only when agentdeck would not find the file by itself.
    flag = "" if find_config_path(None) == target else f" -c {shlex.quote(str(target))}"
    out = stdout()
    out.print(f"wrote {target} (template: {template})", markup=False)
    out.print(f'next: agentdeck{flag} run "{TEMPLATES[template]}"', markup=False)


def _write(target: Path, text: str) -> None:
    """Write beside the target, then rename over it: a reader never sees half a file."""
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with temp.open("x", encoding="utf-8") as fh:  # "x": the umask's permissions, never someone else's file
            fh.write(text)
        os.replace(temp, target)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        temp.unlink(missing_ok=True)
