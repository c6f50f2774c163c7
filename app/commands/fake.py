"""`agentdeck fake-openai`: serve the offline rules as an OpenAI-compatible HTTP API on loopback."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from app.errors import UsageError


def serve_fake(
    rules: str | None, host: str, port: int, latency: float, faults: str | None, chunk_delay: float = 0.0
) -> None:
    """Bind, print the base URL on stdout, and serve until interrupted."""
    import uvicorn

    from app.offline.fake_server import LOOPBACK, FakeState, build_app
    from app.offline.rules import load_rules

    if host not in LOOPBACK:
        raise UsageError(f"the fake server binds loopback only; got --host {host}", hint="use 127.0.0.1")
    if latency < 0 or chunk_delay < 0:
        raise UsageError("--latency and --chunk-delay cannot be negative")
    state = FakeState(rules=load_rules(Path(rules) if rules else None), latency=latency, chunk_delay=chunk_delay)
    if faults is not None:
        state.faults = faults_option(faults)
    from servers.serving import ServeError, bind_socket

    try:
        sock = bind_socket(host, port)
    except ServeError as exc:
        raise UsageError(str(exc)) from None
    bound = sock.getsockname()[1]
    print(f"http://{host}:{bound}/v1", flush=True)
    config = uvicorn.Config(build_app(state), log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        sys.stdout.flush()


def faults_option(text: str) -> list[Any]:
    """--faults, with the same checks as POST /_admin/faults."""
    from app.offline.fake_server import parse_faults

    hint = 'e.g. --faults \'[{"status": 429, "retry_after": 1}]\''
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--faults is not JSON: {exc}", hint=hint) from None
    try:
        return parse_faults(data)
    except ValueError as exc:
        raise UsageError(f"--faults: {exc}", hint=hint) from None
