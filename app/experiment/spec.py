"""The experiment file: questions, variants, and each variant as a config of its own.

A variant starts from agents.yaml and changes what an experiment compares: the agent, its
provider, model and model settings, and per server hosted or local, `cache_tools`, filters and
the approval policy; `approve` answers approvals (never interactive). Errors carry the same
`file:line:col: key.path: message` locations as agents.yaml.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from app.batch.inputs import InputSpec, input_spec
from app.config.loader import LoadedConfig, Path_, did_you_mean, format_location, interpolate, read_yaml
from app.config.models import (
    Approval,
    CacheTTL,
    HostedServerConfig,
    ModelSettingsConfig,
    Price,
    StdioServerConfig,
    Strict,
    ToolGlobs,
    runs_hosted,
)
from app.errors import AgentdeckError, ConfigError, UsageError


class ServerChange(Strict):
    """What a variant changes about one server."""

    hosted: bool | None = None
    cache_tools: bool | CacheTTL | None = None
    tools: ToolGlobs | None = None
    policy: Literal["read_only", "no_destructive"] | None = None
    approval: Approval | None = None


def _yes_no(value: Any) -> Any:
    # YAML 1.1 readers turn yes/no into booleans; accept both spellings.
    return {True: "yes", False: "no"}.get(value, value) if isinstance(value, bool) else value


class Variant(Strict):
    """One way of running the questions."""

    description: str | None = None
    agent: str | None = None
    provider: str | None = None
    model: str | None = None
    model_settings: ModelSettingsConfig | None = None
    servers: dict[str, ServerChange] = Field(default_factory=dict)
    approve: Literal["yes", "no"] | None = None

    _approve = field_validator("approve", mode="before")(_yes_no)


class ExperimentFile(Strict):
    """The whole experiment file."""

    description: str | None = None
    config: str | None = None
    agent: str | None = None
    questions: str
    input_field: str | None = None
    template: str | None = None
    id_field: str | None = None
    repeat: int = Field(default=1, ge=1, le=1000)
    concurrency: int = Field(default=8, ge=1, le=1024)
    timeout: float | None = Field(default=None, gt=0)
    approve: Literal["yes", "no"] = "no"
    prices: dict[str, Price] = Field(default_factory=dict)
    variants: dict[str, Variant]

    _approve = field_validator("approve", mode="before")(_yes_no)

    @field_validator("variants")
    @classmethod
    def _names(cls, value: dict[str, Variant]) -> dict[str, Variant]:
        if len(value) < 2:
            raise ValueError("an experiment compares at least two variants; the first is the baseline")
        for name in value:
            if not name or not all(c.isalnum() or c in "-_" for c in name):
                raise ValueError(f"variant name {name!r} may use only letters, digits, '-' and '_'")
        return value


@dataclass
class VariantPlan:
    """A variant ready to run: its own config, the agent it runs and how approvals are answered."""

    name: str
    loaded: LoadedConfig
    agent: str
    approve: str
    description: str | None = None

    def summary(self) -> dict[str, Any]:
        """What the report says about the variant."""
        from app.config.checks import agent_closure
        from app.providers import Models

        servers = {s for a in agent_closure(self.loaded, self.agent) for s in self.loaded.config.agents[a].servers}
        hosted = sorted(s for s in servers if runs_hosted(self.loaded.config.servers[s]))
        return {
            "name": self.name,
            "description": self.description,
            "agent": self.agent,
            "model": Models(self.loaded).model_label(self.agent),
            "hosted_servers": hosted,
            "local_servers": sorted(servers - set(hosted)),
            "approve": self.approve,
        }


@dataclass
class Experiment:
    path: Path
    spec: ExperimentFile
    positions: dict[Path_, tuple[int, int]]
    base: LoadedConfig = field(init=False)
    questions: InputSpec = field(init=False)
    variants: list[VariantPlan] = field(default_factory=list)

    def where(self, *key: str | int) -> str:
        """`file:line:col: key.path` in the experiment file."""
        return format_location(self.path, self.positions, key)

    def resolve(self, value: str) -> Path:
        """A path from the experiment file, relative to its folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.path.parent / p


def load_experiment(path: Path, config: str | None, environ: Mapping[str, str] | None = None) -> Experiment:
    """Read and check an experiment file and build every variant's config; ConfigError on any problem."""
    from app.config.loader import build_env, find_config_path, load_config, validation_error

    environ = os.environ if environ is None else environ
    raw, positions = read_yaml(path)
    data = interpolate(raw, build_env(path, environ), path, positions)
    try:
        spec = ExperimentFile.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, path, positions, ExperimentFile) from None
    experiment = Experiment(path, spec, positions)
    try:
        experiment.questions = input_spec(
            experiment.resolve(spec.questions), spec.template, spec.id_field, spec.input_field
        )
    except UsageError as exc:
        raise ConfigError(f"{experiment.where('questions')}: {exc.message}", hint=exc.hint) from None
    if config:
        config_path = Path(config)
    elif spec.config:
        config_path = experiment.resolve(spec.config)
        if not config_path.is_file():
            raise ConfigError(f"{experiment.where('config')}: config file {config_path} does not exist")
    else:
        config_path = find_config_path(None, environ)
    experiment.base = load_config(config_path, environ)
    experiment.variants = [plan_variant(experiment, name, v) for name, v in spec.variants.items()]
    return experiment


def plan_variant(experiment: Experiment, name: str, variant: Variant) -> VariantPlan:
    """The variant's own config: agents.yaml with the variant's changes, checked like agents.yaml."""
    from app.config.checks import BUILTIN_PROVIDERS, agent_closure, check_references

    base = experiment.base.config
    at: tuple[str | int, ...] = ("variants", name)
    agent = variant.agent or experiment.spec.agent or base.defaults.agent or next(iter(base.agents))
    if agent not in base.agents:
        key = at + ("agent",) if variant.agent else ("agent",)
        raise ConfigError(
            f"{experiment.where(*key)}: unknown agent '{agent}'{did_you_mean(agent, set(base.agents))}",
            hint=f"agents in {experiment.base.path}: {', '.join(base.agents)}",
        )
    providers = set(base.providers) | set(BUILTIN_PROVIDERS)
    if variant.provider and variant.provider not in providers:
        raise ConfigError(
            f"{experiment.where(*at, 'provider')}: unknown provider '{variant.provider}'"
            f"{did_you_mean(variant.provider, providers)}",
            hint=f"declare it under providers: in {experiment.base.path}, or use auto, openai or offline",
        )
    spec = base.agents[agent]
    updates: dict[str, Any] = {k: getattr(variant, k) for k in ("provider", "model") if getattr(variant, k)}
    if variant.model_settings is not None:
        merged = spec.model_settings.model_dump(exclude_none=True) if spec.model_settings else {}
        merged.update(variant.model_settings.model_dump(exclude_unset=True))
        updates["model_settings"] = ModelSettingsConfig.model_validate(merged)
    servers = dict(base.servers)
    used = {s for a in agent_closure(experiment.base, agent) for s in base.agents[a].servers}
    for server, change in variant.servers.items():
        where = experiment.where(*at, "servers", server)
        if server not in base.servers:
            raise ConfigError(f"{where}: unknown server '{server}'{did_you_mean(server, set(base.servers))}")
        if server not in used:
            raise ConfigError(
                f"{where}: agent '{agent}' does not use server '{server}', so changing it changes nothing"
            )
        servers[server] = _changed_server(servers[server], change, where)
    agents = {**base.agents, agent: spec.model_copy(update=updates)}
    loaded = LoadedConfig(
        experiment.base.path, base.model_copy(update={"agents": agents, "servers": servers}), experiment.base.env
    )
    loaded.positions = experiment.base.positions
    try:
        check_references(loaded)
    except AgentdeckError as exc:
        raise ConfigError(
            f"{experiment.where(*at)}: variant '{name}' makes the config invalid: {exc.message}", hint=exc.hint
        ) from None
    approve = variant.approve or experiment.spec.approve
    return VariantPlan(name, loaded, agent, approve, variant.description)


def _changed_server(server: Any, change: ServerChange, where: str) -> Any:
    fields = change.model_dump(exclude_unset=True)
    hosted = fields.get("hosted")
    if isinstance(server, HostedServerConfig):
        if hosted is False:
            raise ConfigError(
                f"{where}.hosted: this server is transport: hosted, with no address agentdeck can connect to",
                hint="declare it as a streamable_http server with url (and public_url) to run it either way",
            )
        fields.pop("hosted", None)
        if "cache_tools" in fields:
            raise ConfigError(f"{where}.cache_tools: OpenAI lists a hosted server's tools; there is no cache to set")
    elif isinstance(server, StdioServerConfig) and hosted:
        raise ConfigError(
            f"{where}.hosted: a stdio server cannot be hosted: OpenAI reaches MCP servers over HTTP",
            hint="serve it over streamable HTTP (e.g. agentdeck serve NAME --transport http) and use its url",
        )
    try:
        return type(server).model_validate({**server.model_dump(exclude_unset=True), **fields})
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{where}: {message}") from None
