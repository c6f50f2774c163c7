"""`python -m servers.openai_tools [--output-dir DIR] [--allowed-dir DIR]... [--timeout S] [--max-retries N]`."""

from __future__ import annotations

import os

from servers.serving import ArgumentParser, add_serving_args, run_from_args


def default_output_dir() -> str:
    """Originals of generated images: in agentdeck's state directory unless told otherwise."""
    from app.state import state_dir

    return str(state_dir() / "openai-images")


def main(argv: list[str] | None = None) -> None:
    """Read the environment and options, then serve."""
    from servers.openai_tools.server import build_server
    from servers.openai_tools.settings import add_openai_options, parse_settings

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
    add_openai_options(parser, os.environ)
    add_serving_args(parser)
    args, settings = parse_settings(parser, argv, os.environ, output_dir=default_output_dir)
    run_from_args(build_server(settings, passthrough=args.credentials == "passthrough"), args)


if __name__ == "__main__":
    from servers.exiting import run_main

    run_main(main)
