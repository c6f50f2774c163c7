"""Servers that ask the client for input (#14 §2): elicitation, sampling and roots through agentdeck.

The server is tests/fixture_servers/asker.py, which asks through input-required results on protocol
2026-07-28 (what agentdeck negotiates) and by pushed requests on older versions.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pexpect
import pytest

from tests.conftest import PY, ROOT, clean_env

ASKER = ROOT / "tests" / "fixture_servers" / "asker.py"

RULES = r"""rules:
  - when: {user: 'confirm (?P<addr>.+)'}
    call: [{tool: confirm_address, args: {address: "{addr}"}}]
    reply: "Result: {output}"
  - when: {user: 'Summarize: (?P<t>.+)'}
    reply: "short version of {t}"
  - when: {user: 'summarize (?P<t>.+)'}
    call: [{tool: summarize, args: {text: "{t}"}}]
    reply: "Result: {output}"
  - when: {user: 'roots'}
    call: [{tool: list_my_roots, args: {}}]
    reply: "Result: {output}"
  - when: {user: 'count (?P<n>\d+)'}
    call: [{tool: slow_count, args: {n: "{n|int}"}}]
    reply: "Result: {output}"
  - when: {user: 'make noise'}
    call: [{tool: noisy, args: {}}]
    reply: "Result: {output}"
  - when: {user: 'link'}
    call: [{tool: open_link, args: {}}]
    reply: "Result: {output}"
  - when: {user: 'research (?P<t>.+)'}
    call: [{tool: research, args: {topic: "{t}"}}]
    reply: "Result: {output}"
  - when: {user: 'protocol'}
    call: [{tool: protocol, args: {}}]
    reply: "Result: {output}"
  - when: {user: 'Research (?P<t>.+)'}
    call: [{tool: lookup, args: {term: "{t}"}}]
    reply: "notes say: {output}"
"""


def project(tmp: Path, extra: str = "", legacy: bool = False) -> Path:
    (tmp / "rules.yaml").write_text(RULES)
    flag = ", '--legacy'" if legacy else ""
    (tmp / "agents.yaml").write_text(
        "providers:\n  offline: {kind: offline, rules: rules.yaml}\n"
        f"servers:\n  asker: {{transport: stdio, command: '{PY}', args: ['{ASKER}'{flag}]{extra}}}\n"
        "agents:\n  main: {servers: [asker]}\n"
    )
    return tmp


def run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "app", "run", *args],
        cwd=tmp,
        env=clean_env(AGENTDECK_STATE_DIR=str(tmp / "state")),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def spawn(tmp: Path, *args: str) -> pexpect.spawn:
    env = clean_env(AGENTDECK_STATE_DIR=str(tmp / "state"))
    return pexpect.spawn(
        PY, ["-m", "app", "run", "--quiet", *args], cwd=str(tmp), env=env, encoding="utf-8", timeout=60
    )


def test_without_a_terminal_a_form_is_declined_and_the_model_hears_it(tmp_path: Path) -> None:
    proc = run(project(tmp_path), "confirm 1 Main St")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Result: declined"


def test_on_a_terminal_the_form_is_asked_field_by_field_and_checked(tmp_path: Path) -> None:
    child = spawn(project(tmp_path), "confirm 1 Main St")
    child.expect("asker asks: Ship to 1 Main St")
    child.expect(r"answer\? \[a\]ccept / \[d\]ecline / \[c\]ancel: ")
    child.sendline("a")
    child.expect(r"\(y/n\): ")
    child.sendline("maybe")
    child.expect("answer y or n")
    child.sendline("y")
    child.expect(r"\[skip\]: ")  # the optional note
    child.sendline("")
    child.expect(r"\(standard, express\) \[standard\]: ")
    child.sendline("overnight")
    child.expect("choose one of: standard, express")
    child.sendline("2")  # by position
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "Result: shipping to 1 Main St by express" in str(child.before)


def test_elicit_decline_and_a_server_set_to_decline_never_ask(tmp_path: Path) -> None:
    child = spawn(project(tmp_path), "--elicit", "decline", "confirm 1 Main St")
    child.expect(pexpect.EOF)
    assert "Result: declined" in str(child.before) and "asks" not in str(child.before)
    child = spawn(project(tmp_path, ", elicitation: decline"), "confirm 1 Main St")
    child.expect(pexpect.EOF)
    assert "Result: declined" in str(child.before) and "asks" not in str(child.before)


def test_a_url_request_is_shown_and_confirmed(tmp_path: Path) -> None:
    child = spawn(project(tmp_path), "link")
    child.expect("asker asks you to open https://example.com/authorize")
    child.expect(r"done\? ")
    child.sendline("y")
    child.expect(pexpect.EOF)
    assert "Result: url accepted" in str(child.before)


def test_sampling_is_answered_by_the_agents_model(tmp_path: Path) -> None:
    proc = run(project(tmp_path), "--json", "summarize a long text")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert "summary: short version of a long text" in record["output"]
    assert "model: offline" in record["output"]
    # Two model calls for the agent, one for the server's sampling request: all counted.
    assert record["usage"]["sampling_requests"] == 1 and record["usage"]["requests"] == 3


def test_sampling_with_tools_lets_the_model_call_the_servers_tool(tmp_path: Path) -> None:
    proc = run(project(tmp_path), "--json", "research the analytical engine")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    # The model asked for lookup; the server ran it and sampled again with its result.
    assert record["output"] == "Result: notes say: the analytical engine was first described in 1843"
    assert record["usage"]["sampling_requests"] == 2
    # The server's sampling tool ran on the server, never as one of the agent's tool calls.
    assert [c["tool"] for c in record["tool_calls"]] == ["research"]


def test_sampling_deny_tells_the_model_the_server_could_not_sample(tmp_path: Path) -> None:
    proc = run(project(tmp_path, ", sampling: deny"), "--json", "summarize a long text")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert "short version" not in record["output"]
    assert record["tool_calls"][0]["ok"] is False
    assert "does not let server 'asker' use the model" in record["output"]
    assert "sampling: deny" in record["output"]


def test_roots_from_the_config_are_offered_as_file_uris(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    proc = run(project(tmp_path, ", roots: [docs]"), "roots")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"Result: {(tmp_path / 'docs').resolve().as_uri()}"


def test_a_root_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    proc = run(project(tmp_path, ", roots: [nowhere]"), "roots")
    assert proc.returncode == 2, proc.stderr
    assert "servers.asker.roots[0]" in proc.stderr and "nowhere" in proc.stderr and "does not exist" in proc.stderr


def test_batch_declines_forms_and_still_answers_sampling(tmp_path: Path) -> None:
    project(tmp_path)
    (tmp_path / "q.txt").write_text("confirm 9 Elm Rd\nsummarize the report\n")
    proc = subprocess.run(
        [PY, "-m", "app", "batch", "q.txt"],
        cwd=tmp_path,
        env=clean_env(AGENTDECK_STATE_DIR=str(tmp_path / "state")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {r["input"]: r for r in map(json.loads, (tmp_path / "q.results.jsonl").read_text().splitlines())}
    assert rows["confirm 9 Elm Rd"]["output"] == "Result: declined"
    assert "summary: short version of the report" in rows["summarize the report"]["output"]


def test_the_chat_asks_a_servers_form_at_its_prompt(tmp_path: Path, screen_for) -> None:
    project(tmp_path)
    screen = screen_for(["--new"])
    screen.wait_for("main>", timeout=60)
    screen.keys("confirm 1 Main St", "Enter")
    screen.wait_for("answer? [a]ccept")
    screen.keys("a", "Enter")
    screen.wait_for("(y/n)")
    screen.keys("y", "Enter")
    screen.wait_for("[skip]")
    screen.keys("Enter")
    screen.wait_for("[standard]")
    screen.keys("express", "Enter")
    shown = screen.wait_for("Result: shipping to 1 Main St by express")
    assert "asker asks: Ship to 1 Main St?" in shown


def test_agentdeck_names_itself_to_servers_in_runs_and_in_tools_call(tmp_path: Path) -> None:
    from importlib.metadata import version

    project(tmp_path)
    rules = (tmp_path / "rules.yaml").read_text()
    (tmp_path / "rules.yaml").write_text(
        rules + "  - when: {user: 'who'}\n    call: [{tool: whoami, args: {}}]\n    reply: 'Result: {output}'\n"
    )
    expected = f"agentdeck {version('agentdeck')}"
    assert run(tmp_path, "who").stdout.strip() == f"Result: {expected}"
    proc = subprocess.run(
        [PY, "-m", "app", "tools", "call", "asker", "whoami"],
        cwd=tmp_path,
        env=clean_env(AGENTDECK_STATE_DIR=str(tmp_path / "state")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert expected in proc.stdout, proc.stdout + proc.stderr


def test_progress_shows_live_under_the_running_call_in_chat(tmp_path: Path, screen_for) -> None:
    import time

    project(tmp_path)
    screen = screen_for(["--new"])
    screen.wait_for("main>", timeout=60)
    screen.keys("count 60", "Enter")  # 60 steps of 50 ms
    seen = screen.wait_for("of 60 (", timeout=30)
    assert "asker.slow_count: step " in seen, seen
    done = screen.wait_for("Result: counted 60", timeout=30)
    time.sleep(0.3)
    assert "of 60 (" not in screen.text(), done  # the progress line goes when the call ends


def test_server_log_messages_are_kept_for_logs_in_chat(tmp_path: Path) -> None:
    project(tmp_path)
    proc = subprocess.run(
        [PY, "-m", "app", "chat", "--new"],
        cwd=tmp_path,
        env=clean_env(AGENTDECK_STATE_DIR=str(tmp_path / "state")),
        input="/logs asker\nmake noise\n/logs\n/logs asker\n/logs nowhere\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "asker has sent no log messages" in out
    assert "Result: made some noise" in out
    assert "asker          2 message(s)" in out
    assert " info noisy is working" in out
    assert ' warning storage: {"disk": "almost full"}' in out
    assert "unknown server 'nowhere'" in out


def test_roots_changed_in_chat_reach_the_server(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "more").mkdir()
    project(tmp_path, ", roots: [docs]")
    docs, more = ((tmp_path / d).resolve() for d in ("docs", "more"))
    proc = subprocess.run(
        [PY, "-m", "app", "chat", "--new"],
        cwd=tmp_path,
        env=clean_env(AGENTDECK_STATE_DIR=str(tmp_path / "state")),
        input="/roots\nroots\n/roots asker +more\nroots\n/roots asker -docs\nroots\n/roots asker +nowhere\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    # Each answer lists the roots the server was given, one URI a line.
    lines = proc.stdout.splitlines()
    results = []
    for i, line in enumerate(lines):
        if line.startswith("Result: "):
            following = [more for more in lines[i + 1 : i + 3] if more.startswith("file://")]
            results.append([line.removeprefix("Result: "), *following])
    assert results == [[docs.as_uri()], [docs.as_uri(), more.as_uri()], [more.as_uri()]], proc.stdout
    assert f"asker          {docs}" in proc.stdout
    assert f"asker roots: {docs}, {more} (the server was told)" in proc.stdout
    assert f"not a folder: {tmp_path.resolve() / 'nowhere'}" in proc.stdout


def test_a_server_offered_no_roots_cannot_be_given_some_without_a_reconnect(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    project(tmp_path)
    proc = subprocess.run(
        [PY, "-m", "app", "chat", "--new"],
        cwd=tmp_path,
        env=clean_env(AGENTDECK_STATE_DIR=str(tmp_path / "state")),
        input="/roots asker +docs\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "asker was given no roots in agents.yaml" in proc.stdout and "/reconnect asker" in proc.stdout


def test_progress_has_its_own_erased_line_for_a_quiet_run_and_for_tools_call(tmp_path: Path) -> None:
    from tests.conftest import screen_lines

    project(tmp_path)
    env = clean_env(AGENTDECK_STATE_DIR=str(tmp_path / "state"))
    for args in (["run", "--quiet", "count 8"], ["tools", "call", "asker", "slow_count", "--args", '{"n": 8}']):
        child = pexpect.spawn(PY, ["-m", "app", *args], cwd=str(tmp_path), env=env, encoding="utf-8", timeout=60)
        child.expect(r"asker\.slow_count: step \d of 8 \(\d+%\)")
        child.expect(pexpect.EOF)
        # The progress line is erased before the answer: the screen ends with the answer alone.
        lines = [line for line in screen_lines(child.before) if line.strip()]
        assert lines == [("Result: counted 8" if args[0] == "run" else "counted 8")], lines


@pytest.mark.parametrize(("legacy", "version"), [(False, "2026-07-28"), (True, "2025-11-25")])
def test_the_same_answers_through_input_required_results_and_pushed_requests(
    tmp_path: Path, legacy: bool, version: str
) -> None:
    """asker --legacy refuses server/discover, so agentdeck falls back to the initialize handshake,
    and the server then pushes its elicitation, sampling and roots requests mid-call."""
    (tmp_path / "docs").mkdir()
    project(tmp_path, ", roots: [docs]", legacy=legacy)
    questions = ["protocol", "summarize a long text", "roots", "research the analytical engine", "confirm 1 Main St"]
    (tmp_path / "q.txt").write_text("\n".join(questions) + "\n")
    batch = subprocess.run(
        [PY, "-m", "app", "batch", "q.txt"], cwd=tmp_path, env=clean_env(AGENTDECK_STATE_DIR=str(tmp_path / "state")),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert batch.returncode == 0, batch.stderr
    rows = [json.loads(line) for line in (tmp_path / "q.results.jsonl").read_text().splitlines()]
    answers = {row["input"]: row["output"] for row in rows}
    assert answers["protocol"] == f"Result: {version}"
    assert answers["summarize a long text"].startswith("Result: summary: short version of a long text")
    assert answers["roots"] == f"Result: {(tmp_path / 'docs').resolve().as_uri()}"
    assert (
        answers["research the analytical engine"]
        == "Result: notes say: the analytical engine was first described in 1843"
    )
    assert "declined" in answers["confirm 1 Main St"]  # no one to ask in a batch: the form is declined
    child = spawn(tmp_path, "confirm 1 Main St")
    child.expect(r"answer\? \[a\]ccept / \[d\]ecline / \[c\]ancel: ")
    child.sendline("a")
    child.expect(r"\(y/n\): ")
    child.sendline("y")
    child.expect(r"\[skip\]: ")
    child.sendline("")
    child.expect(r"\(standard, express\) \[standard\]: ")
    child.sendline("express")
    child.expect(pexpect.EOF)
    assert "Result: shipping to 1 Main St by express" in str(child.before)
