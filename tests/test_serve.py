"""`agentdeck serve`: the bundled servers over stdio and HTTP, through the spine; tokens and Host checks."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.conftest import INITIALIZE, PY, clean_env, free_port, run_cli, stop_all, wait_for_port


@pytest.fixture
def served(tmp_path):
    """Start `agentdeck serve NAME --transport http ...` on a free port."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> int:
        port = free_port()
        cmd = [PY, "-m", "app", "serve", name, "--transport", "http", "--port", str(port), *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(), cwd=tmp_path)
        procs.append(proc)
        wait_for_port(port, proc, timeout=60)
        return port

    yield start
    stop_all(procs)


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "hello.txt").write_text("hello over the wire\n")
    return ws


def test_filesystem_over_stdio_through_the_spine(tmp_path, workspace):
    (tmp_path / "agents.yaml").write_text(
        f"servers:\n  fs: {{transport: stdio, command: agentdeck, args: [serve, filesystem, --root, '{workspace}']}}\n"
        "agents:\n  main: {servers: [fs]}\n"
    )
    r = run_cli("tools", "call", "fs", "read_text_file", "--args", '{"path": "hello.txt"}', cwd=tmp_path)
    assert r.code == 0, r.err
    assert r.out == "hello over the wire\n\n"
    r = run_cli("tools", "call", "fs", "read_text_file", "--args", '{"path": "/etc/passwd"}', cwd=tmp_path)
    assert r.code == 1 and "Access denied" in r.out


def test_customers_over_stdio_through_the_spine(tmp_path):
    db = tmp_path / "c.db"
    (tmp_path / "agents.yaml").write_text(
        f"servers:\n  crm: {{transport: stdio, command: python, args: [-m, servers.customers, --db, '{db}', --size, '300'], start_timeout: 60}}\n"
        "agents:\n  main: {servers: [crm]}\n"
    )
    r = run_cli("tools", "call", "crm", "get_customer", "--args", '{"customer_id": 1}', "--json", cwd=tmp_path)
    assert r.code == 0, r.err
    assert json.loads(r.out)["structuredContent"]["id"] == 1
    assert db.exists()


@pytest.mark.parametrize("name", ["filesystem", "customers"])
def test_http_with_token(served, tmp_path, workspace, name):
    extra = ["--root", str(workspace)] if name == "filesystem" else ["--db", str(tmp_path / "c.db"), "--size", "200"]
    port = served(name, *extra, "--token", "s3cret-token")
    tool, args = ("list_allowed_directories", "{}") if name == "filesystem" else ("list_tables", "{}")
    for header, expect in (("Bearer s3cret-token", 0), ("Bearer wrong", 1)):
        (tmp_path / "agents.yaml").write_text(
            f"servers:\n  s: {{transport: streamable_http, url: 'http://127.0.0.1:{port}/mcp', headers: {{Authorization: '{header}'}}, start_timeout: 10}}\n"
            "agents:\n  main: {servers: [s]}\n"
        )
        r = run_cli("tools", "call", "s", tool, "--args", args, cwd=tmp_path)
        assert r.code == expect, r.err
        if expect == 0:
            assert ("Allowed directories" in r.out) if name == "filesystem" else ("customers" in r.out)
        else:
            assert "401" in r.err or "Unauthorized" in r.err or "failed to start" in r.err
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/mcp", data=b"{}", method="POST", headers={"content-type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=5)
    assert info.value.code == 401


def test_dns_rebinding_is_refused(served, workspace):
    port = served("filesystem", "--root", str(workspace))
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/mcp",
        data=b"{}",
        method="POST",
        headers={
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "host": "evil.example:80",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=5)
    assert info.value.code in (400, 403, 421)


def test_non_loopback_needs_a_token(tmp_path, workspace):
    r = run_cli(
        "serve", "filesystem", "--root", str(workspace), "--transport", "http", "--host", "0.0.0.0", cwd=tmp_path
    )
    assert r.code == 2 and "pass --token" in r.err


def test_serve_usage_errors(tmp_path):
    r = run_cli("serve", "filesytem", cwd=tmp_path)
    assert r.code == 2 and "did you mean 'filesystem'?" in r.err
    r = run_cli("serve", "filesystem", "--root", str(tmp_path / "missing"), cwd=tmp_path)
    assert r.code == 2 and "does not exist" in r.err


def test_stdio_stdout_carries_only_json_rpc(tmp_path):
    db = tmp_path / "c.db"
    proc = subprocess.Popen(
        [PY, "-m", "app", "serve", "customers", "--db", str(db), "--size", "100"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(), cwd=tmp_path,
    )  # fmt: skip
    bad = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "get_customer", "arguments": {"customer_id": 424242}},
    }
    out, err = proc.communicate((json.dumps(INITIALIZE) + "\n" + json.dumps(bad) + "\n").encode(), timeout=60)
    lines = [line for line in out.decode().splitlines() if line.strip()]
    assert lines, err
    assert all(json.loads(line)["jsonrpc"] == "2.0" for line in lines)
    assert b"created" in err and b"Traceback" not in err


def test_customers_over_sse(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [PY, "-m", "app", "serve", "customers", "--db", str(tmp_path / "c.db"), "--size", "200", "--transport", "sse", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env(), cwd=tmp_path,
    )  # fmt: skip
    try:
        wait_for_port(port, proc, timeout=60)
        (tmp_path / "agents.yaml").write_text(
            f"servers:\n  crm: {{transport: sse, url: 'http://127.0.0.1:{port}/sse'}}\nagents:\n  main: {{servers: [crm]}}\n"
        )
        r = run_cli(
            "tools", "call", "crm", "search_customers", "--args", '{"query": "Ada", "limit": 3}', "--json", cwd=tmp_path
        )
        assert r.code == 0, r.err
        assert json.loads(r.out)["structuredContent"]["count"] >= 1
    finally:
        stop_all([proc])


@pytest.mark.asyncio
async def test_served_connections_turn_nagle_off():
    """Keep-alive responses must not wait on the peer's delayed ACK (~40 ms each on Linux)."""
    import asyncio
    import socket

    from servers.serving import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    # The same path uvicorn takes when handed pre-bound sockets: loop.create_server(sock=...).
    server = await asyncio.start_server(on_connect, sock=sock)
    async with server:
        _, writer = await asyncio.open_connection(*sock.getsockname())
        assert await asyncio.wait_for(accepted, 5) == 1
        writer.close()
