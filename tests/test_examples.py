"""Every example config (examples/, agents.yaml, README blocks) passes `config validate`."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT, run_cli

EXAMPLES = sorted(
    p
    for p in [*(ROOT / "examples").glob("*.yaml"), *(ROOT / "examples").glob("*/agents.yaml")]
    if not p.name.endswith("rules.yaml") and not p.name.startswith("experiment-")
)
EXPERIMENTS = sorted((ROOT / "examples").glob("experiment-*.yaml"))


def readme_configs() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    return [b for b in blocks if re.search(r"^agents:", b, re.M)]


@pytest.mark.parametrize("path", [ROOT / "agents.yaml", *EXAMPLES], ids=lambda p: p.name)
def test_example_file_validates(path):
    r = run_cli("config", "validate", "--config", str(path), cwd=ROOT)
    assert r.code == 0, r.err
    assert r.out.startswith("ok ")


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_example_experiment_validates(path):
    r = run_cli("experiment", "validate", str(path), cwd=ROOT)
    assert r.code == 0, r.err
    assert r.out.startswith(f"ok {path}: 6 question(s) × 2 variants (local, hosted) × 2")


def test_readme_has_config_examples():
    assert readme_configs(), "README should show a complete agents.yaml"


@pytest.mark.parametrize("index", range(len(readme_configs())))
def test_readme_config_validates(index, tmp_path):
    path = tmp_path / "agents.yaml"
    rules = ROOT / "examples" / "offline_rules.yaml"
    path.write_text(readme_configs()[index].replace("examples/offline_rules.yaml", str(rules)))
    r = run_cli("config", "validate", cwd=tmp_path)
    assert r.code == 0, r.err


def test_readme_rules_example_loads(tmp_path):
    from app.offline.rules import load_rules

    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith("default:"))
    path = tmp_path / "rules.yaml"
    path.write_text(block)
    assert len(load_rules(path).rules) == 5


def test_demo_answers_offline_with_real_tool_calls(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "notes.md").write_text("# Notes\nremember the milk\n")
    from tests.conftest import clean_env

    r = run_cli(
        "run",
        "Read notes.md",
        "--json",
        cwd=ROOT,
        env=clean_env(AGENTDECK_DEMO_DIR=str(workspace), AGENTDECK_DEMO_DB=str(tmp_path / "c.db")),
    )
    assert r.code == 0, r.err
    import json

    doc = json.loads(r.out)
    assert "remember the milk" in doc["output"]
    assert [(c["server"], c["tool"]) for c in doc["tool_calls"]] == [("files", "read_text_file")]
    r = run_cli(
        "run",
        "What files are in the workspace?",
        cwd=ROOT,
        env=clean_env(AGENTDECK_DEMO_DIR=str(workspace), AGENTDECK_DEMO_DB=str(tmp_path / "c.db")),
    )
    assert "Using the offline model" in r.err and "[FILE] notes.md" in r.out


def test_demo_answers_customer_questions(tmp_path):
    import json

    from tests.conftest import clean_env

    env = clean_env(AGENTDECK_DEMO_DIR=str(tmp_path), AGENTDECK_DEMO_DB=str(tmp_path / "c.db"))
    r = run_cli("run", "Find customer Ada Lovelace", "--json", cwd=ROOT, env=env)
    doc = json.loads(r.out)
    assert doc["output"].startswith("I found ") and "Ada Lovelace <ada.lovelace" in doc["output"]
    assert [(c["server"], c["tool"]) for c in doc["tool_calls"]] == [("customers", "search_customers")]
    r = run_cli("run", "Revenue by country", "--json", cwd=ROOT, env=env)
    assert json.loads(r.out)["output"].startswith("Revenue by country: the top entry is ")
    r = run_cli("run", "Change the email of customer 7 to ada@example.com", "--json", cwd=ROOT, env=env)
    doc = json.loads(r.out)
    assert doc["output"].startswith("I did not make that change") and doc["tool_calls"][0]["declined"] is True
    r = run_cli(
        "run", "Change the email of customer 7 to ada@example.com", "--json", "--approve", "yes", cwd=ROOT, env=env
    )
    assert json.loads(r.out)["output"] == "Done: customer 7 now has the email ada@example.com."
    r = run_cli("tools", "list", "--json", cwd=ROOT, env=env)
    tools = {t["name"]: t["server"] for t in json.loads(r.out)}
    assert "write_file" not in tools and tools["update_customer_email"] == "customers"
