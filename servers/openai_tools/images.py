"""Generated images as users liked them: a preview small enough for a chat, the original kept on disk.

The preview's long side is at most 1024 px and it is at most 512 KB: PNG when that fits (it keeps
transparency), else JPEG at the best quality that fits (transparent pixels on white).
"""

from __future__ import annotations

import base64
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

PREVIEW_SIDE = 1024
PREVIEW_BYTES = 512 * 1024
MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}


@dataclass
class SavedImage:
    path: Path
    mime_type: str
    width: int
    height: int
    size: int
    preview: bytes
    preview_mime: str


def preview(data: bytes) -> tuple[bytes, str, int, int]:
    """(preview bytes, its MIME type, original width, original height)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        small = image.copy()
    small.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    png = io.BytesIO()
    small.save(png, format="PNG", optimize=True)
    if png.tell() <= PREVIEW_BYTES:
        return png.getvalue(), "image/png", width, height
    if small.mode in ("RGBA", "LA", "P"):
        background = Image.new("RGB", small.size, "white")
        rgba = small.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        small = background
    small = small.convert("RGB")
    low, high, best = 30, 95, b""
    while low <= high:  # the best quality that fits
        quality = (low + high) // 2
        out = io.BytesIO()
        small.save(out, format="JPEG", quality=quality, optimize=True)
        if out.tell() <= PREVIEW_BYTES:
            best, low = out.getvalue(), quality + 1
        else:
            high = quality - 1
    if not best:
        out = io.BytesIO()
        small.save(out, format="JPEG", quality=30)
        best = out.getvalue()
    return best, "image/jpeg", width, height


def save_original(folder: Path, b64: str, output_format: str, stem: str) -> SavedImage:
    """Decode one generated image, write it under `folder` (never over a file) and make its preview."""
    data = base64.b64decode(b64)
    folder.mkdir(parents=True, exist_ok=True)
    extension = "jpg" if output_format == "jpeg" else output_format
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        path = folder / f"{stamp}-{stem}{f'-{attempt}' if attempt else ''}.{extension}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        break
    small, small_mime, width, height = preview(data)
    mime = MIME.get(output_format, "application/octet-stream")
    return SavedImage(path, mime, width, height, len(data), small, small_mime)
