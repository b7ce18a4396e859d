"""Fixtures every test file may ask for by name. Graph builders are in builders.py."""
import warnings

import numpy as np
import pytest


@pytest.fixture
def warnings_are_errors():
    """Any warning fails the test: outside detect_anomaly, ops return inf and NaN
    silently, with no numpy warnings (SPEC)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.fixture
def float_errors_raise(warnings_are_errors):
    """Every numpy floating-point event raises too, except underflow: a value rounding to
    0 (exp(-1000)) is often the right answer."""
    with np.errstate(all="raise", under="ignore"):
        yield
