"""Building agents from config, checked with agents.testing.ScriptedModel (no servers needed)."""

from __future__ import annotations

from agents import HostedMCPTool, Runner
from agents.testing import ScriptedModel, assistant_message

from app.build import agent_order, build_agents, prefixed_name
from app.config import load_config
from app.providers import Models


class ScriptedModels(Models):
    """Every agent gets the same scripted model."""

    def __init__(self, loaded, model):
        super().__init__(loaded)
        self.model = model

    def model_for(self, agent_name):
        return self.model


CONFIG = """
servers:
  docs:
    transport: hosted
    server_url: https://example.com/mcp
    label: docs
    allowed_tools: [search]
    headers: {X-Team: blue}
    approval: {always: [delete]}
agents:
  main:
    instructions: Use docs.
    servers: [docs]
    handoffs: [helper]
    as_tools: [expert]
    model_settings: {temperature: 0.1, reasoning: {effort: low}}
  helper: {description: Helps}
  expert: {description: Knows things}
defaults:
  model_settings: {max_tokens: 300, temperature: 0.9}
"""


async def test_hosted_tool_handoffs_and_agent_tools_reach_the_model(write_config):
    loaded = load_config(write_config(CONFIG), {})
    model = ScriptedModel([[assistant_message("ok")]])
    agents = build_agents(loaded, ScriptedModels(loaded, model), servers={})
    main = agents["main"]
    hosted = [t for t in main.tools if isinstance(t, HostedMCPTool)]
    assert hosted[0].tool_config == {
        "type": "mcp",
        "server_label": "docs",
        "require_approval": {"always": {"tool_names": ["delete"]}},
        "server_url": "https://example.com/mcp",
        "headers": {"X-Team": "blue"},
        "allowed_tools": ["search"],
    }
    assert main.model_settings.temperature == 0.1 and main.model_settings.max_tokens == 300
    assert main.model_settings.reasoning is not None and main.model_settings.reasoning.effort == "low"
    result = await Runner.run(main, "hi")
    assert result.final_output == "ok"
    call = model.first_call
    assert call is not None
    names = [getattr(t, "name", type(t).__name__) for t in call.tools]
    assert "ask_expert" in names and any(isinstance(t, HostedMCPTool) for t in call.tools)
    assert [h.tool_name for h in call.handoffs] == ["transfer_to_helper"]
    assert call.system_instructions == "Use docs."


def test_agent_order_builds_dependencies_first(write_config):
    loaded = load_config(write_config(CONFIG), {})
    order = agent_order(loaded)
    assert order.index("helper") < order.index("main") and order.index("expert") < order.index("main")


def test_prefixed_names_are_safe_and_bounded():
    assert prefixed_name("fs", "read_file") == "fs__read_file"
    assert prefixed_name("my-srv", "weird.name/x") == "my-srv__weird_name_x"
    long = prefixed_name("server", "t" * 100)
    assert len(long) == 64 and long.startswith("server__ttt")
    assert long != prefixed_name("server", "t" * 99)
