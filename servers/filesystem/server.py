"""The filesystem MCP server: the reference server's 13 tools, names, annotations and outputs."""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    TextContent,
    ToolAnnotations,
)
from pydantic import BaseModel, Field

from servers import package_version
from servers.filesystem import pinned
from servers.filesystem.errors import os_error_text
from servers.filesystem.formats import (
    apply_edits,
    fenced_diff,
    format_size,
    glob_regex,
    normalize_line_endings,
    tree_excluded,
    unified_diff,
    uses_crlf,
)
from servers.filesystem.paths import AccessDenied, Root, validate

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
MEDIA_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp",
    ".bmp": "image/bmp", ".svg": "image/svg+xml", ".mp3": "audio/mpeg", ".wav": "audio/wav", ".ogg": "audio/ogg",
    ".flac": "audio/flac",
}  # fmt: skip


def _write_annotations(idempotent: bool, destructive: bool) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=False, idempotent_hint=idempotent, destructive_hint=destructive, open_world_hint=False
    )


class TextOutput(BaseModel):
    content: str


class MediaOutput(BaseModel):
    content: list[dict[str, Any]]


class Edit(BaseModel):
    oldText: str = Field(description="Text to search for; must match exactly, or line by line ignoring indentation")  # noqa: N815
    newText: str = Field(description="Text to replace it with")  # noqa: N815


TextResult = Annotated[CallToolResult, TextOutput]


def text_result(text: str) -> CallToolResult:
    """Plain text for the model and `{content}` structured content, like the reference server."""
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content={"content": text})


@dataclass
class Limits:
    max_file_bytes: int = 10 * 1024 * 1024
    max_call_bytes: int = 50 * 1024 * 1024
    max_entries: int = 100_000


class Files:
    """The operations behind the tools, confined to `roots`."""

    def __init__(self, roots: list[Root], limits: Limits) -> None:
        self.roots = roots
        self.limits = limits

    def check(self, path: str, write: bool = False) -> str:
        try:
            return validate(path, self.roots, write=write)
        except AccessDenied as exc:
            raise ToolError(str(exc)) from None

    def read_text(self, real: str, limit: int | None = None) -> str:
        data = pinned.read_bytes(real, self.roots, min(limit or self.limits.max_file_bytes, self.limits.max_file_bytes))
        return data.decode("utf-8", errors="replace")

    def entry_is_inside(self, path: str) -> bool:
        try:
            validate(path, self.roots)
        except AccessDenied:
            return False
        return True


def _errors(syscall: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn OS and validation errors into tool errors with the reference server's wording.

    `syscall` is the Node fs call the reference tool would have failed in (open, scandir, stat...).
    """
    import functools

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except ToolError:
                raise
            except AccessDenied as exc:
                raise ToolError(str(exc)) from None
            except FileExistsError as exc:
                raise ToolError(f"Destination already exists: {exc.filename2 or exc.filename}") from None
            except OSError as exc:
                raise ToolError(os_error_text(exc, syscall)) from None
            except ValueError as exc:
                raise ToolError(str(exc)) from None

        return wrapper

    return decorate


def build_server(roots: list[Root], limits: Limits | None = None) -> MCPServer:
    """An MCPServer whose tools are confined to `roots`."""
    fs = Files(roots, limits or Limits())
    mcp = MCPServer(
        "secure-filesystem-server",
        version=package_version(),
        instructions="Read and change files inside the allowed directories only. "
        "Call list_allowed_directories first; relative paths resolve against them.",
        log_level="WARNING",
    )
    tool = mcp.tool

    def head_tail(path: str, head: int | None, tail: int | None) -> CallToolResult:
        if head and tail:
            raise ToolError("Cannot specify both head and tail parameters simultaneously")
        text = fs.read_text(fs.check(path))
        if tail:
            parts = text.split("\n")
            return text_result("\n".join(parts[-tail:]) if tail > 0 else "")
        if head:
            return text_result("\n".join(text.split("\n")[:head]) if head > 0 else "")
        return text_result(text)

    @tool(title="Read Text File", annotations=READ_ONLY)
    @_errors("open")
    def read_text_file(path: str, head: int | None = None, tail: int | None = None) -> TextResult:
        """Read a file as UTF-8 text. `head`/`tail` return only the first/last N lines. Only inside allowed directories."""
        return head_tail(path, head, tail)

    @tool(title="Read File (Deprecated)", annotations=READ_ONLY)
    @_errors("open")
    def read_file(path: str, head: int | None = None, tail: int | None = None) -> TextResult:
        """DEPRECATED: Use read_text_file instead."""
        return head_tail(path, head, tail)

    @tool(title="Read Media File", annotations=READ_ONLY)
    @_errors("open")
    def read_media_file(path: str) -> Annotated[CallToolResult, MediaOutput]:
        """Read an image or audio file; returns base64 data with its MIME type."""
        real = fs.check(path)
        data = base64.b64encode(pinned.read_bytes(real, roots, fs.limits.max_file_bytes)).decode()
        mime = MEDIA_TYPES.get(Path(real).suffix.lower(), "application/octet-stream")
        item: Any
        if mime.startswith("image/"):
            item = ImageContent(type="image", data=data, mime_type=mime)
        elif mime.startswith("audio/"):
            item = AudioContent(type="audio", data=data, mime_type=mime)
        else:
            item = EmbeddedResource(
                type="resource", resource=BlobResourceContents(uri=Path(real).as_uri(), mime_type=mime, blob=data)
            )
        dumped = item.model_dump(mode="json", by_alias=True, exclude_none=True)
        return CallToolResult(content=[item], structured_content={"content": [dumped]})

    @tool(title="Read Multiple Files", annotations=READ_ONLY)
    def read_multiple_files(paths: Annotated[list[str], Field(min_length=1)]) -> TextResult:
        """Read several files at once; a failure on one file does not fail the others."""
        parts, budget = [], fs.limits.max_call_bytes
        for p in paths:
            try:
                if budget <= 0:
                    raise ValueError(f"the per-call limit of {fs.limits.max_call_bytes} bytes was reached")
                content = fs.read_text(fs.check(p), budget)
                budget -= len(content.encode())
                parts.append(f"{p}:\n{content}\n")
            except OSError as exc:
                parts.append(f"{p}: Error - {os_error_text(exc, 'open')}")
            except (ToolError, AccessDenied, ValueError) as exc:
                parts.append(f"{p}: Error - {exc}")
        return text_result("\n---\n".join(parts))

    @tool(title="Write File", annotations=_write_annotations(idempotent=True, destructive=True))
    @_errors("open")
    def write_file(path: str, content: str) -> TextResult:
        """Create a file or overwrite it completely. Parent directories must exist."""
        real = fs.check(path, write=True)
        if not os.path.isdir(os.path.dirname(real)):
            raise ToolError(f"Parent directory does not exist: {os.path.dirname(real)}")
        pinned.write_bytes(real, roots, content.encode("utf-8"))
        return text_result(f"Successfully wrote to {path}")

    @tool(title="Edit File", annotations=_write_annotations(idempotent=False, destructive=True))
    @_errors("open")
    def edit_file(path: str, edits: list[Edit], dryRun: bool = False) -> TextResult:  # noqa: N803
        """Apply text edits in order (exact match, or line-wise ignoring whitespace); returns a git-style diff."""
        real = fs.check(path, write=not dryRun)
        original = fs.read_text(real)
        crlf = uses_crlf(original)
        before = normalize_line_endings(original)
        try:
            after = apply_edits(before, [(e.oldText, e.newText) for e in edits])
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        if not dryRun:
            pinned.write_bytes(real, roots, (after.replace("\n", "\r\n") if crlf else after).encode("utf-8"))
        return text_result(fenced_diff(unified_diff(path, before, after)))

    @tool(title="Create Directory", annotations=_write_annotations(idempotent=True, destructive=False))
    @_errors("mkdir")
    def create_directory(path: str) -> TextResult:
        """Create a directory and any missing parents; succeeds if it already exists."""
        pinned.make_dirs(fs.check(path, write=True), roots)
        return text_result(f"Successfully created directory {path}")

    @tool(title="List Directory", annotations=READ_ONLY)
    @_errors("scandir")
    def list_directory(path: str) -> TextResult:
        """List a directory's entries, each marked [DIR] or [FILE]."""
        with os.scandir(fs.check(path)) as it:
            lines = [f"{'[DIR]' if e.is_dir(follow_symlinks=False) else '[FILE]'} {e.name}" for e in it]
        return text_result("\n".join(lines))

    @tool(title="List Directory with Sizes", annotations=READ_ONLY)
    @_errors("scandir")
    def list_directory_with_sizes(path: str, sortBy: Literal["name", "size"] = "name") -> TextResult:  # noqa: N803
        """List a directory's entries with sizes, sorted by name or size, plus totals."""
        entries = []
        with os.scandir(fs.check(path)) as it:
            for e in it:
                is_dir = e.is_dir(follow_symlinks=False)
                size = 0
                if not is_dir and fs.entry_is_inside(e.path):  # an escaping link reports size 0
                    try:
                        size = os.stat(e.path).st_size
                    except OSError:
                        size = 0
                entries.append((e.name, is_dir, size))
        if sortBy == "size":
            entries.sort(key=lambda x: -x[2])
        else:
            entries.sort(key=lambda x: (x[0].casefold(), x[0]))
        lines = [
            f"{'[DIR]' if d else '[FILE]'} {n.ljust(30)} {'' if d else format_size(s).rjust(10)}" for n, d, s in entries
        ]
        files = sum(1 for _, d, _ in entries if not d)
        lines += [
            "",
            f"Total: {files} files, {len(entries) - files} directories",
            f"Combined size: {format_size(sum(s for *_, s in entries))}",
        ]
        return text_result("\n".join(lines))

    @tool(title="Directory Tree", annotations=READ_ONLY)
    @_errors("scandir")
    def directory_tree(path: str, excludePatterns: list[str] | None = None) -> TextResult:  # noqa: N803
        """A recursive JSON tree of files and directories (links are not followed)."""
        base = fs.check(path)
        excludes = excludePatterns or []
        count = 0

        def build(current: str) -> list[dict[str, Any]]:
            nonlocal count
            out: list[dict[str, Any]] = []
            with os.scandir(current) as it:
                for e in sorted(it, key=lambda x: x.name):
                    rel = os.path.relpath(e.path, base)
                    if tree_excluded(rel, excludes):
                        continue
                    count += 1
                    if count > fs.limits.max_entries:
                        raise ToolError(
                            f"Directory tree has more than {fs.limits.max_entries} entries; use excludePatterns or a deeper path"
                        )
                    if e.is_dir(follow_symlinks=False):
                        fs.check(e.path)
                        out.append({"name": e.name, "type": "directory", "children": build(e.path)})
                    else:
                        out.append({"name": e.name, "type": "file"})
            return out

        return text_result(json.dumps(build(base), indent=2, ensure_ascii=False))

    @tool(title="Move File", annotations=_write_annotations(idempotent=False, destructive=True))
    @_errors("rename")
    def move_file(source: str, destination: str) -> TextResult:
        """Move or rename a file or directory. Fails if the destination exists."""
        src, dst = fs.check(source, write=True), fs.check(destination, write=True)
        if os.path.lexists(dst):
            raise ToolError(f"Destination already exists: {destination}")
        pinned.move(src, dst, roots)
        return text_result(f"Successfully moved {source} to {destination}")

    @tool(title="Search Files", annotations=READ_ONLY)
    @_errors("scandir")
    def search_files(path: str, pattern: str, excludePatterns: list[str] | None = None) -> TextResult:  # noqa: N803
        """Find entries whose path relative to `path` matches a glob (`**/*.py`); excluded directories are pruned."""
        base = fs.check(path)
        matcher = glob_regex(pattern).match
        excluders = [glob_regex(x).match for x in excludePatterns or []]
        cut = len(base.rstrip(os.sep)) + 1
        found: list[str] = []
        seen, limit = 0, fs.limits.max_entries
        stack = [base]
        while stack:
            try:
                it = os.scandir(stack.pop())
            except OSError:
                continue
            with it:
                for e in it:
                    seen += 1
                    if seen > limit:
                        raise ToolError(
                            f"Search visited more than {limit} entries; narrow the path or add excludePatterns"
                        )
                    rel = e.path[cut:]
                    if excluders and any(x(rel) for x in excluders):
                        continue  # an excluded directory is pruned with it
                    if e.is_symlink():
                        if fs.entry_is_inside(e.path) and matcher(rel):
                            found.append(e.path)  # a link out of the roots is never reported
                        continue
                    if matcher(rel):
                        found.append(e.path)
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
        found.sort()
        return text_result("\n".join(found) if found else "No matches found")

    @tool(title="Get File Info", annotations=READ_ONLY)
    @_errors("stat")
    def get_file_info(path: str) -> TextResult:
        """Size, creation/modification/access times, type and permissions."""
        st = os.stat(fs.check(path))

        def when(t: float) -> str:
            return time.strftime("%a %b %d %Y %H:%M:%S GMT%z (%Z)", time.localtime(t))

        info = {
            "size": st.st_size,
            "created": when(getattr(st, "st_birthtime", st.st_ctime)),
            "modified": when(st.st_mtime),
            "accessed": when(st.st_atime),
            "isDirectory": str(stat.S_ISDIR(st.st_mode)).lower(),
            "isFile": str(stat.S_ISREG(st.st_mode)).lower(),
            "permissions": oct(st.st_mode)[-3:],
        }
        return text_result("\n".join(f"{k}: {v}" for k, v in info.items()))

    @tool(title="List Allowed Directories", annotations=READ_ONLY)
    def list_allowed_directories() -> TextResult:
        """List the directories this server may access."""
        return text_result("Allowed directories:\n" + "\n".join(r.path for r in roots))

    return mcp
