"""An example dynamic tool filter for examples/remote-and-filters.yaml."""

from __future__ import annotations

import datetime


def business_hours_only(ctx, tool) -> bool:
    """Offer send_* tools only between 09:00 and 17:00 local time; everything else always."""
    if not tool.name.startswith("send_"):
        return True
    return 9 <= datetime.datetime.now().hour < 17
