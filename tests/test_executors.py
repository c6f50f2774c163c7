"""`--executor processes`: the same rows as `local`, worker deaths, driver deaths and Ctrl-C, as real processes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import PY, TOY, clean_env, finished_rows, run_cli

RULES = """
rules:
  - when: {user: 'add (?P<a>\\d+) and (?P<b>\\d+)'}
    call: [{tool: add, args: {a: "{a|int}", b: "{b|int}"}}]
    reply: "Sum is {output}"
  - when: {user: 'sleep (?P<s>[\\d.]+)'}
    call: [{tool: nap, args: {seconds: "{s|float}"}}]
    reply: "slept {s}"
"""


def project(tmp_path: Path, extra: str = "", linger: bool = False) -> Path:
    """The offline model and the toy server over stdio (each worker starts its own).

    `linger`: the toy server outlives its client's end of the pipe, as some servers do, so only
    agentdeck stopping it makes it go away.
    """
    (tmp_path / "rules.yaml").write_text(RULES)
    args = f"['{TOY}', '--linger']" if linger else f"['{TOY}']"
    (tmp_path / "agents.yaml").write_text(
        "providers:\n  offline: {kind: offline, rules: rules.yaml}\n"
        f"servers:\n  toy: {{transport: stdio, command: {PY}, args: {args}, cache_tools: true}}\n"
        f"agents:\n  main: {{servers: [toy]}}\n{extra}"
    )
    return tmp_path


def rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def children_of(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc."""
    found, todo = [], [pid]
    while todo:
        for child in children_of(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def workers_of(driver: int) -> dict[int, list[int]]:
    """The driver's worker processes, each with the MCP servers it started."""
    return {
        pid: [c for c in children_of(pid) if str(TOY) in cmdline(c)]
        for pid in children_of(driver)
        if "app.executors.worker" in cmdline(pid)
    }


def wait_for(predicate, seconds: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def outcome(path: Path) -> list[tuple[object, ...]]:
    return sorted((r["id"], r["status"], r["output"], r["error"]) for r in rows(path))


def test_processes_give_the_same_rows_as_local_including_rows_that_cannot_run(tmp_path):
    project(tmp_path)
    lines = [json.dumps({"id": f"q{i}", "input": f"add {i} and {i * 2}"}) for i in range(24)]
    lines.insert(5, "{not json")
    lines.insert(9, json.dumps({"id": "empty", "input": ""}))
    lines.append(json.dumps({"id": "nap", "input": "sleep 0.6"}))  # the batch lasts long enough for progress lines
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    local = run_cli("batch", "in.jsonl", "-o", "local.jsonl", "--id-field", "id", cwd=tmp_path)
    pooled = run_cli(
        "batch", "in.jsonl", "-o", "pool.jsonl", "--id-field", "id", "--executor", "processes", "--workers", "2",
        "-j", "3", "--summary", "summary.json", "--progress-every", "0.1", cwd=tmp_path,
    )  # fmt: skip
    assert local.code == pooled.code == 1, pooled.err  # the unreadable rows are errors in both
    assert outcome(tmp_path / "local.jsonl") == outcome(tmp_path / "pool.jsonl")
    assert len(rows(tmp_path / "pool.jsonl")) == 27
    assert ("q3", "ok", "Sum is 9", None) in outcome(tmp_path / "pool.jsonl")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["executor"] == "processes" and [w["name"] for w in summary["workers"]] == ["w1", "w2"]
    assert sum(w["rows"] for w in summary["workers"]) == 27 and all(w["cpu_s"] > 0 for w in summary["workers"])
    assert summary["tools_list_fetches"] == {"toy": 2}  # one cached list per worker
    assert "workers (processes): w1 " in pooled.out and "0 restarts" in pooled.out
    assert re.search(r"progress: \d+/27 rows .* · 2 workers", pooled.err), pooled.err  # how many are up


def test_a_killed_worker_has_its_rows_run_again_and_its_servers_stopped(tmp_path):
    project(tmp_path, linger=True)
    (tmp_path / "s.txt").write_text("".join(f"sleep 0.{i % 4 + 3}\n" for i in range(24)))
    proc = subprocess.Popen(
        [PY, "-m", "app", "batch", "s.txt", "--executor", "processes", "--workers", "2", "-j", "3"],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out = tmp_path / "s.results.jsonl"
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 3)
    workers = workers_of(proc.pid)
    assert len(workers) == 2 and all(len(servers) == 1 for servers in workers.values()), workers
    victim, servers = next(iter(workers.items()))
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 0, stdout + stderr
    final = rows(out)
    ids = [r["id"] for r in final]
    assert len(ids) == len(set(ids)) == 24 and all(r["status"] == "ok" for r in final)
    assert not any(running(pid) for pid in servers), "the dead worker's MCP server outlived it"
    assert "1 restarts" in stdout and "rows run again after their worker died" in stdout
    assert not any(running(p) for p in [victim, *workers]), "a worker outlived the batch"


def test_a_row_whose_worker_dies_twice_is_an_error_and_the_batch_goes_on(tmp_path):
    project(tmp_path)
    lines = [{"id": "sleeper", "input": "sleep 30"}] + [{"id": f"a{i}", "input": "add 1 and 2"} for i in range(6)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    argv = [PY, "-m", "app", "batch", "d.jsonl", "--id-field", "id", "--executor", "processes", "--workers", "2",
            "-j", "1", "--summary", "s.json"]  # fmt: skip
    # AGENTDECK_DEBUG logs which worker each row is sent to: the test kills the sleeper's worker, twice.
    proc = subprocess.Popen(
        argv, cwd=tmp_path, env=clean_env(AGENTDECK_DEBUG="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    sent: list[int] = []
    err: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err.append(line)
            if match := re.search(r"row sleeper -> worker w\d \(pid (\d+)\)", line):
                sent.append(int(match.group(1)))

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    for round_ in (1, 2):
        wait_for(lambda: len(sent) >= round_)  # noqa: B023 - waited on at once
        time.sleep(0.3)  # the row reaches the worker, which starts its nap
        os.kill(sent[-1], signal.SIGKILL)
    stdout, _ = proc.communicate(timeout=60)
    reader.join(10)
    assert len(set(sent)) == 2, sent  # two different workers ran it
    final = {r["id"]: r for r in rows(tmp_path / "d.results.jsonl")}
    assert len(final) == 7 and all(final[f"a{i}"]["status"] == "ok" for i in range(6))
    assert final["sleeper"]["status"] == "error" and "died twice" in str(final["sleeper"]["error"])
    assert f"(pid {sent[1]}) was killed by SIGKILL" in str(final["sleeper"]["error"])
    assert proc.returncode == 1 and "resume with:" in stdout, stdout
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["rows_run_again"] == 1 and sum(w["restarts"] for w in summary["workers"]) >= 1


@pytest.mark.parametrize("how", ["sigkill", "ctrl-c"])
def test_a_stopped_driver_leaves_no_worker_and_resume_runs_only_the_missing_rows(tmp_path, how):
    project(tmp_path)
    queries = [f"sleep 0.{i % 3 + 2}" if i % 2 else f"add {i} and {i}" for i in range(30)]
    (tmp_path / "k.txt").write_text("\n".join(queries) + "\n")
    argv = [PY, "-m", "app", "batch", "k.txt", "--executor", "processes", "--workers", "2", "-j", "2"]
    proc = subprocess.Popen(
        argv, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out = tmp_path / "k.results.jsonl"
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 6)
    workers = workers_of(proc.pid)
    everything = [*workers, *(s for servers in workers.values() for s in servers)]
    assert len(workers) == 2 and len(everything) == 4
    proc.send_signal(signal.SIGKILL if how == "sigkill" else signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    if how == "ctrl-c":
        assert proc.returncode == 130 and "stopped: interrupted" in stdout
        assert "--executor processes --workers 2" in stdout  # the resume command keeps the executor
    wait_for(lambda: not any(running(p) for p in everything), 20)  # workers and their MCP servers are gone
    first = [r for r in finished_rows(out) if r["status"] == "ok"]
    assert 6 <= len(first) < 30
    res = run_cli("batch", "k.txt", "--resume", "--executor", "processes", "--workers", "2", cwd=tmp_path)
    assert res.code == 0, res.out + res.err
    final = rows(out)
    assert sorted(r["id"] for r in final) == sorted({r["id"] for r in final}) and len(final) == 30
    assert sorted(r["input"] for r in final) == sorted(queries)
    assert f"{len(first)} already done (skipped)" in res.out
    assert all(r in final for r in first)


def test_executor_settings_come_from_the_config_and_bad_ones_are_one_line_errors(tmp_path):
    project(tmp_path, "batch: {executor: processes, workers: 2, concurrency: 2}\n")
    (tmp_path / "a.txt").write_text("add 1 and 1\nadd 2 and 2\n")
    res = run_cli("batch", "a.txt", cwd=tmp_path)
    assert res.code == 0 and "workers (processes): w1 " in res.out and " w2 " in res.out, res.out + res.err

    res = run_cli("batch", "a.txt", "--executor", "local", "--workers", "2", "--overwrite", cwd=tmp_path)
    assert res.code == 2 and "--workers needs --executor processes or ray" in res.err and "Traceback" not in res.err

    project(tmp_path, "batch: {executor: threads}\n")
    res = run_cli("config", "validate", cwd=tmp_path)
    assert res.code != 0 and "batch.executor" in res.err and "Traceback" not in res.err, res.err

    project(tmp_path, "batch: {executor: processes, workers: 0}\n")
    res = run_cli("config", "validate", cwd=tmp_path)
    assert res.code != 0 and "batch.workers" in res.err, res.err

    project(tmp_path, "batch: {executor: ray}\n")
    blocker = tmp_path / "no_ray"
    (blocker / "ray").mkdir(parents=True)
    (blocker / "ray" / "__init__.py").write_text("raise ImportError('not installed')\n")
    res = run_cli("batch", "a.txt", "--overwrite", cwd=tmp_path, env=clean_env(PYTHONPATH=str(blocker)))
    assert res.code == 2 and "the ray executor needs Ray" in res.err and "pip install 'agentdeck[ray]'" in res.err
    assert "Traceback" not in res.err


def test_an_experiment_runs_on_worker_processes_with_the_same_rows_as_local(tmp_path):
    project(tmp_path)
    (tmp_path / "q.txt").write_text("".join(f"add {i} and 1\n" for i in range(5)))
    (tmp_path / "exp.yaml").write_text(
        "questions: q.txt\nrepeat: 2\nvariants:\n  cached: {}\n  uncached: {servers: {toy: {cache_tools: false}}}\n"
    )
    local = run_cli("experiment", "run", "exp.yaml", "-o", "local", cwd=tmp_path)
    pooled = run_cli("experiment", "run", "exp.yaml", "-o", "pool", "--executor", "processes", "--workers", "2",
                     cwd=tmp_path)  # fmt: skip
    assert local.code == pooled.code == 0, pooled.out + pooled.err

    def shape(directory: str) -> list[tuple[object, ...]]:
        found = [json.loads(line) for line in (tmp_path / directory / "rows.jsonl").read_text().splitlines()]
        return sorted((r["id"], r["variant"], r["repeat"], r["status"], r["output"], r["cost_usd"]) for r in found)

    assert shape("local") == shape("pool") and len(shape("pool")) == 20
    report = json.loads((tmp_path / "pool" / "report.json").read_text())
    assert [v["name"] for v in report["variants"]] == ["cached", "uncached"]


def test_only_the_same_process_is_killed_never_one_that_reused_its_pid():
    from app.executors.children import descendants as found_below
    from app.executors.children import kill, start_time

    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        started = start_time(sleeper.pid)
        assert started is not None and (sleeper.pid, started) in found_below(os.getpid())
        kill([(sleeper.pid, started + 1)])  # a recorded start time that is not this process's: left alone
        time.sleep(0.2)
        assert sleeper.poll() is None
        kill([(sleeper.pid, started)])
        assert sleeper.wait(5) == -signal.SIGKILL
    finally:
        sleeper.kill()


def test_a_worker_that_cannot_start_stops_the_command_with_its_error_and_exit_code(tmp_path):
    project(tmp_path, "audit: {path: blocker/audit.jsonl}\n")
    (tmp_path / "blocker").write_text("a file, not a folder")
    (tmp_path / "a.txt").write_text("add 1 and 1\n")
    res = run_cli("batch", "a.txt", "--executor", "processes", "--workers", "2", cwd=tmp_path)
    assert res.code == 2, res.err
    assert res.err.startswith("error: worker w") and "cannot write the audit trail" in res.err, res.err
    assert "Traceback" not in res.err and not any(
        p for p in descendants(os.getpid()) if "executors.worker" in cmdline(p)
    )
