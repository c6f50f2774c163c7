"""The fake OpenAI server's images, embeddings and moderations: deterministic, and shaped by openai's own types.

Images are real pictures of the requested size (seeded noise, so they compress as photos do);
embeddings are unit vectors seeded by the text; moderation flags a few words. Every body is built
through the `openai` package's response models, so the real client reads exactly what the real
API would send.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import random
import struct
import time
from typing import Any

SIZES = {"auto": (1024, 1024)}
DEFAULT_DIMENSIONS = {"text-embedding-3-large": 3072}
# word -> moderation category it flags (enough for tests to see flagged and clean texts)
FLAGGED_WORDS = {"kill": "violence", "hate": "hate", "idiot": "harassment"}


def _seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")


def _size(size: str | None) -> tuple[int, int]:
    if not size or size == "auto":
        return SIZES["auto"]
    try:
        width, height = (int(n) for n in size.lower().split("x"))
    except ValueError:
        raise ValueError(f"Invalid size '{size}': use WIDTHxHEIGHT, e.g. 1024x1024, or auto") from None
    if not (16 <= width <= 3840 and 16 <= height <= 3840):
        raise ValueError(f"Invalid size '{size}': each side must be 16 to 3840 pixels")
    return width, height


def picture(prompt: str, index: int, size: str | None, background: str | None, output_format: str) -> bytes:
    """One deterministic image (noise seeded by the prompt and index) of the requested size and format."""
    from PIL import Image

    width, height = _size(size)
    rng = random.Random(_seed(prompt, index, size))
    transparent = background == "transparent" and output_format != "jpeg"
    mode = "RGBA" if transparent else "RGB"
    image = Image.frombytes(mode, (width, height), rng.randbytes(width * height * len(mode)))
    out = io.BytesIO()
    image.save(out, format={"jpeg": "JPEG", "webp": "WEBP"}.get(output_format, "PNG"))
    return out.getvalue()


def images_response(body: dict[str, Any], prompt: str) -> dict[str, Any]:
    """An ImagesResponse for a generation or an edit."""
    from openai.types import ImagesResponse

    n = int(body.get("n") or 1)
    output_format = str(body.get("output_format") or "png")
    size = body.get("size")
    data = [
        {
            "b64_json": base64.b64encode(picture(prompt, i, size, body.get("background"), output_format)).decode(),
            "revised_prompt": f"{prompt} (as drawn by the offline model)",
        }
        for i in range(n)
    ]
    width, height = _size(size)
    tokens = max(1, len(prompt) // 4)
    response = ImagesResponse.model_validate(
        {
            "created": int(time.time()),
            "data": data,
            "background": "transparent" if body.get("background") == "transparent" else "opaque",
            "output_format": output_format,
            "quality": body.get("quality") if body.get("quality") in ("low", "medium", "high") else "medium",
            "size": f"{width}x{height}" if f"{width}x{height}" in ("1024x1024", "1024x1536", "1536x1024") else None,
            "usage": {
                "input_tokens": tokens,
                "input_tokens_details": {"image_tokens": 0, "text_tokens": tokens},
                "output_tokens": 272 * n,
                "total_tokens": tokens + 272 * n,
            },
        }
    )
    return response.model_dump(mode="json", exclude_none=True)


def _vector(text: str, dimensions: int) -> list[float]:
    rng = random.Random(_seed(text, dimensions))
    raw = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def embeddings_response(body: dict[str, Any]) -> dict[str, Any]:
    """A CreateEmbeddingResponse: one unit vector per input, float or base64 float32 as asked."""
    from openai.types import CreateEmbeddingResponse

    given = body.get("input")
    texts = [given] if isinstance(given, str) else list(given or [])
    if not texts or not all(isinstance(t, str) and t for t in texts):
        raise ValueError("'input' must be a non-empty string or array of non-empty strings")
    model = str(body.get("model") or "text-embedding-3-small")
    dimensions = int(body.get("dimensions") or DEFAULT_DIMENSIONS.get(model, 1536))
    vectors = [_vector(t, dimensions) for t in texts]
    tokens = sum(max(1, len(t) // 4) for t in texts)
    data: list[dict[str, Any]] = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    response = CreateEmbeddingResponse.model_validate(
        {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    ).model_dump(mode="json")
    if body.get("encoding_format") == "base64":
        for item, vector in zip(response["data"], vectors, strict=True):
            item["embedding"] = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return response


def moderations_response(body: dict[str, Any]) -> dict[str, Any]:
    """A ModerationCreateResponse: a text is flagged for the categories of the words it contains."""
    from openai.types import ModerationCreateResponse
    from openai.types.moderation import Categories

    given = body.get("input")
    texts = [given] if isinstance(given, str) else list(given or [])
    names = [field.alias or name for name, field in Categories.model_fields.items()]
    results = []
    for text in texts:
        hits = {category for word, category in FLAGGED_WORDS.items() if word in str(text).lower()}
        results.append(
            {
                "flagged": bool(hits),
                "categories": {name: name in hits for name in names},
                "category_scores": {name: 0.91 if name in hits else 0.001 for name in names},
                "category_applied_input_types": {name: ["text"] for name in names},
            }
        )
    response = ModerationCreateResponse.model_validate(
        {
            "id": f"modr-{_seed(repr(texts)) % 10**12}",
            "model": body.get("model") or "omni-moderation-latest",
            "results": results,
        }
    )
    return response.model_dump(mode="json", by_alias=True)
