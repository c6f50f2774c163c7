"""The conversations server (the Assistants tools on Conversations + Responses) against the fake OpenAI server."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PY, ROOT, clean_env

RULES = r"""
rules:
  - when: {user: 'weather in (?P<city>[A-Za-z]+)'}
    steps:
      - call: [{tool: get_weather, args: {city: "{city}"}}]
      - reply: "It is {output} there."
  - when: {user: 'what is 2\+2'}
    reply: "4"
"""
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def fake(tmp_path, fake_openai):
    (tmp_path / "rules.yaml").write_text(RULES)
    return fake_openai(tmp_path / "rules.yaml")


@asynccontextmanager
async def served(tmp_path: Path, fake) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """A stdio session with the server; yields `call(tool, **arguments)` -> structured result (or the error text)."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    args = ["-m", "servers.conversations", "--db", str(tmp_path / "conv.db")]
    env = clean_env(OPENAI_API_KEY="sk-conversations-test", OPENAI_BASE_URL=fake.base_url)
    params = StdioServerParameters(command=PY, args=args, cwd=str(ROOT), env=env)
    with (tmp_path / "server.err").open("a") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:

            async def call(tool: str, **arguments: Any) -> Any:
                result = await client.call_tool(tool, arguments)
                if result.is_error:
                    return "error: " + " ".join(getattr(b, "text", "") for b in result.content)
                return result.structured_content

            yield call


async def until(call, thread_id: str, run_id: str, wanted: set[str]) -> dict:
    for _ in range(100):
        run = await call("get_run", thread_id=thread_id, run_id=run_id)
        if run["status"] in wanted:
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"run stayed {run['status']}")


async def test_the_old_assistants_flow_end_to_end(tmp_path, fake):
    async with served(tmp_path, fake) as call:
        assistant = await call("create_assistant", model="gpt-5.6-luna", name="Maths", instructions="Answer briefly.")
        assert assistant["id"].startswith("asst_") and assistant["name"] == "Maths"
        thread = await call("create_thread", metadata={"user": "ada"})
        message = await call("create_message", thread_id=thread["id"], content="what is 2+2")
        assert message["role"] == "user" and message["content"] == "what is 2+2"
        run = await call("create_run", thread_id=thread["id"], assistant_id=assistant["id"])
        assert run["status"] in ("queued", "in_progress")  # in the background: poll it
        run = await until(call, thread["id"], run["id"], {"completed"})
        messages = await call("list_messages", thread_id=thread["id"], order="asc")
        assert [(m["role"], m["content"]) for m in messages["data"]] == [("user", "what is 2+2"), ("assistant", "4")]
        steps = await call("list_run_steps", thread_id=thread["id"], run_id=run["id"])
        assert [s["type"] for s in steps["data"]] == ["message_creation"]
        step = await call("get_run_step", thread_id=thread["id"], run_id=run["id"], step_id=steps["data"][0]["id"])
        assert step["step_details"]["message_creation"]["message_id"] == messages["data"][1]["id"]
        # What the old API kept and conversations do not, this server keeps.
        changed = await call("modify_message", thread_id=thread["id"], message_id=message["id"], metadata={"k": "v"})
        assert changed["metadata"] == {"k": "v"} and "kept by this server" in changed["note"]
        assert (await call("get_message", thread_id=thread["id"], message_id=message["id"]))["metadata"] == {"k": "v"}
        assert (await call("modify_run", thread_id=thread["id"], run_id=run["id"], metadata={"r": "1"}))[
            "metadata"
        ] == {"r": "1"}
        assert [r["id"] for r in (await call("list_runs", thread_id=thread["id"]))["data"]] == [run["id"]]
        assert [t["id"] for t in (await call("list_threads"))["data"]] == [thread["id"]]
        assert (await call("modify_thread", thread_id=thread["id"], metadata={"user": "bob"}))["metadata"] == {
            "user": "bob"
        }
        assert (await call("get_thread", thread_id=thread["id"]))["metadata"] == {"user": "bob"}
        assert (await call("modify_assistant", assistant_id=assistant["id"], name="Sums"))["name"] == "Sums"
        refused = await call("modify_assistant", assistant_id=assistant["id"], tools=[{"type": "file_search"}])
        assert "only function tools are supported" in refused  # as create_assistant says
        assert [a["name"] for a in (await call("list_assistants"))["data"]] == ["Sums"]
        assert (await call("delete_message", thread_id=thread["id"], message_id=message["id"]))["deleted"]
        assert (await call("delete_thread", thread_id=thread["id"]))["deleted"]
        assert (await call("delete_assistant", assistant_id=assistant["id"]))["deleted"]
        assert (await call("list_threads"))["data"] == []
    # Every response ran on the conversation, in the background.
    calls = [r for r in fake.requests() if r["api"] == "responses"]
    assert len(calls) == 1
    assert "sk-conversations-test" not in (tmp_path / "server.err").read_text()


async def test_a_run_that_calls_a_tool_waits_for_its_output(tmp_path, fake):
    async with served(tmp_path, fake) as call:
        assistant = await call("create_assistant", model="gpt-5.6-luna", tools=[WEATHER])
        run = await call(
            "create_thread_and_run",
            assistant_id=assistant["id"],
            messages=[{"role": "user", "content": "weather in Paris"}],
        )
        run = await until(call, run["thread_id"], run["id"], {"requires_action"})
        calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
        assert [(c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
            ("get_weather", '{"city": "Paris"}')
        ]
        wrong = await call("submit_tool_outputs", thread_id=run["thread_id"], run_id=run["id"], tool_outputs=[])
        assert wrong.startswith("error: ") and "give an output for each tool call" in wrong
        outputs = [{"tool_call_id": calls[0]["id"], "output": "sunny"}]
        await call("submit_tool_outputs", thread_id=run["thread_id"], run_id=run["id"], tool_outputs=outputs)
        run = await until(call, run["thread_id"], run["id"], {"completed"})
        last = await call("list_messages", thread_id=run["thread_id"], limit=1)
        assert last["data"][0]["content"] == "It is sunny there."
        steps = await call("list_run_steps", thread_id=run["thread_id"], run_id=run["id"])
        assert [s["type"] for s in steps["data"]] == ["tool_calls", "message_creation"]


async def test_run_and_wait_cancel_and_bad_input(tmp_path, fake):
    async with served(tmp_path, fake) as call:
        assistant = await call("create_assistant", model="gpt-5.6-luna")
        thread = await call("create_thread", messages=[{"role": "user", "content": "what is 2+2"}])
        waited = await call("run_and_wait", thread_id=thread["id"], assistant_id=assistant["id"])
        assert waited["run"]["status"] == "completed" and waited["last_message"] == "4"
        await call("create_message", thread_id=thread["id"], content="what is 2+2")
        run = await call("create_run", thread_id=thread["id"], assistant_id=assistant["id"])
        cancelled = await call("cancel_run", thread_id=thread["id"], run_id=run["id"])
        assert cancelled["status"] == "cancelled"
        assert "not a valid thread id" in await call("get_thread", thread_id="../../v1/models")
        assert "no assistant 'asst_nope'" in await call("get_assistant", assistant_id="asst_nope")
        assert "not a valid assistant id" in await call("get_assistant", assistant_id="conv_123")
        retired = await call("create_assistant", model="gpt-4")
        assert "shut down the model 'gpt-4'; use 'gpt-5.6-luna'" in retired
        assert "no run" in await call("get_run", thread_id=thread["id"], run_id="run_000")
        fake.queue_faults({"status": 401, "message": "Incorrect API key provided: sk-conversations-test"})
        refused = await call("get_thread", thread_id=thread["id"])
        assert "OpenAI answered 401" in refused and "sk-conversations-test" not in refused


async def test_passthrough_threads_are_made_with_each_callers_key(tmp_path, fake):
    import hashlib

    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    from tests.conftest import free_port, stop_all, wait_for_port

    port = free_port()
    command = [PY, "-m", "servers.conversations", "--db", str(tmp_path / "c.db"), "--transport", "http"]
    command += ["--port", str(port), "--credentials", "passthrough"]
    env = clean_env(OPENAI_BASE_URL=fake.base_url)
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)

        async def thread_with(key: str) -> Any:
            url = f"http://127.0.0.1:{port}/mcp"
            async with (
                httpx2.AsyncClient(headers={"X-OpenAI-API-Key": key}) as http,
                Client(streamable_http_client(url, http_client=http)) as client,
            ):
                return await client.call_tool("create_thread", {})

        keys = ["sk-carol-000000000001", "sk-dave-0000000000002"]
        results = await asyncio.gather(*(thread_with(k) for k in keys))
        assert all(not r.is_error for r in results)
        seen = sorted(r["key"] for r in fake.requests())
        assert seen == sorted(hashlib.sha256(k.encode()).hexdigest()[:12] for k in keys)
    finally:
        stop_all([proc])
