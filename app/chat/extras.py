"""Chat commands for what servers offer besides tools: /resources, /resource, /prompts, /prompt, /logs, /roots."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from app.errors import UsageError


def agent_servers(app: Any) -> dict[str, Any]:
    """The current agent's connected servers, by name."""
    agent = app.deck.agents[app.agent_name]
    return {server.name: server for server in getattr(agent, "mcp_servers", None) or []}


async def show_resources(app: Any) -> None:
    """/resources: every resource and template the current agent's servers offer."""
    from app.resources import list_resources

    rows = await list_resources(agent_servers(app))
    if not rows:
        app.console.print("no resources: the current agent's servers offer none", style="dim")
        return
    table = Table(box=None, pad_edge=False)
    # URIs stay on one line where they fit, to be copied into /resource; descriptions wrap instead.
    widest = max(len(row[1]) for row in rows)
    table.add_column("server", overflow="fold")
    table.add_column("uri", overflow="fold", min_width=min(widest, max(app.console.width - 40, 20)))
    table.add_column("name", overflow="fold")
    table.add_column("description", overflow="fold", ratio=1)
    for row in rows:
        table.add_row(*row)
    app.console.print(table)


async def attach_resource(app: Any, uri: str) -> None:
    """/resource URI: read it now; its contents go with the next message."""
    from app.resources import read_resource

    try:
        server, attachment = await read_resource(agent_servers(app), uri)
    except UsageError as exc:
        app.console.print(exc.message, style="red", markup=False)
        return
    app.attachments.append(attachment)
    app.console.print(f"attached {uri} (from {server}); it goes with your next message", style="dim", markup=False)


async def show_prompts(app: Any) -> None:
    """/prompts: each server's prompts, with how to call them."""
    from app.resources import list_prompts

    prompts = await list_prompts(agent_servers(app))
    if not prompts:
        app.console.print("no prompts: the current agent's servers offer none", style="dim")
        return
    for p in prompts:
        app.console.print(f"{p.server:<12} {p.usage()}  {p.description}".rstrip(), markup=False, highlight=False)
        for name, required, description in p.arguments:
            about = f": {description}" if description else ""
            app.console.print(f"{'':<14}{name}{'*' if required else ''}{about}", markup=False, style="dim")


async def send_prompt(app: Any, arg: str) -> None:
    """/prompt NAME [k=v …]: fetch the prompt (asking for required arguments it lacks) and send it as a turn."""
    from app.resources import list_prompts, parse_arguments, prompt_turn

    name, *words = arg.split()
    try:
        arguments = parse_arguments(words)
    except UsageError as exc:
        app.console.print(exc.message, style="red", markup=False)
        return
    servers = agent_servers(app)
    matches = [p for p in await list_prompts(servers) if p.name == name]
    if not matches:
        app.console.print(f"no prompt named {name!r}; /prompts lists them", style="red", markup=False)
        return
    prompt = matches[0]
    for argument, required, _ in prompt.arguments:
        if required and argument not in arguments:
            if not app.interactive:
                app.console.print(f"/prompt {name} needs {argument}=…: {prompt.usage()}", style="red", markup=False)
                return
            arguments[argument] = (await app.ask(f"  {argument}: ")).strip()
    try:
        items = await prompt_turn(servers, prompt, arguments)
    except Exception as exc:  # noqa: BLE001 - a server's refusal is shown, the chat goes on
        app.console.print(f"the prompt {name} failed: {exc}", style="red", markup=False)
        return
    await app.turn(f"/prompt {arg}", items=items)


def show_logs(app: Any, name: str | None) -> None:
    """/logs [NAME]: a server's latest log messages (or how many each server sent)."""
    slots = app.deck.pool.slots if app.deck.pool is not None else {}
    logs = {n: getattr(getattr(slot.server, "hooks", None), "log", None) for n, slot in slots.items()}
    if name is None:
        for server, log in logs.items():
            count = len(log.lines) if log is not None else 0
            app.console.print(f"{server:<14} {count} message(s)  (/logs {server})", markup=False, highlight=False)
        return
    if name not in logs:
        app.console.print(f"unknown server {name!r}; servers: {', '.join(logs)}", style="red", markup=False)
        return
    log = logs[name]
    lines = list(log.lines)[-50:] if log is not None else []
    if not lines:
        app.console.print(f"{name} has sent no log messages", style="dim", markup=False)
    for line in lines:
        app.console.print(line, markup=False, highlight=False)


async def roots(app: Any, arg: str | None) -> None:
    """/roots [NAME [+DIR|-DIR]]: each server's roots; add or remove a folder and tell the server."""
    from pathlib import Path

    slots = app.deck.pool.slots if app.deck.pool is not None else {}
    servers = {n: slot.server for n, slot in slots.items() if slot.connected and hasattr(slot.server, "hooks")}
    say = app.console.print
    words = (arg or "").split(maxsplit=1)
    if not words:
        for name, server in servers.items():
            shown = ", ".join(str(p.resolve()) for p in server.hooks.roots) or "none"
            say(f"{name:<14} {shown}", markup=False, highlight=False)
        return
    name = words[0]
    if name not in servers:
        say(f"unknown or stopped server {name!r}; servers: {', '.join(servers)}", style="red", markup=False)
        return
    server = servers[name]
    if len(words) == 1:
        say(
            "\n".join(str(p.resolve()) for p in server.hooks.roots) or f"{name} has no roots",
            markup=False,
            highlight=False,
        )
        return
    change = words[1].strip()
    if change[:1] not in "+-" or len(change) < 2:
        say("usage: /roots NAME +DIR (add a folder) or /roots NAME -DIR (remove one)", style="red", markup=False)
        return
    folder = Path(change[1:].strip()).expanduser().resolve()
    current = [p.resolve() for p in server.hooks.roots]
    if change[0] == "+":
        if not folder.is_dir():
            say(f"not a folder: {folder}", style="red", markup=False)
            return
        wanted = current if folder in current else [*current, folder]
    else:
        if folder not in current:
            say(f"{folder} is not one of {name}'s roots", style="red", markup=False)
            return
        wanted = [p for p in current if p != folder]
    if not await server.set_roots(wanted):
        say(
            f"{name} was given no roots in agents.yaml, so it was told agentdeck has none; "
            f"add `roots: [...]` to the server and /reconnect {name}",
            style="red",
            markup=False,
        )
        return
    say(f"{name} roots: {', '.join(str(p) for p in wanted) or 'none'} (the server was told)", markup=False)
