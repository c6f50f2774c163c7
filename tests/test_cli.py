"""The CLI in real subprocesses: commands, exit codes, error rendering, approvals on a terminal."""

from __future__ import annotations

import json
import sys

import pexpect
import pytest

from tests.conftest import PY, ROOT, TOY, clean_env, read_call_log, run_cli

RULES = """
rules:
  - when: {user: 'delete customer (?P<id>\\d+)'}
    call: [{tool: delete_customer, args: {customer_id: "{id|int}"}}]
    reply: "Result: {output}"
  - when: {user: 'add (?P<a>\\d+) and (?P<b>\\d+)'}
    call: [{tool: add, args: {a: "{a|int}", b: "{b|int}"}}]
    reply: "Sum: {output}"
"""


@pytest.fixture
def project(tmp_path, write_config, write_rules):
    write_rules(RULES)
    write_config(
        f"""
        providers:
          offline: {{kind: offline, rules: rules.yaml, log: calls.jsonl}}
        defaults: {{agent: main}}
        servers:
          toy:
            transport: stdio
            command: python
            args: ["{TOY}"]
            approval: destructive
            env: {{SERVICE_TOKEN: "${{SERVICE_TOKEN:-hunter2-secret}}"}}
          web:
            transport: streamable_http
            url: http://127.0.0.1:9/mcp
            headers: {{Authorization: "Bearer ${{WEB_TOKEN:-tok-abc123}}"}}
            required: false
            start_timeout: 3
        agents:
          main:
            servers: [toy, web]
            tools: {{block: [echo]}}
          ro:
            servers: [toy]
            tools: {{allow: ["get_*", "add"]}}
        """
    )
    return tmp_path


def no_traceback(text: str) -> bool:
    return "Traceback" not in text


def test_help_lists_commands(tmp_path):
    r = run_cli("--help", cwd=tmp_path)
    assert r.code == 0
    for word in ("run", "config", "servers", "tools", "fake-openai"):
        assert word in r.out


def test_console_script_is_installed(tmp_path):
    import subprocess

    exe = str(ROOT / ".venv" / "bin" / "agentdeck") if (ROOT / ".venv" / "bin" / "agentdeck").exists() else "agentdeck"
    proc = subprocess.run([exe, "config", "--help"], capture_output=True, text=True, cwd=tmp_path, env=clean_env())
    assert proc.returncode == 0 and "validate" in proc.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run"], "the question is empty"),  # no argument: the question is read from (empty) stdin
        (["run", "x", "--approve", "maybe"], "'maybe' is not one of"),
        (["tools", "list", "--agent", "a", "--server", "s"], "give --agent or --server, not both"),
        (["nonsense"], "No such command"),
        (["tools", "call", "toy", "add", "--args", "{bad json"], "--args is not valid JSON"),
        (["tools", "call", "toy", "add", "--args", "[1]"], "--args must be a JSON object"),
        (["run", "   "], "the question is empty"),
    ],
)
def test_usage_errors_exit_2_without_traceback(project, args, needle):
    r = run_cli(*args, cwd=project)
    assert r.code == 2, r.err
    assert needle in r.err and r.err.lstrip().startswith("error:")
    assert no_traceback(r.err)


def test_config_errors_exit_2_with_location(tmp_path, write_config):
    path = write_config("agents:\n  main:\n    instructons: hi\n")
    r = run_cli("run", "hello", cwd=tmp_path)
    assert r.code == 2
    assert path.name == "agents.yaml"
    assert (
        "error: agents.yaml:3:5: agents.main.instructons: unknown key 'instructons'; did you mean 'instructions'?"
        in r.err
    )
    assert no_traceback(r.err)


def test_missing_config_names_the_lookup(tmp_path):
    r = run_cli("config", "validate", cwd=tmp_path)
    assert r.code == 2 and "agents.yaml: config file not found" in r.err and "AGENTDECK_CONFIG" in r.err


def test_config_env_var_and_flag(project, tmp_path):
    other = tmp_path / "sub"
    other.mkdir()
    r = run_cli("config", "validate", cwd=other, env=clean_env(AGENTDECK_CONFIG=str(project / "agents.yaml")))
    assert r.code == 0 and "2 agent(s), 2 server(s)" in r.out
    r = run_cli("config", "validate", "--config", str(project / "agents.yaml"), cwd=other)
    assert r.code == 0


def test_config_show_redacts_secrets(project):
    r = run_cli("config", "show", cwd=project)
    assert r.code == 0
    assert "hunter2-secret" not in r.out and "tok-abc123" not in r.out
    assert "SERVICE_TOKEN: '***'" in r.out and "Authorization: '***'" in r.out
    assert "http://127.0.0.1:9/mcp" in r.out


def test_config_schema_is_json_schema(tmp_path):
    r = run_cli("config", "schema", cwd=tmp_path)
    doc = json.loads(r.out)
    assert doc["title"] == "agentdeck agents.yaml" and "agents" in doc["properties"]


def test_import_and_export_round_trip(tmp_path):
    claude = {
        "mcpServers": {
            "fs": {"command": "npx", "args": ["-y", "server-filesystem", "/tmp"], "env": {"A": "1"}},
            "web": {"url": "https://x.example/mcp"},
        }
    }
    (tmp_path / "claude.json").write_text(json.dumps(claude))
    r = run_cli("config", "import-claude", "claude.json", cwd=tmp_path)
    assert r.code == 0
    (tmp_path / "agents.yaml").write_text(r.out + "agents:\n  main: {servers: [fs, web]}\n")
    assert run_cli("config", "validate", cwd=tmp_path).code == 0
    back = json.loads(run_cli("config", "export", "--format", "claude", cwd=tmp_path).out)
    assert back == {
        "mcpServers": {"fs": claude["mcpServers"]["fs"], "web": {"type": "http", "url": "https://x.example/mcp"}}
    }


def test_export_keeps_variable_references(project):
    r = run_cli("config", "export", cwd=project)
    assert "${SERVICE_TOKEN:-hunter2-secret}" in r.out or "hunter2" not in r.out
    assert json.loads(r.out)["mcpServers"]["web"]["headers"]["Authorization"].startswith("Bearer ${")


def test_import_bad_file(tmp_path):
    (tmp_path / "x.json").write_text("{nope")
    r = run_cli("config", "import-claude", "x.json", cwd=tmp_path)
    assert r.code == 2 and "invalid JSON" in r.err and no_traceback(r.err)


def test_servers_list_and_check(project):
    r = run_cli("servers", "list", cwd=project)
    assert r.code == 0 and "toy" in r.out and "streamable_http" in r.out
    r = run_cli("servers", "check", "--json", cwd=project)
    rows = {row["server"]: row for row in json.loads(r.out)}
    assert r.code == 1  # web is down
    assert rows["toy"]["ok"] and rows["toy"]["tools"] == 7 and rows["toy"]["start_ms"] > 0
    assert not rows["web"]["ok"] and rows["web"]["error"]


def test_tools_list_after_filters(project):
    r = run_cli("tools", "list", "--agent", "ro", "--json", cwd=project)
    assert r.code == 0, r.err
    assert [(t["name"], t["kind"]) for t in json.loads(r.out)] == [("add", "read-only"), ("get_customer", "read-only")]
    r = run_cli("tools", "list", cwd=project)  # defaults.agent = main
    assert "delete_customer" in r.out and "destructive" in r.out and "echo" not in r.out
    r = run_cli("tools", "list", "--server", "toy", "--json", cwd=project)
    assert len(json.loads(r.out)) == 7


def test_tools_call(project):
    r = run_cli("tools", "call", "toy", "add", "--args", '{"a": 20, "b": 22}', cwd=project)
    assert r.code == 0 and r.out.strip() == "42"
    r = run_cli("tools", "call", "toy", "get_customer", "--args", '{"customer_id": 99}', cwd=project)
    assert r.code == 1 and "no customer with id 99" in r.out
    r = run_cli("tools", "call", "toy", "ad", cwd=project)
    assert r.code == 2 and "server 'toy' has no tool 'ad'; did you mean 'add'?" in r.err
    r = run_cli("tools", "call", "tooy", "add", cwd=project)
    assert r.code == 2 and "did you mean 'toy'?" in r.err


def test_run_json_record(project):
    r = run_cli("run", "add 2 and 40", "--json", cwd=project)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["output"] == "Sum: 42" and doc["agent"] == "main"
    assert [(c["server"], c["tool"], c["arguments"], c["ok"]) for c in doc["tool_calls"]] == [
        ("toy", "add", {"a": 2, "b": 40}, True)
    ]
    assert doc["usage"]["requests"] == 2 and doc["duration_ms"] > 0
    assert "optional server 'web' is unavailable" in r.err


def test_run_plain_says_offline(project):
    r = run_cli("run", "add 1 and 1", cwd=project)
    assert r.code == 0 and r.out.strip() == "Sum: 2"
    assert "Using the offline model" in r.err and "OPENAI_API_KEY" in r.err


def test_approvals_without_a_terminal(project):
    r = run_cli("run", "delete customer 3", "--json", cwd=project)
    doc = json.loads(r.out)
    assert doc["output"].startswith("Result: The user declined this tool call")
    assert doc["tool_calls"][0]["declined"] is True
    r = run_cli("run", "delete customer 3", "--json", "--approve", "yes", cwd=project)
    assert json.loads(r.out)["output"] == "Result: deleted customer 3"
    r = run_cli("run", "delete customer 3", "--approve", "ask", cwd=project)
    assert r.code == 2 and "--approve ask needs a terminal" in r.err


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_approval_prompt_on_a_terminal(project):
    env = clean_env()
    child = pexpect.spawn(
        PY, ["-m", "app", "run", "delete customer 2"], cwd=str(project), env=env, encoding="utf-8", timeout=60
    )
    child.expect("approve.*delete_customer")
    child.expect(r"Run this tool\?")
    child.sendline("y")
    child.expect("Result: deleted customer 2")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    child = pexpect.spawn(
        PY, ["-m", "app", "run", "delete customer 1"], cwd=str(project), env=env, encoding="utf-8", timeout=60
    )
    child.expect(r"Run this tool\?")
    child.sendline("Ada is an important customer")
    child.expect("Result: The user declined this tool call")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    last = read_call_log(project / "calls.jsonl")[-1]
    assert "Reason: Ada is an important customer" in last["tool_outputs"][0]


def test_run_model_failure_exits_1(tmp_path, write_config):
    write_config(
        "providers:\n  dead: {kind: openai_compatible, base_url: 'http://127.0.0.1:9/v1', max_retries: 0}\n"
        "agents:\n  main: {provider: dead, model: m}\n"
    )
    r = run_cli("run", "hello", cwd=tmp_path)
    assert r.code == 1 and "cannot reach the model endpoint http://127.0.0.1:9/v1" in r.err
    assert no_traceback(r.err)


def test_openai_without_key_is_a_config_error(tmp_path, write_config):
    write_config("agents:\n  main: {provider: openai}\n")
    r = run_cli("run", "hello", cwd=tmp_path)
    assert r.code == 2 and "OPENAI_API_KEY is not set" in r.err


def test_dead_required_server_exits_1_with_stderr_tail(tmp_path, write_config):
    write_config(
        "servers:\n  db:\n    transport: stdio\n    command: python\n"
        "    args: ['-c', 'import sys; sys.stderr.write(\"cannot open customers.db\\n\"); sys.exit(2)']\n"
        "agents:\n  main: {servers: [db]}\n"
    )
    r = run_cli("run", "hello", cwd=tmp_path)
    assert r.code == 1
    assert "MCP server 'db' (python -c" in r.err and "cannot open customers.db" in r.err
    assert no_traceback(r.err)


def test_unknown_agent(project):
    r = run_cli("run", "hi", "--agent", "mian", cwd=project)
    assert r.code == 2 and "unknown agent 'mian'; did you mean 'main'?" in r.err


def test_ctrl_c_mid_run_exits_cleanly_without_orphans(tmp_path, write_config, write_rules):
    import os
    import signal
    import subprocess
    import time
    import uuid

    marker = f"--prefix=z{uuid.uuid4().hex[:6]}_"
    prefix = marker.split("=", 1)[1]
    write_rules(
        f"rules:\n  - when: {{user: nap}}\n    call: [{{tool: {prefix}nap, args: {{seconds: 60}}}}]\n    reply: done\n"
    )
    write_config(
        f"providers:\n  offline: {{kind: offline, rules: rules.yaml}}\n"
        f"servers:\n  toy: {{transport: stdio, command: python, args: ['{TOY}', '{marker}']}}\n"
        "agents:\n  main: {servers: [toy]}\n"
    )

    def toy_processes() -> list[str]:
        out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
        return [line for line in out.splitlines() if marker in line and "ps -ww" not in line]

    proc = subprocess.Popen(
        [PY, "-m", "app", "run", "nap"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not toy_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert toy_processes(), "the server never started"
    time.sleep(3)  # let the model turn reach the sleeping tool call
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "error: interrupted" in err and "Traceback" not in err and "Warning" not in err
    assert toy_processes() == []
