"""What the gateway adds: per-call latency through it vs a direct connection to the same upstream, and throughput.

The upstream is the bundled filesystem server over streamable HTTP on loopback. The direct side is an
`mcp` client calling it; the gateway side is the same client calling `agentdeck gateway serve`,
which holds its own session to that server. Calls alternate between the two sides so drift hits
both alike. Targets (issue #16): p50 through the gateway <= 1.3x direct and <= 2 ms added.

It also measures the floor any Python HTTP gateway starts from: a bare pass-through (uvicorn in,
httpx out, no auth, no JSON-RPC parsing) between the same client and upstream.

Run: .venv/bin/python bench/bench_gateway.py [--calls N] [--clients N] [--per-client N]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} never answered")


def session(stack: AsyncExitStack, url: str, token: str | None) -> Any:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def open_() -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        http = await stack.enter_async_context(httpx2.AsyncClient(headers=headers))
        return await stack.enter_async_context(Client(streamable_http_client(url, http_client=http), cache=None))

    return open_()


async def timed(client: Any, tool: str) -> float:
    started = time.perf_counter()
    result = await client.call_tool(tool, {"path": "data.txt"})
    assert not result.is_error, result
    return time.perf_counter() - started


async def alternate(
    direct_url: str, via_url: str, via_token: str | None, via_tool: str, calls: int
) -> tuple[float, float]:
    """p50 seconds per call (direct, via) over `calls` calls alternating between the two sides."""
    async with AsyncExitStack() as stack:
        direct = await session(stack, direct_url, None)
        via = await session(stack, via_url, via_token)
        for _ in range(50):  # warm both paths
            await timed(direct, "read_text_file")
            await timed(via, via_tool)
        d_times, v_times = [], []
        for _ in range(calls):
            d_times.append(await timed(direct, "read_text_file"))
            v_times.append(await timed(via, via_tool))
    return statistics.median(d_times), statistics.median(v_times)


async def measure(direct_url: str, gateway_url: str, floor_url: str, calls: int, clients: int, per_client: int) -> None:
    d50, g50 = await alternate(direct_url, gateway_url, TOKEN, "files__read_text_file", calls)
    print(
        f"per call, {calls} each, alternating (p50): direct {d50 * 1000:.2f} ms, through the gateway {g50 * 1000:.2f} ms"
    )
    print(f"  ratio {g50 / d50:.2f}x (target <= 1.3x); added {(g50 - d50) * 1000:.2f} ms (target <= 2 ms)")
    d50, f50 = await alternate(direct_url, floor_url, None, "read_text_file", calls)
    print(
        f"floor: direct {d50 * 1000:.2f} ms, through a bare uvicorn+httpx pass-through {f50 * 1000:.2f} ms: "
        f"ratio {f50 / d50:.2f}x, added {(f50 - d50) * 1000:.2f} ms"
    )

    async def worker() -> int:
        async with AsyncExitStack() as stack:
            client = await session(stack, gateway_url, TOKEN)
            for _ in range(per_client):
                await timed(client, "files__read_text_file")
        return per_client

    started = time.perf_counter()
    done = sum(await asyncio.gather(*(worker() for _ in range(clients))))
    took = time.perf_counter() - started
    print(f"throughput: {clients} clients x {per_client} calls through the gateway: {done / took:.0f} calls/s")


def passthrough(upstream: str, port: int) -> None:
    """Serve the thinnest HTTP relay Python's usual stack allows: every request copied to `upstream`."""
    import httpx2
    import uvicorn

    client = httpx2.AsyncClient(timeout=None)
    hop = {b"host", b"content-length", b"connection", b"transfer-encoding"}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k not in hop]
        request = client.build_request(scope["method"], upstream, headers=headers, content=body)
        response = await client.send(request, stream=True)
        out = [(k.encode(), v.encode()) for k, v in response.headers.items() if k.encode() not in hop]
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await response.aclose()
        await send({"type": "http.response.body", "body": b""})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


def main() -> None:
    if sys.argv[1:2] == ["--passthrough"]:
        passthrough(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-client", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "files").mkdir()
        (folder / "files" / "data.txt").write_text("x" * 200)
        fs_port, gw_port, floor_port = free_port(), free_port(), free_port()
        fs = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "filesystem", "--root", str(folder / "files"), "--transport", "http",
             "--port", str(fs_port)], cwd=ROOT, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        digest = hashlib.sha256(TOKEN.encode()).hexdigest()
        (folder / "agents.yaml").write_text(
            f"servers:\n  files: {{transport: streamable_http, url: 'http://127.0.0.1:{fs_port}/mcp'}}\n"
            "agents:\n  main: {servers: [files]}\n"
            f"gateway:\n  servers: [files]\n  port: {gw_port}\n  profiles: {{all: {{}}}}\n"
            f"  identities: {{bench: {{token_sha256: {digest}, profiles: [all]}}}}\n"
        )
        fs_url = f"http://127.0.0.1:{fs_port}/mcp"
        floor = subprocess.Popen([sys.executable, __file__, "--passthrough", fs_url, str(floor_port)])
        gw = None
        try:
            wait_up(fs_url, fs)
            wait_up(f"http://127.0.0.1:{floor_port}/mcp", floor)
            gw = subprocess.Popen(
                [sys.executable, "-m", "app", "gateway", "serve"], cwd=folder, stderr=subprocess.DEVNULL,
                env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
            )  # fmt: skip
            wait_up(f"http://127.0.0.1:{gw_port}/healthz", gw)
            asyncio.run(
                measure(fs_url, f"http://127.0.0.1:{gw_port}/mcp/all", f"http://127.0.0.1:{floor_port}/mcp",
                        args.calls, args.clients, args.per_client)
            )  # fmt: skip
        finally:
            for proc in (gw, floor, fs):
                if proc is not None:
                    proc.terminate()
                    proc.wait(10)


if __name__ == "__main__":
    main()
