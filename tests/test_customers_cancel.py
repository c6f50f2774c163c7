"""The customers server's cancel_order (#14): it asks the person (MCP elicitation) before it cancels."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pexpect
import pytest
from mcp import Client
from mcp.types import ElicitResult

from servers.customers.db import ensure_database
from servers.customers.server import build_server
from tests.conftest import PY, ROOT, clean_env


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "customers.db"
    ensure_database(path, 200)
    return path


def order_with(path: Path, status: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT id FROM orders WHERE status = ? ORDER BY id LIMIT 1", (status,)).fetchone()[0])
    finally:
        conn.close()


def status_of(path: Path, order_id: int) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("SELECT status FROM orders WHERE id = ?", (order_id,)).fetchone()[0])
    finally:
        conn.close()


def answering(action: str, content: dict[str, Any] | None = None, seen: list[str] | None = None) -> Any:
    async def elicit(context: Any, params: Any) -> ElicitResult:
        if seen is not None:
            seen.append(params.message)
        return ElicitResult(action=action, content=content)  # type: ignore[arg-type]

    return elicit


async def test_the_user_is_shown_the_order_and_their_answer_decides(db: Path) -> None:
    pending, paid = order_with(db, "pending"), order_with(db, "paid")
    seen: list[str] = []
    confirm = answering("accept", {"confirm": True, "reason": "out of stock"}, seen)
    async with Client(build_server(db), elicitation_callback=confirm) as c:
        done = (await c.call_tool("cancel_order", {"order_id": pending})).structured_content
    assert done == {
        "order_id": pending,
        "cancelled": True,
        "status": "cancelled",
        "reason": "out of stock",
        "note": "out of stock",
    }
    assert status_of(db, pending) == "cancelled"
    assert seen[0].startswith(f"Cancel order {pending} for ") and seen[0].endswith("pending?")
    refund = answering("accept", {"confirm": True, "refund": True})
    async with Client(build_server(db), elicitation_callback=refund) as c:
        done = (await c.call_tool("cancel_order", {"order_id": paid})).structured_content
    assert done["status"] == "refunded" and status_of(db, paid) == "refunded"


async def test_declining_or_not_confirming_changes_nothing(db: Path) -> None:
    pending = order_with(db, "pending")
    for how, answer in (
        ("the user declined it", answering("decline")),
        ("the user did not confirm it", answering("accept", {"confirm": False})),
    ):
        async with Client(build_server(db), elicitation_callback=answer) as c:
            result = (await c.call_tool("cancel_order", {"order_id": pending})).structured_content
        assert result["cancelled"] is False and result["note"] == how
        assert status_of(db, pending) == "pending"


async def test_orders_that_cannot_be_cancelled_are_refused_before_asking(db: Path) -> None:
    shipped = order_with(db, "shipped")
    seen: list[str] = []
    async with Client(build_server(db), elicitation_callback=answering("accept", {"confirm": True}, seen)) as c:
        result = await c.call_tool("cancel_order", {"order_id": shipped})
        missing = await c.call_tool("cancel_order", {"order_id": 10**9})
    assert result.is_error and "only pending or paid orders can be cancelled" in result.content[0].text
    assert missing.is_error and "not found" in missing.content[0].text
    assert seen == [] and status_of(db, shipped) == "shipped"


def test_through_agentdeck_the_form_is_asked_on_the_terminal(db: Path, tmp_path: Path) -> None:
    pending = order_with(db, "pending")
    rules = ROOT / "examples" / "offline_rules.yaml"
    (tmp_path / "agents.yaml").write_text(
        f"providers:\n  offline: {{kind: offline, rules: '{rules}'}}\n"
        f"servers:\n  customers: {{transport: stdio, command: '{PY}', args: ['-m', 'servers.customers', '--db', '{db}']}}\n"
        "agents:\n  main: {servers: [customers]}\n"
    )
    env = clean_env(AGENTDECK_STATE_DIR=str(tmp_path / "state"), PYTHONPATH=str(ROOT))
    child = pexpect.spawn(
        PY, ["-m", "app", "run", "--quiet", f"cancel order {pending}"], cwd=str(tmp_path), env=env, encoding="utf-8",
        timeout=60,
    )  # fmt: skip
    child.expect(f"customers asks: Cancel order {pending} for ")
    child.expect(r"\[a\]ccept")
    child.sendline("a")
    child.expect(r"Cancel the order\* \(y/n\): ")
    child.sendline("y")
    child.expect(r"Reason \(customer request, payment problem, out of stock, other\) \[customer request\]: ")
    child.sendline("3")
    child.expect(r"Refund \(y/n\) \[n\]: ")
    child.sendline("")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert f"Order {pending} is now cancelled (out of stock)." in str(child.before)
    assert status_of(db, pending) == "cancelled"
