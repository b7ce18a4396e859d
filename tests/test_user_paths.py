"""What a user hits one step beyond the shipped path: hand-written models, odd inputs and
the corners of the engine, each a regression test of a bug once found there."""
import warnings

import numpy as np
import pytest

import minigrad as mg


@pytest.fixture(autouse=True)
def no_numpy_warnings():
    """Outside detect_anomaly ops return inf and NaN silently (SPEC): any warning fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def leaf(data, name=None):
    return mg.Tensor(np.asarray(data, dtype=np.float64), requires_grad=True, name=name)


# -- empty and 0-d reductions -------------------------------------------------------------

@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_mean_of_nothing_is_nan_without_a_warning(axis):
    x = leaf(np.zeros((0, 3)))
    y = mg.mean(x, axis=axis)
    expected = np.full(np.zeros((0, 3)).sum(axis=axis).shape, np.nan)
    np.testing.assert_array_equal(y.data, expected)
    y.backward(np.ones(y.shape))
    assert x.grad.shape == (0, 3)


def test_cross_entropy_of_an_empty_batch_is_nan_without_a_warning():
    logits = leaf(np.zeros((0, 4)))
    loss = mg.nn.cross_entropy(logits, np.zeros(0, dtype=int))
    assert np.isnan(loss.item())  # as torch.nn.functional.cross_entropy
    loss.backward()
    assert logits.grad.shape == (0, 4)


@pytest.mark.parametrize("reduce", [mg.sum, mg.mean])
@pytest.mark.parametrize("axis", [0, -1])
def test_reducing_a_0d_tensor_over_axis_0_has_a_gradient(reduce, axis):
    # numpy and PyTorch accept axis 0 and -1 on a 0-d array; backward used to divide by
    # the number of dimensions (ZeroDivisionError).
    x = leaf(3.0)
    reduce(x, axis=axis).backward()
    assert x.grad == 1.0
    assert mg.gradcheck(lambda t: reduce(t, axis=axis) * t, [leaf(0.7)])
