"""`agentdeck run` input and output: standard input, attached files, streaming on a terminal, --quiet."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import pexpect
import pytest

from tests.conftest import PY, TOY, clean_env, read_call_log, screen_lines

RULES = """rules:
  - when: {user: 'add (?P<a>\\d+) and (?P<b>\\d+)'}
    call: [{tool: add, args: {a: "{a|int}", b: "{b|int}"}}]
    reply: "Sum is {output}"
  - when: {user: 'describe'}
    reply: "described"
"""

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "agents.yaml").write_text(
        "providers:\n  offline: {kind: offline, rules: rules.yaml, log: calls.jsonl}\n"
        f"servers:\n  toy: {{transport: stdio, command: python, args: ['{TOY}']}}\n"
        "agents:\n  main: {servers: [toy]}\n"
    )
    return tmp_path


def run(project: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "app", "run", *args],
        cwd=project,
        env=clean_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_question_from_standard_input(project: Path) -> None:
    dash = run(project, "-", stdin="add 2 and 3\n")
    assert dash.returncode == 0 and dash.stdout.strip() == "Sum is 5", dash.stderr
    piped = run(project, stdin="add 4 and 3\n")
    assert piped.returncode == 0 and piped.stdout.strip() == "Sum is 7", piped.stderr
    empty = run(project, "-", stdin="  \n")
    assert empty.returncode == 2 and "error: the question is empty" in empty.stderr


def test_attached_files_reach_the_model_and_bad_ones_are_one_line_errors(project: Path) -> None:
    (project / "notes.md").write_text("alpha\nbeta\n")
    (project / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    (project / "big.txt").write_text("x" * (300 * 1024))
    ok = run(project, "describe", "--file", "notes.md", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["output"] == "described"
    seen = read_call_log(project / "calls.jsonl")[-1]
    assert "Attached file notes.md" in str(seen["user"]) and "alpha\nbeta" in str(seen["user"])
    for name, message in (
        ("blob.bin", "cannot attach blob.bin: it is a binary file"),
        ("big.txt", "cannot attach big.txt: 307,200 bytes is over the 256 KiB limit for a text file"),
        ("missing.txt", "cannot attach missing.txt: No such file or directory"),
    ):
        bad = run(project, "describe", "--file", name)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
        assert len([line for line in bad.stderr.splitlines() if line.startswith("error:")]) == 1


def test_an_attached_image_is_sent_as_an_input_image(project: Path, fake_openai) -> None:
    (project / "dot.png").write_bytes(PNG)
    fake = fake_openai(project / "rules.yaml")
    (project / "agents.yaml").write_text(
        "providers:\n  openai: {kind: openai}\nagents:\n  main: {provider: openai, model: fake-model}\n"
    )
    env = clean_env(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=fake.base_url, OPENAI_AGENTS_DISABLE_TRACING="1")
    done = subprocess.run(
        [PY, "-m", "app", "run", "describe", "-f", "dot.png"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == "described", done.stderr
    assert [r["api"] for r in fake.requests()] == ["responses"]


def test_attachments_are_valid_responses_input(tmp_path: Path) -> None:
    from openai.types.responses import ResponseInputParam
    from pydantic import TypeAdapter

    from app.attachments import load_attachment, user_message

    (tmp_path / "dot.png").write_bytes(PNG)
    (tmp_path / "a.txt").write_text("hello")
    message = user_message(
        "look", [load_attachment(str(tmp_path / "dot.png")), load_attachment(str(tmp_path / "a.txt"))]
    )
    TypeAdapter(ResponseInputParam).validate_python(message, strict=True)
    assert isinstance(message, list)
    parts = message[0]["content"]
    assert parts[1] == {
        "type": "input_image",
        "image_url": "data:image/png;base64," + base64.b64encode(PNG).decode(),
        "detail": "auto",
    }
    assert parts[2]["type"] == "input_text" and "hello" in parts[2]["text"]
    assert user_message("plain", []) == "plain"


def test_run_on_a_terminal_streams_with_tool_panels_and_quiet_prints_the_answer_alone(project: Path) -> None:
    def on_terminal(*args: str) -> str:
        child = pexpect.spawn(
            PY, ["-m", "app", "run", *args], cwd=str(project), env=clean_env(), encoding="utf-8", timeout=60
        )
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0, child.before
        return str(child.before)

    shown = on_terminal("add 20 and 22")
    assert "⚙" in shown and "add" in shown and "✓" in shown and "Sum is 42" in shown
    quiet = on_terminal("--quiet", "add 1 and 1")
    assert "Sum is 2" in quiet and "⚙" not in quiet and "offline model" not in quiet


def test_a_failing_model_call_prints_one_error_line_and_no_library_logs(project: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (project / "agents.yaml").write_text(
        "providers:\n  openai: {kind: openai}\nagents:\n  main: {provider: openai, model: fake-model}\n"
    )
    env = clean_env(
        OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1", OPENAI_AGENTS_DISABLE_TRACING="1"
    )
    child = pexpect.spawn(PY, ["-m", "app", "run", "describe"], cwd=str(project), env=env, encoding="utf-8", timeout=90)
    child.expect(pexpect.EOF)
    child.close()
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", str(child.before))
    assert child.exitstatus == 1, shown
    # The start-up status line was drawn and erased: the error is the first line left on the screen.
    lines = [line for line in screen_lines(str(child.before)) if line.strip()]
    assert [line for line in lines if line.startswith("error:")] == [lines[0]], shown
    assert "cannot reach the model endpoint" in lines[0]
    for stray in ("Error getting response", "Error streaming response", "Traceback", "WARNING", "ERROR"):
        assert stray not in shown, shown
