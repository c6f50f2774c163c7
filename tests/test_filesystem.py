"""The filesystem server: escape attempts, races, limits and the reference output contract."""

from __future__ import annotations

import base64
import json
import os
import unicodedata
from pathlib import Path

import pytest
from mcp import Client

from servers.filesystem import paths as paths_module
from servers.filesystem import pinned
from servers.filesystem.formats import apply_edits, fenced_diff, format_size, glob_match, unified_diff
from servers.filesystem.paths import make_roots
from servers.filesystem.server import Limits, build_server


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """allowed/ with content, plus an outside/ directory and siblings that share its prefix."""
    allowed = tmp_path / "allowed"
    outside = tmp_path / "outside"
    for d in (
        allowed / "sub",
        outside,
        tmp_path / "allowed_evil",
        tmp_path / "allowed2",
        tmp_path / "allowed'",
        tmp_path / "allowed ",
        tmp_path / "allowed\t",
    ):
        d.mkdir(parents=True, exist_ok=True)
    (allowed / "notes.txt").write_text("line1\nline2\nline3\n")
    (allowed / "sub" / "deep.md").write_text("# deep\n")
    (outside / "secret.txt").write_text("TOP SECRET\n")
    for sib in ("allowed_evil", "allowed2", "allowed'", "allowed ", "allowed\t"):
        (tmp_path / sib / "x.txt").write_text("sibling\n")
    (allowed / "link_file").symlink_to(outside / "secret.txt")
    (allowed / "link_dir").symlink_to(outside)
    (allowed / "dangling").symlink_to(outside / "created_by_attack.txt")
    (allowed / "chain1").symlink_to(allowed / "chain2")
    (allowed / "chain2").symlink_to(outside / "secret.txt")
    (allowed / "parent_link").symlink_to(tmp_path)
    (allowed / "inner_link").symlink_to(allowed / "notes.txt")
    cafe = tmp_path / unicodedata.normalize("NFC", "café")
    cafe.mkdir()
    (cafe / "menu.txt").write_text("outside cafe\n")
    return {"root": tmp_path, "allowed": allowed, "outside": outside}


def snapshot(root: Path, allowed: Path) -> dict[str, tuple[int, bytes]]:
    """Every file outside `allowed` with its content (to prove nothing outside changed)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        if Path(dirpath).is_relative_to(allowed):
            continue
        for f in files:
            p = Path(dirpath) / f
            out[str(p)] = (p.stat().st_mtime_ns, p.read_bytes())
    return out


async def call(server, tool: str, **args):
    async with Client(server) as c:
        return await c.call_tool(tool, args)


def text(result) -> str:
    return result.content[0].text


def escape_paths(w: dict[str, Path]) -> list[str]:
    root, allowed = w["root"], w["allowed"]
    nfd_cafe = str(root / unicodedata.normalize("NFD", "café") / "menu.txt")
    return [
        "../outside/secret.txt",
        "sub/../../outside/secret.txt",
        "../../../../../../etc/passwd",
        "/etc/passwd",
        str(w["outside"] / "secret.txt"),
        str(root / "allowed_evil" / "x.txt"),
        str(root / "allowed2" / "x.txt"),
        str(root / "allowed'" / "x.txt"),
        str(root / "allowed " / "x.txt"),
        str(root / "allowed\t" / "x.txt"),
        f"{allowed}_evil/x.txt",
        str(allowed) + "\x00/../outside/secret.txt",
        "notes.txt\x00.png",
        "~/.bashrc",
        "~",
        "link_file",
        "link_dir/secret.txt",
        "link_dir",
        "dangling",
        "chain1",
        "parent_link/outside/secret.txt",
        "parent_link",
        str(allowed / "link_dir" / "new.txt"),
        str(allowed / "dangling"),
        nfd_cafe,
        str(root / "café" / "menu.txt"),
        "C:\\Windows\\system32",
        "C:/Windows/win.ini",
        "d:\\data",
        "",
        str(root),
        "/",
    ]


OPERATIONS = {
    "read_text_file": lambda p: {"path": p},
    "read_media_file": lambda p: {"path": p},
    "write_file": lambda p: {"path": p, "content": "pwned"},
    "edit_file": lambda p: {"path": p, "edits": [{"oldText": "SECRET", "newText": "pwned"}]},
    "move_src": lambda p: {"source": p, "destination": "moved_here.txt"},
    "move_dst": lambda p: {"source": "notes.txt", "destination": p},
    "create_directory": lambda p: {"path": p},
    "list_directory": lambda p: {"path": p},
    "list_directory_with_sizes": lambda p: {"path": p},
    "directory_tree": lambda p: {"path": p},
    "search_files": lambda p: {"path": p, "pattern": "**"},
    "get_file_info": lambda p: {"path": p},
}


def test_escape_table_has_enough_cases(world):
    assert len(escape_paths(world)) >= 30


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_every_escape_attempt_is_denied(world, operation):
    root, allowed = world["root"], world["allowed"]
    before = snapshot(root, allowed)
    server = build_server(make_roots([str(allowed)]))
    tool = "move_file" if operation.startswith("move") else operation
    async with Client(server) as c:
        for attempt in escape_paths(world):
            result = await c.call_tool(tool, OPERATIONS[operation](attempt))
            assert result.is_error, f"{operation}({attempt!r}) was allowed: {text(result)[:200]}"
            assert "TOP SECRET" not in text(result) and "sibling" not in text(result)
    assert snapshot(root, allowed) == before
    assert not (world["outside"] / "created_by_attack.txt").exists()
    assert (allowed / "notes.txt").read_text() == "line1\nline2\nline3\n"


async def test_links_inside_the_root_still_work(world):
    server = build_server(make_roots([str(world["allowed"])]))
    assert text(await call(server, "read_text_file", path="inner_link")) == "line1\nline2\nline3\n"


async def test_read_only_root_refuses_changes(world, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "keep.txt").write_text("keep\n")
    server = build_server(make_roots([str(world["allowed"])], [str(ro)]))
    async with Client(server) as c:
        assert text(await c.call_tool("read_text_file", {"path": str(ro / "keep.txt")})) == "keep\n"
        for tool, args in [
            ("write_file", {"path": str(ro / "keep.txt"), "content": "x"}),
            ("create_directory", {"path": str(ro / "d")}),
            ("move_file", {"source": str(ro / "keep.txt"), "destination": "stolen.txt"}),
            ("edit_file", {"path": str(ro / "keep.txt"), "edits": [{"oldText": "keep", "newText": "x"}]}),
        ]:
            r = await c.call_tool(tool, args)
            assert r.is_error and "read-only" in text(r)
    assert (ro / "keep.txt").read_text() == "keep\n" and not (ro / "d").exists()


@pytest.mark.parametrize(
    ("tool", "args", "target"),
    [
        ("write_file", {"path": "victim/new.txt", "content": "pwned"}, "new.txt"),
        ("edit_file", {"path": "victim/data.txt", "edits": [{"oldText": "safe", "newText": "pwned"}]}, None),
        ("create_directory", {"path": "victim/made/deeper"}, "made"),
        ("move_file", {"source": "notes.txt", "destination": "victim/moved.txt"}, "moved.txt"),
    ],
)
async def test_parent_swapped_for_a_symlink_after_validation(world, monkeypatch, tool, args, target):
    """GHSA-53mr-w429-c597: validation passes, then the parent becomes a link to outside."""
    allowed, outside = world["allowed"], world["outside"]
    victim = allowed / "victim"
    victim.mkdir()
    (victim / "data.txt").write_text("safe\n")
    (outside / "data.txt").write_text("outside data\n")
    real_validate = paths_module.validate

    def validate_then_swap(requested, roots, *, write=False):
        real = real_validate(requested, roots, write=write)
        if victim.is_dir() and not victim.is_symlink() and requested.startswith("victim"):
            victim.rename(allowed / "victim_old")
            victim.symlink_to(outside)
        return real

    monkeypatch.setattr("servers.filesystem.server.validate", validate_then_swap)
    server = build_server(make_roots([str(allowed)]))
    result = await call(server, tool, **args)
    assert result.is_error, text(result)
    assert "changed while it was being used" in text(result) or "not a directory" in text(result)
    if target is not None:
        assert not (outside / target).exists()
    assert (outside / "data.txt").read_text() == "outside data\n"


async def test_write_never_follows_a_final_symlink(world):
    """A link planted where the file will be written is refused, not written through."""
    allowed, outside = world["allowed"], world["outside"]
    real = str(allowed / "planted.txt")
    (allowed / "planted.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(paths_module.AccessDenied):
        pinned.write_bytes(real, make_roots([str(allowed)]), b"pwned")
    assert (outside / "secret.txt").read_text() == "TOP SECRET\n"


async def test_overwrite_keeps_the_inode(world):
    allowed = world["allowed"]
    ino = (allowed / "notes.txt").stat().st_ino
    server = build_server(make_roots([str(allowed)]))
    r = await call(server, "write_file", path="notes.txt", content="new\n")
    assert text(r) == "Successfully wrote to notes.txt" and r.structured_content == {
        "content": "Successfully wrote to notes.txt"
    }
    assert (allowed / "notes.txt").stat().st_ino == ino and (allowed / "notes.txt").read_text() == "new\n"


async def test_limits_give_clear_errors(world):
    allowed = world["allowed"]
    (allowed / "big.txt").write_text("x" * 5000)
    for i in range(30):
        (allowed / f"f{i}.txt").write_text("")
    server = build_server(make_roots([str(allowed)]), Limits(max_file_bytes=1000, max_call_bytes=1500, max_entries=20))
    async with Client(server) as c:
        r = await c.call_tool("read_text_file", {"path": "big.txt"})
        assert r.is_error and "too large" in text(r) and "1000" in text(r)
        r = await c.call_tool("read_multiple_files", {"paths": ["notes.txt", "big.txt"]})
        assert not r.is_error and "big.txt: Error - File is too large" in text(r)
        r = await c.call_tool("search_files", {"path": ".", "pattern": "**/*.txt"})
        assert r.is_error and "more than 20 entries" in text(r)
        r = await c.call_tool("directory_tree", {"path": "."})
        assert r.is_error and "more than 20 entries" in text(r)


# ----- contract: the reference server's formats -----


async def test_tool_names_and_annotations(world):
    server = build_server(make_roots([str(world["allowed"])]))
    async with Client(server) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
    assert set(tools) == {
        "read_text_file", "read_file", "read_media_file", "read_multiple_files", "write_file", "edit_file",
        "create_directory", "list_directory", "list_directory_with_sizes", "directory_tree", "move_file",
        "search_files", "get_file_info", "list_allowed_directories",
    }  # fmt: skip
    expect = {  # read_only, destructive, idempotent
        "write_file": (False, True, True),
        "edit_file": (False, True, False),
        "create_directory": (False, False, True),
        "move_file": (False, True, False),
    }
    for name, tool in tools.items():
        ann = tool.annotations
        assert ann.open_world_hint is False
        assert tool.output_schema is not None
        if name in expect:
            assert (ann.read_only_hint, ann.destructive_hint, ann.idempotent_hint) == expect[name]
        else:
            assert ann.read_only_hint is True
    assert tools["read_file"].description == "DEPRECATED: Use read_text_file instead."
    assert tools["read_text_file"].title == "Read Text File"


async def test_read_text_file_head_and_tail(world):
    server = build_server(make_roots([str(world["allowed"])]))
    async with Client(server) as c:
        assert text(await c.call_tool("read_text_file", {"path": "notes.txt", "head": 2})) == "line1\nline2"
        assert text(await c.call_tool("read_text_file", {"path": "notes.txt", "tail": 2})) == "line3\n"
        assert text(await c.call_tool("read_text_file", {"path": "notes.txt", "head": 0})) == "line1\nline2\nline3\n"
        r = await c.call_tool("read_text_file", {"path": "notes.txt", "head": 1, "tail": 1})
        assert r.is_error and "Cannot specify both head and tail parameters simultaneously" in text(r)
        r = await c.call_tool("read_text_file", {"path": "notes.txt"})
        assert r.structured_content == {"content": "line1\nline2\nline3\n"}


async def test_list_formats_and_sizes(world):
    allowed = world["allowed"]
    (allowed / "kb.bin").write_bytes(b"x" * 1536)
    server = build_server(make_roots([str(allowed)]))
    async with Client(server) as c:
        listing = text(await c.call_tool("list_directory", {"path": "sub"}))
        assert listing == "[FILE] deep.md"
        sized = text(await c.call_tool("list_directory_with_sizes", {"path": ".", "sortBy": "size"})).split("\n")
    assert sized[0] == f"[FILE] {'kb.bin'.ljust(30)} {'1.50 KB'.rjust(10)}"
    assert f"[DIR] {'sub'.ljust(30)} " in sized
    # The escaping link reports size 0 instead of the outside file's size.
    assert f"[FILE] {'link_file'.ljust(30)} {'0 B'.rjust(10)}" in sized
    assert sized[-2].startswith("Total: ") and sized[-1].startswith("Combined size: ")
    assert format_size(0) == "0 B" and format_size(1023) == "1023 B" and format_size(1024**3) == "1.00 GB"


async def test_read_multiple_files_format(world):
    server = build_server(make_roots([str(world["allowed"])]))
    r = await call(server, "read_multiple_files", paths=["sub/deep.md", "missing.txt"])
    first, second = text(r).split("\n---\n")
    assert first == "sub/deep.md:\n# deep\n\n"
    assert second.startswith("missing.txt: Error - ")


async def test_media_file_kinds(world):
    allowed = world["allowed"]
    (allowed / "pic.png").write_bytes(b"\x89PNG fake")
    (allowed / "tone.wav").write_bytes(b"RIFF fake")
    (allowed / "my doc.pdf").write_bytes(b"%PDF fake")
    server = build_server(make_roots([str(allowed)]))
    async with Client(server) as c:
        img = await c.call_tool("read_media_file", {"path": "pic.png"})
        wav = await c.call_tool("read_media_file", {"path": "tone.wav"})
        pdf = await c.call_tool("read_media_file", {"path": "my doc.pdf"})
    assert img.content[0].type == "image" and img.content[0].mime_type == "image/png"
    assert base64.b64decode(img.content[0].data) == b"\x89PNG fake"
    assert wav.content[0].type == "audio" and wav.content[0].mime_type == "audio/wav"
    res = pdf.content[0]
    assert res.type == "resource" and res.resource.mime_type == "application/octet-stream"
    assert res.resource.uri.endswith("my%20doc.pdf") and base64.b64decode(res.resource.blob) == b"%PDF fake"
    assert img.structured_content["content"][0]["type"] == "image"


async def test_edit_file_diff_dry_run_and_crlf(world):
    allowed = world["allowed"]
    (allowed / "crlf.txt").write_bytes(b"alpha\r\nbeta\r\ngamma\r\n")
    server = build_server(make_roots([str(allowed)]))
    async with Client(server) as c:
        dry = await c.call_tool(
            "edit_file", {"path": "crlf.txt", "edits": [{"oldText": "beta", "newText": "BETA"}], "dryRun": True}
        )
        assert (allowed / "crlf.txt").read_bytes() == b"alpha\r\nbeta\r\ngamma\r\n"
        real = await c.call_tool("edit_file", {"path": "crlf.txt", "edits": [{"oldText": "beta", "newText": "BETA"}]})
        missing = await c.call_tool("edit_file", {"path": "crlf.txt", "edits": [{"oldText": "nope", "newText": "x"}]})
    expected = (
        "```diff\nIndex: crlf.txt\n" + "=" * 67 + "\n--- crlf.txt\toriginal\n+++ crlf.txt\tmodified\n"
        "@@ -1,3 +1,3 @@\n alpha\n-beta\n+BETA\n gamma\n```\n\n"
    )
    assert text(dry) == expected and text(real) == expected
    assert (allowed / "crlf.txt").read_bytes() == b"alpha\r\nBETA\r\ngamma\r\n"
    assert missing.is_error and "Could not find exact match for edit:\nnope" in text(missing)


def test_edit_semantics():
    assert apply_edits("a x a", [("a", "$&b")]) == "$&b x a"  # first occurrence, literal replacement
    src = "def f():\n    if x:\n        return 1\n"
    out = apply_edits(src, [("if x:\n    return 1", "if y:\n    return 2")])
    assert out == "def f():\n    if y:\n        return 2\n"
    assert apply_edits("one\ntwo\n", [("one", "1"), ("1\ntwo", "done")]) == "done\n"
    with pytest.raises(ValueError, match="Could not find exact match"):
        apply_edits("abc", [("zzz", "y")])


def test_unified_diff_details():
    diff = unified_diff("f", "a\nb", "a\nc")
    assert diff.endswith("@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n")
    long_old = "".join(f"l{i}\n" for i in range(20))
    long_new = long_old.replace("l10\n", "L10\n")
    assert "@@ -7,9 +7,9 @@" in unified_diff("f", long_old, long_new)  # 4 lines of context
    assert fenced_diff("x ``` y\n").startswith("````diff\n")


async def test_tree_search_move_mkdir(world):
    allowed = world["allowed"]
    (allowed / "sub" / "node_modules").mkdir()
    (allowed / "sub" / "node_modules" / "dep.js").write_text("")
    (allowed / ".hidden.txt").write_text("")
    server = build_server(make_roots([str(allowed)]))
    async with Client(server) as c:
        tree = json.loads(
            text(await c.call_tool("directory_tree", {"path": "sub", "excludePatterns": ["node_modules"]}))
        )
        assert tree == [{"name": "deep.md", "type": "file"}]
        found = text(
            await c.call_tool("search_files", {"path": ".", "pattern": "**/*.txt", "excludePatterns": ["sub/**"]})
        )
        assert found.split("\n") == [str(allowed / ".hidden.txt"), str(allowed / "notes.txt")]
        top = text(await c.call_tool("search_files", {"path": ".", "pattern": "*.md"}))
        assert top == "No matches found"  # relative to the search root, like minimatch
        assert "link_dir" not in text(await c.call_tool("search_files", {"path": ".", "pattern": "**/secret*"}))
        made = await c.call_tool("create_directory", {"path": "a/b/c"})
        assert text(made) == "Successfully created directory a/b/c" and (allowed / "a" / "b" / "c").is_dir()
        again = await c.call_tool("create_directory", {"path": "a/b/c"})
        assert not again.is_error
        moved = await c.call_tool("move_file", {"source": "notes.txt", "destination": "a/notes.txt"})
        assert text(moved) == "Successfully moved notes.txt to a/notes.txt"
        (allowed / "other.txt").write_text("other")
        clash = await c.call_tool("move_file", {"source": "other.txt", "destination": "a/notes.txt"})
        assert clash.is_error and "Destination already exists" in text(clash)
        assert (allowed / "a" / "notes.txt").read_text() == "line1\nline2\nline3\n"
        orphan = await c.call_tool("write_file", {"path": "nope/x.txt", "content": "x"})
        assert orphan.is_error and "Parent directory does not exist" in text(orphan)
        allowed_text = text(await c.call_tool("list_allowed_directories", {}))
        assert allowed_text == f"Allowed directories:\n{allowed.resolve()}"
        info = text(await c.call_tool("get_file_info", {"path": "a/notes.txt"}))
        assert info.splitlines()[0] == "size: 18" and "isFile: true" in info and "permissions: " in info


def test_glob_semantics():
    assert glob_match("**/*.py", "a.py") and glob_match("**/*.py", "x/y/a.py")
    assert not glob_match("*.py", "x/a.py") and glob_match("*.py", ".hidden.py")
    assert glob_match("*.{md,txt}", "a.txt") and glob_match("data/?.csv", "data/1.csv")
    assert not glob_match("data/?.csv", "data/10.csv") and glob_match("[ab]*", "beta")


def test_unicode_spelling_of_the_root_resolves(tmp_path):
    root = tmp_path / unicodedata.normalize("NFC", "résumé")
    root.mkdir()
    (root / "cv.txt").write_text("cv")
    roots = make_roots([str(root)])
    nfd = str(tmp_path / unicodedata.normalize("NFD", "résumé") / "cv.txt")
    assert paths_module.validate(nfd, roots) == str((root / "cv.txt").resolve())


def test_startup_refuses_missing_roots(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        make_roots([str(tmp_path / "missing")])
