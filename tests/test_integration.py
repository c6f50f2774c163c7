"""Real MCP servers (stdio, SSE, streamable HTTP) through the Deck, with the offline model."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from app.approvals import ApprovalRequest, approve_all, decline_all
from app.config import load_config
from app.deck import Deck, DeckOptions
from app.errors import ConfigError, ServerStartError
from app.runner import run_question
from tests.conftest import PY, TOY, read_call_log

RULES = """
rules:
  - name: delete
    when: {user: 'delete customer (?P<id>\\d+)'}
    call: [{tool: delete_customer, args: {customer_id: "{id|int}"}}]
    reply: "Result: {output}"
  - name: add
    when: {user: 'add (?P<a>\\d+) and (?P<b>\\d+)'}
    call: [{tool: add, args: {a: "{a|int}", b: "{b|int}"}}]
    reply: "Sum: {output}"
  - name: add-prefixed
    when: {user: 'both add (?P<a>\\d+)'}
    call: [{tool: toy__add, args: {a: "{a|int}", b: 1}}, {tool: other__add, args: {a: "{a|int}", b: 2}}]
    reply: "{output1} and {output2}"
  - name: grow
    when: {user: 'grow'}
    call: [{tool: grow}]
    reply: "grew"
  - name: route
    when: {user: '(?i)billing'}
    handoff: billing
  - name: billing
    when: {instructions: 'billing'}
    reply: "Billing agent here about: {input}"
  - name: ask-expert
    when: {user: 'ask expert (?P<q>.+)'}
    call: [{tool: ask_expert, args: {input: "{q}"}}]
    reply: "Expert says: {output}"
  - name: expert
    when: {instructions: 'expert'}
    reply: "the expert answer to {input}"
default: "offered: {tools}"
"""


@pytest.fixture
def rules_file(write_rules) -> Path:
    return write_rules(RULES)


def provider_block(log: Path) -> str:
    return f"""
providers:
  offline: {{kind: offline, rules: rules.yaml, log: {log}}}
defaults: {{provider: offline}}
"""


def offered(log: Path) -> list[list[str]]:
    return [r["tools"] for r in read_call_log(log)]


def server_block(transport: str, url: str | None, extra: str = "", name: str = "toy", count: Path | None = None) -> str:
    if transport == "stdio":
        args = f'["{TOY}"' + (f', "--count-file", "{count}"' if count else "") + "]"
        return f"  {name}:\n    transport: stdio\n    command: {PY}\n    args: {args}\n{extra}"
    return f"  {name}:\n    transport: {transport}\n    url: {url}\n{extra}"


@pytest.mark.parametrize("transport", ["stdio", "sse", "streamable_http"])
async def test_filters_decide_what_the_model_is_offered(transport, http_toy, write_config, rules_file, tmp_path):
    url = None if transport == "stdio" else http_toy("sse" if transport == "sse" else "http").url
    log = tmp_path / "calls.jsonl"
    extra = "    policy: no_destructive\n    tools: {block: [echo]}\n"
    path = write_config(
        provider_block(log)
        + "servers:\n"
        + server_block(transport, url, extra)
        + "agents:\n  main:\n    servers: [toy]\n    tools: {block: ['*_note']}\n"
    )
    async with Deck(load_config(path, {})) as deck:
        outcome = await run_question(deck, "add 2 and 40", decline_all)
    assert outcome.output == "Sum: 42"
    assert offered(log)[0] == ["add", "get_customer", "nap", "grow"]
    assert [(c.server, c.tool, c.arguments, c.ok) for c in outcome.tool_calls] == [
        ("toy", "add", {"a": 2, "b": 40}, True)
    ]


async def test_tool_list_cache_honours_ttl_counted_on_the_server(write_config, rules_file, tmp_path):
    log, count = tmp_path / "calls.jsonl", tmp_path / "count"
    extra = "    cache_tools: {ttl: 1.0}\n"
    path = write_config(
        provider_block(log)
        + "servers:\n"
        + server_block("stdio", None, extra, count=count)
        + "agents:\n  main: {servers: [toy]}\n"
    )
    async with Deck(load_config(path, {})) as deck:
        for _ in range(3):
            await run_question(deck, "add 1 and 2", decline_all)  # 2 model turns each
        assert int(count.read_text()) == 1
        await asyncio.sleep(1.2)
        await run_question(deck, "add 1 and 2", decline_all)
        assert int(count.read_text()) == 2


async def test_without_cache_every_turn_lists_tools(write_config, rules_file, tmp_path):
    log, count = tmp_path / "calls.jsonl", tmp_path / "count"
    path = write_config(
        provider_block(log)
        + "servers:\n"
        + server_block("stdio", None, count=count)
        + "agents:\n  main: {servers: [toy]}\n"
    )
    async with Deck(load_config(path, {})) as deck:
        await run_question(deck, "add 1 and 2", decline_all)
    assert int(count.read_text()) == 2


async def test_list_changed_notification_invalidates_the_cache(write_config, rules_file, tmp_path):
    log = tmp_path / "calls.jsonl"
    path = write_config(
        provider_block(log)
        + "servers:\n"
        + server_block("stdio", None, "    cache_tools: true\n")
        + "agents:\n  main: {servers: [toy]}\n"
    )
    async with Deck(load_config(path, {})) as deck:
        await run_question(deck, "grow", approve_all)
        server = deck.servers["toy"]
        for _ in range(100):  # the event arrives asynchronously after the call returns
            if server.tool_list_changes:
                break
            await asyncio.sleep(0.02)
        assert server.tool_list_changes >= 1
        await run_question(deck, "hello", approve_all)
    tools = offered(log)
    assert "late_tool" not in tools[0]
    assert "late_tool" in tools[-1]


async def test_dead_optional_server_is_a_warning(write_config, rules_file, tmp_path):
    log = tmp_path / "calls.jsonl"
    path = write_config(
        provider_block(log)
        + "servers:\n"
        + server_block("stdio", None)
        + "  broken:\n    transport: stdio\n    command: /no/such/binary\n    required: false\n"
        + "agents:\n  main: {servers: [toy, broken]}\n"
    )
    async with Deck(load_config(path, {})) as deck:
        assert deck.warnings() == ["optional server 'broken' is unavailable: command not found: /no/such/binary"]
        outcome = await run_question(deck, "add 1 and 2", decline_all)
    assert outcome.output == "Sum: 3"


async def test_dead_required_server_names_command_cause_and_stderr(write_config, rules_file, tmp_path):
    log = tmp_path / "calls.jsonl"
    script = "import sys; sys.stderr.write('starting\\nfatal: database is locked\\n'); sys.exit(3)"
    path = write_config(
        provider_block(log)
        + "servers:\n"
        + server_block("stdio", None)
        + f"  db:\n    transport: stdio\n    command: {PY}\n    args: ['-c', \"{script}\"]\n"
        + "agents:\n  main: {servers: [toy, db]}\n"
    )
    with pytest.raises(ServerStartError) as info:
        async with Deck(load_config(path, {})):
            pass
    msg = info.value.message
    assert msg.startswith(f"MCP server 'db' ({PY} -c ")
    assert "failed to start" in msg
    assert "fatal: database is locked" in msg
    assert read_call_log(log) == []


async def test_unreachable_http_server_is_reported(write_config, rules_file, tmp_path):
    from tests.conftest import free_port

    path = write_config(
        provider_block(tmp_path / "c.jsonl")
        + f"servers:\n  web:\n    transport: streamable_http\n    url: http://127.0.0.1:{free_port()}/mcp\n    start_timeout: 5\n"
        + "agents:\n  main: {servers: [web]}\n"
    )
    with pytest.raises(ServerStartError, match=r"MCP server 'web' \(http://127\.0\.0\.1:\d+/mcp\) failed to start"):
        async with Deck(load_config(path, {})):
            pass


def _processes_with(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


async def test_start_timeout_kills_the_child(write_config, rules_file, tmp_path):
    marker = f"hang-{uuid.uuid4().hex[:8]}"
    path = write_config(
        provider_block(tmp_path / "c.jsonl")
        + f"servers:\n  slow:\n    transport: stdio\n    command: {PY}\n    args: ['-c', 'import time; time.sleep(60)', '{marker}']\n    start_timeout: 1\n"
        + "agents:\n  main: {servers: [slow]}\n"
    )
    started = time.monotonic()
    with pytest.raises(ServerStartError, match=r"did not start within 1s \(start_timeout\)"):
        async with Deck(load_config(path, {})):
            pass
    assert time.monotonic() - started < 15
    assert _processes_with(marker) == []


async def test_no_child_processes_survive_the_deck(write_config, rules_file, tmp_path):
    marker = f"--prefix=m{uuid.uuid4().hex[:6]}_"
    path = write_config(
        provider_block(tmp_path / "c.jsonl")
        + f"servers:\n  toy:\n    transport: stdio\n    command: {PY}\n    args: ['{TOY}', '{marker}']\n"
        + "agents:\n  main: {servers: [toy]}\n"
    )
    async with Deck(load_config(path, {})):
        assert len(_processes_with(marker)) == 1
    assert _processes_with(marker) == []


async def test_approvals_yes_and_no(write_config, rules_file, tmp_path):
    log = tmp_path / "calls.jsonl"
    path = write_config(
        provider_block(log)
        + "servers:\n"
        + server_block("stdio", None, "    approval: destructive\n")
        + "agents:\n  main: {servers: [toy]}\n"
    )
    async with Deck(load_config(path, {})) as deck:
        yes = await run_question(deck, "delete customer 2", approve_all)
        no = await run_question(deck, "delete customer 3", decline_all)
        free = await run_question(deck, "add 1 and 1", decline_all)  # read-only: never asked
    assert yes.output == "Result: deleted customer 2"
    assert [(c.tool, c.ok, c.declined) for c in yes.tool_calls] == [("delete_customer", True, False)]
    assert no.output.startswith("Result: The user declined this tool call")
    assert [(c.tool, c.ok, c.declined) for c in no.tool_calls] == [("delete_customer", False, True)]
    assert free.output == "Sum: 2"


async def test_decline_reason_reaches_the_model(write_config, rules_file, tmp_path):
    log = tmp_path / "calls.jsonl"
    path = write_config(
        provider_block(log)
        + "servers:\n"
        + server_block("stdio", None, "    approval: always\n")
        + "agents:\n  main: {servers: [toy]}\n"
    )

    async def decline_with_reason(request):
        assert request == ApprovalRequest("delete_customer", "toy", '{"customer_id":9}', hosted=False)
        return False, "customer 9 is a VIP"

    async with Deck(load_config(path, {})) as deck:
        await run_question(deck, "delete customer 9", decline_with_reason)
    last = read_call_log(log)[-1]
    assert "Reason: customer 9 is a VIP" in last["tool_outputs"][0]


async def test_handoffs_and_agents_as_tools_from_yaml(write_config, rules_file, tmp_path):
    log = tmp_path / "calls.jsonl"
    path = write_config(
        provider_block(log)
        + "agents:\n"
        + "  front: {instructions: 'You route.', handoffs: [billing], as_tools: [expert]}\n"
        + "  billing: {instructions: 'You are billing.', description: Handles refunds}\n"
        + "  expert: {instructions: 'You are the expert.', description: Knows everything}\n"
        + "defaults: {agent: front, provider: offline}\n"
    )
    path.write_text(path.read_text().replace("defaults: {provider: offline}\n", ""))
    async with Deck(load_config(path, {})) as deck:
        handed = await run_question(deck, "I have a billing question", decline_all)
        asked = await run_question(deck, "ask expert what is 6x7", decline_all)
    assert handed.output == "Billing agent here about: I have a billing question"
    assert handed.agent == "billing"
    assert asked.output == "Expert says: the expert answer to what is 6x7"
    assert asked.agent == "front"
    first = read_call_log(log)[0]
    assert first["handoffs"] == ["transfer_to_billing"] and first["tools"] == ["ask_expert"]


async def test_colliding_tool_names_are_a_config_error_unless_prefixed(write_config, rules_file, tmp_path):
    log = tmp_path / "calls.jsonl"
    servers = "servers:\n" + server_block("stdio", None) + server_block("stdio", None, name="other")
    path = write_config(provider_block(log) + servers + "agents:\n  main: {servers: [toy, other]}\n")
    with pytest.raises(ConfigError, match="servers 'toy' and 'other' both offer a tool named 'add' to agent 'main'"):
        async with Deck(load_config(path, {})):
            pass
    path = write_config(
        provider_block(log) + servers + "agents:\n  main: {servers: [toy, other], prefix_tool_names: true}\n"
    )
    async with Deck(load_config(path, {})) as deck:
        outcome = await run_question(deck, "both add 5", decline_all)
    assert outcome.output == "6 and 7"
    assert "toy__add" in offered(log)[0] and "other__get_customer" in offered(log)[0]
    assert {(c.server, c.tool) for c in outcome.tool_calls} == {("toy", "add"), ("other", "add")}


async def test_tool_error_results_are_recorded_as_failed(write_config, tmp_path, write_rules):
    write_rules(
        "rules:\n  - when: {user: 'who is (?P<id>\\d+)'}\n    call: [{tool: get_customer, args: {customer_id: '{id|int}'}}]\n    reply: '{output}'\n"
    )
    log = tmp_path / "calls.jsonl"
    path = write_config(
        provider_block(log) + "servers:\n" + server_block("stdio", None) + "agents:\n  main: {servers: [toy]}\n"
    )
    async with Deck(load_config(path, {})) as deck:
        outcome = await run_question(deck, "who is 99", decline_all)
    assert outcome.output == "Error executing tool get_customer: no customer with id 99"
    assert [(c.tool, c.ok) for c in outcome.tool_calls] == [("get_customer", False)]


async def test_deck_for_agent_only_connects_its_servers(write_config, rules_file, tmp_path):
    path = write_config(
        provider_block(tmp_path / "c.jsonl")
        + "servers:\n"
        + server_block("stdio", None)
        + "  broken: {transport: stdio, command: /no/such/thing}\n"
        + "agents:\n  main: {servers: [toy]}\n  other: {servers: [broken]}\n"
    )
    async with Deck(load_config(path, {}), DeckOptions(agent="main")) as deck:
        assert set(deck.servers) == {"toy"}


async def test_converted_tools_are_reused_only_while_the_cached_list_and_a_static_filter_allow(
    write_config, rules_file, tmp_path
):
    from agents import RunContextWrapper

    (tmp_path / "myfilter.py").write_text("def keep(ctx, tool):\n    return True\n")
    path = write_config(
        provider_block(tmp_path / "calls.jsonl")
        + "servers:\n"
        + server_block("stdio", None, "    cache_tools: true\n")
        + server_block("stdio", None, "    cache_tools: true\n    filter: myfilter:keep\n", name="dyn")
        + server_block("stdio", None, "", name="nocache")
        + "agents:\n  main: {servers: [toy]}\n  dyn: {servers: [dyn]}\n  nocache: {servers: [nocache]}\n"
    )
    async with Deck(load_config(path, {}), DeckOptions(servers=["toy", "dyn", "nocache"])) as deck:
        from app.build import build_agents

        agents = build_agents(deck.loaded, deck.models, deck.servers)
        ctx = RunContextWrapper(context=None)
        main, dyn, nocache = agents["main"], agents["dyn"], agents["nocache"]
        first, second = await main.get_mcp_tools(ctx), await main.get_mcp_tools(ctx)
        assert [t.name for t in first] == [t.name for t in second] and first[0] is second[0]
        deck.servers["toy"].invalidate_tools_cache()  # what a list_changed event does
        third = await main.get_mcp_tools(ctx)
        assert third[0] is not first[0] and [t.name for t in third] == [t.name for t in first]
        assert (await dyn.get_mcp_tools(ctx))[0] is not (await dyn.get_mcp_tools(ctx))[0]
        assert (await nocache.get_mcp_tools(ctx))[0] is not (await nocache.get_mcp_tools(ctx))[0]
