"""Helpers for tests against live reference runtimes.

A missing runtime skips its tests on a developer machine, but fails them under CI (CI=true), where the
bit-exactness tests must really run.
"""

import importlib
import os

import pytest


def require(module: str):
    """Import ``module`` or skip (locally) / fail (in CI) with the reason."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        if os.environ.get("CI"):
            pytest.fail(f"reference runtime {module!r} is not installed in CI: {exc}")
        pytest.skip(f"reference runtime {module!r} is not installed: {exc}")
