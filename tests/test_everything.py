"""agentdeck against a server nobody here wrote: @modelcontextprotocol/server-everything from npm."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import clean_env, read_call_log, run_cli

PACKAGE = "@modelcontextprotocol/server-everything@2026.8.31"


@pytest.fixture(scope="module")
def everything(tmp_path_factory) -> Path:
    """Install the server from the npm registry into a private folder (once per module)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed on this machine (the README lists Node.js for this test)")
    folder = tmp_path_factory.mktemp("everything")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(folder), PACKAGE],
        check=True,
        timeout=300,
        capture_output=True,
    )
    assert (folder / "node_modules" / ".bin" / "mcp-server-everything").exists()
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
