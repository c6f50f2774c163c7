"""The customer database: schema, deterministic seeding, and safe opening."""

from __future__ import annotations

import os
import random
import sqlite3
import tempfile
from datetime import date, timedelta
from pathlib import Path

SCHEMA = """
CREATE TABLE countries (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE companies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    domain TEXT NOT NULL,
    country_code TEXT NOT NULL REFERENCES countries(code)
);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    phone TEXT NOT NULL,
    company_id INTEGER REFERENCES companies(id),
    country_code TEXT NOT NULL REFERENCES countries(code),
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'churned')),
    created_at TEXT NOT NULL
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents > 0)
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    status TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded')),
    ordered_at TEXT NOT NULL,
    total_cents INTEGER NOT NULL
);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents INTEGER NOT NULL
);
-- Digits separate tokens, so 'lovelace763' indexes as 'lovelace': a million unique email tokens
-- would make every prefix query merge a million terms. Only the email's local part is indexed
-- (its domain repeats the company); search_customers(field='email') uses LIKE on the full address.
CREATE VIRTUAL TABLE customers_fts USING fts5(
    name, email, company, prefix = '2 3 4', tokenize = "unicode61 separators '0123456789'"
);
"""

INDEXES = """
CREATE INDEX orders_customer ON orders(customer_id, ordered_at);
CREATE INDEX orders_date ON orders(ordered_at);
CREATE INDEX items_order ON order_items(order_id);
CREATE INDEX customers_company ON customers(company_id);
"""

COUNTRIES = [
    ("US", "United States"), ("GB", "United Kingdom"), ("DE", "Germany"), ("FR", "France"), ("ES", "Spain"),
    ("IT", "Italy"), ("NL", "Netherlands"), ("SE", "Sweden"), ("PL", "Poland"), ("CA", "Canada"),
    ("MX", "Mexico"), ("BR", "Brazil"), ("AR", "Argentina"), ("JP", "Japan"), ("KR", "South Korea"),
    ("IN", "India"), ("AU", "Australia"), ("NZ", "New Zealand"), ("ZA", "South Africa"), ("NG", "Nigeria"),
]  # fmt: skip
FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Katherine",
    "John",
    "Hedy",
    "Claude",
    "Sophie",
    "Mateo",
    "Amara",
    "Yuki",
    "Priya",
    "Lars",
    "Ingrid",
    "Omar",
    "Chen",
    "Aisha",
    "Diego",
    "Elena",
    "Kwame",
    "Noor",
    "Sven",
    "Lucia",
    "Ravi",
    "Mei",
    "Tomas",
    "Zara",
    "Felix",
    "Ines",
    "Hugo",
    "Leila",
]
LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Johnson",
    "McCarthy",
    "Lamarr",
    "Shannon",
    "Garcia",
    "Muller",
    "Nakamura",
    "Okafor",
    "Rossi",
    "Kowalski",
    "Nilsson",
    "Haddad",
    "Wong",
    "Silva",
    "Novak",
    "Ivanova",
    "Mensah",
    "Patel",
    "Larsen",
    "Moreau",
    "Schmidt",
    "Costa",
    "Tanaka",
    "Jensen",
    "Fischer",
    "Santos",
    "Kim",
    "Dubois",
]
COMPANY_WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Aperture",
    "Vandelay",
    "Dunder",
    "Pied",
    "Massive",
    "Gringotts",
    "Oceanic",
    "Blue",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Litware",
    "Proseware",
]
COMPANY_SUFFIX = [
    "Labs",
    "Systems",
    "Industries",
    "Holdings",
    "Analytics",
    "Logistics",
    "Foods",
    "Media",
    "Works",
    "Group",
]
PRODUCTS = [
    ("Starter plan", 900), ("Team plan", 4900), ("Business plan", 19900), ("Enterprise plan", 99900),
    ("Extra seat", 1200), ("Storage pack 100 GB", 500), ("Priority support", 29900), ("Onboarding session", 15000),
    ("API credits 10k", 2500), ("API credits 100k", 20000), ("Audit log add-on", 7500), ("SSO add-on", 9900),
    ("Training course", 45000), ("Hardware token", 3500), ("Data export", 1500),
]  # fmt: skip
CUSTOMER_STATUSES = ["active"] * 7 + ["inactive"] * 2 + ["churned"]
ORDER_STATUSES = ["delivered"] * 6 + ["shipped"] * 2 + ["paid"] * 2 + ["pending", "cancelled", "refunded"]
START = date(2019, 1, 1)
SPAN_DAYS = (date(2026, 10, 31) - START).days


class DatabaseError(Exception):
    """The database file cannot be used (reported as one line)."""


def _rows(size: int, seed: int):  # type: ignore[no-untyped-def]
    rnd = random.Random(seed)
    companies = []
    for cid in range(1, max(1, size // 25) + 1):
        word, suffix = rnd.choice(COMPANY_WORDS), rnd.choice(COMPANY_SUFFIX)
        name = f"{word} {suffix}" + ("" if cid <= 200 else f" {cid}")
        companies.append((cid, name, f"{word.lower()}{suffix.lower()}{cid}.example", rnd.choice(COUNTRIES)[0]))
    customers, fts = [], []
    for i in range(1, size + 1):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        company = companies[rnd.randrange(len(companies))]
        email = f"{first.lower()}.{last.lower()}{i}@{company[2]}"
        phone = f"+1-555-{rnd.randrange(1000):03d}-{rnd.randrange(10000):04d}"
        created = START + timedelta(days=rnd.randrange(SPAN_DAYS))
        country = company[3] if rnd.random() < 0.8 else rnd.choice(COUNTRIES)[0]
        customers.append(
            (
                i,
                f"{first} {last}",
                email,
                phone,
                company[0],
                country,
                rnd.choice(CUSTOMER_STATUSES),
                created.isoformat(),
            )
        )
        fts.append((i, f"{first} {last}", email.split("@")[0], company[1]))
    return rnd, companies, customers, fts


def seed(conn: sqlite3.Connection, size: int, seed_value: int = 7) -> None:
    """Create the schema and fill it with deterministic synthetic data (`size` customers)."""
    conn.executescript(SCHEMA)
    rnd, companies, customers, fts = _rows(size, seed_value)
    conn.executemany("INSERT INTO countries VALUES (?, ?)", COUNTRIES)
    conn.executemany("INSERT INTO companies VALUES (?, ?, ?, ?)", companies)
    conn.executemany(
        "INSERT INTO products VALUES (?, ?, ?, ?)", [(i, f"SKU-{i:04d}", n, p) for i, (n, p) in enumerate(PRODUCTS, 1)]
    )
    conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?)", customers)
    conn.executemany("INSERT INTO customers_fts(rowid, name, email, company) VALUES (?, ?, ?, ?)", fts)
    order_id = item_id = 0
    orders, items = [], []
    for cust in customers:
        created = date.fromisoformat(cust[7])
        for _ in range(rnd.choice((0, 1, 1, 2, 2, 3, 4))):
            order_id += 1
            when = created + timedelta(days=rnd.randrange(max(1, (date(2026, 11, 1) - created).days)))
            total = 0
            for _ in range(rnd.randint(1, 3)):
                item_id += 1
                pid = rnd.randrange(len(PRODUCTS)) + 1
                qty = rnd.randint(1, 5)
                price = PRODUCTS[pid - 1][1]
                total += qty * price
                items.append((item_id, order_id, pid, qty, price))
            orders.append((order_id, cust[0], rnd.choice(ORDER_STATUSES), when.isoformat(), total))
        if len(items) > 50_000:
            conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", orders)
            conn.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", items)
            orders, items = [], []
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", orders)
    conn.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", items)
    conn.executescript(INDEXES)
    conn.execute("INSERT INTO customers_fts(customers_fts) VALUES ('optimize')")
    conn.commit()


def ensure_database(path: Path, size: int) -> bool:
    """Create and seed the database if the file is missing; return True if it was created.

    An existing file is never re-seeded or overwritten. Seeding writes a temporary file beside
    the target and renames it into place, so an interrupted seed leaves nothing half-made.
    """
    if path.exists():
        check_database(path)
        return False
    if size < 1:
        raise DatabaseError("--size must be at least 1")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".seeding", dir=path.parent)
    os.close(fd)
    try:
        conn = sqlite3.connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            seed(conn, size)
        finally:
            conn.close()
        try:
            os.link(tmp, path)  # fails if someone created the file meanwhile: never overwrite
        except FileExistsError:
            check_database(path)
            return False
        return True
    finally:
        os.unlink(tmp)


def check_database(path: Path) -> None:
    """Refuse files that are not an agentdeck customer database."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{path} is not a usable SQLite database: {exc}") from None
    missing = {"customers", "orders", "order_items", "products", "customers_fts"} - tables
    if missing:
        raise DatabaseError(
            f"{path} is not an agentdeck customer database (missing tables: {', '.join(sorted(missing))})"
        )


def connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """A connection for the typed tools: read-only ones use mode=ro and query_only."""
    uri = f"{path.resolve().as_uri()}?mode={'ro' if read_only else 'rw'}"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    # A larger page cache and memory-mapped reads keep FTS doclists of common names in memory.
    conn.execute("PRAGMA cache_size = -65536")
    conn.execute("PRAGMA mmap_size = 268435456")
    if read_only:
        conn.execute("PRAGMA query_only = ON")
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    return conn
