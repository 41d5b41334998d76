"""Under CI=true a skip fails the run unless tests/allowed_skips.py lists it (tests/conftest.py)."""

import subprocess
import sys
from pathlib import Path

from tests.allowed_skips import ALLOWED, allowed

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path, files: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """pytest on a scratch tree with the gate registered as it is in CI."""
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(REPO)!r})\nfrom tests.conftest import UnlistedSkips\n\n\n"
        "def pytest_configure(config):\n"
        "    config.pluginmanager.register(UnlistedSkips(), 'unlisted-skips')\n"
    )
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


LISTED = (
    "import pytest\n\n\n@pytest.mark.skipif(True, reason='node is not installed')\n"
    "def test_report_html_script_parses():\n    pass\n"
)


def test_a_listed_skip_passes_and_others_fail_the_run(tmp_path):
    """A listed skip leaves the run green; an unlisted one (in a test, at import, other words) fails it."""
    run = _run(tmp_path, {"tests/experiment/test_report.py": LISTED})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout and "allowed_skips" not in run.stdout
    unlisted = {
        "tests/test_other.py": "import pytest\n\n\ndef test_x():\n    pytest.skip('no reason given')\n",
        "tests/test_import.py": "import pytest\n\npytest.importorskip('no_such_module_here')\n",
        "tests/test_wrong_reason.py": LISTED.replace("node is not installed", "flaky"),
    }
    run = _run(tmp_path, unlisted)
    assert run.returncode == 1, run.stdout + run.stderr
    summary = run.stdout.split("skips not listed in tests/allowed_skips.py")[1]
    assert "tests/test_other.py::test_x: no reason given" in summary
    assert "tests/test_import.py: " in summary and "no_such_module_here" in summary
    assert "tests/experiment/test_report.py" not in summary
    assert "tests/test_wrong_reason.py::test_report_html_script_parses: flaky" in summary


def test_the_gate_holds_on_worker_processes(tmp_path):
    """The suite runs on pytest-xdist workers (pyproject addopts): skips reported by a worker still fail."""
    unlisted = {
        "tests/test_other.py": "import pytest\n\n\ndef test_x():\n    pytest.skip('no reason given')\n"
    }
    run = _run(tmp_path, {"tests/experiment/test_report.py": LISTED, **unlisted}, "-n", "2")
    assert run.returncode == 1, run.stdout + run.stderr
    summary = run.stdout.split("skips not listed in tests/allowed_skips.py")[1]
    assert "tests/test_other.py::test_x: no reason given" in summary
    assert "tests/experiment/test_report.py" not in summary


def test_every_entry_names_what_runs_it():
    """Each entry matches by node id and reason words and says which CPU or runtime runs the test."""
    for pattern, words, runs_on in ALLOWED:
        assert pattern.startswith("tests/") and words and len(runs_on) > 10
    assert allowed(
        "tests/numerics/test_fused.py::test_simd_kernel_matches_twin[vnni]",
        "no AVX-512 VNNI here (or no JIT): the byte kernel never runs",
    )
    assert not allowed(
        "tests/numerics/test_fused.py::test_simd_kernel_matches_twin[avx2]",
        "no AVX-512 VNNI here (or no JIT): the byte kernel never runs",
    )
    assert not allowed(
        "tests/numerics/test_fused.py::test_simd_kernel_matches_twin[vnni]",
        "reference runtime 'torch' is not installed",
    )
