"""Store where Vela 5.2.0 places each operator of the placement test models (NPU or CPU), per Ethos-U family.

Usage (Vela in its own venv; the tests never need it)::

    python benchmarks/pin_vela_placement.py --vela /work/peers/vela-venv/bin/vela

The models of ``tests/schedule/ethos_u/placement_models.py``, as stored by ``benchmarks/build_test_models.py
placement`` (``tests/data/tflite/placement``: the files the tests read), are compiled
by Vela with ``--enable-debug-db`` for an ethos-u55-128, an ethos-u65-256 and an ethos-u85-256. An operator is
``"cpu"`` when Vela's performance table lists it as a Passthrough, ``"npu"`` when it lists an NPU op made from
it, and ``"gone"`` when it lists nothing (a reshape Vela removed, shape arithmetic no output needs).
``tests/data/ethos_u/vela_placement.json`` then holds, per model, its operators' TFLite names and, per family
("u55" for U55 and U65, which the script checks agree, and "u85"), their placements, by operator index.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.schedule.ethos_u.placement_models import MODELS  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "ethos_u" / "vela_placement.json"
STORED = Path(__file__).resolve().parent.parent / "tests" / "data" / "tflite" / "placement"
TARGETS = {"u55": "ethos-u55-128", "u65": "ethos-u65-256", "u85": "ethos-u85-256"}


def operator_names(path: Path) -> list[str]:
    """The builtin name of each operator of the file's first subgraph, by operator index."""
    import tflite

    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    sub = model.Subgraphs(0)
    out = []
    for i in range(sub.OperatorsLength()):
        code = model.OperatorCodes(sub.Operators(i).OpcodeIndex())
        out.append(names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())])
    return out


def vela_placement(vela: str, model: Path, accelerator: str, out: Path) -> dict[int, str]:
    """Compile ``model`` with Vela and read each operator index's placement from its debug database."""
    proc = subprocess.run(
        [
            vela,
            str(model),
            "--accelerator-config",
            accelerator,
            "--output-dir",
            str(out),
            "--enable-debug-db",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"vela failed on {model.name} for {accelerator}: {proc.stderr[-2000:]}")
    text = next(out.glob("*_debug.xml")).read_text()
    tables = {
        m.group(1): list(csv.DictReader(io.StringIO(m.group(2).strip())))
        for m in re.finditer(r'<table name="(\w+)">\s*<!\[CDATA\[(.*?)\]\]>', text, re.DOTALL)
    }
    index = {r["id"]: int(r["ext_key"]) for r in tables["source"]}
    placed = {i: "gone" for i in index.values()}
    for row in tables["perf"]:
        placed[index[row["source_id"]]] = "cpu" if row["operator"] == "Passthrough" else "npu"
    return placed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vela", default="/work/peers/vela-venv/bin/vela")
    args = parser.parse_args()
    pinned: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODELS:
            path = STORED / f"{name}.tflite"
            names = operator_names(path)
            placed = {
                fam: vela_placement(args.vela, path, acc, Path(tmp) / f"{name}.{fam}")
                for fam, acc in TARGETS.items()
            }
            if placed["u65"] != placed["u55"]:
                raise RuntimeError(f"{name}: Vela places operators differently on the U55 and the U65")
            pinned[name] = {
                "operators": names,
                **{fam: [placed[fam][i] for i in range(len(names))] for fam in ("u55", "u85")},
            }
            cpu = {fam: sum(p == "cpu" for p in placed[fam].values()) for fam in ("u55", "u85")}
            print(f"{name:20s} {len(names):3d} operators, CPU: {cpu}")
    OUT.write_text(
        "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in pinned.items()) + "\n}\n"
    )
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
