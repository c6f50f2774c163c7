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
The box is shared and its speed drifts between runs, so each pair is run --rounds times, alternating,
and the median ratio is the result (every round is printed). With Ray, the CPU one empty actor call
costs the driver and the actor is measured too: it is paid once per row on top of a worker's work.

Each run also samples /proc/stat: how many cores the whole machine keeps busy in the middle of the
rows phase (every process: the batch, its workers and MCP servers, the fake model, Ray's own). With
one worker that is already well over one core; with two, both cores are busy. So each pair also prints
its bound at equal CPU per row: the cores / the cores busy with one worker, which is how much faster two
workers can go if a row costs them the same CPU as it costs one. The fake model, the MCP servers, the
driver and Ray's daemons share the same cores, so the more of them they take, the lower the bound. Two
workers can beat it only by spending less CPU per row (each event loop holds half the rows in flight).

Run: .venv/bin/python bench/bench_executors.py [--rows 1000] [--in-flight 64] [--rounds 3] [--skip-ray]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_batch import batch_run, start_fake, workspace  # noqa: E402

CORES = os.cpu_count() or 1


def cpu_times() -> tuple[float, float]:
    """The machine's busy and total CPU time so far, in clock ticks summed over its CPUs (/proc/stat)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return sum(fields) - fields[3] - fields[4], sum(fields)  # idle and iowait are not busy


def run(work: Path, url: str, rows: int, in_flight: int, executor: str, workers: int = 1) -> dict[str, Any]:
    """One batch on `executor`, `in_flight` rows at once in total; its --summary, with `busy_cores`.

    busy_cores: how many of the machine's cores were busy in the middle of the rows phase (every
    process: the batch, its workers and servers, the fake model, Ray's own).
    """
    extra = ("--executor", executor) + (("--workers", str(workers)) if executor != "local" else ())
    width = in_flight if executor == "local" else max(in_flight // workers, 1)
    samples: list[tuple[float, float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            samples.append((time.perf_counter(), *cpu_times()))

    sampler = threading.Thread(target=sample, daemon=True)
    launched = time.perf_counter()
    sampler.start()
    try:
        summary = batch_run(work, url, rows, width, extra)
    finally:
        done.set()
        sampler.join()
    assert summary["by_status"]["ok"] == rows, f"not every row succeeded: {summary['by_status']}"
    begins = launched + summary["startup_s"]
    window = [s for s in samples if begins + 0.2 * summary["rows_s"] <= s[0] <= begins + 0.8 * summary["rows_s"]]
    if len(window) >= 2:
        (_, busy0, total0), (_, busy1, total1) = window[0], window[-1]
        summary["busy_cores"] = (busy1 - busy0) / (total1 - total0) * CORES
    return summary


def line(label: str, s: dict[str, Any]) -> str:
    busy = f", {s['busy_cores']:.2f} of {CORES} cores busy" if "busy_cores" in s else ""
    return (f"  {label:<22} {s['rows_per_s']:7.1f} rows/s (rows {s['rows_s']:.1f} s{busy}, start-up {s['startup_s']:.1f} s, "
            f"whole process {s['process_s']:.1f} s)")  # fmt: skip


def rounds(count: int, first: Any, second: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], float]:
    """Both batches `count` times, alternating; their summaries and the median of second / first."""
    a, b = [], []
    for _ in range(count):
        a.append(first())
        b.append(second())
    ratios = [y["rows_per_s"] / x["rows_per_s"] for x, y in zip(a, b, strict=True)]
    return a, b, statistics.median(ratios)


def pair(label_a: str, label_b: str, a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    for i, (x, y) in enumerate(zip(a, b, strict=True), 1):
        print(f"  round {i}: {y['rows_per_s'] / x['rows_per_s']:.2f}x")
        print(line(label_a, x))
        print(line(label_b, y))


def bound(single: list[dict[str, Any]]) -> str:
    """The pair's bound at equal CPU per row, from the median cores the one-worker runs kept busy."""
    measured = [s["busy_cores"] for s in single if "busy_cores" in s]
    if not measured:
        return "bound unknown: the rows phase was too short to sample"
    busy = statistics.median(measured)
    return f"at equal CPU per row at most {CORES / busy:.2f}x: {CORES} cores / {busy:.2f} busy with one"


def ray_call_cost(calls: int = 2000) -> tuple[float, float]:
    """CPU milliseconds one near-empty async actor call costs the driver and the actor (a row's size)."""
    import asyncio
    import time

    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:

        @ray.remote(num_cpus=1, max_concurrency=40)
        class Echo:
            async def run(self, row: dict[str, Any]) -> dict[str, Any]:
                await asyncio.sleep(0.02)
                return {"result": {"id": row["id"], "status": "ok", "output": "x" * 200}, "cpu": time.process_time()}

            def cpu(self) -> float:
                return time.process_time()

        async def measure() -> tuple[float, float]:
            actor = Echo.remote()  # type: ignore[attr-defined]
            await actor.run.remote({"id": "warm"})
            before, driver = await actor.cpu.remote(), time.process_time()
            gate = asyncio.Semaphore(32)

            async def one(i: int) -> None:
                async with gate:
                    await actor.run.remote({"id": str(i), "input": "read note1.txt", "line": i})

            await asyncio.gather(*(one(i) for i in range(calls)))
            actor_s, driver_s = await actor.cpu.remote() - before, time.process_time() - driver
            return actor_s / calls * 1000, driver_s / calls * 1000

        return asyncio.run(measure())
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each pair; the median ratio counts")
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    work, rules = workspace("executors")
    n, width = args.rows, args.in_flight

    fake, url = start_fake(rules, 0.1)
    try:
        local, procs, a = rounds(args.rounds, lambda: run(work, url, n, width, "local"),
                                 lambda: run(work, url, n, width, "processes", 2))  # fmt: skip
        ray_result = None
        if not args.skip_ray:
            ray_result = rounds(args.rounds, lambda: run(work, url, n, width, "ray", 1),
                                lambda: run(work, url, n, width, "ray", 2))  # fmt: skip
    finally:
        fake.terminate()
        fake.wait()
    slow_fake, slow_url = start_fake(rules, 0.5)
    try:
        slow_local = run(work, slow_url, n, width, "local")
        slow_procs = run(work, slow_url, n, width, "processes", 2)
    finally:
        slow_fake.terminate()
        slow_fake.wait()

    print(f"{n} rows, {width} in flight, fake model at 100 ms (two requests per row), {args.rounds} rounds")
    pair("local", "processes, 2 workers", local, procs)
    for w in procs[-1]["workers"]:
        print(f"    {w['name']}: {w['rows']} rows, cpu {w['cpu_s']:.1f} s, peak {w['peak_rss_mb']} MiB")
    print(f"(a) processes / local, median of {args.rounds}: {a:.2f}x (target >= 1.5x; {bound(local)})")
    if ray_result is not None:
        ray1, ray2, b = ray_result
        pair("ray, 1 actor", "ray, 2 actors", ray1, ray2)
        print(f"(b) ray 2 actors / 1 actor, median of {args.rounds}: {b:.2f}x (target >= 1.5x; {bound(ray1)})")
        starts = ", ".join(f"{x['startup_s']:.1f}/{y['startup_s']:.1f}" for x, y in zip(ray1, ray2, strict=True))
        print(f"    Ray start-up (cluster and actors ready), 1 actor/2 actors: {starts} s")
        for w in ray2[-1]["workers"]:
            print(f"    actor {w['name']}: {w['rows']} rows, cpu {w['cpu_s']:.1f} s, peak {w['peak_rss_mb']} MiB")
        actor_ms, driver_ms = ray_call_cost()
        worker_ms = 1000 * sum(w["cpu_s"] for w in procs[-1]["workers"]) / n
        actor_row_ms = 1000 * sum(w["cpu_s"] for w in ray2[-1]["workers"]) / n
        print(f"    CPU per row with 2 each (start-up included): actor {actor_row_ms:.1f} ms, worker process {worker_ms:.1f} ms; "
              f"one empty Ray actor call: {actor_ms:.2f} ms in the actor + {driver_ms:.2f} ms in the driver")  # fmt: skip
    print(f"at 500 ms: local {slow_local['rows_per_s']:.1f} rows/s, processes {slow_procs['rows_per_s']:.1f} rows/s")
    print(f"(c) processes / local at 500 ms: {slow_procs['rows_per_s'] / slow_local['rows_per_s']:.2f}x "
          "(target >= 0.95x)")  # fmt: skip


if __name__ == "__main__":
    main()
