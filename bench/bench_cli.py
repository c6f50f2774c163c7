"""Start-up of the commands people type most, as whole processes, printed as ratios measured in one run.

(a) `agentdeck tools call` vs a raw `mcp` client script making the same call on the same stdio
    server (target <= 1.5x);
(b) `agentdeck tools list --server` vs a raw script listing the same server's tools;
(c) `agentdeck config validate` vs `python -c pass`.

Runs are interleaved so drift hits both sides alike. Run: .venv/bin/python bench/bench_cli.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RAW_CLIENT = """
import asyncio, sys
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

async def main():
    params = StdioServerParameters(command=sys.executable, args=["-m", "servers.filesystem", "--root", sys.argv[2]],
                                   cwd=sys.argv[3])
    async with Client(stdio_client(params), cache=None) as client:
        if sys.argv[1] == "call":
            result = await client.call_tool("read_text_file", {"path": "data.txt"})
            print(result.content[0].text)
        else:
            print(len((await client.list_tools()).tools))

asyncio.run(main())
"""


def wall(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def compare(ours: list[str], theirs: list[str], cwd: Path, runs: int) -> tuple[float, float, float]:
    """Median wall times of two commands run alternately, and their ratio."""
    wall(ours, cwd), wall(theirs, cwd)  # warm the page cache and bytecode
    a, b = [], []
    for _ in range(runs):
        a.append(wall(ours, cwd))
        b.append(wall(theirs, cwd))
    ma, mb = statistics.median(a), statistics.median(b)
    return ma / mb, ma * 1000, mb * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10, help="process launches per side")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="agentdeck-bench-cli-"))
    (work / "data.txt").write_text("hello\n" * 50)
    (work / "raw.py").write_text(RAW_CLIENT)
    fs_args = ["-m", "servers.filesystem", "--root", str(work)]
    (work / "agents.yaml").write_text(
        f"servers:\n  fs: {{transport: stdio, command: {sys.executable}, args: {fs_args!r}, cwd: {ROOT}}}\n"
        "agents:\n  main: {servers: [fs]}\n"
    )
    py = sys.executable
    agentdeck = [py, "-m", "app", "--config", str(work / "agents.yaml")]
    raw = [py, str(work / "raw.py")]
    env_cwd = ROOT  # `python -m app` and the raw script both import from the checkout

    ratio, ours, theirs = compare(
        [*agentdeck[:3], "tools", "call", "fs", "read_text_file", "--args", '{"path": "data.txt"}', *agentdeck[3:]],
        [*raw, "call", str(work), str(ROOT)],
        env_cwd,
        args.runs,
    )
    print(f"(a) tools call / raw mcp client: {ratio:.2f}x  (median {ours:.0f} ms vs {theirs:.0f} ms; target <= 1.5x)")
    ratio, ours, theirs = compare(
        [*agentdeck[:3], "tools", "list", "--server", "fs", *agentdeck[3:]],
        [*raw, "list", str(work), str(ROOT)],
        env_cwd,
        args.runs,
    )
    print(f"(b) tools list --server / raw mcp client: {ratio:.2f}x  (median {ours:.0f} ms vs {theirs:.0f} ms)")
    ratio, ours, theirs = compare(
        [*agentdeck[:3], "config", "validate", *agentdeck[3:]], [py, "-c", "pass"], env_cwd, args.runs
    )
    print(f"(c) config validate / python -c pass: {ratio:.2f}x  (median {ours:.0f} ms vs {theirs:.0f} ms)")


if __name__ == "__main__":
    main()
