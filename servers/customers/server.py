"""The customer-database MCP server: typed read tools, guarded write tools, and read-only ad-hoc SQL."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from servers import package_version
from servers.customers.cancel import register_cancel
from servers.customers.db import SCHEMA, connect
from servers.customers.sql_guard import QueryLimits, QueryRejected, read_query

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REVENUE_STATUSES = ("paid", "shipped", "delivered")
RANK_WINDOW = 50


class Customer(BaseModel):
    id: int
    name: str
    email: str
    phone: str
    company: str | None
    country: str
    status: str
    created_at: str


class CustomerDetail(Customer):
    order_count: int
    lifetime_value: float


class SearchResult(BaseModel):
    customers: list[Customer]
    count: int


class OrderItem(BaseModel):
    product_id: int
    sku: str
    name: str
    quantity: int
    unit_price: float
    line_total: float


class Order(BaseModel):
    id: int
    status: str
    ordered_at: str
    total: float
    items: list[OrderItem]


class CustomerOrders(BaseModel):
    customer_id: int
    orders: list[Order]
    count: int
    total_value: float


class ReportRow(BaseModel):
    key: str
    orders: int
    revenue: float


class RevenueReport(BaseModel):
    group_by: str
    since: str | None
    until: str | None
    rows: list[ReportRow]


class NewItem(BaseModel):
    product_id: int = Field(gt=0)
    quantity: int = Field(gt=0, le=1000)


class TableList(BaseModel):
    tables: list[str]


class Column(BaseModel):
    name: str
    type: str
    not_null: bool
    default: str | None
    primary_key: bool


class TableInfo(BaseModel):
    table: str
    columns: list[Column]


class QueryResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool


def _money(cents: int | None) -> float:
    return round((cents or 0) / 100, 2)


def _day(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ToolError(f"{name} must be a date like 2025-01-31, got {value!r}") from None


def _like(text: str) -> str:
    """A LIKE pattern that matches `text` literally (its % and _ are escaped)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _fts_query(text: str, column: str | None) -> str | None:
    """Each word becomes a quoted prefix term, so no FTS syntax in the input is interpreted."""
    words = re.findall(r"[^\W\d_]+", text)  # letters only, matching the index's tokenizer
    if not words:
        return None
    terms = " ".join('"' + w.replace('"', '""') + '"*' for w in words)
    return f"{column} : ({terms})" if column else terms


class CustomerDB:
    """Connections and queries; every value is a bound parameter."""

    def __init__(self, path: Path, limits: QueryLimits) -> None:
        self.path = path
        self.limits = limits
        self._read = connect(path, read_only=True)
        self._write = connect(path, read_only=False)
        self._read_lock = threading.Lock()
        self._write_lock = threading.Lock()

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._read_lock:
            yield self._read

    def customer_row(self, customer_id: int) -> sqlite3.Row:
        with self.reading() as db:
            row = db.execute(
                "SELECT c.*, co.name AS company FROM customers c LEFT JOIN companies co ON co.id = c.company_id WHERE c.id = ?",
                (customer_id,),
            ).fetchone()
        if row is None:
            raise ToolError(f"Customer {customer_id} not found")
        return row


def _customer(row: sqlite3.Row) -> Customer:
    return Customer(
        id=row["id"], name=row["name"], email=row["email"], phone=row["phone"], company=row["company"],
        country=row["country_code"], status=row["status"], created_at=row["created_at"],
    )  # fmt: skip


def build_server(path: Path, limits: QueryLimits | None = None) -> MCPServer:
    """The MCPServer over the database at `path` (which must already exist)."""
    store = CustomerDB(path, limits or QueryLimits())
    mcp = MCPServer(
        "customer-db",
        version=package_version(),
        instructions="Customer, order and revenue data. Prefer the typed tools; read_query runs read-only SQL.",
        log_level="WARNING",
    )

    @mcp.tool(annotations=READ)
    def search_customers(
        query: Annotated[str, Field(min_length=1, max_length=200)],
        field: Literal["any", "name", "email", "company", "phone"] = "any",
        limit: Annotated[int, Field(ge=1, le=100)] = 10,
    ) -> SearchResult:
        """Find customers by name, email, company (full-text, prefix matching) or phone."""
        base = "SELECT c.*, co.name AS company FROM customers c LEFT JOIN companies co ON co.id = c.company_id"
        with store.reading() as db:
            if field in ("email", "phone"):
                rows = db.execute(
                    f"{base} WHERE c.{field} LIKE ? ESCAPE '\\' ORDER BY c.id LIMIT ?", (_like(query), limit)
                ).fetchall()
            else:
                match = _fts_query(query, None if field == "any" else field)
                rows = []
                if match is not None:
                    rows = db.execute(
                        # Rank the first matches only: scoring every hit of a common name costs ~100x.
                        f"{base} JOIN (SELECT rid, r FROM (SELECT rowid AS rid, rank AS r FROM customers_fts "
                        "WHERE customers_fts MATCH ? LIMIT ?) ORDER BY r LIMIT ?) f ON f.rid = c.id ORDER BY f.r",
                        (match, RANK_WINDOW, limit),
                    ).fetchall()
                if not rows and field == "any":
                    rows = db.execute(
                        f"{base} WHERE c.email LIKE ? ESCAPE '\\' OR c.phone LIKE ? ESCAPE '\\' ORDER BY c.id LIMIT ?",
                        (_like(query), _like(query), limit),
                    ).fetchall()
        customers = [_customer(r) for r in rows]
        return SearchResult(customers=customers, count=len(customers))

    @mcp.tool(annotations=READ)
    def get_customer(customer_id: int) -> CustomerDetail:
        """One customer with their order count and lifetime value."""
        row = store.customer_row(customer_id)
        with store.reading() as db:
            stats = db.execute(
                f"SELECT COUNT(*) AS n, SUM(CASE WHEN status IN {REVENUE_STATUSES} THEN total_cents END) AS v FROM orders WHERE customer_id = ?",
                (customer_id,),
            ).fetchone()
        return CustomerDetail(**_customer(row).model_dump(), order_count=stats["n"], lifetime_value=_money(stats["v"]))

    @mcp.tool(annotations=READ)
    def get_customer_orders(
        customer_id: int,
        status: Literal["pending", "paid", "shipped", "delivered", "cancelled", "refunded"] | None = None,
        since: str | None = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> CustomerOrders:
        """A customer's orders, newest first, with their items and totals."""
        store.customer_row(customer_id)
        sql = "SELECT * FROM orders WHERE customer_id = ?"
        args: list[object] = [customer_id]
        if status:
            sql, args = sql + " AND status = ?", [*args, status]
        if since:
            sql, args = sql + " AND ordered_at >= ?", [*args, _day(since, "since")]
        with store.reading() as db:
            orders = db.execute(sql + " ORDER BY ordered_at DESC, id DESC LIMIT ?", [*args, limit]).fetchall()
            ids = [o["id"] for o in orders]
            items: dict[int, list[OrderItem]] = {i: [] for i in ids}
            if ids:
                marks = ",".join("?" * len(ids))
                for it in db.execute(
                    f"SELECT oi.*, p.sku, p.name FROM order_items oi JOIN products p ON p.id = oi.product_id WHERE oi.order_id IN ({marks}) ORDER BY oi.id",
                    ids,
                ):
                    items[it["order_id"]].append(
                        OrderItem(
                            product_id=it["product_id"],
                            sku=it["sku"],
                            name=it["name"],
                            quantity=it["quantity"],
                            unit_price=_money(it["unit_price_cents"]),
                            line_total=_money(it["quantity"] * it["unit_price_cents"]),
                        )  # fmt: skip
                    )
        result = [
            Order(
                id=o["id"],
                status=o["status"],
                ordered_at=o["ordered_at"],
                total=_money(o["total_cents"]),
                items=items[o["id"]],
            )
            for o in orders
        ]
        return CustomerOrders(
            customer_id=customer_id,
            orders=result,
            count=len(result),
            total_value=round(sum(o.total for o in result), 2),
        )

    @mcp.tool(annotations=READ)
    def revenue_report(
        group_by: Literal["month", "product", "country", "status"], since: str | None = None, until: str | None = None
    ) -> RevenueReport:
        """Revenue (paid, shipped and delivered orders) grouped by month, product, country or status."""
        start, end = _day(since, "since"), _day(until, "until")
        where: list[str] = ["1 = 1"]
        args: list[object] = []
        if start:
            where, args = [*where, "o.ordered_at >= ?"], [*args, start]
        if end:
            where, args = [*where, "o.ordered_at <= ?"], [*args, end]
        if group_by != "status":
            where.append(f"o.status IN {REVENUE_STATUSES}")
        cond = " AND ".join(where)
        queries = {
            "month": f"SELECT substr(o.ordered_at, 1, 7) AS k, COUNT(*) AS n, SUM(o.total_cents) AS r FROM orders o WHERE {cond} GROUP BY k ORDER BY k",
            "status": f"SELECT o.status AS k, COUNT(*) AS n, SUM(o.total_cents) AS r FROM orders o WHERE {cond} GROUP BY k ORDER BY r DESC",
            "country": f"SELECT c.country_code AS k, COUNT(*) AS n, SUM(o.total_cents) AS r FROM orders o JOIN customers c ON c.id = o.customer_id WHERE {cond} GROUP BY k ORDER BY r DESC",
            "product": f"SELECT p.name AS k, COUNT(DISTINCT o.id) AS n, SUM(oi.quantity * oi.unit_price_cents) AS r FROM order_items oi JOIN orders o ON o.id = oi.order_id JOIN products p ON p.id = oi.product_id WHERE {cond} GROUP BY k ORDER BY r DESC",
        }
        with store.reading() as db:
            rows = db.execute(queries[group_by], args).fetchall()
        return RevenueReport(
            group_by=group_by,
            since=start,
            until=end,
            rows=[ReportRow(key=str(r["k"]), orders=r["n"], revenue=_money(r["r"])) for r in rows],
        )

    @mcp.tool(annotations=WRITE)
    def update_customer_email(customer_id: int, email: Annotated[str, Field(max_length=254)]) -> CustomerDetail:
        """Change a customer's email address (validated; must be unique)."""
        email = email.strip()
        if not EMAIL.match(email):
            raise ToolError(f"{email!r} is not a valid email address")
        store.customer_row(customer_id)
        with store._write_lock:
            db = store._write
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("UPDATE customers SET email = ? WHERE id = ?", (email, customer_id))
                db.execute("UPDATE customers_fts SET email = ? WHERE rowid = ?", (email.split("@")[0], customer_id))
                db.execute("COMMIT")
            except sqlite3.IntegrityError:
                db.execute("ROLLBACK")
                raise ToolError(f"another customer already uses {email}") from None
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return get_customer(customer_id)

    @mcp.tool(annotations=WRITE)
    def create_order(customer_id: int, items: Annotated[list[NewItem], Field(min_length=1, max_length=50)]) -> Order:
        """Create a pending order for a customer, in one transaction."""
        store.customer_row(customer_id)
        with store._write_lock:
            db = store._write
            try:
                db.execute("BEGIN IMMEDIATE")
                priced = []
                for item in items:
                    product = db.execute("SELECT * FROM products WHERE id = ?", (item.product_id,)).fetchone()
                    if product is None:
                        raise ToolError(f"Product {item.product_id} not found")
                    priced.append((item, product))
                total = sum(i.quantity * p["price_cents"] for i, p in priced)
                today = date.today().isoformat()
                order_id = db.execute(
                    "INSERT INTO orders (customer_id, status, ordered_at, total_cents) VALUES (?, 'pending', ?, ?)",
                    (customer_id, today, total),
                ).lastrowid
                lines = []
                for item, p in priced:
                    db.execute(
                        "INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) VALUES (?, ?, ?, ?)",
                        (order_id, p["id"], item.quantity, p["price_cents"]),
                    )
                    lines.append(OrderItem(product_id=p["id"], sku=p["sku"], name=p["name"], quantity=item.quantity,
                                           unit_price=_money(p["price_cents"]), line_total=_money(item.quantity * p["price_cents"])))  # fmt: skip
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        assert order_id is not None
        return Order(id=order_id, status="pending", ordered_at=today, total=_money(total), items=lines)

    register_cancel(mcp, store)

    @mcp.tool(annotations=READ)
    def list_tables() -> TableList:
        """The tables of the database."""
        with store.reading() as db:
            names = [
                r[0]
                for r in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'customers_fts_%' ORDER BY name"
                )
            ]
        return TableList(tables=names)

    @mcp.tool(annotations=READ)
    def describe_table(name: str) -> TableInfo:
        """Columns of one table (name, type, not null, default, primary key)."""
        with store.reading() as db:
            known = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not IDENT.match(name) or name not in known:
                raise ToolError(f"Unknown table {name!r}; call list_tables to see the tables")
            # The name is now a known identifier from the catalogue, so quoting it is safe.
            cols = db.execute(f'SELECT * FROM pragma_table_info("{name}")').fetchall()
        columns = [
            Column(
                name=c["name"],
                type=c["type"],
                not_null=bool(c["notnull"]),
                default=c["dflt_value"],
                primary_key=bool(c["pk"]),
            )
            for c in cols
        ]
        return TableInfo(table=name, columns=columns)

    @mcp.tool(annotations=READ)
    def read_query(sql: Annotated[str, Field(min_length=1, max_length=20_000)]) -> QueryResult:
        """Run one read-only SELECT (row cap and time limit apply). Writes, ATTACH and PRAGMA are refused."""
        try:
            return QueryResult(**run_read_query(store, sql))
        except QueryRejected as exc:
            raise ToolError(str(exc)) from None

    @mcp.prompt()
    def customer_service_instructions(focus_area: str = "general support") -> str:
        """Instructions for a customer-service agent focused on one area."""
        return (
            f"You are a customer-service agent. Focus area: {focus_area}.\n"
            "Look customers up with search_customers before answering, quote order ids and totals exactly, "
            "and never change data (update_customer_email, create_order) without the user's explicit confirmation."
        )

    @mcp.resource("customers://{customer_id}", mime_type="application/json")
    def customer_resource(customer_id: str) -> str:
        """A customer record as JSON."""
        if not customer_id.isdigit():
            raise ResourceError(f"Customer {customer_id} not found")
        try:
            return get_customer(int(customer_id)).model_dump_json()
        except ToolError as exc:
            raise ResourceError(str(exc)) from None

    @mcp.resource("schema://customers", mime_type="text/plain")
    def schema() -> str:
        """The database schema (SQL)."""
        return SCHEMA.strip()

    return mcp


def run_read_query(store: CustomerDB, sql: str) -> dict[str, Any]:
    """read_query with JSON-safe values."""
    result = read_query(store.path, sql, store.limits)
    result["rows"] = [[v.hex() if isinstance(v, bytes) else v for v in row] for row in result["rows"]]
    return result
