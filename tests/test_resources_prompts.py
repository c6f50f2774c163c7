"""Servers' resources and prompts for the user (#14 §1): run --resource, and /resources, /resource,
/prompts and /prompt in chat, against the bundled customers server and the asker fixture."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import PY, ROOT, clean_env, read_call_log

ASKER = ROOT / "tests" / "fixture_servers" / "asker.py"
RULES = r"""rules:
  - when: {user: '(?s)what is in it.*CREATE TABLE (?P<t>\w+)'}
    reply: "the first table is {t}"
  - when: {user: '(?s)who is this.*"name":"(?P<n>[^"]+)"'}
    reply: "this is {n}"
  - when: {user: '(?s)Focus area: (?P<f>\w+)'}
    reply: "I will focus on {f}"
  - when: {user: 'Please review (?P<t>\w+)'}
    reply: "reviewing {t}"
"""


def project(tmp: Path) -> Path:
    (tmp / "rules.yaml").write_text(RULES)
    (tmp / "agents.yaml").write_text(
        "providers:\n  offline: {kind: offline, rules: rules.yaml}\n"
        "servers:\n"
        f"  customers: {{transport: stdio, command: '{PY}', args: ['-m', 'servers.customers', '--db', 'c.db',"
        " '--size', '100']}\n"
        f"  asker: {{transport: stdio, command: '{PY}', args: ['{ASKER}']}}\n"
        "agents:\n  main: {servers: [customers, asker]}\n"
    )
    return tmp


def cli(tmp: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "app", *args],
        cwd=tmp,
        env=clean_env(AGENTDECK_STATE_DIR=str(tmp / "state")),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_attaches_resources_and_names_an_unknown_one(tmp_path: Path) -> None:
    project(tmp_path)
    ok = cli(tmp_path, "run", "-r", "schema://customers", "what is in it", stdin="")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().startswith("the first table is ")
    bad = cli(tmp_path, "run", "--resource", "nothing://x", "what is in it", stdin="")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "no server could read the resource nothing://x" in bad.stderr
    assert "customers:" in bad.stderr and "asker:" in bad.stderr  # every server tried is named


def test_chat_lists_and_attaches_resources_and_sends_prompts(tmp_path: Path) -> None:
    project(tmp_path)
    lines = [
        "/resources",
        "/resource customers://1",
        "who is this",
        "/prompts",
        "/prompt customer_service_instructions focus_area=billing",
        "/prompt review",
        "/prompt review topic=docs",
        "/prompt nope",
        "/resource customers://x",
    ]
    proc = cli(tmp_path, "chat", "--new", stdin="\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "schema://customers" in out and "customers://{customer_id}" in out  # a resource and a template
    assert "attached customers://1 (from customers)" in out
    assert "this is " in out  # the model saw the attached record
    assert "/prompt customer_service_instructions [focus_area=…]" in out and "/prompt review topic=…" in out
    assert "I will focus on billing" in out
    assert "/prompt review needs topic=…" in out  # no terminal to ask on: say what is missing
    assert "reviewing docs" in out
    assert "no prompt named 'nope'" in out
    assert "no server could read the resource customers://x" in out


def with_instructions(tmp: Path, instructions: str) -> None:
    config = (tmp / "agents.yaml").read_text()
    (tmp / "agents.yaml").write_text(
        config.replace("main: {servers:", f"main: {{instructions: {instructions}, servers:")
    )


def test_an_agents_instructions_can_be_a_servers_prompt(tmp_path: Path) -> None:
    project(tmp_path)
    (tmp_path / "rules.yaml").write_text(
        RULES + "  - when: {user: 'hello', instructions: 'Focus area: (?P<f>\\w+)'}\n    reply: 'instructed for {f}'\n"
    )
    with_instructions(
        tmp_path, "{prompt: customer_service_instructions, server: customers, args: {focus_area: returns}}"
    )
    proc = cli(tmp_path, "run", "hello", stdin="")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "instructed for returns"


def test_a_missing_prompt_or_argument_is_one_clear_error_naming_both(tmp_path: Path) -> None:
    project(tmp_path)
    with_instructions(tmp_path, "{prompt: nope, server: customers}")
    proc = cli(tmp_path, "run", "hello", stdin="")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "server 'customers' has no prompt named 'nope' (its prompts: customer_service_instructions)" in proc.stderr
    assert "agents.main.instructions" in proc.stderr
    project(tmp_path)
    with_instructions(tmp_path, "{prompt: review, server: asker}")
    proc = cli(tmp_path, "run", "hello", stdin="")
    assert "the prompt 'review' of server 'asker' needs the argument 'topic'" in proc.stderr, proc.stderr
    assert proc.returncode != 0 and "Traceback" not in proc.stderr


def test_the_prompts_server_must_be_one_of_the_agents(tmp_path: Path) -> None:
    project(tmp_path)
    with_instructions(tmp_path, "{prompt: review, server: elsewhere}")
    proc = cli(tmp_path, "config", "validate")
    assert proc.returncode == 2, proc.stderr
    assert (
        "agents.main.instructions.server" in proc.stderr
        and "'elsewhere' is not one of the agent's servers" in proc.stderr
    )


def test_resources_as_tools_lets_the_model_list_and_read_them_filtered_like_tools(tmp_path: Path) -> None:
    project(tmp_path)
    config = (tmp_path / "agents.yaml").read_text()
    config = config.replace("'--size', '100']}", "'--size', '100'], resources_as_tools: true}")
    (tmp_path / "agents.yaml").write_text(config.replace("rules: rules.yaml}", "rules: rules.yaml, log: calls.jsonl}"))
    (tmp_path / "rules.yaml").write_text(
        RULES + "  - when: {user: 'list them'}\n    call: [{tool: list_resources, args: {}}]\n"
        "    reply: 'Listed: {output}'\n"
        "  - when: {user: 'read the schema'}\n    call: [{tool: read_resource, args: {uri: 'schema://customers'}}]\n"
        "    reply: 'Read: {output}'\n"
    )
    listed = cli(tmp_path, "run", "list them", stdin="")
    assert listed.returncode == 0, listed.stderr
    assert "schema://customers — schema: The database schema (SQL)." in listed.stdout
    assert "customers://{customer_id} — customer_resource" in listed.stdout
    read = cli(tmp_path, "run", "read the schema", stdin="")
    assert read.returncode == 0 and "Read: " in read.stdout and "CREATE TABLE" in read.stdout, read.stderr
    config = (tmp_path / "agents.yaml").read_text()
    (tmp_path / "agents.yaml").write_text(
        config.replace("main: {servers:", "main: {tools: {block: [read_*]}, servers:")
    )
    blocked = cli(tmp_path, "run", "hello", stdin="")
    assert blocked.returncode == 0, blocked.stderr
    offered = read_call_log(tmp_path / "calls.jsonl")[-1]["tools"]
    assert "list_resources" in offered and "read_resource" not in offered


async def test_prompt_lists_are_cached_with_the_tools_and_refreshed_when_they_change(tmp_path: Path) -> None:
    import asyncio

    from app.config.loader import load_config
    from app.deck import Deck

    path = tmp_path / "agents.yaml"
    path.write_text(
        "providers:\n  offline: {kind: offline}\n"
        f"servers:\n  asker: {{transport: stdio, command: '{PY}', args: ['{ASKER}'], cache_tools: true}}\n"
        "agents:\n  main: {servers: [asker]}\n"
    )
    async with Deck(load_config(path, {})) as deck:
        server = deck.servers["asker"]
        for _ in range(3):
            names = [p.name for p in (await server.list_prompts()).prompts]
        assert names == ["review"] and server.lists.fetches["prompts"] == 1
        await server.call_tool("more_prompts", {})
        for _ in range(100):  # the change event arrives after the call returns
            names = [p.name for p in (await server.list_prompts()).prompts]
            if "extra" in names:
                break
            await asyncio.sleep(0.02)
        assert names == ["review", "extra"] and server.lists.fetches["prompts"] >= 2
    # Without cache_tools every listing asks the server.
    path.write_text(path.read_text().replace(", cache_tools: true", ""))
    async with Deck(load_config(path, {})) as deck:
        server = deck.servers["asker"]
        for _ in range(3):
            await server.list_prompts()
        assert server.lists.fetches["prompts"] == 3
