"""Build Agents SDK Model objects from `providers:` entries."""

from __future__ import annotations

from typing import Any

from agents import ModelSettings
from agents.models.interface import Model

from app.config.checks import provider_named, resolve_provider
from app.config.loader import LoadedConfig
from app.config.models import (
    CompatibleProviderConfig,
    ModelSettingsConfig,
    OfflineProviderConfig,
    OpenAIProviderConfig,
    ProviderConfig,
)
from app.errors import ConfigError

DEFAULT_OPENAI_MODEL = "gpt-5.6-luna"


class Models:
    """Makes one Model per agent, sharing one HTTP client per provider."""

    def __init__(self, loaded: LoadedConfig, model_override: str | None = None) -> None:
        self.loaded = loaded
        self.model_override = model_override
        self._clients: dict[str, Any] = {}
        self._offline: dict[str, Model] = {}
        # An app.audit.trail.AuditTrail when the config asks for one: every model request is then recorded.
        self.audit: Any = None
        self.traced = False  # telemetry is on: each model request is a span

    def provider_name(self, agent_name: str) -> str:
        """The provider an agent will use (after auto resolution)."""
        return resolve_provider(self.loaded, agent_name)[0]

    def is_offline(self, agent_name: str) -> bool:
        """True when the agent runs on the offline model."""
        return isinstance(resolve_provider(self.loaded, agent_name)[1], OfflineProviderConfig)

    def is_openai(self, agent_name: str) -> bool:
        """True when the agent's model requests go to OpenAI itself (not a compatible or fake server)."""
        from app.config.checks import runs_on_openai

        return runs_on_openai(self.loaded, agent_name)

    def model_for(self, agent_name: str) -> Model:
        """The Model object an agent should use."""
        name, provider = resolve_provider(self.loaded, agent_name)
        agent = self.loaded.config.agents[agent_name]
        model_name = self.model_override or agent.model or self.loaded.config.defaults.model or DEFAULT_OPENAI_MODEL
        return self._model(name, provider, model_name)

    def sampling_model(self, agent_name: str, provider: str | None, model: str | None) -> tuple[Model, str]:
        """The model answering a server's sampling request (a named provider/model, else the agent's), and its name."""
        if provider is None and model is None:
            return self.model_for(agent_name), self.model_name(agent_name) or "offline"
        name, config = provider_named(self.loaded, provider) if provider else resolve_provider(self.loaded, agent_name)
        model_name = model or self.model_name(agent_name) or DEFAULT_OPENAI_MODEL
        label = "offline" if isinstance(config, OfflineProviderConfig) else model_name
        return self._model(name, config, model_name), label

    def _model(self, name: str, provider: ProviderConfig, model_name: str) -> Model:
        model = self._unaudited(name, provider, model_name)
        if self.audit is None and not self.traced:
            return model
        from app.audit.model import AuditedModel

        shown = "offline" if isinstance(provider, OfflineProviderConfig) else model_name
        return AuditedModel(model, f"{name}/{shown}", self.audit)

    def _unaudited(self, name: str, provider: ProviderConfig, model_name: str) -> Model:
        if isinstance(provider, OfflineProviderConfig):
            return self._offline_model(name, provider)
        client = self._client(name, provider)
        from agents import OpenAIChatCompletionsModel, OpenAIResponsesModel

        if provider.api == "chat_completions":
            return OpenAIChatCompletionsModel(model=model_name, openai_client=client)
        return OpenAIResponsesModel(model=model_name, openai_client=client)

    def model_name(self, agent_name: str) -> str | None:
        """The model an agent asks for (None on the offline model, which has no name or price)."""
        if self.is_offline(agent_name):
            return None
        agent = self.loaded.config.agents[agent_name]
        return self.model_override or agent.model or self.loaded.config.defaults.model or DEFAULT_OPENAI_MODEL

    def model_label(self, agent_name: str) -> str:
        """`provider/model` for display."""
        name, provider = resolve_provider(self.loaded, agent_name)
        if isinstance(provider, OfflineProviderConfig):
            return f"provider '{name}', rules {provider.rules or 'built in'}"
        return f"{name}/{self.model_name(agent_name)}"

    def _offline_model(self, name: str, provider: OfflineProviderConfig) -> Model:
        if name not in self._offline:
            from app.offline.model import CallLog, OfflineModel
            from app.offline.rules import load_rules

            rules = load_rules(self.loaded.resolve_path(provider.rules) if provider.rules else None)
            log_path = provider.log or self.loaded.env.get("AGENTDECK_OFFLINE_LOG")
            log = CallLog(self.loaded.resolve_path(log_path) if log_path else None)
            self._offline[name] = OfflineModel(rules, name=name, log=log)
        return self._offline[name]

    def _client(self, name: str, provider: OpenAIProviderConfig | CompatibleProviderConfig) -> Any:
        if name in self._clients:
            return self._clients[name]
        from openai import AsyncOpenAI

        env = self.loaded.env
        if isinstance(provider, OpenAIProviderConfig):
            api_key = provider.api_key or env.get("OPENAI_API_KEY")
            base_url = provider.base_url or env.get("OPENAI_BASE_URL") or None
            if not api_key:
                raise ConfigError(
                    f"provider '{name}' needs an API key, but OPENAI_API_KEY is not set",
                    hint="export OPENAI_API_KEY (or put it in .env beside agents.yaml), or use the offline provider",
                )
        else:
            # Local servers (Ollama, vLLM) ignore the key, but the client insists on one.
            api_key = provider.api_key or "not-needed"
            base_url = provider.base_url
        client = AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=provider.max_retries,
            timeout=provider.timeout if provider.timeout is not None else 120.0,
        )
        self._clients[name] = client
        return client

    def settings_for(self, agent_name: str) -> ModelSettings:
        """defaults.model_settings overlaid with the agent's own."""
        cfg = self.loaded.config
        merged: dict[str, Any] = {}
        for part in (cfg.defaults.model_settings, cfg.agents[agent_name].model_settings):
            if part is not None:
                merged.update(_settings_dict(part))
        return ModelSettings(**merged)


def _settings_dict(settings: ModelSettingsConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in settings.model_dump(exclude_none=True).items():
        if key == "reasoning":
            from openai.types.shared import Reasoning

            out["reasoning"] = Reasoning(**value)
        else:
            out[key] = value
    return out
