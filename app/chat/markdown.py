"""Assistant text as rich Markdown that keeps the model's line breaks and angle-bracket text."""

from __future__ import annotations

from collections.abc import Iterable

from markdown_it import MarkdownIt
from markdown_it.token import Token
from rich.console import RenderableType
from rich.markdown import Markdown

# rich parses with html on, so `<ann@example.com>` becomes an autolink and `<placeholder>` inline HTML
# that rich drops; with both off they stay text. Tables and strikethrough as rich enables them.
_PARSER = MarkdownIt("commonmark", {"html": False}).enable(["strikethrough", "table"]).disable("autolink")


def markdown(text: str) -> RenderableType:
    """Render assistant text: Markdown, but single line breaks kept and `<...>` shown literally."""
    return _FaithfulMarkdown(text)


class _FaithfulMarkdown(Markdown):
    """rich's Markdown over our parser's tokens, with soft breaks made hard."""

    def __init__(self, markup: str) -> None:
        super().__init__("")  # rich parses in __init__; parsing "" costs nothing, the real parse is ours
        self.markup = markup
        self.parsed = _PARSER.parse(markup)
        _harden_breaks(self.parsed)


def _harden_breaks(tokens: Iterable[Token]) -> None:
    """A model (or a tool listing it echoes) means a newline as a newline, not as a space."""
    for token in tokens:
        if token.type == "softbreak":
            token.type = "hardbreak"
        if token.children:
            _harden_breaks(token.children)
