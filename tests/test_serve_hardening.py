"""Issue #12 §4 and §8: exact Host/Origin port checks over real HTTP, serverInfo.version, reference error wording."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import httpx2
import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import INITIALIZE, PY, ROOT, clean_env, free_port, stop_all, wait_for_port

MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "hello.txt").write_text("hello\n")
    (ws / "sub").mkdir()
    return ws


@pytest.fixture
def serve_fs(workspace: Path) -> Iterator[Callable[..., int]]:
    """Start `python -m servers.filesystem --root WS --transport T --port P [args]`; returns P."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, transport: str = "http") -> int:
        port = free_port()
        cmd = [PY, "-m", "servers.filesystem", "--root", str(workspace), "--transport", transport, "--port", str(port)]
        proc = subprocess.Popen(
            [*cmd, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env(), cwd=ROOT
        )
        procs.append(proc)
        wait_for_port(port, proc, timeout=60)
        return port

    yield start
    stop_all(procs)


def post_initialize(url: str, headers: dict[str, str]) -> int:
    """The status of a real initialize POST with the given extra headers (Host/Origin/Authorization)."""
    with httpx2.Client(timeout=10) as http:
        return http.post(url, content=json.dumps(INITIALIZE), headers={**MCP_HEADERS, **headers}).status_code


def other_port(port: int) -> int:
    return 9999 if port != 9999 else 9998


def test_host_and_origin_must_name_the_bound_port_exactly(serve_fs):
    port = serve_fs()
    url = f"http://127.0.0.1:{port}/mcp"
    wrong = other_port(port)
    cases = [
        ({"host": f"127.0.0.1:{port}"}, 200),
        ({"host": f"localhost:{port}"}, 200),
        ({"host": f"LOCALHOST:{port}"}, 200),
        ({"host": f"[::1]:{port}"}, 200),
        ({"host": f"127.0.0.1:{port}", "origin": f"http://127.0.0.1:{port}"}, 200),
        ({"host": f"127.0.0.1:{port}", "origin": f"http://localhost:{port}"}, 200),
        ({"host": f"127.0.0.1:{wrong}"}, 421),
        ({"host": f"127.0.0.1:{port}.evil.example"}, 421),
        ({"host": "127.0.0.1:abc"}, 421),
        ({"host": f"127.0.0.1:0{port}"}, 421),
        ({"host": "127.0.0.1:"}, 421),
        ({"host": "127.0.0.1"}, 421),  # no port means 80/443, and this server is not on either
        ({"host": f"evil.example:{port}"}, 421),
        ({"host": f"127.0.0.1:{port}", "origin": f"http://127.0.0.1:{wrong}"}, 403),
        ({"host": f"127.0.0.1:{port}", "origin": f"http://127.0.0.1:{port}.evil.example"}, 403),
        ({"host": f"127.0.0.1:{port}", "origin": "http://127.0.0.1:abc"}, 403),
        ({"host": f"127.0.0.1:{port}", "origin": "http://127.0.0.1"}, 403),
        ({"host": f"127.0.0.1:{port}", "origin": f"http://evil.example:{port}"}, 403),
        ({"host": f"127.0.0.1:{port}", "origin": "null"}, 403),
    ]
    got = [(headers, post_initialize(url, headers)) for headers, _ in cases]
    assert got == [(headers, status) for headers, status in cases]


def test_sse_endpoint_checks_the_port_too(serve_fs):
    port = serve_fs(transport="sse")
    url = f"http://127.0.0.1:{port}/sse"
    with httpx2.Client(timeout=10) as http:
        for host, status in ((f"127.0.0.1:{port}", 200), (f"127.0.0.1:{other_port(port)}", 421)):
            with http.stream("GET", url, headers={"host": host, "accept": "text/event-stream"}) as response:
                assert response.status_code == status, host


def non_loopback_addresses() -> list[str]:
    """This machine's non-loopback addresses, found independently of the server's own enumeration."""
    found: list[str] = []
    if shutil.which("hostname"):
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False).stdout
        found += out.split()
    if not found:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect(("192.0.2.1", 9))
                found.append(probe.getsockname()[0])
        except OSError:
            pass
    keep = []
    for address in found:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not (ip.is_loopback or ip.is_unspecified or ip.is_link_local):
            keep.append(ip.compressed)
    return keep


def test_wildcard_bind_with_token_accepts_the_machines_own_addresses(serve_fs):
    port = serve_fs("--host", "0.0.0.0", "--token", "s3cret")
    auth = {"authorization": "Bearer s3cret"}
    url = f"http://127.0.0.1:{port}/mcp"
    assert post_initialize(url, {**auth, "host": f"127.0.0.1:{port}"}) == 200
    assert post_initialize(url, {**auth, "host": f"evil.example:{port}"}) == 421
    addresses = non_loopback_addresses()
    if not addresses:
        pytest.skip("this machine has no non-loopback interface address")
    for address in addresses:
        shown = f"[{address}]" if ":" in address else address
        assert post_initialize(url, {**auth, "host": f"{shown}:{port}"}) == 200, address
        assert post_initialize(url, {**auth, "host": f"{shown}:{other_port(port)}"}) == 421, address
    # A real client on the LAN address: its Host header is that address and the bound port.
    ipv4 = [a for a in addresses if ":" not in a]
    if ipv4:
        assert post_initialize(f"http://{ipv4[0]}:{port}/mcp", auth) == 200


def test_allow_host_takes_a_name_or_a_name_and_port(serve_fs, workspace):
    port = serve_fs("--allow-host", "files.example", "--allow-host", "proxy.example:443")
    url = f"http://127.0.0.1:{port}/mcp"
    assert post_initialize(url, {"host": f"files.example:{port}"}) == 200
    assert post_initialize(url, {"host": f"files.example:{other_port(port)}"}) == 421
    assert post_initialize(url, {"host": "proxy.example:443", "origin": "https://proxy.example"}) == 200
    # A TLS proxy that forwards the client's Host sends no port for 443.
    assert post_initialize(url, {"host": "proxy.example"}) == 200
    assert post_initialize(url, {"host": f"proxy.example:{port}"}) == 421
    bad = subprocess.run(
        [PY, "-m", "servers.filesystem", "--root", str(workspace), "--transport", "http", "--port", "0",
         "--allow-host", "files.example:abc"],
        capture_output=True, text=True, env=clean_env(), cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "bad --allow-host 'files.example:abc'" in bad.stderr
    assert "serving" not in bad.stderr


def stdio_params(name: str, tmp_path: Path, workspace: Path) -> StdioServerParameters:
    extra = ["--root", str(workspace)] if name == "filesystem" else ["--db", str(tmp_path / "c.db"), "--size", "20"]
    return StdioServerParameters(command=PY, args=["-m", f"servers.{name}", *extra], cwd=str(ROOT), env=clean_env())


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize("name", ["filesystem", "customers"])
async def test_server_info_reports_the_package_version(name, mode, tmp_path, workspace):
    async with Client(stdio_params(name, tmp_path, workspace), mode=mode) as client:
        info = client.server_info
    assert info is not None
    assert info.version == version("agentdeck") != ""


async def test_os_errors_use_the_reference_wording_in_every_tool(tmp_path, workspace):
    root = os.path.realpath(workspace)
    enoent = "ENOENT: no such file or directory"
    async with Client(stdio_params("filesystem", tmp_path, workspace)) as client:

        async def text(tool: str, **args: object) -> str:
            result = await client.call_tool(tool, args)
            return result.content[0].text

        async def error(tool: str, **args: object) -> str:
            result = await client.call_tool(tool, args)
            assert result.is_error
            # The SDK puts its own prefix before every tool error; the rest is the server's message.
            return result.content[0].text.removeprefix(f"Error executing tool {tool}: ")

        many = (await text("read_multiple_files", paths=["hello.txt", "nope.txt"])).split("\n---\n")
        assert many == ["hello.txt:\nhello\n\n", f"nope.txt: Error - {enoent}, open '{root}/nope.txt'"]
        missing_parent = await text("read_multiple_files", paths=["gone/nope.txt"])
        assert missing_parent == f"gone/nope.txt: Error - {enoent}, open '{root}/gone/nope.txt'"
        assert await error("read_text_file", path="nope.txt") == f"{enoent}, open '{root}/nope.txt'"
        assert await error("read_media_file", path="gone/x.png") == f"{enoent}, open '{root}/gone/x.png'"
        assert await error("list_directory", path="gone") == f"{enoent}, scandir '{root}/gone'"
        assert await error("get_file_info", path="nope.txt") == f"{enoent}, stat '{root}/nope.txt'"
        assert await error("move_file", source="nope.txt", destination="sub/x.txt") == (
            f"{enoent}, rename '{root}/nope.txt' -> '{root}/sub/x.txt'"
        )
        assert (
            await error("read_text_file", path="sub") == f"EISDIR: illegal operation on a directory, open '{root}/sub'"
        )
        assert (
            await error("list_directory", path="hello.txt") == f"ENOTDIR: not a directory, scandir '{root}/hello.txt'"
        )
    assert "[Errno" not in "".join(many)
