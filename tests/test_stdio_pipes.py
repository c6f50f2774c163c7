"""The bundled servers' stdio transport: pipes served from the event loop, the wire kept clean."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import INITIALIZE, PY, ROOT, clean_env

NOISY = ROOT / "tests" / "fixture_servers" / "noisy.py"
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def call(request_id: int, tool: str, text: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": {"text": text}},
    }


def start(**kwargs: Any) -> subprocess.Popen[bytes]:
    kwargs.setdefault("stdin", subprocess.PIPE)
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.Popen(
        [PY, str(NOISY)], stderr=subprocess.PIPE, env=clean_env(PYTHONPATH=str(ROOT)), cwd=ROOT, **kwargs
    )


def send(proc: subprocess.Popen[bytes], *messages: dict[str, Any]) -> None:
    assert proc.stdin is not None
    for message in messages:
        proc.stdin.write((json.dumps(message) + "\n").encode())
    proc.stdin.flush()


def answer(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, "the server closed stdout"
    return json.loads(line)  # type: ignore[no-any-return]


def test_stray_output_stays_off_the_wire_and_a_line_past_64_kib_round_trips():
    proc = start()
    big = "x" * 300_000  # asyncio's default line limit is 64 KiB
    send(proc, INITIALIZE, INITIALIZED, call(2, "shout", big))
    assert answer(proc)["id"] == 1
    reply = answer(proc)  # the next line is the call's answer, not a stray print
    assert reply["id"] == 2 and reply["result"]["content"][0]["text"] == big.upper()
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.close()
    assert proc.stdout.read() == b""
    assert proc.wait(timeout=30) == 0
    err = proc.stderr.read().decode()
    assert "stray print from the handler" in err and "stray output from a child" in err


def test_requests_are_read_and_answered_without_a_thread_per_line():
    proc = start()
    send(proc, INITIALIZE, INITIALIZED)
    answer(proc)
    for i in range(20):
        send(proc, call(10 + i, "echo", f"ping {i}"))
        assert answer(proc)["result"]["content"][0]["text"] == f"ping {i}"
    # The SDK's transport reads and writes through worker threads; an async tool on pipes needs none.
    threads = os.listdir(f"/proc/{proc.pid}/task")
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    assert len(threads) == 1, f"{len(threads)} threads in the server"


def test_a_client_that_stops_reading_ends_the_server_quietly():
    proc = start()
    send(proc, INITIALIZE, INITIALIZED)
    answer(proc)
    send(proc, call(2, "shout", "y" * 3_000_000))  # an answer larger than any pipe buffer
    assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
    time.sleep(0.5)
    proc.stdout.close()
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    err = proc.stderr.read().decode()
    assert "Traceback" not in err and "Error" not in err, err


def test_stdin_from_a_regular_file_is_served_by_the_sdk_transport(tmp_path: Path):
    requests = tmp_path / "requests.jsonl"
    requests.write_text(json.dumps(INITIALIZE) + "\n")
    with requests.open("rb") as stdin:
        proc = start(stdin=stdin)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert json.loads(out.splitlines()[0])["result"]["serverInfo"]["name"] == "noisy"
