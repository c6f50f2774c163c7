"""Executors compared in one run, printed as ratios (issue #17).

The rows are bench_batch.py's: each reads a file through the bundled filesystem server over stdio
(one tool call, two model requests) against `agentdeck fake-openai --latency L` (real openai client,
real HTTP). Rows per second are measured on the rows phase (the summary's `rows_per_s`), so start-up
is reported apart:

(a) `processes` with 2 workers vs `local`, --rows at 100 ms (target >= 1.5x on 2 cores);
(b) `ray` with 2 actors vs 1 actor on the same rows (target >= 1.5x), with Ray's start-up and each
    actor's peak memory;
(c) `processes` vs `local` at 500 ms model latency (target >= 0.95x: no slower when the model is the limit).

The same number of rows is in flight everywhere: --in-flight in total (split across the workers).

Run: .venv/bin/python bench/bench_executors.py [--rows 1000] [--in-flight 64] [--skip-ray]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_batch import RULES, batch_run, start_fake  # noqa: E402


def run(work: Path, url: str, rows: int, in_flight: int, executor: str, workers: int = 1) -> dict[str, Any]:
    """One batch on `executor`, `in_flight` rows at once in total; its --summary."""
    extra = ("--executor", executor) + (("--workers", str(workers)) if executor != "local" else ())
    width = in_flight if executor == "local" else max(in_flight // workers, 1)
    summary = batch_run(work, url, rows, width, extra)
    assert summary["by_status"]["ok"] == rows, f"not every row succeeded: {summary['by_status']}"
    return summary


def line(label: str, s: dict[str, Any]) -> str:
    return (f"  {label:<22} {s['rows_per_s']:7.1f} rows/s (rows {s['rows_s']:.1f} s, start-up {s['startup_s']:.1f} s, "
            f"whole process {s['process_s']:.1f} s)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="agentdeck-bench-executors-"))
    (work / "root").mkdir()
    for i in range(10):
        (work / "root" / f"note{i}.txt").write_text(f"note {i}: remember the milk\n")
    rules = work / "rules.yaml"
    rules.write_text(RULES)

    fake, url = start_fake(rules, 0.1)
    try:
        local = run(work, url, args.rows, args.in_flight, "local")
        procs = run(work, url, args.rows, args.in_flight, "processes", 2)
        ray1 = ray2 = None
        if not args.skip_ray:
            ray1 = run(work, url, args.rows, args.in_flight, "ray", 1)
            ray2 = run(work, url, args.rows, args.in_flight, "ray", 2)
    finally:
        fake.terminate()
        fake.wait()
    slow_fake, slow_url = start_fake(rules, 0.5)
    try:
        slow_local = run(work, slow_url, args.rows, args.in_flight, "local")
        slow_procs = run(work, slow_url, args.rows, args.in_flight, "processes", 2)
    finally:
        slow_fake.terminate()
        slow_fake.wait()

    print(f"{args.rows} rows, {args.in_flight} in flight, fake model at 100 ms (two requests per row)")
    print(line("local", local))
    print(line("processes, 2 workers", procs))
    for w in procs["workers"]:
        print(f"    {w['name']}: {w['rows']} rows, cpu {w['cpu_s']:.1f} s, peak {w['peak_rss_mb']} MiB")
    print(f"(a) processes / local: {procs['rows_per_s'] / local['rows_per_s']:.2f}x (target >= 1.5x)")
    if ray1 is not None and ray2 is not None:
        print(line("ray, 1 actor", ray1))
        print(line("ray, 2 actors", ray2))
        print(f"(b) ray 2 actors / 1 actor: {ray2['rows_per_s'] / ray1['rows_per_s']:.2f}x (target >= 1.5x)")
        print(f"    Ray start-up (cluster and actors ready): {ray1['startup_s']:.1f} s with 1 actor, "
              f"{ray2['startup_s']:.1f} s with 2")  # fmt: skip
        for w in ray2["workers"]:
            print(f"    actor {w['name']}: {w['rows']} rows, cpu {w['cpu_s']:.1f} s, peak {w['peak_rss_mb']} MiB")
    print(f"at 500 ms: local {slow_local['rows_per_s']:.1f} rows/s, processes {slow_procs['rows_per_s']:.1f} rows/s")
    print(f"(c) processes / local at 500 ms: {slow_procs['rows_per_s'] / slow_local['rows_per_s']:.2f}x "
          "(target >= 0.95x)")  # fmt: skip


if __name__ == "__main__":
    main()
