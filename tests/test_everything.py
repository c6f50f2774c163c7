"""agentdeck against a server nobody here wrote: @modelcontextprotocol/server-everything from npm."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import clean_env, npm_install, read_call_log, run_cli

PACKAGE = "@modelcontextprotocol/server-everything@2026.8.31"


@pytest.fixture(scope="module")
def everything(tmp_path_factory) -> Path:
    """Install the server from the npm registry into a private folder (once per module)."""
    folder = tmp_path_factory.mktemp("everything")
    assert (npm_install(folder, PACKAGE) / "mcp-server-everything").exists()
    return folder


@pytest.fixture
def project(everything, tmp_path):
    (tmp_path / "rules.yaml").write_text(
        "rules:\n"
        "  - when: {user: 'sum of (?P<a>\\d+) and (?P<b>\\d+)'}\n"
        "    call: [{tool: get-sum, args: {a: '{a|int}', b: '{b|int}'}}]\n"
        "    reply: 'everything says: {output}'\n"
    )
    (tmp_path / "agents.yaml").write_text(
        f"""
providers:
  offline: {{kind: offline, rules: rules.yaml, log: calls.jsonl}}
servers:
  everything:
    transport: stdio
    command: npx
    args: ["--no-install", "mcp-server-everything"]
    cwd: {everything}
    start_timeout: 60
    tools: {{block: ["*-long-running-*", "toggle-*"]}}
agents:
  main: {{servers: [everything], provider: offline}}
"""
    )
    return tmp_path


def test_tools_list_and_call(project):
    r = run_cli("tools", "list", "--json", cwd=project)
    assert r.code == 0, r.err
    names = [t["name"] for t in json.loads(r.out)]
    assert "echo" in names and "get-sum" in names
    assert not any(n.startswith("toggle-") for n in names)
    r = run_cli("tools", "call", "everything", "echo", "--args", '{"message": "hello from agentdeck"}', cwd=project)
    assert r.code == 0 and r.out.strip() == "Echo: hello from agentdeck"


def test_agent_run_through_the_server(project):
    r = run_cli("run", "what is the sum of 19 and 23", "--json", cwd=project)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert "42" in doc["output"] and doc["output"].startswith("everything says:")
    assert [(c["server"], c["tool"], c["ok"]) for c in doc["tool_calls"]] == [("everything", "get-sum", True)]
    assert "get-sum" in read_call_log(project / "calls.jsonl")[0]["tools"]


def test_child_environment_does_not_leak_secrets(project):
    env = clean_env(OPENAI_API_KEY="sk-should-not-leak", SOME_PASSWORD="pw-should-not-leak")
    r = run_cli("tools", "call", "everything", "get-env", cwd=project, env=env)
    assert r.code == 0, r.err
    assert "sk-should-not-leak" not in r.out and "pw-should-not-leak" not in r.out
    assert "PATH" in r.out


def test_a_tool_that_only_runs_as_a_task_is_not_offered_and_a_warning_names_it(project):
    r = run_cli("run", "what is the sum of 1 and 2", cwd=project)
    assert r.code == 0, r.err
    offered = read_call_log(project / "calls.jsonl")[0]["tools"]
    assert "get-sum" in offered and "simulate-research-query" not in offered
    assert "only run as tasks" in r.err and "simulate-research-query" in r.err, r.err
    listed = run_cli("tools", "list", "--json", cwd=project)
    assert "simulate-research-query" not in [t["name"] for t in json.loads(listed.out)]
    assert "simulate-research-query" in listed.err


async def test_over_streamable_http_including_a_server_restart(everything, tmp_path):
    import asyncio
    import os

    from app.config.loader import load_config
    from app.deck import Deck
    from tests.conftest import free_port, wait_for_port

    port = free_port()
    binary = str(everything / "node_modules" / ".bin" / "mcp-server-everything")

    def start() -> subprocess.Popen[bytes]:
        env = {**os.environ, "PORT": str(port)}
        proc = subprocess.Popen(
            [binary, "streamableHttp"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(port, proc)
        return proc

    (tmp_path / "rules.yaml").write_text(
        "rules:\n"
        "  - when: {user: 'sum of (?P<a>\\d+) and (?P<b>\\d+)'}\n"
        "    call: [{tool: get-sum, args: {a: '{a|int}', b: '{b|int}'}}]\n"
        "    reply: 'everything says: {output}'\n"
    )
    (tmp_path / "agents.yaml").write_text(
        "providers:\n  offline: {kind: offline, rules: rules.yaml}\n"
        f"servers:\n  everything: {{transport: streamable_http, url: 'http://127.0.0.1:{port}/mcp'}}\n"
        "agents:\n  main: {servers: [everything]}\n"
    )
    proc = start()
    try:
        r = await asyncio.to_thread(
            run_cli, "tools", "call", "everything", "echo", "--args", '{"message": "hi"}', cwd=tmp_path
        )
        assert r.code == 0 and r.out.strip() == "Echo: hi", r.err
        r = await asyncio.to_thread(run_cli, "run", "what is the sum of 19 and 23", "--json", cwd=tmp_path)
        assert r.code == 0, r.err
        assert json.loads(r.out)["output"].startswith("everything says: The sum of 19 and 23 is 42")
        async with Deck(load_config(tmp_path / "agents.yaml", {})) as deck:
            server = deck.servers["everything"]
            first = await server.call_tool("get-sum", {"a": 1, "b": 2})
            assert first.content[0].text == "The sum of 1 and 2 is 3."
            # The restarted server has forgotten the session (it answers 400 "No valid session ID"):
            # the call was never run, so agentdeck reconnects and sends it again.
            proc.kill()
            proc.wait()
            proc = await asyncio.to_thread(start)
            again = await server.call_tool("get-sum", {"a": 2, "b": 3})
            assert again.content[0].text == "The sum of 2 and 3 is 5."
            assert server.recovery.reconnects == 1
    finally:
        proc.kill()
        proc.wait()


async def test_a_roots_change_is_notified_to_a_server_on_the_older_protocol(project):
    import asyncio

    from app.config.loader import load_config
    from app.deck import Deck

    docs, more = project / "docs", project / "more"
    docs.mkdir()
    more.mkdir()
    config = (project / "agents.yaml").read_text().replace("start_timeout: 60", "start_timeout: 60\n    roots: [docs]")
    (project / "agents.yaml").write_text(config)
    async with Deck(load_config(project / "agents.yaml", {})) as deck:
        server = deck.servers["everything"]
        assert server.session.protocol_version == "2025-11-25"  # pushed requests, not input-required results
        first = (await server.call_tool("get-roots-list", {})).content[0].text
        assert docs.resolve().as_uri() in first and more.resolve().as_uri() not in first
        assert await server.set_roots([docs.resolve(), more.resolve()])
        # The server asks for the roots again when told they changed (roots/list_changed).
        for _ in range(100):
            text = (await server.call_tool("get-roots-list", {})).content[0].text
            if more.resolve().as_uri() in text:
                break
            await asyncio.sleep(0.05)
        assert more.resolve().as_uri() in text and docs.resolve().as_uri() in text


# Every tool the server offers, its arguments, and what its answer through `tools call` contains.
EVERY_TOOL = {
    "echo": ({"message": "hi"}, "Echo: hi"),
    "get-annotated-message": ({"messageType": "success", "includeImage": True}, "[image: image/png]"),
    "get-env": ({}, '"PATH"'),
    "get-resource-links": ({"count": 2}, "[resource link demo://resource/"),
    "get-resource-reference": ({"resourceType": "Text", "resourceId": 1}, "[resource demo://resource/dynamic/text/1"),
    "get-structured-content": ({"location": "Chicago"}, '"temperature"'),
    "get-sum": ({"a": 2, "b": 3}, "5"),
    "get-tiny-image": ({}, "[image: image/png]"),
    "gzip-file-as-resource": (
        {"data": "data:text/plain;base64,aGVsbG8gd29ybGQ=", "name": "h.gz"},
        "[resource link demo://resource/session/h.gz: h.gz (application/gzip)]",
    ),
    "toggle-simulated-logging": ({}, "Started simulated"),
    "toggle-subscriber-updates": ({}, "Started simulated resource updated"),
    "trigger-long-running-operation": ({"duration": 0.4, "steps": 2}, "Long running operation completed"),
    "get-roots-list": ({}, "URI: file://"),
    "trigger-elicitation-request": ({}, "declined"),  # no terminal: declined, and the server says so
    "trigger-url-elicitation": ({"url": "https://example.com/x"}, "declined"),
    "trigger-sampling-request": ({"prompt": "Tell me a joke", "maxTokens": 20}, "the offline model samples a joke"),
}


async def test_every_tool_it_offers_works_through_tools_call(project):
    """Every tool through what `tools call` runs (one connection here), and two through the command itself."""
    import asyncio

    from app.commands.tools import result_lines
    from app.config.loader import load_config
    from app.toolbox import Toolbox

    (project / "docs").mkdir()
    (project / "rules.yaml").write_text(
        "rules:\n  - when: {user: 'Tell me a joke'}\n    reply: 'the offline model samples a joke'\n"
    )
    config = (project / "agents.yaml").read_text()
    config = config.replace('    tools: {block: ["*-long-running-*", "toggle-*"]}\n', "    roots: [docs]\n")
    (project / "agents.yaml").write_text(config)
    listed = await asyncio.to_thread(run_cli, "tools", "list", "--json", cwd=project)
    assert listed.code == 0, listed.err
    # The sampling, elicitation and roots tools are offered because tools list declares those
    # capabilities as a run does; the task-only tool is left out.
    assert {t["name"] for t in json.loads(listed.out)} == set(EVERY_TOOL)

    loaded = load_config(project / "agents.yaml", dict(clean_env()))
    async with Toolbox(loaded, ["everything"], probe_hosted=False) as box:
        server = box.server("everything")
        for name, (arguments, expected) in EVERY_TOOL.items():
            result = await server.call_tool(name, arguments)
            shown = "\n".join(result_lines(result))
            assert not result.is_error and expected in shown, f"{name}: {shown}"
        for name in ("toggle-simulated-logging", "toggle-subscriber-updates"):
            await server.call_tool(name, {})  # off again: the server's timers would delay its exit
    for name in ("trigger-sampling-request", "get-resource-links"):
        arguments, expected = EVERY_TOOL[name]
        called = await asyncio.to_thread(
            run_cli, "tools", "call", "everything", name, "--args", json.dumps(arguments), cwd=project
        )
        assert called.code == 0 and expected in called.out, called.out + called.err


def test_in_a_terminal_chat_forms_progress_resources_and_prompts(project, screen_for):
    (project / "rules.yaml").write_text(
        "rules:\n"
        "  - when: {user: 'elicit'}\n"
        "    call: [{tool: trigger-elicitation-request, args: {}}]\n"
        "    reply: 'got: {output}'\n"
        "  - when: {user: 'long'}\n"
        "    call: [{tool: trigger-long-running-operation, args: {duration: 2, steps: 4}}]\n"
        "    reply: 'done: {output}'\n"
    )
    # A 3 s timeout: the form takes longer to fill in, which must not count against the server.
    config = (project / "agents.yaml").read_text()
    config = config.replace('    tools: {block: ["*-long-running-*", "toggle-*"]}\n', "    timeout: 3\n")
    (project / "agents.yaml").write_text(config)
    screen = screen_for(["--new"])
    screen.wait_for("main>", timeout=60)
    screen.keys("elicit", "Enter")
    screen.wait_for("answer? [a]ccept / [d]ecline / [c]ancel:")
    answers = [
        ("a", "String*"),
        ("Ada Lovelace", "Boolean"),
        ("y", "String with default"),
        ("", "String with email format (email)"),
        ("not-an-email", "expected an email address"),
        ("ada@example.com", "String with uri format (uri)"),
        ("https://ada.example", "String with date format (date)"),
        ("1815-12-10", "Integer"),
        ("", "Number in range 1-1000"),
        ("7", "Untitled Single Select Enum"),
        ("", "(Guitar, Piano, Violin, Drums, Bass; several"),
        ("Piano, 5", "Titled Single Select Enum"),
        ("Wonder Woman", "(Tuna, Salmon, Trout; several"),
        ("", "(Cats, Dogs, Birds, Fish, Reptiles)"),
        ("Dogs", "got: "),
    ]
    for text, next_prompt in answers:
        screen.keys(text, "Enter") if text else screen.keys("Enter")
        screen.wait_for(next_prompt)
    sent = (project / "calls.jsonl").read_text()
    for value in ('\\"Piano\\"', '\\"Bass\\"', '\\"hero-3\\"', '\\"pet-2\\"', '\\"number\\": 7', '\\"integer\\": 42'):
        assert value in sent, value
    screen.keys("long", "Enter")
    screen.wait_for("everything.trigger-long-running-operation: 25%")  # live, under the running call
    screen.wait_for("done: Long running operation completed")
    screen.keys("/resources", "Enter")
    screen.wait_for("demo://resource/dynamic/text/{resourceId}")
    screen.keys("/prompts", "Enter")
    screen.wait_for("/prompt args-prompt city=… [state=…]")


def test_a_batch_declines_the_servers_form_and_the_row_says_so(project):
    (project / "rules.yaml").write_text(
        "rules:\n  - when: {user: 'elicit'}\n    call: [{tool: trigger-elicitation-request, args: {}}]\n"
        "    reply: 'got: {output}'\n"
    )
    (project / "in.txt").write_text("elicit\n")
    r = run_cli("batch", "in.txt", cwd=project)
    assert r.code == 0, r.err
    row = json.loads((project / "in.results.jsonl").read_text())
    assert row["status"] == "ok" and "User declined" in row["output"], row
    assert row["tool_calls"] == [
        {
            "server": "everything",
            "tool": "trigger-elicitation-request",
            "ok": True,
            "duration_ms": row["tool_calls"][0]["duration_ms"],
        }
    ]


def test_every_tool_it_offers_works_through_runs_with_the_offline_model(project):
    (project / "docs").mkdir()
    rules = ["rules:", "  - when: {user: 'Tell me a joke'}", "    reply: 'the offline model samples a joke'"]
    for name, (arguments, _) in EVERY_TOOL.items():
        rules += [f"  - when: {{user: 'use {name}'}}", f"    call: [{{tool: {name}, args: {json.dumps(arguments)}}}]"]
        rules += ["    reply: 'said: {output}'"]
    (project / "rules.yaml").write_text("\n".join(rules) + "\n")
    config = (project / "agents.yaml").read_text()
    config = config.replace('    tools: {block: ["*-long-running-*", "toggle-*"]}\n', "    roots: [docs]\n")
    (project / "agents.yaml").write_text(config)
    rules += ["  - when: {user: 'use a blob'}"]
    rules += [
        "    call: [{tool: get-resource-reference, args: {resourceType: Blob, resourceId: 1}}]",
        "    reply: 'said: {output}'",
    ]
    (project / "rules.yaml").write_text("\n".join(rules) + "\n")
    (project / "in.txt").write_text("".join(f"use {name}\n" for name in EVERY_TOOL) + "use a blob\n")
    # A batch is one run per row through the agent: every tool once, forms declined (no one to ask).
    r = run_cli("batch", "in.txt", "--concurrency", "4", cwd=project)
    assert r.code == 0, r.err
    rows = {row["input"].removeprefix("use "): row for row in map(json.loads, (project / "in.results.jsonl").open())}
    blob = rows.pop("a blob")
    assert set(rows) == set(EVERY_TOOL)
    for name, row in rows.items():
        assert row["status"] == "ok" and [c["tool"] for c in row["tool_calls"]] == [name], row
        assert row["tool_calls"][0]["ok"], row
        assert row["output"].startswith("said: ") and "Contents(" not in row["output"], row
    assert "the offline model samples a joke" in rows["trigger-sampling-request"]["output"]
    assert (project / "docs").resolve().as_uri() in rows["get-roots-list"]["output"]
    assert "declined" in rows["trigger-elicitation-request"]["output"]
    # Every content type reaches the model as text or an image, never as a serialised MCP object.
    media = ("get-resource-reference", "get-resource-links", "get-tiny-image", "get-annotated-message")
    for row in [*(rows[name] for name in media), blob]:
        assert '"type":' not in row["output"] and "mimeType" not in row["output"], row["output"]
    assert "[resource demo://resource/dynamic/text/1 (text/plain)]" in rows["get-resource-reference"]["output"]
    assert "[binary resource demo://resource/dynamic/blob/1:" in blob["output"] and " bytes]" in blob["output"]
    assert rows["get-resource-links"]["output"].count("[resource link ") == 2
