"""`python -m servers.openai_tools [--output-dir DIR] [--allowed-dir DIR]... [--timeout S] [--max-retries N]`."""

from __future__ import annotations

import os
import sys

from servers.serving import ArgumentParser, add_serving_args, run_from_args


def default_output_dir() -> str:
    """Originals of generated images: in agentdeck's state directory unless told otherwise."""
    from app.state import state_dir

    return str(state_dir() / "openai-images")


def main(argv: list[str] | None = None) -> None:
    """Read the environment and options, then serve."""
    from servers.openai_tools.server import build_server
    from servers.openai_tools.settings import SettingsError, env_defaults, settings_from, truthy

    parser = ArgumentParser(
        prog="agentdeck serve openai",
        description="OpenAI as MCP tools: chat, images, embeddings, moderation, function calling. "
        "Reads OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_ORG_ID, DEFAULT_MODEL, DEFAULT_IMAGE_MODEL, MAX_TOKENS "
        "and TEMPERATURE from the environment.",
    )
    parser.add_argument("--output-dir", default=None, help="where generated images are saved (default: state dir)")
    parser.add_argument(
        "--allowed-dir", action="append", default=[], help="a folder image inputs may be read from (repeatable)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per OpenAI request (default 120)")
    parser.add_argument(
        "--max-retries", type=int, default=2, help="retries of rate limits, timeouts and 5xx errors (default 2)"
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
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    args = parser.parse_args(argv)
    args.output_dir = args.output_dir or default_output_dir()
    try:
        settings = settings_from(args, os.environ)
        if args.credentials == "passthrough" and args.transport == "stdio":
            raise SettingsError(
                "--credentials passthrough takes each request's key from an HTTP header: use --transport sse or http"
            )
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    run_from_args(build_server(settings, passthrough=args.credentials == "passthrough"), args)


if __name__ == "__main__":
    from servers.exiting import run_main

    run_main(main)
