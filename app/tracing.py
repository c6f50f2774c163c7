"""Where a run's traces go: to OpenAI only when the run uses OpenAI itself and tracing is not off.

The Agents SDK exports traces to OpenAI whenever a key is in the environment, even for a run on
another provider, whose traces OpenAI should not receive (and where the export fails noisily when
the key is a placeholder). One decision, used by every command that runs a model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from app.config.checks import resolve_provider, runs_on_openai
from app.config.loader import LoadedConfig
from app.config.models import OpenAIProviderConfig

_TRUE = ("1", "true")  # what the SDK itself reads as true in OPENAI_AGENTS_DISABLE_TRACING


def disabled_by_env(environ: Mapping[str, str]) -> bool:
    """OPENAI_AGENTS_DISABLE_TRACING, read as the SDK reads it."""
    return environ.get("OPENAI_AGENTS_DISABLE_TRACING", "").strip().lower() in _TRUE


def export_key(loaded: LoadedConfig, agents: Iterable[str]) -> str | None:
    """The OpenAI key to export this run's traces with, or None when they must not go to OpenAI."""
    names = list(agents)
    if loaded.config.defaults.tracing == "off" or disabled_by_env(loaded.env) or not names:
        return None
    if not all(runs_on_openai(loaded, name) for name in names):
        return None
    _, provider = resolve_provider(loaded, names[0])
    assert isinstance(provider, OpenAIProviderConfig)
    return provider.api_key or loaded.env.get("OPENAI_API_KEY") or None


def configure(loaded: LoadedConfig, agents: Iterable[str]) -> bool:
    """Set the SDK's exporter key for this run; True when the run should be traced."""
    key = export_key(loaded, agents)
    if key is None:
        return False
    from agents import set_tracing_export_api_key

    set_tracing_export_api_key(key)
    return True
