"""detect_anomaly() finds the op that made the first NaN or infinity; outside it ops are
silent about inf and NaN, like PyTorch, and numpy prints no warnings."""
import numpy as np
import pytest

import minigrad as mg
from minigrad.models import LSTM

from builders import leaf


def test_ops_return_inf_and_nan_without_warnings_in_forward_and_backward(warnings_are_errors):
    x = leaf([0.0, -1.0, 1000.0])
    with np.errstate(all="warn"):  # even where the caller asks numpy to warn
        y = mg.log(x) + mg.exp(x) + 1 / x + x ** -0.5 + mg.Tensor([np.inf]) * 0
        y.sum().backward()
    assert np.isnan(y.data).all()
    assert not np.isfinite(x.grad).any()


def test_the_callers_numpy_error_settings_are_restored(warnings_are_errors):
    with np.errstate(divide="raise"):
        mg.log(mg.Tensor([0.0]))
        with pytest.raises(FloatingPointError):
            np.log(np.zeros(1))
    with pytest.raises(ValueError, match="incompatible shapes"):  # restored after an error too
        mg.Tensor(np.ones(2)) + np.ones(3)
    assert np.geterr()["divide"] == "warn"


def test_nothing_is_checked_outside_the_block():
    x = leaf([-1.0])
    assert np.isnan(mg.log(x).data).all()  # no FloatingPointError


def test_forward_names_the_op_the_scope_and_the_shapes():
    x = leaf(np.full((2, 3), -1.0), "x")
    with mg.detect_anomaly():
        y = x * 2  # finite: no error
        with pytest.raises(FloatingPointError) as caught:
            with mg.scope("block"):
                mg.log(y)
    message = str(caught.value)
    assert "nan in the forward output of log in scope 'block'" in message
    assert "output shape (2, 3), input shapes (2, 3)" in message


def test_forward_says_when_the_nan_came_in_through_a_leaf():
    w = leaf([1.0, np.inf], "w")
    with mg.detect_anomaly(), pytest.raises(FloatingPointError,
                                            match=r"inf in the forward output of multiply.*"
                                                  r"input 1 \(leaf 'w'\) already held inf"):
        leaf([1.0, 2.0]) * w


def test_backward_names_the_op_whose_gradient_is_not_finite():
    x = leaf([0.0, 4.0], "x")
    with mg.detect_anomaly():
        with mg.scope("root"):
            y = (x ** 0.5).sum()  # finite value, infinite slope at 0
        with pytest.raises(FloatingPointError) as caught:
            y.backward()
    message = str(caught.value)
    assert "inf in the backward of power in scope 'root'" in message
    assert "gradient for input 0 (leaf 'x') of shape (2,)" in message


def test_a_non_finite_upstream_gradient_is_reported_where_it_enters():
    y = leaf([1.0, 2.0]) * 3
    with mg.detect_anomaly(), pytest.raises(FloatingPointError,
                                            match="nan in the gradient reaching the output of "
                                                  "multiply.*backward"):
        y.backward(np.array([1.0, np.nan]))


def lstm_and_input(batch):
    rng = np.random.default_rng(0)
    return LSTM(3, 4, rng=rng), rng.standard_normal((batch, 6, 3))


def test_a_nan_planted_in_one_step_of_an_lstm_input_is_found_at_that_step():
    lstm, x = lstm_and_input(2)
    x[1, 3, 2] = np.nan
    lstm(x)  # outside the block: runs, NaN everywhere after step 3
    with mg.detect_anomaly(), pytest.raises(FloatingPointError) as caught:
        lstm(x)
    message = str(caught.value)
    assert "in the forward output of slice in scope 'l0/t3'" in message
    assert "output shape (2, 3), input shapes (2, 6, 3); input 0 (leaf) already held nan" in message


def test_an_overflow_in_one_step_of_an_lstm_backward_is_found_at_that_step():
    lstm, x = lstm_and_input(16)
    out, _ = lstm(x)
    upstream = np.zeros(out.shape)
    upstream[:, 3, :] = 1e308  # finite, but a sum of 16 of them is not
    with mg.detect_anomaly(), pytest.raises(FloatingPointError) as caught:
        out.backward(upstream)
    message = str(caught.value)
    # The first sum in step 3's backward: the bias gradient, summed over the batch.
    assert "inf in the backward of add in scope 'l0/t3'" in message
    assert "gradient for input 1 (leaf 'l0.bias') of shape (16,)" in message


def test_the_block_restores_the_previous_setting_after_an_error():
    with pytest.raises(FloatingPointError):
        with mg.detect_anomaly():
            mg.log(mg.Tensor([-1.0]))
    assert np.isnan(mg.log(mg.Tensor([-1.0])).data).all()
