"""A bundled server's CPU per request over stdio: agentdeck's pipe transport vs the SDK's threaded one.

The filesystem server answers read_text_file for a client over real stdio pipes, started two ways:
as `python -m servers.filesystem` (pipes served from the event loop, servers/stdio_pipes.py) and the
same server through the SDK's `MCPServer.run()` (stdin/stdout read and written on worker threads).
Measured from /proc as the server process's CPU time per call, in two patterns:

- spaced: one call at a time with a pause between, as a server sees a batch row's single tool call;
- back to back: --concurrency calls in flight, as fast as the server answers.

Run: .venv/bin/python bench/bench_stdio.py [--calls 600] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SDK_RUN = "import sys; from servers.filesystem.paths import make_roots; from servers.filesystem.server import build_server; build_server(make_roots([sys.argv[1]], [])).run()"  # fmt: skip


async def per_call_ms(args: list[str], root: Path, calls: int, concurrency: int, pause: float) -> float:
    """Server CPU milliseconds per read_text_file call."""
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    from app.executors.children import descendants
    from app.startup import cpu_ticks

    def cpu_seconds(pid: int) -> float:
        ticks = cpu_ticks(pid)
        assert ticks is not None, "the server is gone"
        return ticks / os.sysconf("SC_CLK_TCK")

    params = StdioServerParameters(command=sys.executable, args=args, cwd=str(ROOT), env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.call_tool("read_text_file", {"path": "note.txt"})  # warm: imports and first-call paths
        (pid, _), *_ = descendants(os.getpid())  # the server is this process's only child
        before = cpu_seconds(pid)
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                if pause:
                    await asyncio.sleep(pause)
                result = await session.call_tool("read_text_file", {"path": "note.txt"})
                assert not result.is_error, result

        await asyncio.gather(*(one() for _ in range(calls)))
        return (cpu_seconds(pid) - before) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pause", type=float, default=0.015, help="seconds between spaced calls")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="agentdeck-bench-stdio-"))
    (root / "note.txt").write_text("remember the milk\n")
    ways = {
        "pipes on the loop": ["-m", "servers.filesystem", "--root", str(root)],
        "SDK threads": ["-c", SDK_RUN, str(root)],
    }
    print(f"filesystem server, read_text_file, {args.calls} calls per pattern; server CPU per call")
    for pattern, concurrency, pause in (("spaced", 1, args.pause), ("back to back", args.concurrency, 0.0)):
        ms = {way: asyncio.run(per_call_ms(argv, root, args.calls, concurrency, pause)) for way, argv in ways.items()}
        pipes, threads = ms["pipes on the loop"], ms["SDK threads"]
        print(f"  {pattern:<13} pipes {pipes:.2f} ms, SDK threads {threads:.2f} ms: "
              f"pipes take {pipes / threads:.2f}x the CPU")  # fmt: skip


if __name__ == "__main__":
    main()
