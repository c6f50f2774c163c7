"""`agentdeck gateway`: one governed endpoint over the toy and filesystem servers, used by raw MCP clients and an agent."""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PY, TOY, clean_env, free_port, npm_install, run_cli, stop_all

ALICE = "alice-token-0123456789"


def write_gateway(tmp_path: Path, port: int) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "notes.txt").write_text("gateway notes\n")
    (tmp_path / "agents.yaml").write_text(
        f"""
providers:
  offline: {{kind: offline}}
servers:
  toy: {{transport: stdio, command: {PY}, args: ['{TOY}', '--count-file', '{tmp_path}/toy.count']}}
  files: {{transport: stdio, command: {PY}, args: ['-m', 'app', 'serve', 'filesystem', '--root', '{tmp_path}/files']}}
agents:
  main: {{servers: [toy]}}
audit: {{path: audit.jsonl, include_arguments: true}}
gateway:
  servers: [toy, files]
  port: {port}
  tokens_file: tokens.json
  profiles:
    ops: {{approval: destructive}}
    support:
      servers: [toy]
      policy: read_only
      tools: {{block: ['get_*']}}
  identities:
    alice:
      token_sha256: {hashlib.sha256(ALICE.encode()).hexdigest()}
      profiles: [ops, support]
      tools: {{block: ['files__write_*']}}
      tool_rates: {{'files__read_*': {{calls: 1, per: 3600}}}}
"""
    )


@pytest.fixture
def gateway(tmp_path: Path):
    port = free_port()
    write_gateway(tmp_path, port)
    added = run_cli("gateway", "token", "add", "bob", "--profile", "support", cwd=tmp_path)
    assert added.code == 0, added.err
    bob = added.out.strip()
    assert bob.startswith("agd_") and "not shown again" in added.err and bob not in added.err
    assert bob not in (tmp_path / "tokens.json").read_text()  # only its digest is kept
    assert oct((tmp_path / "tokens.json").stat().st_mode & 0o777) == "0o600"
    proc, base = serve(tmp_path, port)
    yield {"dir": tmp_path, "base": base, "bob": bob, "proc": proc}
    stop_all([proc])


def serve(folder: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    """`agentdeck gateway serve` in `folder`, once it says where it listens and is healthy."""
    proc = subprocess.Popen(
        [PY, "-m", "app", "gateway", "serve"], cwd=folder, env=clean_env(), stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line.startswith(f"gateway on http://127.0.0.1:{port}/mcp/<profile>"), line + proc.stderr.read()
    base = f"http://127.0.0.1:{port}"
    _wait_healthy(base)
    return proc, base


def _wait_healthy(base: str) -> None:
    import time

    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
                if json.loads(resp.read())["status"] == "ok":
                    return
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the gateway never became healthy")
        time.sleep(0.1)


async def session_calls(url: str, token: str, *calls: tuple[str, dict[str, Any]]) -> tuple[list[str], list[Any]]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers) as http, Client(streamable_http_client(url, http_client=http)) as c:
        names = [t.name for t in (await c.list_tools()).tools]
        return names, [await c.call_tool(name, args) for name, args in calls]


def status_of(url: str, token: str | None) -> int:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=b"{}", headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def text(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def test_each_caller_sees_and_calls_only_its_tools_and_every_call_is_audited(gateway):
    base, bob = gateway["base"], gateway["bob"]
    names, (add, read, write, again) = await session_calls(
        f"{base}/mcp/ops", ALICE,
        ("toy__add", {"a": 2, "b": 3}), ("files__read_text_file", {"path": "notes.txt"}),
        ("files__write_file", {"path": "x.txt", "content": "no"}), ("files__read_text_file", {"path": "notes.txt"}),
    )  # fmt: skip
    assert again.is_error and text(again).startswith(
        "rate limit: 'alice' may make 1 call(s) to 'files__read_text_file'"
    )
    assert "Retry-After: 3600 s" in text(again)
    assert {"toy__add", "toy__delete_customer", "files__read_text_file"} <= set(names)
    assert not any(n.startswith("files__write") for n in names)  # alice's own block, on top of the profile
    assert text(add) == "5" and "gateway notes" in text(read)
    assert write.is_error and "not available to 'alice' on profile 'ops'" in text(write)
    assert not (gateway["dir"] / "files" / "x.txt").exists()

    names, (allowed, blocked, destructive) = await session_calls(
        f"{base}/mcp/support", bob,
        ("toy__nap", {"seconds": 0}), ("toy__get_customer", {"customer_id": 1}),
        ("delete_customer", {"customer_id": 1}),
    )  # fmt: skip
    assert sorted(names) == ["toy__add", "toy__nap"]  # toy only, read-only, minus get_* (matched unprefixed)
    assert not allowed.is_error and blocked.is_error and destructive.is_error

    assert status_of(f"{base}/mcp/ops", None) == 401
    assert status_of(f"{base}/mcp/ops", "agd_not-a-real-token") == 401
    assert status_of(f"{base}/mcp/ops", bob) == 403  # bob may use support only
    assert status_of(f"{base}/mcp/nope", ALICE) == 404

    with urllib.request.urlopen(f"{base}/metrics") as resp:
        metrics = resp.read().decode()
    assert 'agentdeck_gateway_calls_total{server="toy",tool="add",identity="alice",status="ok"} 1' in metrics
    assert 'agentdeck_gateway_rejected_total{reason="tool_not_allowed",identity="bob"} 2' in metrics
    assert 'agentdeck_gateway_rejected_total{reason="unauthorized",identity=""} 2' in metrics
    assert 'agentdeck_gateway_upstream_up{server="files"} 1' in metrics
    assert 'agentdeck_gateway_call_seconds_count{server="files",tool="read_text_file",identity="alice"} 1' in metrics

    stop_all([gateway["proc"]])  # the trail is complete once the gateway has stopped
    records = [json.loads(line) for line in (gateway["dir"] / "audit.jsonl").read_text().splitlines()]
    seen = [(r["user"], r["session"], r.get("server"), r["tool"], r["status"]) for r in records]
    assert seen == [
        ("alice", "gateway:ops", "toy", "add", "ok"),
        ("alice", "gateway:ops", "files", "read_text_file", "ok"),
        ("alice", "gateway:ops", None, "files__write_file", "denied"),
        ("alice", "gateway:ops", None, "files__read_text_file", "rate_limited"),
        ("bob", "gateway:support", "toy", "nap", "ok"),
        ("bob", "gateway:support", None, "toy__get_customer", "denied"),
        ("bob", "gateway:support", None, "delete_customer", "denied"),
    ]
    assert records[0]["arguments"] == {"a": 2, "b": 3} and records[0]["source"] == "gateway"
    text_all = (gateway["dir"] / "audit.jsonl").read_text()
    assert ALICE not in text_all and bob not in text_all


def test_an_agent_uses_the_gateway_and_a_killed_upstream_comes_back(gateway, tmp_path_factory):
    client = tmp_path_factory.mktemp("client")
    (client / "rules.yaml").write_text(
        "rules:\n"
        "  - when: {user: 'add (?P<a>\\d+) and (?P<b>\\d+)'}\n"
        "    call: [{tool: toy__add, args: {a: '{a|int}', b: '{b|int}'}}]\n"
        "    reply: 'Sum is {output}'\n"
    )
    # The client's server entry is what `config export --gateway` writes for Claude, imported back.
    export = run_cli("config", "export", "--gateway", f"{gateway['base']}/mcp/support", cwd=client)
    assert export.code == 0, export.err
    (client / "claude.json").write_text(export.out)
    imported = run_cli("config", "import-claude", "claude.json", cwd=client)
    assert imported.code == 0 and "agentdeck-support" in imported.out, imported.err
    (client / "agents.yaml").write_text(
        "providers:\n  offline: {kind: offline, rules: rules.yaml}\n"
        + imported.out
        + "agents:\n  main: {servers: [agentdeck-support]}\n"
    )
    env = clean_env(AGENTDECK_GATEWAY_TOKEN=gateway["bob"])
    listed = run_cli("tools", "list", "--json", cwd=client, env=env)
    assert listed.code == 0, listed.err
    assert sorted(t["name"] for t in json.loads(listed.out)) == ["toy__add", "toy__nap"]
    first = run_cli("run", "add 2 and 40", cwd=client, env=env)
    assert first.code == 0 and first.out.strip() == "Sum is 42", first.err

    # The toy child dies under the gateway: the next call starts it again and is answered.
    killed = subprocess.run(["pkill", "-f", f"{gateway['dir']}/toy.count"], check=False)
    assert killed.returncode == 0
    again = run_cli("run", "add 1 and 1", cwd=client, env=env)
    assert again.code == 0 and again.out.strip() == "Sum is 2", again.err
    assert gateway["bob"] not in again.out + again.err


def test_gateway_config_and_command_errors_are_one_clear_line(tmp_path):
    write_gateway(tmp_path, free_port())
    config = tmp_path / "agents.yaml"
    original = config.read_text()
    for change, expected in [
        (("servers: [toy, files]", "servers: [toy, filez]"), "unknown server 'filez'"),
        (("servers: [toy]\n", "servers: [nope]\n"), "names server 'nope', which is not in gateway.servers"),
        (("profiles: [ops, support]", "profiles: [ops, admin]"), "names profile 'admin'"),
    ]:
        config.write_text(original.replace(*change))
        result = run_cli("config", "validate", cwd=tmp_path)
        assert result.code == 2 and expected in result.err and "Traceback" not in result.err, result.err
    config.write_text(original)
    unknown = run_cli("gateway", "token", "add", "carol", "--profile", "admin", cwd=tmp_path)
    assert unknown.code == 2 and "unknown profile 'admin'" in unknown.err
    taken = run_cli("gateway", "token", "add", "alice", "--profile", "ops", cwd=tmp_path)
    assert taken.code == 2 and "identity 'alice' is defined in agents.yaml" in taken.err
    config.write_text(original.split("gateway:")[0])
    missing = run_cli("gateway", "serve", cwd=tmp_path)
    assert missing.code == 2 and "has no gateway: section" in missing.err
    nobody = original.split("  identities:")[0].replace("tokens_file: tokens.json", "tokens_file: none.json")
    config.write_text(nobody)
    exposed = run_cli("gateway", "serve", "--host", "0.0.0.0", cwd=tmp_path)
    assert exposed.code == 2 and "would expose the gateway with nobody allowed in" in exposed.err


def test_token_buckets_refill_evenly_and_a_refused_call_takes_nothing():
    from app.config.governance import RateLimit
    from app.gateway.limits import Limiter
    from app.gateway.tokens import Identity

    now = [0.0]
    limiter = Limiter(clock=lambda: now[0])
    carol = Identity(
        "carol", ("ops",), rate=RateLimit(calls=2, per=10), tool_rates=(("slow_*", RateLimit(calls=1, per=60)),)
    )
    assert limiter.check(carol, "x__slow_op", "slow_op") is None
    refused = limiter.check(carol, "x__slow_op", "slow_op")
    assert refused is not None and "to 'x__slow_op' per 60 s; Retry-After: 60 s" in refused
    assert limiter.check(carol, "x__fast", "fast") is None  # the refusal took nothing from carol's bucket
    assert "to all tools per 10 s; Retry-After: 5 s" in (limiter.check(carol, "x__fast", "fast") or "")
    now[0] = 5.0  # one token back (2 per 10 s)
    assert limiter.check(carol, "x__fast", "fast") is None
    assert limiter.check(carol, "x__fast", "fast") is not None


async def test_sixteen_clients_times_five_hundred_calls_are_all_answered_and_audited_once(gateway):
    import asyncio

    async def client(n: int) -> list[str]:
        import httpx2
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client

        headers = {"Authorization": f"Bearer {gateway['bob']}"}
        url = f"{gateway['base']}/mcp/support"
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(url, http_client=http)) as c,
        ):
            return [text(await c.call_tool("toy__add", {"a": n, "b": i})) for i in range(500)]

    answers = await asyncio.gather(*(client(n) for n in range(16)))
    assert answers == [[str(n + i) for i in range(500)] for n in range(16)]
    stop_all([gateway["proc"]])
    records = [json.loads(line) for line in (gateway["dir"] / "audit.jsonl").read_text().splitlines()]
    calls = sorted((r["arguments"]["a"], r["arguments"]["b"]) for r in records if r["kind"] == "tool_call")
    assert calls == [(n, i) for n in range(16) for i in range(500)]  # none lost, none twice
    assert {(r["user"], r["status"]) for r in records} == {("bob", "ok")}


async def test_config_changes_apply_to_open_sessions_on_file_change_and_sighup(gateway):
    import asyncio
    import signal

    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    config, proc = gateway["dir"] / "agents.yaml", gateway["proc"]

    async def next_note() -> str:
        return await asyncio.wait_for(asyncio.to_thread(proc.stderr.readline), 15)

    headers = {"Authorization": f"Bearer {gateway['bob']}"}
    url = f"{gateway['base']}/mcp/support"
    async with httpx2.AsyncClient(headers=headers) as http, Client(streamable_http_client(url, http_client=http)) as c:
        assert "toy__nap" in [t.name for t in (await c.list_tools()).tools]
        config.write_text(config.read_text().replace("tools: {block: ['get_*']}", "tools: {block: ['get_*', 'nap']}"))
        assert (await next_note()).startswith("gateway: reloaded: 2 profiles, 2 identities, 2 upstreams")
        assert [t.name for t in (await c.list_tools()).tools] == ["toy__add"]  # the same session, new rules
        assert (await c.call_tool("toy__nap", {"seconds": 0})).is_error

        added = run_cli("gateway", "token", "add", "carol", "--profile", "support", cwd=gateway["dir"])
        note = await next_note()
        assert note.startswith("gateway: reloaded: 2 profiles, 3 identities"), note
        names, _ = await session_calls(url, added.out.strip())
        assert names == ["toy__add"]

        good = config.read_text()
        config.write_text(good.replace("policy: read_only", "policy: anything"))
        assert "reload failed, the running config stays" in await next_note()
        config.write_text(good)
        await next_note()
        proc.send_signal(signal.SIGHUP)
        assert (await next_note()).startswith("gateway: reloaded")
        assert [t.name for t in (await c.list_tools()).tools] == ["toy__add"]  # still served, nothing dropped


# 0.15 (test_inspector.py) cannot send headers; 2.x has --header.
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


def test_the_mcp_inspector_cli_lists_and_calls_through_the_gateway(gateway, tmp_path_factory):
    binary = npm_install(tmp_path_factory.mktemp("inspector"), INSPECTOR) / "mcp-inspector"
    url = f"{gateway['base']}/mcp/support"
    home = tmp_path_factory.mktemp("home")  # the Inspector keeps a catalog in ~/.mcp-inspector

    def inspect(token: str, *method: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(binary), "--cli", url, "--transport", "http", "--header", f"Authorization: Bearer {token}", *method]
        return subprocess.run(cmd, env=clean_env(HOME=str(home)), capture_output=True, text=True, timeout=120)

    listed = inspect(gateway["bob"], "--method", "tools/list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert sorted(t["name"] for t in json.loads(listed.stdout)["tools"]) == ["toy__add", "toy__nap"]
    called = inspect(gateway["bob"], "--method", "tools/call", "--tool-name", "toy__add", "--tool-arg", "a=20", "b=22")
    assert called.returncode == 0 and json.loads(called.stdout)["content"][0]["text"] == "42", called.stderr
    refused = inspect("agd_wrong", "--method", "tools/list")
    assert refused.returncode != 0 and "toy__add" not in refused.stdout


@pytest.fixture
def jwks_server():
    """A JWKS document on loopback (what an authorization server publishes) and the key that signs tokens."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server interface
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", key
    server.shutdown()


async def test_jwt_callers_are_verified_mapped_to_identities_and_pointed_to_their_issuer(tmp_path, jwks_server):
    import time

    import jwt

    jwks_url, key = jwks_server
    port = free_port()
    write_gateway(tmp_path, port)
    config = tmp_path / "agents.yaml"
    config.write_text(  # identities is the config's last section: dana joins it, then jwt follows
        config.read_text()
        + "    dana: {profiles: [support], tools: {block: ['nap']}}\n"
        + f"  jwt: {{issuer: 'https://auth.test', audience: agentdeck-gw, jwks_url: '{jwks_url}',"
        " profiles_claim: gw_profiles, default_profiles: [support]}\n"
    )
    proc, base = serve(tmp_path, port)
    try:

        def token(sub: str, **claims: object) -> str:
            body = {"iss": "https://auth.test", "aud": "agentdeck-gw", "sub": sub, "exp": time.time() + 300, **claims}
            return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})

        names, _ = await session_calls(f"{base}/mcp/support", token("erin"))  # unknown subject: default_profiles
        assert sorted(names) == ["toy__add", "toy__nap"]
        names, _ = await session_calls(f"{base}/mcp/ops", token("erin", gw_profiles=["ops"]))
        assert "toy__delete_customer" in names
        names, _ = await session_calls(f"{base}/mcp/support", token("dana"))  # a configured identity's rules
        assert names == ["toy__add"]
        assert status_of(f"{base}/mcp/ops", token("dana")) == 403

        for bad, why in [
            (token("erin", exp=time.time() - 3600), "Signature has expired"),
            (token("erin", aud="someone-else"), "Audience doesn't match"),
            (token("erin", iss="https://evil.test"), "Invalid issuer"),
            (jwt.encode({"sub": "erin"}, "x" * 32, algorithm="HS256"), "Unable to find a signing key"),
        ]:
            request = urllib.request.Request(f"{base}/mcp/support", data=b"{}", method="POST",
                                             headers={"Authorization": f"Bearer {bad}"})  # fmt: skip
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=5)
            challenge = refused.value.headers["WWW-Authenticate"]
            assert refused.value.code == 401 and why.lower() in challenge.lower(), challenge
            assert f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp/support"' in challenge

        with urllib.request.urlopen(f"{base}/.well-known/oauth-protected-resource/mcp/support") as resp:
            assert json.loads(resp.read()) == {
                "resource": f"{base}/mcp/support", "authorization_servers": ["https://auth.test"],
                "bearer_methods_supported": ["header"], "resource_name": "agentdeck gateway, profile support",
            }  # fmt: skip
    finally:
        stop_all([proc])


async def test_an_upstream_killed_under_load_fails_only_its_own_calls_and_comes_back(gateway):
    import asyncio

    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    results: dict[str, list[bool]] = {"toy": [], "files": []}

    async def client(tool: str, args: dict[str, Any], calls: int) -> None:
        headers = {"Authorization": f"Bearer {ALICE}"}
        url = f"{gateway['base']}/mcp/ops"
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(url, http_client=http)) as c,
        ):
            for _ in range(calls):
                result = await c.call_tool(tool, args)
                results[tool.split("__")[0]].append(not result.is_error)

    async def killer() -> None:
        await asyncio.sleep(0.5)
        assert subprocess.run(["pkill", "-f", f"{gateway['dir']}/toy.count"], check=False).returncode == 0

    load = [client("toy__nap", {"seconds": 0.005}, 150) for _ in range(2)]
    load += [client("files__list_directory", {"path": "."}, 150) for _ in range(3)]
    await asyncio.gather(killer(), *load)
    assert len(results["files"]) == 450 and all(results["files"])  # the other upstream never noticed
    # nap is read-only: each call that met the dead session was sent again on the new one, none failed.
    assert len(results["toy"]) == 300 and all(results["toy"])
    names, (after,) = await session_calls(f"{gateway['base']}/mcp/ops", ALICE, ("toy__add", {"a": 1, "b": 1}))
    assert text(after) == "2" and "toy__add" in names
    stop_all([gateway["proc"]])
    records = [json.loads(line) for line in (gateway["dir"] / "audit.jsonl").read_text().splitlines()]
    assert len(records) == 751  # every call recorded once, failed ones included
    assert {r["status"] for r in records if r["server"] == "files"} == {"ok"}


def test_server_everything_behind_the_gateway_with_its_names_prefixed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("everything")
    binary = npm_install(folder, "@modelcontextprotocol/server-everything@2026.8.31") / "mcp-server-everything"
    project = tmp_path_factory.mktemp("gw")
    port = free_port()
    (project / "agents.yaml").write_text(
        f"servers:\n  everything: {{transport: stdio, command: '{binary}', args: [stdio]}}\n"
        "agents:\n  main: {servers: [everything]}\n"
        f"gateway:\n  servers: [everything]\n  port: {port}\n  profiles: {{all: {{}}}}\n"
        f"  identities: {{alice: {{token_sha256: {hashlib.sha256(ALICE.encode()).hexdigest()}, profiles: [all]}}}}\n"
    )
    proc, base = serve(project, port)
    try:
        import asyncio

        names, (echo, total) = asyncio.run(
            session_calls(f"{base}/mcp/all", ALICE, ("everything__echo", {"message": "hi"}),
                          ("everything__get-sum", {"a": 2, "b": 3}))
        )  # fmt: skip
    finally:
        stop_all([proc])
    assert {"everything__echo", "everything__get-sum"} <= set(names)
    assert all(n.startswith("everything__") for n in names)
    assert "hi" in text(echo) and "5" in text(total)


async def test_sse_profiles_serve_the_same_tools_and_a_session_belongs_to_whoever_opened_it(gateway):
    import httpx2
    from mcp import Client
    from mcp.client.sse import sse_client

    url = f"{gateway['base']}/sse/support"
    async with Client(sse_client(url, headers={"Authorization": f"Bearer {gateway['bob']}"})) as c:
        assert sorted(t.name for t in (await c.list_tools()).tools) == ["toy__add", "toy__nap"]
        assert text(await c.call_tool("toy__add", {"a": 4, "b": 5})) == "9"

    # Alice opens an SSE session; bob, who knows its id, cannot post into it.
    alice = {"Authorization": f"Bearer {ALICE}"}
    async with (
        httpx2.AsyncClient(base_url=gateway["base"]) as http,
        http.stream("GET", "/sse/support", headers=alice) as stream,
    ):
        lines = stream.aiter_lines()
        while not (line := await anext(lines)).startswith("data: "):
            pass
        endpoint = line.removeprefix("data: ").strip()
        assert endpoint.startswith("/sse/support/messages/?session_id=")
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        stolen = await http.post(endpoint, json=ping, headers={"Authorization": f"Bearer {gateway['bob']}"})
        assert stolen.status_code == 404
        assert (await http.post(endpoint, json=ping, headers=alice)).status_code == 202
    assert status_of(f"{gateway['base']}/sse/support/messages/?session_id=x", None) == 401


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # the input-required loop (2026-07-28) and elicitation/create
async def test_a_tool_that_needs_approval_is_asked_of_the_calling_client(gateway, mode):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.types import ElicitResult

    asked: list[str] = []

    def answering(approve: bool | None):
        async def callback(context: Any, params: Any) -> ElicitResult:
            asked.append(params.message)
            if approve is None:
                return ElicitResult(action="decline")
            return ElicitResult(action="accept", content={"approve": approve})

        return callback

    async def delete(customer: int, approve: bool | None, ask: bool = True) -> Any:
        headers = {"Authorization": f"Bearer {ALICE}"}
        url = f"{gateway['base']}/mcp/ops"
        callbacks = {"elicitation_callback": answering(approve)} if ask else {}
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(url, http_client=http), mode=mode, **callbacks) as c,
        ):
            return await c.call_tool("toy__delete_customer", {"customer_id": customer})

    approved = await delete(7, True)
    assert not approved.is_error and text(approved) == "deleted customer 7"
    assert asked[-1].startswith("The agentdeck gateway needs your approval to run toy__delete_customer")
    said_no, declined = await delete(8, False), await delete(9, None)
    assert said_no.is_error and declined.is_error and "was not approved, so it was not run" in text(said_no)
    unasked = await delete(10, True, ask=False)
    assert unasked.is_error and "needs approval, and this client cannot be asked" in text(unasked)
    assert len(asked) == 3  # the client without the capability was never asked
    assert not (await delete(11, True)).is_error

    stop_all([gateway["proc"]])
    records = [json.loads(line) for line in (gateway["dir"] / "audit.jsonl").read_text().splitlines()]
    deletes = [(r["arguments"]["customer_id"], r["status"], r.get("approval")) for r in records]
    assert deletes == [
        (7, "ok", {"decision": "approved", "by": "alice"}),
        (8, "declined", {"decision": "declined", "by": "alice"}),
        (9, "declined", {"decision": "declined", "by": "alice"}),
        (10, "denied", None),
        (11, "ok", {"decision": "approved", "by": "alice"}),
    ]


async def test_an_http_upstream_that_goes_away_leaves_the_lists_and_listeners_are_told(tmp_path):
    import asyncio

    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.types import ToolListChangedNotification

    from tests.conftest import wait_for_port

    toy_port, port = free_port(), free_port()

    def start_toy() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([PY, str(TOY), "http", "--port", str(toy_port)], stderr=subprocess.DEVNULL)
        wait_for_port(toy_port, proc)
        return proc

    toy = start_toy()
    (tmp_path / "agents.yaml").write_text(
        f"servers:\n  toy: {{transport: streamable_http, url: 'http://127.0.0.1:{toy_port}/mcp'}}\n"
        f"  echo: {{transport: stdio, command: {PY}, args: ['{TOY}', '--prefix', 'e_']}}\n"
        "agents:\n  main: {servers: [toy]}\n"
        f"gateway:\n  servers: [toy, echo]\n  port: {port}\n  profiles: {{all: {{}}}}\n"
        f"  identities: {{alice: {{token_sha256: {hashlib.sha256(ALICE.encode()).hexdigest()}, profiles: [all]}}}}\n"
    )
    gateway, base = serve(tmp_path, port)
    headers = {"Authorization": f"Bearer {ALICE}"}
    told_legacy: list[str] = []  # an older client cannot listen; it is told on its session's stream

    async def legacy_heard(message: Any) -> None:
        if isinstance(message, ToolListChangedNotification):
            told_legacy.append(message.method)

    try:
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(f"{base}/mcp/all", http_client=http)) as c,
            c.listen(tools_list_changed=True) as changes,
            httpx2.AsyncClient(headers=headers) as http_legacy,
            Client(
                streamable_http_client(f"{base}/mcp/all", http_client=http_legacy), mode="legacy",
                message_handler=legacy_heard,
            ) as old,
        ):  # fmt: skip
            assert "toy__add" in {t.name for t in (await old.list_tools()).tools}
            events = aiter(changes)

            async def names() -> set[str]:
                return {t.name for t in (await c.list_tools()).tools}

            assert {"toy__add", "echo__e_add"} <= await names()
            stop_all([toy])
            await asyncio.wait_for(anext(events), 15)  # the gateway noticed, unasked
            assert not any(n.startswith("toy__") for n in await names()) and "echo__e_add" in await names()
            failed = await c.call_tool("echo__e_add", {"a": 1, "b": 2})
            assert text(failed) == "3"  # the other upstream goes on
            with urllib.request.urlopen(f"{base}/healthz") as resp:
                assert json.loads(resp.read())["status"] == "degraded"
            for _ in range(50):
                if told_legacy:
                    break
                await asyncio.sleep(0.1)
            assert told_legacy, "the legacy client was not told its list changed"
            toy = start_toy()
            await asyncio.wait_for(anext(events), 15)  # and it is back
            assert "toy__add" in await names()
            await asyncio.sleep(0.5)
            assert len(told_legacy) >= 2
            assert text(await c.call_tool("toy__add", {"a": 2, "b": 2})) == "4"
    finally:
        stop_all([gateway, toy])
