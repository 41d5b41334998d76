"""The latency breakdown and the roofline render to non-empty PNG files."""

from __future__ import annotations

from hwsim.paths import data_dir
from hwsim.plots.breakdown import plot_breakdown
from hwsim.plots.roofline import plot_roofline
from hwsim.schedule.simulate import simulate


def test_plots_render(tmp_path):
    """Both plots write a PNG larger than zero bytes for MobileNetV2 on the Edge TPU-like device."""
    result = simulate(data_dir("workloads") / "tiny.yaml", "edge_tpu_like", record_trace=False)
    for path in (plot_breakdown(result, tmp_path), plot_roofline(result, tmp_path)):
        assert path.suffix == ".png" and path.stat().st_size > 0
