"""Start-up (#13 §6): stdio servers start while the SDK loads, a status line shows it, the chat prompt
does not wait for slow servers, and nothing is left behind by the quick exit."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pexpect

from app.startup import cpu_ticks
from tests.conftest import PY, TOY, clean_env, screen_lines

RULES = r"""rules:
  - when: {user: 'add (?P<a>\d+) and (?P<b>\d+)'}
    call: [{tool: add, args: {a: "{a|int}", b: "{b|int}"}}]
    reply: "Sum is {output}"
  - when: {user: 'slow echo (?P<w>\w+)'}
    call: [{tool: s_echo, args: {text: "{w}"}}]
    reply: "The slow server says {output}"
"""


def write_project(tmp: Path, slow: str = "") -> None:
    """Two toy servers (the second with s_ names and `slow` extra arguments), each logging its starts."""
    (tmp / "rules.yaml").write_text(RULES)
    (tmp / "tmp").mkdir()
    (tmp / "agents.yaml").write_text(
        "providers:\n  offline: {kind: offline, rules: rules.yaml}\n"
        "servers:\n"
        f"  toy: {{transport: stdio, command: '{PY}', args: ['{TOY}', '--pid-file', 'toy.pids']}}\n"
        f"  slow: {{transport: stdio, command: '{PY}', args: ['{TOY}', '--prefix', 's_', '--pid-file', 'slow.pids'"
        f"{slow}]}}\n"
        "agents:\n  main: {servers: [toy, slow]}\n"
    )


def env_for(tmp: Path, **extra: str) -> dict[str, str]:
    return clean_env(AGENTDECK_STATE_DIR=str(tmp / "state"), TMPDIR=str(tmp / "tmp"), **extra)


def pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def gone(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def wait_for_row(screen: Any, *cells: str, timeout: float = 10) -> None:
    """Until a line of the screen starts with these cells (a /servers row)."""
    deadline = time.monotonic() + timeout
    while not any(line.split()[: len(cells)] == list(cells) for line in screen.text().splitlines()):
        assert time.monotonic() < deadline, screen.text()
        time.sleep(0.1)


def test_run_talks_to_servers_spawned_before_the_sdk_finished_loading(tmp_path: Path) -> None:
    write_project(tmp_path)
    proc = subprocess.run(
        [PY, "-m", "app", "run", "add 2 and 3"],
        cwd=tmp_path,
        env=env_for(tmp_path, AGENTDECK_DEBUG="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Sum is 5"
    log = proc.stderr
    spawned, loaded = log.find("spawned toy early"), log.find("the Agents SDK loaded")
    assert 0 <= spawned < loaded, log  # the child was running while the SDK was still importing
    # One process per server: the SDK's server object took over the early child rather than spawning its own.
    assert len(pids(tmp_path / "toy.pids")) == 1 and len(pids(tmp_path / "slow.pids")) == 1
    assert all(gone(pid) for pid in pids(tmp_path / "toy.pids") + pids(tmp_path / "slow.pids"))


def test_a_failure_after_the_early_spawn_stops_the_children_and_leaves_no_files(tmp_path: Path) -> None:
    write_project(tmp_path)
    # Both servers now offer `add`: a config error found only once both are connected.
    config = (tmp_path / "agents.yaml").read_text().replace("'--prefix', 's_', ", "")
    (tmp_path / "agents.yaml").write_text(config)
    proc = subprocess.run(
        [PY, "-m", "app", "run", "add 2 and 3"],
        cwd=tmp_path,
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "add" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert all(gone(pid) for pid in pids(tmp_path / "toy.pids") + pids(tmp_path / "slow.pids"))
    # Stderr logs are temporary files; the quick exit still removes them.
    assert list((tmp_path / "tmp").iterdir()) == []


def test_run_on_a_terminal_shows_servers_starting_then_erases_the_line(tmp_path: Path) -> None:
    write_project(tmp_path)
    child = pexpect.spawn(
        PY, ["-m", "app", "run", "add 2 and 3"], cwd=str(tmp_path), env=env_for(tmp_path), encoding="utf-8", timeout=90
    )
    child.expect(pexpect.EOF)
    child.close()
    raw = str(child.before)
    assert child.exitstatus == 0, raw
    assert "starting" in raw and "toy ✓" in raw and "slow ✓" in raw and "Agents SDK ✓" in raw, raw
    shown = "\n".join(screen_lines(raw))
    assert "starting" not in shown and "Sum is 5" in shown, shown


def test_the_chat_prompt_comes_before_a_slow_server_whose_tools_join_when_ready(tmp_path: Path, screen_for) -> None:
    write_project(tmp_path, slow=", '--delay', '8'")
    screen = screen_for(["--new"], TMPDIR=str(tmp_path / "tmp"))
    screen.wait_for("main>", timeout=60)
    first = screen.wait_for("starting: slow", timeout=5)  # the bottom toolbar, drawn with the prompt
    assert len(pids(tmp_path / "slow.pids")) == 1 and "connected" not in first
    screen.keys("/servers", "Enter")
    wait_for_row(screen, "slow", "starting")
    # A message for the agent waits for its server, then uses the tool it brought.
    screen.keys("slow echo hello", "Enter")
    answered = screen.wait_for("The slow server says hello", timeout=60)
    assert "s_echo" in answered
    screen.keys("/servers", "Enter")
    wait_for_row(screen, "slow", "connected")
    assert "starting: slow" not in screen.text()  # the toolbar went with the last starting server


def test_the_starting_bar_goes_away_by_itself_once_the_server_is_up(tmp_path: Path, screen_for) -> None:
    write_project(tmp_path, slow=", '--delay', '4'")
    screen = screen_for(["--new"], TMPDIR=str(tmp_path / "tmp"))
    screen.wait_for("main>", timeout=60)
    screen.wait_for("starting: slow", timeout=5)
    deadline = time.monotonic() + 30
    while "starting: slow" in screen.text():  # nothing typed: the prompt is redrawn when the server joins
        assert time.monotonic() < deadline, screen.text()
        time.sleep(0.1)
    screen.keys("/servers", "Enter")
    wait_for_row(screen, "slow", "connected")


def test_a_server_failing_after_the_prompt_is_reported_and_the_chat_goes_on(tmp_path: Path, screen_for) -> None:
    write_project(tmp_path, slow=", '--delay', '6', '--fail-after-delay'")
    screen = screen_for(["--new"], TMPDIR=str(tmp_path / "tmp"))
    screen.wait_for("main>", timeout=60)
    failed = screen.wait_for("cannot open its database", timeout=60)
    assert "MCP server 'slow'" in failed and "/reconnect slow" in failed, failed
    screen.keys("add 2 and 3", "Enter")
    screen.wait_for("Sum is 5")
    screen.keys("/servers", "Enter")
    wait_for_row(screen, "slow", "failed")


def test_cpu_ticks_read_from_proc_grow_while_a_process_works() -> None:
    before = cpu_ticks(os.getpid())
    assert isinstance(before, int)
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass
    after = cpu_ticks(os.getpid())
    assert after is not None and after > before
    assert cpu_ticks(2**22 + 12345) is None  # no such process
