"""The OpenAI tools server: chat, images, embeddings, moderation, function calling and models.

Every tool answers with structured output; OpenAI's errors are isError results naming the HTTP
status and OpenAI's message (never the key). Image inputs from disk must sit under an allowed
directory (`--allowed-dir`), checked as the filesystem server checks paths; image URLs must be
http(s) and resolve to a public address.
"""

from __future__ import annotations

import base64
import ipaddress
import mimetypes
import socket
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from servers import package_version
from servers.openai_tools.images import SavedImage, save_original
from servers.openai_tools.models import DEFAULT_EMBEDDING_MODEL, DEFAULT_MODERATION_MODEL, usable_model
from servers.openai_tools.settings import Clients, Settings, openai_errors

# Calls to OpenAI: nothing local changes, the world outside is involved.
ASKS = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
# Image tools also write the originals under the output directory (never over a file).
MAKES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
MAX_EMBEDDING_INPUTS = 2048
MAX_EMBEDDING_CHARS = 1_200_000  # about the API's 300k tokens per request

Role = Literal["system", "developer", "user", "assistant"]


class Message(BaseModel):
    role: Role
    content: str


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class ChatAnswer(BaseModel):
    text: str
    model: str
    finish_reason: str | None = None
    usage: Usage


class FunctionSpec(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool = False


class ProposedCall(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any]


class FunctionCalls(BaseModel):
    calls: list[ProposedCall]
    text: str
    model: str


class ImageFile(BaseModel):
    path: str
    uri: str
    mime_type: str
    width: int
    height: int
    bytes: int


class Images(BaseModel):
    images: list[ImageFile]
    model: str
    revised_prompts: list[str] = Field(default_factory=list)


class Embeddings(BaseModel):
    model: str
    dimensions: int
    embeddings: list[list[float] | str]
    usage: Usage


class Moderation(BaseModel):
    flagged: bool
    categories: list[str]
    top_scores: dict[str, float]


class Moderations(BaseModel):
    model: str
    results: list[Moderation]


class Models(BaseModel):
    models: list[str]


def _messages(messages: list[Message] | None, prompt: str | None, system: str | None) -> list[dict[str, str]]:
    if not messages and not prompt:
        raise ToolError("give 'messages' or a 'prompt'")
    out = [{"role": "system", "content": system}] if system else []
    out += [m.model_dump() for m in messages or []]
    if prompt:
        out.append({"role": "user", "content": prompt})
    return out


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    given = getattr(usage, "prompt_tokens", None)
    taken = getattr(usage, "completion_tokens", None)
    if given is None:
        given, taken = getattr(usage, "input_tokens", 0), getattr(usage, "output_tokens", 0)
    return Usage(input_tokens=given or 0, output_tokens=taken or 0, total_tokens=(given or 0) + (taken or 0))


def public_url(url: str) -> str:
    """An http(s) URL whose host resolves only to public addresses (no file://, no private networks)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ToolError("image URLs must be http:// or https:// (or a data: URL, or a path under an allowed directory)")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        raise ToolError(f"cannot resolve {parts.hostname}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise ToolError(f"{parts.hostname} is a private or local address; only public image URLs are allowed")
    return url


# The options generate_image and edit_image share (the Images API's own limits).
ImagePrompt = Annotated[str, Field(min_length=1, max_length=32000)]
Quality = Literal["low", "medium", "high", "auto"]
ImageCount = Annotated[int, Field(ge=1, le=10)]
Background = Literal["transparent", "opaque", "auto"]
ImageFormat = Literal["png", "jpeg", "webp"]


def build_server(settings: Settings, passthrough: bool = False) -> MCPServer:
    """The MCP server; in passthrough mode each request's X-OpenAI-API-Key header is its key."""
    clients = Clients(settings, passthrough)
    mcp = MCPServer(
        "openai-tools",
        version=package_version(),
        instructions="OpenAI models as tools: chat, images, embeddings, moderation.",
    )

    def client(ctx: Context) -> tuple[Any, str]:
        return clients.for_request(ctx.headers)

    def model_or_default(model: str | None, default: str) -> str:
        return usable_model(model or default)

    async def chat(ctx: Context, messages: list[dict[str, str]], model: str | None, **extra: Any) -> Any:
        openai, api_key = client(ctx)
        chosen = model_or_default(model, settings.default_model)
        options: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
        with openai_errors(settings, api_key):
            return await openai.chat.completions.create(model=chosen, messages=messages, **options)

    async def answer(
        ctx: Context,
        messages: list[dict[str, str]],
        model: str | None,
        temperature: float | None,
        max_tokens: int | None,
    ) -> ChatAnswer:
        """A chat completion as the tools return it, with the server's defaults for what was not given."""
        response = await chat(
            ctx,
            messages,
            model,
            temperature=temperature if temperature is not None else settings.temperature,
            max_completion_tokens=max_tokens or settings.max_tokens,
        )
        choice = response.choices[0]
        text, reason = choice.message.content or "", choice.finish_reason
        return ChatAnswer(text=text, model=response.model, finish_reason=reason, usage=_usage(response.usage))

    @mcp.tool(annotations=ASKS, structured_output=True)
    async def chat_completion(
        ctx: Context,
        messages: list[Message] | None = None,
        prompt: str | None = None,
        system: str | None = None,
        model: str | None = None,
        temperature: Annotated[float | None, Field(ge=0, le=2)] = None,
        max_tokens: Annotated[int | None, Field(ge=1)] = None,
    ) -> ChatAnswer:
        """Ask an OpenAI chat model: a conversation (messages) or one prompt, with an optional system message."""
        return await answer(ctx, _messages(messages, prompt, system), model, temperature, max_tokens)

    @mcp.tool(annotations=ASKS, structured_output=True)
    async def ask_openai(
        ctx: Context,
        query: str,
        model: str | None = None,
        temperature: Annotated[float | None, Field(ge=0, le=2)] = None,
        max_tokens: Annotated[int | None, Field(ge=1)] = None,
    ) -> ChatAnswer:
        """Ask OpenAI one question (as the original ask-openai tool did) and get the answer."""
        messages = _messages(None, query, "You are a helpful assistant.")
        return await answer(ctx, messages, model, temperature, max_tokens)

    @mcp.tool(annotations=ASKS, structured_output=True)
    async def function_call(
        ctx: Context,
        functions: Annotated[list[FunctionSpec], Field(min_length=1, max_length=128)],
        messages: list[Message] | None = None,
        prompt: str | None = None,
        tool_choice: Literal["auto", "required", "none"] = "auto",
        model: str | None = None,
    ) -> FunctionCalls:
        """The function calls a model proposes for a conversation, as JSON. They are never executed."""
        import json

        tools = [
            {"type": "function", "function": {k: v for k, v in f.model_dump().items() if k != "strict" or v}}
            for f in functions
        ]
        response = await chat(ctx, _messages(messages, prompt, None), model, tools=tools, tool_choice=tool_choice)
        message = response.choices[0].message
        calls = []
        for call in message.tool_calls or []:
            try:
                arguments = json.loads(call.function.arguments or "{}")
            except ValueError:
                arguments = {"_unparsed": call.function.arguments}
            calls.append(ProposedCall(id=call.id, name=call.function.name, arguments=arguments))
        return FunctionCalls(calls=calls, text=message.content or "", model=response.model)

    @mcp.tool(annotations=ASKS, structured_output=True)
    async def create_embedding(
        ctx: Context,
        input: str | list[str],
        model: str | None = None,
        dimensions: Annotated[int | None, Field(ge=1, le=3072)] = None,
        encoding_format: Literal["float", "base64"] = "float",
    ) -> Embeddings:
        """Embedding vectors for a text or a list of texts."""
        texts = [input] if isinstance(input, str) else input
        if not texts or any(not t for t in texts):
            raise ToolError("'input' must be a non-empty text or list of non-empty texts")
        if len(texts) > MAX_EMBEDDING_INPUTS or sum(map(len, texts)) > MAX_EMBEDDING_CHARS:
            raise ToolError(
                f"too much input: at most {MAX_EMBEDDING_INPUTS} texts and about 300,000 tokens per request"
            )
        openai, api_key = client(ctx)
        chosen = model_or_default(model, DEFAULT_EMBEDDING_MODEL)
        extra = {"dimensions": dimensions} if dimensions else {}
        with openai_errors(settings, api_key):
            response = await openai.embeddings.create(
                input=input, model=chosen, encoding_format=encoding_format, **extra
            )
        vectors = [item.embedding for item in response.data]
        size = len(vectors[0]) if vectors and isinstance(vectors[0], list) else (dimensions or 0)
        return Embeddings(model=response.model, dimensions=size, embeddings=vectors, usage=_usage(response.usage))

    @mcp.tool(annotations=ASKS, structured_output=True)
    async def moderate_content(ctx: Context, input: str | list[str], model: str | None = None) -> Moderations:
        """Whether texts break OpenAI's usage policies: flagged, which categories, the highest scores."""
        openai, api_key = client(ctx)
        with openai_errors(settings, api_key):
            response = await openai.moderations.create(input=input, model=model or DEFAULT_MODERATION_MODEL)
        results = []
        for result in response.results:
            categories = result.categories.model_dump(by_alias=True)
            scores = result.category_scores.model_dump(by_alias=True)
            top = dict(sorted(((k, float(v)) for k, v in scores.items() if v is not None), key=lambda kv: -kv[1])[:3])
            flagged_categories = sorted(name for name, on in categories.items() if on)
            results.append(Moderation(flagged=result.flagged, categories=flagged_categories, top_scores=top))
        return Moderations(model=response.model, results=results)

    @mcp.tool(annotations=ASKS, structured_output=True)
    async def list_models(ctx: Context) -> Models:
        """The model ids the API key can use."""
        openai, api_key = client(ctx)
        with openai_errors(settings, api_key):
            page = await openai.models.list()
        return Models(models=sorted(m.id for m in page.data))

    def image_result(saved: list[SavedImage], model: str, revised: list[str], prompt: str) -> CallToolResult:
        files = [
            ImageFile(
                path=str(s.path),
                uri=s.path.as_uri(),
                mime_type=s.mime_type,
                width=s.width,
                height=s.height,
                bytes=s.size,
            )
            for s in saved
        ]
        content: list[Any] = [TextContent(type="text", text=f"{len(saved)} image(s) for: {prompt}")]
        for image, file in zip(saved, files, strict=True):
            content.append(
                ImageContent(type="image", data=base64.b64encode(image.preview).decode(), mime_type=image.preview_mime)
            )
            content.append(
                ResourceLink(
                    type="resource_link", uri=file.uri, name=image.path.name, mime_type=file.mime_type, size=file.bytes
                )
            )
        structured = Images(images=files, model=model, revised_prompts=revised)
        return CallToolResult(content=content, structured_content=structured.model_dump(mode="json"))

    async def save_all(
        ctx: Context, response: Any, output_format: str, stem: str
    ) -> tuple[list[SavedImage], list[str]]:
        saved, revised = [], []
        items = list(response.data or [])
        for i, item in enumerate(items, start=1):
            if not item.b64_json:
                raise ToolError("OpenAI returned no image data")
            saved.append(save_original(settings.output_dir, item.b64_json, output_format, f"{stem}-{i}"))
            if item.revised_prompt:
                revised.append(item.revised_prompt)
            await ctx.report_progress(50 + 50 * i / len(items), 100, f"saved image {i} of {len(items)}")
        return saved, revised

    @mcp.tool(annotations=MAKES)
    async def generate_image(
        ctx: Context,
        prompt: ImagePrompt,
        model: str | None = None,
        size: str = "auto",
        quality: Quality = "auto",
        n: ImageCount = 1,
        background: Background = "auto",
        output_format: ImageFormat = "png",
    ) -> Annotated[CallToolResult, Images]:
        """Generate images: a preview of each (for the chat) and the original saved to the output directory."""
        openai, api_key = client(ctx)
        chosen = model_or_default(model, settings.default_image_model)
        await ctx.report_progress(0, 100, "asking OpenAI")
        with openai_errors(settings, api_key):
            response = await (openai.images.generate(
                    prompt=prompt, model=chosen, size=size, quality=quality, n=n, background=background,
                    output_format=output_format,
                )
            )  # fmt: skip
        await ctx.report_progress(50, 100, "generated")
        saved, revised = await save_all(ctx, response, output_format, "image")
        return image_result(saved, chosen, revised, prompt)

    def local_image(path: str) -> tuple[str, bytes, str]:
        from servers.filesystem.paths import AccessDenied, make_roots, validate

        if not settings.allowed_dirs:
            raise ToolError("reading images from disk is off: start the server with --allowed-dir DIR")
        try:
            real = validate(path, make_roots([str(d) for d in settings.allowed_dirs]))
        except AccessDenied as exc:
            raise ToolError(str(exc)) from None
        try:
            with open(real, "rb") as fh:
                data = fh.read(50 * 1024 * 1024 + 1)
        except OSError as exc:
            raise ToolError(f"cannot read {path}: {exc.strerror}") from None
        if len(data) > 50 * 1024 * 1024:
            raise ToolError(f"{path} is over 50 MB")
        mime = mimetypes.guess_type(real)[0] or "application/octet-stream"
        if not mime.startswith("image/"):
            raise ToolError(f"{path} is not an image ({mime})")
        return real, data, mime

    @mcp.tool(annotations=MAKES)
    async def edit_image(
        ctx: Context,
        images: Annotated[list[str], Field(min_length=1, max_length=16)],
        prompt: ImagePrompt,
        mask: str | None = None,
        model: str | None = None,
        size: str = "auto",
        quality: Quality = "auto",
        n: ImageCount = 1,
        background: Background = "auto",
        output_format: ImageFormat = "png",
    ) -> Annotated[CallToolResult, Images]:
        """Edit or combine images from the allowed directories (with an optional mask) into new ones."""
        from pathlib import Path

        inputs = [local_image(p) for p in images]
        files = [(Path(real).name, data, mime) for real, data, mime in inputs]
        extra: dict[str, Any] = {}
        if mask:
            real, data, mime = local_image(mask)
            extra["mask"] = (Path(real).name, data, mime)
        openai, api_key = client(ctx)
        chosen = model_or_default(model, settings.default_image_model)
        await ctx.report_progress(0, 100, "asking OpenAI")
        with openai_errors(settings, api_key):
            response = await (openai.images.edit(
                    image=files, prompt=prompt, model=chosen, size=size, quality=quality, n=n, background=background,
                    output_format=output_format, **extra,
                )
            )  # fmt: skip
        await ctx.report_progress(50, 100, "generated")
        saved, revised = await save_all(ctx, response, output_format, "edit")
        return image_result(saved, chosen, revised, prompt)

    @mcp.tool(annotations=ASKS, structured_output=True)
    async def analyze_image(
        ctx: Context,
        image: str,
        prompt: str = "Describe this image.",
        detail: Literal["low", "high", "auto", "original"] = "auto",
        model: str | None = None,
    ) -> ChatAnswer:
        """Ask a model about an image: an https URL, a data: URL, or a path under an allowed directory."""
        if image.startswith("data:image/"):
            url = image
        elif "://" in image:
            url = public_url(image)
        else:
            _, data, mime = local_image(image)
            url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        openai, api_key = client(ctx)
        chosen = model_or_default(model, settings.default_model)
        content = [
            {"type": "input_text", "text": prompt},
            {"type": "input_image", "image_url": url, "detail": detail},
        ]
        with openai_errors(settings, api_key):
            response = await openai.responses.create(model=chosen, input=[{"role": "user", "content": content}])
        return ChatAnswer(
            text=response.output_text, model=response.model, finish_reason=response.status, usage=_usage(response.usage)
        )

    return mcp
