"""Walk pydantic error locations through the config schema (for key paths and did-you-mean)."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
    return tp


def _members(tp: Any) -> list[Any]:
    tp = _unwrap(tp)
    if get_origin(tp) in (Union, types.UnionType):
        return [_unwrap(a) for a in get_args(tp) if a is not type(None)]
    return [tp]


def _label(tp: Any) -> str:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp.__name__
    if get_origin(tp) is Literal:
        return "literal[" + ",".join(repr(a) for a in get_args(tp)) + "]"
    return getattr(tp, "__name__", str(tp))


def _tag_of(model: type[BaseModel]) -> set[str]:
    tags: set[str] = set()
    for name in ("kind", "transport"):
        field = model.model_fields.get(name)
        if field is not None and get_origin(field.annotation) is Literal:
            tags.update(str(a) for a in get_args(field.annotation))
    return tags


def walk(loc: tuple[Any, ...], root: type[BaseModel]) -> tuple[tuple[str | int, ...], Any]:
    """Follow a pydantic loc from `root`; return (path in the data, type reached)."""
    tp: Any = root
    path: list[str | int] = []
    for part in loc:
        if part == "[key]":  # pydantic's marker for an error in a dict key: the key itself is the place
            break
        members = _members(tp)
        if len(members) > 1:
            chosen = None
            for member in members:
                if isinstance(member, type) and issubclass(member, BaseModel) and part in _tag_of(member):
                    chosen = member
                    break
                if str(part).replace(" ", "").replace('"', "'") == _label(member).replace(" ", ""):
                    chosen = member
                    break
                if isinstance(part, str) and part.startswith(_label(member).split("[")[0]):
                    chosen = member
            if chosen is not None:
                tp = chosen
                continue
        tp = members[0] if len(members) == 1 else tp
        origin = get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            path.append(part)
            field = tp.model_fields.get(str(part))
            tp = field.annotation if field is not None else None
        elif origin is dict:
            path.append(part)
            tp = get_args(tp)[1]
        elif origin is list:
            path.append(part)
            tp = get_args(tp)[0]
        else:
            path.append(part)
            tp = None
    return tuple(path), tp


def data_path(loc: tuple[Any, ...], root: type[BaseModel]) -> tuple[str | int, ...]:
    """The key path in the YAML data for a pydantic error location."""
    return walk(loc, root)[0]


def allowed_keys(loc: tuple[Any, ...], root: type[BaseModel]) -> set[str]:
    """The keys a mapping at `loc` may hold (empty if it is not a model)."""
    _, tp = walk(loc, root)
    keys: set[str] = set()
    for member in _members(tp):
        if isinstance(member, type) and issubclass(member, BaseModel):
            keys.update(member.model_fields)
    return keys
