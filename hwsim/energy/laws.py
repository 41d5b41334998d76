"""The rules that turn a handful of published points into a cost at any bit-width, capacity, node and voltage.

Every function here is pure arithmetic on numbers that :mod:`hwsim.energy.table` read from a YAML table; none
of them knows a number of its own. Each returns the value and a short text saying which rule produced it,
which :mod:`hwsim.energy.model` threads into the provenance of every priced action.

Bit-width laws (:func:`power_law_fit`, :func:`through_points`)
    An operation's energy (or area) is ``E(b) = E(b0) * (b / b0) ** alpha``. ``alpha`` is the least-squares
    slope of ``log E`` over ``log b`` through all the table's points for that operation (Horowitz 2014 at
    45 nm: integer adders 0.868 for energy, 0.964 for area, i.e. close to linear; integer multipliers 1.977
    for energy, 1.816 for area, i.e. close to quadratic). Between two table points the law is the power law
    *through those two points*, so every table point is reproduced exactly; outside the points it
    extrapolates from the nearest point with the fitted ``alpha``. A multiplier's variable is the product
    of its operand widths ``W * A`` with exponent ``alpha / 2``, so an 8x8 multiplier is the 8-bit point, a
    4x8 one is ``(32 / 64) ** (alpha / 2)`` of it and an 8x4 costs the same as a 4x8.

SRAM (:func:`through_points` on capacity)
    The 64-bit read energy of an SRAM is a power law in capacity between the sourced points (Horowitz: 8 kB
    10 pJ, 32 kB 20 pJ, 1 MB 100 pJ; exponents 0.5 and 0.464), extrapolated with the end segments' exponents.
    A banked SRAM is priced at the capacity of one bank (only one bank is active per access).

Technology and voltage (:func:`node_energy_factor`, :func:`node_area_factor`)
    Stillmaker & Baas 2017: per node, energy is a quadratic in the supply, ``a V^2 + b V + c`` (separate fits
    for high-performance and low-power flavours from 45 nm down); area is a factor table between nodes. A node
    between two published ones (28 nm between 32 and 20) is interpolated linearly in ``log(node)`` on
    ``log(factor)``. A node outside the published range is an error, never a clamp.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def power_law_fit(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares exponent ``alpha`` of ``y ~ x ** alpha`` (slope of ``log y`` on ``log x``).

    Parameters
    ----------
    xs, ys : sequence of float
        At least two points with distinct positive ``xs`` and positive ``ys``.

    Returns
    -------
    float
        The exponent.

    Examples
    --------
    Horowitz 2014's integer adders (8, 16, 32 bits: 0.03, 0.05, 0.1 pJ) and multipliers (8, 32: 0.2, 3.1 pJ):

    >>> round(power_law_fit([8, 16, 32], [0.03, 0.05, 0.1]), 3)
    0.868
    >>> round(power_law_fit([8, 32], [0.2, 3.1]), 3)
    1.977
    """
    if len(xs) < 2:
        raise ValueError("a power-law fit needs at least two points")
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    var = sum((x - mx) ** 2 for x in lx)
    if var == 0:
        raise ValueError("a power-law fit needs two distinct x values")
    return sum((x - mx) * (y - my) for x, y in zip(lx, ly)) / var


def through_points(points: Sequence[tuple[float, float]], x: float, alpha: float) -> tuple[float, str]:
    """Evaluate the power law through sorted ``points`` at ``x`` (see the module docstring).

    Parameters
    ----------
    points : sequence of (x, y)
        Sorted by x, distinct x, all positive.
    x : float
        Where to evaluate.
    alpha : float
        Exponent used outside the points (the fitted one).

    Returns
    -------
    (float, str)
        The value and the rule that produced it: ``"table point"``, ``"between a and b"`` or
        ``"extrapolated from a, alpha=..."``.

    Examples
    --------
    >>> pts = [(8, 0.03), (16, 0.05), (32, 0.1)]
    >>> through_points(pts, 16, 0.868)
    (0.05, 'table point')
    >>> round(through_points(pts, 4, 0.868)[0], 4)
    0.0164
    >>> v, rule = through_points(pts, 24, 0.868); round(v, 4), rule
    (0.075, 'power law between 16 and 32')
    """
    for px, py in points:
        if x == px:
            return py, "table point"
    if x < points[0][0]:
        x0, y0 = points[0]
        return y0 * (x / x0) ** alpha, f"extrapolated from {_g(x0)} with alpha={alpha:.3f}"
    if x > points[-1][0]:
        x0, y0 = points[-1]
        return y0 * (x / x0) ** alpha, f"extrapolated from {_g(x0)} with alpha={alpha:.3f}"
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 < x < x1:
            local = math.log(y1 / y0) / math.log(x1 / x0)
            return y0 * (x / x0) ** local, f"power law between {_g(x0)} and {_g(x1)}"
    raise AssertionError("unreachable: points must be sorted")  # pragma: no cover


def quadratic_in_voltage(coefficients: Sequence[float], voltage_v: float) -> float:
    """Stillmaker & Baas's energy polynomial ``a V^2 + b V + c`` at ``voltage_v``.

    >>> round(quadratic_in_voltage([1.103, -0.362, 0.2767], 0.9), 4)   # 45 nm low-power at 0.9 V
    0.8443
    """
    a, b, c = coefficients
    return a * voltage_v**2 + b * voltage_v + c


def log_interpolate(nodes_nm: Sequence[float], values: Sequence[float], node_nm: float) -> tuple[float, str]:
    """A per-node value at ``node_nm``: exact at a published node, else linear in log(node) on log(value).

    Parameters
    ----------
    nodes_nm : sequence of float
        Published nodes, in any order.
    values : sequence of float
        Positive value per node.
    node_nm : float
        The node wanted; must lie within the published range.

    Returns
    -------
    (float, str)
        The value and the rule (``"published node"`` or ``"interpolated between 32 and 20 nm (log-log)"``).

    Raises
    ------
    ValueError
        When ``node_nm`` is outside the published range.

    Examples
    --------
    >>> log_interpolate([32, 20], [2.0, 1.0], 32)
    (2.0, 'published node')
    >>> v, rule = log_interpolate([32, 20], [2.0, 1.0], 28); round(v, 3), rule
    (1.642, 'interpolated between 32 and 20 nm (log-log)')
    """
    pairs = sorted(zip(nodes_nm, values), reverse=True)
    for n, v in pairs:
        if n == node_nm:
            return v, "published node"
    if not pairs[-1][0] < node_nm < pairs[0][0]:
        raise ValueError(
            f"node {_g(node_nm)} nm is outside the published range {_g(pairs[-1][0])}-{_g(pairs[0][0])} nm"
        )
    for (n0, v0), (n1, v1) in zip(pairs, pairs[1:]):
        if n1 < node_nm < n0:
            t = math.log(node_nm / n0) / math.log(n1 / n0)
            return math.exp(
                math.log(v0) + t * (math.log(v1) - math.log(v0))
            ), f"interpolated between {_g(n0)} and {_g(n1)} nm (log-log)"
    raise AssertionError("unreachable")  # pragma: no cover


def _g(x: float) -> str:
    return f"{x:g}"
