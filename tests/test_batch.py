"""`agentdeck batch` as a real subprocess with the offline model, the toy server and the fake OpenAI server."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import tracemalloc
from pathlib import Path

import pytest

from app.batch.inputs import input_spec, read_rows
from app.batch.results import compact, prepare
from app.batch.stats import percentile
from app.errors import UsageError
from tests.conftest import PY, TOY, clean_env, finished_rows, run_cli

RULES = """
rules:
  - when: {user: 'add (?P<a>\\d+) and (?P<b>\\d+)'}
    call: [{tool: add, args: {a: "{a|int}", b: "{b|int}"}}]
    reply: "Sum is {output}"
  - when: {user: 'delete customer (?P<id>\\d+)'}
    call: [{tool: delete_customer, args: {customer_id: "{id|int}"}}]
    reply: "Result: {output}"
  - when: {user: 'sleep (?P<s>[\\d.]+)'}
    call: [{tool: nap, args: {seconds: "{s|float}"}}]
    reply: "slept {s}"
  - when: {user: 'boom'}
    steps:
      - call: [{tool: add, args: {a: 1, b: 1}}]
      - call: [{tool: add, args: {a: 2, b: 2}}]
      - reply: "never reached: max_turns is 2"
"""


def project(tmp_path: Path, provider: str = "  offline: {kind: offline, rules: rules.yaml}", extra: str = "") -> Path:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "agents.yaml").write_text(
        f"providers:\n{provider}\n"
        "servers:\n"
        f"  toy: {{transport: stdio, command: {PY}, args: ['{TOY}', '--count-file', 'toy.count'],"
        " cache_tools: true, approval: destructive}\n"
        f"{extra}"
        "agents:\n  main: {servers: [toy], max_turns: 2}\n"
    )
    return tmp_path


def rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def batch(tmp_path: Path, *args: str, timeout: float = 120):
    return run_cli("batch", *args, cwd=tmp_path, timeout=timeout)


def test_txt_input_streams_one_row_per_query(tmp_path):
    project(tmp_path)
    (tmp_path / "q.txt").write_text("# a comment\nadd 1 and 2\n\nadd 3 and 4\ndelete customer 9\n   \nadd 5 and 6\n")
    res = batch(tmp_path, "q.txt", "--summary", "s.json", "--concurrency", "3")
    assert res.code == 0, res.err
    out = rows(tmp_path / "q.results.jsonl")
    by_input = {r["input"]: r for r in out}
    assert set(by_input) == {"add 1 and 2", "add 3 and 4", "delete customer 9", "add 5 and 6"}
    ok = by_input["add 3 and 4"]
    assert ok["status"] == "ok" and ok["output"] == "Sum is 7" and ok["agent"] == "main" and ok["line"] == 4
    assert ok["tool_calls"] == [
        {"server": "toy", "tool": "add", "ok": True, "duration_ms": ok["tool_calls"][0]["duration_ms"]}
    ]
    assert ok["usage"]["requests"] == 2 and ok["duration_ms"] > 0 and ok["started_at"].endswith("Z")
    declined = by_input["delete customer 9"]
    assert declined["status"] == "declined" and declined["tool_calls"][0]["declined"] is True
    assert "declined" in declined["output"]
    assert len({r["id"] for r in out}) == 4
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["by_status"] == {"ok": 3, "declined": 1, "error": 0, "timeout": 0, "cancelled": 0}
    assert summary["tool_calls"]["toy.add"] == {"calls": 3} and summary["tool_calls"]["toy.delete_customer"] == {
        "calls": 1,
        "declined": 1,
    }
    assert summary["usage"]["requests"] == 8 and summary["latency_ms"]["p95"] >= summary["latency_ms"]["p50"] > 0
    assert "batch done: 4 rows" in res.out and "ok 3 · declined 1" in res.out
    assert not (tmp_path / "q.results.errors.jsonl").exists()
    # --approve yes runs the destructive call instead.
    res = batch(tmp_path, "q.txt", "-o", "yes.jsonl", "--approve", "yes")
    assert any(r["output"] == "Result: deleted customer 9" for r in rows(tmp_path / "yes.jsonl"))


def test_jsonl_and_csv_inputs_templates_ids_and_malformed_lines(tmp_path):
    project(tmp_path)
    (tmp_path / "q.jsonl").write_text(
        '{"id": "a", "x": 1, "y": 2}\nnot json\n[1, 2]\n{"id": "b", "x": 3}\n\n{"id": "c", "x": 10, "y": 20}\n'
        '{"id": "a", "x": 7, "y": 7}\n'
    )
    res = batch(tmp_path, "q.jsonl", "-o", "j.jsonl", "--template", "add {x} and {y}", "--id-field", "id")
    assert res.code == 1  # some rows failed
    out = {r["id"]: r for r in rows(tmp_path / "j.jsonl")}
    assert out["a"]["output"] == "Sum is 3" and out["c"]["output"] == "Sum is 30"
    errors = sorted(r["error"] for r in out.values() if r["status"] == "error")
    assert errors == ["line 2: not valid JSON (Expecting value)", "line 3: not a JSON object",
                      "line 4: no field 'y' for the template"]  # fmt: skip
    assert len(out) == 5  # the second "a" is a duplicate id and is skipped
    assert (
        "1 duplicate ids skipped" in res.out and "resume with: agentdeck batch q.jsonl -o j.jsonl --resume" in res.out
    )
    sidecar = rows(tmp_path / "j.errors.jsonl")
    assert sorted(r["error"] for r in sidecar) == errors

    (tmp_path / "q.csv").write_text('n,question\n1,add 2 and 2\n2,"add 4 and 4"\n3,too,many\n4,add 8 and 8\n')
    res = batch(tmp_path, "q.csv", "-o", "c.jsonl", "--input-field", "question", "--id-field", "n", "--limit", "3")
    out = {r["id"]: r for r in rows(tmp_path / "c.jsonl")}
    assert set(out) == {"1", "2", "3"}  # --limit 3: the first three records only
    assert out["2"]["output"] == "Sum is 8" and out["3"]["error"] == "line 4: expected 2 fields, got 3"


def test_usage_errors_are_one_line_and_nothing_is_overwritten(tmp_path):
    project(tmp_path)
    (tmp_path / "q.txt").write_text("add 1 and 1\n")
    (tmp_path / "q.results.jsonl").write_text('{"id": "keep", "status": "ok"}\n')
    cases = [
        (["q.txt"], "already holds results"),
        (["q.txt", "--resume", "--overwrite"], "not both"),
        (["q.md"], "unknown input format"),
        (["missing.txt"], "does not exist"),
        (["q.txt", "--id-field", "id"], "plain text"),
        (["q.txt", "--approve", "ask"], "'ask' is not one of 'yes', 'no'"),
        (["q.txt", "--concurrency", "0"], "--concurrency"),
        (["q.txt", "--template", "{a.b}"], "invalid --template field"),
    ]
    (tmp_path / "q.md").write_text("x\n")
    for args, message in cases:
        res = batch(tmp_path, *args)
        assert res.code == 2 and message in res.err, (args, res.err)
        assert "Traceback" not in res.err and res.err.startswith("error: ")
    (tmp_path / "q.csv").write_text("title,body\nx,y\n")
    res = batch(tmp_path, "q.csv")
    assert res.code == 2 and "has no column 'input' (columns: title, body)" in res.err
    assert (tmp_path / "q.results.jsonl").read_text() == '{"id": "keep", "status": "ok"}\n'
    res = batch(tmp_path, "q.txt", "-o", "/dev/full")  # a disk that is full
    assert res.code == 1 and "error: cannot write results to /dev/full: No space left on device" in res.err
    assert "Traceback" not in res.err and "--resume" in res.err


def test_timeouts_and_max_errors(tmp_path):
    project(tmp_path)
    (tmp_path / "t.txt").write_text("sleep 30\nadd 1 and 1\n")
    res = batch(tmp_path, "t.txt", "--timeout", "1.5", "--concurrency", "1")
    out = rows(tmp_path / "t.results.jsonl")
    assert [r["status"] for r in out] == ["timeout", "ok"]  # the shared server still works after a timeout
    assert out[0]["error"] == "no answer within 1.5 s (--timeout)" and 1400 < out[0]["duration_ms"] < 10000
    assert res.code == 1

    (tmp_path / "m.txt").write_text("boom\n" * 10 + "add 1 and 1\n")
    res = batch(tmp_path, "m.txt", "--max-errors", "3", "--concurrency", "1")
    out = rows(tmp_path / "m.results.jsonl")
    assert [r["status"] for r in out] == ["error"] * 3
    assert "max_turns" in str(out[0]["error"])
    assert res.code == 1 and "stopped: 3 errors reached --max-errors 3" in res.out and "--resume" in res.out


def test_sigkill_mid_run_then_resume_keeps_every_row_exactly_once(tmp_path):
    project(tmp_path)
    queries = [f"sleep 0.{i % 3 + 1}" if i % 2 else f"add {i} and {i}" for i in range(40)]
    (tmp_path / "k.txt").write_text("\n".join(queries) + "\n")
    proc = subprocess.Popen(
        [PY, "-m", "app", "batch", "k.txt", "--concurrency", "3"],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    out = tmp_path / "k.results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 8):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = finished_rows(out)  # the kill may itself land mid-write
    assert 8 <= len(first) < 40, "the kill must land mid-run"
    with out.open("a") as fh:
        fh.write('{"id": "half-written row')  # what a kill during a write leaves behind
    res = batch(tmp_path, "k.txt", "--resume", "--concurrency", "3")
    assert res.code == 0, res.out + res.err
    final = rows(out)
    ids = [r["id"] for r in final]
    assert len(ids) == len(set(ids)) == 40
    assert sorted(r["input"] for r in final) == sorted(queries)
    assert all(r in final for r in first)  # the first run's rows are kept as they were
    assert f"{len(first)} already done (skipped)" in res.out


def test_ctrl_c_records_in_flight_rows_as_cancelled_and_says_how_to_resume(tmp_path):
    project(tmp_path)
    (tmp_path / "c.txt").write_text("add 1 and 1\n" + "sleep 20\n" * 4)
    proc = subprocess.Popen(
        [PY, "-m", "app", "batch", "c.txt", "--concurrency", "2"],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out = tmp_path / "c.results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.exists() and out.read_text()):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130
    statuses = [r["status"] for r in rows(out)]
    assert statuses == ["ok", "cancelled", "cancelled"]
    assert (
        "stopped: interrupted" in stdout and "resume with: agentdeck batch c.txt -o c.results.jsonl --resume" in stdout
    )
    assert len(rows(tmp_path / "c.results.errors.jsonl")) == 2


def test_tools_are_listed_once_per_server_for_a_cached_batch(tmp_path, http_toy):
    remote = http_toy("http")
    project(tmp_path, extra=f"  remote: {{transport: streamable_http, url: '{remote.url}', cache_tools: true}}\n")
    text = (
        (tmp_path / "agents.yaml")
        .read_text()
        .replace("servers: [toy]", "servers: [toy, remote], prefix_tool_names: true")
    )
    (tmp_path / "agents.yaml").write_text(text)
    (tmp_path / "rules.yaml").write_text(RULES.replace("tool: add", "tool: toy__add"))
    (tmp_path / "many.txt").write_text("".join(f"add {i} and 1\n" for i in range(200)))
    res = batch(tmp_path, "many.txt", "--concurrency", "16", "--summary", "s.json")
    assert res.code == 0, res.err
    out = rows(tmp_path / "many.results.jsonl")
    assert len(out) == 200 and all(r["status"] == "ok" for r in out)
    assert int((tmp_path / "toy.count").read_text()) == 1
    assert remote.list_count() == 1
    assert json.loads((tmp_path / "s.json").read_text())["tools_list_fetches"] == {"toy": 1, "remote": 1}


def test_model_429_and_500_are_retried_and_failures_stay_in_their_row(tmp_path, fake_openai):
    (tmp_path / "rules.yaml").write_text(RULES)
    fake = fake_openai(tmp_path / "rules.yaml")
    provider = f"  fake: {{kind: openai_compatible, base_url: '{fake.base_url}', api_key: k, max_retries: 2}}"
    project(tmp_path, provider=provider)
    text = (tmp_path / "agents.yaml").read_text().replace("servers: [toy]", "provider: fake, model: m, servers: [toy]")
    (tmp_path / "agents.yaml").write_text(text)
    (tmp_path / "r.txt").write_text("add 1 and 1\nadd 2 and 2\nadd 3 and 3\n")
    # Row 1: a 429 with Retry-After, then success. Row 2: three 500s exhaust its retries. Row 3: fine.
    fake.queue_faults({"status": 429, "retry_after": 1}, {}, {}, {"status": 500}, {"status": 500}, {"status": 500})
    res = batch(tmp_path, "r.txt", "--concurrency", "1")
    out = rows(tmp_path / "r.results.jsonl")
    assert [r["status"] for r in out] == ["ok", "error", "ok"], out
    assert out[0]["output"] == "Sum is 2" and out[2]["output"] == "Sum is 6"
    assert "HTTP 500" in str(out[1]["error"])
    log = fake.requests()
    assert len(log) == 3 + 3 + 2  # row 1: 429, its retry, turn two; row 2: three 500s; row 3: two turns
    assert log[1]["time"] - log[0]["time"] >= 0.9  # Retry-After: 1 was honoured
    assert res.code == 1


# ----- units -----


def test_inputs_are_streamed_in_bounded_memory(tmp_path):
    path = tmp_path / "big.txt"
    with path.open("w") as fh:
        for i in range(200_000):
            fh.write(f"question number {i} with some padding to make the line longer\n")
    spec = input_spec(path, None, None, None)
    tracemalloc.start()
    count = sum(1 for _ in read_rows(spec))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 200_000
    assert peak < 2_000_000  # the file is ~12 MB; reading it whole would show here


def test_ids_are_stable_and_position_dependent(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("same\nsame\n")
    first = [r.id for r in read_rows(input_spec(path, None, None, None))]
    again = [r.id for r in read_rows(input_spec(path, None, None, None))]
    assert first == again and first[0] != first[1]
    with pytest.raises(UsageError, match="only use"):
        input_spec(path, "{other}", None, None)


def test_compact_keeps_one_row_per_id_preferring_completed(tmp_path):
    out = tmp_path / "o.jsonl"
    out.write_text(
        '{"id": "a", "status": "error", "n": 1}\n{"id": "b", "status": "ok", "n": 2}\n'
        '{"id": "a", "status": "ok", "n": 3}\n{"id": "b", "status": "timeout", "n": 4}\n'
        '{"id": "c", "status": "cancelled", "n": 5}\n{"id": "c", "status": "error", "n": 6}\n{"id": "d", "sta'
    )
    assert compact(out)
    assert [json.loads(line)["n"] for line in out.read_text().splitlines()] == [2, 3, 6]
    assert not compact(out)
    existing = prepare(out, resume=True, overwrite=False)
    assert existing.done == {"a", "b"} and existing.failed == 1
    assert not list(tmp_path.glob(".o.jsonl.compact-*"))


def test_percentile():
    assert percentile([], 50) == 0.0
    assert percentile([5, 1, 3, 2, 4], 50) == 3 and percentile(list(range(1, 101)), 95) == 95


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise(tmp_path):
    import pexpect

    project(tmp_path)
    (tmp_path / "p.txt").write_text("sleep 0.4\n" * 6)
    res = batch(tmp_path, "p.txt", "-o", "plain.jsonl", "--concurrency", "1", "--progress-every", "0.3")
    lines = [line for line in res.err.splitlines() if line.startswith("progress: ")]
    assert len(lines) >= 3 and all(re.match(r"progress: \d/6 rows · 0 errors · [\d.]+ rows/s · ETA", x) for x in lines)
    child = pexpect.spawn(
        PY, ["-m", "app", "batch", "p.txt", "-o", "tty.jsonl", "--concurrency", "2"],
        cwd=str(tmp_path), env=clean_env(), encoding="utf-8", timeout=60, dimensions=(30, 120),
    )  # fmt: skip
    child.expect(r"batch.*[0-6]/6.*rows/s.*errors.*ETA")  # the bar (colours between the words)
    child.expect("batch done: 6 rows")
    child.expect(pexpect.EOF)
    assert "progress: " not in child.before
