"""`--executor ray` against real Ray: a cluster started by `ray start` (for `address:`) and the local
cluster agentdeck starts itself; lost actors, a killed driver and Ctrl-C; no Ray process left behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PY, clean_env, finished_rows, free_port, run_cli
from tests.test_executors import (
    children_of,
    cmdline,
    descendants,
    outcome,
    project,
    rows,
    running,
    wait_for,
)

RAY = str(Path(PY).parent / "ray")
# The test cluster runs without token auth, so it does not depend on ~/.ray/auth_token.
NO_AUTH = {"RAY_AUTH_MODE": "disabled"}


def ray_processes() -> set[int]:
    """Every process of a Ray cluster on this machine (its GCS, raylet and workers)."""
    found = set()
    for entry in Path("/proc").iterdir():
        pid = int(entry.name) if entry.name.isdigit() else 0
        if pid and re.search(r"-packages/ray/|^ray::", cmdline(pid)) and running(pid):
            found.add(pid)
    return found


@pytest.fixture(scope="module", autouse=True)
def booting() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`ray start` for a one-node cluster, the way users start one, launched before the first test: the
    tests without it run first while it boots. Stopped (and checked gone) after the last test."""
    before = ray_processes()
    port = free_port()
    boot = subprocess.Popen(
        [RAY, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
         "--disable-usage-stats"],
        env=clean_env(**NO_AUTH), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        yield boot, f"127.0.0.1:{port}"
    finally:
        try:
            boot.communicate(timeout=120)  # a cluster half started would leave processes behind
        except subprocess.TimeoutExpired:
            boot.kill()
            boot.wait()
        # What `ray stop --force` does (a SIGKILL to each), without its 6 s of polling every process by name.
        for pid in ray_processes() - before:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not (ray_processes() - before), 20)


@pytest.fixture
def cluster(booting: tuple[subprocess.Popen[str], str]) -> str:
    """The address of the cluster `ray start` booted, once it is up."""
    boot, address = booting
    output, _ = boot.communicate(timeout=120)
    assert boot.returncode == 0, output
    return address


def start(folder: Path, *args: str, debug: bool = False, **env_extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    """`agentdeck batch ARGS` in the background, its stderr collected line by line."""
    env = clean_env(**env_extra, **({"AGENTDECK_DEBUG": "1"} if debug else {}))
    proc = subprocess.Popen(
        [PY, "-m", "app", "batch", *args], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        lines.extend(proc.stderr)

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def test_ctrl_c_on_a_local_cluster_cancels_the_running_rows_and_leaves_no_ray_process(tmp_path):
    project(tmp_path)
    (tmp_path / "c.txt").write_text("add 1 and 1\n" + "sleep 30\n" * 4)
    proc, err = start(tmp_path, "c.txt", "--executor", "ray", "--workers", "2", "-j", "1")
    out = tmp_path / "c.results.jsonl"
    wait_for(lambda: out.exists() and out.read_text(), 90)
    ours = descendants(proc.pid)  # the cluster agentdeck started: its GCS, raylet, workers and their servers
    toys = [p for p in ours if "toy.py" in cmdline(p)]
    assert any("raylet" in cmdline(p) for p in ours) and len(toys) == 2
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + "".join(err)
    assert [r["status"] for r in rows(out)] == ["ok", "cancelled", "cancelled"]
    assert "resume with: agentdeck batch c.txt -o c.results.jsonl --resume --executor ray --workers 2" in stdout
    wait_for(lambda: not any(running(p) for p in [*ours, *toys]), 20)  # the cluster agentdeck started is gone
    assert "Traceback" not in "".join(err)


def test_an_unreachable_cluster_is_one_clear_error(tmp_path):
    project(tmp_path, "batch: {executor: ray, ray: {address: '127.0.0.1:9'}}\n")
    (tmp_path / "a.txt").write_text("add 1 and 1\n")
    res = run_cli("batch", "a.txt", cwd=tmp_path, timeout=60)
    assert res.code == 1 and "cannot reach the Ray cluster at 127.0.0.1:9" in res.err, res.err
    assert "Traceback" not in res.err and len(res.err.strip().splitlines()) <= 2


def test_a_lost_actor_has_its_rows_run_again_and_the_rows_match_local(tmp_path, cluster):
    project(tmp_path, f"batch: {{ray: {{address: '{cluster}'}}}}\n", linger=True)
    queries = [f"sleep 0.{i % 3 + 3}" if i % 2 else f"add {i} and {i}" for i in range(16)]
    (tmp_path / "r.txt").write_text("\n".join(queries) + "\n")
    # The rows as `local` gives them, from the same server without --linger (not waited for at exit).
    (tmp_path / "local").mkdir()
    baseline = project(tmp_path / "local")
    (baseline / "r.txt").write_text("\n".join(queries) + "\n")
    with (baseline / "err.txt").open("w") as local_err:  # a file: nobody reads a pipe while the Ray batch runs
        local = subprocess.Popen(
            [PY, "-m", "app", "batch", "r.txt", "-o", "local.jsonl", "-j", "16"], cwd=baseline, env=clean_env(),
            stdout=subprocess.DEVNULL, stderr=local_err,
        )  # fmt: skip  # runs while the Ray batch connects
    proc, err = start(tmp_path, "r.txt", "--executor", "ray", "--workers", "2", "-j", "2", "--summary", "s.json",
                      debug=True, **NO_AUTH)  # fmt: skip
    sent = re.compile(r"-> worker a\d \(pid (\d+)\)")
    wait_for(lambda: any(sent.search(line) for line in err), 90)
    actor = int(next(m.group(1) for line in err if (m := sent.search(line))))
    servers = [c for c in children_of(actor) if "toy.py" in cmdline(c)]
    assert servers, "the actor runs its own MCP server"
    os.kill(actor, signal.SIGKILL)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, stdout + "".join(err[-20:])
    assert local.wait(timeout=60) == 0, (baseline / "err.txt").read_text()
    assert outcome(tmp_path / "r.results.jsonl") == outcome(baseline / "local.jsonl")  # each id once, same answers
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["executor"] == "ray" and summary["rows_run_again"] >= 1
    assert sum(w["restarts"] for w in summary["workers"]) == 1
    wait_for(lambda: not any(running(p) for p in servers), 10)  # the lost actor's MCP server is gone


def test_a_killed_driver_leaves_no_actor_and_resume_runs_only_the_missing_rows(tmp_path, cluster):
    project(tmp_path, f"batch: {{executor: ray, workers: 2, concurrency: 2, ray: {{address: '{cluster}'}}}}\n")
    queries = [f"sleep 0.{i % 3 + 2}" if i % 2 else f"add {i} and {i}" for i in range(30)]
    (tmp_path / "k.txt").write_text("\n".join(queries) + "\n")
    proc, _ = start(tmp_path, "k.txt", **NO_AUTH)
    out = tmp_path / "k.results.jsonl"
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 6, 90)
    toys = [c for p in ray_processes() for c in children_of(p) if "toy.py" in cmdline(c)]
    assert len(toys) == 2
    proc.kill()
    proc.wait()
    wait_for(lambda: not any(running(p) for p in toys), 30)  # Ray ends the job's actors, their servers follow
    first = finished_rows(out)
    assert 6 <= len(first) < 30
    res = run_cli("batch", "k.txt", "--resume", cwd=tmp_path, timeout=120, env=clean_env(**NO_AUTH))
    assert res.code == 0, res.out + res.err
    final = rows(out)
    assert len(final) == len({r["id"] for r in final}) == 30
    assert sorted(r["input"] for r in final) == sorted(queries)
    assert f"{len(first)} already done (skipped)" in res.out
