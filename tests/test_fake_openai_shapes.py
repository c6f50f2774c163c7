"""The fake OpenAI server's new endpoints answer in exactly the shapes of the `openai` package's types."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request

from openai.types import CreateEmbeddingResponse, ImagesResponse, ModerationCreateResponse
from openai.types.conversations import Conversation, ConversationDeletedResource, ConversationItemList
from openai.types.responses import Response


def raw(fake, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        fake.base_url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"authorization": "Bearer sk-shape-test", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def strict(model, data: dict) -> None:
    """Validate, and check nothing was dropped: every field the fake sent is one the type knows."""
    parsed = model.model_validate(data)
    assert not (parsed.model_extra or {}), f"{model.__name__}: unknown fields {sorted(parsed.model_extra or {})}"


def test_every_new_endpoint_matches_the_openai_types(fake_openai):
    fake = fake_openai()
    strict(ImagesResponse, raw(fake, "POST", "/images/generations", {"prompt": "a dot", "size": "64x64", "n": 2}))
    strict(CreateEmbeddingResponse, raw(fake, "POST", "/embeddings", {"input": ["a", "b"], "dimensions": 4}))
    strict(ModerationCreateResponse, raw(fake, "POST", "/moderations", {"input": "I hate mondays"}))
    conversation = raw(fake, "POST", "/conversations", {"items": [{"role": "user", "content": "hi"}]})
    strict(Conversation, conversation)
    cid = conversation["id"]
    response = raw(fake, "POST", "/responses", {"model": "m", "conversation": cid, "background": True})
    strict(Response, response)
    assert response["status"] == "queued"
    for _ in range(50):
        response = raw(fake, "GET", f"/responses/{response['id']}")
        if response["status"] == "completed":
            break
        time.sleep(0.05)
    strict(Response, response)
    items = raw(fake, "GET", f"/conversations/{cid}/items?order=asc")
    ConversationItemList.model_validate(items)
    assert [i["type"] for i in items["data"]] == ["message", "message"]
    strict(ConversationDeletedResource, raw(fake, "DELETE", f"/conversations/{cid}"))
    assert {r["key"] for r in fake.requests()} == {hashlib.sha256(b"sk-shape-test").hexdigest()[:12]}


async def test_the_request_log_keeps_only_the_latest_requests(monkeypatch):
    import httpx2

    from app.offline import fake_server
    from app.offline.rules import RuleSet

    monkeypatch.setattr(fake_server, "MAX_LOGGED", 5)
    app = fake_server.build_app(fake_server.FakeState(rules=RuleSet()))
    headers = {"authorization": "Bearer sk-log-test"}
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://fake") as client:
        for i in range(8):
            body = {"model": f"m{i}", "messages": [{"role": "user", "content": "hi"}]}
            assert (await client.post("/v1/chat/completions", json=body, headers=headers)).status_code == 200
        log = (await client.get("/_admin/requests")).json()
    assert [r["model"] for r in log] == ["m3", "m4", "m5", "m6", "m7"]  # a long batch cannot grow it forever
