"""Traces go to OpenAI only when a run uses OpenAI itself and the user has not turned tracing off."""

from __future__ import annotations

import pytest

from app.config import load_config
from app.tracing import export_key
from tests.conftest import clean_env, run_cli

PROVIDERS = {
    "compatible": "{kind: openai_compatible, base_url: 'http://127.0.0.1:9/v1', api_key: local-key}",
    "own_base_url": "{kind: openai, base_url: 'http://127.0.0.1:9/v1'}",
    "openai": "{kind: openai}",
    "openai_key_in_config": "{kind: openai, api_key: sk-config-key}",
    "offline": "{kind: offline}",
}


def _loaded(write_config, provider: str, tracing: str | None = None, env: dict[str, str] | None = None):
    defaults = f"defaults: {{tracing: {tracing}}}\n" if tracing else ""
    path = write_config(f"providers:\n  p: {PROVIDERS[provider]}\n{defaults}agents:\n  main: {{provider: p}}\n")
    return load_config(path, {"OPENAI_API_KEY": "sk-env-key", **(env or {})})


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("compatible", None),
        ("own_base_url", None),
        ("offline", None),
        ("openai", "sk-env-key"),
        ("openai_key_in_config", "sk-config-key"),
    ],
)
def test_only_runs_on_openai_itself_export_to_openai(write_config, provider, expected):
    assert export_key(_loaded(write_config, provider), ["main"]) == expected


@pytest.mark.parametrize("env", [{"OPENAI_AGENTS_DISABLE_TRACING": "1"}, {"OPENAI_AGENTS_DISABLE_TRACING": "true"}])
def test_the_sdk_switch_turns_tracing_off(write_config, env):
    assert export_key(_loaded(write_config, "openai", env=env), ["main"]) is None
    assert export_key(_loaded(write_config, "openai", env={"OPENAI_AGENTS_DISABLE_TRACING": "0"}), ["main"])


def test_tracing_off_in_defaults(write_config):
    assert export_key(_loaded(write_config, "openai", tracing="off"), ["main"]) is None
    assert export_key(_loaded(write_config, "openai", tracing="openai"), ["main"]) == "sk-env-key"


def test_a_mixed_run_is_not_exported(write_config):
    path = write_config(
        "providers:\n  local: {kind: offline}\n"
        "agents:\n  main: {provider: openai, handoffs: [helper]}\n  helper: {provider: local}\n"
    )
    loaded = load_config(path, {"OPENAI_API_KEY": "sk-env-key"})
    assert export_key(loaded, ["main"]) == "sk-env-key"
    assert export_key(loaded, ["main", "helper"]) is None


def test_unsupported_tracing_value_is_one_config_error(tmp_path, write_config):
    write_config("defaults: {tracing: otlp}\nagents:\n  main: {}\n")
    result = run_cli("config", "validate", cwd=tmp_path)
    assert result.code == 2
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert lines[0].startswith("error: ") and "defaults.tracing" in lines[0] and "OTLP" in lines[0]
    assert len([line for line in lines if not line.startswith("hint:")]) == 1


def test_a_compatible_provider_run_prints_no_tracing_noise(tmp_path, write_config, fake_openai):
    """With a key in the environment, a run on another provider neither exports nor complains."""
    fake = fake_openai()
    write_config(
        f"providers:\n  fake: {{kind: openai_compatible, base_url: '{fake.base_url}', api_key: k}}\n"
        "agents:\n  main: {provider: fake, model: fake-model}\n"
    )
    env = clean_env(OPENAI_API_KEY="sk-not-a-real-key")
    env.pop("OPENAI_AGENTS_DISABLE_TRACING", None)
    result = run_cli("run", "hello", cwd=tmp_path, env=env)
    assert result.code == 0, result.err
    assert "racing" not in result.out + result.err, result.err
    assert result.err == ""
    # The SDK's own debug log says whether it made a trace to export.
    debug = run_cli("run", "hello", cwd=tmp_path, env={**env, "AGENTDECK_DEBUG": "1"})
    assert debug.code == 0, debug.err
    assert "Tracing is disabled. Not creating trace" in debug.err
    assert "openai.agents: Creating trace" not in debug.err
