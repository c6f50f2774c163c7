"""`python -m servers.customers --db PATH [--size N] [--transport stdio|sse|http]`."""

from __future__ import annotations

import sys
from pathlib import Path

from servers.serving import ArgumentParser, add_serving_args, run_from_args


def main(argv: list[str] | None = None) -> None:
    """Create and seed the database if it is missing, then serve it."""
    from servers.customers.db import DatabaseError, ensure_database
    from servers.customers.server import build_server
    from servers.customers.sql_guard import QueryLimits

    parser = ArgumentParser(prog="agentdeck serve customers", description="A customer database MCP server (SQLite).")
    parser.add_argument(
        "--db", default="customers.db", help="database file; created and seeded if missing (default ./customers.db)"
    )
    parser.add_argument(
        "--size", type=int, default=10_000, help="customers to seed into a new database (default 10000)"
    )
    parser.add_argument("--max-rows", type=int, default=500, help="row cap for read_query")
    parser.add_argument("--query-seconds", type=float, default=2.0, help="time limit for read_query")
    add_serving_args(parser)
    args = parser.parse_args(argv)
    path = Path(args.db).expanduser()
    try:
        if ensure_database(path, args.size):
            print(f"created {path} with {args.size} customers", file=sys.stderr)
    except DatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    run_from_args(build_server(path, QueryLimits(args.max_rows, args.query_seconds)), args)


if __name__ == "__main__":
    from servers.exiting import run_main

    run_main(main)
