"""Which models the server uses by default, and what replaced the ones OpenAI shut down.

Every server users came from defaulted to a model that no longer answers (gpt-4, gpt-3.5-turbo,
dall-e-3); a request naming one gets an error that names its replacement instead of OpenAI's
"model not found".
"""

from __future__ import annotations

import re

DEFAULT_MODEL = "gpt-5.6-luna"
DEFAULT_IMAGE_MODEL = "gpt-image-2.5-flare"
DEFAULT_EMBEDDING_MODEL = "text-embedding-3-small"
DEFAULT_MODERATION_MODEL = "omni-moderation-latest"

# Shut down before today (reference-servers.md §3.3), with what to use instead.
RETIRED = {
    "gpt-4": DEFAULT_MODEL,
    "gpt-4-turbo": DEFAULT_MODEL,
    "gpt-4-32k": DEFAULT_MODEL,
    "gpt-3.5-turbo": DEFAULT_MODEL,
    "gpt-3.5-turbo-16k": DEFAULT_MODEL,
    "o1": DEFAULT_MODEL,
    "o1-mini": DEFAULT_MODEL,
    "o3-mini": DEFAULT_MODEL,
    "o4-mini": DEFAULT_MODEL,
    "gpt-4.1-nano": DEFAULT_MODEL,
    "dall-e-2": DEFAULT_IMAGE_MODEL,
    "dall-e-3": DEFAULT_IMAGE_MODEL,
    "gpt-image-1": DEFAULT_IMAGE_MODEL,
}
# Dated snapshots of a retired model: gpt-4-0613, gpt-3.5-turbo-1106, gpt-4-turbo-2024-04-09.
_SNAPSHOT = re.compile(r"^(?P<base>.+?)-(\d{4}|\d{4}-\d{2}-\d{2}|preview|\d{4}-preview)$")


def replacement(model: str) -> str | None:
    """The model to use instead of `model` when OpenAI has shut it down, else None."""
    name = model.strip().lower()
    if name in RETIRED:
        return RETIRED[name]
    match = _SNAPSHOT.match(name)
    return RETIRED.get(match.group("base")) if match else None


def check_model(model: str) -> str:
    """`model`, or ValueError naming its replacement when it was shut down."""
    instead = replacement(model)
    if instead is not None:
        raise ValueError(f"OpenAI shut down the model '{model}'; use '{instead}' instead")
    return model


def usable_model(model: str) -> str:
    """check_model for a tool call: a shut-down model is the tool's error, naming its replacement."""
    from mcp.server.mcpserver.exceptions import ToolError

    try:
        return check_model(model)
    except ValueError as exc:
        raise ToolError(str(exc)) from None
