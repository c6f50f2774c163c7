"""The OpenAI tools server (servers/openai_tools) over stdio, against the fake OpenAI server.

A real `mcp` client talks to the real server process, which talks to `agentdeck fake-openai` with
the real `openai` client; the fake's request log shows what reached "OpenAI".
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PY, ROOT, clean_env, write_png

KEY = "sk-test-0123456789abcdefKEY"
RULES = """
rules:
  - when: {user: 'weather in (?P<city>[A-Za-z]+)'}
    call: [{tool: get_weather, args: {city: "{city}"}}]
    reply: "unused"
  - when: {user: 'hello'}
    reply: "Hi from the fake."
"""


@pytest.fixture
def fake(tmp_path, fake_openai):
    (tmp_path / "rules.yaml").write_text(RULES)
    return fake_openai(tmp_path / "rules.yaml")


def server_env(fake, **extra: str) -> dict[str, str]:
    return clean_env(**{"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.base_url, **extra})


@asynccontextmanager
async def served(tmp_path: Path, fake, **env: str) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """A stdio session with the server; yields `call(tool, arguments, progress=None)`."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    (tmp_path / "allowed").mkdir(exist_ok=True)
    args = [
        "-m",
        "servers.openai_tools",
        "--output-dir",
        str(tmp_path / "out"),
        "--allowed-dir",
        str(tmp_path / "allowed"),
    ]
    args += ["--max-retries", env.pop("RETRIES", "2"), "--timeout", env.pop("TIMEOUT", "30")]
    params = StdioServerParameters(command=PY, args=args, cwd=str(ROOT), env=server_env(fake, **env))
    with (tmp_path / "server.err").open("a") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:

            async def call(tool: str, arguments: dict, progress: list | None = None) -> Any:
                async def report(done: float, total: float | None, message: str | None) -> None:
                    assert progress is not None
                    progress.append((done, total, message))

                return await client.call_tool(
                    tool, arguments, progress_callback=report if progress is not None else None
                )

            yield call


def text_of(result) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def test_chat_completion_and_ask_openai_send_what_was_asked_and_return_usage(tmp_path, fake):
    async with served(tmp_path, fake) as call:
        result = await call("chat_completion", {"prompt": "hello", "system": "be brief", "max_tokens": 50})
        assert not result.is_error, text_of(result)
        assert result.structured_content["text"] == "Hi from the fake."
        assert result.structured_content["model"] == "gpt-5.6-luna"
        assert result.structured_content["usage"]["total_tokens"] > 0
        asked = await call("ask_openai", {"query": "hello", "model": "gpt-5.4-mini"})
        assert (
            asked.structured_content["text"] == "Hi from the fake."
            and asked.structured_content["model"] == "gpt-5.4-mini"
        )
        log = fake.requests()
        assert [r["api"] for r in log] == ["chat_completions", "chat_completions"]
        assert [r["model"] for r in log] == ["gpt-5.6-luna", "gpt-5.4-mini"]


async def test_a_retired_model_is_refused_naming_its_replacement(tmp_path, fake):
    async with served(tmp_path, fake) as call:
        result = await call("chat_completion", {"prompt": "hi", "model": "gpt-3.5-turbo-1106"})
        assert result.is_error and "shut down the model 'gpt-3.5-turbo-1106'; use 'gpt-5.6-luna'" in text_of(result)
        image = await call("generate_image", {"prompt": "a cat", "model": "dall-e-3"})
        assert image.is_error and "use 'gpt-image-2.5-flare'" in text_of(image)
        assert fake.requests() == []  # nothing reached OpenAI


async def test_function_call_returns_the_proposed_calls_without_running_them(tmp_path, fake):
    async with served(tmp_path, fake) as call:
        weather = {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }
        result = await call("function_call", {"prompt": "weather in Paris", "functions": [weather]})
        assert not result.is_error, text_of(result)
        calls = result.structured_content["calls"]
        assert [(c["name"], c["arguments"]) for c in calls] == [("get_weather", {"city": "Paris"})]
        assert fake.requests()[0]["tools"] == ["get_weather"]


async def test_embeddings_are_unit_vectors_of_the_requested_size_and_input_is_capped(tmp_path, fake):
    async with served(tmp_path, fake) as call:
        result = await call("create_embedding", {"input": ["one", "two"], "dimensions": 16})
        data = result.structured_content
        assert data["dimensions"] == 16 and len(data["embeddings"]) == 2
        assert abs(sum(x * x for x in data["embeddings"][0]) - 1.0) < 1e-6
        too_many = await call("create_embedding", {"input": ["x"] * 2049})
        assert too_many.is_error and "at most 2048 texts" in text_of(too_many)


async def test_moderation_and_models(tmp_path, fake):
    async with served(tmp_path, fake) as call:
        result = await call("moderate_content", {"input": ["I will kill the lights", "a nice day"]})
        flagged = [(r["flagged"], r["categories"]) for r in result.structured_content["results"]]
        assert flagged == [(True, ["violence"]), (False, [])]
        models = await call("list_models", {})
        assert models.structured_content["models"] == ["offline"]


async def test_generated_images_come_as_small_previews_with_the_originals_saved(tmp_path, fake):
    async with served(tmp_path, fake) as call:
        progress: list = []
        result = await call("generate_image", {"prompt": "a cat", "size": "1280x800", "n": 2}, progress=progress)
        assert not result.is_error, text_of(result)
        kinds = [block.type for block in result.content]
        assert kinds == ["text", "image", "resource_link", "image", "resource_link"]
        from PIL import Image

        for block in result.content:
            if block.type == "image":
                data = base64.b64decode(block.data)
                assert len(data) <= 512 * 1024
                with Image.open(io.BytesIO(data)) as preview:
                    assert preview.size == (1024, 640)
        files = result.structured_content["images"]
        assert len(files) == 2 and all(Path(f["path"]).parent == tmp_path / "out" for f in files)
        with Image.open(files[0]["path"]) as original:
            assert original.size == (1280, 800)
        assert files[0]["bytes"] == os.path.getsize(files[0]["path"]) > 512 * 1024
        # Progress: monotonic, from 0 to 100.
        done = [p[0] for p in progress]
        assert done[0] == 0 and done[-1] == 100 and done == sorted(done)


async def test_edit_reads_images_only_from_allowed_directories(tmp_path, fake):
    async with served(tmp_path, fake) as call:
        (tmp_path / "allowed").mkdir(exist_ok=True)
        write_png(tmp_path / "allowed" / "cat.png", (64, 48))
        write_png(tmp_path / "secret.png", (8, 8))
        result = await call("edit_image", {"images": ["allowed/cat.png"], "prompt": "add a hat"})
        assert result.is_error  # relative to the server's folder, not the allowed one: refused
        inside = str(tmp_path / "allowed" / "cat.png")
        result = await call("edit_image", {"images": [inside], "prompt": "add a hat"})
        assert not result.is_error, text_of(result)
        edit = [r for r in fake.requests() if r["api"] == "images/edits"]
        assert len(edit) == 1
        outside = await call("edit_image", {"images": [str(tmp_path / "secret.png")], "prompt": "x"})
        assert outside.is_error and "outside allowed directories" in text_of(outside)


async def test_analyze_image_takes_data_urls_and_allowed_paths_but_no_private_urls(tmp_path, fake):
    async with served(tmp_path, fake) as call:
        (tmp_path / "allowed").mkdir(exist_ok=True)
        write_png(tmp_path / "allowed" / "dot.png", (4, 4))
        by_path = await call("analyze_image", {"image": str(tmp_path / "allowed" / "dot.png")})
        assert not by_path.is_error, text_of(by_path)
        data_url = "data:image/png;base64," + base64.b64encode((tmp_path / "allowed" / "dot.png").read_bytes()).decode()
        by_data = await call("analyze_image", {"image": data_url, "detail": "low"})
        assert not by_data.is_error
        assert [r["api"] for r in fake.requests()] == ["responses", "responses"]
        for url in (
            "file:///etc/passwd",
            "http://127.0.0.1/x.png",
            "http://169.254.169.254/latest",
            "ftp://example.com/a.png",
        ):
            refused = await call("analyze_image", {"image": url})
            assert refused.is_error, url
        assert len(fake.requests()) == 2  # none of them reached OpenAI


async def test_errors_carry_the_status_and_retries_only_what_is_retryable(tmp_path, fake):
    async with served(tmp_path, fake) as call:
        fake.queue_faults({"status": 429, "retry_after": 0.2}, {"status": 503})
        result = await call("chat_completion", {"prompt": "hello"})
        assert not result.is_error and len(fake.requests()) == 3  # 429, 503, then the answer
        fake.queue_faults({"status": 400, "message": f"bad request for key {KEY}"})
        bad = await call("chat_completion", {"prompt": "hello"})
        assert bad.is_error and "OpenAI answered 400" in text_of(bad)
        assert len(fake.requests()) == 4  # a 400 is not retried
    fake.queue_faults({"status": 500}, {"status": 500})
    async with served(tmp_path, fake, RETRIES="1") as call:
        gave_up = await call("chat_completion", {"prompt": "hello"})
        assert gave_up.is_error and "OpenAI answered 500" in text_of(gave_up)
    # A request that times out is sent again; one that keeps timing out is a clear error.
    fake.queue_faults({"delay": 2.0})
    async with served(tmp_path, fake, RETRIES="1", TIMEOUT="0.5") as call:
        assert not (await call("chat_completion", {"prompt": "hello"})).is_error
        fake.queue_faults({"delay": 2.0}, {"delay": 2.0})
        slow = await call("chat_completion", {"prompt": "hello"})
        assert slow.is_error and "did not answer within 0.5 s" in text_of(slow)
    # The key never shows: not in a result (even when OpenAI quotes it), not on stderr.
    stderr = (tmp_path / "server.err").read_text()
    assert KEY not in text_of(bad) + text_of(gave_up) + stderr


def test_bad_settings_stop_the_server_with_one_line(tmp_path):
    env = clean_env(OPENAI_API_KEY=KEY, DEFAULT_MODEL="gpt-4", MAX_TOKENS="lots")
    proc = subprocess.run(
        [PY, "-m", "app", "serve", "openai"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: DEFAULT_MODEL: OpenAI shut down the model 'gpt-4'; use 'gpt-5.6-luna' instead"
    env["DEFAULT_MODEL"] = "gpt-5.4"
    proc = subprocess.run(
        [PY, "-m", "app", "serve", "openai"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and proc.stderr.strip() == "error: MAX_TOKENS='lots' is not a whole number"
    assert json.dumps(env) and KEY not in proc.stderr


@asynccontextmanager
async def over_http(tmp_path: Path, fake, *args: str, **env: str) -> AsyncIterator[str]:
    """The server over streamable HTTP on a free port; yields its URL."""
    from tests.conftest import free_port, stop_all, wait_for_port

    port = free_port()
    command = [PY, "-m", "servers.openai_tools", "--transport", "http", "--port", str(port), *args]
    command += ["--output-dir", str(tmp_path / "out")]
    with (tmp_path / "http.err").open("a") as errlog:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=server_env(fake, **env), stdout=subprocess.DEVNULL, stderr=errlog
        )
        try:
            wait_for_port(port, proc)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            stop_all([proc])


async def ask_with_key(url: str, key: str | None) -> Any:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"X-OpenAI-API-Key": key} if key else {}
    async with httpx2.AsyncClient(headers=headers) as http, Client(streamable_http_client(url, http_client=http)) as c:
        return await c.call_tool("ask_openai", {"query": "hello"})


def digest(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()[:12]


async def test_passthrough_uses_each_requests_own_key_and_static_ignores_it(tmp_path, fake):
    import asyncio

    alice, bob = "sk-alice-0000000000000001", "sk-bob-00000000000000002"
    async with over_http(tmp_path, fake, "--credentials", "passthrough", OPENAI_API_KEY="") as url:
        results = await asyncio.gather(*(ask_with_key(url, k) for k in (alice, bob, alice, bob)))
        assert all(not r.is_error for r in results), [text_of(r) for r in results]
        assert sorted(r["key"] for r in fake.requests()) == sorted([digest(alice), digest(bob)] * 2)
        missing = await ask_with_key(url, None)
        assert missing.is_error and "X-OpenAI-API-Key" in text_of(missing)
    count = len(fake.requests())
    async with over_http(tmp_path, fake) as url:  # static: the server's key, whatever the caller sends
        assert not (await ask_with_key(url, alice)).is_error
    assert fake.requests()[count]["key"] == digest(KEY)
    logs = (tmp_path / "http.err").read_text()
    assert alice not in logs and bob not in logs and KEY not in logs


def test_passthrough_is_refused_on_stdio_and_the_environment_picks_the_transport(tmp_path):
    env = clean_env(OPENAI_API_KEY=KEY, MCP_CREDENTIALS_PASSTHROUGH="true")
    proc = subprocess.run(
        [PY, "-m", "app", "serve", "openai"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "use --transport sse or http" in proc.stderr
    env.update(TRANSPORT="carrier-pigeon")
    proc = subprocess.run(
        [PY, "-m", "app", "serve", "openai"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "TRANSPORT='carrier-pigeon': use stdio, sse or streamable-http" in proc.stderr


def test_the_creative_example_draws_offline_against_the_fake_server(tmp_path, fake):
    from tests.conftest import run_cli

    env = clean_env(OPENAI_BASE_URL=fake.base_url, CREATIVE_OUTPUT=str(tmp_path / "art"))
    r = run_cli(
        "-c",
        str(ROOT / "examples" / "creative.yaml"),
        "run",
        "draw a lighthouse at dawn",
        "--json",
        cwd=tmp_path,
        env=env,
    )
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert [(c["server"], c["tool"], c["ok"]) for c in doc["tool_calls"]] == [("openai", "generate_image", True)]
    assert doc["output"].startswith("Here it is. 1 image(s) for: a lighthouse at dawn")
    saved = list((tmp_path / "art").glob("*.png"))
    assert len(saved) == 1 and str(saved[0]) in doc["output"]
    assert [r["api"] for r in fake.requests()] == ["images/generations"]
    r = run_cli(
        "-c", str(ROOT / "examples" / "creative.yaml"), "run", "-a", "assistants", "make an assistant called Tutor",
        "--json", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert [(c["server"], c["tool"], c["ok"]) for c in doc["tool_calls"]] == [
        ("conversations", "create_assistant", True)
    ]
    assert '"name": "Tutor"' in doc["output"] and (tmp_path / "art" / "conversations.db").exists()
