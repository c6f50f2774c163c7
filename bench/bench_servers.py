"""Bundled-server benchmarks, printed as numbers and ratios measured in one run.

(a) search_customers latency p50/p95 over a database of N customers (default 1,000,000; target p50 <= 5 ms),
    called through an MCP client session on the in-process server (the client's JSON-Schema validation
    of structured results is included), and the tool body alone;
(b) search_files over a generated tree of F files as a ratio to `find -name` on the same tree (target <= 2x).

Run: .venv/bin/python bench/bench_servers.py [--customers N] [--files F]
The database is cached in bench/.cache/ (seeding 1,000,000 customers takes a few minutes once).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUERIES = ["Ada", "lovelace", "Grace Hopper", "Acme", "Globex Labs", "torv", "Linus", "Initech", "Mei Wong", "Hooli Media",
           "Okafor", "Priya", "Stark Industries", "nakamura", "Zara", "Felix Fischer", "Umbrella", "Contoso", "Diego", "Soylent"]  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def search_latency(customers: int, rounds: int) -> tuple[float, float, int]:
    from mcp import Client

    from servers.customers.db import ensure_database
    from servers.customers.server import build_server

    cache = ROOT / "bench" / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"customers-{customers}.db"
    if not path.exists():
        started = time.perf_counter()
        ensure_database(path, customers)
        print(f"    seeded {customers:,} customers in {time.perf_counter() - started:.0f} s", flush=True)
    times = []
    server = build_server(path)
    tool = server._tool_manager.get_tool("search_customers").fn  # the tool body, without the MCP round trip
    direct = []
    for _ in range(rounds):
        for q in QUERIES:
            t = time.perf_counter()
            tool(query=q, limit=10)
            direct.append(time.perf_counter() - t)
    print(
        f"    tool body alone: p50 {percentile(direct, 0.5) * 1000:.2f} ms, p95 {percentile(direct, 0.95) * 1000:.2f} ms",
        flush=True,
    )
    async with Client(server) as client:
        for q in QUERIES:  # warm the page cache
            await client.call_tool("search_customers", {"query": q})
        for _ in range(rounds):
            for q in QUERIES:
                t = time.perf_counter()
                result = await client.call_tool("search_customers", {"query": q, "limit": 10})
                times.append(time.perf_counter() - t)
                assert not result.is_error
    return percentile(times, 0.5) * 1000, percentile(times, 0.95) * 1000, len(times)


def make_tree(root: Path, files: int) -> None:
    per_dir = 100
    for i in range(files):
        d = root / f"d{i // (per_dir * 10):03d}" / f"s{(i // per_dir) % 10}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / (f"f{i}.txt" if i % 3 else f"f{i}.log")).touch()


async def search_files_ratio(files: int, runs: int) -> tuple[float, float, float, int]:
    from mcp import Client

    from servers.filesystem.paths import make_roots
    from servers.filesystem.server import Limits, build_server

    work = Path(tempfile.mkdtemp(prefix="agentdeck-tree-"))
    try:
        make_tree(work, files)
        server = build_server(make_roots([str(work)]), Limits(max_entries=files * 2))
        ours, theirs = [], []
        matches = 0
        async with Client(server) as client:
            for _ in range(runs):
                t = time.perf_counter()
                result = await client.call_tool("search_files", {"path": str(work), "pattern": "**/*.log"})
                ours.append(time.perf_counter() - t)
                matches = len(result.content[0].text.splitlines())
                t = time.perf_counter()
                found = subprocess.run(
                    ["find", str(work), "-name", "*.log"], capture_output=True, text=True, check=True
                )
                theirs.append(time.perf_counter() - t)
        assert matches == len(found.stdout.splitlines()), (matches, len(found.stdout.splitlines()))
        a, b = statistics.median(ours), statistics.median(theirs)
        return a / b, a * 1000, b * 1000, matches
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    p50, p95, n = asyncio.run(search_latency(args.customers, args.rounds))
    print(
        f"(a) search_customers over {args.customers:,} customers: p50 {p50:.2f} ms, p95 {p95:.2f} ms ({n} calls; target p50 <= 5 ms)"
    )
    ratio, ours, theirs, matches = asyncio.run(search_files_ratio(args.files, args.runs))
    print(
        f"(b) search_files / find -name over {args.files:,} files: {ratio:.2f}x  (median {ours:.0f} ms vs {theirs:.0f} ms, {matches:,} matches; target <= 2x)"
    )


if __name__ == "__main__":
    main()
