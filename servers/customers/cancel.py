"""`cancel_order`: a change that cannot be undone, so the server asks the person (MCP elicitation) first.

The question shows what would be cancelled (customer, total, status) and asks for the reason and,
for a paid order, whether it is refunded. A client that cannot ask its user cannot cancel orders.
"""

# No `from __future__ import annotations`: the SDK evaluates cancel_order's `Resolve(ask)` annotation,
# and `ask` is local to register_cancel.
from typing import TYPE_CHECKING, Annotated, Literal

from mcp.server.mcpserver import Elicit, ElicitationResult, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from servers.customers.server import CustomerDB

CANCELLABLE = ("pending", "paid")
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)


class CancelAnswer(BaseModel):
    """What the person is asked before an order is cancelled."""

    confirm: bool = Field(title="Cancel the order", description="This cannot be undone.")
    reason: Literal["customer request", "payment problem", "out of stock", "other"] = Field(
        default="customer request", title="Reason"
    )
    refund: bool = Field(default=False, title="Refund", description="Mark a paid order as refunded.")


class Cancellation(BaseModel):
    """What cancel_order did; `note` says why in a few words (the reason, or what the user answered)."""

    order_id: int
    cancelled: bool
    status: str
    reason: str | None = None
    note: str = ""


def register_cancel(mcp: MCPServer, store: "CustomerDB") -> None:
    """Add cancel_order to the customers server."""

    def order_summary(order_id: int) -> str:
        with store.reading() as db:
            row = db.execute(
                "SELECT o.status, o.total_cents, c.name FROM orders o JOIN customers c ON c.id = o.customer_id "
                "WHERE o.id = ?",
                (order_id,),
            ).fetchone()
        if row is None:
            raise ToolError(f"Order {order_id} not found")
        if row["status"] not in CANCELLABLE:
            raise ToolError(f"Order {order_id} is {row['status']}; only pending or paid orders can be cancelled")
        return f"order {order_id} for {row['name']}, {row['total_cents'] / 100:.2f}, {row['status']}"

    def ask(order_id: int) -> Elicit[CancelAnswer]:
        return Elicit(f"Cancel {order_summary(order_id)}?", CancelAnswer)

    @mcp.tool(annotations=DESTRUCTIVE)
    def cancel_order(order_id: int, answer: Annotated[ElicitationResult[CancelAnswer], Resolve(ask)]) -> Cancellation:
        """Cancel a pending or paid order, after the user confirms it and gives the reason."""
        if answer.action != "accept" or not answer.data.confirm:
            how = {"decline": "declined", "cancel": "dismissed"}.get(answer.action, "did not confirm")
            with store.reading() as db:
                status = db.execute("SELECT status FROM orders WHERE id = ?", (order_id,)).fetchone()["status"]
            return Cancellation(order_id=order_id, cancelled=False, status=status, note=f"the user {how} it")
        with store._write_lock:
            db = store._write
            row = db.execute("SELECT status FROM orders WHERE id = ?", (order_id,)).fetchone()
            if row is None or row["status"] not in CANCELLABLE:  # changed while the user was answering
                raise ToolError(f"Order {order_id} can no longer be cancelled")
            status = "refunded" if answer.data.refund and row["status"] == "paid" else "cancelled"
            db.execute("UPDATE orders SET status = ? WHERE id = ?", (status, order_id))  # autocommit
        reason = answer.data.reason
        return Cancellation(order_id=order_id, cancelled=True, status=status, reason=reason, note=reason)
