"""Find, read, interpolate and validate agents.yaml, reporting errors with file:line:col."""

from __future__ import annotations

import datetime
import difflib
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from app.config.models import Config
from app.config.schema_walk import allowed_keys, data_path
from app.errors import ConfigError

Path_ = tuple[str | int, ...]
ENV_VAR = "AGENTDECK_CONFIG"
# `$$`, `${NAME}`, `${NAME:-default}`, or (the last branch) a `${` that is neither: an error.
_INTERP = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}|\$\{")

# Bounds on every YAML file agentdeck reads (configs, experiment files, offline rules): a hostile or
# mistaken file fails in well under a second with one located line instead of exhausting the machine.
MAX_YAML_BYTES = 1024 * 1024
MAX_YAML_VALUES = 20_000  # keys and values, an alias counting as a full copy of its anchor (~1 s to parse)
MAX_YAML_DEPTH = 100


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
    """Parse a config-like YAML file (a mapping of sections) into plain data and key path -> (line, col), 1-based."""
    data, positions = read_yaml_data(path)
    if data is None:
        raise ConfigError(f"{path}: the config file is empty", hint="declare at least one agent")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1:1: the top level must be a mapping of sections")
    return data, positions


def read_yaml_data(path: Path) -> tuple[Any, dict[Path_, tuple[int, int]]]:
    """Any YAML file agentdeck reads, as plain data (None when empty) and positions.

    The one place YAML is parsed: the file's size, its keys and values (an alias counts as a copy of
    what its anchor holds) and its nesting depth are bounded, and every key must be text.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    text = _read_text(path)
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.Composer, yaml.Scanner = _bounded_composer(), _bounded_scanner()
    try:
        doc = yaml.load(text)
    except _YamlLimit as exc:
        parts = [p for p in exc.at if p is not None]
        shown = dotted_path(tuple(parts[:6])) + ("…" if len(parts) > 6 else "")
        where = f"{path}:{exc.mark.line + 1}:{exc.mark.column + 1}"
        raise ConfigError(
            f"{where}: {shown}: {exc.message}" if shown else f"{where}: {exc.message}", hint=exc.hint
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{loc}: invalid YAML: {problem}") from None
    except YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    except RecursionError:  # a backstop: the composer's depth bound comes first
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
    positions: dict[Path_, tuple[int, int]] = {}
    return _plain(doc, (), positions, path), positions


def _read_text(path: Path) -> str:
    """The file as text, refusing anything larger than MAX_YAML_BYTES before reading it."""
    import io

    limit = f"{MAX_YAML_BYTES // (1024 * 1024)} MiB ({MAX_YAML_BYTES:,} bytes)"
    hint = "is this the right file? agentdeck reads YAML files of at most " + limit
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            data = fh.read(MAX_YAML_BYTES + 1) if size <= MAX_YAML_BYTES else b""
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found",
            hint="pass --config PATH, set AGENTDECK_CONFIG, or create agents.yaml",
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    if size > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: the file is too large: {size:,} bytes, the limit is {limit}", hint=hint)
    if len(data) > MAX_YAML_BYTES:  # not a regular file (a pipe or a device): its size was unknown
        raise ConfigError(f"{path}: the file is too large: more than the limit of {limit}", hint=hint)
    try:
        # Universal newlines, as Path.read_text would give.
        return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8").read()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None


class _YamlLimit(Exception):
    """A bound of read_yaml_data was hit while composing: where, and what."""

    def __init__(self, mark: Any, at: list[Any], message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.mark, self.at, self.message, self.hint = mark, list(at), message, hint


def _key_step(parent: Any, index: Any) -> str | int | None:
    """The key path step of a node ruamel composes as `compose_node(parent, index)`."""
    if parent is None or index is None:  # the document, or a mapping's key
        return None
    if isinstance(index, int):
        return index
    value = getattr(index, "value", None)
    return value if isinstance(value, str) else "?"


@cache
def _bounded_scanner() -> Any:
    """ruamel's round-trip scanner, refusing flow nesting ([ and {) deeper than MAX_YAML_DEPTH.

    The composer bounds depth too, but the scanner reads up to 1024 characters ahead of it while a
    `[` may still start a key, and costs a second on a long line of them; this stops it first.
    """
    from ruamel.yaml.scanner import RoundTripScanner

    class BoundedScanner(RoundTripScanner):  # type: ignore[misc]
        def fetch_flow_collection_start(self, TokenClass: Any, to_push: Any) -> None:  # noqa: N803 - ruamel's name
            if self.flow_level >= MAX_YAML_DEPTH:
                composer = getattr(self.loader, "_composer", None)
                raise _YamlLimit(
                    self.reader.get_mark(),
                    getattr(composer, "at", []),
                    f"nested more than {MAX_YAML_DEPTH} levels deep",
                    hint=f"agentdeck reads YAML nested at most {MAX_YAML_DEPTH} levels deep",
                )
            super().fetch_flow_collection_start(TokenClass, to_push)

    return BoundedScanner


@cache
def _bounded_composer() -> Any:
    """ruamel's composer, counting values and depth as it goes (ruamel is imported lazily)."""
    from ruamel.yaml.composer import Composer
    from ruamel.yaml.events import AliasEvent

    alias_hint = (
        f"an alias (*name) repeats all its anchor (&name) holds, so aliases of aliases multiply; "
        f"agentdeck reads at most {MAX_YAML_VALUES:,} keys and values from one file"
    )

    class BoundedComposer(Composer):  # type: ignore[misc]
        def __init__(self, loader: Any = None) -> None:
            super().__init__(loader)
            self.warn_double_anchors = False  # legal YAML; ruamel's warning would print several lines
            self.values = 0  # keys and values composed, an alias counting as a copy of its anchor
            self.via_aliases = 0
            self.level = 0  # depth of the node being composed (the document's top is 1)
            self.reach = 0  # the deepest level reached under the node being composed
            self.at: list[Any] = []
            # Anchored nodes, once composed: (node, values, height). An anchor still being composed
            # has no entry, so an alias to it (a structure containing itself) is found at once.
            self.measured: dict[int, tuple[Any, int, int]] = {}

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.at.append(_key_step(parent, index))
            try:
                return self._bounded(parent, index)
            finally:
                self.at.pop()

        def _bounded(self, parent: Any, index: Any) -> Any:
            event = self.parser.peek_event()
            if isinstance(event, AliasEvent):
                target = self.anchors.get(event.anchor)
                if target is not None:  # an undefined alias is ruamel's own error
                    known = self.measured.get(id(target))
                    if known is None:
                        raise _YamlLimit(
                            event.start_mark,
                            self.at,
                            f"alias *{event.anchor} refers to a mapping or list that contains it",
                            hint="an alias cannot repeat a collection inside itself",
                        )
                    self.via_aliases += known[1]
                    self._count(known[1], event.start_mark)
                    reach = self.level + known[2]
                    if reach > MAX_YAML_DEPTH:
                        raise _YamlLimit(
                            event.start_mark,
                            self.at,
                            f"nested more than {MAX_YAML_DEPTH} levels deep once aliases are expanded",
                            hint=f"agentdeck reads YAML nested at most {MAX_YAML_DEPTH} levels deep",
                        )
                    self.reach = max(self.reach, reach)
                return super().compose_node(parent, index)
            self.level += 1
            if self.level > MAX_YAML_DEPTH:
                raise _YamlLimit(
                    event.start_mark,
                    self.at,
                    f"nested more than {MAX_YAML_DEPTH} levels deep",
                    hint=f"agentdeck reads YAML nested at most {MAX_YAML_DEPTH} levels deep",
                )
            start, outer_reach = self.values, self.reach
            self._count(1, event.start_mark)
            self.reach = self.level
            node = super().compose_node(parent, index)
            if node.anchor is not None:
                self.measured[id(node)] = (node, self.values - start, self.reach - self.level + 1)
            self.reach = max(outer_reach, self.reach)
            self.level -= 1
            return node

        def _count(self, n: int, mark: Any) -> None:
            self.values += n
            if self.values > MAX_YAML_VALUES:
                if self.via_aliases:
                    message = f"more than {MAX_YAML_VALUES:,} keys and values once aliases are expanded"
                    raise _YamlLimit(mark, self.at, message, hint=alias_hint)
                raise _YamlLimit(
                    mark,
                    self.at,
                    f"more than {MAX_YAML_VALUES:,} keys and values",
                    hint=f"agentdeck reads at most {MAX_YAML_VALUES:,} keys and values from one file",
                )

    return BoundedComposer


def _plain(node: Any, at: Path_, positions: dict[Path_, tuple[int, int]], path: Path) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        lc = getattr(node, "lc", None)
        for key, value in node.items():
            pos = None
            if lc is not None:
                try:
                    line, col = lc.key(key)
                    pos = (line + 1, col + 1)
                except (KeyError, TypeError):
                    pass
            if not isinstance(key, str):
                where = f"{path}:{pos[0]}:{pos[1]}" if pos else format_location(path, positions, at)
                if at and pos:
                    where += f": {dotted_path(at)}"
                message, hint = _key_not_text(key)
                raise ConfigError(f"{where}: {message}", hint=hint)
            if pos:
                positions[at + (str(key),)] = pos
            out[str(key)] = _plain(value, at + (str(key),), positions, path)
        return out
    if isinstance(node, list):
        items = []
        lc = getattr(node, "lc", None)
        for i, value in enumerate(node):
            if lc is not None:
                try:
                    line, col = lc.item(i)
                    positions[at + (i,)] = (line + 1, col + 1)
                except (KeyError, TypeError, IndexError):
                    pass
            items.append(_plain(value, at + (i,), positions, path))
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


def _key_not_text(key: Any) -> tuple[str, str]:
    """Message and hint for a mapping key that YAML read as something other than text."""
    if key is None:
        return "a key is empty (~ or null)", "write a name before the colon, e.g. `my-server:`"
    if isinstance(key, bool | int | float | datetime.date):
        shown = str(key).lower() if isinstance(key, bool) else str(key)
        kind = "a boolean" if isinstance(key, bool) else "a date" if isinstance(key, datetime.date) else "a number"
        return f"the key {shown} is {kind}, not text", f"quote it ('{shown}') if it is meant as text"
    kind = "a mapping" if isinstance(key, dict) else "a list" if isinstance(key, tuple | list) else "not text"
    return f"a key is {kind}", "keys are names: write one before the colon"


def interpolate(data: Any, env: Mapping[str, str], path: Path, positions: dict[Path_, tuple[int, int]]) -> Any:
    """Expand ${VAR} and ${VAR:-default} in every string; `$$` is a literal `$`."""

    def expand(value: str, at: Path_) -> str:
        def sub(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            if match.group(0) == "${":
                rest = value[match.start() :]
                close = rest.find("}")
                if close < 0:
                    snippet = rest if len(rest) <= 40 else rest[:40] + "…"
                    problem = f"unterminated '${{' in {snippet!r}: no closing '}}'"
                else:
                    problem = f"{rest[: close + 1]!r} is not a ${{VAR}} or ${{VAR:-default}} reference"
                raise ConfigError(
                    f"{format_location(path, positions, at)}: {problem}",
                    hint="a variable name uses letters, digits and '_'; write $$ for a literal $ (e.g. $${)",
                )
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
    """A `; did you mean 'x'?` suffix (noting non-ASCII look-alike characters), or an empty string."""
    if word.isascii():
        close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
        return f"; did you mean '{close[0]}'?" if close else ""
    odd = ", ".join(
        f"U+{ord(c):04X} {unicodedata.name(c, '?')}"
        for c in list(dict.fromkeys(c for c in word if not c.isascii()))[:3]
    )
    skeleton = ascii_skeleton(word)
    if skeleton in choices:
        return f"; did you mean '{skeleton}'? (it contains non-ASCII look-alike characters: {odd})"
    close = difflib.get_close_matches(skeleton, sorted(choices), n=1, cutoff=0.6)
    suggestion = f"; did you mean '{close[0]}'?" if close else ""
    return f"{suggestion} (it contains non-ASCII characters: {odd})"


# Letters that look like ASCII ones but NFKC leaves alone (Cyrillic and Greek, mostly).
_LOOKALIKES = str.maketrans(
    "аеорсухіјѕԁһӏԛԝьАВЕКМНОРСТХІЈЅαβεικνορτυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧıȷ",
    "aeopcyxijsdhlqwbABEKMHOPCTXIJSabeikvoptuxABEZHIKMNOPTYXij",
)


def ascii_skeleton(word: str) -> str:
    """What a word looks like in ASCII: compatibility forms folded (fullwidth, math letters),
    look-alike letters mapped, accents and invisible characters dropped."""
    text = unicodedata.normalize("NFKC", word).translate(_LOOKALIKES)
    return "".join(
        c
        for c in unicodedata.normalize("NFKD", text)
        if not unicodedata.combining(c) and unicodedata.category(c) != "Cf"
    )


def validation_error(
    exc: ValidationError, path: Path, positions: dict[Path_, tuple[int, int]], root: type[BaseModel]
) -> ConfigError:
    """The first schema error of a YAML file read with `read_yaml`, located and with a suggestion."""
    errors = _relevant_errors(exc, root)
    err, at = errors[0]
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
    elif err["type"] == "finite_number":
        got = err.get("input")
        shown = {"inf": ".inf", "-inf": "-.inf", "nan": ".nan"}.get(str(got), repr(got))
        msg = f"{where}: must be a finite number, got {shown}"
    elif err["type"] in _BOUNDS:
        word, key = _BOUNDS[err["type"]]
        bound = err.get("ctx", {}).get(key)
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        msg = f"{where}: must be {word} {bound}, got {err.get('input')!r}"
    else:
        text = err["msg"].removeprefix("Value error, ")
        msg = f"{where}: {text}"
    # One line per error: the others are counted, and shown once this one is fixed.
    more = len({other for _, other in errors} - {at})
    hint = f"{more} more problem{'s' if more > 1 else ''} found after this one" if more else None
    return ConfigError(msg, hint=hint)


_BOUNDS = {
    "greater_than": ("greater than", "gt"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("less than", "lt"),
    "less_than_equal": ("at most", "le"),
}


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
