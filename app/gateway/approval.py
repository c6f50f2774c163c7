"""Approvals at the gateway: the calling client is asked by elicitation, or the call is refused.

On 2026-07-28 the question travels as an `InputRequiredResult`; the client answers by calling
again with the answer and the `request_state` the gateway signed, so an answer is good only for
the call it was asked about (same caller, profile, tool and arguments) and only for a while. On
older protocols the gateway sends `elicitation/create` mid-call.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from mcp import types

from app.filters import is_destructive

KEY = "approval"
MODERN = "2026-07-28"
STATE_TTL = 600.0  # seconds an asked question may wait for its answer
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"approve": {"type": "boolean", "title": "Run this tool call?", "default": False}},
    "required": ["approve"],
}


def is_modern(ctx: Any) -> bool:
    """Whether the client on `ctx` speaks the 2026-07-28 protocol (input requests, list_changed on its stream)."""
    return str(getattr(ctx, "protocol_version", "") or "") >= MODERN


def needs_approval(setting: Any, tool: Any, prefixed: str) -> bool:
    """never | always | destructive | a list of globs (on the prefixed or the original name)."""
    if setting == "always":
        return True
    if setting == "destructive":
        return is_destructive(tool)
    if isinstance(setting, list):
        return any(fnmatch.fnmatchcase(n, g) for g in setting for n in (prefixed, tool.name))
    return False


def _can_elicit(ctx: Any) -> bool:
    capabilities = getattr(ctx.session, "client_capabilities", None)
    elicitation = getattr(capabilities, "elicitation", None)
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _accepted(answer: Any) -> bool:
    content = getattr(answer, "content", None) or {}
    return getattr(answer, "action", None) == "accept" and content.get("approve") is True


class Approvals:
    """Asks callers to approve calls; signs what was asked so an answer cannot be replayed elsewhere."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)  # per process: a restart voids questions still open

    def _subject(self, who: str, profile: str, name: str, arguments: dict[str, Any]) -> str:
        args = hashlib.sha256(json.dumps(arguments, sort_keys=True, default=str).encode()).hexdigest()
        return json.dumps([who, profile, name, args])

    def _sign(self, subject: str) -> str:
        payload = json.dumps([subject, time.time() + STATE_TTL]).encode()
        mac = hmac.new(self._key, payload, hashlib.sha256).hexdigest()
        return base64.urlsafe_b64encode(payload).decode() + "." + mac

    def _verify(self, state: str | None, subject: str) -> bool:
        if not state or "." not in state:
            return False
        encoded, mac = state.rsplit(".", 1)
        try:
            payload = base64.urlsafe_b64decode(encoded.encode())
            asked, expires = json.loads(payload)
        except (ValueError, TypeError):
            return False
        good = hmac.compare_digest(mac, hmac.new(self._key, payload, hashlib.sha256).hexdigest())
        return good and asked == subject and time.time() < float(expires)

    async def decide(
        self, ctx: Any, who: str, profile: str, params: types.CallToolRequestParams
    ) -> str | types.InputRequiredResult:
        """ "approved", "declined" or "cannot ask" — or the question to return to the client first."""
        arguments = dict(params.arguments or {})
        subject = self._subject(who, profile, params.name, arguments)
        shown = json.dumps(arguments, ensure_ascii=False, default=str)
        message = f"The agentdeck gateway needs your approval to run {params.name} with {shown[:400]}."
        if is_modern(ctx):
            answer = (params.input_responses or {}).get(KEY)
            if answer is not None and self._verify(params.request_state, subject):
                return "approved" if _accepted(answer) else "declined"
            if not _can_elicit(ctx):
                return "cannot ask"
            request = types.ElicitRequest(
                params=types.ElicitRequestFormParams(message=message, requested_schema=SCHEMA)  # type: ignore[arg-type]
            )
            return types.InputRequiredResult(input_requests={KEY: request}, request_state=self._sign(subject))
        if not _can_elicit(ctx):
            return "cannot ask"
        answer = await ctx.session.elicit_form(message, SCHEMA, related_request_id=ctx.request_id)
        return "approved" if _accepted(answer) else "declined"
