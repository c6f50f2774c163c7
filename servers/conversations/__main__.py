"""`python -m servers.conversations [--db PATH] [--timeout S] [--max-retries N] [--credentials static|passthrough]`."""

from __future__ import annotations

import os
from pathlib import Path

from servers.serving import ArgumentParser, add_serving_args, run_from_args


def main(argv: list[str] | None = None) -> None:
    """Read the environment and options, open the local store, then serve."""
    from servers.conversations.server import build_server
    from servers.conversations.store import Store
    from servers.openai_tools.settings import add_openai_options, parse_settings

    parser = ArgumentParser(
        prog="agentdeck serve conversations",
        description="The Assistants API tools on OpenAI Conversations and Responses. Reads OPENAI_API_KEY, "
        "OPENAI_BASE_URL, OPENAI_ORG_ID and DEFAULT_MODEL from the environment.",
    )
    parser.add_argument(
        "--db", default=None, help="SQLite file for assistants, thread and run indexes (default: state dir)"
    )
    add_openai_options(parser, os.environ)
    add_serving_args(parser)
    # The conversations server reads no images and writes none.
    args, settings = parse_settings(parser, argv, os.environ, output_dir=".", allowed_dir=[])
    if args.db is None:
        from app.state import state_dir

        path = state_dir() / "conversations.db"
    else:
        path = Path(args.db).expanduser()
    run_from_args(build_server(settings, Store(path), passthrough=args.credentials == "passthrough"), args)


if __name__ == "__main__":
    from servers.exiting import run_main

    run_main(main)
