"""Batch throughput, printed as ratios measured in one run.

200 queries, each one tool call (two model turns), against `agentdeck fake-openai --latency 0.1`
(real openai client, real HTTP) and the bundled filesystem server over stdio, concurrency 32:

(a) throughput as a fraction of the ideal, concurrency / per-query latency, where a query's latency
    is its two model calls (target >= 0.85);
(b) throughput as a multiple of a plain sequential Agents SDK loop that starts the MCP server for
    each query (target >= 15x; the loop is timed on --sequential queries and its mean is used);
(c) tools/list requests per server during the batch (cached: 1 each).

It also prints the batch process's CPU time per query: one event loop runs every agent loop, so
1 / (CPU per query) caps throughput however high the concurrency; and the same batch with a slower
model (--slow-latency), where the model rather than the CPU is the limit.

Run: .venv/bin/python bench/bench_batch.py [--queries 200] [--concurrency 32] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RULES = """
rules:
  - when: {user: 'read (?P<path>\\S+)'}
    call: [{tool: read_text_file, args: {path: "{path}"}}]
    reply: "The file says: {output}"
"""


def workspace(name: str) -> tuple[Path, Path]:
    """A fresh folder with ten notes under root/ and the fake model's rules; the folder and the rules file."""
    work = Path(tempfile.mkdtemp(prefix=f"agentdeck-bench-{name}-"))
    (work / "root").mkdir()
    for i in range(10):
        (work / "root" / f"note{i}.txt").write_text(f"note {i}: remember the milk\n")
    rules = work / "rules.yaml"
    rules.write_text(RULES)
    return work, rules


def start_fake(rules: Path, latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "fake-openai", "--rules", str(rules), "--latency", str(latency)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def write_config(work: Path, base_url: str, model: str = "bench-model") -> None:
    """agents.yaml: the fake model, and the filesystem server over stdio with a cached tool list."""
    server_args = ["-m", "servers.filesystem", "--root", str(work / "root")]
    (work / "agents.yaml").write_text(
        f"providers:\n  fake: {{kind: openai_compatible, base_url: '{base_url}', api_key: bench}}\n"
        f"servers:\n  fs: {{transport: stdio, command: {sys.executable}, args: {server_args!r}, cwd: {ROOT},"
        " cache_tools: true}\n"
        f"agents:\n  main: {{provider: fake, model: {model}, servers: [fs]}}\n"
    )


def batch_run(work: Path, base_url: str, queries: int, concurrency: int, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """One batch of `queries` reads as a whole process (`extra`: more flags); its --summary."""
    write_config(work, base_url)
    (work / "q.txt").write_text("".join(f"read note{i % 10}.txt\n" for i in range(queries)))
    cmd = [sys.executable, "-m", "app", "batch", "q.txt", "-o", "out.jsonl", "--overwrite"]
    cmd += ["--concurrency", str(concurrency), "--summary", "summary.json", *extra]
    started = time.perf_counter()
    subprocess.run(cmd, cwd=work, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    summary = json.loads((work / "summary.json").read_text())
    summary["process_s"] = time.perf_counter() - started
    return summary


async def sequential_seconds_per_query(work: Path, base_url: str, n: int) -> float:
    """The plain loop a user would write first: a fresh MCP server and agent for every query."""
    from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
    from agents.mcp import MCPServerStdio
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=base_url, api_key="bench")
    params = {"command": sys.executable, "args": ["-m", "servers.filesystem", "--root", str(work / "root")],
              "cwd": str(ROOT)}  # fmt: skip
    started = time.perf_counter()
    for i in range(n):
        async with MCPServerStdio(params=params, name="fs") as server:  # type: ignore[arg-type]
            agent = Agent(
                name="main",
                model=OpenAIChatCompletionsModel(model="bench-model", openai_client=client),
                mcp_servers=[server],
            )
            result = await Runner.run(agent, f"read note{i % 10}.txt")
            assert str(result.final_output).startswith("The file says")
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per model call at the fake server")
    parser.add_argument("--sequential", type=int, default=20, help="queries timed for the sequential loop")
    parser.add_argument("--slow-latency", type=float, default=0.5, help="model latency of the second batch")
    args = parser.parse_args()

    work, rules = workspace("batch")
    fake, base_url = start_fake(rules, args.latency)
    try:
        summary = batch_run(work, base_url, args.queries, args.concurrency)
        seq = asyncio.run(sequential_seconds_per_query(work, base_url, args.sequential))
    finally:
        fake.terminate()
        fake.wait()
    slow_fake, slow_url = start_fake(rules, args.slow_latency)
    try:
        slow = batch_run(work, slow_url, args.queries, args.concurrency)
    finally:
        slow_fake.terminate()
        slow_fake.wait()

    by_status = summary["by_status"]
    assert isinstance(by_status, dict) and by_status["ok"] == args.queries, f"not every query succeeded: {by_status}"
    throughput = float(summary["rows_per_s"])  # type: ignore[arg-type]
    ideal = args.concurrency / (2 * args.latency)
    print(f"batch: {args.queries} queries, concurrency {args.concurrency}, model latency {args.latency * 1000:.0f} ms")
    print(
        f"(a) throughput / ideal: {throughput / ideal:.2f}  ({throughput:.1f} vs {ideal:.1f} queries/s; "
        f"rows phase {summary['rows_s']} s, whole process {summary['process_s']:.2f} s; target >= 0.85)"
    )
    print(
        f"(b) batch / sequential loop with a server per query: {throughput * seq:.1f}x  "
        f"({seq * 1000:.0f} ms per sequential query over {args.sequential}; target >= 15x)"
    )
    print(f"(c) tools/list requests per server during the batch: {summary['tools_list_fetches']}")
    cpu_ms = float(summary["cpu_s"]) / args.queries * 1000  # type: ignore[arg-type]
    print(
        f"    batch process CPU per query: {cpu_ms:.1f} ms -> at most {1000 / cpu_ms:.0f} queries/s on its one event "
        f"loop ({1000 / cpu_ms / ideal:.2f} of the ideal)"
    )
    slow_ideal = args.concurrency / (2 * args.slow_latency)
    slow_rate = float(slow["rows_per_s"])  # type: ignore[arg-type]
    print(
        f"    with {args.slow_latency * 1000:.0f} ms model latency: throughput / ideal {slow_rate / slow_ideal:.2f} "
        f"({slow_rate:.1f} vs {slow_ideal:.1f} queries/s)"
    )


if __name__ == "__main__":
    main()
