"""Batch inputs: .txt, .jsonl and .csv read one record at a time, each turned into a query with an id."""

from __future__ import annotations

import csv
import hashlib
import json
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import UsageError

FORMATS = (".txt", ".jsonl", ".csv")
DEFAULT_INPUT_FIELD = "input"


@dataclass
class InputRow:
    """One record of the input: a query to run, or the reason it cannot be run."""

    line: int
    id: str
    input: str
    error: str | None = None


@dataclass
class InputSpec:
    path: Path
    kind: str
    template: str | None = None
    id_field: str | None = None
    input_field: str | None = None


def input_spec(path: Path, template: str | None, id_field: str | None, input_field: str | None) -> InputSpec:
    """Check the input file and the options that shape its records; raise UsageError on a mismatch."""
    kind = path.suffix.lower()
    if kind not in FORMATS:
        raise UsageError(
            f"cannot read {path}: unknown input format {kind or '(no suffix)'!r}",
            hint="use a .txt (one query per line), .jsonl or .csv file",
        )
    if not path.is_file():
        raise UsageError(f"input file {path} does not exist or is not a file")
    if template is not None and input_field is not None:
        raise UsageError("give --template or --input-field, not both")
    if kind == ".txt" and (id_field or input_field):
        raise UsageError(
            f"{path.name} is plain text: its lines have no fields",
            hint="--id-field and --input-field need a .jsonl or .csv input",
        )
    if template is not None:
        fields = template_fields(template)
        if kind == ".txt" and fields - {"input"}:
            raise UsageError("a template for a .txt input can only use {input} (the line)")
    spec = InputSpec(path, kind, template, id_field, input_field)
    if kind == ".csv":
        _check_csv_header(spec)
    return spec


def template_fields(template: str) -> set[str]:
    """The field names a --template uses; plain names only (no attribute or index access)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UsageError(
            f"invalid --template: {exc}", hint="write fields as {name}; double braces for literal ones"
        ) from None
    fields = {name for _, name, _, _ in parsed if name is not None}
    for name in fields:
        if not name or name.isdigit() or not name.replace("_", "").replace("-", "").replace(" ", "").isalnum():
            raise UsageError(f"invalid --template field {{{name}}}", hint="use plain field names such as {question}")
    return fields


def _check_csv_header(spec: InputSpec) -> None:
    with spec.path.open(encoding="utf-8", errors="replace", newline="") as fh:
        header = next(csv.reader(fh), None)
    if not header:
        raise UsageError(f"{spec.path} has no header row", hint="the first line of a .csv input names its columns")
    needed = template_fields(spec.template) if spec.template else {spec.input_field or DEFAULT_INPUT_FIELD}
    if spec.id_field:
        needed.add(spec.id_field)
    missing = sorted(needed - set(header))
    if missing:
        hint = "name the query column with --input-field or build it with --template" if not spec.template else ""
        raise UsageError(
            f"{spec.path} has no column {', '.join(repr(m) for m in missing)} (columns: {', '.join(header)})",
            hint=hint or None,
        )


def row_id(position: int, text: str) -> str:
    """A stable id from the record's position and content."""
    return hashlib.sha256(f"{position}\0{text}".encode()).hexdigest()[:16]


def count_records(spec: InputSpec) -> int:
    """How many records the input holds (one streaming pass; used for progress only)."""
    n = 0
    with spec.path.open("rb") as fh:
        if spec.kind == ".csv":
            return max(sum(1 for line in fh if line.strip()) - 1, 0)
        for raw in fh:
            line = raw.strip()
            if line and not (spec.kind == ".txt" and line.startswith(b"#")):
                n += 1
    return n


def read_rows(spec: InputSpec) -> Iterator[InputRow]:
    """The records in file order, streamed; malformed ones come back with `error` set."""
    if spec.kind == ".csv":
        yield from _csv_rows(spec)
        return
    position = 0
    with spec.path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                position += 1
                shown = raw.decode("utf-8", "replace").strip()
                yield InputRow(number, row_id(position, shown), shown, f"line {number}: not valid UTF-8")
                continue
            if not text or (spec.kind == ".txt" and text.startswith("#")):
                continue
            position += 1
            if spec.kind == ".txt":
                query = spec.template.format(input=text) if spec.template else text
                yield InputRow(number, row_id(position, query), query)
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield InputRow(number, row_id(position, text), text, f"line {number}: not valid JSON ({exc.msg})")
                continue
            if not isinstance(record, dict):
                yield InputRow(number, row_id(position, text), text, f"line {number}: not a JSON object")
                continue
            yield _from_record(spec, record, number, position, text)


def _csv_rows(spec: InputSpec) -> Iterator[InputRow]:
    with spec.path.open(encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        position = 0
        while True:
            start = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                position += 1
                yield InputRow(start, row_id(position, str(exc)), "", f"line {start}: malformed CSV ({exc})")
                continue
            if not any(v.strip() for v in values):
                continue
            position += 1
            raw = ",".join(values)
            if len(values) != len(header):
                error = f"line {start}: expected {len(header)} fields, got {len(values)}"
                column = header.index(spec.id_field) if spec.id_field else len(values)
                ident = values[column] if column < len(values) and values[column] else row_id(position, raw)
                yield InputRow(start, ident, raw, error)
                continue
            yield _from_record(spec, dict(zip(header, values, strict=True)), start, position, raw)


def _from_record(spec: InputSpec, record: dict[str, Any], line: int, position: int, raw: str) -> InputRow:
    if spec.template is not None:
        try:
            query = spec.template.format_map({k: _as_text(v) for k, v in record.items()})
        except KeyError as exc:
            return InputRow(line, row_id(position, raw), raw, f"line {line}: no field {exc} for the template")
    else:
        field = spec.input_field or DEFAULT_INPUT_FIELD
        if field not in record:
            hint = "" if spec.input_field else " (name it with --input-field or use --template)"
            return InputRow(line, row_id(position, raw), raw, f"line {line}: no field {field!r}{hint}")
        query = _as_text(record[field])
    if spec.id_field is not None:
        if record.get(spec.id_field) in (None, ""):
            return InputRow(line, row_id(position, raw), query, f"line {line}: no value for id field {spec.id_field!r}")
        ident = _as_text(record[spec.id_field])
    else:
        ident = row_id(position, query)
    if not query.strip():
        return InputRow(line, ident, query, f"line {line}: the query is empty")
    return InputRow(line, ident, query)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)
