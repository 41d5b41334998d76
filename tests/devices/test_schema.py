"""Device files: every shipped device validates and simulates, and bad files fail with file:line: field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hwsim.config.yamlio import load_spec
from hwsim.devices.model import device_files, load_device
from hwsim.devices.schema import DeviceSpec
from hwsim.errors import ConfigError, RegistryError
from hwsim.paths import data_dir
from hwsim.schedule.simulate import simulate

TINY = data_dir("workloads") / "tiny.yaml"

GOOD = """\
schema_version: 1
name: t
clock_mhz: 100
mac_array:
  rows: 2
  columns: 2
  dataflow: output_stationary
  accumulator_bits: 32
  precisions:
    - {weights_bits: 8, activations_bits: 8}
vector_units:
  - {name: vpu, vector_bits: 32, ops: ["*"]}
dma: {engines: 1}
memories:
  - name: dram
    kind: off_chip
    read_bandwidth_bytes_per_cycle: 4
    write_bandwidth_bytes_per_cycle: 4
    read_latency_cycles: 10
    write_latency_cycles: 10
    holds: [weights, inputs, outputs]
    homes: [weights, activations]
  - name: sram
    kind: sram
    size_bytes: 4096
    read_bandwidth_bytes_per_cycle: 8
    write_bandwidth_bytes_per_cycle: 8
    holds: [weights, inputs, outputs]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dev.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", device_files(), ids=lambda p: p.stem)
def test_shipped_device_validates_and_simulates_tiny(path):
    """Each file in accelerators/ validates, and simulating workloads/tiny.yaml gives a non-empty trace."""
    result = simulate(TINY, path)
    assert result.cycles > 0 and len(result.trace) > 0
    assert result.macs == 18_512
    assert result.totals[(result.device.spec.mac_array.name, "mac", "8x8")] > 0


@pytest.mark.parametrize("path", device_files(), ids=lambda p: p.stem)
def test_shipped_device_sources_every_section(path):
    """Each shipped device names a source for its MAC array, vector units, DMA and every memory level."""
    spec = load_spec(DeviceSpec, path)
    sections = [spec.mac_array, spec.dma, *spec.vector_units, *spec.memories]
    assert all(s.source.strip() for s in sections)
    assert spec.sources


def test_good_minimal_file_loads(tmp_path):
    """The minimal example used by the error tests is itself valid."""
    dev = load_device(_write(tmp_path, GOOD))
    assert dev.read_level("weights") == 1 and dev.peak_macs_per_cycle == 4


def test_wrong_type_names_file_line_field_and_value(tmp_path):
    """A fractional accumulator width is reported with its file, line, field path and value."""
    path = _write(tmp_path, GOOD.replace("accumulator_bits: 32", "accumulator_bits: 23.5"))
    with pytest.raises(
        ConfigError,
        match=r"dev\.yaml:8: mac_array\.accumulator_bits: Input should be a "
        r"valid "
        r"integer.*\(got 23\.5\)",
    ):
        load_device(path)


def test_unknown_key_suggests_closest(tmp_path):
    """A misspelt key names the closest valid key."""
    path = _write(tmp_path, GOOD.replace("    size_bytes: 4096", "    size_byte: 4096"))
    with pytest.raises(
        ConfigError,
        match=r"dev\.yaml:25: memories\[1\]\.size_byte: unknown key; did you "
        r"mean "
        r"'size_bytes'\?",
    ):
        load_device(path)


def test_missing_field_points_at_enclosing_key(tmp_path):
    """A missing required field is reported at the line of the mapping that lacks it."""
    path = _write(tmp_path, GOOD.replace("  rows: 2\n", ""))
    with pytest.raises(ConfigError, match=r"dev\.yaml:4: mac_array\.rows: required field is missing"):
        load_device(path)


def test_unknown_dataflow_suggests_closest(tmp_path):
    """An unknown dataflow lists the valid ones and the closest match, at the dataflow's line."""
    path = _write(tmp_path, GOOD.replace("dataflow: output_stationary", "dataflow: weight_stationery"))
    with pytest.raises(
        ConfigError,
        match=r"dev\.yaml:7: mac_array\.dataflow: unknown dataflow; did you mean "
        r"'weight_stationary'\?",
    ):
        load_device(path)


def test_duplicate_key_is_an_error(tmp_path):
    """A key given twice is an error naming the first line (PyYAML alone would keep the last)."""
    path = _write(tmp_path, GOOD.replace("clock_mhz: 100", "clock_mhz: 100\nclock_mhz: 200"))
    with pytest.raises(ConfigError, match=r"dev\.yaml:4: clock_mhz: duplicate key, first given on line 3"):
        load_device(path)


def test_sram_without_size_is_blamed_on_its_level(tmp_path):
    """A cross-field rule (an sram level needs a size) points at that level's field."""
    path = _write(tmp_path, GOOD.replace("    size_bytes: 4096\n", ""))
    with pytest.raises(
        ConfigError,
        match=r"dev\.yaml:23: memories\[1\]\.size_bytes: an sram level needs its "
        r"size",
    ):
        load_device(path)


def test_register_file_must_be_innermost(tmp_path):
    """A register file listed before an sram level is rejected at that sram level's kind."""
    text = GOOD.replace(
        "  - name: sram\n", "  - {name: rf, kind: register_file, holds: [weights]}\n  - name: sram\n"
    )
    with pytest.raises(ConfigError, match=r"memories\[2\]\.kind: register files must come last"):
        load_device(_write(tmp_path, text))


def test_home_must_be_held(tmp_path):
    """A level cannot home activations it does not hold."""
    text = GOOD.rstrip("\n").rsplit("\n", 1)[0] + "\n    holds: [weights]\n    homes: [activations]\n"
    with pytest.raises(
        ConfigError, match=r"memories\[1\]\.homes: homes activations but does not hold inputs"
    ):
        load_device(_write(tmp_path, text))


def test_duplicate_memory_name(tmp_path):
    """Two levels with one name are rejected at the second name."""
    with pytest.raises(ConfigError, match=r"dev\.yaml:23: memories\[1\]\.name: duplicate memory name"):
        load_device(_write(tmp_path, GOOD.replace("  - name: sram", "  - name: dram")))


def test_not_yaml(tmp_path):
    """Broken YAML syntax reports the line PyYAML stopped at."""
    with pytest.raises(ConfigError, match=r"dev\.yaml:\d+: not valid YAML"):
        load_device(_write(tmp_path, GOOD.replace("rows: 2", "rows: [2")))


def test_top_level_not_a_mapping(tmp_path):
    """A file that is a list names the required top-level fields."""
    with pytest.raises(
        ConfigError,
        match=r"dev\.yaml:1: \(top level\): expected a mapping with "
        r"schema_version",
    ):
        load_device(_write(tmp_path, "- 1\n- 2\n"))


def test_rate_must_be_whole_or_reciprocal(tmp_path):
    """A throughput rate like 1.5 MACs per PE per cycle is rejected."""
    text = GOOD.replace(
        "{weights_bits: 8, activations_bits: 8}",
        "{weights_bits: 8, activations_bits: 8, macs_per_pe_per_cycle: 1.5}",
    )
    with pytest.raises(ConfigError, match=r"precisions\[0\]\.macs_per_pe_per_cycle: expected a whole number"):
        load_device(_write(tmp_path, text))


def test_unknown_device_name_suggests(tmp_path):
    """A misspelt shipped-device name lists near matches."""
    with pytest.raises(RegistryError, match=r"Did you mean 'edge_tpu_like'"):
        load_device("edge_tpu_lik")


def test_unsupported_precision_is_named(tmp_path):
    """A layer whose bits no precision pair covers fails with the supported pairs listed."""
    dev = load_device(_write(tmp_path, GOOD))
    with pytest.raises(
        ConfigError,
        match=r"no operand pair covers 8-bit weights x 16-bit activations "
        r"\(supported: 8x8\)",
    ):
        dev.precision(8, 16)


SCALESIM_CFG = textwrap.dedent("""\
    [general]
    run_name = t

    [architecture_presets]
    ArrayHeight:    4
    ArrayWidth:     5
    IfmapSramSzkB:    64
    FilterSramSzkB:   32
    OfmapSramSzkB:    16
    Dataflow : ws

    [run_presets]
    InterfaceBandwidth: CALC
    """)


def test_scalesim_cfg_is_a_device(tmp_path):
    """A SCALE-Sim .cfg becomes a systolic device with its array, dataflow and three SRAM sizes."""
    path = tmp_path / "s.cfg"
    path.write_text(SCALESIM_CFG)
    dev = load_device(path)
    assert (dev.spec.mac_array.rows, dev.spec.mac_array.columns) == (4, 5)
    assert dev.spec.mac_array.dataflow == "weight_stationary"
    assert [m.size_bytes for m in dev.levels[1:4]] == [65536, 32768, 16384]


def test_scalesim_cfg_bad_dataflow(tmp_path):
    """A SCALE-Sim dataflow other than os/ws/is is reported with its line."""
    path = tmp_path / "s.cfg"
    path.write_text(SCALESIM_CFG.replace("Dataflow : ws", "Dataflow : xs"))
    with pytest.raises(
        ConfigError,
        match=r"s\.cfg:10: \[architecture_presets\] Dataflow: expected os, ws or "
        r"is",
    ):
        load_device(path)


def test_scalesim_cfg_missing_key(tmp_path):
    """A SCALE-Sim config without ArrayHeight names the missing key."""
    path = tmp_path / "s.cfg"
    path.write_text(SCALESIM_CFG.replace("ArrayHeight:    4\n", ""))
    with pytest.raises(ConfigError, match=r"\[architecture_presets\] ArrayHeight: required key is missing"):
        load_device(path)


def test_unknown_performance_model_suggests_closest(tmp_path):
    """An unknown performance model names the valid ones and the closest, at its line."""
    path = _write(tmp_path, GOOD.replace("clock_mhz: 100", "clock_mhz: 100\nperformance_model: hwsimm"))
    with pytest.raises(
        ConfigError,
        match=r"dev\.yaml:4: performance_model: unknown performance model; did "
        r"you "
        r"mean 'hwsim'\?",
    ):
        load_device(path)


def test_bounds_and_choices_read_like_pydantic(tmp_path):
    """A value below its bound, or outside its choices, names the rule and the value."""
    with pytest.raises(
        ConfigError,
        match=r"dev\.yaml:5: mac_array\.rows: Input should be greater than or "
        r"equal "
        r"to 1 \(got 0\)",
    ):
        load_device(_write(tmp_path, GOOD.replace("rows: 2", "rows: 0")))
    with pytest.raises(
        ConfigError,
        match=r"memories\[1\]\.kind: Input should be 'off_chip', 'sram' or "
        r"'register_file' \(got 'sdram'\)",
    ):
        load_device(_write(tmp_path, GOOD.replace("kind: sram", "kind: sdram")))


def test_exact_numbers_convert_as_pydantic_converts_them(tmp_path):
    """An int field takes 2.0 as 2, a float field takes 100 as 100.0, so results print as before."""
    spec = load_device(_write(tmp_path, GOOD.replace("rows: 2", "rows: 2.0"))).spec
    assert type(spec.mac_array.rows) is int and type(spec.clock_mhz) is float and spec.clock_mhz == 100.0


def test_loading_a_device_imports_no_pydantic():
    """Devices are plain records: a simulation pays no pydantic import."""
    import subprocess
    import sys

    script = (
        "import sys\nfrom hwsim.devices.model import load_device\nload_device('ethos_u55_128_like')\n"
        "print(any(m.split('.')[0] == 'pydantic' for m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "False", run.stderr
