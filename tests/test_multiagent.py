"""Multi-agent configs as people write them: handoffs both ways, reasons, agents used as tools (and nested)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.approvals import RunContext, decline_all
from app.build import build_agents
from app.config import load_config
from app.deck import Deck, DeckOptions
from app.errors import ConfigError
from app.nested import NestedEvent, listening
from app.providers import Models
from app.runner import run_question
from tests.conftest import PY, TOY, read_call_log, run_cli

# triage hands off to billing, which hands back; calc (used as a tool) calls the toy server's `add`;
# mid (used as a tool) uses calc as a tool, to nest one agent-as-tool call in another.
RULES = r"""
rules:
  - name: back
    when: {instructions: triage, handoff_reason: '(?P<what>invoice \d+) settled'}
    reply: "Back at triage: {what} is settled."
  - name: route
    when: {instructions: triage, user: 'invoice (?P<n>\d+), add (?P<a>\d+) and (?P<b>\d+)'}
    steps:
      - call: [{tool: ask_calc, args: {input: "add {a} and {b}"}}]
      - handoff: {to: billing, reason: "customer asks about invoice {n}"}
  - name: billing
    when: {instructions: billing, user: 'invoice (?P<n>\d+)'}
    handoff: {to: triage, reason: "invoice {n} settled"}
  - name: deep
    when: {instructions: triage, user: '^deep (?P<q>.+)'}
    call: [{tool: ask_mid, args: {input: "{q}"}}]
    reply: "Mid says {output}"
  - name: mid
    when: {instructions: middle}
    call: [{tool: ask_calc, args: {input: "{input}"}}]
    reply: "{output}"
  - name: calc
    when: {instructions: calc, user: 'add (?P<a>\d+) and (?P<b>\d+)'}
    call: [{tool: add, args: {a: "{a|int}", b: "{b|int}"}}]
    reply: "{output}"
"""

CONFIG = f"""
providers:
  offline: {{kind: offline, rules: rules.yaml, log: calls.jsonl}}
defaults: {{provider: offline, agent: triage}}
servers:
  toy: {{transport: stdio, command: {PY}, args: ['{TOY}']}}
agents:
  triage: {{instructions: You are triage., handoffs: [billing], as_tools: [calc, mid]}}
  billing: {{instructions: You are billing., handoffs: [triage]}}
  mid: {{instructions: You are the middle agent., as_tools: [calc]}}
  calc: {{instructions: You are calc., servers: [toy]}}
  other: {{instructions: You are other., handoffs: [triage]}}
"""

INVOICE = "invoice 7, add 2 and 40"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "agents.yaml").write_text(CONFIG)
    return tmp_path


def test_handoff_cycle_runs_offline_and_nested_calls_say_via(project):
    r = run_cli("run", INVOICE, "--json", cwd=project)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    # triage -> (ask_calc) -> billing -> triage, which answers.
    assert doc["agent"] == "triage" and doc["output"] == "Back at triage: invoice 7 is settled."
    add = {"server": "toy", "tool": "add", "arguments": {"a": 2, "b": 40}, "ok": True, "via": "ask_calc"}
    assert [{k: c[k] for k in add} for c in doc["tool_calls"]] == [add]
    transfers = [c for rec in read_call_log(project / "calls.jsonl") for c in rec["calls"] if "transfer" in c["tool"]]
    assert transfers == [
        {"tool": "transfer_to_billing", "arguments": {"reason": "customer asks about invoice 7"}},
        {"tool": "transfer_to_triage", "arguments": {"reason": "invoice 7 settled"}},
    ]
    (project / "q.txt").write_text(INVOICE + "\n")
    r = run_cli("batch", "q.txt", cwd=project)
    assert r.code == 0, r.err
    row = json.loads((project / "q.results.jsonl").read_text())
    assert row["agent"] == "triage" and row["status"] == "ok"
    assert [(c["tool"], c.get("via")) for c in row["tool_calls"]] == [("add", "ask_calc")]


def test_as_tools_cycles_are_config_errors_but_handoff_cycles_are_not(project, write_config):
    assert load_config(project / "agents.yaml", {}).config.agents["billing"].handoffs == ["triage"]
    with pytest.raises(ConfigError, match=r"as_tools form a cycle: a -> b -> a"):
        load_config(write_config("agents:\n  a: {as_tools: [b]}\n  b: {as_tools: [a]}\n"), {})
    # b, used as a tool by a, could hand the conversation back to a, which calls b again, and so on.
    with pytest.raises(ConfigError, match=r"agents\.a\.as_tools\[0\]: as_tools and handoffs form a cycle: a -> b -> a"):
        load_config(write_config("agents:\n  a: {as_tools: [b]}\n  b: {handoffs: [a]}\n"), {})


def test_an_agent_handing_off_to_an_unavailable_agent_is_unavailable(project):
    loaded = load_config(project / "agents.yaml", {})
    loaded.config.agents["billing"].instructions_file = "gone.md"  # as if the file vanished after validation
    unavailable: dict[str, str] = {}
    built = build_agents(loaded, Models(loaded), {}, unavailable=unavailable)
    assert sorted(built) == ["calc", "mid"]
    assert "cannot read" in unavailable["billing"]
    # triage hands off to billing, and other hands off to triage.
    assert unavailable["triage"] == "it uses agent 'billing', which is unavailable"
    assert unavailable["other"] == "it uses agent 'triage', which is unavailable"
    with pytest.raises(ConfigError, match="it uses agent 'billing', which is unavailable"):
        build_agents(loaded, Models(loaded), {}, only=["triage", "calc", "mid"])


async def test_listener_gets_nested_events_and_handoffs_carry_reasons(project):
    from agents import RunContextWrapper, Runner

    heard: list[NestedEvent] = []
    loaded = load_config(project / "agents.yaml", {})
    async with Deck(loaded, DeckOptions(all_agents=True)) as deck:
        assert not deck.unavailable
        assert [h.agent_name for h in deck.agents["other"].handoffs] == ["triage"]
        # What a real model is offered: an optional reason (strict schemas list every key as required).
        to_billing = deck.agents["triage"].handoffs[0]
        assert to_billing.input_json_schema["required"] == ["reason"] and to_billing.strict_json_schema
        # The reason is decoration: a model sending no JSON still hands off.
        assert await to_billing.on_invoke_handoff(RunContextWrapper(None), "") is deck.agents["billing"]
        quiet = await run_question(deck, "deep add 1 and 2", decline_all)
        with listening(heard.append):
            loud = await run_question(deck, "deep add 1 and 2", decline_all)
            streamed = Runner.run_streamed(deck.agent, INVOICE, context=RunContext(decline_all))
            events = [ev async for ev in streamed.stream_events()]

    # Without a listener nothing is streamed; with one, the answer, usage and records are the same.
    inner = [r for r in read_call_log(project / "calls.jsonl") if r["instructions"] != "You are triage."]
    assert [r["streamed"] for r in inner[:4]] == [False] * 4 and inner[4]["streamed"] is True
    assert quiet.output == loud.output == "Mid says 3" and quiet.usage == loud.usage
    assert [(c.tool, c.via) for c in quiet.tool_calls] == [(c.tool, c.via) for c in loud.tool_calls]
    assert [(c.tool, c.via) for c in loud.tool_calls] == [("add", "ask_mid/ask_calc")]

    items = [
        (e.via, e.agent, e.event.name, e.event.item.raw_item.name if e.event.name == "tool_called" else None)
        for e in heard
        if e.event.type == "run_item_stream_event" and e.event.name in ("tool_called", "tool_output")
    ]
    assert items == [
        ("ask_mid", "mid", "tool_called", "ask_calc"),
        ("ask_mid/ask_calc", "calc", "tool_called", "add"),
        ("ask_mid/ask_calc", "calc", "tool_output", None),
        ("ask_mid", "mid", "tool_output", None),
        ("ask_calc", "calc", "tool_called", "add"),
        ("ask_calc", "calc", "tool_output", None),
    ]
    assert all(e.call_id for e in heard)

    # A UI reads the reason from the `handoff_requested` item's arguments.
    reasons = [
        (ev.item.raw_item.name, json.loads(ev.item.raw_item.arguments))
        for ev in events
        if getattr(ev, "name", None) == "handoff_requested"
    ]
    assert reasons == [
        ("transfer_to_billing", {"reason": "customer asks about invoice 7"}),
        ("transfer_to_triage", {"reason": "invoice 7 settled"}),
    ]
    assert streamed.last_agent.name == "triage"


def test_chat_shows_nested_calls_handoff_reasons_and_saves_them(project):
    import pexpect

    from tests.conftest import clean_env

    child = pexpect.spawn(
        PY,
        ["-m", "app", "chat", "--new"],
        cwd=str(project),
        env=clean_env(AGENTDECK_STATE_DIR=str(project / "state")),
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 160),
    )
    child.expect("triage>")
    child.sendline(INVOICE)
    child.expect("ask_calc")  # the agent-as-tool call...
    child.expect(r"ask_calc › .*toy\..*add")  # ...and the call made inside it, under it
    child.expect("→ billing")
    child.expect(": customer asks about invoice 7")  # the reason the model gave
    child.expect("→ triage")
    child.expect(": invoice 7 settled")
    child.expect("Back at triage: invoice 7 is settled.")
    child.expect("triage>")
    child.sendline("/help")
    child.expect("/agent NAME switches back")
    child.expect("triage>")
    child.sendline("/save out.md")
    child.expect("saved to out.md")
    child.expect("triage>")
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    saved = (project / "out.md").read_text()
    assert "ask_calc: toy.add" in saved and "42" in saved, saved
