"""The results file: one JSON line per id, appended as rows finish, compacted on resume and at the end."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from app.errors import UsageError

DONE = ("ok", "declined")
FAILED = ("error", "timeout", "cancelled")


def errors_path(out: Path) -> Path:
    """The sidecar that also receives every failed row: `results.jsonl` -> `results.errors.jsonl`."""
    return out.with_name(out.stem + ".errors" + (out.suffix or ".jsonl"))


@dataclass
class Existing:
    """What an earlier run left in the results file."""

    done: set[str] = field(default_factory=set)
    rows: int = 0
    failed: int = 0


def prepare(out: Path, resume: bool, overwrite: bool) -> Existing:
    """Apply --resume / --overwrite to OUT; refuse to touch existing results otherwise."""
    if resume and overwrite:
        raise UsageError("give --resume or --overwrite, not both")
    if out.is_dir():
        raise UsageError(f"output {out} is a directory", hint="give a file name, e.g. -o results.jsonl")
    for stale in out.parent.glob(f".{out.name}.compact-*"):
        stale.unlink(missing_ok=True)  # left by a run killed while compacting; OUT itself is intact
    has_rows = out.exists() and out.stat().st_size > 0
    if has_rows and not (resume or overwrite):
        raise UsageError(
            f"{out} already holds results",
            hint="add --resume to continue it (failed rows are retried) or --overwrite to replace it",
        )
    if overwrite:
        for path in (out, errors_path(out)):
            path.unlink(missing_ok=True)
        return Existing()
    if not has_rows:
        return Existing()
    compact(out)
    existing = Existing()
    for row in result_rows(out):
        existing.rows += 1
        if row.get("status") in DONE:
            existing.done.add(str(row["id"]))
        else:
            existing.failed += 1
    return existing


def result_rows(path: Path) -> Any:
    """The complete rows of a results file (a half-written last line is skipped)."""
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            row = _parse(line)
            if row is not None:
                yield row


def _parse(line: str) -> dict[str, Any] | None:
    if not line.endswith("\n"):
        return None  # cut short by a kill mid-write
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and "id" in row else None


def compact(out: Path) -> bool:
    """Keep one row per id (the last completed one, else the last attempt); drop partial lines.

    Written to a temporary file and renamed over OUT, so a kill at any moment leaves a whole file.
    Returns whether anything changed.
    """
    chosen: dict[str, tuple[int, bool]] = {}
    total = 0
    with out.open(encoding="utf-8", errors="replace") as fh:
        for index, line in enumerate(fh):
            total += 1
            row = _parse(line)
            if row is None:
                continue
            ident, done = str(row["id"]), row.get("status") in DONE
            previous = chosen.get(ident)
            if previous is None or done or not previous[1]:
                chosen[ident] = (index, done)
    if len(chosen) == total:
        return False
    keep = {index for index, _ in chosen.values()}
    tmp = out.with_name(f".{out.name}.compact-{os.getpid()}")
    with out.open(encoding="utf-8", errors="replace") as src, tmp.open("w", encoding="utf-8") as dst:
        for index, line in enumerate(src):
            if index in keep:
                dst.write(line)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(tmp, out)
    return True


class ResultWriter:
    """Appends rows to OUT (and failures to the sidecar) unbuffered, so a kill loses nothing finished."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.errors = errors_path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        self._out: IO[bytes] = out.open("ab", buffering=0)
        self._err: IO[bytes] | None = None

    def write(self, row: dict[str, Any]) -> None:
        line = (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        _write_all(self._out, line)
        if row["status"] in FAILED:
            if self._err is None:
                self._err = self.errors.open("ab", buffering=0)
            _write_all(self._err, line)

    def close(self) -> None:
        self._out.close()
        if self._err is not None:
            self._err.close()


def _write_all(fh: IO[bytes], data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = fh.write(view)
        view = view[written or 0 :]
