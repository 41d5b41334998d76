"""Per-layer latency breakdown: compute and memory-stall time of each layer, stacked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_breakdown(result, out_dir: str | Path) -> Path:
    """Write ``<device>_breakdown.png``: one stacked bar (compute, memory stall) per non-view layer, in us.

    Parameters
    ----------
    result : SimResult
        From :func:`hwsim.schedule.simulate.simulate`.
    out_dir : str or Path
        Folder to write to (created if missing).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mhz = result.device.clock_mhz
    layers = [r for r in result.layers if r.cycles]
    names = [r.op for r in layers]
    compute = [r.compute_cycles / mhz for r in layers]
    stall = [r.stall_cycles / mhz for r in layers]
    fig, ax = plt.subplots(figsize=(max(8, 0.18 * len(layers) + 3), 4.8))
    x = range(len(layers))
    ax.bar(x, compute, label="compute", color="#4C72B0")
    ax.bar(x, stall, bottom=compute, label="memory stall", color="#DD8452")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=90, fontsize=6 if len(layers) > 40 else 8)
    ax.set_ylabel("latency (µs)")
    ax.set_xlabel("layer")
    ax.set_title(
        f"{result.device.name}: {Path(result.model).name}, total {result.time_ms:.3f} ms "
        f"({result.stall_cycles / max(result.cycles, 1):.0%} memory stall)"
    )
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = out / f"{result.device.name}_breakdown.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
