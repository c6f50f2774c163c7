"""`agentdeck experiment`: the shipped local-vs-hosted example run offline (fake OpenAI server plus
the customers server over streamable HTTP), reports checked against rows.jsonl, resume after
SIGKILL, the HTML report in headless Chromium, and `experiment compare`."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from app.batch.inputs import InputRow
from app.experiment.runner import expand
from tests.conftest import PY, ROOT, clean_env, run_cli

EXAMPLE = ROOT / "examples" / "experiment-hosted.yaml"
QUESTIONS = 6
VARIANTS = ("local", "hosted")


@pytest.fixture
def servers(fake_openai, customers_http):
    """What the example needs offline; returns the environment that points it there."""

    def start(latency: float = 0.0) -> dict[str, str]:
        crm = customers_http(token="example-token", size=5000)
        fake = fake_openai(ROOT / "examples" / "offline_rules.yaml", latency=latency)
        return clean_env(AGENTDECK_MODEL_URL=fake.base_url, CUSTOMERS_URL=crm.url, CUSTOMERS_TOKEN=crm.token)

    return start


def rows_of(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "rows.jsonl").read_text().splitlines() if line.strip()]


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)), 1) - 1] if ordered else 0.0


def recomputed(rows: list[dict], variant: str) -> dict:
    """The report's numbers for one variant, computed here independently from the rows."""
    mine = [r for r in rows if r["variant"] == variant]
    ran = [r["duration_ms"] for r in mine if r["status"] != "cancelled" and r["started_at"]]
    calls = [c for r in mine for c in r["tool_calls"]]
    usage = Counter()
    for r in mine:
        usage.update(r["usage"] or {})
    return {
        "rows": len(mine),
        "by_status": {
            s: sum(r["status"] == s for r in mine) for s in ("ok", "declined", "error", "timeout", "cancelled")
        },
        "latency_ms": {"p50": round(nearest_rank(ran, 50), 1), "p95": round(nearest_rank(ran, 95), 1)},
        "requests": usage["requests"],
        "input_tokens": usage["input_tokens"],
        "output_tokens": usage["output_tokens"],
        "tool_calls": {
            "local": sum(not c.get("hosted") for c in calls),
            "hosted": sum(bool(c.get("hosted")) for c in calls),
        },
        "tool_errors": sum(not c["ok"] and not c.get("declined") for c in calls),
        "approvals_asked": sum(r["approvals"] for r in mine),
        "cost_usd": round(sum(r["cost_usd"] for r in mine), 6),
    }


def test_rows_expand_question_by_question_with_stable_ids():
    rows = [InputRow(1, "q1", "a"), InputRow(2, "q2", "b", error="bad")]
    out = list(expand(iter(rows), ["x", "y"], 2))
    assert [r.id for r in out] == ["q1:x:1", "q1:y:1", "q1:x:2", "q1:y:2", "q2:x:1", "q2:y:1", "q2:x:2", "q2:y:2"]
    assert out[-1].error == "bad" and out[-1].question == "q2" and out[-1].repeat == 2


def test_prices_cost_tokens_and_failed_rows_cost_nothing():
    from app.config.models import Price
    from app.prices import PriceTable

    prices = PriceTable({"mine": Price(input=2.0, output=8.0)})
    usage = {"input_tokens": 1_000_000, "cached_input_tokens": 400_000, "output_tokens": 500_000}
    assert prices.cost("gpt-5.6-luna", usage) == pytest.approx(0.6 + 0.04 + 3.0)  # cached input at $0.10
    assert prices.cost("gpt-5.6-luna-2026-06-26", usage) == prices.cost("gpt-5.6-luna", usage)
    assert prices.cost("mine", {"input_tokens": 10, "output_tokens": 10}) == pytest.approx(0.0001)
    assert prices.cost("gpt-5.6-luna", None) == 0.0  # a row that failed before any answer
    assert prices.cost("unknown-model", usage) is None and prices.cost(None, usage) == 0.0


def test_report_counts_agreement_and_differences_from_rows(tmp_path):
    from app.experiment.report import build

    variants = [{"name": n, "model": "m", "hosted_servers": []} for n in ("base", "input")]
    (tmp_path / "experiment.json").write_text(json.dumps({"variants": variants, "repeat": 1}))

    def row(q, variant, status, output, ms, cost=0.01):
        usage = {"requests": 1, "input_tokens": 10, "output_tokens": 2} if status != "error" else None
        return {"id": f"{q}:{variant}:1", "question": q, "variant": variant, "repeat": 1, "line": 1, "input": f"Q {q}",
                "output": output, "status": status, "tool_calls": [], "usage": usage, "approvals": 0,
                "started_at": "t", "duration_ms": ms, "cost_usd": cost if usage else 0.0}  # fmt: skip

    rows = [
        row("a", "base", "ok", "Paris.", 100), row("a", "input", "ok", "  paris ", 300),
        row("b", "base", "ok", "4", 200), row("b", "input", "ok", "5", 400),
        row("c", "base", "ok", "x", 150), row("c", "input", "error", None, 50),
    ]  # fmt: skip
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = {v["name"]: v for v in build(tmp_path).as_dict()["variants"]}
    other = report["input"]
    assert other["agreement"] == {"agree": 1, "compared": 2, "rate": 0.5}
    assert other["differences"] == [
        {"question": "b", "repeat": 1, "input": "Q b", "baseline_answer": "4", "answer": "5"}
    ]
    assert other["by_status"]["error"] == 1 and other["latency_ms"] == {"p50": 300.0, "p95": 400.0}
    assert other["cost_usd"] == pytest.approx(0.02) and report["base"]["cost_usd"] == pytest.approx(0.03)


def test_local_versus_hosted_offline_with_reports_that_match_the_rows(servers, tmp_path):
    env = servers()
    out = tmp_path / "run"
    r = run_cli("experiment", "run", str(EXAMPLE), "-o", str(out), cwd=ROOT, env=env, timeout=180)
    assert r.code == 0, r.err
    rows = rows_of(out)
    keys = Counter((row["question"], row["variant"], row["repeat"]) for row in rows)
    assert len(keys) == QUESTIONS * len(VARIANTS) * 2 and set(keys.values()) == {1}
    assert all(row["id"] == f"{row['question']}:{row['variant']}:{row['repeat']}" for row in rows)
    report = json.loads((out / "report.json").read_text())
    assert report["baseline"] == "local" and report["questions"] == QUESTIONS and report["repeat"] == 2
    for variant in report["variants"]:
        expected = recomputed(rows, variant["name"])
        assert {k: variant[k] for k in expected} == expected
    local, hosted = report["variants"]
    assert local["tool_calls"] == {"local": 12, "hosted": 0} and hosted["tool_calls"] == {"local": 0, "hosted": 12}
    assert local["by_status"]["declined"] == hosted["by_status"]["declined"] == 2  # the email change, declined
    assert local["approvals_asked"] == hosted["approvals_asked"] == 2
    assert hosted["requests"] < local["requests"]  # OpenAI calls hosted tools inside one response
    assert hosted["agreement"] == {"agree": 12, "compared": 12, "rate": 1.0} and hosted["differences"] == []
    assert hosted["hosted_servers"] == ["customers"] and local["hosted_servers"] == []
    assert local["cost_usd"] > 0  # priced from the default table (gpt-5.6-luna)
    # The printed table and report.md carry the same numbers.
    assert "tool calls local / hosted  12 / 0" in r.out and "agrees with local" in r.out
    md = (out / "report.md").read_text()
    p50 = f"{local['latency_ms']['p50'] / 1000:.2f} s"
    assert f"| latency p50 | {p50} |" in md
    assert f"| input tokens | {local['input_tokens']:,} | {hosted['input_tokens']:,} |" in md
    assert "| Find customer Ada Lovelace |" in md


def test_resume_after_sigkill_runs_every_row_exactly_once(servers, tmp_path):
    env = servers(latency=0.25)
    out = tmp_path / "run"
    cmd = [PY, "-m", "app", "experiment", "run", str(EXAMPLE), "-o", str(out), "--concurrency", "2"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    rows_file = out / "rows.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if rows_file.exists() and rows_file.read_text().count("\n") >= 6:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    before = {
        json.loads(line)["id"]: line for line in rows_file.read_text().splitlines(keepends=True) if line.endswith("\n")
    }
    assert 6 <= len(before) < QUESTIONS * len(VARIANTS) * 2
    again = run_cli("experiment", "run", str(EXAMPLE), "-o", str(out), cwd=ROOT, env=env, timeout=180)
    assert again.code == 2  # refuses to touch DIR without --resume
    assert "already holds results" in again.err
    resumed = run_cli("experiment", "run", str(EXAMPLE), "-o", str(out), "--resume", cwd=ROOT, env=env, timeout=180)
    assert resumed.code == 0, resumed.err
    lines = rows_file.read_text().splitlines(keepends=True)
    ids = Counter(json.loads(line)["id"] for line in lines)
    assert len(ids) == QUESTIONS * len(VARIANTS) * 2 and set(ids.values()) == {1}
    finished = {i: line for i, line in before.items() if json.loads(line)["status"] in ("ok", "declined")}
    assert finished and all(line in lines for line in finished.values())  # first-run rows kept as they were
    report = json.loads((out / "report.json").read_text())
    assert sum(v["rows"] for v in report["variants"]) == QUESTIONS * len(VARIANTS) * 2


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium from Debian's package, installed with apt-get when it is missing (as root)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
        if subprocess.run(install, env=env, capture_output=True, timeout=600).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
            subprocess.run(install, env=env, capture_output=True, timeout=600)
        found = shutil.which("chromium")
    if found is None:
        pytest.fail("this test needs headless Chromium: apt-get install chromium (Debian's package)")
    return found


def test_html_report_opens_in_headless_chromium(servers, tmp_path, chromium):
    from PIL import Image

    env = servers()
    out = tmp_path / "run"
    r = run_cli("experiment", "run", str(EXAMPLE), "-o", str(out), "--repeat", "1", cwd=ROOT, env=env, timeout=180)
    assert r.code == 0, r.err
    html = (out / "report.html").read_text()
    assert re.search(r"\b(src|href)\s*=|url\(|@import|<script|<link|<iframe", html) is None  # loads nothing
    browser = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    browser += [f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1400"]
    url = (out / "report.html").as_uri()
    dom = subprocess.run([*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert '<table id="summary">' in dom.stdout and "<svg" in dom.stdout
    assert dom.stdout.count('class="chart"') == 2
    shot = tmp_path / "report.png"
    subprocess.run([*browser, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 1400)
    colours = Counter(image.get_flattened_data())
    blue, orange = (0x25, 0x63, 0xEB), (0xD9, 0x77, 0x06)  # the two variants' bars (and headers)
    assert colours[blue] > 500 and colours[orange] > 500, "both latency charts are drawn"
    header = image.crop((0, 0, 1280, 160))
    assert sum(1 for p in header.get_flattened_data() if sum(p) < 200) > 1000, "the title and table text are rendered"


def test_compare_two_experiments(servers, tmp_path):
    env = servers()
    one, two = tmp_path / "one", tmp_path / "two"
    for directory, repeat in ((one, "1"), (two, "2")):
        r = run_cli("experiment", "run", str(EXAMPLE), "-o", str(directory), "--repeat", repeat, "--limit", "3",
                    cwd=ROOT, env=env, timeout=180)  # fmt: skip
        assert r.code == 0, r.err
    r = run_cli("experiment", "compare", str(one), str(two), "--json", cwd=ROOT)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    reports = [{v["name"]: v for v in json.loads((d / "report.json").read_text())["variants"]} for d in (one, two)]
    assert set(doc["variants"]) == set(VARIANTS)
    for name in VARIANTS:
        metrics = doc["variants"][name]
        assert metrics["rows"] == {"first": 3, "second": 6}
        assert metrics["input tokens"] == {
            "first": reports[0][name]["input_tokens"],
            "second": reports[1][name]["input_tokens"],
        }
        assert metrics["latency p95 ms"]["first"] == reports[0][name]["latency_ms"]["p95"]
    text = run_cli("experiment", "compare", str(one), str(two), cwd=ROOT)
    assert "variant hosted" in text.out and "+3 (+100%)" in text.out
    bad = run_cli("experiment", "compare", str(one), str(tmp_path), cwd=ROOT)
    assert bad.code == 2 and bad.err.startswith(f"error: {tmp_path} is not an experiment directory")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("questions: q.txt\nvariants:\n  a: {}\n", "variants: an experiment compares at least two variants"),
        ("questions: q.txt\nvariants:\n  a: {}\n  b: {modle: x}\n", "variants.b.modle: unknown key 'modle'; did you mean 'model'?"),
        ("questions: nope.txt\nvariants: {a: {}, b: {}}\n", "questions: input file"),
        ("questions: q.txt\nvariants:\n  a: {}\n  b: {servers: {files: {hosted: true}}}\n",
         "variants.b.servers.files.hosted: a stdio server cannot be hosted"),
        ("questions: q.txt\nvariants:\n  a: {}\n  b: {servers: {crm: {hosted: true}}}\n", "unknown server 'crm'"),
    ],
)  # fmt: skip
def test_experiment_file_errors_are_one_line_with_a_location(tmp_path, body, message):
    (tmp_path / "q.txt").write_text("hello\n")
    (tmp_path / "agents.yaml").write_text(
        "servers:\n  files: {transport: stdio, command: python, args: ['-V']}\nagents:\n  main: {servers: [files]}\n"
    )
    (tmp_path / "exp.yaml").write_text(body)
    r = run_cli("experiment", "run", "exp.yaml", cwd=tmp_path)
    assert r.code == 2 and "Traceback" not in r.err
    first = r.err.splitlines()[0]
    assert first.startswith("error: exp.yaml:") and message in first
    assert not (tmp_path / "exp.results").exists()  # nothing was started
