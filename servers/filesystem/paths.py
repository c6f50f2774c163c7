"""Path validation for the filesystem server: every path must stay inside an allowed root.

Follows the reference server's current algorithm (not its README): nothing is stripped from the
path, NUL bytes and Windows drive paths are refused, containment is separator-aware, and the real
path of anything that exists must stay inside too.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


class AccessDenied(Exception):
    """The path is outside the allowed directories (or otherwise refused)."""


@dataclass(frozen=True)
class Root:
    path: str  # realpath of the directory
    read_only: bool = False


def make_roots(dirs: list[str], read_only_dirs: list[str] | None = None) -> list[Root]:
    """Resolve CLI directories; refuse ones that do not exist or are not directories."""
    roots: list[Root] = []
    for raw, ro in [(d, False) for d in dirs] + [(d, True) for d in read_only_dirs or []]:
        real = os.path.realpath(os.path.expanduser(raw))
        if not os.path.isdir(real):
            raise ValueError(f"allowed directory {raw!r} does not exist or is not a directory")
        roots.append(Root(real, ro))
    return roots


def inside(path: str, root: str) -> bool:
    """Separator-aware containment: /a/b is inside /a, /a_evil is not."""
    if root == os.sep:
        return path.startswith(os.sep)
    return path == root or path.startswith(root + os.sep)


def root_of(path: str, roots: list[Root]) -> Root | None:
    """The allowed root that contains an (already real) path."""
    best = None
    for root in roots:
        if inside(path, root.path) and (best is None or len(root.path) > len(best.path)):
            best = root
    return best


def _candidate(requested: str, roots: list[Root]) -> str:
    if requested == "~" or requested.startswith("~/"):
        requested = os.path.expanduser(requested)
    if os.path.isabs(requested):
        return os.path.normpath(requested)
    # A relative path resolves against each root in turn; the first that exists wins.
    for root in roots:
        cand = os.path.normpath(os.path.join(root.path, requested))
        if inside(cand, root.path) and os.path.lexists(cand):
            return cand
    return os.path.normpath(os.path.join(roots[0].path, requested))


def validate(requested: str, roots: list[Root], *, write: bool = False) -> str:
    """Return the real path to operate on, or raise AccessDenied."""
    if not isinstance(requested, str) or requested == "":
        raise AccessDenied("Access denied - empty path")
    if "\x00" in requested:
        raise AccessDenied("Access denied - path contains a NUL byte")
    if not roots:
        raise AccessDenied("Access denied - no allowed directories are configured")
    if os.sep == "/" and _WINDOWS_DRIVE.match(requested):
        raise AccessDenied("Access denied - Windows-style path received on a POSIX host")
    absolute = _candidate(requested, roots)
    allowed = ", ".join(r.path for r in roots)
    if root_of(absolute, roots) is None:
        absolute = _respell_root_prefix(absolute, roots)
    if root_of(absolute, roots) is None:
        raise AccessDenied(f"Access denied - path outside allowed directories: {absolute} not in {allowed}")
    if os.path.lexists(absolute):
        real = os.path.realpath(absolute)
        root = root_of(real, roots)
        if root is None:
            raise AccessDenied(f"Access denied - symlink target outside allowed directories: {real} not in {allowed}")
    else:
        real = _resolve_missing(absolute, roots, allowed)
        root = root_of(real, roots)
        assert root is not None
    if write and root.read_only:
        raise AccessDenied(f"Access denied - {root.path} is read-only")
    return real


def _resolve_missing(absolute: str, roots: list[Root], allowed: str) -> str:
    """A path that does not exist: resolve the existing prefix, check it, append the missing tail."""
    parts = Path(absolute).parts
    existing = Path(parts[0])
    index = 1
    while index < len(parts):
        name = parts[index]
        if not os.path.lexists(existing / name):
            # A Unicode-equivalent spelling (NFC/NFD) of an existing entry is that entry.
            name = _equivalent_entry(existing, name) or ""
            if not name:
                break
        existing = existing / name
        index += 1
    real_prefix = os.path.realpath(existing)
    if root_of(real_prefix, roots) is None:
        raise AccessDenied(
            f"Access denied - parent directory outside allowed directories: {real_prefix} not in {allowed}"
        )
    tail = parts[index:]
    return os.path.join(real_prefix, *tail) if tail else real_prefix


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).replace("\u00a0", " ").replace("\u202f", " ")


def _respell_root_prefix(absolute: str, roots: list[Root]) -> str:
    """Map an NFC/NFD (or no-break-space) spelling of a root prefix onto the root as it is on disk."""
    folded = _fold(absolute)
    for root in roots:
        prefix = _fold(root.path)
        if folded == prefix:
            return root.path
        if folded.startswith(prefix + os.sep):
            return root.path + folded[len(prefix) :]
    return absolute


def _equivalent_entry(directory: Path, name: str) -> str | None:
    """The single directory entry whose Unicode-folded name equals `name`'s; ambiguity is refused."""
    if _fold(name) == name and unicodedata.normalize("NFD", name) == name:
        return None
    try:
        entries = os.listdir(directory)
    except OSError:
        return None
    matches = [e for e in entries if _fold(e) == _fold(name)]
    if len(matches) > 1:
        raise AccessDenied(f"Ambiguous Unicode path component: {name}")
    return matches[0] if matches else None
