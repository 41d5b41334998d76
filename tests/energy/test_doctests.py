"""The examples in the energy modules' docstrings (laws with their fitted exponents, table and model usage)
run."""

from __future__ import annotations

import doctest

import pytest

from hwsim.energy import account, laws, model, table


@pytest.mark.parametrize("module", [laws, table, model, account], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    """Every docstring example of the module gives the output it shows."""
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and (result.attempted > 0 or module is account)
