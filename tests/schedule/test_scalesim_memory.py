"""SCALE-Sim 3.0.0's memory model (``memory_model: scalesim``): its reports reproduced, its rules by hand."""

from __future__ import annotations

import doctest
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.devices.model import load_device, with_memory_model
from hwsim.errors import ConfigError
from hwsim.importers import load_model
from hwsim.schedule.scalesim import demand as demand_module
from hwsim.schedule.scalesim.buffers import EstimatedReadBuffer, WriteBuffer
from hwsim.schedule.scalesim.demand import LayerDemand, skew_order
from hwsim.schedule.scalesim.layers import ScaleSimLayer, layers_of
from hwsim.schedule.scalesim.reports import write_reports
from hwsim.schedule.simulate import simulate

DATA = Path(__file__).parent / "data"
PINNED_4X5 = json.loads((DATA / "scalesim_3_0_0_4x5.json").read_text(encoding="utf-8"))
REPORTS = ("COMPUTE_REPORT", "BANDWIDTH_REPORT", "DETAILED_ACCESS_REPORT")


def _reports_of(tmp_path: Path, cfg_lines: list[str], topology_lines: list[str], name: str) -> dict:
    cfg = tmp_path / f"{name}.cfg"
    cfg.write_text("\n".join(cfg_lines) + "\n", encoding="utf-8")
    topo = tmp_path / f"{name}.csv"
    topo.write_text("\n".join(topology_lines) + "\n", encoding="utf-8")
    result = simulate(load_model(topo), with_memory_model(load_device(cfg), "scalesim"), record_trace=False)
    write_reports(result, tmp_path / name)
    return {r: (tmp_path / name / f"{r}.csv").read_text(encoding="utf-8").splitlines() for r in REPORTS}


@pytest.mark.parametrize("case", sorted(PINNED_4X5["cases"]))
def test_reports_equal_scalesim_on_a_4x5_array(case, tmp_path):
    """Every line of the three reports equals SCALE-Sim 3.0.0's (OS/WS/IS x CALC, USER, USER with stalls)."""
    pinned = PINNED_4X5["cases"][case]
    got = _reports_of(tmp_path, pinned["cfg"], PINNED_4X5["topology"], case)
    assert got == pinned["reports"]


def test_pinned_cases_stall():
    """The pinned USER cases include layers that stall, so the stall rules are exercised, not only CALC."""
    stalls = [
        int(line.split(",")[3])
        for case in PINNED_4X5["cases"].values()
        for line in case["reports"]["COMPUTE_REPORT"][1:]
    ]
    assert max(stalls) > 100_000 and min(stalls) == 0


def test_write_buffer_counts_a_closed_partial_line_as_full():
    """16-word OFMAP buffer, 4 words a line: a line closed with 1 word and drained with a full one counts 8
    words.

    Line 0 (cycle 0) writes 9 words: the 9th leaves 7 free (< 8 active), so lines 0-1 (8 words) and a
    partial line 2 (1 word) are closed and lines 0-1 drain (8 words, cycles 0-1). Line 1 (cycle 1) writes 4
    words, line 3. At the end lines 2-3 drain as one batch of 2 lines: 4 + 4 = 8 words for 5 real ones.
    """
    wb = WriteBuffer(16, 4, np.array([9, 4]))
    assert wb.next_event(0) == 0
    assert wb.play_line(0, 0) == 0
    assert wb.next_event(0) is None
    wb.finish(1)
    assert wb.drains == [(0, 1, 8), (1, 2, 8)]
    assert wb.writes == 16


def test_write_buffer_waits_for_a_drain_when_full():
    """A word arriving while a drain runs and the buffer is full waits until the drain ends (its line stalls).

    8 words, lines of 1 word, drains of 4 lines: line 0 (cycle 0) writes 5 words, the 5th starts a drain of
    4 lines over cycles 0-3 (7 words free again). Line 1 (cycle 1) writes 8 words: the 7th fills the buffer
    while the drain runs, so it waits until cycle 3 (2 stall cycles); the 8th then starts the next drain.
    """
    wb = WriteBuffer(8, 1, np.array([5, 8]))
    assert wb.play_line(0, 0) == 0
    assert wb.drains == [(0, 3, 4)]
    assert wb.next_event(0) == 1
    assert wb.play_line(1, 1) == 2
    assert wb.drains[-1] == (3, 6, 4)


def test_calc_read_buffer_forgets_after_half_the_sram():
    """200-word SRAM (sets of 2, epochs of 100 words): 0..149 then 0..49 read 200 words from DRAM, not 150."""
    rb = EstimatedReadBuffer(200, first_line=0)
    addrs = np.concatenate((np.arange(150), np.arange(50)))
    rb.consume([(addrs, int)], (0, 149))  # one request per line: slot i is on line i
    assert rb.epoch_words == 100
    assert rb.reads == 200
    assert rb.boundary_lines == [99, 199]


def test_os_ofmap_sram_writes_add_r_plus_c_per_fold():
    """OS OFMAP SRAM writes are the outputs plus R + C per fold: 64 x 7 + 16 x 2 x (4 + 5) = 736 on a 4x5
    array."""
    d = LayerDemand(ScaleSimLayer("c1", 10, 10, 3, 3, 3, 7), "os", 4, 5)
    assert (d.row_folds, d.col_folds) == (16, 2)
    assert d.ofmap_sram_writes == 736


def test_ws_and_is_write_every_partial_sum():
    """WS and IS write one OFMAP word per output per row fold (partial sums included): 7 folds x 64 x 7."""
    layer = ScaleSimLayer("c1", 10, 10, 3, 3, 3, 7)
    assert LayerDemand(layer, "ws", 4, 5).ofmap_sram_writes == 7 * 64 * 7
    assert LayerDemand(layer, "is", 4, 5).ofmap_sram_writes == 7 * 64 * 7


def test_skew_order_examples():
    """The docstring examples of the demand module (the anti-diagonal order) give what they show."""
    assert doctest.testmod(demand_module).failed == 0
    assert skew_order(3, 1).tolist() == [0, 1, 2]


def test_depthwise_op_runs_as_one_layer_per_channel():
    """A depthwise op of C channels is C one-channel SCALE-Sim layers named <op>Channel_<i>."""
    graph = load_model(Path(__file__).parents[2] / "workloads" / "ds_cnn_kws.csv")
    op = next(o for o in graph.ops if o.name == "DW1_DP")
    layers = layers_of(graph, op)
    assert len(layers) == 64 and layers[0] == ScaleSimLayer("DW1_DPChannel_0", 27, 7, 3, 3, 1, 1)


def test_same_padding_becomes_a_leading_pad_and_reads_past_the_edge():
    """A SAME 3x3 stride-2 conv on 16x16 maps to a 16x16 IFMAP whose last windows read past its edge (8x8
    out)."""
    graph = load_model(Path(__file__).parents[2] / "workloads" / "tiny.yaml")
    (layer,) = layers_of(graph, graph.ops[0])
    assert (layer.ifmap_h, layer.ifmap_w, layer.ofmap_h, layer.ofmap_w) == (16, 16, 8, 8)


def test_gemm_is_an_m_by_k_ifmap():
    """A fully connected op [M, K] x [K, N] is SCALE-Sim's GEMM layer: an M x K IFMAP, N filters of 1 x K."""
    graph = load_model(Path(__file__).parents[2] / "workloads" / "bert_block_gemm.csv")
    (layer,) = layers_of(graph, graph.ops[0])
    assert layer == ScaleSimLayer("QKV", 64, 128, 1, 128, 1, 384)
    assert layer.macs == 64 * 384 * 128


def _edge_tpu_with(tmp_path, performance_model: str) -> Path:
    """The Edge TPU-like device file (its operands share one SRAM) with another performance model."""
    text = (Path(__file__).parents[2] / "accelerators" / "edge_tpu_like.yaml").read_text(encoding="utf-8")
    path = tmp_path / "dev.yaml"
    path.write_text(
        text.replace(
            "\nperformance_model: edgetpu_compiler\n", f"\nperformance_model: {performance_model}\n"
        ),
        encoding="utf-8",
    )
    return path


def test_shared_sram_cannot_use_scalesim_memory(tmp_path):
    """A device whose operands share one SRAM is refused for the scalesim memory model, naming why."""
    with pytest.raises(ConfigError, match=r"--memory-model scalesim: .*needs one SRAM per operand"):
        with_memory_model(load_device(_edge_tpu_with(tmp_path, "hwsim")), "scalesim")


def test_scalesim_memory_needs_a_hwsim_plan():
    """A device timed by another compiler's model (the Edge TPU compiler's) cannot take SCALE-Sim's memory."""
    with pytest.raises(ConfigError, match=r"cannot be combined with performance_model 'edgetpu_compiler'"):
        with_memory_model(load_device("edge_tpu_like"), "scalesim")


def test_stalls_are_waits_in_the_simulation(tmp_path):
    """With the scalesim model a layer's cycles are SCALE-Sim's Total Cycles + 1 (summed over channels), its
    compute cycles the demand lines and the rest a wait on memory; the trace shows the wait as a stall."""
    pinned = PINNED_4X5["cases"]["os_USER_4_2"]
    cfg, topo = tmp_path / "d.cfg", tmp_path / "t.csv"
    cfg.write_text("\n".join(pinned["cfg"]) + "\n")
    topo.write_text("\n".join(PINNED_4X5["topology"]) + "\n")
    result = simulate(load_model(topo), with_memory_model(load_device(cfg), "scalesim"))
    totals = [int(line.split(",")[2]) for line in pinned["reports"]["COMPUTE_REPORT"][1:]]
    assert [layer.cycles for layer in result.layers] == [
        totals[0] + 1,
        totals[1] + 1,
        totals[2] + 1,
        totals[3] + totals[4] + 2,
    ]
    c1 = result.layers[0]
    assert (c1.compute_cycles, c1.stall_cycles) == (1088, 1678 - 1088)
    assert [(e.action, e.t_start, e.t_end) for e in result.trace if e.op == "c1"] == [
        ("stall", 0, 590),
        ("compute", 590, 1678),
    ]


CFG = textwrap.dedent("""\
    [general]
    run_name = t

    [architecture_presets]
    ArrayHeight:    4
    ArrayWidth:     5
    IfmapSramSzkB:    64
    FilterSramSzkB:   32
    OfmapSramSzkB:    16
    Dataflow : ws
    Bandwidth : 10

    [layout]
    IfmapCustomLayout: False
    IfmapSRAMBankBandwidth: 10
    IfmapSRAMBankNum: 10

    [sparsity]
    SparsitySupport : false

    [run_presets]
    InterfaceBandwidth: USER
    UseRamulatorTrace: False
    """)


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "Bandwidth : 10",
            "Bandwith : 10",
            r"s\.cfg:11: \[architecture_presets\] Bandwith: SCALE-Sim 3\.0\.0 does not read this key; "
            r"did you mean 'Bandwidth'\?",
        ),
        (
            "UseRamulatorTrace: False",
            "UseRamulatorTrace: True",
            r"s\.cfg:23: \[run_presets\] UseRamulatorTrace: DRAM latencies from Ramulator trace files are "
            r"not modelled \(got 'True'\)",
        ),
        (
            "IfmapCustomLayout: False",
            "IfmapCustomLayout: True",
            r"s\.cfg:14: \[layout\] IfmapCustomLayout: custom SRAM layouts \(bank conflicts\) are not "
            r"modelled",
        ),
        (
            "SparsitySupport : false",
            "SparsitySupport : true",
            r"s\.cfg:19: \[sparsity\] SparsitySupport: sparse filters are not modelled \(got 'true'\)",
        ),
        (
            "InterfaceBandwidth: USER",
            "InterfaceBandwidth: CALCX",
            r"s\.cfg:22: \[run_presets\] InterfaceBandwidth: expected CALC or USER "
            r".*\(got 'CALCX'\)",
        ),
        (
            "IfmapSRAMBankNum: 10",
            "IfmapSRAMBankNum: 3",
            r"s\.cfg:16: \[layout\] IfmapSRAMBankNum: must divide IfmapSRAMBankBandwidth \(10\)",
        ),
        (
            "[sparsity]",
            "[network_presets]",
            r"s\.cfg:18: \[network_presets\]: unknown section "
            r"\(hwsim takes the topology on its command line\)",
        ),
        (
            "Dataflow : ws",
            "Dataflow : ws\nDataflow : os",
            r"s\.cfg:11: \[architecture_presets\] Dataflow: given twice \(first on line 10\)",
        ),
    ],
)
def test_cfg_key_refused_at_its_line(tmp_path, old, new, message):
    """Each SCALE-Sim key hwsim does not model (or a key SCALE-Sim does not read) is refused at its line."""
    path = tmp_path / "s.cfg"
    assert old in CFG
    path.write_text(CFG.replace(old, new), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_device(path)


def test_cfg_user_bandwidths_reach_the_memory_model(tmp_path):
    """USER mode: the bank bandwidth feeds the IFMAP fetch, the first Bandwidth value the OFMAP drain."""
    path = tmp_path / "s.cfg"
    path.write_text(
        CFG.replace("Bandwidth : 10", "Bandwidth : 7,3").replace(
            "IfmapSRAMBankBandwidth: 10", "IfmapSRAMBankBandwidth: 20"
        )
    )
    ss = load_device(path).spec.scalesim
    assert (
        ss.interface_bandwidth,
        ss.ifmap_words_per_cycle,
        ss.filter_words_per_cycle,
        ss.ofmap_words_per_cycle,
    ) == ("USER", 20, 10, 7)


def test_cli_report_dir_and_counts_per_operand(tmp_path, capsys):
    """``hwsim simulate --memory-model scalesim --report-dir`` writes SCALE-Sim's files; --counts splits
    operands."""
    pinned = PINNED_4X5["cases"]["ws_CALC_10_10"]
    cfg, topo = tmp_path / "d.cfg", tmp_path / "t.csv"
    cfg.write_text("\n".join(pinned["cfg"]) + "\n")
    topo.write_text("\n".join(PINNED_4X5["topology"]) + "\n")
    assert (
        main(
            [
                "simulate",
                str(topo),
                "--device",
                str(cfg),
                "--memory-model",
                "scalesim",
                "--counts",
                "--report-dir",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    for line in (
        "dram             read   inputs",
        "dram             read   weights",
        "dram             write  outputs",
        "ifmap_sram       read   inputs",
    ):
        assert line in out
    for r in REPORTS:
        assert (tmp_path / "out" / f"{r}.csv").read_text().splitlines() == pinned["reports"][r]


def test_cli_report_dir_needs_the_scalesim_model(tmp_path, capsys):
    """--report-dir with hwsim's own memory model is a one-line error saying to use --memory-model
    scalesim."""
    pinned = PINNED_4X5["cases"]["ws_CALC_10_10"]
    cfg, topo = tmp_path / "d.cfg", tmp_path / "t.csv"
    cfg.write_text("\n".join(pinned["cfg"]) + "\n")
    topo.write_text("\n".join(PINNED_4X5["topology"]) + "\n")
    assert main(["simulate", str(topo), "--device", str(cfg), "--report-dir", str(tmp_path / "out")]) == 2
    assert "need --memory-model scalesim" in capsys.readouterr().err


BENCH_FILE = DATA / "scalesim_3_0_0_bench.json"
BENCH = json.loads(BENCH_FILE.read_text(encoding="utf-8")) if BENCH_FILE.exists() else {}


def _expand(report: list) -> list[str]:
    header, *rows = report
    lines, i = [header], 0
    for repeat, body in rows:
        for _ in range(repeat):
            lines.append(f"{i},{body}")
            i += 1
    return lines


@pytest.mark.parametrize("case", sorted(BENCH))
def test_reports_equal_scalesim_on_the_benchmark_configs(case, tmp_path):
    """DS-CNN, BERT-block GEMMs and ResNet-18 layers on 16x16 and 32x32 arrays, OS/WS/IS x CALC/USER: every
    line of SCALE-Sim 3.0.0's three reports (pinned by benchmarks/bench_scalesim.py --pin) is reproduced."""
    pinned = BENCH[case]
    cfg = tmp_path / f"{case}.cfg"
    cfg.write_text("\n".join(pinned["cfg"]) + "\n", encoding="utf-8")
    topo = Path(__file__).parents[2] / pinned["topology"]
    result = simulate(load_model(topo), with_memory_model(load_device(cfg), "scalesim"), record_trace=False)
    write_reports(result, tmp_path / "out")
    for r in REPORTS:
        assert (tmp_path / "out" / f"{r}.csv").read_text().splitlines() == _expand(pinned["reports"][r]), r


def test_benchmark_configs_are_pinned():
    """The benchmark's SCALE-Sim runs are pinned for all three topologies, both modes and all dataflows."""
    assert {c.split("_")[0] for c in BENCH} >= {"ds", "bert", "resnet18"}
    assert {(c.rsplit("_", 2)[1], c.rsplit("_", 2)[2]) for c in BENCH} == {
        (df, mode) for df in ("os", "ws", "is") for mode in ("calc", "user")
    }


def test_performance_model_name_checks_the_device_too(tmp_path):
    """Choosing the model by its registry name (performance_model: scalesim-3.0) applies the same device
    check."""
    path = _edge_tpu_with(tmp_path, "scalesim-3.0")
    with pytest.raises(ConfigError, match=r"performance model scalesim-3\.0: scalesim needs"):
        simulate(Path(__file__).parents[2] / "workloads" / "tiny.yaml", load_device(path))


def test_memory_model_is_a_sweep_axis(tmp_path):
    """``device.memory_model`` sweeps like any device field: each point's device carries its memory model."""
    from hwsim.experiment.runner import _device
    from hwsim.experiment.spec import ExperimentSpec
    from hwsim.experiment.sweep import expand

    cfg = tmp_path / "d.cfg"
    cfg.write_text("\n".join(PINNED_4X5["cases"]["ws_CALC_10_10"]["cfg"]) + "\n")
    spec = ExperimentSpec.model_validate(
        {
            "schema_version": 1,
            "name": "t",
            "seed": 1,
            "workloads": ["digits_mlp"],
            "devices": [str(cfg)],
            "sweep": {"grid": {"device.memory_model": ["hwsim", "scalesim"]}},
        }
    )
    points = expand(spec)
    assert [_device(p).spec.memory_model for p in points] == ["hwsim", "scalesim"]


@pytest.mark.parametrize("device", ["edge_tpu_like", "ethos_u55_128_like", "hexagon_like"])
def test_traffic_per_operand_adds_up_to_the_counts(device):
    """hwsim's own model: per level and action, the per-operand elements sum to the counted accesses."""
    result = simulate(Path(__file__).parents[2] / "workloads" / "tiny.yaml", device, record_trace=False)
    memories = {m.name for m in result.device.levels if m.kind != "register_file"}
    counted: dict = {}
    for (component, action, _), n in result.totals:
        if component in memories:
            counted[(component, action)] = counted.get((component, action), 0) + n
    split: dict = {}
    for (level, action, _), n in result.traffic().items():
        split[(level, action)] = split.get((level, action), 0) + n
    assert split == counted and counted
