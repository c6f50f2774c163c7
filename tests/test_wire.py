"""The fake OpenAI server with the real `openai` client over real HTTP: both APIs, streaming, faults."""

from __future__ import annotations

import pytest
from agents import Runner
from openai.types.responses import ResponseTextDeltaEvent

from app.approvals import decline_all
from app.config import load_config
from app.deck import Deck
from app.errors import RunError
from app.runner import run_question
from tests.conftest import PY, TOY

RULES = """
rules:
  - when: {user: 'add (?P<a>\\d+) and (?P<b>\\d+)'}
    call: [{tool: add, args: {a: "{a|int}", b: "{b|int}"}}]
    reply: "The sum is {output}, computed by a tool."
"""


@pytest.fixture
def fake(fake_openai, write_rules):
    return fake_openai(write_rules(RULES))


def config(write_config, base_url: str, api: str, retries: int = 3, kind: str = "openai_compatible"):
    provider = (
        f"  fake: {{kind: openai_compatible, base_url: '{base_url}', api: {api}, max_retries: {retries}, api_key: test-key}}"
        if kind == "openai_compatible"
        else f"  fake: {{kind: openai, api: {api}, max_retries: {retries}}}"
    )
    return write_config(
        f"""
providers:
{provider}
servers:
  toy: {{transport: stdio, command: {PY}, args: ['{TOY}'], cache_tools: true}}
agents:
  main: {{provider: fake, model: fake-model, servers: [toy]}}
"""
    )


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
async def test_both_apis_non_streaming(api, fake, write_config):
    async with Deck(load_config(config(write_config, fake.base_url, api), {})) as deck:
        outcome = await run_question(deck, "add 2 and 40", decline_all)
    assert outcome.output == "The sum is 42, computed by a tool."
    assert outcome.usage["requests"] == 2 and outcome.usage["total_tokens"] > 0
    log = fake.requests()
    assert [r["api"] for r in log] == [api, api]
    assert all(r["model"] == "fake-model" and not r["stream"] for r in log)
    assert "add" in log[0]["tools"] and "delete_customer" in log[0]["tools"]


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
async def test_both_apis_streaming(api, fake, write_config):
    async with Deck(load_config(config(write_config, fake.base_url, api), {})) as deck:
        stream = Runner.run_streamed(deck.agent, "add 20 and 22")
        deltas = [
            ev.data.delta
            async for ev in stream.stream_events()
            if ev.type == "raw_response_event" and isinstance(ev.data, ResponseTextDeltaEvent)
        ]
    assert stream.final_output == "The sum is 42, computed by a tool."
    assert len(deltas) > 1 and "".join(deltas) == stream.final_output
    assert all(r["stream"] for r in fake.requests())


async def test_openai_provider_honours_openai_env(fake, write_config):
    path = config(write_config, fake.base_url, "responses", kind="openai")
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake.base_url}
    async with Deck(load_config(path, env)) as deck:
        outcome = await run_question(deck, "add 1 and 1", decline_all)
    assert outcome.output == "The sum is 2, computed by a tool."


async def test_rate_limit_is_retried_then_succeeds(fake, write_config):
    fake.queue_faults({"status": 429, "retry_after": 0.2}, {"status": 429, "retry_after": 0.2})
    async with Deck(load_config(config(write_config, fake.base_url, "responses", retries=3), {})) as deck:
        outcome = await run_question(deck, "add 2 and 3", decline_all)
    assert outcome.output == "The sum is 5, computed by a tool."
    log = fake.requests()
    assert len(log) == 4  # two 429s, then the two model turns
    assert log[1]["time"] - log[0]["time"] >= 0.2  # Retry-After was honoured


async def test_retries_are_bounded_and_500_is_a_clear_error(fake, write_config):
    fake.queue_faults(*[{"status": 500, "message": "upstream exploded"}] * 5)
    async with Deck(load_config(config(write_config, fake.base_url, "chat_completions", retries=2), {})) as deck:
        with pytest.raises(RunError) as info:
            await run_question(deck, "add 2 and 3", decline_all)
    assert len(fake.requests()) == 3  # the first try plus max_retries
    msg = info.value.message
    assert msg.startswith("the model request failed with HTTP 500 from http://127.0.0.1:")
    assert "upstream exploded" in msg


async def test_malformed_body_is_a_clear_error(fake, write_config):
    fake.queue_faults({"malformed": True})
    async with Deck(load_config(config(write_config, fake.base_url, "responses", retries=0), {})) as deck:
        with pytest.raises(RunError, match="the run failed|model"):
            await run_question(deck, "add 2 and 3", decline_all)


def test_missing_api_key_is_rejected_by_the_fake(fake):
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        fake.base_url + "/responses",
        data=json.dumps({"model": "m", "input": "hi"}).encode(),
        headers={"content-type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=5)
    assert info.value.code == 401
