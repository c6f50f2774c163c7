"""`agentdeck chat` driven in a real pseudo-terminal, plus unit tests of its parser and panels."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pexpect
import pytest
from rich.console import Console

from app.chat import render
from app.chat.commands import CommandError, help_text, is_command, parse
from tests.conftest import PY, TOY, clean_env, read_call_log

RULES = """
rules:
  - when: {user: 'add (?P<a>\\d+) and (?P<b>\\d+)'}
    call: [{tool: add, args: {a: "{a|int}", b: "{b|int}"}}]
    reply: "Sum is {output}"
  - when: {user: 'delete customer (?P<id>\\d+)'}
    call: [{tool: delete_customer, args: {customer_id: "{id|int}"}}]
    reply: "Result: {output}"
  - when: {user: 'sleep now'}
    call: [{tool: nap, args: {seconds: 60}}]
    reply: "woke up"
  - when: {user: 'repeat (?P<w>\\w+) (?P<n>\\d+) times'}
    call: [{tool: echo, args: {text: "{w}"}}]
    reply: "Echoed"
  - when: {user: 'Attached file'}
    reply: "Got the attachment"
"""


@pytest.fixture
def chat_project(tmp_path: Path) -> dict[str, object]:
    marker = f"--prefix=c{uuid.uuid4().hex[:6]}_"
    prefix = marker.split("=", 1)[1]
    (tmp_path / "rules.yaml").write_text(
        RULES.replace("tool: add", f"tool: {prefix}add")
        .replace("tool: delete_customer", f"tool: {prefix}delete_customer")
        .replace("tool: nap", f"tool: {prefix}nap")
        .replace("tool: echo", f"tool: {prefix}echo")
    )
    (tmp_path / "agents.yaml").write_text(
        "providers:\n  offline: {kind: offline, rules: rules.yaml, log: calls.jsonl}\n"
        f"servers:\n  toy: {{transport: stdio, command: python, args: ['{TOY}', '{marker}'], cache_tools: true, approval: destructive}}\n"
        "agents:\n  main: {servers: [toy]}\n  other: {servers: [toy], description: The other agent}\n"
    )
    return {"dir": tmp_path, "marker": marker, "state": tmp_path / "state"}


def spawn(project: dict[str, object], *args: str, env: dict[str, str] | None = None) -> pexpect.spawn:
    env = clean_env(AGENTDECK_STATE_DIR=str(project["state"]), **(env or {}))
    child = pexpect.spawn(
        PY,
        ["-m", "app", "chat", *args],
        cwd=str(project["dir"]),
        env=env,
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 160),
    )
    child.expect("main>")
    return child


def say(child: pexpect.spawn, text: str) -> None:
    child.sendline(text)


def finish(child: pexpect.spawn) -> None:
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()


def toy_pids(marker: str) -> list[int]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if marker in line and "ps -ww" not in line]


def session_items(project: dict[str, object], name: str) -> list[dict[str, object]]:
    conn = sqlite3.connect(Path(str(project["state"])) / "sessions.db")
    try:
        rows = conn.execute(
            "SELECT message_data FROM agent_messages WHERE session_id = ? ORDER BY id", (name,)
        ).fetchall()
    finally:
        conn.close()
    return [json.loads(r[0]) for r in rows]


def test_tool_call_and_every_approval_answer(chat_project):
    child = spawn(chat_project, "--session", "approvals")
    say(child, "add 2 and 3")
    child.expect("add")  # the tool panel
    child.expect("Sum is 5")
    child.expect("main>")
    say(child, "delete customer 4")
    child.expect(r"allow\?")
    time.sleep(1.2)  # the human thinks; the call's own time must not include this
    say(child, "y")
    child.expect(r"approval took (\d+\.\d) s")
    waited_s = float(child.match.group(1))
    took_ms = int(re.findall(r"(\d+) ms", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", child.before))[-1])
    assert took_ms < 1000 <= waited_s * 1000, (took_ms, waited_s)
    child.expect("Result: deleted customer 4")
    child.expect("main>")
    say(child, "delete customer 5")
    child.expect(r"allow\?")
    say(child, "n")
    child.expect("reason")
    say(child, "customer 5 is a VIP")
    child.expect("Reason: customer 5 is a VIP")
    child.expect("main>")
    say(child, "delete customer 6")
    child.expect(r"allow\?")
    say(child, "a")
    child.expect("Result: deleted customer 6")
    child.expect("main>")
    say(child, "delete customer 7")
    assert child.expect([r"allow\?", "Result: deleted customer 7"]) == 1  # "always" was remembered
    child.expect("main>")
    say(child, "/approvals")
    child.expect(r"always\s+toy\.\w*delete_customer")
    child.expect("main>")
    say(child, "/approvals reset nothing_here")
    child.expect("nothing remembered for 'nothing_here'")
    child.expect("main>")
    say(child, "/clear")  # a new conversation starts with nothing remembered
    child.expect("new conversation")
    say(child, "delete customer 8")
    child.expect(r"allow\?")
    say(child, "N")
    child.expect("main>")
    say(child, "/approvals")
    child.expect(r"never\s+toy\.\w*delete_customer")
    child.expect("main>")
    say(child, "/approvals reset")
    child.expect("forgot: toy.")
    say(child, "/approvals")
    child.expect("no remembered approvals in this session")
    child.expect("main>")
    finish(child)
    outputs = [o for r in read_call_log(Path(str(chat_project["dir"])) / "calls.jsonl") for o in r["tool_outputs"]]
    assert any("Reason: customer 5 is a VIP" in o for o in outputs)
    assert toy_pids(str(chat_project["marker"])) == []


def test_ctrl_c_cancels_a_turn_and_the_next_turn_works(chat_project):
    child = spawn(chat_project, "--session", "cancel")
    say(child, "sleep now")
    child.expect("nap")
    child.sendintr()
    child.expect("turn cancelled")
    child.expect("main>")
    say(child, "add 1 and 1")
    child.expect("Sum is 2")
    child.expect("main>")
    finish(child)
    items = session_items(chat_project, "cancel")
    names = [i.get("name") for i in items if i.get("type") == "function_call"]
    assert all("nap" not in str(n) for n in names) and any("add" in str(n) for n in names)
    calls = {i.get("call_id") for i in items if i.get("type") == "function_call"}
    outputs = {i.get("call_id") for i in items if i.get("type") == "function_call_output"}
    assert calls == outputs  # no dangling tool call in history
    assert not any(i.get("content") == "sleep now" for i in items)


def test_ctrl_c_at_empty_prompt_asks_and_ctrl_d_exits(chat_project):
    child = spawn(chat_project)
    child.sendintr()
    child.expect(r"exit agentdeck\? \[y/N\]")
    say(child, "n")
    child.expect("main>")
    child.sendintr()
    child.expect(r"exit agentdeck\?")
    say(child, "y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert toy_pids(str(chat_project["marker"])) == []


def test_agent_switch_save_and_resume(chat_project, tmp_path):
    child = spawn(chat_project, "--session", "keep")
    say(child, "/agent othr")
    child.expect("unknown agent")
    say(child, "/agent other")
    child.expect("other>")
    say(child, "add 4 and 5")
    child.expect("Sum is 9")
    child.expect("other>")
    say(child, "/usage")
    child.expect(r"requests 2, .* tool calls 1")
    say(child, "/sevrers")
    child.expect(r"unknown command /sevrers; did you mean /servers\?")
    out = tmp_path / "transcript.md"
    say(child, f"/save {out}")
    child.expect("saved to")
    child.expect("other>")
    finish(child)
    text = out.read_text()
    assert "**You:** add 4 and 5" in text and "tool call" in text and "**Assistant:** Sum is 9" in text

    env = clean_env(AGENTDECK_STATE_DIR=str(chat_project["state"]))
    child = pexpect.spawn(
        PY,
        ["-m", "app", "chat", "--session", "keep"],
        cwd=str(chat_project["dir"]),
        env=env,
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 160),
    )
    child.expect(r"resumed, \d+ items")
    child.expect("main>")
    say(child, "/history")
    child.expect("you: add 4 and 5")
    child.expect("assistant: Sum is 9")
    say(child, "/sessions")
    child.expect(r"\* keep")
    child.expect("main>")
    finish(child)


def test_server_killed_mid_session_then_reconnect(chat_project):
    child = spawn(chat_project, "--session", "crash")
    say(child, "add 1 and 1")
    child.expect("Sum is 2")
    child.expect("main>")
    pids = toy_pids(str(chat_project["marker"]))
    assert len(pids) == 1
    subprocess.run(["kill", "-9", str(pids[0])], check=True)
    # Known as soon as the process is gone, before any call fails.
    deadline = time.monotonic() + 10
    while True:
        say(child, "/servers")
        if child.expect([r"toy\s+failed\s+\S+\s+down: its process exited", r"toy\s+connected"]) == 0:
            break
        assert time.monotonic() < deadline, "the dead server was never shown as failed"
        child.expect("main>")
        time.sleep(0.2)
    child.expect("main>")
    say(child, "add 2 and 2")
    child.expect("add 2 and 2")
    child.expect("main>")
    shown = " ".join(child.before.split())
    assert "tool error" in shown and "MCP server 'toy' is down" in shown, shown
    assert "Error getting" not in shown and "MCP tool" not in shown, shown  # no SDK log lines
    # The model was told the same: which server, that it is down, and that retrying will not help.
    told = [json.dumps(r["tool_outputs"]) for r in map(json.loads, (chat_project["dir"] / "calls.jsonl").open())]
    assert any("MCP server 'toy' is down (its process exited" in t and "Retrying will not help" in t for t in told)
    say(child, "/reconnect toy")
    child.expect("toy reconnected")
    say(child, "add 3 and 3")
    child.expect("Sum is 6")
    child.expect("main>")
    say(child, "/servers")
    child.expect(r"toy\s+connected")
    child.expect("main>")
    finish(child)
    assert toy_pids(str(chat_project["marker"])) == []


def test_pipe_mode_reads_lines_and_prints_plain_answers(chat_project):
    env = clean_env(AGENTDECK_STATE_DIR=str(chat_project["state"]))
    proc = subprocess.run(
        [PY, "-m", "app", "chat", "--session", "piped"],
        input="add 2 and 2\n\n/agents\ndelete customer 1\nadd 5 and 5\n",
        capture_output=True, text=True, cwd=chat_project["dir"], env=env, timeout=90,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Sum is 4"
    assert "* main" in lines and "  other  The other agent" in lines
    assert any(line.startswith("Result: The user declined") for line in lines)
    assert lines[-1] == "Sum is 10"
    assert "\x1b[" not in proc.stdout
    approved = subprocess.run(
        [PY, "-m", "app", "chat", "--new", "--approve", "yes"],
        input="delete customer 3\n", capture_output=True, text=True, cwd=chat_project["dir"], env=env, timeout=90,
    )  # fmt: skip
    assert approved.returncode == 0 and approved.stdout.strip() == "Result: deleted customer 3", approved.stderr


def test_switching_agents_uses_their_servers_and_a_broken_one_of_another_agent_is_only_a_warning(chat_project):
    config = chat_project["dir"] / "agents.yaml"
    text = config.read_text().replace(
        "agents:\n", "  broken: {transport: stdio, command: /nonexistent/server}\nagents:\n"
    )
    config.write_text(text + "  third: {servers: [broken]}\n  keyless: {provider: openai}\n")
    env = clean_env(AGENTDECK_STATE_DIR=str(chat_project["state"]))
    proc = subprocess.run(
        [PY, "-m", "app", "chat", "--new"],
        input="add 1 and 2\n/servers\n/agent keyless\n/agent other\nadd 3 and 4\n",
        capture_output=True, text=True, cwd=chat_project["dir"], env=env, timeout=90,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "warning: optional server 'broken' is unavailable: command not found: /nonexistent/server" in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Sum is 3" and lines[-1] == "Sum is 7"
    assert any(line.split()[:2] == ["broken", "failed"] for line in lines)
    assert "warning: agent 'keyless' is unavailable: provider 'openai' needs an API key" in proc.stderr
    assert "agent 'keyless' is unavailable: provider 'openai' needs an API key, but OPENAI_API_KEY is not set" in lines


def test_chat_usage_errors(chat_project):
    env = clean_env(AGENTDECK_STATE_DIR=str(chat_project["state"]))
    proc = subprocess.run(
        [PY, "-m", "app", "chat", "--session", "a", "--new"],
        capture_output=True,
        text=True,
        cwd=chat_project["dir"],
        env=env,
        input="",
    )
    assert proc.returncode == 2 and "not both" in proc.stderr
    proc = subprocess.run(
        [PY, "-m", "app", "chat", "--session", "../x"],
        capture_output=True,
        text=True,
        cwd=chat_project["dir"],
        env=env,
        input="",
    )
    assert proc.returncode == 2 and "invalid session name" in proc.stderr


def test_openai_answers_stream_token_by_token_into_the_terminal(chat_project, fake_openai, write_rules):
    rules = write_rules(
        "rules:\n  - when: {user: 'add (?P<a>\\d+) and (?P<b>\\d+)'}\n"
        "    call: [{tool: add, args: {a: '{a|int}', b: '{b|int}'}}]\n"
        "    reply: 'The sum is {output}, computed by a tool.'\n"
    )
    prefix = str(chat_project["marker"]).split("=", 1)[1]
    rules.write_text(rules.read_text().replace("tool: add", f"tool: {prefix}add"))
    fake = fake_openai(rules, chunk_delay=0.5)
    project_dir = Path(str(chat_project["dir"]))
    (project_dir / "agents.yaml").write_text(
        "providers:\n  openai: {kind: openai}\n"
        f"servers:\n  toy: {{transport: stdio, command: python, args: ['{TOY}', '{chat_project['marker']}']}}\n"
        "agents:\n  main: {provider: openai, model: fake-model, servers: [toy]}\n"
    )
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake.base_url, "OPENAI_AGENTS_DISABLE_TRACING": "1"}
    child = spawn(chat_project, "--new", env=env)
    say(child, "add 20 and 22")
    child.expect(f"{prefix}add")  # the tool panel
    child.expect("The sum is 4")  # the first 12-character chunk is on screen...
    assert "by a tool" not in child.buffer  # ...while the rest is still on its way
    child.expect(r"by a tool\.")
    child.expect("main>")
    finish(child)
    seen = fake.requests()
    assert [r["api"] for r in seen] == ["responses", "responses"] and all(r["stream"] for r in seen)


# ----- units -----


def test_command_parser():
    assert parse("/agent support").arg == "support" and parse("/AGENT x").name == "/agent"
    assert parse("/save 'my notes.md'").arg == "my notes.md"
    assert parse("/help").arg is None
    with pytest.raises(CommandError, match="did you mean /history"):
        parse("/histroy")
    with pytest.raises(CommandError, match="/agent needs NAME"):
        parse("/agent")
    with pytest.raises(CommandError, match="unknown command /zzz"):
        parse("/zzz")
    assert is_command("/help") and not is_command("//not a command") and not is_command("hello")
    assert all(name in help_text() for name in ("/reconnect NAME", "/save FILE", "/exit"))


def plain(renderable) -> str:
    console = Console(width=100, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_tool_panels():
    assert render.shorten("a  b\nc", 10) == "a b c"
    assert render.shorten("x" * 20, 10) == "x" * 9 + "…"
    args = render.format_arguments('{"path": "' + "p" * 200 + '", "n": 3}')
    assert args.startswith("path='ppp") and args.endswith("…, n=3") and len(args) < 80
    assert plain(render.tool_call("fs", "read_file", {"path": "a.txt"})).strip() == "⚙ fs.read_file(path='a.txt')"
    ok = plain(render.tool_result(True, 12.4, "line one\nline two"))
    assert ok.strip() == "✓ 12 ms  line one line two"
    bad = plain(render.tool_result(False, 3, "toy.add failed: Connection closed"))
    assert "tool error 3 ms" in bad and "Connection closed" in bad
    assert plain(render.handoff("support")).strip() == "→ support"
    assert plain(render.declined("rm", "too risky")).strip() == "✗ rm declined: too risky"
    assert re.search(r"error", plain(render.error("boom")))


def test_tool_results_match_their_own_call_when_parallel_calls_finish_out_of_order():
    from app.chat.view import match_record
    from app.telemetry import ToolCallLog, ToolCallRecord

    log = ToolCallLog(
        [
            ToolCallRecord("db", "lookup", {"id": 2}, False, 5.0, error="no such customer"),
            ToolCallRecord("db", "lookup", {"id": 1}, True, 4.0),
            ToolCallRecord("fs", "lookup", {"id": 1}, True, 1.0),
        ]
    )
    consumed: set[int] = set()
    # The call with id=1 on db finishes first in the stream but was recorded second.
    first = match_record(log, consumed, "db", "db__lookup", '{"id": 1}')
    assert first is log.calls[1] and first.ok
    second = match_record(log, consumed, "db", "lookup", '{"id": 2}')
    assert second is log.calls[0] and second.error == "no such customer"
    assert match_record(log, consumed, "fs", "fs__lookup", '{"id": 1}') is log.calls[2]
    assert match_record(log, consumed, "db", "lookup", '{"id": 1}') is None


def test_attach_and_save_full_results_without_overwriting(chat_project):
    project = Path(str(chat_project["dir"]))
    (project / "notes.md").write_text("line one\nline two\n")
    (project / "blob.bin").write_bytes(b"\x00\x01binary")
    word = "w" * 400  # longer than the 300 characters /history shows
    child = spawn(chat_project, "--session", "files")
    say(child, "/attach blob.bin")
    child.expect("cannot attach blob.bin: it is a binary file")
    say(child, "/attach notes.md")
    child.expect("attached notes.md")
    say(child, "please read it")
    child.expect("Got the attachment")
    child.expect("main>")
    say(child, f"repeat {word} 1 times")
    child.expect(r"allow\?")  # echo has no annotations, so it counts as destructive
    say(child, "y")
    child.expect("Echoed")
    child.expect("main>")
    say(child, "/save out.md")
    child.expect("saved to out.md")
    child.expect("main>")
    saved = (project / "out.md").read_text()
    assert word in saved and "line one" in saved, saved
    (project / "out.md").write_text("keep me")
    say(child, "/save out.md")
    child.expect("out.md exists; /save! out.md")
    child.expect("main>")
    assert (project / "out.md").read_text() == "keep me"
    say(child, "/save! out.md")
    child.expect("saved to out.md")
    child.expect("main>")
    assert word in (project / "out.md").read_text()
    finish(child)
    user = [str(r["user"]) for r in read_call_log(project / "calls.jsonl")]
    assert any("Attached file notes.md" in u and "line two" in u for u in user)
    # The attachment went with one message only.
    assert not any("Attached file" in u for u in user if word in u)
