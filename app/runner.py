"""Run one question through an agent, resolving approvals, and report what happened."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from app.approvals import ApprovalRequest, Approver, RunContext, ask, declined_message
from app.deck import Deck
from app.errors import RunError
from app.telemetry import ToolCallLog, ToolCallRecord, recording


@dataclass
class RunOutcome:
    output: str
    agent: str
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    duration_ms: float = 0.0
    approvals: int = 0
    warnings: list[str] = field(default_factory=list)
    # Estimated US dollars from the price table; None for a model without a price.
    cost_usd: float | None = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The `run --json` shape."""
        return {
            "output": self.output,
            "agent": self.agent,
            "tool_calls": [c.as_dict() for c in self.tool_calls],
            "approvals": self.approvals,
            "usage": self.usage,
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
            "duration_ms": round(self.duration_ms, 1),
        }


def server_of(deck: Deck, tool_name: str) -> str | None:
    """Which connected server offers a tool (by its raw or prefixed name), from cached lists."""
    from app.build import prefixed_name

    for name, server in deck.servers.items():
        for tool in server.cached_tool_names() or []:
            if tool_name in (tool, prefixed_name(name, tool)):
                return name
    return None


def usage_dict(usage: Any) -> dict[str, int]:
    details = getattr(usage, "input_tokens_details", None)
    return {
        "requests": usage.requests,
        "input_tokens": usage.input_tokens,
        "cached_input_tokens": getattr(details, "cached_tokens", 0) or 0,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def add_sampling(usage: dict[str, int], sampled: dict[str, int]) -> dict[str, int]:
    """A run's usage with the model calls servers' sampling requests made during it."""
    for key in ("requests", "input_tokens", "output_tokens"):
        usage[key] += sampled[key]
    usage["total_tokens"] += sampled["input_tokens"] + sampled["output_tokens"]
    usage["sampling_requests"] = sampled["requests"]
    return usage


class _RunAudit:
    """The run_end record of one run: its outcome when it finished, else how it stopped."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.done = False

    def finish(self, output: str, usage: dict[str, int], last_agent: str) -> None:
        """The run answered."""
        if self.run is not None and not self.done:
            self.run.end("ok", output, usage, last_agent=last_agent)
        self.done = True

    def fail(self, status: str, error: str | None = None) -> None:
        """The run stopped without an answer: error or cancelled."""
        if self.run is not None and not self.done:
            self.run.end(status, error=error)
        self.done = True


@contextlib.contextmanager
def audited_run(deck: Deck, agent: str, question: Any, log: ToolCallLog, row: str | None) -> Iterator[_RunAudit]:
    """Attribute a run's records to a new audit run (when the deck has a trail): run_start, then run_end."""
    from app.otel import Turns, tracer

    run = deck.audit.run(agent, row) if deck.audit is not None else None
    log.audit = run
    state = _RunAudit(run)
    if run is not None:
        run.start(question)
    attributes = {"agentdeck.agent": agent, **({"agentdeck.row": row} if row else {})}
    if run is not None:
        attributes["agentdeck.run_id"] = run.id
    # The run's span is current while it runs: model spans and the mcp client's tool-call spans
    # (and the traceparent it sends to servers) hang under it.
    with tracer().start_as_current_span("agentdeck run", attributes=attributes) as span:
        # Turns only where spans carry something: without telemetry they are work on every model request.
        log.turns = turns = Turns(span) if span.get_span_context().is_valid else None
        try:
            yield state
        except BaseException as exc:
            cancelled = isinstance(exc, asyncio.CancelledError | KeyboardInterrupt)
            state.fail("cancelled" if cancelled else "error", None if cancelled else str(exc))
            span.set_attribute("agentdeck.status", "cancelled" if cancelled else "error")
            raise
        finally:
            if turns is not None:
                turns.close()
            log.turns = None
        state.fail("error", "the run stopped without an answer")


# (agent, input, log, max_turns, run_config) -> the finished run result; the default runs unstreamed.
Driver = Callable[[Any, Any, ToolCallLog, int, Any], Awaitable[Any]]


async def run_question(
    deck: Deck,
    question: str | list[dict[str, Any]],
    approver: Approver,
    log: ToolCallLog | None = None,
    drive: Driver | None = None,
    row: str | None = None,
) -> RunOutcome:
    """Run `question` on the deck's agent until it answers; approvals go through `approver`.

    Pass `log` to keep the tool calls a run made even when it fails, and `drive` to run it
    another way (streamed to a terminal).
    """
    from agents import RunConfig

    from app.prices import PriceTable
    from app.tracing import configure

    agent = deck.agent
    config = deck.loaded.config.agents[agent.name]
    traced = configure(deck.loaded, deck.agents)
    run_config = RunConfig(tracing_disabled=not traced, workflow_name="agentdeck run")
    started = time.perf_counter()
    with recording(log) as log, audited_run(deck, agent.name, question, log, row) as audit:
        try:
            if drive is None:
                result = await _run_unstreamed(agent, question, approver, deck, config.max_turns, run_config)
            else:
                result = await drive(agent, question, log, config.max_turns, run_config)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - rendered as one clear line by the CLI
            raise RunError(describe_run_error(exc)) from exc
        output = result.final_output
        text = output if isinstance(output, str) else json.dumps(output, default=str)
        usage = add_sampling(usage_dict(result.context_wrapper.usage), deck.interaction.take_usage())
        audit.finish(text, usage, result.last_agent.name)
    prices = PriceTable(deck.loaded.config.defaults.prices)
    return RunOutcome(
        output=text,
        agent=result.last_agent.name,
        tool_calls=list(log.calls),
        usage=usage,
        duration_ms=(time.perf_counter() - started) * 1000,
        approvals=log.approvals,
        warnings=list(log.warnings),
        cost_usd=prices.cost(deck.models.model_name(result.last_agent.name), usage),
    )


async def _run_unstreamed(
    agent: Any, question: Any, approver: Approver, deck: Deck, max_turns: int, run_config: Any
) -> Any:
    from agents import Runner

    context = RunContext(approver)
    result = await Runner.run(agent, question, context=context, max_turns=max_turns, run_config=run_config)
    while result.interruptions:
        state, _ = await resolve_approvals(result, deck, approver)
        result = await Runner.run(agent, state, max_turns=max_turns, run_config=run_config)
    return result


async def resolve_approvals(result: Any, deck: Deck, approver: Approver) -> tuple[Any, list[tuple[str, bool, float]]]:
    """Ask about each interruption of a paused run: its state ready to resume, and (call id, approved, seconds asked)."""
    state = result.to_state()
    decided = []
    for item in result.interruptions:
        tool = item.tool_name or "?"
        request = ApprovalRequest(tool, server_of(deck, tool), item.arguments or "{}")
        asked = time.perf_counter()
        ok, reason = await ask(approver, request)
        decided.append((getattr(item.raw_item, "call_id", None) or "", ok, time.perf_counter() - asked))
        if ok:
            state.approve(item)
        else:
            state.reject(item, rejection_message=declined_message(reason))
    return state, decided


def describe_run_error(exc: BaseException) -> str:
    """One line for a failed run: model HTTP errors, connection errors, max turns, SDK errors."""
    import openai
    from agents.exceptions import MaxTurnsExceeded

    if isinstance(exc, openai.APIStatusError):
        detail = exc.message if hasattr(exc, "message") else str(exc)
        return f"the model request failed with HTTP {exc.status_code} from {exc.request.url}: {detail}"
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot reach the model endpoint {exc.request.url}: {exc}"
    if isinstance(exc, MaxTurnsExceeded):
        return f"the agent did not finish within its max_turns ({exc})"
    from app.connect import describe_exception

    return f"the run failed: {describe_exception(exc)}"
