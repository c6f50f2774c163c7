"""Bundled servers under a client nobody here wrote: the MCP Inspector CLI, from the npm registry."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PY, ROOT, clean_env, free_port, npm_install, stop_all, wait_for_port

PACKAGE = "@modelcontextprotocol/inspector@0.15.0"
OPENAI_TOOLS = [
    "chat_completion",
    "ask_openai",
    "function_call",
    "create_embedding",
    "moderate_content",
    "list_models",
    "generate_image",
    "edit_image",
    "analyze_image",
]


@pytest.fixture(scope="module")
def inspector(tmp_path_factory) -> Path:
    """Install the Inspector into a private folder (once per module); its CLI binary."""
    binary = npm_install(tmp_path_factory.mktemp("inspector"), PACKAGE) / "mcp-inspector"
    assert binary.exists()
    return binary


def inspect(binary: Path, target: list[str], *method: str, env: dict[str, str]) -> dict:
    proc = subprocess.run(
        [str(binary), "--cli", *target, *method], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_the_openai_server_over_stdio_and_streamable_http(inspector, fake_openai, tmp_path):
    fake = fake_openai()
    env = clean_env(OPENAI_API_KEY="sk-inspector-test-key", OPENAI_BASE_URL=fake.base_url)
    stdio = [PY, "-m", "servers.openai_tools", "--output-dir", str(tmp_path / "out")]
    listed = inspect(inspector, stdio, "--method", "tools/list", env=env)
    assert [t["name"] for t in listed["tools"]] == OPENAI_TOOLS
    assert all(t.get("outputSchema") for t in listed["tools"] if not t["name"].endswith("image"))
    answer = inspect(
        inspector, stdio, "--method", "tools/call", "--tool-name", "ask_openai", "--tool-arg", "query=hi", env=env
    )
    assert answer["structuredContent"]["model"] == "gpt-5.6-luna" and not answer.get("isError")

    port = free_port()
    http = [*stdio, "--transport", "http", "--port", str(port)]
    proc = subprocess.Popen(http, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        url = [f"http://127.0.0.1:{port}/mcp", "--transport", "http"]
        call = ["--method", "tools/call", "--tool-name", "create_embedding", "--tool-arg", "input=hi"]
        embedded = inspect(inspector, url, *call, "--tool-arg", "dimensions=4", env=env)
        assert embedded["structuredContent"]["dimensions"] == 4
    finally:
        stop_all([proc])
    assert [r["api"] for r in fake.requests()] == ["chat_completions", "embeddings"]


CONVERSATIONS_TOOLS = {
    "create_assistant", "get_assistant", "list_assistants", "modify_assistant", "delete_assistant",
    "create_thread", "get_thread", "modify_thread", "delete_thread", "list_threads",
    "create_message", "get_message", "list_messages", "modify_message", "delete_message",
    "create_run", "create_thread_and_run", "get_run", "list_runs", "cancel_run", "modify_run",
    "submit_tool_outputs", "run_and_wait", "list_run_steps", "get_run_step",
}  # fmt: skip


def test_the_conversations_server_over_stdio_and_streamable_http(inspector, fake_openai, tmp_path):
    fake = fake_openai()
    env = clean_env(OPENAI_API_KEY="sk-inspector-test-key", OPENAI_BASE_URL=fake.base_url)
    stdio = [PY, "-m", "servers.conversations", "--db", str(tmp_path / "c.db")]
    listed = inspect(inspector, stdio, "--method", "tools/list", env=env)
    tools = {t["name"]: t for t in listed["tools"]}
    assert set(tools) == CONVERSATIONS_TOOLS
    destructive = {name for name, t in tools.items() if (t.get("annotations") or {}).get("destructiveHint")}
    assert destructive == {"delete_assistant", "delete_thread", "delete_message", "cancel_run"}
    port = free_port()
    proc = subprocess.Popen(
        [*stdio, "--transport", "http", "--port", str(port)], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, proc)
        url = [f"http://127.0.0.1:{port}/mcp", "--transport", "http"]
        call = ["--method", "tools/call", "--tool-name", "create_thread"]
        thread = inspect(inspector, url, *call, env=env)
        assert thread["structuredContent"]["id"].startswith("conv_")
    finally:
        stop_all([proc])
