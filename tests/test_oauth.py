"""OAuth to remote servers against a real local authorization server and protected MCP server.

The pair is tests/fixture_servers/oauth_pair.py, built from the mcp SDK's auth components (loopback
only). The browser is tests/fixture_servers/browser.py, run by Python's webbrowser module through
$BROWSER: it opens the authorization URL and follows the redirect back to agentdeck's loopback port.
"""

from __future__ import annotations

import json
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PY, ROOT, clean_env, free_port, stop_all, wait_for_port

PAIR = ROOT / "tests" / "fixture_servers" / "oauth_pair.py"
BROWSER = ROOT / "tests" / "fixture_servers" / "browser.py"
MACHINE_SECRET = "machine-secret-4242"


@dataclass
class Pair:
    issuer: str
    mcp_url: str
    log: Path

    def events(self, event: str, grant: str | None = None) -> list[dict]:
        if not self.log.exists():
            return []
        rows = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [r for r in rows if r["event"] == event and (grant is None or r.get("grant_type") == grant)]


@pytest.fixture
def pair(tmp_path):
    procs: list[subprocess.Popen[bytes]] = []

    def start(token_ttl: int = 3600) -> Pair:
        as_port, rs_port = free_port(), free_port()
        log = tmp_path / "pair.log"
        args = [PY, str(PAIR), "--as-port", str(as_port), "--rs-port", str(rs_port), "--log", str(log)]
        args += ["--client", f"svc:{MACHINE_SECRET}", "--token-ttl", str(token_ttl)]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        wait_for_port(rs_port, proc)
        wait_for_port(as_port, proc)
        return Pair(f"http://127.0.0.1:{as_port}", f"http://127.0.0.1:{rs_port}/mcp", log)

    yield start
    stop_all(procs)


def project(tmp_path: Path, pair: Pair) -> Path:
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  - when: {user: 'who am i'}\n    call: [{tool: whoami, args: {}}]\n    reply: 'You are {output}'\n"
    )
    (tmp_path / "agents.yaml").write_text(
        "providers:\n  offline: {kind: offline, rules: rules.yaml}\n"
        "servers:\n"
        f"  remote: {{transport: streamable_http, url: '{pair.mcp_url}', auth: {{type: oauth, scopes: [mcp:tools]}}}}\n"
        f"  machine: {{transport: streamable_http, url: '{pair.mcp_url}', auth: {{type: client_credentials,"
        f" client_id: svc, client_secret: '${{SVC_SECRET}}', scopes: [mcp:tools], issuer: '{pair.issuer}'}}}}\n"
        "  plain: {transport: streamable_http, url: 'http://127.0.0.1:9/mcp'}\n"
        "agents:\n  main: {servers: [remote]}\n"
    )
    return tmp_path


def cli(tmp_path: Path, *args: str, browser: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    opener = browser or f"{PY} {BROWSER} --log {tmp_path / 'browser.log'} %s"
    environ = clean_env(AGENTDECK_STATE_DIR=str(tmp_path / "state"), BROWSER=opener, SVC_SECRET=MACHINE_SECRET, **env)
    return subprocess.run(
        [PY, "-m", "app", *args], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120
    )


def saved_secrets(state: Path) -> list[str]:
    """Every token value in the saved logins."""
    values = []
    for path in (state / "oauth").glob("*.json"):
        for entry in json.loads(path.read_text()).get("tokens", {}).values():
            values += [entry["token"]["access_token"], entry["token"].get("refresh_token") or ""]
    return [v for v in values if v]


def test_a_browser_login_is_saved_used_and_logged_out(tmp_path, pair):
    remote = pair()
    project(tmp_path, remote)
    outputs: list[str] = []

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        result = cli(tmp_path, *args, **env)
        outputs.extend([result.stdout, result.stderr])
        return result

    before = run("tools", "call", "remote", "whoami")
    assert before.returncode == 1
    assert "it needs you to log in" in before.stderr and "hint: run `agentdeck auth login remote`" in before.stderr
    assert not (tmp_path / "browser.log").exists()  # a command never opens a browser by itself

    login = run("auth", "login", "remote")
    assert login.returncode == 0, login.stderr
    assert login.stdout.startswith(f"Logged in to remote at {remote.issuer}; 2 tools.")
    opened = (tmp_path / "browser.log").read_text().split()
    assert len(opened) == 1 and opened[0].startswith(f"{remote.issuer}/authorize?")
    assert "code_challenge_method=S256" in opened[0] and "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in opened[0]
    assert opened[0] in login.stderr  # printed too, for when no browser opens
    assert len(remote.events("register")) == 1 and len(remote.events("token", "authorization_code")) == 1

    folder = tmp_path / "state" / "oauth"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())

    assert run("tools", "call", "remote", "whoami").stdout.strip() == "alice mcp:tools"
    answer = run("run", "who am i", "--json")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["output"] == "You are alice mcp:tools"
    # The machine's credentials get their own token, without a browser.
    assert run("tools", "call", "machine", "whoami").stdout.strip() == "svc mcp:tools"
    assert len(remote.events("token", "client_credentials")) == 1

    status = json.loads(run("auth", "status", "--json").stdout)
    by_server = {row["server"]: row for row in status}
    assert by_server["remote"]["logged_in"] and by_server["remote"]["issuer"] == remote.issuer
    assert by_server["remote"]["scopes"] == "mcp:tools" and by_server["remote"]["refreshable"]
    assert by_server["machine"]["logged_in"] and not by_server["machine"]["refreshable"]
    assert "plain" not in by_server
    table = run("auth", "status").stdout
    assert "remote" in table and "logged in, expires in" in table

    # Debug logs show HTTP traffic; still no token and no secret in anything printed.
    debug = run("tools", "call", "remote", "whoami", AGENTDECK_DEBUG="1")
    assert debug.returncode == 0 and "HTTP Request: POST" in debug.stderr, debug.stderr
    secrets = [*saved_secrets(tmp_path / "state"), MACHINE_SECRET]
    assert len(secrets) >= 3
    for text in outputs:
        for secret in secrets:
            assert secret not in text

    out = run("auth", "logout", "remote")
    assert out.stdout.strip() == "Logged out of remote: its tokens are deleted from this machine."
    assert run("auth", "logout", "remote").stdout.strip() == "remote: not logged in."
    assert not json.loads(run("auth", "status", "remote", "--json").stdout)[0]["logged_in"]
    assert "it needs you to log in" in run("tools", "call", "remote", "whoami").stderr
    # Logging in again reuses the registration kept with the issuer.
    assert run("auth", "login", "remote").returncode == 0
    assert len(remote.events("register")) == 1 and len(remote.events("token", "authorization_code")) == 2


def test_an_expired_token_is_refreshed_by_a_later_process_without_a_browser(tmp_path, pair):
    remote = pair(token_ttl=2)
    project(tmp_path, remote)
    assert cli(tmp_path, "auth", "login", "remote").returncode == 0
    first = saved_secrets(tmp_path / "state")
    time.sleep(2.5)
    result = cli(tmp_path, "tools", "call", "remote", "whoami")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "alice mcp:tools"
    assert len(remote.events("token", "refresh_token")) == 1
    assert len(remote.events("authorize")) == 1  # no second browser login
    assert set(saved_secrets(tmp_path / "state")).isdisjoint(first)  # the new tokens replaced the old


def test_login_mistakes_are_one_clear_line(tmp_path, pair):
    remote = pair()
    project(tmp_path, remote)
    unknown = cli(tmp_path, "auth", "login", "remot")
    assert unknown.returncode == 2 and "there is no server 'remot'" in unknown.stderr
    assert "did you mean 'remote'" in unknown.stderr.lower()
    plain = cli(tmp_path, "auth", "login", "plain")
    assert plain.returncode == 2 and "server 'plain' has no 'auth' to log in with" in plain.stderr
    silent = cli(tmp_path, "auth", "login", "remote", "--timeout", "2", browser="true %s")
    assert silent.returncode == 1
    assert "no answer from the browser within 2 s" in silent.stderr and "Traceback" not in silent.stderr


@pytest.mark.parametrize(
    ("server", "message"),
    [
        (
            "{transport: streamable_http, url: 'http://h/mcp', hosted: true, auth: {type: oauth}}",
            "agentdeck cannot log in for it",
        ),
        (
            "{transport: sse, url: 'http://h/sse', headers: {Authorization: 'Bearer x'}, auth: {type: oauth}}",
            "set 'auth' or an Authorization header, not both",
        ),
        (
            "{transport: streamable_http, url: 'http://h/mcp', auth: {type: oauth, client_id: app}}",
            "needs the 'redirect_port'",
        ),
        (
            "{transport: streamable_http, url: 'http://h/mcp', auth: {type: client_credentials, client_id: a,"
            " client_secret: b}}",
            "issuer",
        ),
        (
            "{transport: streamable_http, url: 'http://h/mcp', auth: {type: oauth, client_metadata_url: 'http://x'}}",
            "must be an https:// URL with a path",
        ),
    ],
)
def test_auth_settings_are_checked(tmp_path, server, message):
    (tmp_path / "agents.yaml").write_text(
        f"providers:\n  offline: {{kind: offline}}\nservers:\n  s: {server}\nagents:\n  main: {{servers: [s]}}\n"
    )
    result = cli(tmp_path, "config", "validate")
    assert result.returncode == 2 and message in result.stderr, result.stderr


async def test_the_loopback_listener_answers_only_its_callback():
    import asyncio

    from app.oauth.flow import Callback, authorization_result

    port = free_port()
    callback = Callback(port)
    await callback.start()
    try:

        async def get(path: str) -> str:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            await writer.drain()
            reply = (await reader.read()).decode()
            writer.close()
            return reply

        assert (await get("/favicon.ico")).startswith("HTTP/1.1 404")
        assert not callback.answer.done()
        assert "Logged in" in await get("/callback?code=abc&state=xyz&iss=http%3A%2F%2Fas")
        assert await callback.answer == {"code": "abc", "state": "xyz", "iss": "http://as"}
    finally:
        await callback.close()
    result = authorization_result({"code": "abc", "state": "xyz"})
    assert (result.code, result.state, result.iss) == ("abc", "xyz", None)
    with pytest.raises(Exception, match="refused: access_denied \\(the user said no\\)"):
        authorization_result({"error": "access_denied", "error_description": "the user said no"})
