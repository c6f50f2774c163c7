"""Find, read, interpolate and validate agents.yaml, reporting errors with file:line:col."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from app.config.models import Config
from app.config.schema_walk import allowed_keys, data_path
from app.errors import ConfigError

Path_ = tuple[str | int, ...]
ENV_VAR = "AGENTDECK_CONFIG"
_INTERP = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


@dataclass
class LoadedConfig:
    """A validated config plus what is needed to resolve paths and report locations."""

    path: Path
    config: Config
    env: dict[str, str]
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def where(self, *key_path: str | int) -> str:
        """Render `file:line:col: a.b.c` for a key path (the closest known position)."""
        return format_location(self.path, self.positions, key_path)

    def resolve_path(self, value: str) -> Path:
        """Resolve a path from the config relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)


def find_config_path(explicit: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """--config, else $AGENTDECK_CONFIG, else ./agents.yaml."""
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if environ.get(ENV_VAR):
        return Path(environ[ENV_VAR])
    return Path("agents.yaml")


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read and validate a config file; raise ConfigError on any problem."""
    from app.config.checks import check_references

    raw, positions = read_yaml(path)
    env = build_env(path, os.environ if environ is None else environ)
    data = interpolate(raw, env, path, positions)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, path, positions, Config) from None
    loaded = LoadedConfig(path=path, config=config, env=env, positions=positions)
    check_references(loaded)
    return loaded


def build_env(path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables a config sees: .env beside the file, overridden by the real environment."""
    from dotenv import dotenv_values

    env: dict[str, str] = {}
    dotenv = path.parent / ".env"
    if dotenv.is_file():
        env.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    env.update(environ)
    return env


def read_yaml(path: Path) -> tuple[Any, dict[Path_, tuple[int, int]]]:
    """Parse YAML into plain Python data and a map of key path -> (line, col), 1-based."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found",
            hint="pass --config PATH, set AGENTDECK_CONFIG, or create agents.yaml",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{loc}: invalid YAML: {problem}") from None
    except YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if doc is None:
        raise ConfigError(f"{path}: the config file is empty", hint="declare at least one agent")
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}:1:1: the top level must be a mapping of sections")
    positions: dict[Path_, tuple[int, int]] = {}
    return _plain(doc, (), positions), positions


def _plain(node: Any, at: Path_, positions: dict[Path_, tuple[int, int]]) -> Any:
    if isinstance(node, dict):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            lc = getattr(node, "lc", None)
            if lc is not None:
                try:
                    line, col = lc.key(key)
                    positions[at + (str(key),)] = (line + 1, col + 1)
                except (KeyError, TypeError):
                    pass
            out[str(key) if key is not None else "null"] = _plain(value, at + (str(key),), positions)
        return out
    if isinstance(node, list):
        items = []
        for i, value in enumerate(node):
            lc = getattr(node, "lc", None)
            if lc is not None:
                try:
                    line, col = lc.item(i)
                    positions[at + (i,)] = (line + 1, col + 1)
                except (KeyError, TypeError, IndexError):
                    pass
            items.append(_plain(value, at + (i,), positions))
        return items
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return str(node)


def interpolate(data: Any, env: Mapping[str, str], path: Path, positions: dict[Path_, tuple[int, int]]) -> Any:
    """Expand ${VAR} and ${VAR:-default} in every string; `$$` is a literal `$`."""

    def expand(value: str, at: Path_) -> str:
        def sub(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            got = env.get(name)
            if got not in (None, ""):
                return str(got)
            if default is not None:
                return default
            raise ConfigError(
                f"{format_location(path, positions, at)}: environment variable {name} is not set",
                hint=f"export {name}=..., add it to .env beside the config, or write ${{{name}:-default}}",
            )

        return _INTERP.sub(sub, value)

    def walk(node: Any, at: Path_) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, at + (k,)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, at + (i,)) for i, v in enumerate(node)]
        if isinstance(node, str):
            return expand(node, at)
        return node

    return walk(data, ())


def format_location(path: Path, positions: Mapping[Path_, tuple[int, int]], key_path: Path_) -> str:
    """`file:line:col: dotted.key.path` using the deepest key path that has a position."""
    dotted = dotted_path(key_path)
    probe = tuple(key_path)
    while probe and probe not in positions:
        probe = probe[:-1]
    if probe:
        line, col = positions[probe]
        where = f"{path}:{line}:{col}"
    else:
        where = str(path)
    return f"{where}: {dotted}" if dotted else where


def dotted_path(key_path: Path_) -> str:
    out = ""
    for part in key_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def did_you_mean(word: str, choices: list[str] | set[str]) -> str:
    """A `; did you mean 'x'?` suffix, or an empty string."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def validation_error(
    exc: ValidationError, path: Path, positions: dict[Path_, tuple[int, int]], root: type[BaseModel]
) -> ConfigError:
    """The first schema error of a YAML file read with `read_yaml`, located and with a suggestion."""
    errors = _relevant_errors(exc, root)
    lines = []
    for err, at in errors:
        raw_loc = tuple(err["loc"])
        where = format_location(path, positions, at)
        if err["type"] == "extra_forbidden":
            key = str(at[-1]) if at else "?"
            choices = allowed_keys(raw_loc[:-1], root)
            msg = f"{where}: unknown key '{key}'{did_you_mean(key, choices)}"
        elif err["type"] == "missing":
            msg = f"{where}: required key is missing"
        elif err["type"] == "union_tag_invalid":
            ctx = err.get("ctx", {})
            msg = (
                f"{where}: {ctx.get('discriminator', 'kind')} must be one of "
                f"{ctx.get('expected_tags', '?')}, got {ctx.get('tag')!r}"
            )
        elif err["type"] == "union_tag_not_found":
            disc = err.get("ctx", {}).get("discriminator", "kind").strip("'")
            msg = f"{where}: '{disc}' is required"
        else:
            text = err["msg"].removeprefix("Value error, ")
            msg = f"{where}: {text}"
        lines.append(msg)
    # Several problems are listed, but the first stays on the first line for terse output.
    return ConfigError(lines[0], detail="\n".join(lines[1:]) or None)


def _relevant_errors(exc: ValidationError, root: type[BaseModel]) -> list[tuple[Any, Path_]]:
    """Drop union branches that clearly were not meant, put unknown keys first."""
    located = [(err, data_path(tuple(err["loc"]), root)) for err in exc.errors()]
    deeper = {at[:i] for _, at in located for i in range(len(at))}

    def wrong_branch(err: Any, at: Path_) -> bool:
        # A mapping offered where another union member wanted a scalar: that member was not meant.
        return isinstance(err.get("input"), dict | list) and at in deeper

    kept = [(e, at) for e, at in located if not wrong_branch(e, at)] or located
    kept.sort(key=lambda pair: pair[0]["type"] != "extra_forbidden")
    return kept
