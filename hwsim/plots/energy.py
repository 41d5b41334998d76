"""Per-layer energy breakdown: one stacked bar per layer, one colour per category (MACs, SRAM, DRAM, ...)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {
    "multiplier": "#4C72B0",
    "accumulator": "#8172B3",
    "idle": "#CCB974",
    "register_file": "#64B5CD",
    "vector": "#937860",
    "sram": "#55A868",
    "dram": "#C44E52",
    "flash": "#DD8452",
    "link": "#DA8BC3",
    "leakage": "#8C8C8C",
}


def plot_energy_breakdown(breakdown, out_dir: str | Path) -> Path:
    """Write ``<device>_energy.png``: per layer, energy in uJ stacked by category, the total in the title.

    Parameters
    ----------
    breakdown : EnergyBreakdown
        From :func:`hwsim.energy.account.account`.
    out_dir : str or Path
        Folder to write to (created if missing).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    per_layer = breakdown.by_layer_category()
    layers = list(per_layer)
    present = [c for c in COLORS if any(per_layer[layer].get(c, 0.0) > 0 for layer in layers)]
    present += sorted({c for d in per_layer.values() for c in d} - set(COLORS))
    fig, ax = plt.subplots(figsize=(max(8, 0.18 * len(layers) + 3), 5))
    x = range(len(layers))
    bottom = [0.0] * len(layers)
    for category in present:
        values = [per_layer[layer].get(category, 0.0) / 1e6 for layer in layers]
        ax.bar(x, values, bottom=bottom, label=category.replace("_", " "), color=COLORS.get(category))
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xticks(list(x))
    ax.set_xticklabels(layers, rotation=90, fontsize=6 if len(layers) > 40 else 8)
    ax.set_xlabel("layer")
    ax.set_ylabel("energy per inference (µJ)")
    ax.set_title(
        f"{breakdown.device}: {Path(breakdown.model).name}, {breakdown.total_pj / 1e6:.2f} µJ, "
        f"{breakdown.average_power_mw:.1f} mW average, {breakdown.tops_per_w:.2f} TOPS/W"
    )
    ax.legend(fontsize=8, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = out / f"{breakdown.device}_energy.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
