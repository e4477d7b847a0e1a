"""Percentiles by the nearest-rank method: a p99 is a latency some request really had."""

from __future__ import annotations

import math


def percentile(sorted_values: list[float], p: float) -> float:
    """The smallest value with at least ``p`` percent of the values at or below it."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(values: list[float]) -> dict[str, float]:
    """count, mean, p50, p90, p99, max (rounded to 0.01), or just count 0 for no values."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "mean": round(sum(ordered) / len(ordered), 2),
        "p50": round(percentile(ordered, 50), 2),
        "p90": round(percentile(ordered, 90), 2),
        "p99": round(percentile(ordered, 99), 2),
        "max": round(ordered[-1], 2),
    }
