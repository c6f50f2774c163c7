"""The offline model's rules engine and its Agents SDK Model."""

from __future__ import annotations

import json

import pytest
from agents import Agent, Runner, function_tool

from app.errors import ConfigError
from app.offline.model import CallLog, OfflineModel
from app.offline.rules import RuleSet, decide, load_rules, read_conversation, render, render_args

RULES = RuleSet.model_validate(
    {
        "default": "no rule for {input}",
        "rules": [
            {"name": "err", "when": {"tool_output": "^Error"}, "reply": "failed: {output}"},
            {
                "name": "sum",
                "when": {"user": r"add (?P<a>\d+) and (?P<b>\d+)"},
                "call": [{"tool": "add", "args": {"a": "{a|int}", "b": "{b|int}"}}],
                "reply": "The sum is {output}.",
            },
            {
                "name": "two-step",
                "when": {"user": r"customer (?P<id>\d+)"},
                "steps": [
                    {"call": [{"tool": "get_customer", "args": {"customer_id": "{id|int}"}}]},
                    {"call": [{"tool": "get_orders", "args": {"name": "{output.name}"}}]},
                    {"reply": "{output1} / {output2}"},
                ],
            },
            {"name": "route", "when": {"user": "(?i)refund"}, "handoff": "billing"},
            {"name": "billing", "when": {"user": "(?i)refund", "instructions": "billing"}, "reply": "Billing here."},
        ],
    }
)


def conv(*items, instructions=""):
    return read_conversation(instructions, list(items))


def user(text):
    return {"role": "user", "content": text}


def call(name, cid, args="{}"):
    return {"type": "function_call", "name": name, "call_id": cid, "arguments": args}


def output(cid, text):
    return {"type": "function_call_output", "call_id": cid, "output": text}


def test_first_turn_calls_the_tool_with_typed_arguments():
    d = decide(RULES, conv(user("please add 2 and 40")), ["add"])
    assert d.rule == "sum" and d.message is None
    assert [(n, a) for n, a, _ in d.calls] == [("add", {"a": 2, "b": 40})]


def test_second_turn_replies_with_the_tool_output():
    d = decide(RULES, conv(user("add 2 and 40"), call("add", "c1"), output("c1", "42")), ["add"])
    assert d.message == "The sum is 42."


def test_rule_is_skipped_when_its_tool_is_not_offered():
    d = decide(RULES, conv(user("add 2 and 40")), ["multiply"])
    assert d.rule == "default" and d.message == "no rule for add 2 and 40"


def test_multi_step_rule_uses_json_paths_into_outputs():
    c1 = conv(user("customer 7"))
    d1 = decide(RULES, c1, ["get_customer", "get_orders"])
    assert d1.calls[0][:2] == ("get_customer", {"customer_id": 7})
    c2 = conv(user("customer 7"), call("get_customer", "a"), output("a", json.dumps({"name": "Ada"})))
    d2 = decide(RULES, c2, ["get_customer", "get_orders"])
    assert d2.calls[0][:2] == ("get_orders", {"name": "Ada"})
    c3 = conv(
        user("customer 7"),
        call("get_customer", "a"),
        output("a", '{"name": "Ada"}'),
        call("get_orders", "b"),
        output("b", "3 orders"),
    )
    assert decide(RULES, c3, []).message == '{"name": "Ada"} / 3 orders'


def test_tool_output_rule_reacts_to_errors():
    c = conv(user("add 1 and 1"), call("add", "c1"), output("c1", "Error executing tool add: boom"))
    assert decide(RULES, c, ["add"]).message == "failed: Error executing tool add: boom"


def test_handoff_then_receiving_agent_starts_fresh():
    d = decide(RULES, conv(user("I want a refund")), ["transfer_to_billing"])
    assert d.calls[0][0] == "transfer_to_billing"
    after = conv(
        user("I want a refund"),
        call("transfer_to_billing", "h1"),
        output("h1", '{"assistant": "billing"}'),
        instructions="You are billing.",
    )
    assert after.round == 0
    # billing is not offered a transfer to itself, so the routing rule is skipped.
    assert decide(RULES, after, []).message == "Billing here."


def test_call_ids_are_unique_per_turn():
    a = decide(RULES, conv(user("add 1 and 2")), ["add"]).calls[0][2]
    b = decide(RULES, conv(user("x"), {"role": "assistant", "content": "y"}, user("add 1 and 2")), ["add"]).calls[0][2]
    assert a != b and a.startswith("call_")


def test_render_and_render_args():
    values = {"input": "hi", "output": '{"a": {"b": [1, 2]}}'}
    assert render("{input} {output.a.b.1} {missing} {{x}}", values) == "hi 2 {missing} {x}"
    assert render_args({"n": "{output.a.b.0|int}", "l": ["{input}!"], "j": "{output|json}", "k": 5}, values) == {
        "n": 1,
        "l": ["hi!"],
        "j": {"a": {"b": [1, 2]}},
        "k": 5,
    }


def test_bad_rules_files(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("rules:\n  - when: {user: '('}\n    reply: x\n")
    with pytest.raises(ConfigError, match="invalid regular expression"):
        load_rules(bad)
    bad.write_text("rules:\n  - when: {user: a}\n")
    with pytest.raises(ConfigError, match="needs 'steps'"):
        load_rules(bad)
    bad.write_text("rulez: []\n")
    with pytest.raises(ConfigError, match="rulez"):
        load_rules(bad)


def test_default_rules_load():
    rules = load_rules(None)
    assert rules.rules and "{tools}" in rules.default


@function_tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def test_offline_model_runs_tools_streams_and_logs(tmp_path):
    log = tmp_path / "calls.jsonl"
    model = OfflineModel(RULES, log=CallLog(log))
    agent = Agent(name="calc", model=model, tools=[add])
    result = await Runner.run(agent, "add 2 and 40")
    assert result.final_output == "The sum is 42."
    assert result.context_wrapper.usage.requests == 2 and result.context_wrapper.usage.total_tokens > 0
    streamed = Runner.run_streamed(agent, "add 20 and 22")
    deltas = []
    async for ev in streamed.stream_events():
        if ev.type == "raw_response_event" and ev.data.type == "response.output_text.delta":
            deltas.append(ev.data.delta)
    assert streamed.final_output == "The sum is 42." and "".join(deltas) == "The sum is 42."
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["round"] for r in records] == [0, 1, 0, 1]
    assert records[0]["tools"] == ["add"] and records[0]["calls"] == [{"tool": "add", "arguments": {"a": 2, "b": 40}}]
    assert records[2]["streamed"] is True
