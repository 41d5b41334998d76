"""The import layering of the package (STYLE §3): numerics at the bottom; the counts branch (importers,
workload, devices, schedule, energy) never imports the values branch (the kernels, ``hwsim.runtime``) or
numba; devices below the schedule; plots read result rows, never the report.

Two checks: an AST scan of every import statement (module level and inside functions) against the rules
below, and fresh interpreters that import and run shape-only paths and then look at ``sys.modules``.
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hwsim"

COUNTS = ("hwsim.importers", "hwsim.workload", "hwsim.devices", "hwsim.schedule", "hwsim.energy")
VALUES = (
    "numba",
    "llvmlite",
    "hwsim.runtime",
    "hwsim.numerics.ops",
    "hwsim.numerics.kernels",
    "hwsim.numerics.fused",
    "hwsim.numerics.quantized",
    "hwsim.numerics.mlas",
    "hwsim.numerics.simd",
    "hwsim.numerics.fixed_point",
    "hwsim.accuracy",
)
ABOVE_COUNTS = (
    "hwsim.quant.convert",
    "hwsim.quant.qat",
    "hwsim.experiment",
    "hwsim.llm",
    "hwsim.verify",
    "hwsim.plots",
    "hwsim.cli",
)
NUMERICS_MAY_IMPORT = ("hwsim.numerics", "hwsim.errors", "hwsim.registry")

# (importer prefix, imported prefix) that no import statement may join.
FORBIDDEN = [
    *((c, v) for c in COUNTS for v in VALUES),
    *((c, a) for c in COUNTS for a in ABOVE_COUNTS),
    ("hwsim.devices", "hwsim.schedule"),
    ("hwsim.plots", "hwsim.experiment.report"),
    ("hwsim.plots", "hwsim.experiment.runner"),
]

# Known exceptions, each an import inside a function, with the reason it is still there.
ALLOWED = {
    # Vela's accelerator tables (SHRAM banks, U85 RAM sizes) live with the Ethos-U model that reads them;
    # a device file names an accelerator, so validating one looks it up there (plain data, no numerics).
    ("hwsim.devices.schema", "hwsim.schedule.ethos_u.arch"),
    ("hwsim.devices.schema", "hwsim.schedule.ethos_u.arch_u85"),
    ("hwsim.devices.ethos_u", "hwsim.schedule.ethos_u.arch"),
    ("hwsim.devices.ethos_u", "hwsim.schedule.ethos_u.arch_u85"),
    # `hwsim energy` draws its figure: a command module is the CLI's layer, not the counts branch's.
    ("hwsim.energy.commands", "hwsim.plots.energy"),
}


def _module_name(path: Path) -> str:
    """``hwsim.a.b`` for ``hwsim/a/b.py`` or ``hwsim/a/b/__init__.py``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, module) of every import statement in ``path`` (module ``module``), relative ones resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return found


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _violations(path: Path, importer: str) -> list[str]:
    """The layering rules the imports of ``path`` (module ``importer``) break, one line each."""
    out = []
    for line, imported in _imports(path, importer):
        if (
            _under(importer, "hwsim.numerics")
            and imported.startswith("hwsim")
            and not any(_under(imported, p) for p in NUMERICS_MAY_IMPORT)
        ):
            out.append(f"{path.name}:{line}: numerics imports {imported}")
        for low, high in FORBIDDEN:
            if (
                _under(importer, low)
                and _under(imported, high)
                and not any(_under(importer, a) and _under(imported, b) for a, b in ALLOWED)
            ):
                out.append(f"{path.name}:{line}: {low} imports {imported}")
    return sorted(set(out))


def test_no_import_crosses_the_layers():
    """No import statement in the package, at module level or in a function, breaks a layering rule."""
    found = [
        f"{p.parent.relative_to(ROOT)}/{v}"
        for p in sorted(PACKAGE.rglob("*.py"))
        for v in _violations(p, _module_name(p))
    ]
    assert found == []


def test_the_scan_sees_a_planted_violation(tmp_path):
    """The AST scan catches imports it must refuse, lazy ones inside a function too."""
    planted = tmp_path / "planted.py"
    planted.write_text(
        "def f():\n    from hwsim.schedule.mapper import plan\n    import numba\n"
        "from ..experiment import report\n"
    )
    found = _violations(planted, "hwsim.plots.planted")
    assert "planted.py:4: hwsim.plots imports hwsim.experiment.report" in found
    found = _violations(planted, "hwsim.devices.planted")
    assert "planted.py:2: hwsim.devices imports hwsim.schedule.mapper" in found
    assert "planted.py:3: hwsim.devices imports numba" in found


SHAPE_ONLY = """
import json, sys
from hwsim.devices.model import load_device
from hwsim.importers import load_model
from hwsim.paths import data_dir
from hwsim.schedule.simulate import simulate
import hwsim.energy.account, hwsim.schedule.ethos_u.model, hwsim.schedule.scalesim.model
import hwsim.schedule.edgetpu_compiler, hwsim.numerics.formats, hwsim.numerics.geometry
for name in sys.argv[1:]:
    simulate(load_model(data_dir("workloads") / name), load_device("edge_tpu_like"))
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("workloads", [["tiny.yaml", "resnet18_layers.csv", "digits_mobilenet.onnx"]])
def test_shape_only_simulation_loads_no_values_branch(workloads):
    """Importing the counts branch, loading a layer file, a SCALE-Sim topology and a float ONNX model (shape
    inference without running the graph) and simulating them loads neither numba nor any kernel."""
    out = subprocess.run(
        [sys.executable, "-c", SHAPE_ONLY, *workloads],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    loaded = json.loads(out.stdout)
    assert [m for m in loaded if any(_under(m, v) for v in VALUES)] == []
    assert "hwsim.importers.onnx_file" in loaded and "hwsim.schedule.mapper" in loaded  # it did run them


def test_devices_and_plots_import_alone():
    """A device loads without the scheduler, and the experiment plots without the report."""
    probe = (
        "import json, sys; from hwsim.devices.model import load_device; load_device('edge_tpu_like');"
        "import hwsim.plots.experiment; print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"},
        check=True,
    )
    loaded = json.loads(out.stdout)
    assert [m for m in loaded if _under(m, "hwsim.schedule") or _under(m, "hwsim.experiment.report")] == []
