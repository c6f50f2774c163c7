"""Tool filters, policies and approval mapping (unit level, real mcp Tool objects)."""

from __future__ import annotations

import pytest
from agents import Agent, RunContextWrapper
from agents.mcp import ToolFilterContext
from mcp.types import Tool, ToolAnnotations

from app.approvals import GlobApproval, local_require_approval
from app.config.models import ApprovalRules, ToolGlobs
from app.errors import ConfigError
from app.filters import ServerToolFilter, is_destructive, is_read_only, load_callable, passes_globs, passes_policy


def tool(name: str, read_only: bool | None = None, destructive: bool | None = None) -> Tool:
    ann = None
    if read_only is not None or destructive is not None:
        ann = ToolAnnotations(read_only_hint=read_only, destructive_hint=destructive)
    return Tool(name=name, input_schema={"type": "object"}, annotations=ann)


def ctx(agent: str = "main") -> ToolFilterContext:
    return ToolFilterContext(run_context=RunContextWrapper(context=None), agent=Agent(name=agent), server_name="s")


def test_globs_allow_then_block():
    globs = ToolGlobs(allow=["read_*", "list_*"], block=["read_secret*"])
    assert passes_globs("read_file", globs)
    assert passes_globs("list_directory", globs)
    assert not passes_globs("write_file", globs)
    assert not passes_globs("read_secrets", globs)
    assert passes_globs("anything", None)
    assert not passes_globs("x", ToolGlobs(allow=[]))
    assert passes_globs("Read_file", ToolGlobs(block=["read_*"]))  # globs are case-sensitive


def test_annotation_semantics_follow_mcp_defaults():
    assert is_read_only(tool("a", read_only=True))
    assert not is_destructive(tool("a", read_only=True))
    # No annotations: not read-only, and destructive by MCP's default.
    assert not is_read_only(tool("b")) and is_destructive(tool("b"))
    assert not is_destructive(tool("c", read_only=False, destructive=False))
    assert is_destructive(tool("d", read_only=False, destructive=True))


def test_policies():
    ro, safe_write, plain, destroy = tool("ro", True), tool("w", False, False), tool("p"), tool("d", False, True)
    assert [t.name for t in (ro, safe_write, plain, destroy) if passes_policy("read_only", t)] == ["ro"]
    assert [t.name for t in (ro, safe_write, plain, destroy) if passes_policy("no_destructive", t)] == ["ro", "w"]
    assert all(passes_policy(None, t) for t in (ro, safe_write, plain, destroy))


async def test_server_filter_composes_server_agent_policy_and_callable():
    calls = []

    async def custom(context, t):
        calls.append((context.agent.name, t.name))
        return t.name != "read_b"

    f = ServerToolFilter(
        server_globs=ToolGlobs(block=["read_c"]),
        agent_globs={"main": ToolGlobs(allow=["read_*"]), "other": None},
        policy="read_only",
        custom=custom,
    )
    tools = [
        tool("read_a", True),
        tool("read_b", True),
        tool("read_c", True),
        tool("read_d", False, True),
        tool("x", True),
    ]
    main = [t.name for t in tools if await f(ctx("main"), t)]
    other = [t.name for t in tools if await f(ctx("other"), t)]
    assert main == ["read_a"]
    assert other == ["read_a", "x"]
    # The callable only sees what survived the cheaper filters.
    assert ("main", "read_c") not in calls and ("main", "x") not in calls


async def test_sync_callable_filter(tmp_path):
    (tmp_path / "myfilters.py").write_text("def only_a(ctx, tool):\n    return tool.name.startswith('a')\n")
    fn = load_callable("myfilters:only_a", tmp_path, "servers.s.filter")
    f = ServerToolFilter(None, {}, None, fn)
    assert await f(ctx(), tool("abc")) and not await f(ctx(), tool("b"))


def test_bad_callable_references(tmp_path):
    with pytest.raises(ConfigError, match="cannot import module 'no_such_mod_xyz'"):
        load_callable("no_such_mod_xyz:f", tmp_path, "servers.s.filter")
    (tmp_path / "modx.py").write_text("VALUE = 1\n")
    with pytest.raises(ConfigError, match="has no function 'VALUE'"):
        load_callable("modx:VALUE", tmp_path, "servers.s.filter")


def test_local_approval_mapping():
    assert local_require_approval("never") is None
    assert local_require_approval("always") == "always"
    destructive = local_require_approval("destructive")
    assert destructive(None, None, tool("d", False, True)) is True
    assert destructive(None, None, tool("r", True)) is False
    assert destructive(None, None, tool("w", False, False)) is False
    rules = local_require_approval(ApprovalRules(always=["*"], never=["list_*"]))
    assert isinstance(rules, GlobApproval)
    assert rules(None, None, tool("delete_file")) is True
    assert rules(None, None, tool("list_directory")) is False
