"""Config loading: schema errors with locations, interpolation, references, redaction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.config import find_config_path, load_config
from app.config.models import Config, HostedServerConfig, StdioServerConfig
from app.config.redact import MASK, redact
from app.errors import ConfigError

MINIMAL = """
agents:
  main:
    instructions: hi
"""


def error_of(path: Path, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ or {})
    return info.value


def test_minimal_config_loads_with_defaults(write_config):
    loaded = load_config(write_config(MINIMAL), {})
    agent = loaded.config.agents["main"]
    assert agent.instructions == "hi"
    assert agent.servers == [] and agent.max_turns == 10
    assert loaded.config.servers == {}


def test_unknown_key_has_location_path_and_suggestion(write_config):
    path = write_config(
        """
        servers:
          fs:
            transport: stdio
            comand: python
        agents:
          main: {instructions: hi}
        """
    )
    err = error_of(path)
    assert err.message == f"{path}:5:5: servers.fs.comand: unknown key 'comand'; did you mean 'command'?"
    assert err.exit_code == 2


def test_unknown_top_level_key_suggests_section(write_config):
    err = error_of(write_config("agent:\n  main: {}\n"))
    assert ":1:1: agent: unknown key 'agent'; did you mean 'agents'?" in err.message


def test_unknown_key_inside_union_member(write_config):
    path = write_config(
        """
        servers:
          web:
            transport: streamable_http
            url: http://127.0.0.1:1/mcp
            cache_tools: {ttll: 5}
        agents:
          main: {instructions: hi}
        """
    )
    err = error_of(path)
    assert err.message.endswith("servers.web.cache_tools.ttll: unknown key 'ttll'; did you mean 'ttl'?")
    assert f"{path}:6:19:" in err.message


def test_bad_transport_names_the_choices(write_config):
    err = error_of(write_config("servers:\n  x: {transport: pipe, command: a}\nagents:\n  m: {}\n"))
    assert "servers.x" in err.message and "'pipe'" in err.message and "stdio" in err.message


def test_wrong_type_is_reported_at_its_key(write_config):
    path = write_config("agents:\n  main:\n    max_turns: lots\n")
    err = error_of(path)
    assert err.message.startswith(f"{path}:3:5: agents.main.max_turns:")
    assert "integer" in err.message


def test_invalid_yaml_reports_line(write_config):
    path = write_config("agents:\n  main: [unclosed\n")
    err = error_of(path)
    assert err.message.startswith(f"{path}:") and "invalid YAML" in err.message


def test_duplicate_keys_are_rejected(write_config):
    err = error_of(write_config("agents:\n  main: {}\n  main: {}\n"))
    assert "invalid YAML" in err.message


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "agents.yaml"
    empty.write_text("")
    assert "empty" in error_of(empty).message
    missing = error_of(tmp_path / "nope.yaml")
    assert "not found" in missing.message and missing.hint and "--config" in missing.hint


def test_no_agents_is_an_error(write_config):
    err = error_of(write_config("servers: {}\n"))
    assert "agents" in err.message and "required" in err.message


def test_interpolation_with_defaults_and_escapes(write_config):
    path = write_config(
        """
        servers:
          fs:
            transport: stdio
            command: ${PYBIN}
            args: ["--root", "${ROOT_DIR:-/srv/data}", "$${NOT_A_VAR}"]
            env: {TOKEN: "${TOKEN}"}
        agents:
          main: {instructions: "Hello ${WHO:-world}", servers: [fs]}
        """
    )
    loaded = load_config(path, {"PYBIN": "python3", "TOKEN": "s3cret"})
    fs = loaded.config.servers["fs"]
    assert isinstance(fs, StdioServerConfig)
    assert fs.command == "python3"
    assert fs.args == ["--root", "/srv/data", "${NOT_A_VAR}"]
    assert fs.env == {"TOKEN": "s3cret"}
    assert loaded.config.agents["main"].instructions == "Hello world"


def test_missing_variable_names_variable_and_key_path(write_config):
    path = write_config(
        """
        servers:
          fs:
            transport: streamable_http
            url: http://127.0.0.1/mcp
            headers:
              Authorization: "Bearer ${API_TOKEN}"
        agents:
          main: {instructions: hi}
        """
    )
    err = error_of(path)
    assert err.message == f"{path}:7:7: servers.fs.headers.Authorization: environment variable API_TOKEN is not set"
    assert err.hint and "${API_TOKEN:-default}" in err.hint


def test_dotenv_beside_config_is_loaded_and_environment_wins(write_config, tmp_path):
    (tmp_path / ".env").write_text("GREETING=from-dotenv\nOTHER=dotenv\n")
    path = write_config('agents:\n  main: {instructions: "${GREETING} ${OTHER}"}\n')
    loaded = load_config(path, {"OTHER": "environment"})
    assert loaded.config.agents["main"].instructions == "from-dotenv environment"


def test_config_path_lookup_order(tmp_path):
    assert find_config_path("x.yaml", {"AGENTDECK_CONFIG": "y.yaml"}) == Path("x.yaml")
    assert find_config_path(None, {"AGENTDECK_CONFIG": "y.yaml"}) == Path("y.yaml")
    assert find_config_path(None, {}) == Path("agents.yaml")


def test_unknown_server_reference_suggests(write_config):
    path = write_config(
        """
        servers:
          files: {transport: stdio, command: x}
        agents:
          main:
            servers: [files, file]
        """
    )
    err = error_of(path)
    assert err.message == f"{path}:6:22: agents.main.servers[1]: unknown server 'file'; did you mean 'files'?"


def test_unknown_handoff_and_as_tool_agents(write_config):
    err = error_of(write_config("agents:\n  main: {handoffs: [suport]}\n  support: {}\n"))
    assert "agents.main.handoffs[0]: unknown agent 'suport'; did you mean 'support'?" in err.message
    err = error_of(write_config("agents:\n  main: {as_tools: [ghost]}\n"))
    assert "agents.main.as_tools[0]: unknown agent 'ghost'" in err.message


def test_handoff_cycles_are_allowed(write_config):
    # triage -> billing -> triage is how specialists hand back; max_turns bounds a loop.
    loaded = load_config(write_config("agents:\n  a: {handoffs: [b]}\n  b: {handoffs: [c]}\n  c: {handoffs: [a]}\n"))
    assert loaded.config.agents["c"].handoffs == ["a"]


def test_self_handoff_and_as_tools_cycle(write_config):
    assert "refers to itself" in error_of(write_config("agents:\n  a: {handoffs: [a]}\n")).message
    err = error_of(write_config("agents:\n  a: {as_tools: [b]}\n  b: {as_tools: [a]}\n"))
    assert "as_tools form a cycle" in err.message


def test_hosted_server_on_chat_completions_agent(write_config):
    path = write_config(
        """
        providers:
          local: {kind: openai_compatible, base_url: "http://127.0.0.1:11434/v1"}
        servers:
          docs: {transport: hosted, server_url: "https://example.com/mcp"}
        agents:
          main: {provider: local, servers: [docs]}
        """
    )
    err = error_of(path)
    assert "hosted server 'docs' needs the Responses API" in err.message
    assert "agents.main.servers[0]" in err.message


def test_hosted_server_needs_exactly_one_target(write_config):
    err = error_of(write_config("servers:\n  h: {transport: hosted}\nagents:\n  m: {}\n"))
    assert "exactly one of 'server_url', 'connector_id' or 'tunnel_id'" in err.message
    ok = load_config(
        write_config(
            "servers:\n  h: {transport: hosted, connector_id: connector_gmail}\nagents:\n  m: {servers: [h]}\n"
        ),
        {},
    )
    assert isinstance(ok.config.servers["h"], HostedServerConfig)


def test_instructions_and_instructions_file(write_config, tmp_path):
    err = error_of(write_config("agents:\n  m: {instructions: a, instructions_file: b.md}\n"))
    assert "not both" in err.message
    err = error_of(write_config("agents:\n  m: {instructions_file: missing.md}\n"))
    assert "agents.m.instructions_file" in err.message and "does not exist" in err.message
    (tmp_path / "prompt.md").write_text("Be brief.")
    assert load_config(write_config("agents:\n  m: {instructions_file: prompt.md}\n"), {})


def test_unknown_provider_reference(write_config):
    err = error_of(write_config("agents:\n  m: {provider: opneai}\n"))
    assert "unknown provider 'opneai'; did you mean 'openai'?" in err.message


def test_bad_filter_reference_and_server_names(write_config):
    err = error_of(
        write_config("servers:\n  s: {transport: stdio, command: x, filter: 'not a ref'}\nagents:\n  m: {}\n")
    )
    assert "servers.s.filter" in err.message
    err = error_of(write_config("servers:\n  'bad name': {transport: stdio, command: x}\nagents:\n  m: {}\n"))
    assert "may use only letters" in err.message


def test_url_must_be_http(write_config):
    err = error_of(write_config("servers:\n  s: {transport: sse, url: 'ftp://x'}\nagents:\n  m: {}\n"))
    assert "servers.s.url" in err.message and "http" in err.message


def test_redaction_hides_secret_values():
    data = {
        "providers": {"p": {"api_key": "sk-123", "base_url": "http://x"}},
        "servers": {
            "s": {
                "headers": {"Authorization": "Bearer abc", "X-Api-Key": "k", "Accept": "json"},
                "env": {"DB_PASSWORD": "pw", "HOME": "/h"},
            },
            "h": {"authorization": "tok", "access_token": "t2", "client_secret": "c"},
        },
    }
    out = redact(data)
    assert out["providers"]["p"] == {"api_key": MASK, "base_url": "http://x"}
    assert out["servers"]["s"]["headers"] == {"Authorization": MASK, "X-Api-Key": MASK, "Accept": "json"}
    assert out["servers"]["s"]["env"] == {"DB_PASSWORD": MASK, "HOME": "/h"}
    assert set(out["servers"]["h"].values()) == {MASK}
    assert "sk-123" not in json.dumps(out)


def test_json_schema_describes_the_config():
    schema = Config.model_json_schema()
    assert set(schema["properties"]) == {
        "providers",
        "defaults",
        "servers",
        "agents",
        "audit",
        "telemetry",
        "gateway",
        "batch",
    }
    assert schema["additionalProperties"] is False


def test_redact_url_masks_passwords_and_query_values():
    from app.config.redact import redact_url

    assert (
        redact_url("https://admin:s3cret@host.example/mcp?token=abc&x=1")
        == "https://admin:***@host.example/mcp?token=***&x=***"
    )
    assert redact_url("http://127.0.0.1:8000/mcp") == "http://127.0.0.1:8000/mcp"
