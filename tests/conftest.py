"""Shared test configuration: a derandomised hypothesis profile in CI, a fixed seed, no disk cache, and
in CI a failure for every skip that tests/allowed_skips.py does not list."""

import os
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from tests import allowed_skips

settings.register_profile(
    "ci", derandomize=True, max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The numerics suite's JIT-free pass (tests/numerics/test_without_jit.py) runs the kernels' Python bodies,
# 100x slower: a third of the examples checks that no register width is left to a dtype.
settings.register_profile("ci-nojit", settings.get_profile("ci"), max_examples=20)
if os.environ.get("CI"):
    settings.load_profile("ci-nojit" if os.environ.get("NUMBA_DISABLE_JIT") == "1" else "ci")
else:
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
# Tests compute every result, and leave the user's cache alone (tests of the cache itself turn it on).
os.environ["HWSIM_CACHE"] = "off"
# No background kernel compiles from the experiments the tests run (tests of the warm-up turn it on).
os.environ["HWSIM_WARMUP"] = "off"


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator with a fixed seed, so every test's data is reproducible."""
    return np.random.default_rng(20261125)


def pytest_addoption(parser):
    """``--update-golden``: rewrite the golden files of the selected golden tests instead of checking them."""
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/counts/<device>.json from the current code (review the diff)",
    )


@pytest.fixture
def update_golden(request) -> bool:
    """True when the run was asked to rewrite golden files (``pytest --update-golden``)."""
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def failing_points(monkeypatch):
    """``failing_points(predicate)``: from then on, the experiment points whose RunSpec meets ``predicate``
    (all, by default) raise inside the runner's measurement in this process, as a bug in a model would."""
    from hwsim.experiment import runner

    def install(predicate=lambda spec: True) -> None:
        measure = runner._measure

        def measure_or_fail(spec, row):
            if predicate(spec):
                raise RuntimeError("this point fails on purpose (the failing_points fixture)")
            measure(spec, row)

        monkeypatch.setattr(runner, "_measure", measure_or_fail)

    return install


class UnlistedSkips:
    """Under CI=true, fails the run on skips that tests/allowed_skips.py does not list, and names them."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def _check(self, report) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            longrepr = report.longrepr
            reason = (longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)).removeprefix("Skipped: ")
            if not allowed_skips.allowed(report.nodeid, reason):
                self.found.append((report.nodeid, reason))

    def pytest_runtest_logreport(self, report) -> None:
        self._check(report)

    def pytest_collectreport(self, report) -> None:
        self._check(report)

    def pytest_sessionfinish(self, session) -> None:
        if self.found and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.found:
            title = "skips not listed in tests/allowed_skips.py (they fail a CI run)"
            terminalreporter.section(title, red=True)
            for nodeid, reason in self.found:
                terminalreporter.line(f"{nodeid}: {reason}", red=True)


#: files of one long test, started first so that neither worker is left alone with one at the end
LONG_FIRST = ("tests/numerics/test_without_jit.py",)


def pytest_collection_modifyitems(config, items):
    """Files in the order the workers get them: :data:`LONG_FIRST`, then the files with the most tests (the
    kernel tests, whose workers compile the kernels into the shared cache before the experiment tests'
    subprocesses need them; in collection order those came first and compiled the kernels again)."""
    size = Counter(item.nodeid.split("::")[0] for item in items)

    def order(item):
        path = item.nodeid.split("::")[0]
        return (path not in LONG_FIRST, -size[path])

    items.sort(key=order)


def pytest_configure(config):
    if os.environ.get("CI"):
        config.pluginmanager.register(UnlistedSkips(), "unlisted-skips")
