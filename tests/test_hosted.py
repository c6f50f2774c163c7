"""Hosted MCP servers in agentdeck: config mapping, and run, batch, chat, tools list and servers check
end to end against the fake OpenAI server (which plays OpenAI's MCP client) and the customers server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pexpect
import pytest
from mcp.types import Tool, ToolAnnotations

from app.config import load_config
from app.errors import ConfigError
from app.hosted.spec import Listing, hosted_spec, tool_config
from tests.conftest import PY, clean_env, run_cli

RULES = """
rules:
  - name: declined
    when: {tool_output: '^The user declined'}
    reply: "Not done: {output}"
  - name: lookup
    when: {user: 'customer (?P<id>\\d+)$'}
    call: [{tool: get_customer, args: {customer_id: "{id|int}"}}]
    reply: "Customer {id} is {output.name}."
  - name: email
    when: {user: 'email of (?P<id>\\d+) to (?P<email>\\S+)'}
    call: [{tool: update_customer_email, args: {customer_id: "{id|int}", email: "{email}"}}]
    reply: "Changed to {output.email}."
"""


def tool(name: str, read_only: bool) -> Tool:
    annotations = ToolAnnotations(read_only_hint=read_only, destructive_hint=not read_only)
    return Tool(name=name, input_schema={"type": "object"}, annotations=annotations)


LISTING = Listing(tools=[tool("get_customer", True), tool("search_customers", True), tool("update_email", False)])


def hosted_config(write_config, server: str, agent_tools: str = "") -> object:
    path = write_config(
        f"""
servers:
  crm:
{server}
agents:
  main: {{servers: [crm]{agent_tools}}}
"""
    )
    return load_config(path, {})


HTTP = """    transport: streamable_http
    url: http://127.0.0.1:9/mcp
    headers: {Authorization: "Bearer tok"}
    hosted: true"""


def test_globs_and_destructive_approval_become_exact_names_when_listed(write_config):
    loaded = hosted_config(write_config, HTTP + "\n    tools: {block: ['*email*']}\n    approval: destructive")
    spec = hosted_spec(loaded, "crm")
    config = tool_config(loaded, spec, "main", LISTING)
    assert config == {
        "type": "mcp",
        "server_label": "crm",
        "server_url": "http://127.0.0.1:9/mcp",
        "headers": {"Authorization": "Bearer tok"},
        "allowed_tools": ["get_customer", "search_customers"],
        # Only the listed safe tools skip approval: a tool the listing did not show still asks.
        "require_approval": {"never": {"tool_names": ["get_customer", "search_customers"]}},
    }
    loaded = hosted_config(
        write_config, HTTP + "\n    approval: destructive", ", tools: {allow: ['*customer*', update_email]}"
    )
    config = tool_config(loaded, hosted_spec(loaded, "crm"), "main", LISTING)
    assert "allowed_tools" not in config  # every tool passes: nothing to restrict
    assert config["require_approval"] == {"never": {"tool_names": ["get_customer", "search_customers"]}}
    loaded = hosted_config(write_config, HTTP + "\n    approval: {always: ['*']}")
    assert tool_config(loaded, hosted_spec(loaded, "crm"), "main", LISTING)["require_approval"] == "always"


def test_read_only_policy_is_sent_as_read_only_with_the_names_it_keeps(write_config):
    loaded = hosted_config(write_config, HTTP + "\n    policy: read_only\n    approval: never")
    config = tool_config(loaded, hosted_spec(loaded, "crm"), "main", LISTING)
    assert config["allowed_tools"] == {"tool_names": ["get_customer", "search_customers"], "read_only": True}


def test_without_a_listing_only_exact_names_and_read_only_can_be_expressed(write_config):
    server = HTTP + "\n    public_url: https://crm.example.com/mcp\n    policy: read_only"
    server += "\n    tools: {allow: [get_customer, search_customers]}\n    approval: {always: [update_email]}"
    loaded = hosted_config(write_config, server, ", tools: {allow: [get_customer]}")
    config = tool_config(loaded, hosted_spec(loaded, "crm"), "main", None)
    assert config["server_url"] == "https://crm.example.com/mcp"  # what OpenAI reaches
    assert config["allowed_tools"] == {"read_only": True, "tool_names": ["get_customer"]}
    assert config["require_approval"] == {"always": {"tool_names": ["update_email"]}}
    loaded = hosted_config(write_config, HTTP + "\n    approval: destructive")
    assert tool_config(loaded, hosted_spec(loaded, "crm"), "main", None)["require_approval"] == {
        "never": {"read_only": True}
    }


def test_a_glob_that_cannot_be_resolved_is_a_config_error_saying_why(write_config):
    loaded = hosted_config(write_config, HTTP + "\n    tools: {allow: ['get_*']}")
    listing = Listing(error="cannot connect: All connection attempts failed", unreachable=True)
    with pytest.raises(ConfigError) as info:
        tool_config(loaded, hosted_spec(loaded, "crm"), "main", listing)
    message = info.value.message
    assert ":8:5: servers.crm.tools: tool globs or a block list on hosted server 'crm' needs its tool list" in message
    assert "agentdeck could not list its tools (cannot connect: All connection attempts failed)" in message
    assert "exactly in tools.allow" in info.value.hint
    loaded = hosted_config(
        write_config, "    transport: hosted\n    connector_id: connector_gmail\n    policy: no_destructive"
    )
    with pytest.raises(ConfigError, match="servers.crm.policy: policy no_destructive .* only OpenAI can reach it"):
        tool_config(loaded, hosted_spec(loaded, "crm"), "main", None)


def test_two_hosted_servers_with_one_label_are_a_config_error(write_config):
    path = write_config(
        """
servers:
  a: {transport: hosted, server_url: 'https://a.example/mcp', label: crm}
  b: {transport: streamable_http, url: 'http://127.0.0.1:9/mcp', hosted: true, label: crm}
agents:
  main: {servers: [a, b]}
"""
    )
    with pytest.raises(
        ConfigError, match="agents.main.servers\\[1\\]: hosted servers 'a' and 'b' both use the label 'crm'"
    ):
        load_config(path, {})


@pytest.mark.parametrize(
    ("server", "message"),
    [
        (HTTP + "\n    filter: 'mod:fn'", "a 'filter' function runs in agentdeck and cannot filter a hosted server"),
        (HTTP + "\n    public_url: https://a.example/mcp\n    tunnel_id: tun_1", "set 'public_url' or 'tunnel_id'"),
        (HTTP + "\n    public_url: ftp://a.example", "'ftp://a.example' is not an http:// or https:// URL"),
    ],
)
def test_hosted_http_entries_are_validated(write_config, server, message):
    with pytest.raises(ConfigError, match=message):
        hosted_config(write_config, server)


@pytest.fixture
def project(tmp_path, fake_openai, write_rules, customers_http):
    crm = customers_http()
    fake = fake_openai(write_rules(RULES))
    (tmp_path / "agents.yaml").write_text(
        f"""
providers:
  fake: {{kind: openai_compatible, base_url: '{fake.base_url}', api: responses, api_key: k, max_retries: 0}}
defaults: {{provider: fake, model: gpt-5.6-luna}}
servers:
  crm:
    transport: streamable_http
    url: {crm.url}
    headers: {{Authorization: "Bearer {crm.token}"}}
    hosted: true
    approval: destructive
    tools: {{block: ['create_*', 'read_query']}}
agents:
  main: {{servers: [crm]}}
"""
    )
    return {"dir": tmp_path, "fake": fake, "crm": crm}


def test_run_json_shows_hosted_calls_and_the_exact_tool_config_sent(project):
    crm, fake = project["crm"], project["fake"]
    r = run_cli("run", "customer 12", "--json", cwd=project["dir"])
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["output"] == f"Customer 12 is {crm.customer(12)['name']}."
    assert doc["tool_calls"] == [
        {
            "server": "crm",
            "tool": "get_customer",
            "arguments": {"customer_id": 12},
            "ok": True,
            "duration_ms": None,
            "declined": False,
            "hosted": True,
            "server_label": "crm",
        }
    ]
    assert doc["usage"]["requests"] == 1  # OpenAI made the call inside one response
    sent = fake.requests()[-1]["mcp"][0]
    assert sent["server_url"] == crm.url and sent["headers"] == {"Authorization": "***"}
    assert "create_order" not in sent["allowed_tools"] and "read_query" not in sent["allowed_tools"]
    assert "get_customer" in sent["allowed_tools"]
    assert "get_customer" in sent["require_approval"]["never"]["tool_names"]
    assert "update_customer_email" not in sent["require_approval"]["never"]["tool_names"]
    assert crm.token not in r.out + r.err


def test_run_approvals_of_hosted_calls_follow_the_approve_policy(project):
    crm = project["crm"]
    config = project["dir"] / "agents.yaml"
    config.write_text(config.read_text() + "audit: {path: audit.jsonl, include_results: preview}\n")
    yes = run_cli("run", "email of 8 to yes8@example.com", "--json", "--approve", "yes", cwd=project["dir"])
    doc = json.loads(yes.out)
    assert doc["output"] == "Changed to yes8@example.com." and doc["approvals"] == 1
    assert doc["tool_calls"][0]["ok"] is True and doc["tool_calls"][0]["hosted"] is True
    assert crm.customer(8)["email"] == "yes8@example.com"
    no = run_cli("run", "email of 9 to no9@example.com", "--json", cwd=project["dir"])  # no terminal: declined
    doc = json.loads(no.out)
    assert doc["output"] == "Not done: The user declined this tool call, so it was not run."
    assert doc["tool_calls"] == [
        {
            "server": "crm",
            "tool": "update_customer_email",
            "arguments": {"customer_id": 9, "email": "no9@example.com"},
            "ok": False,
            "duration_ms": None,
            "declined": True,
            "hosted": True,
            "server_label": "crm",
        }
    ]
    assert crm.customer(9)["email"] != "no9@example.com"
    requests = project["fake"].requests()
    assert requests[-1]["input"][-1] == "mcp_approval_response"  # the SDK answered OpenAI's request
    # The audit trail has both hosted calls, with who decided and what OpenAI's call returned.
    audit = [json.loads(line) for line in (project["dir"] / "audit.jsonl").read_text().splitlines()]
    calls = [r for r in audit if r["kind"] == "tool_call"]
    assert [(r["tool"], r["status"], r["hosted"], r["approval"]) for r in calls] == [
        ("update_customer_email", "ok", True, {"decision": "approved", "by": "--approve yes"}),
        ("update_customer_email", "declined", True, {"decision": "declined", "by": "--approve no"}),
    ]
    assert "yes8@example.com" in calls[0]["result"]["preview"]
    assert crm.token not in (project["dir"] / "audit.jsonl").read_text()


def test_offline_model_emulates_hosted_servers_in_process(project):
    text = (project["dir"] / "agents.yaml").read_text().replace("provider: fake,", "provider: offline,")
    (project["dir"] / "rules.yaml").write_text(RULES)
    text = text.replace("providers:\n", "providers:\n  offline: {kind: offline, rules: rules.yaml}\n")
    (project["dir"] / "agents.yaml").write_text(text)
    r = run_cli("run", "customer 3", "--json", cwd=project["dir"])
    doc = json.loads(r.out)
    assert doc["output"] == f"Customer 3 is {project['crm'].customer(3)['name']}."
    assert doc["tool_calls"][0]["hosted"] is True
    assert project["fake"].requests() == []  # no HTTP model server involved


def test_batch_rows_and_summary_show_hosted_calls(project):
    questions = project["dir"] / "q.txt"
    questions.write_text("customer 1\ncustomer 2\nemail of 4 to b4@example.com\n")
    r = run_cli("batch", str(questions), "-o", "out.jsonl", "--summary", "s.json", cwd=project["dir"])
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in (project["dir"] / "out.jsonl").read_text().splitlines()]
    by_input = {row["input"]: row for row in rows}
    ok = by_input["customer 1"]
    assert ok["status"] == "ok" and ok["approvals"] == 0
    assert ok["tool_calls"] == [
        {"server": "crm", "tool": "get_customer", "ok": True, "duration_ms": None, "hosted": True}
    ]
    declined = by_input["email of 4 to b4@example.com"]
    assert declined["status"] == "declined" and declined["approvals"] == 1
    assert declined["tool_calls"][0] == {
        "server": "crm",
        "tool": "update_customer_email",
        "ok": False,
        "duration_ms": None,
        "declined": True,
        "hosted": True,
    }
    summary = json.loads((project["dir"] / "s.json").read_text())
    assert summary["tool_calls"]["crm.get_customer"] == {"calls": 2, "hosted": 2}
    assert (summary["tool_calls_local"], summary["tool_calls_hosted"], summary["approvals_asked"]) == (0, 3, 1)
    assert "crm.get_customer 2 (hosted)" in r.out and "approvals asked: 1" in r.out


def styled(*parts: str) -> str:
    """A regex for text the terminal shows in pieces, with colour codes and spaces between them."""
    return r"(?:\x1b\[[0-9;?]*[A-Za-z]|\s)*".join(re.escape(part) for part in parts)


def test_chat_approves_and_declines_hosted_calls_in_a_terminal(project):
    crm = project["crm"]
    env = clean_env(AGENTDECK_STATE_DIR=str(project["dir"] / "state"))
    child = pexpect.spawn(
        PY, ["-m", "app", "chat"], cwd=str(project["dir"]), env=env, encoding="utf-8", timeout=60, dimensions=(50, 200)
    )
    child.expect("main>")
    child.sendline("customer 6")
    child.expect(styled("crm.", "get_customer", "(customer_id=6)", "hosted"))
    child.expect(styled("✓") + r"(?:\x1b\[[0-9;?]*[A-Za-z]|\s)*\d+ ms")
    child.expect(f"Customer 6 is {crm.customer(6)['name']}")
    child.expect("main>")
    child.sendline("email of 10 to no10@example.com")
    child.expect(styled("crm.", "update_customer_email", "(customer_id=10, email='no10@example.com')", "hosted"))
    child.expect(r"allow\? \[y\]es once")
    child.sendline("n")
    child.expect("reason")
    child.sendline("customer is on holiday")
    child.expect(styled("✗ update_customer_email declined", ": customer is on holiday"))
    child.expect("Not done: The user declined this tool call, so it was not run. Reason: customer is on holiday")
    child.expect("main>")
    child.sendline("email of 11 to yes11@example.com")
    child.expect(r"allow\? \[y\]es once")
    child.sendline("y")
    child.expect(styled("✓") + r"(?:\x1b\[[0-9;?]*[A-Za-z]|\s)*\d+ ms")
    child.expect("Changed to yes11@example.com")
    child.expect("main>")
    child.sendline("/usage")
    child.expect(r"tool calls 3 \(3 hosted\), approvals asked 2")
    child.expect("main>")
    child.sendline("/servers")
    child.expect(r"crm\s+hosted \(OpenAI connects\)")
    child.expect("main>")
    child.sendline("/history")
    child.expect(re.escape('hosted tool call crm.get_customer({"customer_id": 6})'))
    child.expect("main>")
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    assert crm.customer(10)["email"] != "no10@example.com"
    assert crm.customer(11)["email"] == "yes11@example.com"


def test_tools_list_shows_hosted_tools_and_servers_check_probes_them(project):
    r = run_cli("tools", "list", "--json", cwd=project["dir"])
    assert r.code == 0, r.err
    rows = {row["name"]: row for row in json.loads(r.out)}
    assert rows["get_customer"] == {
        "name": "get_customer",
        "server": "crm",
        "kind": "read-only",
        "hosted": True,
        "description": "One customer with their order count and lifetime value.",
    }
    assert rows["update_customer_email"]["kind"] == "destructive"
    assert "create_order" not in rows and "read_query" not in rows  # blocked by the server's globs
    text = (project["dir"] / "agents.yaml").read_text()
    (project["dir"] / "agents.yaml").write_text(text.replace("    approval: destructive\n", "    policy: read_only\n"))
    read_only = {row["name"] for row in json.loads(run_cli("tools", "list", "--json", cwd=project["dir"]).out)}
    assert "get_customer" in read_only and "update_customer_email" not in read_only
    (project["dir"] / "agents.yaml").write_text(text)
    text = (project["dir"] / "agents.yaml").read_text()
    text = text.replace("servers:\n", "servers:\n  gmail: {transport: hosted, connector_id: connector_gmail}\n", 1)
    text = text.replace("servers:\n  gmail", "servers:\n  bad: {transport: streamable_http, "
                        f"url: '{project['crm'].url}', hosted: true}}\n  gmail", 1)  # fmt: skip
    (project["dir"] / "agents.yaml").write_text(text)
    check = run_cli("servers", "check", "--json", cwd=project["dir"])
    assert check.code == 1  # the server without its token is refused
    rows = {row["server"]: row for row in json.loads(check.out)}
    assert rows["crm"]["status"] == "ok" and rows["crm"]["tools"] == 8 and rows["crm"]["hosted"] is True
    assert rows["gmail"]["status"] == "remote-only" and "only OpenAI can connect" in rows["gmail"]["error"]
    assert rows["bad"]["status"] == "failed" and "401 (Unauthorized)" in rows["bad"]["error"]


def test_tools_call_reaches_a_hosted_http_entry_directly(project):
    crm = project["crm"]
    r = run_cli("tools", "call", "crm", "get_customer", "--args", '{"customer_id": 5}', "--json", cwd=project["dir"])
    assert r.code == 0, r.err
    assert json.loads(r.out)["structuredContent"]["email"] == crm.customer(5)["email"]
    listed = run_cli("tools", "list", "--server", "crm", "--json", cwd=project["dir"])
    rows = json.loads(listed.out)
    assert rows and all(row["hosted"] for row in rows) and "create_order" not in {row["name"] for row in rows}
    assert project["fake"].requests() == []  # no model involved


def test_a_loopback_hosted_server_on_openai_itself_gets_a_warning(write_config, tmp_path):
    path = write_config(
        """
providers:
  openai: {kind: openai}
servers:
  crm: {transport: streamable_http, url: 'http://127.0.0.1:9/mcp', hosted: true, tools: {allow: [a]}}
agents:
  main: {servers: [crm], provider: openai}
"""
    )
    r = run_cli("tools", "list", "--config", str(path), cwd=Path(tmp_path), env=clean_env(OPENAI_API_KEY="sk-test"))
    assert r.code == 0, r.err
    assert "hosted server 'crm' is at http://127.0.0.1:9/mcp, which OpenAI cannot reach; set public_url" in r.err
