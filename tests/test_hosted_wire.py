"""Hosted MCP on the wire: the real `openai` client against the fake OpenAI server, which acts as
OpenAI's MCP client towards the bundled customers server over streamable HTTP with a bearer token.

Every response body and stream event is parsed with the `openai` package's own types.
"""

from __future__ import annotations

import json

import httpx2
import pytest
from openai import AsyncOpenAI, BadRequestError, NotFoundError
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

RULES = """
rules:
  - name: declined
    when: {tool_output: '^The user declined'}
    reply: "Not done: {output}"
  - name: failed
    when: {tool_output: '^Error executing tool'}
    reply: "Failed: {output}"
  - name: lookup
    when: {user: 'customer (?P<id>\\d+)$'}
    call: [{tool: get_customer, args: {customer_id: "{id|int}"}}]
    reply: "Customer {id} is {output.name} <{output.email}>."
  - name: two
    when: {user: 'customers (?P<a>\\d+) and (?P<b>\\d+)'}
    steps:
      - call: [{tool: get_customer, args: {customer_id: "{a|int}"}}, {tool: get_customer, args: {customer_id: "{b|int}"}}]
      - reply: "{output1.name} and {output2.name}"
  - name: email
    when: {user: 'email of (?P<id>\\d+) to (?P<email>\\S+)'}
    call: [{tool: update_customer_email, args: {customer_id: "{id|int}", email: "{email}"}}]
    reply: "Changed to {output.email}."
"""

EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)


@pytest.fixture
def wire(fake_openai, write_rules, customers_http):
    crm = customers_http()
    fake = fake_openai(write_rules(RULES))
    client = AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
    return fake, crm, client


def mcp_tool(crm, **extra):
    tool = {"type": "mcp", "server_label": "crm", "server_url": crm.url, "authorization": crm.token}
    tool.update(extra)
    return tool


async def create(client, **body) -> Response:
    """responses.create, with the raw JSON body validated against the openai types."""
    raw = await client.responses.with_raw_response.create(model="gpt-5.6-luna", **body)
    return Response.model_validate_json(raw.text)


async def stream_events(fake, **body) -> list[ResponseStreamEvent]:
    """The raw server-sent events of a streamed response, each parsed with the openai types."""
    events = []
    async with (
        httpx2.AsyncClient(timeout=30) as http,
        http.stream(
            "POST",
            fake.base_url + "/responses",
            json={"model": "gpt-5.6-luna", "stream": True, **body},
            headers={"authorization": "Bearer test-key"},
        ) as response,
    ):
        assert response.status_code == 200
        name = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                event = EVENTS.validate_json(line.removeprefix("data: "))
                assert event.type == name  # the SSE event name matches the payload's type
                events.append(event)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    return events


async def test_lists_and_calls_over_streamable_http_with_a_bearer_token(wire):
    fake, crm, client = wire
    expected = crm.customer(7)
    r = await create(client, input="customer 7", tools=[mcp_tool(crm, require_approval="never")])
    listing, call, message = r.output
    assert listing.type == "mcp_list_tools" and listing.error is None and listing.server_label == "crm"
    names = {t.name for t in listing.tools}
    assert {"get_customer", "search_customers", "update_customer_email"} <= names
    schema = next(t for t in listing.tools if t.name == "get_customer")
    assert schema.input_schema["properties"]["customer_id"]["type"] == "integer"
    assert call.type == "mcp_call" and call.status == "completed" and call.error is None
    assert (call.name, json.loads(call.arguments)) == ("get_customer", {"customer_id": 7})
    assert json.loads(call.output)["email"] == expected["email"]
    assert r.output_text == f"Customer 7 is {expected['name']} <{expected['email']}>."
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    logged = fake.requests()[-1]["mcp"][0]
    assert logged["authorization"] == "***" and crm.token not in json.dumps(fake.requests())
    secret_url = crm.url + "?api_key=k3y-in-url"
    await create(client, input="hi", tools=[mcp_tool(crm, server_url=secret_url, headers={"X-Key": "h3ader"})])
    logged = fake.requests()[-1]["mcp"][0]
    assert logged["server_url"] == crm.url + "?api_key=***" and logged["headers"] == {"X-Key": "***"}
    assert "k3y-in-url" not in json.dumps(fake.requests()) and "h3ader" not in json.dumps(fake.requests())


async def test_a_server_that_speaks_only_sse_is_reached_by_falling_back(fake_openai, write_rules, customers_http):
    crm = customers_http(transport="sse")
    fake = fake_openai(write_rules(RULES))
    client = AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
    r = await create(client, input="customer 2", tools=[mcp_tool(crm, require_approval="never")])
    assert crm.url.endswith("/sse") and r.output[0].error is None
    assert r.output_text == f"Customer 2 is {crm.customer(2)['name']} <{crm.customer(2)['email']}>."


async def test_calls_of_one_step_run_in_one_response_and_count_as_one_round(wire):
    fake, crm, client = wire
    r = await create(client, input="customers 1 and 2", tools=[mcp_tool(crm, require_approval="never")])
    assert [o.type for o in r.output] == ["mcp_list_tools", "mcp_call", "mcp_call", "message"]
    assert r.output_text == f"{crm.customer(1)['name']} and {crm.customer(2)['name']}"


async def test_allowed_tools_by_name_and_read_only_filter_the_listing(wire):
    _, crm, client = wire
    by_name = await create(client, input="hi", tools=[mcp_tool(crm, allowed_tools=["get_customer"])])
    assert [t.name for t in by_name.output[0].tools] == ["get_customer"]
    read_only = await create(client, input="hi", tools=[mcp_tool(crm, allowed_tools={"read_only": True})])
    names = {t.name for t in read_only.output[0].tools}
    assert "get_customer" in names and "update_customer_email" not in names and "create_order" not in names
    assert all(t.annotations["readOnlyHint"] is True for t in read_only.output[0].tools)
    # A rule naming a tool the filter removed cannot call it: the model answers without it.
    r = await create(
        client, input="email of 3 to x@example.com", tools=[mcp_tool(crm, allowed_tools={"read_only": True})]
    )
    assert [o.type for o in r.output] == ["mcp_list_tools", "message"]


async def test_a_failing_tool_is_a_structured_tool_execution_error(wire):
    _, crm, client = wire
    r = await create(client, input="customer 999999", tools=[mcp_tool(crm, require_approval="never")])
    call = r.output[1]
    assert call.status == "failed" and call.output is None
    assert call.error.type == "mcp_tool_execution_error"
    assert call.error.content[0]["text"] == "Error executing tool get_customer: Customer 999999 not found"
    assert r.output_text == "Failed: Error executing tool get_customer: Customer 999999 not found"


async def test_a_wrong_token_or_an_unreachable_server_is_a_listing_error(wire):
    from tests.conftest import free_port

    _, crm, client = wire
    wrong = await create(client, input="customer 1", tools=[mcp_tool(crm, authorization="not-the-token")])
    assert [o.type for o in wrong.output] == ["mcp_list_tools", "message"]
    assert (
        wrong.output[0].error
        == "Error retrieving tool list from MCP server: 'crm'. Http status code: 401 (Unauthorized)"
    )
    assert wrong.output[0].tools == []
    dead = f"http://127.0.0.1:{free_port()}/mcp"
    down = await create(client, input="customer 1", tools=[mcp_tool(crm, server_url=dead)])
    assert down.output[0].error.startswith("Error retrieving tool list from MCP server: 'crm'. cannot connect")


async def test_connectors_and_tunnels_are_answered_with_a_listing_error(wire):
    _, _, client = wire
    tools = [
        {"type": "mcp", "server_label": "mail", "connector_id": "connector_gmail", "authorization": "t"},
        {"type": "mcp", "server_label": "private", "tunnel_id": "tun_123"},
    ]
    r = await create(client, input="hello", tools=tools)
    errors = {o.server_label: o.error for o in r.output if o.type == "mcp_list_tools"}
    assert "connector 'connector_gmail'" in errors["mail"] and "cannot be emulated" in errors["mail"]
    assert "Secure MCP Tunnel" in errors["private"]
    assert r.output[-1].type == "message"


async def test_approval_approved_through_previous_response_id(wire):
    fake, crm, client = wire
    tools = [mcp_tool(crm, require_approval={"never": {"read_only": True}})]
    first = await create(client, input="email of 3 to new3@example.com", tools=tools)
    assert [o.type for o in first.output] == ["mcp_list_tools", "mcp_approval_request"]
    request = first.output[1]
    assert (request.name, json.loads(request.arguments)) == (
        "update_customer_email",
        {"customer_id": 3, "email": "new3@example.com"},
    )
    assert crm.customer(3)["email"] != "new3@example.com"  # nothing ran before the approval
    answer = [{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}]
    second = await create(client, previous_response_id=first.id, input=answer, tools=tools)
    call = second.output[0]
    assert call.type == "mcp_call" and call.approval_request_id == request.id and call.status == "completed"
    assert second.output_text == "Changed to new3@example.com."
    assert crm.customer(3)["email"] == "new3@example.com"
    assert fake.requests()[-1]["previous_response_id"] == first.id
    assert "mcp_list_tools" not in [o.type for o in second.output]  # the listing in context is reused


async def test_approval_declined_with_a_reason_and_resent_as_full_input(wire):
    _, crm, client = wire
    before = crm.customer(5)["email"]
    tools = [mcp_tool(crm)]  # require_approval defaults to always, as on the API
    first = await create(client, input="email of 5 to nope@example.com", tools=tools)
    request = first.output[-1]
    history = [{"role": "user", "content": "email of 5 to nope@example.com"}]
    history += [o.model_dump(exclude_none=True) for o in first.output]
    answer = {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": False}
    answer["reason"] = "The user declined this tool call, so it was not run. Reason: VIP"
    second = await create(client, input=[*history, answer], tools=tools)
    assert [o.type for o in second.output] == ["message"]
    assert second.output_text == "Not done: The user declined this tool call, so it was not run. Reason: VIP"
    assert crm.customer(5)["email"] == before


async def test_invalid_requests_are_rejected_as_the_api_does(wire):
    _, crm, client = wire
    with pytest.raises(BadRequestError, match="server_label"):
        await client.responses.create(model="m", input="x", tools=[{"type": "mcp", "server_url": crm.url}])
    with pytest.raises(NotFoundError, match="Previous response with id 'resp_missing' not found"):
        await client.responses.create(model="m", input="x", previous_response_id="resp_missing")
    for approve in (True, False):
        answer = [{"type": "mcp_approval_response", "approval_request_id": "mcpr_nope", "approve": approve}]
        with pytest.raises(BadRequestError, match="No approval request found with id 'mcpr_nope'"):
            await client.responses.create(model="m", input=answer, tools=[mcp_tool(crm)])
    first = await create(client, input="email of 3 to a@example.com", tools=[mcp_tool(crm)])
    answer = [{"type": "mcp_approval_response", "approval_request_id": first.output[-1].id, "approve": True}]
    with pytest.raises(BadRequestError, match="No MCP tool with server_label 'crm'"):
        await client.responses.create(model="m", previous_response_id=first.id, input=answer, tools=[])


def _order(events: list[ResponseStreamEvent], item_id: str) -> list[str]:
    out = []
    for e in events:
        item = getattr(e, "item", None)
        if getattr(e, "item_id", None) == item_id or getattr(item, "id", None) == item_id:
            out.append(e.type)
    return out


async def test_streaming_emits_hosted_events_in_order_and_parses(wire):
    fake, crm, client = wire
    events = await stream_events(fake, input="customer 4", tools=[mcp_tool(crm, require_approval="never")])
    assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1].type == "response.completed"
    listing, call, message = events[-1].response.output
    assert _order(events, listing.id) == [
        "response.output_item.added",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.output_item.done",
    ]
    assert _order(events, call.id) == [
        "response.output_item.added",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.completed",
        "response.output_item.done",
    ]
    added = next(e for e in events if e.type == "response.output_item.added" and e.item.id == call.id)
    assert added.item.status == "in_progress" and added.item.output is None
    assert call.output and json.loads(call.output)["id"] == 4
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == message.content[0].text == f"Customer 4 is {crm.customer(4)['name']} <{crm.customer(4)['email']}>."
    # The openai client's own stream reader accepts the same stream.
    stream = await client.responses.create(
        model="m", input="customer 4", tools=[mcp_tool(crm, require_approval="never")], stream=True
    )
    kinds = [event.type async for event in stream]
    assert "response.mcp_call.completed" in kinds and kinds[-1] == "response.completed"


async def test_function_calls_stream_and_parse_beside_hosted_tools(wire):
    fake, crm, client = wire
    function = {"type": "function", "name": "get_customer", "parameters": {"type": "object"}, "strict": False}
    # A function tool of the same name wins over the hosted one: the call comes back to the client.
    events = await stream_events(fake, input="customer 5", tools=[function, mcp_tool(crm, require_approval="never")])
    listing, call = events[-1].response.output
    assert listing.type == "mcp_list_tools" and call.type == "function_call" and call.name == "get_customer"
    assert _order(events, call.id) == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    r = await create(client, input="customer 5", tools=[function])
    assert [o.type for o in r.output] == ["function_call"] and json.loads(r.output[0].arguments) == {"customer_id": 5}


async def test_streaming_failures_and_approval_requests(wire):
    fake, crm, client = wire
    failed = await stream_events(fake, input="customer 999999", tools=[mcp_tool(crm, require_approval="never")])
    call = failed[-1].response.output[1]
    assert "response.mcp_call.failed" in _order(failed, call.id)
    refused = await stream_events(fake, input="customer 1", tools=[mcp_tool(crm, authorization="wrong")])
    listing = refused[-1].response.output[0]
    assert "response.mcp_list_tools.failed" in _order(refused, listing.id)
    asking = await stream_events(fake, input="email of 2 to b@example.com", tools=[mcp_tool(crm)])
    request = asking[-1].response.output[-1]
    assert request.type == "mcp_approval_request"
    assert _order(asking, request.id) == ["response.output_item.added", "response.output_item.done"]
