"""`python -m servers.conversations [--db PATH] [--timeout S] [--max-retries N] [--credentials static|passthrough]`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from servers.serving import ArgumentParser, add_serving_args, run_from_args


def main(argv: list[str] | None = None) -> None:
    """Read the environment and options, open the local store, then serve."""
    from servers.conversations.server import build_server
    from servers.conversations.store import Store
    from servers.openai_tools.settings import SettingsError, env_defaults, settings_from, truthy

    parser = ArgumentParser(
        prog="agentdeck serve conversations",
        description="The Assistants API tools on OpenAI Conversations and Responses. Reads OPENAI_API_KEY, "
        "OPENAI_BASE_URL, OPENAI_ORG_ID and DEFAULT_MODEL from the environment.",
    )
    parser.add_argument(
        "--db", default=None, help="SQLite file for assistants, thread and run indexes (default: state dir)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per OpenAI request (default 120)")
    parser.add_argument(
        "--max-retries", type=int, default=2, help="retries of rate limits, timeouts and 5xx (default 2)"
    )
    parser.add_argument(
        "--credentials",
        choices=["static", "passthrough"],
        default="passthrough" if truthy(os.environ.get("MCP_CREDENTIALS_PASSTHROUGH")) else "static",
        help="static: the server's OPENAI_API_KEY; passthrough (sse/http): each request's X-OpenAI-API-Key header",
    )
    add_serving_args(parser)
    try:
        env_defaults(parser, os.environ)
        args = parser.parse_args(argv)
        args.output_dir, args.allowed_dir = ".", []
        settings = settings_from(args, os.environ)
        if args.credentials == "passthrough" and args.transport == "stdio":
            raise SettingsError(
                "--credentials passthrough takes each request's key from an HTTP header: use --transport sse or http"
            )
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.db is None:
        from app.state import state_dir

        path = state_dir() / "conversations.db"
    else:
        path = Path(args.db).expanduser()
    run_from_args(build_server(settings, Store(path), passthrough=args.credentials == "passthrough"), args)


if __name__ == "__main__":
    from servers.exiting import run_main

    run_main(main)
