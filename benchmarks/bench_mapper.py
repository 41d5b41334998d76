"""Mapper benchmark: seconds of ``plan_graph`` (tiling search, tile sequence, counts) per network and device.

Run from the repository root with hwsim's venv active::

    python benchmarks/bench_mapper.py

MobileNetV1 and MobileNetV2 (``workloads/published``) on 36 SCALE-Sim-like configs (square arrays 8..256,
SRAMs of 64 KiB or 1 MiB each, os/ws/is), and MobileNetV2-224 on every shipped device by the device's own
performance model (``hwsim.schedule.models.plan``: the Ethos-U devices by vela-5.2). Warm: one untimed run
first (imports, the workload's parsing, the weight encodings); the mapper's per-layer cache is cleared
before each timed run. A shipped device is timed twice in CPU seconds: as a second plan in the process,
best of 5 (the Ethos-U families keep their estimates and block configs, as a sweep over system configs or
memory modes would find them), and with those memos cleared, best of 3 (a network the process has not
planned before; the weight encodings and block configs cached on disk stay, unless ``HWSIM_CACHE=off``).
Nothing here runs in the test suite.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hwsim.devices.model import device_names, load_device  # noqa: E402
from hwsim.importers import load_model  # noqa: E402
from hwsim.numerics.cpu import cpu_name  # noqa: E402
from hwsim.schedule import mapper, models  # noqa: E402
from hwsim.schedule.ethos_u import blocks_u85  # noqa: E402
from hwsim.schedule.ethos_u.blocks import find_block_config  # noqa: E402
from hwsim.schedule.ethos_u.family import family  # noqa: E402

CFG = """[general]
run_name = bench
[architecture_presets]
ArrayHeight: {n}
ArrayWidth: {n}
IfmapSramSzkB: {kib}
FilterSramSzkB: {kib}
OfmapSramSzkB: {kib}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Dataflow: {df}
"""


def plan_seconds(graph, device) -> float:
    """Seconds of one mapping of ``graph`` on ``device``, nothing cached."""
    mapper._plan_mac.cache_clear()
    mapper._plan_vector.cache_clear()
    start = time.perf_counter()
    mapper.plan_graph(graph, device)
    return time.perf_counter() - start


def main() -> None:
    print(f"CPU: {cpu_name()}")
    with tempfile.TemporaryDirectory() as folder:
        configs = []
        for n, kib, df in itertools.product((8, 16, 32, 64, 128, 256), (64, 1024), ("os", "ws", "is")):
            path = Path(folder) / f"{n}x{n}_{kib}k_{df}.cfg"
            path.write_text(CFG.format(n=n, kib=kib, df=df))
            configs.append(load_device(path))
        for name in ("mobilenet_v1", "mobilenet_v2"):
            graph = load_model(ROOT / "workloads" / "published" / f"{name}.yaml")
            plan_seconds(graph, configs[0])
            times = [plan_seconds(graph, device) for device in configs]
            print(
                f"{name}, {len(configs)} SCALE-Sim configs: median {statistics.median(times):.3f} s, "
                f"max {max(times):.3f} s per config"
            )
    graph = load_model(ROOT / "workloads" / "mobilenet_v2_224.yaml")
    for name in device_names():
        device = load_device(name)
        model_seconds(graph, device, False)
        warm = min(model_seconds(graph, device, False) for _ in range(5))
        fresh = min(model_seconds(graph, device, True) for _ in range(3))
        print(
            f"mobilenet_v2_224 on {name} ({device.spec.performance_model}): {warm:.3f} s CPU, "
            f"memos cleared {fresh:.3f} s CPU"
        )


def model_seconds(graph, device, clear_memos: bool) -> float:
    """CPU seconds of one planning of ``graph`` by ``device``'s performance model."""
    mapper._plan_mac.cache_clear()
    mapper._plan_vector.cache_clear()
    if clear_memos:
        family.cache_clear()  # the Ethos-U families and their memoised estimates and block configs
        find_block_config.cache_clear()
        blocks_u85.find_block_config.cache_clear()
    start = time.process_time()
    models.plan(graph, device)
    return time.process_time() - start


if __name__ == "__main__":
    main()
