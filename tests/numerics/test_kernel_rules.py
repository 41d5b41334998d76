"""House rules for kernels, checked on the source: JIT only in kernels.py, no fastmath, a reference for each."""

import ast
import inspect
from pathlib import Path

from hwsim.numerics import kernels, reference

PACKAGE = Path(__file__).resolve().parents[2] / "hwsim"


def _decorator_names(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in node.decorator_list:
                yield node.name, ast.unparse(dec)


def test_no_fastmath_anywhere():
    """No call in the package passes fastmath= (to numba or anything else): bit-exactness forbids re-association."""
    offenders = [f"{path.name}:{node.lineno}" for path in PACKAGE.rglob("*.py")
                 for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.keyword) and node.arg == "fastmath"]
    assert offenders == []


def test_jit_decorators_only_in_kernels_module():
    """numba decorators appear only in hwsim/numerics/kernels.py, so every JIT function has a reference twin."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "kernels.py":
            continue
        for name, dec in _decorator_names(ast.parse(path.read_text())):
            if "jit" in dec or "numba" in dec:
                offenders.append(f"{path.name}:{name}")
    assert offenders == []


def test_every_kernel_has_a_reference_twin():
    """Each public kernel has a function of the same name in reference.py (raw_dot_* are checked against naive numpy)."""
    public = {name for name, obj in vars(kernels).items()
              if not name.startswith("_") and hasattr(obj, "py_func") or (callable(obj) and inspect.isfunction(obj)
                                                                            and obj.__module__ == kernels.__name__)}
    public -= {name for name in public if name.startswith("_")}
    missing = sorted(public - set(vars(reference)) - {"raw_dot_i32", "raw_dot_int64"})
    assert missing == []
