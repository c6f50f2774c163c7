"""Tool results as model input (#14 §3): no block reaches the model as a serialised object."""

from __future__ import annotations

import base64

from mcp_types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from app.tool_content import for_model


def text(value: str) -> TextContent:
    return TextContent(type="text", text=value)


def test_text_resources_are_inlined_under_their_uri_and_joined_with_the_text_around_them() -> None:
    result = CallToolResult(
        content=[
            text("Here is the file:"),
            EmbeddedResource(
                type="resource",
                resource=TextResourceContents(uri="file:///notes/a.md", mime_type="text/markdown", text="# A\nbody"),
            ),
            text("That is all."),
        ]
    )
    out = for_model(result).content
    assert len(out) == 1 and out[0].type == "text"
    assert (
        out[0].text == "Here is the file:\n\n[resource file:///notes/a.md (text/markdown)]\n# A\nbody\n\nThat is all."
    )


def test_blobs_links_and_audio_are_described_and_images_stay_images() -> None:
    blob = base64.b64encode(b"\x00" * 2048).decode()
    image = ImageContent(type="image", data=base64.b64encode(b"png").decode(), mime_type="image/png")
    result = CallToolResult(
        content=[
            EmbeddedResource(
                type="resource",
                resource=BlobResourceContents(uri="test://blob/1", mime_type="application/gzip", blob=blob),
            ),
            ResourceLink(
                type="resource_link",
                uri="test://doc/2",
                name="doc-2",
                mime_type="text/plain",
                size=1500,
                description="The second document",
            ),  # fmt: skip
            image,
            AudioContent(type="audio", data=blob, mime_type="audio/wav"),
        ]
    )
    out = for_model(result).content
    assert [b.type for b in out] == ["text", "image", "text"]
    assert out[0].text == (
        "[binary resource test://blob/1: application/gzip, 2,048 bytes]\n\n"
        "[resource link test://doc/2: doc-2 (text/plain, 1,500 bytes) — The second document]"
    )
    assert out[1] is image
    assert out[2].text == "[audio: audio/wav, 2,048 bytes]"
    assert "Contents(" not in repr([b.text for b in out if b.type == "text"])


def test_a_result_of_one_text_block_is_left_as_it_is() -> None:
    result = CallToolResult(content=[text("just text")], structured_content={"a": 1})
    assert for_model(result) is result
