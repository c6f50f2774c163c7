"""The offline model's rules engine: conversation in, deterministic decision out."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.errors import ConfigError

DEFAULT_RULES = Path(__file__).with_name("default_rules.yaml")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][\w.]*)(?:\|(int|float|json|bool))?\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolCallSpec(_Strict):
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class HandoffSpec(_Strict):
    """`handoff: billing`, or `handoff: {to: billing, reason: "..."}` to give the transfer call a reason."""

    to: str
    reason: str | None = None


def _handoff_shorthand(value: Any) -> Any:
    return {"to": value} if isinstance(value, str) else value


class Step(_Strict):
    """One model turn: call tools, hand off, or reply."""

    call: list[ToolCallSpec] | None = None
    handoff: HandoffSpec | None = None
    reply: str | None = None

    _handoff = field_validator("handoff", mode="before")(_handoff_shorthand)

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        if sum(x is not None for x in (self.call, self.handoff, self.reply)) != 1:
            raise ValueError("a step has exactly one of 'call', 'handoff' or 'reply'")
        return self


class When(_Strict):
    user: str | None = None
    tool_output: str | None = None
    instructions: str | None = None
    # The reason given by the handoff that passed this agent the conversation ("" if none was given);
    # never matches before a handoff, so an agent that is handed the conversation back can tell.
    handoff_reason: str | None = None

    @field_validator("user", "tool_output", "instructions", "handoff_reason")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value


class Rule(_Strict):
    name: str | None = None
    when: When = Field(default_factory=When)
    call: list[ToolCallSpec] | None = None
    handoff: HandoffSpec | None = None
    reply: str | None = None
    steps: list[Step] | None = None

    _handoff = field_validator("handoff", mode="before")(_handoff_shorthand)

    @model_validator(mode="after")
    def _shape(self) -> Rule:
        short = [self.call is not None, self.handoff is not None, self.reply is not None]
        if self.steps is not None and any(short):
            raise ValueError("use either 'steps' or the call/handoff/reply shorthand, not both")
        if self.steps is None and not any(short):
            raise ValueError("a rule needs 'steps', 'call', 'handoff' or 'reply'")
        if self.call is not None and self.handoff is not None:
            raise ValueError("a rule cannot both call tools and hand off in one turn")
        return self

    def plan(self) -> list[Step]:
        """The rule's turns in order."""
        if self.steps is not None:
            return self.steps
        out: list[Step] = []
        if self.call is not None:
            out.append(Step(call=self.call))
        if self.handoff is not None:
            out.append(Step(handoff=self.handoff))
        if self.reply is not None:
            out.append(Step(reply=self.reply))
        return out


class RuleSet(_Strict):
    default: str = "I am the offline model and no rule matches: {input}"
    rules: list[Rule] = Field(default_factory=list)


def load_rules(path: Path | None) -> RuleSet:
    """Read a rules YAML file (the built-in defaults when path is None), bounded like agents.yaml."""
    from app.config.loader import read_yaml_data, validation_error

    path = path or DEFAULT_RULES
    if not path.is_file():
        raise ConfigError(f"{path}: offline rules file not found")
    data, positions = read_yaml_data(path)
    try:
        return RuleSet.model_validate(data or {})
    except ValidationError as exc:
        raise validation_error(exc, path, positions, RuleSet) from None


@dataclass
class Decision:
    """What the model does this turn: tool calls, or a final message."""

    calls: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)  # name, args, call_id
    message: str | None = None
    rule: str | None = None


@dataclass
class Conversation:
    """The parts of the model input that rules look at."""

    user: str
    instructions: str
    outputs: list[str]
    last_tool: str | None
    round: int
    size: int
    handoff_reason: str | None = None  # of the handoff that started this segment; None before any


def estimate_tokens(text: str) -> int:
    """A stable stand-in for a tokenizer: about four characters per token."""
    return max(1, (len(text) + 3) // 4)


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, dict) else getattr(item, key, None)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            text = _get(part, "text")
            if isinstance(text, str):
                parts.append(text)
        return "".join(parts)
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        return content["text"]
    return "" if content is None else str(content)


def call_output_text(item: Any) -> str:
    """What a model reads back from a hosted `mcp_call`: its output, or its error."""
    error = _get(item, "error")
    if not error:
        return _get(item, "output") or ""
    kind = _get(error, "type")
    if kind == "mcp_tool_execution_error":
        content = _get(error, "content") or []
        texts = [_get(c, "text") for c in content if isinstance(_get(c, "text"), str)]
        return "\n".join(t for t in texts if t) or json.dumps(content, default=str)
    label = "MCP error" if kind == "mcp_protocol_error" else "HTTP error"
    return f"{label} {_get(error, 'code')}: {_get(error, 'message')}"


def _step_of(item_id: str) -> str:
    # Hosted items of one model step share an id stem (see app.offline.hosted.step_ids).
    return item_id.partition("_")[2][:-2]


def flatten_hosted(items: list[Any]) -> list[Any]:
    """Hosted MCP items as the function calls and outputs they amount to, for the rules engine.

    An `mcp_call` is a call with its output; an `mcp_approval_request` is a call whose output comes
    later (the approved `mcp_call`, or the declined response's reason). Calls of one step stay
    together, so a step with several hosted calls counts as one round, as parallel calls do.
    """
    out: list[Any] = []
    calls: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    step = None

    def flush() -> None:
        nonlocal step
        out.extend(calls + outputs)
        calls.clear()
        outputs.clear()
        step = None

    for item in items:
        kind = _get(item, "type")
        if kind == "mcp_list_tools":
            continue
        if kind == "mcp_call" and _get(item, "approval_request_id"):
            flush()
            out.append(_output(_get(item, "approval_request_id"), call_output_text(item)))
        elif kind in ("mcp_call", "mcp_approval_request"):
            item_id = str(_get(item, "id"))
            if _step_of(item_id) != step:
                flush()
                step = _step_of(item_id)
            calls.append({"type": "function_call", "call_id": item_id, "name": _get(item, "name"), "arguments": ""})
            if kind == "mcp_call":
                outputs.append(_output(item_id, call_output_text(item)))
        elif kind == "mcp_approval_response":
            flush()
            if not _get(item, "approve"):
                reason = _get(item, "reason") or "The user declined this tool call, so it was not run."
                out.append(_output(_get(item, "approval_request_id"), reason))
        else:
            flush()
            out.append(item)
    flush()
    return out


def _output(call_id: Any, text: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": str(call_id), "output": text}


def read_conversation(instructions: str | None, items: str | list[Any]) -> Conversation:
    """Find the latest user message and what happened since (or since the latest handoff)."""
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if any(str(_get(i, "type") or "").startswith("mcp_") for i in items):
        items = flatten_hosted(items)
    start, user = 0, ""
    calls: dict[str, Any] = {}
    for i, item in enumerate(items):
        if _get(item, "role") == "user":
            start, user = i + 1, _text_of(_get(item, "content"))
        if _get(item, "type") == "function_call":
            calls[str(_get(item, "call_id"))] = item
    # A handoff starts a fresh segment: the receiving agent begins at round 0.
    reason = None
    for i in range(start, len(items)):
        item = items[i]
        call = calls.get(str(_get(item, "call_id")))
        if _get(item, "type") == "function_call_output" and str(_get(call, "name")).startswith("transfer_to_"):
            start, reason = i + 1, _handoff_reason(_get(call, "arguments"))
    outputs, rounds, last_tool, previous_was_call = [], 0, None, False
    for item in items[start:]:
        kind = _get(item, "type")
        if kind == "function_call":
            if not previous_was_call:
                rounds += 1
            previous_was_call = True
            last_tool = str(_get(item, "name"))
            continue
        previous_was_call = False
        if kind == "function_call_output":
            outputs.append(_text_of(_get(item, "output")))
    return Conversation(user, instructions or "", outputs, last_tool, rounds, len(items), reason)


def _handoff_reason(arguments: Any) -> str:
    try:
        data = json.loads(arguments or "{}")
    except (TypeError, ValueError):
        return ""
    reason = data.get("reason") if isinstance(data, dict) else None
    return reason if isinstance(reason, str) else ""


def decide(rules: RuleSet, conv: Conversation, offered: list[str]) -> Decision:
    """Pick the first rule that matches and whose tools are offered; else the default reply."""
    offered_set = set(offered)
    base = {
        "input": conv.user,
        "output": conv.outputs[-1] if conv.outputs else "",
        "outputs": "\n".join(conv.outputs),
        "tool": conv.last_tool or "",
        "tools": ", ".join(offered) or "none",
        "round": str(conv.round),
    }
    for i, out in enumerate(conv.outputs, start=1):
        base[f"output{i}"] = out
    for index, rule in enumerate(rules.rules):
        groups = _match(rule.when, conv)
        if groups is None:
            continue
        plan = rule.plan()
        step_no = 0 if rule.when.tool_output is not None else conv.round
        if step_no >= len(plan):
            continue
        step = plan[step_no]
        values = {**base, **groups}
        label = rule.name or f"rule {index + 1}"
        if step.reply is not None:
            return Decision(message=render(step.reply, values), rule=label)
        wanted = [f"transfer_to_{step.handoff.to}"] if step.handoff else [c.tool for c in step.call or []]
        if not all(name in offered_set for name in wanted):
            continue
        if step.handoff:
            # The arguments match the handoff's input schema: an optional reason (app.build.HandoffReason).
            reason = {"reason": render(step.handoff.reason, values)} if step.handoff.reason else {}
            return Decision(calls=[(wanted[0], reason, _call_id(conv, 0))], rule=label)
        calls = [
            (spec.tool, render_args(spec.args, values), _call_id(conv, n)) for n, spec in enumerate(step.call or [])
        ]
        return Decision(calls=calls, rule=label)
    return Decision(message=render(rules.default, base), rule="default")


def _match(when: When, conv: Conversation) -> dict[str, str] | None:
    groups: dict[str, str] = {}
    checks = (
        (when.user, conv.user),
        (when.instructions, conv.instructions),
        (when.handoff_reason, conv.handoff_reason),
    )
    for pattern, text in checks:
        if pattern is None:
            continue
        if text is None:
            return None
        m = re.search(pattern, text)
        if m is None:
            return None
        groups.update({k: v for k, v in m.groupdict().items() if v is not None})
    if when.tool_output is not None:
        if not conv.outputs:
            return None
        m = re.search(when.tool_output, conv.outputs[-1])
        if m is None:
            return None
        groups.update({k: v for k, v in m.groupdict().items() if v is not None})
    return groups


def _call_id(conv: Conversation, n: int) -> str:
    seed = f"{conv.user}\x00{conv.size}\x00{conv.round}\x00{n}"
    return "call_" + hashlib.sha1(seed.encode()).hexdigest()[:20]


def _lookup(name: str, values: dict[str, str]) -> Any:
    head, _, rest = name.partition(".")
    if head not in values:
        raise KeyError(name)
    value: Any = values[head]
    if not rest:
        return value
    try:
        value = json.loads(value)
    except (TypeError, ValueError):
        raise KeyError(name) from None
    for part in rest.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(name)
    return value


def render(template: str, values: dict[str, str]) -> str:
    """Replace {name} and {output.key.path}; unknown names stay as written; {{ }} escape braces."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) in ("{{", "}}"):
            return m.group(0)[0]
        try:
            value = _lookup(m.group(1), values)
        except KeyError:
            return m.group(0)
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    return _PLACEHOLDER.sub(sub, template)


def render_args(args: Any, values: dict[str, str]) -> Any:
    """Template every string in the arguments; a lone `{x|int}` (float/json/bool) converts type."""
    if isinstance(args, dict):
        return {k: render_args(v, values) for k, v in args.items()}
    if isinstance(args, list):
        return [render_args(v, values) for v in args]
    if not isinstance(args, str):
        return args
    whole = _PLACEHOLDER.fullmatch(args)
    if whole and whole.group(1):
        try:
            value = _lookup(whole.group(1), values)
        except KeyError:
            return args
        kind = whole.group(2)
        try:
            if kind == "int":
                return int(value)
            if kind == "float":
                return float(value)
            if kind == "bool":
                return str(value).lower() in ("1", "true", "yes", "on")
            if kind == "json":
                return json.loads(value) if isinstance(value, str) else value
        except ValueError:
            return value
        return value
    return render(args, values)
