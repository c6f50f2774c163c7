"""What servers ask of agentdeck — elicitation, sampling, roots — under each server's policy.

The policy comes from the config (`elicitation`, `sampling`, `roots` on a server entry); who answers
comes from the command: `Interaction.asker` is a terminal for `run`, the chat's prompt in chat, and
nobody (decline) in batch or without a terminal. Sampling is answered by a model: the server's
`sampling.provider`/`model`, else the model of the agent that is running.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from app.config.models import LocalServerConfig
from app.mcp_client import ClientHooks

if TYPE_CHECKING:
    from app.config.loader import LoadedConfig
    from app.providers import Models


Action = Literal["accept", "decline", "cancel"]


class Asker(Protocol):
    """How a command asks its user on a server's behalf."""

    async def form(self, server: str, message: str, schema: dict[str, Any]) -> tuple[Action, Any]:
        """(action, content) for a form: accept with the values, decline or cancel."""
        ...

    async def url(self, server: str, message: str, url: str) -> Action:
        """accept (the user went to the URL), decline or cancel."""
        ...

    async def allow_sampling(self, server: str, preview: str) -> bool:
        """Whether the server may use the model for this request (policy `ask`)."""
        ...


class Declining:
    """No one to ask (batch, no terminal, `--elicit decline`): forms and URLs are declined."""

    async def form(self, server: str, message: str, schema: dict[str, Any]) -> tuple[Action, Any]:
        return "decline", None

    async def url(self, server: str, message: str, url: str) -> Action:
        return "decline"

    async def allow_sampling(self, server: str, preview: str) -> bool:
        return False


class PromptAsker:
    """Asks a person through two functions: `ask` reads one answer to a prompt, `show` prints a line."""

    def __init__(self, ask: Callable[[str], Awaitable[str]], show: Callable[[str], None]) -> None:
        self.ask = ask
        self.show = show

    async def form(self, server: str, message: str, schema: dict[str, Any]) -> tuple[Action, Any]:
        from app.elicit_form import fill_form

        return await fill_form(server, message, schema, self.ask, self.show)

    async def url(self, server: str, message: str, url: str) -> Action:
        self.show(f"{server} asks you to open {url}\n  {message}")
        answer = (await self.ask("  done? [y]es / [n]o / [c]ancel: ")).strip().lower()
        return "accept" if answer in ("y", "yes") else "cancel" if answer in ("c", "cancel") else "decline"

    async def allow_sampling(self, server: str, preview: str) -> bool:
        self.show(f"{server} asks to use the model:\n{preview[:600]}")
        return (await self.ask("  allow? [y]es / [n]o: ")).strip().lower() in ("y", "yes")


_USAGE_KEYS = ("requests", "input_tokens", "output_tokens")


@dataclass
class Interaction:
    """Per deck: who answers, for which agent, and the tokens sampling used."""

    asker: Asker = field(default_factory=Declining)
    agent: str | None = None
    # Where a running call's progress goes (a line of text), when the command shows it.
    progress: Callable[[str], None] | None = None
    usage: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_USAGE_KEYS, 0))

    def take_usage(self) -> dict[str, int]:
        """The tokens sampling used since the last call (a run adds them to its own)."""
        taken, self.usage = self.usage, dict.fromkeys(_USAGE_KEYS, 0)
        return taken


class SamplingModels(Protocol):
    """What answering a sampling request needs: a model for an agent (or a named provider/model)."""

    def sampling_model(self, agent_name: str, provider: str | None, model: str | None) -> tuple[Any, str]:
        """The model, and its name as the server is told."""
        ...


class LazyModels:
    """Models made on the first sampling request: `tools call` loads the Agents SDK only if a server samples."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self._models: Models | None = None

    def sampling_model(self, agent_name: str, provider: str | None, model: str | None) -> tuple[Any, str]:
        if self._models is None:
            from app.providers import Models

            self._models = Models(self.loaded)
        return self._models.sampling_model(agent_name, provider, model)


def hooks_for(
    loaded: LoadedConfig, name: str, cfg: LocalServerConfig, interaction: Interaction, models: SamplingModels | None
) -> ClientHooks:
    """The client callbacks for one server entry."""
    from app.sampling import sampling_callback

    # A denied server still sees the capability, so that its call fails with agentdeck's reason, not its own.

    def progress(server: str, tool: str, done: float, total: float | None, message: str | None) -> None:
        if interaction.progress is not None:
            interaction.progress(progress_text(server, tool, done, total, message))

    return ClientHooks(
        progress=progress,
        elicitation=_elicitation(name, cfg, interaction),
        sampling=sampling_callback(name, cfg, interaction, models) if models is not None else None,
        sampling_tools=models is not None,
        roots=[Path(loaded.resolve_path(root)) for root in cfg.roots],
        log_level=None if cfg.log_level == "off" else cfg.log_level,
    )


def progress_text(server: str, tool: str, done: float, total: float | None, message: str | None) -> str:
    """`customers.export: step 2 of 4 (50%)` — a progress notification as one line."""
    amount = f"{done / total:.0%}" if total else f"{done:g}"
    return f"{server}.{tool}: {message} ({amount})" if message else f"{server}.{tool}: {amount}"


def _elicitation(name: str, cfg: LocalServerConfig, interaction: Interaction) -> Any:
    from mcp_types import ElicitRequestURLParams, ElicitResult

    async def elicit(context: Any, params: Any) -> Any:
        if cfg.elicitation == "decline":
            return ElicitResult(action="decline")
        if isinstance(params, ElicitRequestURLParams):
            return ElicitResult(action=await interaction.asker.url(name, params.message, params.url))
        action, content = await interaction.asker.form(name, params.message, dict(params.requested_schema))
        return ElicitResult(action=action, content=content if action == "accept" else None)

    return elicit
