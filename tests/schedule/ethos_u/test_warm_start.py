"""A warm ``hwsim simulate`` of a TinyML network on an Ethos-U55 or U85 imports no numpy (a third of such a
command's time): the TFLite reader keeps constants as the file stores them, shape arithmetic folds in
Python, and the weight encodings and block configs come from the disk cache an earlier run filled."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.schedule.ethos_u import blocks, blocks_u85
from hwsim.schedule.ethos_u import weight_encoding as we
from hwsim.schedule.ethos_u.family import family
from hwsim.schedule.simulate import simulate

ROOT = Path(__file__).resolve().parents[3]
KWS = ROOT / "tests" / "data" / "ethos_u" / "kws_ds_cnn.tflite"

MEMOS = (blocks.find_block_config, blocks_u85.find_block_config, we._encode_cached, family)
PROBE = """
import contextlib, io, json, sys
from hwsim.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "numpy": "numpy" in sys.modules, "table": out.getvalue()}))
"""


@pytest.mark.parametrize("device", ["ethos_u55_128_like", "ethos_u85_256_like"])
def test_a_warm_simulation_imports_no_numpy(tmp_path, monkeypatch, device):
    """A run fills the cache (encoding weights and searching block configs with numpy); a fresh interpreter
    then simulates the keyword-spotting net (its Flatten's shape arithmetic included) without importing
    numpy, and prints the same table."""
    monkeypatch.setenv("HWSIM_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("HWSIM_CACHE", raising=False)
    # in-memory hits (an earlier test's, in this process) would leave the disk cache empty
    for memo in MEMOS:
        memo.cache_clear()
    try:
        expected = simulate(KWS, device, record_trace=False).table()
    finally:
        for memo in MEMOS:
            memo.cache_clear()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = ["simulate", str(KWS), "--device", device]
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    warm = json.loads(out.stdout)
    assert warm["code"] == 0 and not warm["numpy"]
    assert warm["table"].strip() == expected
