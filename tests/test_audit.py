"""The audit trail: records written by real runs, batches, chats and tool calls, read back by `agentdeck audit`."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

from app.audit.reading import Query, Trail, parse_since, tool_stats
from app.audit.trail import AuditTrail, result_text
from app.audit.writer import AuditWriter, rotated
from app.config.governance import AuditConfig, AuditRotate
from tests.conftest import PY, TOY, clean_env, run_cli

RULES = """
rules:
  - when: {user: 'add (?P<a>\\d+) and (?P<b>\\d+)'}
    call: [{tool: add, args: {a: "{a|int}", b: "{b|int}"}}]
    reply: "Sum is {output}"
  - when: {user: 'delete customer (?P<id>\\d+)'}
    call: [{tool: delete_customer, args: {customer_id: "{id|int}"}}]
    reply: "Result: {output}"
  - when: {user: 'note (?P<text>.+)'}
    call: [{tool: save_note, args: {text: "{text}"}}]
    reply: "Noted"
"""
SECRET = "hunter2-very-secret-value"


def project(tmp_path: Path, audit: str) -> Path:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "agents.yaml").write_text(
        "providers:\n  offline: {kind: offline, rules: rules.yaml}\n"
        "servers:\n"
        f"  toy: {{transport: stdio, command: {PY}, args: ['{TOY}', '--count-file', 'toy.count'],"
        " approval: destructive, env: {TOY_API_TOKEN: '${TOY_TOKEN}'}}\n"
        "agents:\n  main: {servers: [toy], max_turns: 3}\n"
        f"audit: {audit}\n"
    )
    return tmp_path


def env(**extra: str) -> dict[str, str]:
    return clean_env(TOY_TOKEN=SECRET, AGENTDECK_STATE_DIR="state", **extra)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_run_records_its_start_model_calls_tool_calls_approvals_and_end(tmp_path):
    project(tmp_path, "{path: logs/audit.jsonl, include_results: preview, redact: ['customer_*']}")
    result = run_cli("run", "add 2 and 3", "--user", "alice", cwd=tmp_path, env=env())
    assert result.code == 0, result.err
    declined = run_cli("run", "delete customer 7", "--approve", "no", cwd=tmp_path, env=env(AGENTDECK_USER="bob"))
    assert declined.code == 0, declined.err
    approved = run_cli("run", "delete customer 8", "--approve", "yes", cwd=tmp_path, env=env(AGENTDECK_USER="bob"))
    assert approved.code == 0, approved.err

    trail = records(tmp_path / "logs" / "audit.jsonl")
    first = [r for r in trail if r["user"] == "alice"]
    assert [r["kind"] for r in first] == ["run_start", "model_call", "tool_call", "model_call", "run_end"]
    assert len({r["run_id"] for r in first}) == 1 and all(r["agent"] == "main" for r in first)
    call = first[2]
    assert (call["server"], call["tool"], call["status"], call["arguments"]) == ("toy", "add", "ok", {"a": 2, "b": 3})
    assert call["result"] == {"bytes": 1, "sha256": hashlib.sha256(b"5").hexdigest(), "preview": "5"}
    assert call["duration_ms"] > 0 and call["ts"].endswith("Z") and "approval" not in call
    assert first[1]["model"] == "offline/offline" and first[1]["status"] == "ok"
    end = first[-1]
    assert end["status"] == "ok" and end["output"]["preview"] == "Sum is 5" and end["usage"]["requests"] == 2

    bob = [r for r in trail if r["user"] == "bob" and r["kind"] == "tool_call"]
    assert [(r["status"], r["approval"]) for r in bob] == [
        ("declined", {"decision": "declined", "by": "--approve no"}),
        ("ok", {"decision": "approved", "by": "--approve yes"}),
    ]
    # `redact: ['customer_*']` masks the argument; the config's secret never reaches the file.
    assert all(r["arguments"] == {"customer_id": "***"} for r in bob)
    assert SECRET not in (tmp_path / "logs" / "audit.jsonl").read_text()
    assert oct((tmp_path / "logs" / "audit.jsonl").stat().st_mode & 0o777) == "0o600"

    stats = run_cli("audit", "stats", "--json", cwd=tmp_path, env=env())
    assert stats.code == 0, stats.err
    by_tool = {(r["server"], r["tool"]): r for r in json.loads(stats.out)}
    assert by_tool[("toy", "delete_customer")] | {"p50_ms": 0, "p95_ms": 0} == {
        "server": "toy", "tool": "delete_customer", "calls": 2, "errors": 0, "declined": 1, "p50_ms": 0, "p95_ms": 0,
    }  # fmt: skip
    query = run_cli("audit", "query", "--tool", "delete_*", "--status", "declined", "--json", cwd=tmp_path, env=env())
    assert [json.loads(line)["arguments"] for line in query.out.splitlines()] == [{"customer_id": "***"}]
    table = run_cli("audit", "query", "--user", "alice", "--kind", "tool_call", cwd=tmp_path, env=env())
    assert "toy.add" in table.out and "1 record(s)" in table.out, table.out


def test_an_unwritable_audit_path_stops_the_run_before_any_server_starts(tmp_path):
    project(tmp_path, "{path: blocker/audit.jsonl}")
    (tmp_path / "blocker").write_text("a file, not a folder")
    result = run_cli("run", "add 1 and 1", cwd=tmp_path, env=env())
    assert result.code == 2
    assert result.err.startswith("error: cannot write the audit trail") and "blocker/audit.jsonl" in result.err
    assert "Traceback" not in result.err and result.out == ""
    assert not (tmp_path / "toy.count").exists()  # the tool never ran
    call = run_cli("tools", "call", "toy", "add", "--args", '{"a": 1, "b": 1}', cwd=tmp_path, env=env())
    assert call.code == 2 and "cannot write the audit trail" in call.err


def test_batch_rows_into_sqlite_then_query_and_tail(tmp_path):
    project(tmp_path, "{format: sqlite, include_arguments: false}")
    (tmp_path / "in.txt").write_text("add 1 and 2\nadd 3 and 4\nnote hello\n")
    result = run_cli("batch", "in.txt", "--user", "carol", cwd=tmp_path, env=env())
    assert result.code == 0, result.err
    db = tmp_path / "state" / "audit.sqlite"  # the default place: the state directory
    rows = [json.loads(r) for (r,) in sqlite3.connect(db).execute("SELECT record FROM records ORDER BY id")]
    calls = [r for r in rows if r["kind"] == "tool_call"]
    ids = [json.loads(line)["id"] for line in (tmp_path / "in.results.jsonl").read_text().splitlines()]
    assert sorted(r["row"] for r in calls) == sorted(ids) and len(set(ids)) == 3
    assert all("arguments" not in r and r["session"] == "batch:in.txt" and r["user"] == "carol" for r in calls)
    ends = [r for r in rows if r["kind"] == "run_end"]
    assert len(ends) == 3 and len({r["run_id"] for r in ends}) == 3 and {r["status"] for r in ends} == {"ok"}

    tail = run_cli("audit", "tail", "-n", "2", cwd=tmp_path, env=env())
    assert tail.code == 0 and len(tail.out.splitlines()) == 2 and "carol [main]" in tail.out
    stats = run_cli("audit", "stats", cwd=tmp_path, env=env())
    assert "add" in stats.out and "save_note" in stats.out
    since = run_cli("audit", "query", "--since", "1x", cwd=tmp_path, env=env())
    assert since.code == 2 and "--since '1x' is neither a duration nor a date" in since.err


def test_tail_follow_sees_a_direct_tool_call_and_a_chat_turn(tmp_path):
    project(tmp_path, "{path: audit.jsonl}")
    (tmp_path / "audit.jsonl").write_text("")
    follower = subprocess.Popen(
        [PY, "-m", "app", "audit", "tail", "-f", "--json"], cwd=tmp_path, env=env(), stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1.5)  # the follower is at the end of the file
        call = run_cli("tools", "call", "toy", "echo", "--args", json.dumps({"text": SECRET}), cwd=tmp_path, env=env())
        assert call.code == 0, call.err
        chat = run_cli("chat", "--session", "s1", "--user", "dave", cwd=tmp_path, env=env(), input="add 4 and 5\n")
        assert chat.code == 0, chat.err
        seen: list[dict] = []
        assert follower.stdout is not None
        while not any(r["kind"] == "run_end" for r in seen):
            seen.append(json.loads(follower.stdout.readline()))
    finally:
        follower.kill()
        follower.wait()
    direct = seen[0]
    assert (direct["kind"], direct["session"], direct["tool"], direct["status"]) == (
        "tool_call",
        "tools call",
        "echo",
        "ok",
    )
    assert direct["arguments"] == {"text": "***"} and "agent" not in direct  # the config's secret, masked
    turn = [r for r in seen if r.get("session") == "chat:s1"]
    assert [r["kind"] for r in turn] == ["run_start", "model_call", "tool_call", "model_call", "run_end"]
    assert {r["user"] for r in turn} == {"dave"} and turn[-1]["status"] == "ok"


def test_audit_config_errors_are_clear(tmp_path):
    for audit, expected in [
        ("{format: sqlite, rotate: {max_bytes: 4096}}", "'rotate' applies to format jsonl"),
        ("{redact: ['/[unclosed/']}", "is not a valid regular expression"),
        ("{include_results: everything}", "include_results"),
        ("{path: a.jsonl, colour: red}", "colour"),
    ]:
        project(tmp_path, audit)
        result = run_cli("config", "validate", cwd=tmp_path, env=env())
        assert result.code == 2 and expected in result.err, (audit, result.err)
    project(tmp_path, "{path: a.jsonl}")
    missing = run_cli("audit", "tail", cwd=tmp_path, env=env())
    assert missing.code == 2 and "no audit trail at" in missing.err
    (tmp_path / "agents.yaml").write_text((tmp_path / "agents.yaml").read_text().replace("audit: {path: a.jsonl}", ""))
    none = run_cli("audit", "stats", cwd=tmp_path, env=env())
    assert none.code == 2 and "has no audit: section" in none.err


def test_concurrent_writers_never_tear_or_lose_records_across_rotation(tmp_path):
    path = tmp_path / "audit.jsonl"
    writers = [AuditWriter(path, "jsonl", AuditRotate(max_bytes=20_000, keep=50)) for _ in range(3)]

    def hammer(w: AuditWriter, n: int) -> None:
        for i in range(400):
            w.write({"kind": "tool_call", "writer": n, "i": i, "pad": "x" * (i % 97)})

    threads = [threading.Thread(target=hammer, args=(w, n)) for n, w in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in writers:
        w.close()
    assert rotated(path, 2).exists()  # it did rotate, several times
    trail = Trail(path, "jsonl")
    seen = [(r["writer"], r["i"]) for r in trail.records()]
    assert trail.skipped == 0 and sorted(seen) == [(n, i) for n in range(3) for i in range(400)]


def test_a_torn_last_record_is_skipped_and_the_next_starts_on_its_own_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text('{"kind": "run_start", "ts": "2026-11-23T10:00:00.000Z"}\n{"kind": "tool_ca')
    writer = AuditWriter(path, "jsonl")
    writer.write({"kind": "run_end", "ts": "2026-11-23T10:00:01.000Z"})
    writer.close()
    trail = Trail(path, "jsonl")
    assert [r["kind"] for r in trail.records()] == ["run_start", "run_end"] and trail.skipped == 1


def test_what_a_trail_keeps_of_arguments_and_results(tmp_path):
    def trail(**settings: object) -> AuditTrail:
        return AuditTrail(AuditConfig(**settings), tmp_path / "a.jsonl", "u", secrets=[SECRET])

    args = {"path": "x", "db_password": "p4ssw0rd!", "note": f"key {SECRET}", "Session_ID": "abc", "n": 1}
    assert trail(include_arguments=False).arguments(args) is None
    assert trail(include_arguments=True).arguments(args) == {**args, "note": "key ***"}
    kept = trail(redact=["/^session_/", "PATH"]).arguments(args)
    assert kept == {"path": "***", "db_password": "***", "note": "key ***", "Session_ID": "***", "n": 1}
    text = "line one\n" + "z" * 300
    assert trail(include_results="none").content(text) is None
    assert trail(include_results="size").content(text) == {
        "bytes": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest()
    }  # fmt: skip
    assert trail(include_results="preview").content(text)["preview"] == text[:200]
    assert trail(include_results="full").content(f"{SECRET} ok")["text"] == "*** ok"


def test_result_text_stats_and_since():
    from mcp.types import CallToolResult, ImageContent, TextContent

    result = CallToolResult(
        content=[TextContent(type="text", text="a"), ImageContent(type="image", data="AAAA", mimeType="image/png")]
    )
    assert result_text(result).splitlines() == ["a", '{"type": "image", "data": "AAAA", "mimeType": "image/png"}']
    records = [
        {"kind": "tool_call", "server": "s", "tool": "t", "status": s, "duration_ms": d}
        for s, d in [("ok", 10), ("ok", 20), ("error", 30), ("declined", None)]
    ]
    assert tool_stats(iter(records)) == [
        {"server": "s", "tool": "t", "calls": 4, "errors": 1, "declined": 1, "p50_ms": 20.0, "p95_ms": 30.0}
    ]
    from datetime import UTC, datetime

    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert parse_since("90m", now) == datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
    assert Query(since=parse_since("1h", now)).matches({"ts": "2026-11-23T11:30:00.000Z"})
    assert not Query(since=parse_since("1h", now)).matches({"ts": "2026-11-23T10:59:59.999Z"})
    assert Query(tool="write_*", user="alice").matches({"tool": "write_file", "user": "alice"})
    assert not Query(tool="write_*").matches({"tool": "read_file"})
