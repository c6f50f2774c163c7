"""The customer-database server: typed tools, write tools, and an injection table against every tool."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from mcp import Client

from servers.customers.db import DatabaseError, ensure_database
from servers.customers.server import build_server
from servers.customers.sql_guard import QueryLimits


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("db") / "customers.db"
    assert ensure_database(path, 500) is True
    return path


@pytest.fixture
def db(seeded, tmp_path) -> Path:
    """A private copy per test, so writes do not leak between tests."""
    copy = tmp_path / "customers.db"
    copy.write_bytes(seeded.read_bytes())
    return copy


def state(path: Path) -> tuple[str, dict[str, int], str]:
    """Schema, row counts and a content hash: anything a successful attack would change."""
    conn = sqlite3.connect(path)
    try:
        schema = "\n".join(r[0] or "" for r in conn.execute("SELECT sql FROM sqlite_master ORDER BY name"))
        counts = {
            t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]
            for t in ("customers", "orders", "order_items", "products", "companies")
        }
        digest = hashlib.sha256(
            repr(conn.execute("SELECT * FROM customers ORDER BY id").fetchall()).encode()
        ).hexdigest()
    finally:
        conn.close()
    return schema, counts, digest


async def test_seeding_is_deterministic_and_never_overwrites(tmp_path, seeded):
    other = tmp_path / "again.db"
    ensure_database(other, 500)
    assert state(other) == state(seeded)
    before = seeded.stat().st_mtime_ns
    assert ensure_database(seeded, 10) is False  # opened, not re-seeded
    assert seeded.stat().st_mtime_ns == before and state(seeded)[1]["customers"] == 500
    junk = tmp_path / "notes.txt"
    junk.write_text("my precious notes")
    with pytest.raises(DatabaseError, match="not a usable SQLite database"):
        ensure_database(junk, 10)
    assert junk.read_text() == "my precious notes"
    assert not list(tmp_path.glob(".*.seeding"))


def test_data_is_spread_and_proportional(seeded):
    conn = sqlite3.connect(seeded)
    years = {r[0] for r in conn.execute("SELECT DISTINCT substr(ordered_at, 1, 4) FROM orders")}
    statuses = {r[0] for r in conn.execute("SELECT DISTINCT status FROM orders")}
    countries = conn.execute("SELECT COUNT(DISTINCT country_code) FROM customers").fetchone()[0]
    orders = conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    conn.close()
    assert len(years) >= 6 and {"delivered", "cancelled", "refunded"} <= statuses and countries >= 10
    assert 500 <= orders <= 1500


async def test_typed_read_tools(db):
    async with Client(build_server(db)) as c:
        found = (await c.call_tool("search_customers", {"query": "Ada"})).structured_content
        assert found["count"] >= 1 and all("Ada" in x["name"] or "ada" in x["email"] for x in found["customers"])
        first = found["customers"][0]
        by_email = (
            await c.call_tool("search_customers", {"query": first["email"][:12], "field": "email"})
        ).structured_content
        assert first["id"] in [x["id"] for x in by_email["customers"]]
        by_company = (
            await c.call_tool("search_customers", {"query": first["company"], "field": "company", "limit": 100})
        ).structured_content
        assert all(
            x["company"] == first["company"] or first["company"].split()[0] in x["company"]
            for x in by_company["customers"]
        )
        detail = (await c.call_tool("get_customer", {"customer_id": first["id"]})).structured_content
        assert detail["id"] == first["id"] and detail["order_count"] >= 0
        orders = (await c.call_tool("get_customer_orders", {"customer_id": 2, "limit": 3})).structured_content
        for o in orders["orders"]:
            assert o["total"] == round(sum(i["line_total"] for i in o["items"]), 2)
        dates = [o["ordered_at"] for o in orders["orders"]]
        assert dates == sorted(dates, reverse=True)
        report = (
            await c.call_tool("revenue_report", {"group_by": "month", "since": "2024-01-01", "until": "2024-12-31"})
        ).structured_content
        assert report["rows"] and all(r["key"].startswith("2024-") for r in report["rows"])
        bad_date = await c.call_tool("revenue_report", {"group_by": "month", "since": "last tuesday"})
        assert bad_date.is_error and "must be a date" in bad_date.content[0].text
        missing = await c.call_tool("get_customer", {"customer_id": 999999})
        assert missing.is_error and missing.content[0].text.endswith("Customer 999999 not found")
        missing = await c.call_tool("get_customer_orders", {"customer_id": 999999})
        assert missing.is_error and "Customer 999999 not found" in missing.content[0].text
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert tools["search_customers"].annotations.read_only_hint is True
        assert tools["update_customer_email"].annotations.destructive_hint is True
        assert tools["create_order"].annotations.destructive_hint is True


async def test_write_tools(db):
    async with Client(build_server(db)) as c:
        updated = await c.call_tool("update_customer_email", {"customer_id": 3, "email": "grace@navy.example"})
        assert updated.structured_content["email"] == "grace@navy.example"
        found = (await c.call_tool("search_customers", {"query": "grace@navy", "field": "email"})).structured_content
        assert [x["id"] for x in found["customers"]] == [3]
        assert (await c.call_tool("search_customers", {"query": "navy"})).structured_content["customers"][0]["id"] == 3
        invalid = await c.call_tool("update_customer_email", {"customer_id": 3, "email": "not an email"})
        assert invalid.is_error and "not a valid email" in invalid.content[0].text
        dup = await c.call_tool("update_customer_email", {"customer_id": 4, "email": "grace@navy.example"})
        assert dup.is_error and "already uses" in dup.content[0].text
        order = await c.call_tool(
            "create_order",
            {"customer_id": 5, "items": [{"product_id": 1, "quantity": 2}, {"product_id": 2, "quantity": 1}]},
        )
        o = order.structured_content
        assert o["status"] == "pending" and o["total"] == 9.0 * 2 + 49.0
        before = state(db)
        bad = await c.call_tool(
            "create_order",
            {"customer_id": 5, "items": [{"product_id": 1, "quantity": 1}, {"product_id": 999, "quantity": 1}]},
        )
        assert bad.is_error and "Product 999 not found" in bad.content[0].text
        assert state(db) == before  # the transaction rolled back the first item too


async def test_ad_hoc_sql_reads_with_caps(db):
    async with Client(build_server(db, QueryLimits(max_rows=5, seconds=1.0))) as c:
        r = (
            await c.call_tool("read_query", {"sql": "WITH t AS (SELECT id FROM customers) SELECT COUNT(*) AS n FROM t"})
        ).structured_content
        assert r["columns"] == ["n"] and r["rows"] == [[500]]
        capped = (await c.call_tool("read_query", {"sql": "SELECT id FROM customers"})).structured_content
        assert capped["row_count"] == 5 and capped["truncated"] is True
        slow = await c.call_tool(
            "read_query",
            {"sql": "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT COUNT(*) FROM r"},
        )
        assert slow.is_error and "took longer than 1s" in slow.content[0].text
        tables = (await c.call_tool("list_tables", {})).structured_content["tables"]
        assert {"customers", "orders", "order_items", "products"} <= set(tables)
        cols = (await c.call_tool("describe_table", {"name": "orders"})).structured_content["columns"]
        assert [col["name"] for col in cols][:3] == ["id", "customer_id", "status"]


async def test_prompt_and_resources(db):
    async with Client(build_server(db)) as c:
        prompt = await c.get_prompt("customer_service_instructions", {"focus_area": "refunds"})
        assert "Focus area: refunds" in prompt.messages[0].content.text
        res = await c.read_resource("customers://7")
        assert '"id":7' in res.contents[0].text
        schema = await c.read_resource("schema://customers")
        assert "CREATE TABLE customers" in schema.contents[0].text
        templates = [t.uri_template for t in (await c.list_resource_templates()).resource_templates]
        assert "customers://{customer_id}" in templates


INJECTIONS = [
    "' OR 1=1 --",
    "%",
    "_",
    "%%",
    "a_b%",
    "'; DROP TABLE customers; --",
    "x' UNION SELECT sql, 2, 3, 4, 5, 6, 7, 8, 9 FROM sqlite_master --",
    '" OR ""="',
    "’ OR ‘1’=‘1",
    "NEAR(ada lovelace)",
    "name:* OR email:*",
    "ada\x00 OR 1=1",
    "1; DELETE FROM orders",
    "WITH d AS (SELECT 1) DELETE FROM customers",
    "ATTACH DATABASE 'pwn.db' AS pwn",
    "VACUUM INTO 'copy.db'",
    "PRAGMA writable_schema = 1",
    "SELECT load_extension('/tmp/evil')",
    "SELECT 1; DROP TABLE customers",
    "customers); DROP TABLE customers; --",
    "orders') UNION SELECT * FROM customers --",
    "sqlite_master",
    "[customers]",
    "main.customers",
]

SQL_ATTACKS = [
    "WITH d AS (SELECT 1) DELETE FROM customers",
    "DELETE FROM customers",
    "UPDATE customers SET email = 'x'",
    "INSERT INTO products VALUES (99, 'x', 'x', 1)",
    "DROP TABLE orders",
    "ATTACH DATABASE '{dir}/pwn.db' AS pwn",
    "VACUUM INTO '{dir}/copy.db'",
    "VACUUM",
    "PRAGMA writable_schema = 1",
    "PRAGMA query_only = 0",
    "SELECT load_extension('/tmp/evil')",
    "SELECT 1; DROP TABLE customers",
    "CREATE TABLE pwn (x)",
    "CREATE TEMP TABLE pwn AS SELECT * FROM customers",
    "REINDEX",
    "ANALYZE",
    "SELECT writefile('{dir}/out.txt', 'x')",
    "SELECT readfile('/etc/passwd')",
    "DETACH DATABASE main",
    "BEGIN; DELETE FROM customers; COMMIT",
]


def _calls_for(payload: str) -> list[tuple[str, dict[str, object]]]:
    return [
        ("search_customers", {"query": payload}),
        ("search_customers", {"query": payload, "field": "email"}),
        ("search_customers", {"query": payload, "field": "phone"}),
        ("search_customers", {"query": payload, "field": "company"}),
        ("get_customer", {"customer_id": payload}),
        ("get_customer_orders", {"customer_id": 1, "since": payload}),
        ("get_customer_orders", {"customer_id": 1, "status": payload}),
        ("revenue_report", {"group_by": payload}),
        ("revenue_report", {"group_by": "month", "until": payload}),
        ("update_customer_email", {"customer_id": 2, "email": payload}),
        ("create_order", {"customer_id": payload, "items": [{"product_id": 1, "quantity": 1}]}),
        ("describe_table", {"name": payload}),
        ("read_query", {"sql": payload}),
    ]


async def test_injection_table_against_every_tool(db):
    before = state(db)
    files_before = sorted(p.name for p in db.parent.iterdir())
    async with Client(build_server(db)) as c:
        for payload in INJECTIONS:
            for tool, args in _calls_for(payload):
                result = await c.call_tool(tool, args)
                if tool == "search_customers" and not result.is_error:
                    # Literal matching only: a hit must contain the payload's text.
                    for cust in result.structured_content["customers"]:
                        haystack = " ".join(str(v) for v in cust.values()).lower()
                        words = [w for w in payload.lower().replace("\x00", " ").split() if w.isalnum()]
                        assert any(w in haystack for w in words) or not words, (payload, cust)
                elif (
                    tool == "read_query"
                    and payload.strip().upper().startswith(("SELECT", "WITH"))
                    and not result.is_error
                ):
                    assert "DELETE" not in payload.upper()
                else:
                    assert result.is_error, (tool, payload, result.content[0].text[:200])
    assert state(db) == before
    assert sorted(p.name for p in db.parent.iterdir()) == files_before


@pytest.mark.parametrize("sql", SQL_ATTACKS)
async def test_read_query_refuses_every_write_and_file_access(db, sql):
    before = state(db)
    files_before = sorted(p.name for p in db.parent.iterdir())
    async with Client(build_server(db)) as c:
        result = await c.call_tool("read_query", {"sql": sql.format(dir=db.parent)})
    assert result.is_error
    assert state(db) == before
    assert sorted(p.name for p in db.parent.iterdir()) == files_before
