"""The experiment runner's overhead against `agentdeck batch` on the same rows, printed as a ratio.

An experiment of two identical variants over Q questions runs 2Q rows; a batch runs a file of the
same 2Q queries with the same config and concurrency. Each is timed as a whole process (start-up,
rows and reports included), alternating A B A B, and the median of the pairwise ratios is printed
(target <= 1.05). The model is `agentdeck fake-openai --latency` (real openai client, real HTTP),
the tool server the bundled filesystem server over stdio.

Run: .venv/bin/python bench/bench_experiment.py [--questions 150] [--concurrency 16] [--pairs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_batch import ROOT, RULES, start_fake  # the same fake model and rules as the batch bench


def timed(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="agentdeck-bench-experiment-"))
    (work / "root").mkdir()
    for i in range(10):
        (work / "root" / f"note{i}.txt").write_text(f"note {i}: remember the milk\n")
    (work / "rules.yaml").write_text(RULES)
    fake, base_url = start_fake(work / "rules.yaml", args.latency)
    try:
        server_args = ["-m", "servers.filesystem", "--root", str(work / "root")]
        (work / "agents.yaml").write_text(
            f"providers:\n  fake: {{kind: openai_compatible, base_url: '{base_url}', api_key: bench}}\n"
            f"servers:\n  fs: {{transport: stdio, command: {sys.executable}, args: {server_args!r}, cwd: {ROOT},"
            " cache_tools: true}\n"
            "agents:\n  main: {provider: fake, model: gpt-5.6-luna, servers: [fs]}\n"
        )
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
        timed(batch, work)  # warm-up: imports, page cache
        pairs = []
        for _ in range(args.pairs):
            e, b = timed(experiment, work), timed(batch, work)
            pairs.append((e, b))
    finally:
        fake.terminate()
        fake.wait()
    ratios = [e / b for e, b in pairs]
    rows = 2 * args.questions
    print(f"experiment vs batch: {rows} rows (2 variants x {args.questions} questions), concurrency "
          f"{args.concurrency}, model latency {args.latency * 1000:.0f} ms, {args.pairs} pairs")  # fmt: skip
    print(f"  experiment whole process: median {statistics.median(e for e, _ in pairs):.2f} s")
    print(f"  batch whole process:      median {statistics.median(b for _, b in pairs):.2f} s")
    print(
        f"  overhead ratio experiment / batch: median {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}; target <= 1.05)"
    )


if __name__ == "__main__":
    main()
