"""The chat's terminal niceties: faithful Markdown and context-aware tab completion."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from rich.console import Console

from app.chat.complete import ChatCompleter
from app.chat.markdown import markdown
from tests.test_chat import chat_project, finish, spawn

__all__ = ["chat_project"]  # the imported fixture, used by the terminal test


def shown(text: str) -> list[str]:
    """The lines a plain 80-column terminal would show, right-stripped, blank lines dropped."""
    console = Console(record=True, width=80, color_system=None, force_terminal=False)
    console.print(markdown(text))
    return [line.rstrip() for line in console.export_text().splitlines() if line.strip()]


# ----- markdown -----


def test_single_line_breaks_stay_line_breaks():
    assert shown("Listing:\n[FILE] a.txt\n[DIR] notes") == ["Listing:", "[FILE] a.txt", "[DIR] notes"]


def test_angle_bracket_text_is_shown_literally():
    lines = shown("Mail <ann@example.com> or fill in <placeholder>; see <https://example.com>.\n\n<div>raw</div>")
    assert lines == ["Mail <ann@example.com> or fill in <placeholder>; see <https://example.com>.", "<div>raw</div>"]


def test_markdown_still_renders_structure():
    text = "# Title\n\nSome **bold** and `<code>`.\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    text += "```python\nx = 1\ny = 2\n```\n"
    lines = shown(text)
    assert lines[0].strip() == "Title"
    assert "Some bold and <code>." in lines  # emphasis markers gone, inline code kept verbatim
    assert any(line.strip() == "• one" for line in lines) and any(line.strip() == "• two" for line in lines)
    assert any(line.split() == ["a", "b"] for line in lines)
    assert lines[-2:] == [" x = 1", " y = 2"]  # fenced code: its own lines, no joining, no bullets


# ----- completer -----


class FakeServer:
    def __init__(self, name: str, tools: list[str] | None, prompts: list[str] | None = None, delay: float = 0) -> None:
        self.name = name
        self.tools = tools
        self.prompt_list = prompts
        self.delay = delay
        self.prompt_requests = 0

    def cached_tool_names(self) -> list[str] | None:
        return self.tools

    async def list_prompts(self) -> Any:
        self.prompt_requests += 1
        await asyncio.sleep(self.delay)
        if self.prompt_list is None:
            raise RuntimeError("Method not found")
        return SimpleNamespace(prompts=[SimpleNamespace(name=n) for n in self.prompt_list])

    async def list_resources(self) -> Any:
        await asyncio.sleep(self.delay)
        if self.prompt_list is None:
            raise RuntimeError("Method not found")
        return SimpleNamespace(resources=[SimpleNamespace(uri=f"{self.name}://{n}") for n in self.prompt_list])


@pytest.fixture
def fake_app() -> SimpleNamespace:
    files = FakeServer("files", ["read_file", "list_dir"], prompts=["summarise", "review"])
    crm = FakeServer("crm", ["delete_customer"], prompts=None)  # a server without prompts
    slow = FakeServer("slow", None, prompts=["never_seen"], delay=30)
    agents = {
        "main": SimpleNamespace(mcp_servers=[files, slow]),
        "support": SimpleNamespace(mcp_servers=[crm]),
        "summariser": SimpleNamespace(mcp_servers=[]),
    }
    deck = SimpleNamespace(
        agents=agents,
        servers={"files": files, "crm": crm, "slow": slow},
        pool=SimpleNamespace(slots={"files": 0, "crm": 0, "slow": 0, "broken": 0}),
    )
    return SimpleNamespace(agent_name="main", deck=deck)


def words(completer: ChatCompleter, text: str) -> list[str]:
    """What the prompt would offer with the cursor at the end of `text`, via the async path it uses."""

    async def collect() -> list[str]:
        event = CompleteEvent(completion_requested=True)
        doc = Document(text)
        return [
            doc.text[: len(doc.text) + c.start_position] + c.text
            async for c in completer.get_completions_async(doc, event)
        ]

    return asyncio.run(collect())


def test_command_names_and_agent_and_server_arguments(fake_app):
    c = ChatCompleter(fake_app)
    assert words(c, "/rec") == ["/reconnect"]
    assert words(c, "/re") == ["/reconnect", "/resources", "/resource"]
    assert words(c, "/logs f") == ["/logs files"]
    assert "/agents" in words(c, "/AG") and "/agent" in words(c, "/ag")
    assert words(c, "/agent ") == ["/agent main", "/agent support", "/agent summariser"]
    assert words(c, "/agent su") == ["/agent support", "/agent summariser"]
    assert words(c, "/reconnect b") == ["/reconnect broken"]  # a failed server can be reconnected
    assert words(c, "/agent support x") == []  # the argument is complete
    assert words(c, "hello /agent") == [] and words(c, "/servers ") == [] and words(c, "//agent ") == []


def test_tool_names_follow_the_current_agent(fake_app):
    c = ChatCompleter(fake_app)
    assert words(c, "/approvals r") == ["/approvals reset"]
    assert words(c, "/approvals reset ") == ["/approvals reset read_file", "/approvals reset list_dir"]
    fake_app.agent_name = "support"  # as /agent support does
    assert words(c, "/approvals reset d") == ["/approvals reset delete_customer"]


def test_paths_relative_to_the_current_directory_and_home(fake_app, tmp_path, monkeypatch):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.md").write_text("x")
    (tmp_path / "report.md").write_text("x")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    c = ChatCompleter(fake_app)
    assert words(c, "/save rep") == ["/save report.md"]
    assert words(c, "/attach notes/t") == ["/attach notes/todo.md"]
    assert words(c, "/attach ~/no") == ["/attach ~/notes"]  # a directory: type / to go on
    assert words(c, "/save ") == ["/save notes", "/save report.md"]


def test_prompt_names_are_listed_once_and_a_slow_server_does_not_hang(fake_app):
    c = ChatCompleter(fake_app, prompt_timeout=0.2)
    files, slow = fake_app.deck.agents["main"].mcp_servers
    assert words(c, "/prompt ") == ["/prompt summarise", "/prompt review"]  # slow timed out: left out
    assert words(c, "/prompt r") == ["/prompt review"]
    assert files.prompt_requests == 1 and slow.prompt_requests == 1  # cached after the first use
    fake_app.agent_name = "support"
    assert words(c, "/prompt ") == []  # its server offers no prompts
    fresh = FakeServer("files", ["read_file"], prompts=["changed"])
    fake_app.agent_name = "main"
    fake_app.deck.agents["main"].mcp_servers = [fresh]  # as /reconnect files does
    assert words(c, "/prompt ") == ["/prompt changed"]


def test_resource_uris_complete_from_the_current_agents_servers(fake_app):
    c = ChatCompleter(fake_app, prompt_timeout=0.2)
    assert words(c, "/resource ") == ["/resource files://summarise", "/resource files://review"]
    assert words(c, "/resource files://r") == ["/resource files://review"]
    fake_app.agent_name = "support"
    assert words(c, "/resource ") == []  # its server offers no resources


# ----- in a real terminal -----


def test_tab_completes_agent_and_server_names_in_the_terminal(chat_project):
    child = spawn(chat_project)
    child.send("/agent o")
    child.expect("other")  # the completion menu, offered while typing
    child.send("\t")
    child.send("\r")
    child.expect("other>")  # TAB completed `o` to `other`, so the switch worked
    child.send("/reconnect t")
    child.expect("toy")
    child.send("\t")
    child.send("\r")
    child.expect("toy reconnected")
    child.expect("other>")
    finish(child)
