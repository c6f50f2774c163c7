"""The experiment runner's overhead against `agentdeck batch` on the same rows, printed as a ratio.

An experiment of two identical variants over Q questions runs 2Q rows; a batch runs a file of the
same 2Q queries with the same config and concurrency. Each is timed as a whole process (start-up,
rows and reports included) and over its rows phase (first row started to last row finished, from
each run's own rows file), alternating A B A B; the medians of the pairwise ratios are printed
(target <= 1.05). The model is `agentdeck fake-openai --latency` (real openai client, real HTTP),
the tool server the bundled filesystem server over stdio.

Run: .venv/bin/python bench/bench_experiment.py [--questions 150] [--concurrency 16] [--pairs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from bench_batch import start_fake, workspace, write_config  # the same fake model and rules as the batch bench


def timed(cmd: list[str], cwd: Path, rows: Path) -> tuple[float, float]:
    """(whole process seconds, rows phase seconds: first row started to last row finished)."""
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    whole = time.perf_counter() - started
    spans = []
    for line in rows.read_text().splitlines():
        row = json.loads(line)
        begin = datetime.fromisoformat(row["started_at"].replace("Z", "+00:00")).timestamp()
        spans.append((begin, begin + row["duration_ms"] / 1000))
    return whole, max(end for _, end in spans) - min(begin for begin, _ in spans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()

    work, rules = workspace("experiment")
    fake, base_url = start_fake(rules, args.latency)
    try:
        write_config(work, base_url, model="gpt-5.6-luna")
        questions = [f"read note{i % 10}.txt #{i}" for i in range(args.questions)]
        (work / "q.txt").write_text("".join(f"{q}\n" for q in questions))
        # The batch gets each question twice, as the experiment runs it once per variant.
        (work / "rows.txt").write_text("".join(f"{q}\n{q}\n" for q in questions))
        (work / "exp.yaml").write_text(
            f"questions: q.txt\nconcurrency: {args.concurrency}\nvariants:\n  a: {{}}\n  b: {{}}\n"
        )
        experiment = [sys.executable, "-m", "app", "experiment", "run", "exp.yaml", "-o", "exp", "--overwrite"]
        batch = [sys.executable, "-m", "app", "batch", "rows.txt", "-o", "rows.jsonl", "--overwrite"]
        batch += ["--concurrency", str(args.concurrency)]
        timed(batch, work, work / "rows.jsonl")  # warm-up: imports, page cache
        pairs = []
        for _ in range(args.pairs):
            pairs.append(
                (timed(experiment, work, work / "exp" / "rows.jsonl"), timed(batch, work, work / "rows.jsonl"))
            )
    finally:
        fake.terminate()
        fake.wait()
    rows = 2 * args.questions
    print(f"experiment vs batch: {rows} rows (2 variants x {args.questions} questions), concurrency "
          f"{args.concurrency}, model latency {args.latency * 1000:.0f} ms, {args.pairs} pairs")  # fmt: skip
    for index, label in ((0, "whole process"), (1, "rows phase")):
        ratios = [e[index] / b[index] for e, b in pairs]
        print(
            f"  {label}: experiment median {statistics.median(e[index] for e, _ in pairs):.2f} s, batch median "
            f"{statistics.median(b[index] for _, b in pairs):.2f} s; ratio median {statistics.median(ratios):.3f} "
            f"(min {min(ratios):.3f}, max {max(ratios):.3f}; target <= 1.05)"
        )


if __name__ == "__main__":
    main()
