"""`python -m servers.filesystem --root DIR [--transport stdio|sse|http]`."""

from __future__ import annotations

import sys

from servers.serving import ArgumentParser, add_serving_args, run_from_args


def main(argv: list[str] | None = None) -> None:
    """Parse options, check the roots, and serve."""
    from servers.filesystem.paths import make_roots
    from servers.filesystem.server import Limits, build_server

    parser = ArgumentParser(
        prog="agentdeck serve filesystem", description="A filesystem MCP server confined to allowed directories."
    )
    parser.add_argument("--root", action="append", default=[], help="an allowed directory (repeatable)")
    parser.add_argument(
        "--read-only-root",
        action="append",
        default=[],
        help="a directory that may be read but never changed (repeatable)",
    )
    parser.add_argument("--max-read-bytes", type=int, default=Limits.max_file_bytes, help="largest file a read returns")
    parser.add_argument(
        "--max-call-bytes", type=int, default=Limits.max_call_bytes, help="most bytes one call may read in total"
    )
    parser.add_argument(
        "--max-entries", type=int, default=Limits.max_entries, help="most entries directory_tree and search_files visit"
    )
    parser.add_argument("roots", nargs="*", help="allowed directories (like the reference server's arguments)")
    add_serving_args(parser)
    args = parser.parse_args(argv)
    dirs = [*args.root, *args.roots]
    if not dirs and not args.read_only_root:
        parser.error("give at least one --root DIR")
    try:
        roots = make_roots(dirs, args.read_only_root)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    limits = Limits(args.max_read_bytes, args.max_call_bytes, args.max_entries)
    run_from_args(build_server(roots, limits), args)


if __name__ == "__main__":
    from servers.exiting import run_main

    run_main(main)
