"""Hostile input and failures at the CLI: secrets never shown, errors never tracebacks, clean start-up."""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import PY, ROOT, TOY, CliResult, clean_env, run_cli

# Secret values planted in configs, environments and a server's stderr; none may ever be printed.
URL_PASSWORD = "urlpass-9f3k2"
QUERY_TOKEN = "qtoken-77aa1"
ARG_KEY = "argkey-5521x"
ARG_TOKEN = "argtok-1h2j3"
PAT = "patvalue-0o9i8"
HEADER = "hdrsecret-4r5t"
SECRETS = (URL_PASSWORD, QUERY_TOKEN, ARG_KEY, ARG_TOKEN, PAT, HEADER)

LEAKY_SERVER = (
    "import os, sys; print('starting with', os.environ.get('GITHUB_PAT'), sys.argv[1:], file=sys.stderr); sys.exit(3)"
)


def error_lines(result: CliResult) -> list[str]:
    return [line for line in (result.out + result.err).splitlines() if line.startswith("error:")]


def assert_clean_failure(result: CliResult, what: str) -> None:
    """Exit 1 or 2, no traceback, exactly one `error:` line."""
    text = result.out + result.err
    assert result.code in (1, 2), f"{what}: exit {result.code}\n{text}"
    assert "Traceback" not in text, f"{what}:\n{text}"
    assert len(error_lines(result)) == 1, f"{what}: expected one error line\n{text}"


@pytest.fixture
def leaky(tmp_path: Path) -> Path:
    """A config whose every kind of secret would show up somewhere if redaction missed it."""
    (tmp_path / "agents.yaml").write_text(
        textwrap.dedent(
            f"""
            providers:
              offline: {{kind: offline}}
            servers:
              leaky:
                transport: stdio
                command: python
                args: ["-c", "{LEAKY_SERVER}", "--api-key", "{ARG_KEY}", "--token={ARG_TOKEN}"]
                env: {{GITHUB_PAT: "${{GITHUB_PAT}}"}}
              web:
                transport: streamable_http
                url: "http://admin:{URL_PASSWORD}@127.0.0.1:9/mcp?token={QUERY_TOKEN}"
                headers: {{X-Custom-Auth: "{HEADER}"}}
                required: false
                start_timeout: 2
            agents:
              main: {{servers: [leaky, web]}}
            """
        ),
        encoding="utf-8",
    )
    return tmp_path


def assert_no_secret(text: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"leaked {leaked}:\n{text}"


def test_secrets_never_reach_output(leaky: Path) -> None:
    env = clean_env(GITHUB_PAT=PAT)
    commands = [
        ("config", "show"),
        ("servers", "list"),
        ("servers", "check"),
        ("servers", "check", "--json"),
        ("run", "hello"),
        ("tools", "call", "leaky", "x"),
        ("tools", "call", "web", "x"),
    ]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda args: run_cli(*args, cwd=leaky, env=env), commands))
    for args, result in zip(commands, results, strict=True):
        assert_no_secret(result.out + result.err)
        assert "Traceback" not in result.err, args
    shown = {args: r for args, r in zip(commands, results, strict=True)}
    # What was masked is still recognisable.
    assert "--api-key ***" in shown["servers", "list"].out and "--token=***" in shown["servers", "list"].out
    assert "admin:***@127.0.0.1:9/mcp?token=***" in shown["servers", "list"].out
    config = shown["config", "show"].out
    assert "GITHUB_PAT: '***'" in config or "GITHUB_PAT: ***" in config.replace("'", "")
    assert "X-Custom-Auth: '***'" in config
    # The failing server's stderr is shown, with the secrets it printed masked.
    run = shown["run", "hello"]
    assert run.code == 1 and "starting with ***" in run.err
    check = json.loads(shown["servers", "check", "--json"].out)
    leaky_row = next(r for r in check if r["server"] == "leaky")
    assert leaky_row["status"] == "failed" and "starting with ***" in leaky_row["stderr"]


def test_config_export_warns_about_literal_secrets(leaky: Path) -> None:
    result = run_cli("config", "export", cwd=leaky, env=clean_env(GITHUB_PAT=PAT))
    assert result.code == 0
    assert "server 'leaky' is written with a literal secret" in result.err
    # ${VAR} references stay references; the literal is exported as written (that is the point of the warning).
    exported = json.loads(result.out)["mcpServers"]["leaky"]
    assert exported["env"]["GITHUB_PAT"] == "${GITHUB_PAT}"
    assert PAT not in result.out


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """Configs with a dead server, a missing server and invalid YAML, plus inputs for every command."""
    dead = textwrap.dedent(
        f"""
        providers:
          offline: {{kind: offline}}
        servers:
          dead:
            transport: stdio
            command: python
            args: ["-c", "import sys; print('cannot open the database', file=sys.stderr); sys.exit(3)"]
            start_timeout: 10
          toy: {{transport: stdio, command: python, args: ["{TOY}"]}}
        agents:
          main: {{servers: [dead]}}
        """
    )
    (tmp_path / "dead.yaml").write_text(dead, encoding="utf-8")
    (tmp_path / "missing.yaml").write_text("agents:\n  main: {servers: [nosuch]}\n", encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("agents:\n  main: [unclosed\n", encoding="utf-8")
    (tmp_path / "q.txt").write_text("hello\n", encoding="utf-8")
    for name in ("dead", "missing", "bad"):
        (tmp_path / f"exp-{name}.yaml").write_text(
            f"config: {name}.yaml\nquestions: q.txt\nvariants:\n  a: {{}}\n  b: {{model: other}}\n", encoding="utf-8"
        )
    return tmp_path


# Every subcommand that reads agents.yaml, as argument lists (CONFIG is replaced by the config file).
CONFIG_COMMANDS = [
    ["run", "hello", "--config", "CONFIG"],
    ["chat", "--config", "CONFIG"],
    ["batch", "q.txt", "-o", "out-CONFIG.jsonl", "--config", "CONFIG"],
    ["experiment", "run", "exp-CONFIG", "-o", "exp-out-CONFIG"],
    ["experiment", "validate", "exp-CONFIG"],
    ["servers", "list", "--config", "CONFIG"],
    ["servers", "check", "--config", "CONFIG"],
    ["tools", "list", "--config", "CONFIG"],
    ["tools", "list", "--server", "dead", "--config", "CONFIG"],
    ["tools", "call", "dead", "x", "--config", "CONFIG"],
    ["config", "validate", "--config", "CONFIG"],
    ["config", "show", "--config", "CONFIG"],
    ["config", "export", "--config", "CONFIG"],
]
# Commands that start servers, and so can meet a dead one.
CONNECTING = {"run", "chat", "batch", "experiment run", "servers check", "tools list", "tools call"}
BAD_ARGUMENTS = [
    ["run"],
    ["run", "hi", "--approve", "maybe"],
    ["chat", "--nope"],
    ["batch", "q.txt", "--concurrency", "many"],
    ["batch", "nosuch.txt"],
    ["experiment", "run"],
    ["experiment", "validate", "nosuch.yaml"],
    ["experiment", "compare", "nosuch-1", "nosuch-2"],
    ["servers", "list", "extra"],
    ["servers", "check", "--nope"],
    ["tools", "list", "--agent", "a", "--server", "b"],
    ["tools", "call", "toy", "add", "--args", "{not json"],
    ["tools", "call", "nosuch", "x"],
    ["tools", "list", "--server", "nosuch"],
    ["config", "validate", "--nope"],
    ["config", "show", "--config", "nosuch.yaml"],
    ["config", "schema", "--nope"],
    ["config", "import-claude", "nosuch.json"],
    ["config", "export", "--format", "cursor"],
    ["serve", "nosuch"],
    ["serve", "filesystem", "--transport", "carrier-pigeon"],
    ["fake-openai", "--port", "abc"],
    ["fake-openai", "--faults", "{not json"],
    ["nosuch-command"],
]


def _cases() -> list[tuple[str, list[str]]]:
    cases = []
    for scenario in ("dead", "missing", "bad"):
        for command in CONFIG_COMMANDS:
            head = " ".join(command[:2]) if command[0] in ("servers", "tools", "config", "experiment") else command[0]
            if scenario == "dead" and head not in CONNECTING:
                continue
            args = [
                a.replace("exp-CONFIG", f"exp-{scenario}.yaml").replace("CONFIG", f"{scenario}.yaml") for a in command
            ]
            cases.append((f"{scenario}: {' '.join(command)}", args))
    return cases + [(f"bad argument: {' '.join(args)}", args) for args in BAD_ARGUMENTS]


def test_every_subcommand_fails_cleanly(broken: Path) -> None:
    cases = _cases()
    env = clean_env(AGENTDECK_CONFIG=str(broken / "dead.yaml"))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda case: run_cli(*case[1], cwd=broken, env=env, timeout=120), cases))
    problems = []
    for (what, _), result in zip(cases, results, strict=True):
        try:
            assert_clean_failure(result, what)
            if what.startswith("dead: "):
                assert result.code == 1, f"{what}: exit {result.code}"
                assert "dead" in error_lines(result)[0], f"{what}: the error does not name the server"
        except AssertionError as exc:
            problems.append(str(exc))
    assert not problems, "\n\n".join(problems)


def test_optional_server_that_failed_is_explained(tmp_path: Path) -> None:
    (tmp_path / "agents.yaml").write_text(
        textwrap.dedent(
            """
            servers:
              flaky:
                transport: stdio
                command: python
                args: ["-c", "import sys; print('port 5432 refused', file=sys.stderr); sys.exit(1)"]
                required: false
            agents:
              main: {servers: [flaky]}
            """
        ),
        encoding="utf-8",
    )
    for args in (("tools", "call", "flaky", "anything"), ("tools", "list", "--server", "flaky")):
        result = run_cli(*args, cwd=tmp_path)
        assert_clean_failure(result, " ".join(args))
        assert result.code == 1
        line = error_lines(result)[0]
        assert "'flaky'" in line and "failed to start" in line
        assert "port 5432 refused" in result.err  # why
        assert "agentdeck servers check" in result.err  # how to check it


def test_debug_shows_library_logs_on_stderr_with_secrets_masked(tmp_path: Path, http_toy) -> None:
    toy = http_toy("http")
    (tmp_path / "agents.yaml").write_text(
        textwrap.dedent(
            f"""
            servers:
              web:
                transport: streamable_http
                url: {toy.url}
                headers: {{Authorization: "Bearer {HEADER}"}}
            agents:
              main: {{servers: [web]}}
            """
        ),
        encoding="utf-8",
    )
    args = ("tools", "call", "web", "add", "--args", '{"a": 1, "b": 2}')
    quiet = run_cli(*args, cwd=tmp_path)
    assert quiet.code == 0 and quiet.err == ""
    loud = run_cli(*args, cwd=tmp_path, env=clean_env(AGENTDECK_DEBUG="1"))
    assert loud.code == 0 and loud.out == quiet.out
    assert re.search(r"DEBUG (mcp|httpx2?)[.\w]*: ", loud.err), loud.err
    assert HEADER not in loud.err


def test_tools_commands_do_not_import_the_agents_sdk(tmp_path: Path) -> None:
    """`tools call` and `tools list` need only the mcp client; the SDK and openai cost seconds to import."""
    (tmp_path / "agents.yaml").write_text(
        f"servers:\n  toy: {{transport: stdio, command: python, args: ['{TOY}']}}\nagents:\n  main: {{servers: [toy]}}\n",
        encoding="utf-8",
    )
    probe = textwrap.dedent(
        """
        import sys
        from app.cli import main
        try:
            main(sys.argv[1:])
        except SystemExit:
            pass
        heavy = sorted(m for m in ("agents", "openai") if m in sys.modules)
        print("IMPORTED:", ",".join(heavy) or "-", file=sys.stderr)
        """
    )
    for args in (
        ["tools", "call", "toy", "add", "--args", '{"a": 2, "b": 3}'],
        ["tools", "list"],
        ["tools", "list", "--server", "toy"],
        ["servers", "check"],
        ["config", "validate"],
    ):
        proc = subprocess.run(
            [PY, "-c", probe, *args], cwd=tmp_path, env=clean_env(PYTHONPATH=str(ROOT)), capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "IMPORTED: -" in proc.stderr, (args, proc.stderr)


def test_fresh_clone_default_config_works_without_the_demo(tmp_path: Path) -> None:
    """The repo's agents.yaml lists tools on a checkout where the demo never ran."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    assert not (clone / "demo" / "customers.db").exists()
    result = run_cli("tools", "list", "--json", cwd=clone, timeout=120)
    assert result.code == 0, result.err
    servers = {row["server"] for row in json.loads(result.out)}
    assert servers == {"files", "customers"}


def test_missing_root_names_the_config_key(tmp_path: Path) -> None:
    (tmp_path / "agents.yaml").write_text(
        "servers:\n"
        "  files:\n"
        "    transport: stdio\n"
        "    command: python\n"
        "    args: [-m, servers.filesystem, --root, no/such/dir]\n"
        "agents:\n  main: {servers: [files]}\n",
        encoding="utf-8",
    )
    result = run_cli("tools", "list", cwd=tmp_path, env=clean_env(PYTHONPATH=str(ROOT)))
    assert_clean_failure(result, "missing root")
    assert "agents.yaml:5:" in result.err and "servers.files.args[3]" in result.err
    assert "'no/such/dir' does not exist" in result.err


def test_fake_server_rules_are_bounded_like_configs(tmp_path: Path) -> None:
    levels = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for prev, name in zip("abcde", "bcdef", strict=True):
        levels.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    (tmp_path / "bomb.yaml").write_text("\n".join(levels) + "\n")
    result = run_cli("fake-openai", "--rules", "bomb.yaml", cwd=tmp_path, timeout=20)
    assert_clean_failure(result, "rules bomb")
    assert "bomb.yaml:" in error_lines(result)[0] and "aliases" in error_lines(result)[0]


def test_ctrl_c_is_an_interruption_even_when_a_library_absorbs_the_cancellation() -> None:
    import asyncio
    import contextlib
    import os
    import signal

    from app.commands.common import run_async

    finished: list[str] = []

    async def absorbing() -> str:
        # What a tool runner does when it reports a cancelled call to the model as a failure.
        os.kill(os.getpid(), signal.SIGINT)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(5)
        finished.append("cleanup ran")
        return "done"

    with pytest.raises(KeyboardInterrupt):
        run_async(absorbing())
    assert finished == ["cleanup ran"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
