"""Shared fixtures: config files, the toy MCP server over every transport, the fake OpenAI server."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOY = ROOT / "tests" / "fixture_servers" / "toy.py"
PY = sys.executable
# A raw JSON-RPC initialize, for tests that speak to a server byte by byte.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for CLI subprocesses: no API key, no config override."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "AGENTDECK_CONFIG", "OPENAI_BASE_URL")}
    env["PYTHONUNBUFFERED"] = "1"
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


@pytest.fixture(autouse=True)
def _no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AGENTDECK_CONFIG", raising=False)
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def screen_lines(raw: str) -> list[str]:
    """What a terminal shows after `raw`: carriage returns, cursor-up and line erasing applied, colours dropped."""
    import re

    lines, row, col = [""], 0, 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|\r|\n|[^\x1b\r\n]+|\x1b", raw):
        if token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
            lines.extend([""] * (row + 1 - len(lines)))
        elif token.startswith("\x1b["):
            if token.endswith("A"):
                row = max(0, row - int(token[2:-1] or 1))
            elif token == "\x1b[2K":
                lines[row] = ""
            elif token in ("\x1b[K", "\x1b[0K"):
                lines[row] = lines[row][:col]
        elif token != "\x1b":
            line = lines[row].ljust(col)
            lines[row] = line[:col] + token + line[col + len(token) :]
            col += len(token)
    return [line.rstrip() for line in lines]


def finished_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a results file whose writer was killed. A kill can land mid-write (a line crossing a
    page boundary is copied page by page): a torn last line is not a finished row."""
    text = path.read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 90
) -> CliResult:
    """Run `python -m app ARGS` in a real subprocess."""
    proc = subprocess.run(
        [PY, "-m", "app", *args],
        cwd=cwd,
        env=env or clean_env(),
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write agents.yaml (dedented) into tmp_path; {toy} and {py} are filled in."""

    def write(text: str, name: str = "agents.yaml") -> Path:
        body = textwrap.dedent(text).replace("{toy}", str(TOY)).replace("{py}", PY)
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        return path

    return write


@pytest.fixture
def write_rules(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "rules.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


def stop_all(procs: list[subprocess.Popen[Any]]) -> None:
    """Terminate background servers, killing any that do not exit within 5 s."""
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


@dataclass
class HttpToy:
    url: str
    count_file: Path

    def list_count(self) -> int:
        return int(self.count_file.read_text()) if self.count_file.exists() else 0


@pytest.fixture
def http_toy(tmp_path: Path) -> Iterator[Callable[[str], HttpToy]]:
    """Start the toy server over sse or http on a free port (stopped after the test)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(transport: str) -> HttpToy:
        port = free_port()
        count = tmp_path / f"count-{transport}-{port}"
        proc = subprocess.Popen(
            [PY, str(TOY), transport, "--port", str(port), "--count-file", str(count)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        wait_for_port(port, proc)
        path = "/sse" if transport == "sse" else "/mcp"
        return HttpToy(f"http://127.0.0.1:{port}{path}", count)

    yield start
    stop_all(procs)


@dataclass
class FakeOpenAI:
    base_url: str
    proc: subprocess.Popen[str]

    def queue_faults(self, *faults: dict[str, object]) -> None:
        req = urllib.request.Request(
            self.base_url.removesuffix("/v1") + "/_admin/faults",
            data=json.dumps({"faults": list(faults)}).encode(),
            headers={"content-type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=5).read()

    def requests(self) -> list[dict[str, object]]:
        with urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/_admin/requests", timeout=5) as resp:
            return json.loads(resp.read())


@pytest.fixture
def fake_openai() -> Iterator[Callable[..., FakeOpenAI]]:
    """Start `agentdeck fake-openai` in a subprocess; it prints its base URL first."""
    procs: list[subprocess.Popen[str]] = []

    def start(rules: Path | None = None, latency: float = 0.0, chunk_delay: float = 0.0) -> FakeOpenAI:
        cmd = [PY, "-m", "app", "fake-openai", "--port", "0", "--latency", str(latency)]
        cmd += ["--chunk-delay", str(chunk_delay)]
        if rules is not None:
            cmd += ["--rules", str(rules)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("http://"):
            raise RuntimeError(f"fake server did not start: {line} {proc.stderr.read() if proc.stderr else ''}")
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        wait_for_port(port, proc)  # type: ignore[arg-type]
        return FakeOpenAI(line, proc)

    yield start
    stop_all(procs)


def read_call_log(path: Path) -> list[dict[str, object]]:
    """The offline model's JSONL call log."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class CustomersHttp:
    url: str
    token: str
    db: Path

    def customer(self, customer_id: int) -> dict[str, object]:
        """A row of the server's database, read directly (what the tools should report)."""
        import sqlite3

        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM customers WHERE id = ?", (customer_id,)).fetchone()
        return dict(row)


@pytest.fixture
def customers_http(tmp_path: Path) -> Iterator[Callable[..., CustomersHttp]]:
    """The bundled customers server over streamable HTTP (or SSE) with a bearer token, on a free port."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(token: str = "s3cret-token", transport: str = "http", size: int = 300) -> CustomersHttp:
        port = free_port()
        db = tmp_path / f"customers-{port}.db"
        cmd = [PY, "-m", "servers.customers", "--transport", transport, "--port", str(port), "--token", token]
        proc = subprocess.Popen(
            [*cmd, "--db", str(db), "--size", str(size)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        wait_for_port(port, proc)
        path = "/sse" if transport == "sse" else "/mcp"
        return CustomersHttp(f"http://127.0.0.1:{port}{path}", token, db)

    yield start
    stop_all(procs)


class Screen:
    """A chat running in its own tmux server, read back as the screen a user sees."""

    def __init__(self, cwd: Path, args: list[str], env: dict[str, str]) -> None:
        self.socket = f"agentdeck-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command = f"cd {shlex.quote(str(cwd))} && env -i {exports} {shlex.quote(PY)} -m app chat {shlex.join(args)}"
        self.tmux("new-session", "-d", "-x", "100", "-y", "40", command)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True).stdout

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-S", "-200")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", *keys)

    def wait_for(self, needle: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            if needle in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never appeared on screen:\n{screen}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def screen_for(tmp_path: Path):
    screens: list[Screen] = []

    def start(args: list[str], **env: str) -> Screen:
        full = clean_env(AGENTDECK_STATE_DIR=str(tmp_path / "state"), PYTHONPATH=str(ROOT), TERM="xterm", **env)
        full.pop("COLUMNS", None)  # the screen's own width, as on a user's terminal
        screen = Screen(tmp_path, args, full)
        screens.append(screen)
        return screen

    yield start
    for screen in screens:
        screen.close()


def write_png(path: Path, size: tuple[int, int]) -> Path:
    """A small real PNG (for image inputs)."""
    from PIL import Image

    Image.new("RGB", size, (200, 30, 30)).save(path, format="PNG")
    return path


def npm_install(folder: Path, package: str) -> Path:
    """Install an npm package into `folder` (skipping the test without npm); its node_modules/.bin."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed on this machine (the README lists Node.js for this test)")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(folder), package],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return folder / "node_modules" / ".bin"
