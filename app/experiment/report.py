"""An experiment's results, recomputed from `rows.jsonl`: per-variant statistics and the answers.

Every number in report.json, report.md and report.html comes from here, so the reports always
agree with the rows file (also after a resume, or when rows were added by hand).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.batch.stats import BatchStats, percentile

# The answers table shows this many questions; statistics always cover every row.
MAX_QUESTIONS = 200
MAX_DIFFERENCES = 20
DONE = ("ok", "declined")


def normalise(answer: str | None) -> str:
    """Answers compare case-insensitively, with whitespace collapsed and final punctuation dropped."""
    return " ".join((answer or "").casefold().split()).rstrip(".!")


def _key(answer: str | None) -> str:
    return hashlib.sha256(normalise(answer).encode()).hexdigest()[:16]


@dataclass
class VariantReport:
    name: str
    info: dict[str, Any]
    stats: BatchStats = field(default_factory=BatchStats)
    cost: float = 0.0
    priced: bool = True
    agree: int = 0
    compared: int = 0
    differences: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        s, lat = self.stats, self.stats.latencies_ms
        return {
            **self.info,
            "rows": s.finished,
            "by_status": {k: s.by_status[k] for k in ("ok", "declined", "error", "timeout", "cancelled")},
            "latency_ms": {"p50": round(percentile(lat, 50), 1), "p95": round(percentile(lat, 95), 1)},
            "requests": s.tokens["requests"],
            "input_tokens": s.tokens["input_tokens"],
            "output_tokens": s.tokens["output_tokens"],
            "tool_calls": {"local": s.local_calls, "hosted": s.hosted_calls},
            "tool_errors": s.tool_errors,
            "approvals_asked": s.approvals,
            "cost_usd": round(self.cost, 6) if self.priced else None,
            "agreement": {"agree": self.agree, "compared": self.compared, "rate": self.rate()},
            "differences": self.differences,
        }

    def rate(self) -> float | None:
        return round(self.agree / self.compared, 4) if self.compared else None


@dataclass
class Report:
    variants: list[VariantReport]
    baseline: str
    repeat: int
    questions: list[dict[str, Any]]
    total_questions: int
    latencies: dict[str, list[float]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "repeat": self.repeat,
            "questions": self.total_questions,
            "variants": [v.as_dict() for v in self.variants],
        }


def read_rows(path: Path) -> Any:
    """The rows of a results file, skipping a half-written last line."""
    from app.batch.results import result_rows

    if path.exists():
        yield from result_rows(path)


def build(directory: Path) -> Report:
    """Recompute the whole report from DIR/rows.jsonl and DIR/experiment.json."""
    meta = json.loads((directory / "experiment.json").read_text(encoding="utf-8"))
    infos = {v["name"]: v for v in meta["variants"]}
    variants = {name: VariantReport(name, info) for name, info in infos.items()}
    baseline = next(iter(infos))
    rows_path = directory / "rows.jsonl"
    base_answers: dict[tuple[str, int], tuple[str, str | None]] = {}
    shown: dict[str, dict[str, Any]] = {}
    questions: set[str] = set()
    for row in read_rows(rows_path):
        report = variants.get(row.get("variant"))
        if report is None:
            continue
        report.stats.add(row)
        questions.add(row["question"])
        if row["status"] != "cancelled" and row.get("started_at"):
            if row.get("cost_usd") is None:
                report.priced = False
            else:
                report.cost += row["cost_usd"]
        if row["variant"] == baseline and row["status"] in DONE:
            base_answers[(row["question"], row["repeat"])] = (_key(row["output"]), row["output"])
        entry = shown.get(row["question"])
        if entry is None and len(shown) < MAX_QUESTIONS:
            entry = shown[row["question"]] = {"question": row["question"], "line": row["line"], "input": row["input"]}
            entry["answers"] = {}
        if entry is not None:
            entry["answers"].setdefault(row["variant"], []).append(_answer(row))
    for row in read_rows(rows_path):
        report = variants.get(row.get("variant"))
        if report is None or row["variant"] == baseline or row["status"] not in DONE:
            continue
        base = base_answers.get((row["question"], row["repeat"]))
        if base is None:
            continue
        report.compared += 1
        if base[0] == _key(row["output"]):
            report.agree += 1
        elif len(report.differences) < MAX_DIFFERENCES:
            report.differences.append(
                {"question": row["question"], "repeat": row["repeat"], "input": row["input"],
                 "baseline_answer": base[1], "answer": row["output"]}
            )  # fmt: skip
    ordered = sorted(shown.values(), key=lambda q: (q["line"], q["question"]))
    latencies = {name: v.stats.latencies_ms for name, v in variants.items()}
    return Report(list(variants.values()), baseline, meta.get("repeat", 1), ordered, len(questions), latencies)


def _answer(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "repeat": row["repeat"],
        "status": row["status"],
        "output": row["output"] if row["output"] is not None else row.get("error"),
        "duration_ms": row.get("duration_ms"),
    }


def table_rows(report: Report) -> list[tuple[str, list[str]]]:
    """(column, one cell per variant): the side-by-side table of every format."""
    out: list[tuple[str, list[str]]] = []

    def add(label: str, cell: Any) -> None:
        out.append((label, [cell(v, v.as_dict()) for v in report.variants]))

    add("model", lambda v, d: d["model"])
    add("hosted servers", lambda v, d: ", ".join(d["hosted_servers"]) or "-")
    add("rows", lambda v, d: str(d["rows"]))
    add("ok / declined", lambda v, d: f"{d['by_status']['ok']} / {d['by_status']['declined']}")
    add("errors / timeouts", lambda v, d: f"{d['by_status']['error']} / {d['by_status']['timeout']}")
    if any(v.stats.by_status["cancelled"] for v in report.variants):
        add("cancelled", lambda v, d: str(d["by_status"]["cancelled"]))
    add("latency p50", lambda v, d: _seconds(d["latency_ms"]["p50"]))
    add("latency p95", lambda v, d: _seconds(d["latency_ms"]["p95"]))
    add("model requests", lambda v, d: f"{d['requests']:,}")
    add("input tokens", lambda v, d: f"{d['input_tokens']:,}")
    add("output tokens", lambda v, d: f"{d['output_tokens']:,}")
    add("tool calls local / hosted", lambda v, d: f"{d['tool_calls']['local']} / {d['tool_calls']['hosted']}")
    add("tool errors", lambda v, d: str(d["tool_errors"]))
    add("approvals asked", lambda v, d: str(d["approvals_asked"]))
    add("estimated cost", lambda v, d: "n/a" if d["cost_usd"] is None else f"${d['cost_usd']:.4f}")
    add(f"agrees with {report.baseline}", lambda v, d: _agreement(v, report.baseline))
    return out


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.2f} s"


def _agreement(v: VariantReport, baseline: str) -> str:
    if v.name == baseline:
        return "(baseline)"
    rate = v.rate()
    return "-" if rate is None else f"{rate:.0%} ({v.agree}/{v.compared})"


def markdown(report: Report, title: str) -> str:
    """report.md: the table, the differing answers and the answers side by side."""
    names = [v.name for v in report.variants]
    lines = [f"# {title}", "", f"{report.total_questions} question(s) × {len(names)} variants × {report.repeat}", ""]
    lines += ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {label} | " + " | ".join(_cell(c) for c in cells) + " |" for label, cells in table_rows(report)]
    if any(v.priced is False for v in report.variants):
        lines += [
            "",
            "Cost is n/a for a model without a price: add it to `defaults.prices` or the experiment's `prices`.",
        ]
    for v in report.variants:
        if v.differences:
            lines += ["", f"## Answers of {v.name} that differ from {report.baseline}", ""]
            for d in v.differences:
                lines += [f"- **{_cell(d['input'])}** (repeat {d['repeat']})"]
                lines += [
                    f"  - {report.baseline}: {_cell(d['baseline_answer'])}",
                    f"  - {v.name}: {_cell(d['answer'])}",
                ]
    lines += ["", "## Answers", ""]
    if report.total_questions > len(report.questions):
        lines += [f"The first {len(report.questions)} of {report.total_questions} questions.", ""]
    lines += ["| question | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for q in report.questions:
        answers = [
            "<br>".join(_cell(f"{a['output']}" if a["status"] in DONE else f"[{a['status']}] {a['output']}")
                        for a in q["answers"].get(n, []))
            for n in names
        ]  # fmt: skip
        lines.append(f"| {_cell(q['input'])} | " + " | ".join(answers) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|")
