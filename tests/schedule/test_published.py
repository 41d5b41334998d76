"""The networks of Coral's and Qualcomm's published tables (workloads/published/): simulated latencies pinned.

The stored values are hwsim's, not the published ones (those are in ``benchmarks/published_figures.py``);
``python benchmarks/bench_published.py table [--device hexagon_like]`` prints both. A change to a device file,
the mapper or the Edge TPU compiler model that moves a latency shows up here and is updated deliberately.
"""

from __future__ import annotations

import pytest

from benchmarks.published_figures import CORAL_USB, HEXAGON, conv_stack_yaml
from hwsim.importers.yaml_layers import load_layers_yaml
from hwsim.paths import data_dir
from hwsim.schedule.simulate import simulate

PUBLISHED = data_dir("workloads") / "published"

EDGE_TPU_MS = {
    "mobilenet_v1": 2.398936,
    "mobilenet_v2": 2.984688,
    "ssd_mobilenet_v1_300": 6.047084,
    "ssd_mobilenet_v2_300": 6.374682,
    "inception_v1": 3.402924,
    "inception_v4_299": 89.144602,
    "inception_resnet_v2_299": 118.240878,
    "resnet50_v1_299": 51.616002,
    "resnet50_v2_299": 52.388388,
    "resnet152_v2_299": 133.124824,
    "densenet121": 11.092136,
    "squeezenet": 2.282952,
    "vgg16": 297.317996,
    "vgg19": 308.820732,
    "deeplab_v3_mnv2_513": 34.183488,
    "unet_mnv2_128": 2.609112,
    "efficientnet_edgetpu_s": 4.779882,
    "efficientnet_edgetpu_m": 9.367192,
    "efficientnet_edgetpu_l": 24.945972,
}
HEXAGON_MS = {
    "mobilenet_v2": 0.262665,
    "mobilenet_v3_large": 0.318495,
    "resnet18_v1_5": 0.447823,
    "resnet50_v1_5": 0.782219,
    "resnet101_v1_5": 1.188451,
    "inception_v3_299": 0.838324,
    "inception_v1": 0.39796,
    "squeezenet_1_1": 0.191965,
    "densenet121": 0.588912,
}
PINNED = {"edge_tpu_like": (CORAL_USB, EDGE_TPU_MS), "hexagon_like": (HEXAGON, HEXAGON_MS)}


@pytest.mark.parametrize(
    "device, network", [(device, f.network) for device, (figures, _) in PINNED.items() for f in figures]
)
def test_simulated_latency_is_pinned(device, network):
    """The device's simulated latency of the network's layer file equals the stored value."""
    graph = load_layers_yaml(PUBLISHED / f"{network}.yaml")
    ms = simulate(graph, device, record_trace=False).time_ms
    assert ms == pytest.approx(PINNED[device][1][network], rel=1e-6)


def test_every_published_figure_has_a_layer_file_and_a_pinned_latency():
    """Each row of the published tables has a workload file and a stored value, and no stored value is
    orphaned."""
    for figures, pinned in PINNED.values():
        assert [f.network for f in figures] == list(pinned)
        assert all((PUBLISHED / f"{f.network}.yaml").is_file() for f in figures)


# hwsim's latency of the measured 7x7 conv stacks (benchmarks/published_figures.py CONV_STACK_MS; measured
# 7.817 and 82.663 ms): the array's compute, held back from every fit.
CONV_STACK_EDGE_TPU_MS = {10: 8.38865, 100: 83.32085}


@pytest.mark.parametrize("layers", sorted(CONV_STACK_EDGE_TPU_MS))
def test_conv_stack_latency_is_pinned(tmp_path, layers):
    """edge_tpu_like's latency of iwatake2222's measured conv stack equals the stored value."""
    path = tmp_path / "stack.yaml"
    path.write_text(conv_stack_yaml(layers))
    ms = simulate(load_layers_yaml(path), "edge_tpu_like", record_trace=False).time_ms
    assert ms == pytest.approx(CONV_STACK_EDGE_TPU_MS[layers], rel=1e-6)
