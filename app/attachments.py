"""Files attached to a message (`run --file`, chat `/attach`): text inline, images as data URLs."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import UsageError

MAX_TEXT_BYTES = 256 * 1024
MAX_IMAGE_BYTES = 10 * 1024 * 1024
IMAGE_TYPES = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


@dataclass(frozen=True)
class Attachment:
    """One attached file: its name and either its text or an image data URL."""

    name: str
    text: str | None = None
    image_url: str | None = None

    def content(self) -> dict[str, Any]:
        """The Responses API content part for this file."""
        if self.image_url is not None:
            return {"type": "input_image", "image_url": self.image_url, "detail": "auto"}
        return {"type": "input_text", "text": f"Attached file {self.name}:\n```\n{self.text}\n```"}


def _image_type(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in IMAGE_TYPES.items() if head.startswith(magic)), None)


def load_attachment(raw_path: str) -> Attachment:
    """Read PATH as an attachment; a missing, oversized or binary non-image file is a UsageError."""
    path = Path(raw_path).expanduser()
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise UsageError(f"cannot attach {raw_path}: not a regular file", hint="attach a text file or an image")
        with path.open("rb") as fh:
            head = fh.read(16)
            kind = _image_type(head)
            limit = MAX_IMAGE_BYTES if kind else MAX_TEXT_BYTES
            if size > limit:
                raise UsageError(
                    f"cannot attach {raw_path}: {size:,} bytes is over the {limit // 1024:,} KiB limit for "
                    f"{'an image' if kind else 'a text file'}",
                    hint="attach a smaller file or an excerpt of it",
                )
            data = head + fh.read()
    except OSError as exc:
        raise UsageError(f"cannot attach {raw_path}: {exc.strerror or exc}") from None
    if kind:
        return Attachment(path.name, image_url=f"data:{kind};base64,{base64.b64encode(data).decode()}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:
        raise UsageError(
            f"cannot attach {raw_path}: it is a binary file",
            hint="attach UTF-8 text or an image (PNG, JPEG, GIF, WEBP)",
        )
    return Attachment(path.name, text=text)


def user_message(text: str, attachments: list[Attachment]) -> str | list[dict[str, Any]]:
    """The user's turn: plain text, or one message holding the text and its attachments."""
    if not attachments:
        return text
    parts = [{"type": "input_text", "text": text}, *(a.content() for a in attachments)]
    return [{"role": "user", "content": parts}]
