"""`agentdeck gateway serve` and `agentdeck gateway token add`."""

from __future__ import annotations

import sys

from app.commands.common import load, stderr
from app.config.governance import GatewayConfig
from app.config.loader import LoadedConfig
from app.errors import ConfigError, ServerStartError, UsageError


def _gateway(loaded: LoadedConfig) -> GatewayConfig:
    if loaded.config.gateway is None:
        raise ConfigError(
            f"{loaded.path} has no gateway: section",
            hint="add gateway: {servers: [...], profiles: {...}} (see the README's Gateway section)",
        )
    return loaded.config.gateway


def token_add(config: str | None, name: str, profiles: list[str]) -> None:
    """Create an identity with a new token; print the token (once)."""
    from app.config.models_base import NAME_RE
    from app.gateway.tokens import add_token, tokens_path
    from app.state import state_dir

    if not NAME_RE.fullmatch(name):
        raise UsageError(f"identity name {name!r} may use only letters, digits, '-' and '_'")
    if not profiles:
        raise UsageError("name at least one --profile the identity may use")
    loaded = load(config)
    gateway = _gateway(loaded)
    path = tokens_path(gateway, loaded.resolve_path, state_dir())
    token = add_token(gateway, path, name, profiles)
    print(token)
    stderr().print(f"identity '{name}' ({', '.join(profiles)}) saved, hashed, in {path}; the token is not shown again")


def serve_gateway(config: str | None, host: str | None, port: int | None, allow_hosts: list[str]) -> None:
    """Serve every profile at /mcp/<profile> until interrupted."""
    from app.audit import open_trail
    from app.config import load_config
    from app.gateway.tokens import load_identities, tokens_path
    from app.state import state_dir
    from servers.serving import LOOPBACK, HostGuard, ServeError, allowed_authorities, bind_socket

    loaded = load(config)
    gateway = _gateway(loaded)
    host = host or gateway.host
    port = gateway.port if port is None else port
    identities = load_identities(gateway, tokens_path(gateway, loaded.resolve_path, state_dir()))
    if not len(identities) and gateway.jwt is None:
        if host not in LOOPBACK:
            raise UsageError(
                f"binding {host} would expose the gateway with nobody allowed in",
                hint="add an identity first: agentdeck gateway token add NAME --profile P",
            )
        stderr().print("[yellow]warning:[/] no identities yet: every request is refused until one is added "
                       "(agentdeck gateway token add NAME --profile P)")  # fmt: skip
    trail = open_trail(loaded, None, None, source="gateway")
    try:
        from app.gateway.app import Gateway

        app = Gateway(loaded, identities, trail)
        tokens = tokens_path(gateway, loaded.resolve_path, state_dir())

        def reloader() -> tuple[LoadedConfig, object]:
            fresh = load_config(loaded.path)
            if fresh.config.gateway is None:
                raise ConfigError(f"{loaded.path} no longer has a gateway: section")
            return fresh, load_identities(fresh.config.gateway, tokens)

        app.reloader = reloader
        app.watched = [loaded.path, tokens]
        try:
            sock = bind_socket(host, port)
            bound = sock.getsockname()[1]
            guard = HostGuard(app, allowed_authorities(host, bound, allow_hosts))
        except ServeError as exc:
            raise UsageError(str(exc)) from None
        shown = f"[{host}]" if ":" in host else host
        profiles = ", ".join(gateway.profiles)
        print(f"gateway on http://{shown}:{bound}/mcp/<profile> (profiles: {profiles})", file=sys.stderr, flush=True)
        _run(guard, sock)
        if app.failure is not None:
            raise ServerStartError(f"the gateway could not start: {app.failure}")
    finally:
        if trail is not None and (failure := trail.close()):
            stderr().print(f"[yellow]warning:[/] {failure}")


def _run(app: object, sock: object) -> None:
    import anyio
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))  # type: ignore[arg-type]
    try:
        anyio.run(lambda: server.serve(sockets=[sock]))  # type: ignore[list-item]
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()  # type: ignore[attr-defined]
