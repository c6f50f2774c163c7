"""A small MCP server for agentdeck's tests: tools that ask the client for input.

Usage: python asker.py [stdio|http] [--port N] [--legacy]

Tools: confirm_address (form elicitation), summarize (sampling), list_my_roots (roots),
open_link (URL-mode elicitation), slow_count (progress notifications), whoami (the
client's name and version), more_prompts (adds a prompt, announces the list changed) and
research (sampling with tools: the client's model may call the server's lookup tool).

How the asking works (mcp 2.3):
- confirm_address, summarize and list_my_roots use resolvers: a parameter annotated
  `Annotated[T, Resolve(fn)]` whose resolver returns an `Elicit(...)`, `Sample(...)` or
  `ListRoots()` marker. The SDK picks the transport from the negotiated protocol version:
  on 2026-07-28 it returns an `InputRequiredResult` (the client answers its callbacks and
  retries with `input_responses`/`request_state`); on 2025-11-25 and older it sends a
  standalone `elicitation/create`, `sampling/createMessage` or `roots/list` request mid-call.
- open_link: resolvers only do form elicitation, so this tool does both by hand. On
  2026-07-28 it returns an `InputRequiredResult` carrying a URL-mode `ElicitRequest` under
  the key "e1" and reads the answer from `ctx.input_responses` on the retry (2026-07-28
  drops `elicitationId` from the wire, so the key names it); older versions use
  `ctx.elicit_url(..., elicitation_id="e1")`.
"""

from __future__ import annotations

import argparse
from typing import Annotated, Literal

import anyio
from mcp.server.mcpserver import Context, Elicit, ElicitationResult, ListRoots, MCPServer, Resolve, Sample
from mcp.shared.exceptions import MCPError
from mcp.types import (
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    ClientCapabilities,
    CreateMessageResult,
    CreateMessageResultWithTools,
    ElicitationCapability,
    ElicitRequest,
    ElicitRequestURLParams,
    ElicitResult,
    ErrorData,
    InputRequiredResult,
    JSONRPCError,
    JSONRPCRequest,
    ListRootsResult,
    MissingRequiredClientCapabilityErrorData,
    SamplingMessage,
    TextContent,
    Tool,
    ToolResultContent,
    ToolUseContent,
    UrlElicitationCapability,
)
from mcp_types.version import is_version_at_least
from pydantic import BaseModel

INPUT_REQUIRED_VERSION = "2026-07-28"  # first version that asks via InputRequiredResult
AUTHORIZE_URL = "https://example.com/authorize"
URL_KEY = "e1"  # the elicitation id (legacy) and the input_requests key (2026-07-28)


class Confirmation(BaseModel):
    """The form confirm_address asks the user to fill in."""

    confirm: bool
    note: str | None = None
    speed: Literal["standard", "express"] = "standard"


def ask_confirmation(address: str) -> Elicit[Confirmation]:
    return Elicit(f"Ship to {address}?", Confirmation)


def ask_summary(text: str) -> Sample:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=f"Summarize: {text}"))
    return Sample([message], max_tokens=100)


# The tool research offers the client's model when it samples (sampling with tools, 2025-11-25+).
LOOKUP = Tool(
    name="lookup",
    description="Look a term up in the server's notes.",
    input_schema={"type": "object", "properties": {"term": {"type": "string"}}, "required": ["term"]},
)


def lookup(term: str) -> str:
    return f"{term} was first described in 1843"


def research_first(topic: str) -> Sample:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=f"Research {topic}"))
    return Sample([message], max_tokens=200, tools=[LOOKUP])


def research_second(
    topic: str, first: Annotated[CreateMessageResultWithTools, Resolve(research_first)]
) -> Sample | CreateMessageResultWithTools:
    """Run the tool the model asked for and sample again with its result (or keep a plain answer)."""
    calls = [block for block in first.content_as_list if isinstance(block, ToolUseContent)]
    if not calls:
        return first
    results = [
        ToolResultContent(tool_use_id=call.id, content=[TextContent(type="text", text=lookup(**call.input))])
        for call in calls
    ]
    messages = [
        SamplingMessage(role="user", content=TextContent(type="text", text=f"Research {topic}")),
        SamplingMessage(role="assistant", content=first.content_as_list),
        SamplingMessage(role="user", content=results),
    ]
    return Sample(messages, max_tokens=200, tools=[LOOKUP])


def ask_roots() -> ListRoots:
    return ListRoots()


def uses_input_required(ctx: Context) -> bool:
    """True when this call must ask via InputRequiredResult rather than a pushed request."""
    version = ctx.protocol_version
    return version is not None and is_version_at_least(version, INPUT_REQUIRED_VERSION)


def require_url_elicitation(ctx: Context) -> None:
    """Refuse, as the SDK's resolvers do for their capabilities, when the client lacks URL elicitation."""
    caps = ctx.client_capabilities
    if caps is None or caps.elicitation is None or caps.elicitation.url is None:
        required = ClientCapabilities(elicitation=ElicitationCapability(url=UrlElicitationCapability()))
        data = MissingRequiredClientCapabilityErrorData(required_capabilities=required)
        raise MCPError(
            code=MISSING_REQUIRED_CLIENT_CAPABILITY,
            message="Client did not declare the url elicitation capability required by open_link",
            data=data.model_dump(by_alias=True, mode="json", exclude_none=True),
        )


def build() -> MCPServer:
    mcp = MCPServer("asker", instructions="Tools that ask the client for input.", log_level="WARNING")

    @mcp.tool()
    def confirm_address(
        address: str, answer: Annotated[ElicitationResult[Confirmation], Resolve(ask_confirmation)]
    ) -> str:
        """Ask the user to confirm a shipping address (form elicitation)."""
        if answer.action == "decline":
            return "declined"
        if answer.action == "cancel":
            return "cancelled"
        if not answer.data.confirm:
            return "not confirmed"
        return f"shipping to {address} by {answer.data.speed}"

    @mcp.tool()
    def summarize(text: str, sampled: Annotated[CreateMessageResult, Resolve(ask_summary)]) -> str:
        """Ask the client's model to summarize text (sampling)."""
        content = sampled.content
        body = content.text if isinstance(content, TextContent) else f"<{content.type}>"
        return f"summary: {body}\nmodel: {sampled.model}"

    @mcp.tool()
    def list_my_roots(roots: Annotated[ListRootsResult, Resolve(ask_roots)]) -> str:
        """List the client's roots, one URI a line."""
        return "\n".join(str(root.uri) for root in roots.roots) or "no roots"

    @mcp.tool()
    async def open_link(ctx: Context) -> str | InputRequiredResult:
        """Ask the user to open an authorization page (URL-mode elicitation)."""
        message = "Please authorize access"
        require_url_elicitation(ctx)
        if uses_input_required(ctx):
            answer = (ctx.input_responses or {}).get(URL_KEY)
            if not isinstance(answer, ElicitResult):  # first round (or a foreign answer): ask
                params = ElicitRequestURLParams(message=message, url=AUTHORIZE_URL, elicitation_id=URL_KEY)
                return InputRequiredResult(input_requests={URL_KEY: ElicitRequest(params=params)})
            action = answer.action
        else:
            action = (await ctx.elicit_url(message, AUTHORIZE_URL, URL_KEY)).action
        return {"accept": "url accepted", "decline": "url declined", "cancel": "url cancelled"}[action]

    @mcp.tool()
    async def slow_count(n: int, ctx: Context) -> str:
        """Count to n, reporting progress at each step."""
        for i in range(1, n + 1):
            await anyio.sleep(0.05)
            await ctx.report_progress(i, n, f"step {i} of {n}")
        return f"counted {n}"

    @mcp.tool()
    async def noisy(ctx: Context) -> str:
        """Send two log messages (MCP logging), then answer."""
        await ctx.log("info", "noisy is working")
        await ctx.log("warning", {"disk": "almost full"}, logger_name="storage")
        return "made some noise"

    @mcp.tool()
    def research(topic: str, final: Annotated[CreateMessageResultWithTools, Resolve(research_second)]) -> str:
        """Research a topic with the client's model, which may call this server's lookup tool."""
        return " ".join(b.text for b in final.content_as_list if isinstance(b, TextContent))

    @mcp.prompt()
    def review(topic: str) -> str:
        """Ask for a review of one topic (a prompt with a required argument)."""
        return f"Please review {topic}."

    @mcp.tool()
    async def more_prompts(ctx: Context) -> str:
        """Add a prompt and announce that the prompt list changed."""

        def extra() -> str:
            """A prompt that appears at run time."""
            return "An extra prompt."

        mcp.prompt(name="extra")(extra)
        await ctx.notify_prompts_changed()  # 2026-07-28 clients listen for this
        return "added"

    @mcp.tool()
    def protocol(ctx: Context) -> str:
        """The protocol version this call was made under."""
        return str(ctx.protocol_version)

    @mcp.tool()
    async def whoami(ctx: Context) -> str:
        """The client's name and version, as it introduced itself."""
        params = ctx.request_context.session.client_params
        info = params.client_info if params is not None else None
        return f"{info.name} {info.version}" if info is not None else "unknown client"

    return mcp


async def serve_legacy_stdio(server: MCPServer) -> None:
    """Serve stdio as a 2025-era server: server/discover is refused before the server sees it.

    A client then falls back to the initialize handshake, and on that connection this server asks
    by pushing elicitation, sampling and roots requests mid-call instead of input-required results.
    """
    from mcp.server.stdio import stdio_server
    from mcp.shared.message import SessionMessage

    async with stdio_server() as (read, write):
        send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](16)

        async def refuse_discover() -> None:
            async with send:
                async for item in read:
                    message = getattr(item, "message", None)
                    if isinstance(message, JSONRPCRequest) and message.method == "server/discover":
                        error = ErrorData(code=METHOD_NOT_FOUND, message="Method not found")
                        await write.send(SessionMessage(JSONRPCError(jsonrpc="2.0", id=message.id, error=error)))
                        continue
                    await send.send(item)

        async with anyio.create_task_group() as group:
            group.start_soon(refuse_discover)
            lowlevel = server._lowlevel_server
            await lowlevel.run(receive, write, lowlevel.create_initialization_options())  # type: ignore[arg-type]
            group.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", nargs="?", default="stdio", choices=["stdio", "http"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--legacy", action="store_true", help="speak only the 2025 protocol (pushed requests)")
    args = parser.parse_args()
    server = build()
    if args.legacy:
        anyio.run(serve_legacy_stdio, server)
        return
    if args.transport == "stdio":
        server.run()
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
