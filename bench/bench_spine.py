"""Spine benchmarks, printed as ratios measured in one run.

(a) one tool call through agentdeck's built server vs a raw `mcp` client session on the same
    stdio server (target <= 1.10x);
(b) `agentdeck --help` wall time vs `python -c pass`.

Run: .venv/bin/python bench/bench_spine.py [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


async def per_call_seconds(call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        out.append(time.perf_counter() - t)
    return out


async def tool_call_ratio(n: int, rounds: int) -> tuple[float, float, float]:
    from app.config import load_config
    from app.deck import Deck, DeckOptions

    work = Path(tempfile.mkdtemp(prefix="agentdeck-bench-"))
    (work / "data.txt").write_text("hello\n" * 50)
    args = ["-m", "servers.filesystem", "--root", str(work)]
    (work / "agents.yaml").write_text(
        f"servers:\n  fs: {{transport: stdio, command: {sys.executable}, args: {args!r}, cwd: {ROOT}}}\n"
        "agents:\n  main: {servers: [fs]}\n"
    )
    loaded = load_config(work / "agents.yaml", {})
    call_args = {"path": "data.txt"}
    deck_times: list[float] = []
    raw_times: list[float] = []
    async with Deck(loaded, DeckOptions(servers=["fs"], apply_filters=False)) as deck:
        server = deck.servers["fs"]
        # The raw side is the mcp ClientSession under the same connection: same process, same pipe,
        # so the ratio is exactly what agentdeck and the Agents SDK add to a call.
        session = server.session

        def via_deck():
            return server.call_tool("read_text_file", call_args)

        def raw():
            return session.call_tool("read_text_file", call_args)

        for call in (via_deck, raw):
            await per_call_seconds(call, 20)  # warm up both paths
        for _ in range(rounds):  # interleave so drift hits both sides equally
            deck_times += await per_call_seconds(via_deck, n)
            raw_times += await per_call_seconds(raw, n)
    d, r = statistics.median(deck_times), statistics.median(raw_times)
    return d / r, d * 1000, r * 1000


def wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100, help="calls per round per side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10, help="process launches per side for --help")
    args = parser.parse_args()
    ratio, deck_ms, raw_ms = asyncio.run(tool_call_ratio(args.calls, args.rounds))
    print(
        f"(a) tool call via agentdeck / raw mcp session: {ratio:.3f}x  (median {deck_ms:.2f} ms vs {raw_ms:.2f} ms; target <= 1.10x)"
    )
    agentdeck = wall([sys.executable, "-m", "app", "--help"], args.runs)
    bare = wall([sys.executable, "-c", "pass"], args.runs)
    print(
        f"(b) agentdeck --help / python -c pass: {agentdeck / bare:.2f}x  (median {agentdeck * 1000:.0f} ms vs {bare * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
