"""A roofline of the device (peak int8 ops/s and off-chip bandwidth), with every MAC layer placed on it."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_roofline(result, out_dir: str | Path) -> Path:
    """Write ``<device>_roofline.png``.

    x: arithmetic intensity, ops (2 per MAC) per byte moved to or from the outermost memory level (a layer
    that moves nothing off-chip is drawn at the right edge); y: achieved GOPS = 2 * MACs / layer time.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = result.device
    peak_gops = dev.peak_ops_per_s / 1e9
    bw_gbs = dev.offchip_bytes_per_s / 1e9
    mhz = dev.clock_mhz
    pts = [
        (2 * r.macs / r.offchip_bytes if r.offchip_bytes else None, 2 * r.macs / (r.cycles / mhz) / 1e3, r)
        for r in result.layers
        if r.macs and r.cycles
    ]
    finite = [p[0] for p in pts if p[0]]
    ridge = peak_gops / bw_gbs
    x_max = max(finite + [ridge * 10]) * 4
    x_min = min(finite + [ridge / 10]) / 4
    fig, ax = plt.subplots(figsize=(7.5, 5))
    xs = [x_min, ridge, x_max]
    ax.plot(
        xs,
        [min(peak_gops, x * bw_gbs) for x in xs],
        color="black",
        label=f"roof: {peak_gops:,.0f} GOPS, {bw_gbs:.2f} GB/s off-chip",
    )
    kinds = sorted({p[2].kind for p in pts})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, kind in enumerate(kinds):
        sel = [p for p in pts if p[2].kind == kind]
        ax.scatter(
            [p[0] if p[0] else x_max / 1.5 for p in sel],
            [p[1] for p in sel],
            s=18,
            color=colors[i % len(colors)],
            label=kind,
            alpha=0.8,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (ops per off-chip byte; right edge: no off-chip traffic)")
    ax.set_ylabel("achieved throughput (GOPS, int8)")
    ax.set_title(f"{dev.name} roofline: {Path(result.model).name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / f"{dev.name}_roofline.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
