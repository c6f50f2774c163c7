"""Start-up of `run` and of the chat prompt, against what could overlap, as ratios measured in one run.

The floor is the larger of (a) `python -c "import agents"` and (b) the slowest configured server's
start with a raw `mcp` client (spawn, initialize, tools/list): both can proceed at once, so a
start-up that overlaps them costs about the floor. Reported (issue #13 §6, target <= 1.3x):

- `agentdeck run QUESTION` wall time (offline model, two bundled stdio servers) / floor;
- time until the chat prompt appears on a pseudo-terminal / floor;
- both again against a stricter floor, `import agents` without the interpreter's teardown (about a
  third of a second, which agentdeck skips on exit and `python -c "import agents"` pays);
- fast-agent's time to its prompt on the same servers (offline passthrough model), when it is on PATH
  or FAST_AGENT names it (it is not a dependency; current releases need Python >= 3.13).

Run: .venv/bin/python bench/bench_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RAW_START = """
import asyncio, sys
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

async def main():
    params = StdioServerParameters(command=sys.executable, args=sys.argv[1:])
    async with Client(stdio_client(params), cache=None) as client:
        print(len((await client.list_tools()).tools))

asyncio.run(main())
"""

RULES = """rules:
  - when: {user: 'hello'}
    reply: "hi"
"""


def servers(project: Path) -> dict[str, list[str]]:
    """The two bundled servers the benchmark config starts, as `python ARGS`."""
    return {
        "files": ["-m", "servers.filesystem", "--root", str(project)],
        "customers": ["-m", "servers.customers", "--db", str(project / "c.db")],
    }


def write_project(project: Path) -> None:
    (project / "rules.yaml").write_text(RULES)
    lines = ["providers:", "  offline: {kind: offline, rules: rules.yaml}", "servers:"]
    for name, args in servers(project).items():
        quoted = ", ".join(f"'{a}'" for a in args)
        lines.append(f"  {name}: {{transport: stdio, command: '{sys.executable}', args: [{quoted}]}}")
    lines += ["agents:", "  main: {servers: [files, customers]}", ""]
    (project / "agents.yaml").write_text("\n".join(lines))


# fast-agent marks its prompt with the OSC 133 "prompt start" sequence, then draws `❯`.
FAST_AGENT_PROMPT = r"\x1b\]133;A\x07(?:\x1b\[[0-9;?]*[A-Za-z])*❯"


def fast_agent_command(project: Path) -> list[str] | None:
    """fast-agent's `go` prompt on the same two servers (its offline passthrough model), if installed.

    Set FAST_AGENT to its executable when it is not on PATH (it needs Python >= 3.13 for current releases).
    """
    exe = os.environ.get("FAST_AGENT") or shutil.which("fast-agent")
    if exe is None:
        return None
    lines = ["default_model: passthrough", "mcp:", "  servers:"]
    for name, args in servers(project).items():
        lines += [
            f"    {name}:",
            f"      command: '{sys.executable}'",
            f"      args: [{', '.join(repr(a) for a in args)}]",
            f"      env: {{PYTHONPATH: '{ROOT}'}}",
        ]
    (project / "fast-agent").mkdir()
    (project / "fast-agent" / "fastagent.config.yaml").write_text("\n".join(lines) + "\n")
    names = ",".join(servers(project))
    return [exe, "--no-update-check", "go", "--model", "passthrough", "--servers", names, "--no-home"]


def wall(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def until_prompt(cmd: list[str], cwd: Path, env: dict[str, str], prompt: str) -> float:
    """Seconds from spawning `cmd` on a pseudo-terminal until `prompt` appears."""
    import pexpect

    start = time.perf_counter()
    child = pexpect.spawn(cmd[0], cmd[1:], cwd=str(cwd), env=env, encoding="utf-8", timeout=60)
    child.expect(prompt)
    took = time.perf_counter() - start
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("OPENAI_API_KEY", None)
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        write_project(project)
        env["AGENTDECK_STATE_DIR"] = str(project / "state")
        py = sys.executable
        agentdeck = [py, "-m", "app"]
        samples: dict[str, list[float]] = {"import": [], "import_only": [], "run": [], "prompt": [], "fast": []}
        fast = fast_agent_command(project)
        fast_env = dict(env, PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm-256color")
        samples.update({name: [] for name in servers(project)})
        wall([*agentdeck, "run", "hello"], project, env)  # warm caches; creates the customers db
        for _ in range(runs):
            samples["import"].append(wall([py, "-c", "import agents"], project, env))
            samples["import_only"].append(wall([py, "-c", "import os, agents; os._exit(0)"], project, env))
            for name, args in servers(project).items():
                samples[name].append(wall([py, "-c", RAW_START, *args], ROOT, env))
            samples["run"].append(wall([*agentdeck, "run", "hello"], project, env))
            samples["prompt"].append(until_prompt([*agentdeck, "chat", "--new"], project, env, "main>"))
            if fast is not None:
                samples["fast"].append(until_prompt(fast, project / "fast-agent", fast_env, FAST_AGENT_PROMPT))
        med = {key: statistics.median(values) for key, values in samples.items() if values}
        slowest = max(med[name] for name in servers(project))
        floor = max(med["import"], slowest)
        print(f"import agents {med['import'] * 1000:.0f} ms; slowest server start {slowest * 1000:.0f} ms", end="")
        print(f" ({', '.join(f'{n} {med[n] * 1000:.0f} ms' for n in servers(project))}); floor {floor * 1000:.0f} ms")
        print(f"run wall time:   {med['run'] * 1000:.0f} ms = {med['run'] / floor:.2f}x the floor (target <= 1.3x)")
        print(
            f"chat prompt:     {med['prompt'] * 1000:.0f} ms = {med['prompt'] / floor:.2f}x the floor (target <= 1.3x)"
        )
        # agentdeck exits without the interpreter's teardown (servers/exiting.py); `import agents` pays it.
        strict = max(med["import_only"], slowest)
        print(
            f"without the teardown `import agents` takes {med['import_only'] * 1000:.0f} ms; against that floor "
            f"({strict * 1000:.0f} ms): run {med['run'] / strict:.2f}x, chat prompt {med['prompt'] / strict:.2f}x"
        )
        if fast is None:
            print("fast-agent: not installed (set FAST_AGENT to its executable); no comparison")
        else:
            print(
                f"fast-agent prompt: {med['fast'] * 1000:.0f} ms = {med['fast'] / floor:.2f}x the floor; "
                f"agentdeck's chat prompt takes {med['prompt'] / med['fast']:.2f}x fast-agent's"
            )


if __name__ == "__main__":
    main()
