"""Questions the report and the plots both ask of result rows: which columns were swept, and which points
no other point beats (the Pareto front). The plots import this, never the report."""

from __future__ import annotations

import math

from hwsim.experiment.results import columns


def number(row: dict, key: str) -> float:
    """``row[key]`` as a float (NaN when missing or not a number); ``-key`` negates it."""
    if key.startswith("-"):  # a metric to minimise, given as the benefit
        return -number(row, key[1:])
    try:
        value = float(row.get(key, math.nan))
    except (TypeError, ValueError):
        return math.nan
    return value


def pareto_front(rows: list[dict], cost: str = "energy_uj", benefit: str = "integer_top1") -> list[dict]:
    """Rows no other row beats: lower or equal ``cost`` and higher or equal ``benefit``, one strictly
    (``-latency_ms`` as the benefit means lower latency is better).

    Sorted by cost. Rows missing either value are ignored, and so are points that left some of the
    network's ops untimed (:func:`hwsim.experiment.select.timed`).

    >>> rows = [{"e": 1, "a": 0.9}, {"e": 2, "a": 0.95}, {"e": 3, "a": 0.94}, {"e": 1.5, "a": 0.9}]
    >>> [r["e"] for r in pareto_front(rows, "e", "a")]
    [1, 2]
    """
    from hwsim.experiment.select import timed

    ok = timed(
        [
            r
            for r in rows
            if r.get("status", "ok") == "ok"
            and math.isfinite(number(r, cost))
            and math.isfinite(number(r, benefit))
        ]
    )
    front = []
    for r in ok:
        c, b = number(r, cost), number(r, benefit)
        dominated = any(
            number(o, cost) <= c
            and number(o, benefit) >= b
            and (number(o, cost) < c or number(o, benefit) > b)
            for o in ok
        )
        if not dominated:
            front.append(r)
    return sorted(front, key=lambda r: (number(r, cost), -number(r, benefit), r.get("index", 0)))


def swept_columns(rows: list[dict]) -> list[str]:
    """Columns describing the point that vary across rows (workload, device, recipe fields, axes)."""
    candidates = [
        "workload",
        "device",
        "recipe",
        "weights_bits",
        "weights_granularity",
        "activations_bits",
        "accumulator_bits",
        "accumulator_overflow",
        "accumulation_order",
        "rounding",
        "node_nm",
    ]
    varying = [c for c in candidates if len({str(r.get(c)) for r in rows}) > 1]
    seen = {tuple(str(r.get(c)) for r in rows) for c in varying}
    for k in columns(rows):
        if "." in k and len({str(r.get(k)) for r in rows}) > 1:
            values = tuple(str(r.get(k)) for r in rows)
            if values not in seen:  # an axis not already shown by a named column
                seen.add(values)
                varying.append(k)
    return varying
