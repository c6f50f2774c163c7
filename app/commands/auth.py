"""`agentdeck auth login|status|logout`: OAuth logins to remote MCP servers."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from app.commands.common import load, run_async, stderr, stdout
from app.config.loader import LoadedConfig
from app.config.models import SseServerConfig
from app.errors import ServerStartError, UsageError


def _auth_servers(loaded: LoadedConfig) -> dict[str, SseServerConfig]:
    return {
        name: cfg
        for name, cfg in loaded.config.servers.items()
        if isinstance(cfg, SseServerConfig) and cfg.auth is not None
    }


def _pick(loaded: LoadedConfig, server: str) -> SseServerConfig:
    from app.config.loader import did_you_mean

    servers = _auth_servers(loaded)
    if server in servers:
        return servers[server]
    if server in loaded.config.servers:
        raise UsageError(
            f"server '{server}' has no 'auth' to log in with",
            hint="servers that need OAuth get `auth: {type: oauth, scopes: [...]}` (see the README's servers table)",
        )
    names = ", ".join(servers) or "none"
    raise UsageError(
        f"there is no server '{server}'{did_you_mean(server, set(loaded.config.servers))}",
        hint=f"servers with auth: {names}",
    )


def login(config: str | None, server: str, open_browser: bool, timeout: float) -> None:
    """Log in to one server now: a browser login (oauth) or a token for the machine (client_credentials)."""
    from app.mcp_direct import DirectServer
    from app.oauth.flow import Login, token_store
    from app.state import state_dir

    loaded = load(config)
    cfg = _pick(loaded, server)
    state = state_dir()
    store = token_store(state, server, cfg)
    store.forget_tokens()  # a login asks again, even when a saved token would still do
    err = stderr()
    direct = DirectServer(loaded, server, cfg)
    direct.state = state
    say = lambda text: err.print(text, markup=False)  # noqa: E731
    direct.login = Login(interactive=True, open_browser=open_browser, say=say, timeout=timeout)

    async def go() -> int:
        try:
            await asyncio.wait_for(direct.connect(), timeout + cfg.start_timeout)
            return len(await direct.list_tools())
        except TimeoutError:
            raise ServerStartError(f"logging in to '{server}' took longer than {timeout:g} s") from None
        except Exception as exc:  # noqa: BLE001 - every failure is one line naming the server
            from app.config.redact import known_secrets, redact
            from app.connect import describe_exception

            cause = redact(describe_exception(exc), known_secrets(loaded))
            raise ServerStartError(f"logging in to '{server}' ({cfg.url}) failed: {cause}") from None
        finally:
            await direct.cleanup()

    tools = run_async(go())
    saved = store.saved()
    where = f" at {saved.issuer}" if saved else ""
    stdout().print(f"Logged in to {server}{where}; {tools} tools. {_lifetime(saved)}", markup=False)


def _lifetime(saved: Any) -> str:
    if saved is None or saved.expires_at is None:
        return "The token does not expire."
    left = saved.expires_at - time.time()
    what = f"The token expires in {_duration(left)}" if left > 0 else "The token has expired"
    return what + ("; agentdeck refreshes it." if saved.refreshable else ".")


def _duration(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{max(seconds, 0):.0f} s"


def status(config: str | None, server: str | None, json_out: bool) -> None:
    """Each server with `auth:`: logged in or not, where, with which scopes, until when (no token shown)."""
    from app.oauth.flow import token_store
    from app.state import state_dir

    loaded = load(config)
    servers = {server: _pick(loaded, server)} if server else _auth_servers(loaded)
    state = state_dir()
    rows: list[dict[str, Any]] = []
    for name, cfg in servers.items():
        saved = token_store(state, name, cfg).saved()
        assert cfg.auth is not None
        rows.append(
            {
                "server": name,
                "type": cfg.auth.type,
                "logged_in": saved is not None,
                "issuer": saved.issuer if saved else None,
                "scopes": saved.scope if saved else None,
                "expires_at": saved.expires_at if saved else None,
                "refreshable": saved.refreshable if saved else False,
            }
        )
    if json_out:
        print(json.dumps(rows, indent=2))
        return
    out = stdout()
    if not rows:
        out.print("No server has 'auth' in this config.")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("server", "type", "status", "issuer", "scopes"):
        table.add_column(col, overflow="fold")
    for row in rows:
        state_text = "not logged in"
        if row["logged_in"]:
            left = None if row["expires_at"] is None else row["expires_at"] - time.time()
            if left is None:
                state_text = "logged in"
            elif left > 0:
                state_text = f"logged in, expires in {_duration(left)}"
            else:
                state_text = "expired" + (", refreshes on next use" if row["refreshable"] else "")
        table.add_row(row["server"], row["type"], state_text, row["issuer"] or "-", row["scopes"] or "-")
    out.print(table)


def logout(config: str | None, server: str) -> None:
    """Delete one server's saved tokens (its client registration is kept for the next login)."""
    from app.oauth.flow import token_store
    from app.state import state_dir

    loaded = load(config)
    cfg = _pick(loaded, server)
    if token_store(state_dir(), server, cfg).forget_tokens():
        stdout().print(f"Logged out of {server}: its tokens are deleted from this machine.", markup=False)
    else:
        stdout().print(f"{server}: not logged in.", markup=False)
