"""The filesystem MCP server: tools, their annotations and their reference output formats."""

from __future__ import annotations

import argparse
import fnmatch
import os
import stat
import sys
import time
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel

from servers.filesystem.paths import AccessDenied, Root, make_roots, validate

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
MAX_READ_BYTES = 10 * 1024 * 1024
MAX_SEARCH_ENTRIES = 200_000


class TextOutput(BaseModel):
    content: str


TextResult = Annotated[CallToolResult, TextOutput]


def text_result(text: str) -> CallToolResult:
    """Plain text for the model and `{content}` structured content, like the reference server."""
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content={"content": text})


def _checked(path: str, roots: list[Root]) -> str:
    try:
        return validate(path, roots)
    except AccessDenied as exc:
        raise ToolError(str(exc)) from None


def _read_text(real: str) -> str:
    size = os.path.getsize(real)
    if size > MAX_READ_BYTES:
        raise ToolError(f"File is too large to read ({size} bytes; the limit is {MAX_READ_BYTES})")
    with open(real, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def build_server(roots: list[Root]) -> MCPServer:
    """An MCPServer whose tools are confined to `roots`."""
    mcp = MCPServer(
        "secure-filesystem-server",
        instructions="Read files inside the allowed directories. Paths may be absolute or relative to a root.",
        log_level="WARNING",
    )

    @mcp.tool(title="List Allowed Directories", annotations=READ_ONLY)
    def list_allowed_directories() -> TextResult:
        """List the directories this server may access."""
        lines = [r.path + (" (read-only)" if r.read_only else "") for r in roots]
        return text_result("Allowed directories:\n" + "\n".join(lines))

    @mcp.tool(title="List Directory", annotations=READ_ONLY)
    def list_directory(path: str) -> TextResult:
        """List files and directories in a directory, marked [FILE] or [DIR]."""
        real = _checked(path, roots)
        try:
            with os.scandir(real) as it:
                lines = [f"{'[DIR]' if e.is_dir(follow_symlinks=False) else '[FILE]'} {e.name}" for e in it]
        except NotADirectoryError:
            raise ToolError(f"Not a directory: {path}") from None
        except FileNotFoundError:
            raise ToolError(f"No such directory: {path}") from None
        return text_result("\n".join(lines))

    @mcp.tool(title="Read Text File", annotations=READ_ONLY)
    def read_text_file(path: str, head: int | None = None, tail: int | None = None) -> TextResult:
        """Read a file as UTF-8 text; head or tail return only the first or last N lines."""
        if head and tail:
            raise ToolError("Cannot specify both head and tail parameters simultaneously")
        real = _checked(path, roots)
        try:
            text = _read_text(real)
        except FileNotFoundError:
            raise ToolError(f"No such file: {path}") from None
        except IsADirectoryError:
            raise ToolError(f"Is a directory: {path}") from None
        if head:
            text = "\n".join(text.split("\n")[:head]) if head > 0 else ""
        elif tail:
            text = "\n".join(text.split("\n")[-tail:]) if tail > 0 else ""
        return text_result(text)

    @mcp.tool(title="Get File Info", annotations=READ_ONLY)
    def get_file_info(path: str) -> TextResult:
        """Size, times, type and permissions of a file or directory."""
        real = _checked(path, roots)
        try:
            st = os.stat(real)
        except FileNotFoundError:
            raise ToolError(f"No such file or directory: {path}") from None
        info = {
            "size": st.st_size,
            "created": time.ctime(getattr(st, "st_birthtime", st.st_ctime)),
            "modified": time.ctime(st.st_mtime),
            "accessed": time.ctime(st.st_atime),
            "isDirectory": str(stat.S_ISDIR(st.st_mode)).lower(),
            "isFile": str(stat.S_ISREG(st.st_mode)).lower(),
            "permissions": oct(st.st_mode)[-3:],
        }
        return text_result("\n".join(f"{k}: {v}" for k, v in info.items()))

    @mcp.tool(title="Search Files", annotations=READ_ONLY)
    def search_files(path: str, pattern: str, excludePatterns: list[str] | None = None) -> TextResult:  # noqa: N803 - reference parameter name
        """Find files whose path relative to `path` matches a glob pattern."""
        base = _checked(path, roots)
        excludes = excludePatterns or []
        found: list[str] = []
        seen = 0
        for current, dirs, files in os.walk(base):
            rel_dir = os.path.relpath(current, base)
            kept = []
            for d in sorted(dirs):
                rel = d if rel_dir == "." else f"{rel_dir}/{d}"
                if not any(fnmatch.fnmatchcase(rel, x) for x in excludes):
                    kept.append(d)
            dirs[:] = kept
            for name in sorted(dirs) + sorted(files):
                seen += 1
                if seen > MAX_SEARCH_ENTRIES:
                    raise ToolError(f"Search stopped after {MAX_SEARCH_ENTRIES} entries; narrow the path")
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                if fnmatch.fnmatchcase(rel, pattern) and not any(fnmatch.fnmatchcase(rel, x) for x in excludes):
                    found.append(os.path.join(current, name))
        return text_result("\n".join(found) if found else "No matches found")

    return mcp


def main(argv: list[str] | None = None) -> None:
    """Run over stdio with the given roots."""
    parser = argparse.ArgumentParser(prog="python -m servers.filesystem", description=__doc__)
    parser.add_argument("--root", action="append", default=[], help="an allowed directory (repeatable)")
    parser.add_argument(
        "--read-only-root", action="append", default=[], help="a directory that may be read but not changed"
    )
    args = parser.parse_args(argv)
    if not args.root and not args.read_only_root:
        parser.error("give at least one --root DIR")
    try:
        roots = make_roots(args.root, args.read_only_root)
    except ValueError as exc:
        print(f"filesystem server: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    build_server(roots).run()
