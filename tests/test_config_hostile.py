"""Config files that hurt (issue #12 §1): bombs, what `run` rejects but `validate` let through, one-line
errors and `--config` before the command. Every case runs the real CLI in a subprocess on a file in tmp_path.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import clean_env

# A regression must fail, not hang the suite or eat the shared machine's memory.
TIMEOUT = 20
MEMORY = 2 * 1024**3

MAIN = "agents:\n  main: {instructions: hi}\n"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def agentdeck(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=cwd,
        env=env or clean_env(),
        input="",
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_limit_memory,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def validate(tmp_path: Path, text: str, *extra: str) -> Result:
    (tmp_path / "agents.yaml").write_text(text, encoding="utf-8")
    return agentdeck("config", "validate", *extra, cwd=tmp_path)


def one_config_error(r: Result, *needles: str) -> str:
    """Exit 2, exactly one `error:` line (plus at most a `hint:` line), no traceback; returns the error line."""
    assert r.code == 2, (r.code, r.err[-2000:])
    assert "Traceback" not in r.err
    lines = r.err.splitlines()
    assert len(r.error_lines) == 1 and lines[0].startswith("error:"), r.err[-2000:]
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint:")), r.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --- bombs: size, alias expansion, depth ---------------------------------------------------------


def alias_bomb() -> str:
    """The classic 'billion laughs': nine levels of nine aliases, under 600 bytes."""
    lines = [MAIN.rstrip("\n"), "x:", '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghi":
        lines.append(f"  {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_the_alias_that_overflows(tmp_path):
    text = alias_bomb()
    assert len(text) < 600
    r = validate(tmp_path, text)
    line = one_config_error(r, "keys and values once aliases are expanded")
    # Line 8 is `e: &e [*d, ...]`: the alias whose copy goes past the limit is named with its place.
    assert line.startswith("error: agents.yaml:8:") and ": x.e[" in line
    assert "alias" in r.err.splitlines()[1]


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path):
    r = validate(tmp_path, MAIN + "x: &loop [a, *loop]\n")
    one_config_error(r, "agents.yaml:3:14: x[1]: alias *loop refers to a mapping or list that contains it")


@pytest.mark.parametrize(
    "nesting",
    [
        pytest.param("x: " + "[" * 20_000 + "]" * 20_000 + "\n", id="flow-list-20000-deep"),
        pytest.param("x:\n  " + "- " * 20_000 + "leaf\n", id="block-list-20000-deep"),
        pytest.param("x: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n", id="flow-mapping-5000-deep"),
    ],
)
def test_deep_nesting_is_one_located_line(tmp_path, nesting):
    r = validate(tmp_path, MAIN + nesting)
    line = one_config_error(r, ": x", "nested more than 100 levels deep")
    assert line.startswith(("error: agents.yaml:3:", "error: agents.yaml:4:"))


def test_aliases_cannot_nest_deeper_than_the_limit(tmp_path):
    anchors = ["x:", "  l0: &l0 [leaf]"] + [f"  l{i}: &l{i} [*l{i - 1}]" for i in range(1, 120)]
    r = validate(tmp_path, MAIN + "\n".join(anchors) + "\n")
    one_config_error(r, "nested more than 100 levels deep once aliases are expanded")


def test_too_many_values_without_aliases(tmp_path):
    items = "".join(f"  - s{i}\n" for i in range(25_000))
    r = validate(tmp_path, MAIN + "x:\n" + items)
    one_config_error(r, ": x[", "more than 20,000 keys and values")


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    filler = "  # " + "x" * 60 + "\n"
    r = validate(tmp_path, MAIN + "# padding\n" + filler * (2 * 1024 * 1024 // len(filler)))
    size = (tmp_path / "agents.yaml").stat().st_size
    one_config_error(r, f"agents.yaml: the file is too large: {size:,} bytes", "1 MiB (1,048,576 bytes)")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_file_is_refused(tmp_path):
    r = agentdeck("config", "validate", "--config", "/dev/zero", cwd=tmp_path)
    one_config_error(r, "/dev/zero: the file is too large: more than the limit of 1 MiB")


def test_bounds_apply_to_experiment_files(tmp_path):
    (tmp_path / "agents.yaml").write_text(MAIN)
    (tmp_path / "questions.txt").write_text("one\n")
    body = alias_bomb().replace(MAIN, "questions: questions.txt\nvariants: {a: {}, b: {}}\n")
    (tmp_path / "exp.yaml").write_text(body)
    r = agentdeck("experiment", "validate", "exp.yaml", cwd=tmp_path)
    one_config_error(r, "exp.yaml:8:", "once aliases are expanded")


def test_bounds_and_locations_apply_to_the_offline_rules_file(tmp_path):
    (tmp_path / "rules.yaml").write_text(alias_bomb().replace(MAIN, "rules: []\n"))
    config = "providers:\n  offline: {kind: offline, rules: rules.yaml}\n" + MAIN
    one_config_error(validate(tmp_path, config), "rules.yaml:7:", "once aliases are expanded")
    # A rules file `run` would reject is a config error for `validate` too, located in the rules file.
    (tmp_path / "rules.yaml").write_text("rules:\n  - when: {user: '(unclosed'}\n    reply: hi\n")
    one_config_error(validate(tmp_path, config), "rules.yaml:2:12: rules[0].when.user: invalid regular expression")


# --- what `run` rejected but `validate` let through ---------------------------------------------


def test_filter_module_that_cannot_be_imported(tmp_path):
    config = (
        "servers:\n  s: {transport: stdio, command: python, filter: 'no_such_filters_mod:keep'}\n"
        "agents:\n  main: {servers: [s]}\n"
    )
    line = one_config_error(validate(tmp_path, config), "agents.yaml:2:42: servers.s.filter: cannot import module")
    # `run` stops at the same line, before starting anything.
    assert one_config_error(agentdeck("run", "hi", cwd=tmp_path)) == line
    (tmp_path / "broken_filters.py").write_text("def keep(ctx, tool)\n    return True\n")
    config = config.replace("no_such_filters_mod", "broken_filters")
    one_config_error(validate(tmp_path, config), "cannot import module 'broken_filters': SyntaxError")
    (tmp_path / "ok_filters.py").write_text("KEEP = True\n")
    config = config.replace("broken_filters:keep", "ok_filters:KEEP")
    one_config_error(validate(tmp_path, config), "module 'ok_filters' has no function 'KEEP'")


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ("servers:\n  s: {transport: sse, url: 'http://127.0.0.1:99999/sse'}\n", "servers.s.url"),
        ("servers:\n  s: {transport: streamable_http, url: 'http://127.0.0.1:8x/mcp'}\n", "servers.s.url"),
        (
            "servers:\n  s: {transport: sse, url: 'http://127.0.0.1:1/sse', hosted: true, "
            "public_url: 'https://x.example:65536/sse'}\n",
            "servers.s.public_url",
        ),
        ("servers:\n  h: {transport: hosted, server_url: 'https://x.example:70000/mcp'}\n", "servers.h.server_url"),
        (
            "providers:\n  p: {kind: openai_compatible, base_url: 'http://127.0.0.1:123456/v1'}\n",
            "providers.p.base_url",
        ),
        ("providers:\n  p: {kind: openai, base_url: 'http://127.0.0.1:-1/v1'}\n", "providers.p.base_url"),
    ],
)
def test_url_ports_outside_0_65535(tmp_path, entry, needle):
    line = one_config_error(validate(tmp_path, entry + MAIN), "agents.yaml:2:", needle, "is not a valid URL")
    assert "port" in line


def test_provider_base_url_must_be_http(tmp_path):
    entry = "providers:\n  p: {kind: openai_compatible, base_url: 'localhost:11434/v1'}\n"
    one_config_error(validate(tmp_path, entry + MAIN), "providers.p.base_url", "is not an http:// or https:// URL")


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("'${API_TOKEN'", "unterminated '${'"),
        ("'Bearer ${API_TOKEN:-dev'", "unterminated '${'"),
        ("'${API-TOKEN}'", "'${API-TOKEN}' is not a ${VAR} or ${VAR:-default} reference"),
    ],
)
def test_broken_variable_references(tmp_path, value, needle):
    config = f"servers:\n  s:\n    transport: stdio\n    command: python\n    env:\n      TOKEN: {value}\n" + MAIN
    r = validate(tmp_path, config)
    one_config_error(r, "agents.yaml:6:7: servers.s.env.TOKEN:", needle)
    assert "$$" in r.err.splitlines()[1]


@pytest.mark.parametrize(
    ("server", "needle"),
    [
        (
            "{transport: stdio, command: python, start_timeout: .inf}",
            "servers.s.start_timeout: must be a finite number, got .inf",
        ),
        ("{transport: stdio, command: python, timeout: .nan}", "servers.s.timeout: must be a finite number, got .nan"),
        ("{transport: sse, url: 'http://127.0.0.1:1/sse', read_timeout: .inf}", "servers.s.read_timeout"),
        ("{transport: stdio, command: python, cache_tools: {ttl: .inf}}", "servers.s.cache_tools.ttl"),
        # Finite but past what the SDK's timedelta holds: `run` failed with a traceback.
        ("{transport: stdio, command: python, timeout: 1e300}", "servers.s.timeout: must be at most 31536000"),
    ],
)
def test_times_must_be_finite_and_bounded(tmp_path, server, needle):
    one_config_error(validate(tmp_path, f"servers:\n  s: {server}\n" + MAIN), "agents.yaml:2:", needle)


def test_provider_timeout_must_be_finite(tmp_path):
    config = "providers:\n  p: {kind: openai_compatible, base_url: 'http://127.0.0.1:1/v1', timeout: .inf}\n" + MAIN
    one_config_error(validate(tmp_path, config), "providers.p.timeout: must be a finite number")


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ("servers:\n  ~: {transport: stdio, command: python}\n" + MAIN, "agents.yaml:2:3: servers: a key is empty"),
        (
            "servers:\n  42: {transport: stdio, command: python}\n" + MAIN,
            "agents.yaml:2:3: servers: the key 42 is a number",
        ),
        ("agents:\n  main: {}\n  42: {}\n", "agents.yaml:3:3: agents: the key 42 is a number"),
        ("providers:\n  null: {kind: offline}\n" + MAIN, "agents.yaml:2:3: providers: a key is empty"),
        ("servers:\n  '42': {transport: stdio, command: python}\n" + MAIN, "servers.42: name '42' may use only"),
        # A look-alike Cyrillic 'ѕ' (U+0455) would pass as a letter; names are ASCII.
        ("servers:\n  fѕ: {transport: stdio, command: python}\n" + MAIN, "agents.yaml:2:3: servers.fѕ: name 'fѕ'"),
    ],
)
def test_names_are_text_matching_a_pattern(tmp_path, config, needle):
    one_config_error(validate(tmp_path, config), needle)


@pytest.mark.parametrize(
    ("server", "needle"),
    [
        ("{transport: stdio, command: python, env: {'A=B': x}}", "servers.s.env: 'A=B' is not a valid environment"),
        (
            "{transport: sse, url: 'http://127.0.0.1:1/sse', headers: {'Bad Header': x}}",
            "servers.s.headers: 'Bad Header' is not a valid HTTP header name",
        ),
        (
            "{transport: hosted, server_url: 'https://x.example/mcp', headers: {X-Token: \"a\\nb\"}}",
            "servers.s.headers: the value of header 'X-Token' contains a line break",
        ),
    ],
)
def test_environment_and_header_names_the_os_and_http_refuse(tmp_path, server, needle):
    one_config_error(validate(tmp_path, f"servers:\n  s: {server}\n" + MAIN), "agents.yaml:2:", needle)


def test_files_the_config_points_to_are_checked(tmp_path):
    (tmp_path / "prompt.md").write_bytes(b"caf\xe9\n")  # Latin-1, not UTF-8
    one_config_error(
        validate(tmp_path, "agents:\n  main: {instructions_file: prompt.md}\n"),
        "agents.yaml:2:10: agents.main.instructions_file: cannot read",
        "not UTF-8",
    )
    config = "providers:\n  offline: {kind: offline, log: no/such/dir/calls.jsonl}\n" + MAIN
    one_config_error(validate(tmp_path, config), "providers.offline.log: cannot write the call log", "does not exist")
    config = "servers:\n  s: {transport: stdio, command: python, cwd: no-such-dir}\n" + MAIN
    one_config_error(validate(tmp_path, config), "agents.yaml:2:", "servers.s.cwd: the folder", "does not exist")


# --- every config error is one line ------------------------------------------------------------


@pytest.mark.parametrize("key", ["\u0430gents", "\uff41gents", "agents\u200b"], ids=["cyrillic", "fullwidth", "zwsp"])
def test_look_alike_key_is_one_line_naming_the_character(tmp_path, key):
    r = validate(tmp_path, f"{key}:\n  main: {{instructions: hi}}\n")
    line = one_config_error(r, f"agents.yaml:1:1: {key}: unknown key '{key}'; did you mean 'agents'?")
    assert "non-ASCII look-alike characters: U+" in line
    assert r.err.splitlines()[1] == "hint: 1 more problem found after this one"


def test_one_anchor_wrong_in_several_places_is_one_line(tmp_path):
    config = (
        "servers:\n"
        "  a: &bad {transport: stdio, comand: python}\n"
        "  b: *bad\n"
        "  c: *bad\n"
        "agents:\n  main: {servers: [a, b, c]}\n"
    )
    r = validate(tmp_path, config)
    one_config_error(r, "agents.yaml:2:", "servers.a.comand: unknown key 'comand'; did you mean 'command'?")
    assert r.err.splitlines()[1].startswith("hint: ") and "more problems found" in r.err


# --- --config before the command ----------------------------------------------------------------


def test_config_option_before_or_after_the_command(tmp_path):
    (tmp_path / "agents.yaml").write_text(MAIN)
    before = agentdeck("--config", "missing-before.yaml", "tools", "list", cwd=tmp_path)
    one_config_error(before, "missing-before.yaml: config file not found")
    after = agentdeck("tools", "list", "--config", "missing-after.yaml", cwd=tmp_path)
    one_config_error(after, "missing-after.yaml: config file not found")
    # The command's own --config wins over the one before it; -c and --config=PATH work too.
    both = agentdeck("-c", "root.yaml", "config", "validate", "-c", "own.yaml", cwd=tmp_path)
    one_config_error(both, "own.yaml: config file not found")
    one_config_error(agentdeck("--config=eq.yaml", "servers", "list", cwd=tmp_path), "eq.yaml: config file not found")
    # Before the command it also beats $AGENTDECK_CONFIG, and a valid file works.
    ok = agentdeck("-c", "agents.yaml", "config", "validate", cwd=tmp_path, env=clean_env(AGENTDECK_CONFIG="nope.yaml"))
    assert ok.code == 0 and ok.out.startswith("ok agents.yaml"), ok.err
    assert "--config" in agentdeck("--help", cwd=tmp_path).out
