"""Running totals for a batch and the summary printed (and written as JSON) at the end."""

from __future__ import annotations

import math
import shlex
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("ok", "declined", "error", "timeout", "cancelled")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return ordered[rank - 1]


@dataclass
class BatchStats:
    total: int = 0
    skipped: int = 0
    duplicates: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    tokens: Counter[str] = field(default_factory=Counter)
    tools: dict[str, Counter[str]] = field(default_factory=dict)
    stopped: str | None = None
    wall_s: float = 0.0  # the rows phase (set by the engine); rows_per_s is measured on it
    cpu_s: float = 0.0
    # Set by the command: the whole wall time, server start-up and shutdown included, and start-up alone.
    total_s: float | None = None
    startup_s: float = 0.0
    # The estimated cost of the usage (None: the model has no price) and the model priced (None: offline).
    cost_usd: float | None = 0.0
    model: str | None = None
    tools_list_fetches: dict[str, int] = field(default_factory=dict)
    local_calls: int = 0
    hosted_calls: int = 0
    tool_errors: int = 0
    approvals: int = 0
    # Set by the command for the processes and ray executors: each worker's rows, CPU and restarts.
    executor: str = "local"
    workers: list[dict[str, Any]] = field(default_factory=list)
    requeued: int = 0  # rows run again because their worker died

    @property
    def finished(self) -> int:
        return sum(self.by_status.values())

    @property
    def errors(self) -> int:
        return self.by_status["error"] + self.by_status["timeout"]

    def add(self, row: dict[str, Any]) -> None:
        """Count one written row."""
        self.by_status[row["status"]] += 1
        if row["status"] != "cancelled" and row.get("duration_ms") is not None and row.get("started_at"):
            self.latencies_ms.append(row["duration_ms"])
        for key, value in (row.get("usage") or {}).items():
            self.tokens[key] += value
        self.approvals += row.get("approvals") or 0
        for call in row.get("tool_calls") or []:
            counts = self.tools.setdefault(f"{call['server']}.{call['tool']}", Counter())
            counts["calls"] += 1
            if call.get("hosted"):
                counts["hosted"] += 1
                self.hosted_calls += 1
            else:
                self.local_calls += 1
            if call.get("declined"):
                counts["declined"] += 1
            elif not call["ok"]:
                counts["failed"] += 1
                self.tool_errors += 1

    def as_dict(self) -> dict[str, Any]:
        """The --summary JSON."""
        lat = self.latencies_ms
        ran = self.finished
        return {
            "rows": ran,
            "skipped_already_done": self.skipped,
            "duplicate_ids_skipped": self.duplicates,
            "by_status": {s: self.by_status[s] for s in STATUSES},
            "latency_ms": {
                "p50": round(percentile(lat, 50), 1),
                "p95": round(percentile(lat, 95), 1),
                "max": round(max(lat, default=0.0), 1),
            },
            "usage": dict(self.tokens),
            "model": self.model,
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
            "tool_calls": {name: dict(c) for name, c in sorted(self.tools.items())},
            "tool_calls_local": self.local_calls,
            "tool_calls_hosted": self.hosted_calls,
            "tool_errors": self.tool_errors,
            "approvals_asked": self.approvals,
            "tools_list_fetches": self.tools_list_fetches,
            "wall_s": round(self.wall_s if self.total_s is None else self.total_s, 3),
            "startup_s": round(self.startup_s, 3),
            "rows_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "rows_per_s": round(ran / self.wall_s, 2) if self.wall_s > 0 else 0.0,
            "stopped": self.stopped,
            "executor": self.executor,
            "workers": self.workers,
            "rows_run_again": self.requeued,
        }


def summary_lines(stats: BatchStats, out: str, errors: str, resume_argv: list[str] | None) -> list[str]:
    """The human summary; `resume_argv` adds the command that continues the batch."""
    d = stats.as_dict()
    counts = " · ".join(f"{s} {n}" for s, n in d["by_status"].items() if n or s == "ok")
    lines = [f"batch {'stopped' if stats.stopped else 'done'}: {d['rows']} rows in {d['wall_s']:.1f} s wall "
             f"(start-up {d['startup_s']:.1f} s, rows {d['rows_s']:.1f} s) · {d['rows_per_s']} rows/s"]  # fmt: skip
    if stats.stopped:
        lines.append(f"  stopped: {stats.stopped}")
    extra = []
    if stats.skipped:
        extra.append(f"{stats.skipped} already done (skipped)")
    if stats.duplicates:
        extra.append(f"{stats.duplicates} duplicate ids skipped")
    lines.append("  " + counts + (f"  ({', '.join(extra)})" if extra else ""))
    lat = d["latency_ms"]
    if stats.latencies_ms:
        lines.append(
            f"  latency p50 {lat['p50'] / 1000:.2f} s · p95 {lat['p95'] / 1000:.2f} s · max {lat['max'] / 1000:.2f} s"
        )
    usage = d["usage"]
    if usage:
        lines.append(
            f"  model requests {usage.get('requests', 0)} · tokens in {usage.get('input_tokens', 0):,} · "
            f"out {usage.get('output_tokens', 0):,} · total {usage.get('total_tokens', 0):,} · {cost_text(stats)}"
        )
    if d["tool_calls"]:
        calls = ", ".join(
            f"{name} {c['calls']}"
            + (" (hosted)" if c.get("hosted") == c["calls"] else f" ({c['hosted']} hosted)" if c.get("hosted") else "")
            + (f" ({c['failed']} failed)" if c.get("failed") else "")
            + (f" ({c['declined']} declined)" if c.get("declined") else "")
            for name, c in d["tool_calls"].items()
        )
        lines.append(f"  tool calls: {calls}")
    if stats.approvals:
        lines.append(f"  approvals asked: {stats.approvals}")
    if stats.workers:
        each = "; ".join(f"{w['name']} {w['rows']} rows, {w['rows_per_s']} rows/s, cpu {w['cpu_s']:.1f} s, "
                         f"{w['restarts']} restarts" for w in stats.workers)  # fmt: skip
        lines.append(f"  workers ({stats.executor}): {each}")
    if stats.requeued:
        lines.append(f"  {stats.requeued} rows run again after their worker died (a tool with side effects may repeat)")
    lines.append(
        f"  results: {out}" + (f" · failures also in {errors}" if stats.errors or stats.by_status["cancelled"] else "")
    )
    if resume_argv:
        lines.append(f"  resume with: {shlex.join(resume_argv)}")
    return lines


def cost_text(stats: BatchStats) -> str:
    """`est. cost $0.0123`, or why there is no estimate."""
    if stats.cost_usd is None:
        return f"est. cost n/a (no price for {stats.model}; add it to defaults.prices)"
    cost = stats.cost_usd
    shown = f"${cost:.2f}" if cost >= 0.01 or cost == 0 else f"${cost:.4f}" if cost >= 0.0001 else "<$0.0001"
    return f"est. cost {shown}" + (" (offline model)" if stats.model is None else "")
