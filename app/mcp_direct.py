"""Reach a configured local MCP server with the `mcp` client alone, for commands that run no model.

`tools call`, `tools list` and `servers check` need a session, tools/list and tools/call, nothing
of the Agents SDK; importing it would cost them most of their start-up. The stdio environment and
the captured stderr are shared with the SDK-backed servers in app/mcp_servers.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import weakref
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any, TextIO, cast

from app.config.loader import LoadedConfig
from app.config.models import LocalServerConfig, SseServerConfig, StdioServerConfig, StreamableHttpServerConfig

# Variables a stdio child needs to find the interpreter and packages of this environment.
_PASS_THROUGH = ("VIRTUAL_ENV", "PYTHONPATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "SYSTEMROOT")


def stdio_environment(extra: Mapping[str, str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a stdio child gets on top of the SDK's minimal set: this environment's bin dir and venv."""
    environ = os.environ if environ is None else environ
    env = {k: environ[k] for k in _PASS_THROUGH if environ.get(k)}
    bin_dir = str(Path(sys.executable).parent)
    path = environ.get("PATH", "")
    if bin_dir not in path.split(os.pathsep):
        path = bin_dir + (os.pathsep + path if path else "")
    env["PATH"] = path
    if "VIRTUAL_ENV" not in env and sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    env.update(extra)
    return env


def stdio_params(loaded: LoadedConfig, cfg: StdioServerConfig) -> dict[str, Any]:
    """Command, args, environment and working directory of a stdio entry."""
    cwd = loaded.resolve_path(cfg.cwd) if cfg.cwd else loaded.base_dir
    return {"command": cfg.command, "args": list(cfg.args), "env": stdio_environment(cfg.env), "cwd": str(cwd)}


def missing_root(loaded: LoadedConfig, name: str, cfg: LocalServerConfig) -> str | None:
    """For the bundled filesystem server: a `--root` that does not exist, located in the config."""
    if not isinstance(cfg, StdioServerConfig):
        return None
    argv = [cfg.command, *cfg.args]
    if not any(a.endswith("servers.filesystem") for a in argv) and not ("serve" in argv and "filesystem" in argv):
        return None
    cwd = Path(stdio_params(loaded, cfg)["cwd"])
    for i, arg in enumerate(cfg.args):
        value = cfg.args[i + 1] if arg == "--root" and i + 1 < len(cfg.args) else None
        at = i + 1
        if arg.startswith("--root="):
            value, at = arg.partition("=")[2], i
        if value is not None and not (cwd / Path(value).expanduser()).is_dir():
            return (
                f"{loaded.where('servers', name, 'args', at)}: the allowed directory '{value}' does not exist; "
                f"create it or change servers.{name}.args"
            )
    return None


def describe_target(cfg: LocalServerConfig) -> str:
    """The command line or URL of an entry, secrets masked, for messages."""
    from app.config.redact import redact_command, redact_url

    if isinstance(cfg, StdioServerConfig):
        return redact_command([cfg.command, *cfg.args])
    return redact_url(cfg.url)


class StderrLog:
    """A stdio child's stderr, kept in a temporary file so failures can show its tail."""

    def __init__(self, name: str) -> None:
        self.file: IO[str] = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
            "w+", prefix=f"agentdeck-{name}-", suffix=".stderr", encoding="utf-8", delete=False
        )
        # Removed when the log is dropped or, through atexit, when the CLI exits without tearing down.
        weakref.finalize(self, _discard, self.file)

    def tail(self, max_lines: int = 12, max_chars: int = 2000) -> str:
        """The last lines the child wrote."""
        try:
            self.file.flush()
            with open(self.file.name, encoding="utf-8", errors="replace") as fh:
                text = fh.read()[-max_chars:]
        except (OSError, ValueError):
            return ""
        return "\n".join(text.strip().splitlines()[-max_lines:])


def _discard(file: IO[str]) -> None:
    file.close()
    with contextlib.suppress(OSError):
        os.unlink(file.name)


class DirectServer:
    """One local server entry as an `mcp.Client` session: connect, list and call, clean up."""

    def __init__(self, loaded: LoadedConfig, name: str, cfg: LocalServerConfig) -> None:
        self.name = name
        self.cfg = cfg
        self.describe = describe_target(cfg)
        self._loaded = loaded
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._client: Any = None
        self._client_ready: asyncio.Future[Any] | None = None
        self._stderr = StderrLog(name) if isinstance(cfg, StdioServerConfig) else None
        # OAuth: where logins are kept, and whether this command may start one (`auth login` only).
        self.state: Path | None = None
        self.login: Any = None
        # What the server may ask (elicitation, sampling, roots) and where progress goes; None: nothing.
        self.hooks: Any = None

    def _transport(self) -> Any:
        cfg = self.cfg
        if isinstance(cfg, StdioServerConfig):
            from mcp.client.stdio import StdioServerParameters, stdio_client

            assert self._stderr is not None
            return stdio_client(
                StdioServerParameters(**stdio_params(self._loaded, cfg)), errlog=cast(TextIO, self._stderr.file)
            )
        auth = self._auth()
        if isinstance(cfg, StreamableHttpServerConfig):
            return _streamable_http(cfg, auth)
        from mcp.client.sse import sse_client

        return sse_client(
            cfg.url, headers=dict(cfg.headers), timeout=cfg.timeout, sse_read_timeout=cfg.read_timeout, auth=auth
        )

    def _auth(self) -> Any:
        if getattr(self.cfg, "auth", None) is None:
            return None
        from app.oauth.flow import auth_for
        from app.state import state_dir

        assert isinstance(self.cfg, SseServerConfig)
        return auth_for(self.state or state_dir(), self.name, self.cfg, self.login)

    async def connect(self) -> None:
        """Start (or reach) the server and open its session."""
        # The client's cancel scopes must be entered and left in one task, and the pool connects
        # under wait_for (another task): the session lives in a task of its own.
        ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._closing = asyncio.Event()
        self._client_ready = ready
        self._task = asyncio.create_task(self._hold(ready), name=f"mcp-direct:{self.name}")
        try:
            self._client = await asyncio.shield(ready)
        except BaseException:
            await self.cleanup()
            raise

    async def _hold(self, ready: asyncio.Future[Any]) -> None:
        from mcp import Client

        from app.mcp_client import client_callbacks, client_info

        try:
            transport = self._transport()
            timeout = self.cfg.timeout
            # The same capabilities as in a run, so a server offers the same tools (some offer a
            # sampling tool only to clients that can sample).
            callbacks = client_callbacks(self.hooks) if self.hooks is not None else {}
            async with Client(
                transport, cache=None, read_timeout_seconds=timeout, client_info=client_info(), **callbacks
            ) as client:
                ready.set_result(client)
                await self._closing.wait()
        except BaseException as exc:
            if ready.done():
                raise
            ready.set_exception(exc)

    async def cleanup(self) -> None:
        """Close the session and stop the child (if any)."""
        task, self._task, self._client = self._task, None, None
        if task is None:
            return
        self._closing.set()
        if self._client_ready is not None and not self._client_ready.done():
            self._client_ready.cancel()
            task.cancel()  # still connecting: nothing to close politely
        if not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=5)
            except (TimeoutError, Exception):  # noqa: BLE001 - a server that will not close is stopped
                task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def list_tools(self) -> list[Any]:
        """Every tool the server lists, through every page."""
        from app.remote_mcp import list_all

        return await list_all(self._client)

    async def call_tool(self, tool: str, arguments: dict[str, Any]) -> Any:
        """tools/call (answering what the server asks on the way); the `mcp.types.CallToolResult`."""
        from app.mcp_client import call_with

        if self.hooks is None:
            return await self._client.call_tool(tool, arguments)
        return await call_with(self._client, self.name, tool, arguments, self.hooks, self.cfg.timeout)

    def stderr_tail(self, max_lines: int = 12, max_chars: int = 2000) -> str:
        """The last lines a stdio child wrote to stderr (empty for URL servers)."""
        return self._stderr.tail(max_lines, max_chars) if self._stderr else ""


@asynccontextmanager
async def _streamable_http(cfg: StreamableHttpServerConfig, auth: Any = None) -> AsyncIterator[Any]:
    """Streamable HTTP with the entry's headers, timeouts and login (the transport does not own its client)."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    timeout = httpx2.Timeout(cfg.timeout, read=cfg.read_timeout)
    http = httpx2.AsyncClient(headers=dict(cfg.headers), timeout=timeout, auth=auth)
    async with http, streamable_http_client(cfg.url, http_client=http) as streams:
        yield streams
