"""Shared test configuration: a derandomised hypothesis profile in CI, a fixed seed, no disk cache."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))
# Tests compute every result, and leave the user's cache alone (tests of the cache itself turn it on).
os.environ["HWSIM_CACHE"] = "off"


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator with a fixed seed, so every test's data is reproducible."""
    return np.random.default_rng(20261125)


def pytest_addoption(parser):
    """``--update-golden``: rewrite the golden files of the selected golden tests instead of checking them."""
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/golden/counts/<device>.json from the current code (review the diff)")


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
