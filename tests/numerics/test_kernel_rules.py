"""House rules for kernels, checked on the source: JIT only in kernels.py, no fastmath, a reference for
each."""

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from hwsim.numerics import kernels, reference

PACKAGE = Path(__file__).resolve().parents[2] / "hwsim"


def _decorator_names(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in node.decorator_list:
                yield node.name, ast.unparse(dec)


def test_no_fastmath_anywhere():
    """No call in the package passes fastmath= (to numba or anything else): bit-exactness forbids
    re-association."""
    offenders = [
        f"{path.name}:{node.lineno}"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.keyword) and node.arg == "fastmath"
    ]
    assert offenders == []


def _is_kernel_module(path: Path) -> bool:
    return path.parent == PACKAGE / "numerics" and (
        path.name == "kernels.py" or path.name.startswith("kernels_")
    )


def test_jit_decorators_only_in_kernels_module():
    """numba decorators appear only in hwsim/numerics/kernels.py and kernels_*.py, which all have reference
    twins."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if _is_kernel_module(path):
            continue
        for name, dec in _decorator_names(ast.parse(path.read_text())):
            if "jit" in dec or "numba" in dec:
                offenders.append(f"{path.name}:{name}")
    assert offenders == []


def test_every_kernel_has_a_reference_twin():
    """Each public kernel has a function of the same name in reference.py (raw_dot_* are checked against
    naive numpy)."""
    public = {
        name
        for name, obj in vars(kernels).items()
        if not name.startswith("_")
        and hasattr(obj, "py_func")
        or (callable(obj) and inspect.isfunction(obj) and obj.__module__ == kernels.__name__)
    }
    public -= {name for name in public if name.startswith("_")}
    missing = sorted(public - set(vars(reference)) - {"raw_dot_i32", "raw_dot_int64", "depthwise_acc_i32"})
    assert missing == []


KERNEL_TWINS = sorted(p.stem for p in (PACKAGE / "numerics").glob("kernels_*.py"))


@pytest.mark.parametrize("module", KERNEL_TWINS)
def test_every_extra_kernel_module_has_a_reference_twin(module):
    """Each kernels_<name>.py has a reference_<name>.py, with a same-named plain function for every public
    kernel."""
    kernels_mod = importlib.import_module(f"hwsim.numerics.{module}")
    twin_path = PACKAGE / "numerics" / f"reference_{module.removeprefix('kernels_')}.py"
    assert twin_path.exists(), f"{module}.py has no {twin_path.name}"
    twin = importlib.import_module(f"hwsim.numerics.{twin_path.stem}")
    public = {
        name
        for name, obj in vars(kernels_mod).items()
        if not name.startswith("_")
        and (hasattr(obj, "py_func") or inspect.isfunction(obj) and obj.__module__ == kernels_mod.__name__)
    }
    assert public, f"{module}.py defines no kernel"
    assert sorted(public - set(vars(twin))) == []
    for name in public:
        assert not hasattr(getattr(twin, name), "py_func"), (
            f"{twin_path.name}:{name} must not be JIT-compiled"
        )


def test_extra_kernel_modules_cache_and_skip_fastmath():
    """Every numba decorator in kernels_*.py compiles with cache=True (and, as everywhere, never fastmath)."""
    for path in (PACKAGE / "numerics").glob("kernels_*.py"):
        source = path.read_text()
        for call in [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)]:
            name = ast.unparse(call.func)
            if name.endswith("njit") or name.endswith(".jit"):
                keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
                assert keywords.get("cache") == "True", f"{path.name}: {ast.unparse(call)}"
