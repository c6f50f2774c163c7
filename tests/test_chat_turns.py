"""The chat's turns on a real terminal screen (tmux): what stays on screen after streaming and Ctrl-C."""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import PY, ROOT, clean_env


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


POEM = (
    "First line of the answer here.\\n\\nSecond paragraph is longer and it keeps going on.\\n\\n"
    "Third paragraph arrives later still, with more words.\\n\\nFourth one."
)


def test_ctrl_c_mid_stream_leaves_each_line_once(tmp_path, screen_for, fake_openai, write_rules):
    rules = write_rules(f'rules:\n  - when: {{user: poem}}\n    reply: "{POEM}"\n')
    fake = fake_openai(rules, chunk_delay=0.4)
    (tmp_path / "agents.yaml").write_text(
        "providers:\n  openai: {kind: openai}\nagents:\n  main: {provider: openai, model: fake-model}\n"
    )
    screen = screen_for(
        ["--new"], OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=fake.base_url, OPENAI_AGENTS_DISABLE_TRACING="1"
    )
    screen.wait_for("main>")
    screen.keys("poem", "Enter")
    screen.wait_for("Second paragraph")
    screen.keys("C-c")
    shown = screen.wait_for("turn cancelled")
    assert shown.count("First line of the answer here.") == 1, "\n" + shown
    assert "^C" not in shown and "Fourth one" not in shown
