"""Prometheus metrics of the gateway: calls, errors and latency per server, tool and identity; upstream status."""

from __future__ import annotations

from collections import defaultdict

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _labels(**values: str) -> str:
    escaped = {k: v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for k, v in values.items()}
    return "{" + ",".join(f'{k}="{v}"' for k, v in escaped.items()) + "}"


class Metrics:
    """Counters and histograms kept in memory, rendered in the Prometheus text format."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str, str, str], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str, str], list[int]] = {}
        self.sums: dict[tuple[str, str, str], float] = defaultdict(float)
        self.counts: dict[tuple[str, str, str], int] = defaultdict(int)
        self.rejected: dict[tuple[str, str], int] = defaultdict(int)

    def call(self, server: str, tool: str, identity: str, status: str, seconds: float) -> None:
        """Count one finished call and its duration."""
        self.calls[(server, tool, identity, status)] += 1
        key = (server, tool, identity)
        counts = self.buckets.setdefault(key, [0] * len(BUCKETS))
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                counts[i] += 1
        self.sums[key] += seconds
        self.counts[key] += 1

    def reject(self, reason: str, identity: str) -> None:
        """Count a request refused before it reached an upstream (401, 403, unknown tool)."""
        self.rejected[(reason, identity)] += 1

    def render(self, upstreams: dict[str, str | None]) -> str:
        """The text exposition; `upstreams` maps each upstream to why it is down (None when up)."""
        lines = ["# HELP agentdeck_gateway_calls_total Tool calls through the gateway.",
                 "# TYPE agentdeck_gateway_calls_total counter"]  # fmt: skip
        for (server, tool, identity, status), n in sorted(self.calls.items()):
            lines.append(
                f"agentdeck_gateway_calls_total{_labels(server=server, tool=tool, identity=identity, status=status)} {n}"
            )
        lines += ["# HELP agentdeck_gateway_call_seconds Tool call latency through the gateway.",
                  "# TYPE agentdeck_gateway_call_seconds histogram"]  # fmt: skip
        for key, counts in sorted(self.buckets.items()):
            server, tool, identity = key
            base = {"server": server, "tool": tool, "identity": identity}
            for bound, n in zip(BUCKETS, counts, strict=True):
                lines.append(f"agentdeck_gateway_call_seconds_bucket{_labels(**base, le=str(bound))} {n}")
            lines.append(f"agentdeck_gateway_call_seconds_bucket{_labels(**base, le='+Inf')} {self.counts[key]}")
            lines.append(f"agentdeck_gateway_call_seconds_sum{_labels(**base)} {self.sums[key]:.6f}")
            lines.append(f"agentdeck_gateway_call_seconds_count{_labels(**base)} {self.counts[key]}")
        lines += ["# HELP agentdeck_gateway_rejected_total Requests refused before reaching an upstream.",
                  "# TYPE agentdeck_gateway_rejected_total counter"]  # fmt: skip
        for (reason, identity), n in sorted(self.rejected.items()):
            lines.append(f"agentdeck_gateway_rejected_total{_labels(reason=reason, identity=identity)} {n}")
        lines += ["# HELP agentdeck_gateway_upstream_up 1 when the upstream server is connected.",
                  "# TYPE agentdeck_gateway_upstream_up gauge"]  # fmt: skip
        for name, down in sorted(upstreams.items()):
            lines.append(f"agentdeck_gateway_upstream_up{_labels(server=name)} {0 if down else 1}")
        return "\n".join(lines) + "\n"
