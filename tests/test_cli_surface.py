"""The CLI's surface in real subprocesses: --version, completion, help texts, init, batch summary, fake faults."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

from app.batch.stats import BatchStats, summary_lines
from tests.conftest import PY, TOY, clean_env, run_cli

TEMPLATES = {  # template -> what its suggested question gets from the offline model's built-in rules
    "basic": "Hello! I'm agentdeck's offline model",
    "filesystem": "read_text_file",
    "customers": "search_customers",
    "hosted": "I was offered these tools",
}


def test_version_and_shell_completion(tmp_path: Path) -> None:
    r = run_cli("--version", cwd=tmp_path)
    assert r.code == 0 and r.out.strip() == f"agentdeck {version('agentdeck')}", r.err
    # What the script from --install-completion asks for on <Tab>: the subcommand and its choices resolve.
    env = clean_env(_AGENTDECK_COMPLETE="complete_bash", COMP_WORDS="agentdeck init --template ", COMP_CWORD="3")
    r = run_cli(cwd=tmp_path, env=env)
    assert r.code == 0 and set(r.out.split()) == set(TEMPLATES), r.out + r.err


def _sections(text: str) -> dict[str, list[str]]:
    """Help text -> {"Usage": [...], "Commands": [...], ...}: the lines under each heading."""
    out: dict[str, list[str]] = {}
    current = "Usage"
    for line in text.splitlines():
        heading = re.match(r"^(Usage|Arguments|Options|Commands):", line)
        if heading:
            current = heading.group(1)
            out[current] = [line]
        elif line.strip():
            out.setdefault(current, []).append(line)
    return out


def test_every_help_has_whole_summaries_real_metavars_and_an_example(tmp_path: Path) -> None:
    helps: dict[str, str] = {}
    level: list[list[str]] = [[]]
    with ThreadPoolExecutor(8) as pool:
        while level:  # the command tree, one level at a time, as each help lists it
            results = list(pool.map(lambda path: run_cli(*path, "--help", cwd=tmp_path), level))
            below = []
            for path, r in zip(level, results, strict=True):
                where = " ".join(["agentdeck", *path])
                assert r.code == 0, f"{where}: {r.err}"
                helps[where] = r.out
                below += [[*path, name] for name in _check_help(where, r.out)]
            level = below
    assert len(helps) >= 20 and "agentdeck init" in helps and "agentdeck config export" in helps
    assert "Usage: agentdeck run [OPTIONS] [QUESTION]" in helps["agentdeck run"]
    assert "-f, --file PATH" in helps["agentdeck run"] and "-q, --quiet" in helps["agentdeck run"]
    assert "Usage: agentdeck serve [OPTIONS] NAME [ARGS]..." in helps["agentdeck serve"]
    assert "--install-completion" in helps["agentdeck"] and "--version" in helps["agentdeck"]


def _check_help(where: str, text: str) -> list[str]:
    """Assert what every help must show; return the subcommands it lists."""
    parts = _sections(text)
    assert "{" not in parts["Usage"][0] and not re.search(r"<\w+>", text), f"{where}:\n{text}"
    assert "Example: agentdeck" in text, f"{where} has no example:\n{text}"
    names = []
    for line in parts.get("Commands", [])[1:]:
        # One line per command (no wrapped or cut summary): "  name  Summary."
        row = re.fullmatch(r"  (\S+) {2,}(\S.*)", line)
        assert row and not row.group(2).endswith("...") and "…" not in line, f"{where}: {line!r}"
        names.append(row.group(1))
    for line in parts.get("Options", [])[1:]:
        # Every option that takes a value names it in capitals: `--out PATH`, never `--out <str>`.
        opt = re.match(r"  (?:-\w, )?--[\w-]+(?: (\S+))?  ", line)
        assert opt is None or opt.group(1) is None or opt.group(1).isupper(), f"{where}: {line!r}"
    return names


def _try_template(tmp_path: Path, name: str) -> None:
    work = tmp_path / name
    work.mkdir()
    r = run_cli("init", "--template", name, cwd=work)
    assert r.code == 0 and f"wrote agents.yaml (template: {name})" in r.out, r.err
    text = (work / "agents.yaml").read_text()
    assert text.startswith("# agents.yaml") and f"(template: {name})" in text
    question = re.search(r'^next: agentdeck run "(.+)"$', r.out, re.M)
    assert question, r.out
    r = run_cli("config", "validate", cwd=work)
    assert r.code == 0 and r.out.startswith("ok agents.yaml"), r.err
    # From another directory: the bundled servers start beside the config, not in the caller's directory.
    r = run_cli("run", question.group(1), "-c", f"{name}/agents.yaml", cwd=tmp_path)
    assert r.code == 0 and "Using the offline model" in r.err, f"{name}: {r.err}"
    assert TEMPLATES[name] in r.out, f"{name}: {r.out}"


def test_init_templates_validate_and_run_offline(tmp_path: Path) -> None:
    with ThreadPoolExecutor(len(TEMPLATES)) as pool:
        list(pool.map(lambda name: _try_template(tmp_path, name), TEMPLATES))
    assert (tmp_path / "customers" / "customers.db").is_file()  # created beside the config
    assert not (tmp_path / "customers.db").exists()


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "agents.yaml").write_text("mine\n")
    r = run_cli("init", cwd=tmp_path)
    assert r.code == 2 and r.err.startswith("error: agents.yaml already exists"), r.err
    assert "--force" in r.err and "Traceback" not in r.err
    assert (tmp_path / "agents.yaml").read_text() == "mine\n"
    r = run_cli("init", "other.yaml", "--template", "filesystem", "--force", cwd=tmp_path)
    assert r.code == 0 and 'next: agentdeck -c other.yaml run "What tools do you have?"' in r.out
    assert "transport: stdio" in (tmp_path / "other.yaml").read_text()


def _post(url: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_fake_faults_endpoint_and_batch_summary_with_start_up_and_cost(tmp_path: Path, fake_openai) -> None:
    fake = fake_openai()
    faults_url = fake.base_url.removesuffix("/v1") + "/_admin/faults"
    for garbage in (b"not json", b'{"status": 500}', b'[{"status": "500"}]', b'[{"stauts": 500}]'):
        code, body = _post(faults_url, garbage)
        assert code == 400 and "\n" not in body.strip() and json.loads(body)["error"]["message"], (garbage, body)
    # The same list --faults takes; the batch below meets the 429 first (and its client retries).
    assert _post(faults_url, b'[{"status": 429, "retry_after": 0}]') == (200, '{"queued":1}')
    r = run_cli("fake-openai", "--faults", '[{"status": 429, "retry_afterr": 1}]', cwd=tmp_path)
    assert r.code == 2 and r.err.startswith("error: --faults: fault 0: unknown key 'retry_afterr'"), r.err

    (tmp_path / "agents.yaml").write_text(
        "providers:\n"
        f"  fake: {{kind: openai_compatible, base_url: '{fake.base_url}', api_key: k, max_retries: 2}}\n"
        "defaults:\n"
        "  prices: {house-model: {input: 1000000, output: 1000000}}   # $1 a token: the cost is the token count\n"
        f"servers:\n  toy: {{transport: stdio, command: {PY}, args: ['{TOY}']}}\n"
        "agents:\n  main: {provider: fake, model: house-model, servers: [toy]}\n"
    )
    (tmp_path / "q.txt").write_text("hello\nhi there\n")
    r = run_cli("batch", "q.txt", "--summary", "s.json", cwd=tmp_path)
    assert r.code == 0, r.err
    summary = json.loads((tmp_path / "s.json").read_text())
    usage = summary["usage"]
    assert len(fake.requests()) == usage["requests"] + 1  # the queued 429 was served
    assert summary["startup_s"] > 0 and summary["wall_s"] >= summary["startup_s"] + summary["rows_s"] - 0.002
    assert summary["model"] == "house-model"
    assert summary["cost_usd"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert re.search(r"rows in [\d.]+ s wall \(start-up [\d.]+ s, rows [\d.]+ s\)", r.out), r.out
    assert f"est. cost ${summary['cost_usd']:.2f}" in r.out, r.out


def test_batch_summary_cost_offline_and_unpriced() -> None:
    usage = {"requests": 2, "input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    offline = BatchStats(total=1, model=None, cost_usd=0.0)
    offline.tokens.update(usage)
    assert "est. cost $0.00 (offline model)" in "\n".join(summary_lines(offline, "o.jsonl", "e.jsonl", None))
    unpriced = BatchStats(total=1, model="mystery-model", cost_usd=None)
    unpriced.tokens.update(usage)
    text = "\n".join(summary_lines(unpriced, "o.jsonl", "e.jsonl", None))
    assert "est. cost n/a (no price for mystery-model" in text and unpriced.as_dict()["cost_usd"] is None
