"""Sessions that recover: servers that restart, drop or exit are reconnected on the next call."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from app.config.loader import load_config
from app.deck import Deck
from app.recovery import Recovery, never_delivered
from tests.conftest import PY, TOY, clean_env, free_port, run_cli, wait_for_port


class Toy:
    """The toy server over HTTP on a fixed port, so it can be killed and started again at the same URL."""

    def __init__(self, transport: str, tmp_path: Path) -> None:
        self.transport = transport
        self.port = free_port()
        self.pids = tmp_path / f"toy-{self.port}.pids"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}" + ("/sse" if transport == "sse" else "/mcp")

    def start(self) -> None:
        args = [PY, str(TOY), self.transport, "--port", str(self.port), "--pid-file", str(self.pids)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def starts(self) -> int:
        return len(self.pids.read_text().split()) if self.pids.exists() else 0


@pytest.fixture
def toy_server(tmp_path):
    made: list[Toy] = []

    def make(transport: str) -> Toy:
        toy = Toy(transport, tmp_path)
        made.append(toy)
        toy.start()
        return toy

    yield make
    for toy in made:
        if toy.proc is not None and toy.proc.poll() is None:
            toy.kill()


def config(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(
        f"providers:\n  offline: {{kind: offline}}\nservers:\n  toy: {server}\nagents:\n  main: {{servers: [toy]}}\n"
    )
    return path


async def add(server, a: int, b: int) -> str:
    result = await server.call_tool("add", {"a": a, "b": b})
    return str(result.content[0].text)


async def until_down(server, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while server.down is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_an_http_server_that_restarts_is_reconnected_on_the_next_call(transport, toy_server, tmp_path):
    toy = toy_server(transport)
    kind = "sse" if transport == "sse" else "streamable_http"
    path = config(tmp_path, f"{{transport: {kind}, url: '{toy.url}', cache_tools: true}}")
    async with Deck(load_config(path, {})) as deck:
        server = deck.servers["toy"]
        assert await add(server, 1, 2) == "3"
        toy.kill()
        # While it is away a call fails with a message that says it will come back by itself.
        with pytest.raises(Exception):  # noqa: B017 - the SDK's own error type; the text is what matters
            await add(server, 2, 2)
        assert "is down" in server.last_error and "reconnects it on the next call" in server.last_error
        await asyncio.to_thread(toy.start)
        assert await add(server, 3, 4) == "7"
        assert server.down is None
        # A restarted server may offer other tools: the cached list was dropped.
        assert server.cache_generation() is None
    assert toy.starts() == 2


async def test_stdio_server_is_restarted_only_with_restart_on_failure(tmp_path):
    pids = tmp_path / "pids"
    toy = f"{{transport: stdio, command: {PY}, args: ['{TOY}', '--pid-file', '{pids}'], restart: on_failure}}"
    async with Deck(load_config(config(tmp_path, toy), {})) as deck:
        server = deck.servers["toy"]
        assert await add(server, 1, 1) == "2"
        os.kill(int(pids.read_text().split()[-1]), signal.SIGKILL)
        await until_down(server)
        assert server.down is not None and "its process exited" in server.down
        assert await add(server, 20, 22) == "42"
        assert server.recovery.reconnects == 1
    assert len(pids.read_text().split()) == 2

    pids.unlink()
    async with Deck(load_config(config(tmp_path, toy.replace("on_failure", "never")), {})) as deck:
        server = deck.servers["toy"]
        os.kill(int(pids.read_text().split()[-1]), signal.SIGKILL)
        await until_down(server)
        with pytest.raises(Exception):  # noqa: B017
            await add(server, 1, 1)
        assert "/reconnect toy" in server.last_error
    assert len(pids.read_text().split()) == 1


async def test_a_server_that_stays_away_fails_fast_within_the_backoff(toy_server, tmp_path):
    toy = toy_server("http")
    path = config(tmp_path, f"{{transport: streamable_http, url: '{toy.url}', start_timeout: 1}}")
    async with Deck(load_config(path, {})) as deck:
        server = deck.servers["toy"]
        assert await add(server, 1, 2) == "3"
        toy.kill()
        attempts = 0
        reconnect = server._deck_reconnect

        async def counted() -> None:
            nonlocal attempts
            attempts += 1
            await reconnect()

        server._deck_reconnect = counted
        failures = []
        for _ in range(4):
            with pytest.raises(Exception):  # noqa: B017
                await add(server, 1, 1)
            failures.append(server.last_error)
        assert "reconnecting failed" in failures[-1] and "Could not reach" in failures[-1]
        # The first call tried (with backoff) for start_timeout; the next ones failed at once.
        assert 2 <= attempts <= 4 and server.recovery.reconnects == 0
        await asyncio.to_thread(toy.start)
        await asyncio.sleep(max(0.0, server.recovery.not_before - time.monotonic()))
        assert await add(server, 5, 5) == "10"
        assert server.recovery.reconnects == 1


def nap_project(tmp_path: Path, url: str, rows: int, start_timeout: float = 3) -> Path:
    (tmp_path / "rules.yaml").write_text(
        "rules:\n"
        "  - when: {user: 'nap (?P<n>\\d+)'}\n"
        "    call: [{tool: nap, args: {seconds: 0.1}}]\n"
        "    reply: 'row {n}: {output}'\n"
    )
    (tmp_path / "agents.yaml").write_text(
        "providers:\n  offline: {kind: offline, rules: rules.yaml}\n"
        f"servers:\n  toy: {{transport: streamable_http, url: '{url}', cache_tools: true, start_timeout: {start_timeout}}}\n"
        "agents:\n  main: {servers: [toy]}\n"
    )
    (tmp_path / "in.txt").write_text("".join(f"nap {i}\n" for i in range(rows)))
    return tmp_path / "in.results.jsonl"


def batch_until(tmp_path: Path, out: Path, done: int) -> subprocess.Popen[str]:
    """Start a batch in the background and return once `done` rows are written."""
    proc = subprocess.Popen(
        [PY, "-m", "app", "batch", "in.txt", "--concurrency", "2"],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < done):
        time.sleep(0.05)
    return proc


def results(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_a_batch_rides_out_a_server_restart(toy_server, tmp_path):
    toy = toy_server("http")
    out = nap_project(tmp_path, toy.url, 24)
    proc = batch_until(tmp_path, out, 6)
    toy.kill()
    time.sleep(1.0)
    toy.start()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    done = results(out)
    # nap is read-only: calls cut off by the kill ran again, and calls made in the gap waited.
    assert len(done) == 24 and len({r["id"] for r in done}) == 24
    assert all(r["status"] == "ok" and r["output"] == f"row {r['line'] - 1}: slept 0.1" for r in done)
    assert toy.starts() == 2
    assert max(r["duration_ms"] for r in done) > 800


def test_rows_that_hit_a_longer_outage_fail_and_resume_runs_only_them(toy_server, tmp_path):
    toy = toy_server("http")
    out = nap_project(tmp_path, toy.url, 20, start_timeout=1)
    proc = batch_until(tmp_path, out, 6)
    toy.kill()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    first = results(out)
    assert len(first) == 20 and len({r["id"] for r in first}) == 20
    failed = [r for r in first if r["status"] != "ok"]
    assert 6 <= len(failed) <= 14
    for row in failed:
        assert row["status"] == "error" and "MCP server 'toy' is down" in row["error"]
        assert row["tool_calls"][0]["unreachable"] is True
    toy.start()
    res = run_cli("batch", "in.txt", "--resume", cwd=tmp_path)
    assert res.code == 0, res.err
    assert f"{20 - len(failed)} already done (skipped)" in res.out
    final = results(out)
    assert len(final) == 20 and {r["id"] for r in final} == {r["id"] for r in first}
    assert all(r["status"] == "ok" for r in final)


async def test_a_call_cut_off_mid_way_is_not_run_again_unless_it_is_read_only(tmp_path):
    from tests.conftest import ROOT

    port = free_port()
    asker = [PY, str(ROOT / "tests" / "fixture_servers" / "asker.py"), "http", "--port", str(port)]
    proc = subprocess.Popen(asker, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        path = config(tmp_path, f"{{transport: streamable_http, url: 'http://127.0.0.1:{port}/mcp'}}")
        async with Deck(load_config(path, {})) as deck:
            server = deck.servers["toy"]
            listed = await server.session.list_tools()
            server._deck_hints = {t.name: t.annotations for t in listed.tools}  # as a run's tools/list leaves them
            call = asyncio.ensure_future(server.call_tool("slow_count", {"n": 60}))
            await asyncio.sleep(0.6)
            proc.kill()
            proc.wait()
            proc = await asyncio.to_thread(
                subprocess.Popen, asker, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            await asyncio.to_thread(wait_for_port, port, proc)
            # slow_count has no annotations: it may have done its work, so it is reported, not repeated.
            with pytest.raises(Exception):  # noqa: B017
                await call
            assert "is down" in server.last_error
            result = await server.call_tool("slow_count", {"n": 2})
            assert result.content[0].text == "counted 2"
    finally:
        proc.kill()
        proc.wait()


# ----- units -----


async def test_concurrent_failures_reconnect_once():
    recovery = Recovery(enabled=True)
    calls = 0

    async def reconnect() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)

    results = await asyncio.gather(*(recovery.recover(0, reconnect) for _ in range(5)))
    assert results == [True] * 5 and calls == 1 and recovery.generation == 1


async def test_a_failed_reconnect_closes_a_backoff_window():
    recovery = Recovery(enabled=True, within=0)
    attempts = 0

    async def refused() -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionRefusedError("connection refused")

    assert not await recovery.recover(0, refused)
    assert recovery.last_failure is not None and "refused" in recovery.last_failure
    assert not await recovery.recover(0, refused)  # inside the window: no second attempt
    assert attempts == 1 and recovery.not_before > time.monotonic()


def test_never_delivered_recognises_refused_and_forgotten_sessions():
    from mcp.shared.exceptions import MCPError

    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = ConnectionRefusedError()
    assert never_delivered(wrapped)
    assert never_delivered(MCPError(code=-32600, message="Session terminated"))
    assert never_delivered(MCPError(code=-32001, message="Session not found"))
    assert not never_delivered(MCPError(code=-32000, message="Connection closed"))
    assert not never_delivered(ValueError("tool failed"))
