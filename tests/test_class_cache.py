"""The dataclass method cache: the classes it serves behave as the compiler's, and a second process
compiles none of them."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from hwsim import class_cache

MODEL = Path(__file__).parent / "data" / "ethos_u" / "kws_ds_cnn.tflite"

# Defines dataclasses of every kind (frozen, ordered, slots, defaults, factories, inheritance, InitVar) in
# a module named as hwsim's (without ``from __future__ import annotations``) and one class outside it, then
# reports what the generated methods do and what was compiled into the cache.
_CLASSES = """
import dataclasses

@dataclasses.dataclass(frozen=True, order=True)
class A:
    x: int
    y: tuple = (1, 2)

@dataclasses.dataclass(slots=True)
class B:
    items: list = dataclasses.field(default_factory=list)
    scale: dataclasses.InitVar[int] = 2

    def __post_init__(self, scale):
        self.items.append(scale)

@dataclasses.dataclass(frozen=True)
class C(A):
    z: str = "z"
"""
_PROBE = textwrap.dedent(
    f"""
    import dataclasses, json, sys, types
    import hwsim
    from hwsim import class_cache

    module = sys.modules["hwsim.probe_classes"] = types.ModuleType("hwsim.probe_classes")
    exec({_CLASSES!r}, module.__dict__)
    A, B, C = module.A, module.B, module.C

    @dataclasses.dataclass
    class Outside:
        v: int = 0

    a, c = A(3), C(1, (4,), "w")
    try:
        a.x = 4
        frozen = False
    except dataclasses.FrozenInstanceError:
        frozen = True
    print(json.dumps({{
        "repr": [repr(a), repr(B()), repr(c), repr(Outside(5))],
        "eq": [a == A(3), a < A(4), hash(a) == hash(A(3)), C(1) == C(1)],
        "frozen": frozen,
        "annotations": {{k: str(v) for k, v in A.__init__.__annotations__.items()}},
        "replace": repr(dataclasses.replace(c, z="q")),
        "served": getattr(dataclasses, "exec", None) is class_cache._exec,
        "compiled": len(class_cache._added.get("hwsim.probe_classes", {{}})),
        "modules": sorted(class_cache._added),
    }}))
    """
)


def _run(code: str, cache: Path | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HWSIM_CACHE", "HWSIM_CACHE_DIR")}
    if cache is None:
        env["HWSIM_CACHE"] = "off"
    else:
        env["HWSIM_CACHE_DIR"] = str(cache)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)


def test_served_classes_behave_as_compiled_ones(tmp_path):
    plain = json.loads(_run(_PROBE, None).stdout)
    first = json.loads(_run(_PROBE, tmp_path).stdout)
    second = json.loads(_run(_PROBE, tmp_path).stdout)
    assert not plain["served"] and first["served"] and second["served"]
    for result in (first, second):
        for key in ("repr", "eq", "frozen", "annotations", "replace"):
            assert result[key] == plain[key], key
    assert plain["annotations"] == {"x": "<class 'int'>", "y": "<class 'tuple'>", "return": "None"}
    assert first["compiled"] > 0 and second["compiled"] == 0
    assert first["modules"] == ["hwsim.probe_classes"]  # only hwsim's classes are kept


def test_a_simulation_compiles_nothing_the_second_time(tmp_path):
    code = textwrap.dedent(
        f"""
        import contextlib, io, json
        from hwsim.cli import main
        from hwsim import class_cache
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(["simulate", {str(MODEL)!r}, "--device", "ethos_u55_128_like"])
        print(json.dumps([sum(map(len, class_cache._added.values())), out.getvalue()]))
        """
    )
    compiled_first, report_first = json.loads(_run(code, tmp_path).stdout)
    compiled_second, report_second = json.loads(_run(code, tmp_path).stdout)
    assert compiled_first > 50 and compiled_second == 0
    assert report_second == report_first == json.loads(_run(code, None).stdout)[1]


def test_a_damaged_file_is_compiled_over(tmp_path):
    _run(_PROBE, tmp_path)
    (stored,) = (tmp_path / "classes").glob("*/hwsim.probe_classes.marshal")
    stored.write_bytes(b"not marshal data")
    result = json.loads(_run(_PROBE, tmp_path).stdout)
    assert result["compiled"] > 0 and result["eq"] == [True, True, True, True]


def test_exec_keeps_the_callers_namespace_when_given_none():
    marker = 41

    def run():
        local = {"marker": marker}
        class_cache._exec("result = marker + 1", None, local)
        return local["result"]

    assert run() == 42


def test_a_changed_class_replaces_its_old_methods_in_the_file(tmp_path):
    import marshal

    _run(_PROBE, tmp_path)
    (stored,) = (tmp_path / "classes").glob("*/hwsim.probe_classes.marshal")
    before = set(marshal.loads(stored.read_bytes()))
    changed = _PROBE.replace('z: str = "z"\\n', 'z: str = "z"\\n    w: int = 0\\n')
    assert changed != _PROBE
    result = json.loads(_run(changed, tmp_path).stdout)
    after = set(marshal.loads(stored.read_bytes()))
    assert result["compiled"] > 0
    dropped, new = before - after, after - before
    assert dropped and not any("'w'" in text or "_w" in text for text in dropped)  # C's old methods left
    assert new and all("'w'" in text or "_w" in text or "self.w" in text for text in new)  # its new came in
