"""abs, maximum, minimum, max, min, clip, where, softmax, log_softmax and cross_entropy.

Their gradients away from the kinks are checked in the op table of ``test_ops.py``
(gradcheck, float32 kept, no_grad). Here: values, and the gradients at the kinks, where
central differences cannot decide and the op follows a convention. The expected numbers
are PyTorch's (2.x), worked out by hand below from its documented rules: ties of
``torch.maximum`` split the gradient in halves, ``torch.amax`` spreads it evenly over
tied maxima, ``abs`` has gradient 0 at 0, ``clamp`` passes the gradient at its bounds.
"""
import re

import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import cross_entropy

from builders import leaf


def grads_of(fn, *values, upstream=None):
    """Run ``fn`` on fresh leaves, backward with ``upstream`` (ones by default)."""
    inputs = [leaf(v) for v in values]
    out = fn(*inputs)
    out.backward(np.ones(out.shape) if upstream is None else np.array(upstream, float))
    return out, [t.grad for t in inputs]


# -- abs --------------------------------------------------------------------------------

def test_abs_values_and_gradient_zero_at_zero():
    out, (g,) = grads_of(mg.abs, [-1.5, 0.0, -0.0, 2.0])
    assert out.data.tolist() == [1.5, 0.0, 0.0, 2.0]
    assert g.tolist() == [-1.0, 0.0, 0.0, 1.0]  # sign(x): 0 at 0, as torch.abs


# -- maximum / minimum --------------------------------------------------------------------

def test_maximum_and_minimum_split_a_tie_in_halves():
    # torch.maximum([1, 2, 3], [1, 5, 3]) with upstream [1, 1, 2]: ties at 0 and 2.
    out, (ga, gb) = grads_of(mg.maximum, [1.0, 2.0, 3.0], [1.0, 5.0, 3.0],
                             upstream=[1.0, 1.0, 2.0])
    assert out.data.tolist() == [1.0, 5.0, 3.0]
    assert ga.tolist() == [0.5, 0.0, 1.0] and gb.tolist() == [0.5, 1.0, 1.0]
    out, (ga, gb) = grads_of(mg.minimum, [1.0, 2.0, 3.0], [1.0, 5.0, 3.0],
                             upstream=[1.0, 1.0, 2.0])
    assert out.data.tolist() == [1.0, 2.0, 3.0]
    assert ga.tolist() == [0.5, 1.0, 1.0] and gb.tolist() == [0.5, 0.0, 1.0]


def test_maximum_ties_under_broadcasting_add_up_per_input():
    # a (2, 1) = [[1], [2]] against b (3,) = [1, 2, 3]: out [[1, 2, 3], [2, 2, 3]].
    # a: row 0 ties once (0.5) and loses twice; row 1 wins once, ties once: 1.5.
    # b: column 0 ties once (0.5); column 1 wins once and ties once (1.5); column 2 wins twice.
    out, (ga, gb) = grads_of(mg.maximum, [[1.0], [2.0]], [1.0, 2.0, 3.0])
    assert out.data.tolist() == [[1.0, 2.0, 3.0], [2.0, 2.0, 3.0]]
    assert ga.tolist() == [[0.5], [1.5]] and gb.tolist() == [0.5, 1.5, 2.0]


def test_maximum_with_nan_gives_nan_and_passes_the_gradient_to_both():
    # PyTorch: NaN is neither smaller nor equal, so neither input's gradient is masked.
    out, (ga, gb) = grads_of(mg.maximum, [np.nan, 1.0], [0.0, np.nan])
    assert np.isnan(out.data).all()
    assert ga.tolist() == [1.0, 1.0] and gb.tolist() == [1.0, 1.0]


def test_maximum_with_python_numbers_and_arrays():
    x = leaf([-1.0, 0.5, 2.0])
    y = mg.maximum(x, 0.0)  # relu, with half the gradient at exactly 0
    assert y.data.tolist() == [0.0, 0.5, 2.0]
    assert mg.minimum(1.0, x).data.tolist() == [-1.0, 0.5, 1.0]
    assert mg.maximum(np.array([0.0, 1.0, 1.0]), x).data.tolist() == [0.0, 1.0, 2.0]


# -- max / min reductions ------------------------------------------------------------------

TIES = [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]


@pytest.mark.parametrize("fn, upstream, expected_out, expected_grad", [
    # torch.amax(x, dim=1) with upstream [1, 3]: row 0's two 3s share, row 1's three 2s share.
    (lambda x: mg.max(x, axis=1), [1.0, 3.0], [3.0, 2.0], [[0, 0.5, 0.5], [1, 1, 1]]),
    # over everything: the two 3s are the maxima
    (lambda x: x.max(), None, 3.0, [[0, 0.5, 0.5], [0, 0, 0]]),
    (lambda x: mg.max(x, axis=1, keepdims=True), [[1.0], [3.0]], [[3.0], [2.0]],
     [[0, 0.5, 0.5], [1, 1, 1]]),
    # torch.amin(x, dim=0): column 0's 1 alone, columns 1 and 2 take 2 alone
    (lambda x: mg.min(x, axis=0), None, [1.0, 2.0, 2.0], [[1, 0, 0], [0, 1, 1]]),
    (lambda x: x.min(axis=(0, 1)), None, 1.0, [[1, 0, 0], [0, 0, 0]]),
    (lambda x: mg.min(x, axis=-1), [2.0, 6.0], [1.0, 2.0], [[2, 0, 0], [2, 2, 2]]),
], ids=["max-axis1", "max-all", "max-keepdims", "min-axis0", "min-all", "min-axis-1"])
def test_tied_extremes_share_the_gradient_equally(fn, upstream, expected_out, expected_grad):
    out, (g,) = grads_of(fn, TIES, upstream=upstream)
    assert out.data.tolist() == expected_out
    np.testing.assert_array_equal(g, expected_grad)


def test_max_of_a_slice_with_nan_is_nan_and_so_is_its_gradient():
    out, (g,) = grads_of(lambda x: mg.max(x, axis=1), [[1.0, np.nan, 0.0], [1.0, 2.0, 0.0]])
    assert np.isnan(out.data[0]) and out.data[1] == 2.0
    assert np.isnan(g[0]).all() and g[1].tolist() == [0.0, 1.0, 0.0]  # as torch.amax


def test_max_of_a_0d_tensor_and_along_axis_0_of_it():
    out, (g,) = grads_of(lambda x: mg.max(x) + mg.min(x, axis=0), 2.5)
    assert out.data.tolist() == 5.0 and g.tolist() == 2.0


# -- clip ---------------------------------------------------------------------------------

X = [-1.0, 0.0, 0.5, 1.0, 2.0]


@pytest.mark.parametrize("low, high, expected_out, expected_grad", [
    # torch.clamp passes the gradient where low <= x <= high: at the bounds too
    (0.0, 1.0, [0.0, 0.0, 0.5, 1.0, 1.0], [0, 1, 1, 1, 0]),
    (1.0, None, [1.0, 1.0, 1.0, 1.0, 2.0], [0, 0, 0, 1, 1]),
    (None, 0.0, [-1.0, 0.0, 0.0, 0.0, 0.0], [1, 1, 0, 0, 0]),
    # low > high: every element becomes high and no gradient passes
    (1.0, 0.0, [0.0, 0.0, 0.0, 0.0, 0.0], [0, 0, 0, 0, 0]),
])
def test_clip_passes_the_gradient_at_its_bounds(low, high, expected_out, expected_grad):
    out, (g,) = grads_of(lambda x: mg.clip(x, low, high), X)
    assert out.data.tolist() == expected_out
    assert g.tolist() == expected_grad


def test_clip_with_array_bounds_broadcasts_and_keeps_float32():
    x = leaf([[0.5, 3.0], [-2.0, 1.0]], dtype=np.float32)
    out = x.clip(np.array([0.0, 1.5]), 2.5)  # a per-column lower bound
    assert out.dtype == np.float32
    assert out.data.tolist() == [[0.5, 2.5], [0.0, 1.5]]
    out.sum().backward()
    assert x.grad.tolist() == [[1.0, 0.0], [0.0, 0.0]] and x.grad.dtype == np.float32


def test_clip_mistakes_get_clear_errors():
    x = leaf([1.0])
    with pytest.raises(ValueError, match="clip: give low, high or both"):
        mg.clip(x, None, None)
    with pytest.raises(TypeError, match=r"clip: the bounds are constants.*mg.maximum"):
        mg.clip(x, leaf([0.0]), None)
    with pytest.raises(ValueError, match="clip: low must be numeric"):
        mg.clip(x, "0", None)


# -- where --------------------------------------------------------------------------------

def test_where_picks_and_routes_the_gradient_to_the_chosen_branch():
    cond = np.array([[True, False], [False, True]])
    out, (ga, gb) = grads_of(lambda a, b: mg.where(cond, a, b), [[1.0, 2.0], [3.0, 4.0]],
                             [10.0, 20.0], upstream=[[1.0, 2.0], [3.0, 4.0]])
    assert out.data.tolist() == [[1.0, 20.0], [10.0, 4.0]]
    assert ga.tolist() == [[1.0, 0.0], [0.0, 4.0]]
    assert gb.tolist() == [3.0, 2.0]  # b was broadcast over the rows: summed back


def test_where_takes_a_mask_tensor_lists_and_numbers():
    x = leaf([-1.0, 2.0, -3.0])
    mask = mg.Tensor(x.data > 0)  # a Tensor of 0.0 and 1.0
    assert mg.where(mask, x, 0.0).data.tolist() == [0.0, 2.0, 0.0]
    assert mg.where([True, False, True], 1.0, x).data.tolist() == [1.0, 2.0, 1.0]
    y32 = leaf([1.0, 2.0], dtype=np.float32)
    assert mg.where(np.array(True), y32, 5.0).dtype == np.float32


def test_where_mistakes_get_clear_errors():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match=r"where: condition must be a bool array \(such as "
                                         r"x > 0\), got dtype float64"):
        mg.where(np.array([0.0, 1.0]), x, 0.0)
    with pytest.raises(ValueError, match=r"where: a Tensor condition must hold only 0 and 1"):
        mg.where(mg.Tensor([0.5, 1.0]), x, 0.0)
    with pytest.raises(ValueError, match=r"where: condition \(3,\), a \(2,\) and b \(\) do not "
                                         "broadcast together"):
        mg.where(np.ones(3, bool), x, 0.0)


# -- softmax / log_softmax ----------------------------------------------------------------

def test_softmax_and_log_softmax_values():
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, np.log(2.0)]])
    e = np.exp(x)
    np.testing.assert_allclose(mg.softmax(mg.Tensor(x)).data, e / e.sum(1, keepdims=True),
                               rtol=1e-15)
    np.testing.assert_allclose(mg.log_softmax(x).data, np.log(e / e.sum(1, keepdims=True)),
                               rtol=1e-15)
    np.testing.assert_allclose(mg.softmax(x, axis=0).data, e / e.sum(0), rtol=1e-15)
    np.testing.assert_allclose(mg.softmax(x).data[1], [0.25, 0.25, 0.5], rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_and_log_softmax_are_stable_for_huge_logits(dtype, float_errors_raise):
    logits = [[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]]
    upstream = np.array([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]], dtype)
    x = leaf(logits, dtype=dtype)
    y = mg.log_softmax(x, axis=1)
    y.backward(upstream)
    assert y.dtype == dtype and x.grad.dtype == dtype
    # row 0: 1e4 takes everything; row 1: three equal logits, log(1/3) each
    np.testing.assert_allclose(y.data, [[0.0, -2e4, -1e4], [-np.log(3)] * 3], rtol=1e-6)
    # grad - softmax * sum(grad): [1, 2, 3] - [1, 0, 0] * 6, and [.5, 0, -1] + 0.5 / 3
    np.testing.assert_allclose(x.grad, [[-5.0, 2.0, 3.0], [2 / 3, 1 / 6, -5 / 6]], rtol=1e-6)
    x = leaf(logits, dtype=dtype)
    s = x.softmax(axis=-1)
    s.backward(upstream)
    np.testing.assert_allclose(s.data, [[1.0, 0.0, 0.0], [1 / 3] * 3], rtol=1e-6)
    # y * (grad - sum(grad * y)): row 0 is one-hot, so 0; row 1: (g - mean(g)) / 3 with
    # mean(g) = -1/6
    np.testing.assert_allclose(x.grad, [[0.0, 0.0, 0.0], [2 / 9, 1 / 18, -5 / 18]], atol=1e-7)


def test_softmax_of_a_0d_tensor_and_of_an_empty_axis():
    x = leaf(3.0)
    assert mg.softmax(x).data.tolist() == 1.0 and mg.log_softmax(x, axis=0).data.tolist() == 0.0
    assert mg.softmax(np.zeros((2, 0))).shape == (2, 0)


def test_softmax_of_infinite_rows_is_nan_like_pytorch(warnings_are_errors):
    y = mg.softmax(np.array([[-np.inf, -np.inf], [np.inf, 0.0]]))
    assert np.isnan(y.data).all()


@pytest.mark.parametrize("fn", [mg.softmax, mg.log_softmax, mg.max])
@pytest.mark.parametrize("axis, message", [
    (2, "axis 2 is out of range for a tensor of shape (2, 3)"),
    (-3, "axis -3 is out of range for a tensor of shape (2, 3)"),
    (1.0, "axis must be"),
])
def test_bad_axes_get_clear_errors(fn, axis, message):
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        fn(mg.Tensor(np.ones((2, 3))), axis=axis)


def test_max_over_an_empty_axis_is_an_error_and_duplicate_axes_too():
    with pytest.raises(ValueError, match=r"max: cannot reduce over axis 1 of size 0"):
        mg.max(np.zeros((2, 0)), axis=1)
    assert mg.max(np.zeros((0, 2)), axis=1).shape == (0,)  # nothing to reduce per row
    with pytest.raises(ValueError, match=r"min: axis 1 is repeated in \(1, -1\)"):
        mg.min(np.zeros((2, 3)), axis=(1, -1))


# -- cross_entropy ------------------------------------------------------------------------

def test_cross_entropy_equals_pytorchs_value_and_gradient():
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0], [1e4, -1e4, 0.0]])
    target = np.array([0, 2, 1])
    x = leaf(logits)
    loss = cross_entropy(x, target)
    loss.backward()
    # By hand: mean over rows of logsumexp(row) - row[target].
    lse = [2 + np.log(1 + np.exp(-1) + np.exp(-1.9)),
           2.5 + np.log(1 + np.exp(-2) + np.exp(-3.5)),
           1e4]
    expected = np.mean([lse[0] - 2.0, lse[1] + 1.0, lse[2] + 1e4])
    assert loss.item() == pytest.approx(expected, rel=1e-14)
    assert loss.item() == pytest.approx(6668.0234027411325, rel=1e-14)  # torch's value
    softmax = np.exp(logits - np.max(logits, 1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    np.testing.assert_allclose(x.grad, (softmax - np.eye(3)[target]) / 3, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_is_stable_and_keeps_the_dtype(dtype, float_errors_raise):
    x = leaf([[1e4, -1e4], [-1e4, 1e4]], dtype=dtype)
    loss = cross_entropy(x, [1, 1])  # one confidently wrong, one right
    loss.backward()
    assert loss.dtype == dtype and x.grad.dtype == dtype
    assert loss.item() == pytest.approx(1e4)  # (2e4 + 0) / 2
    np.testing.assert_allclose(x.grad, [[0.5, -0.5], [0.0, 0.0]])


@pytest.mark.parametrize("logits, target, message", [
    (np.zeros((2, 3)), [0, 3], r"cross_entropy: target holds 3, outside \[0, 3\)"),
    (np.zeros((2, 3)), [-1, 0], r"target holds -1, outside \[0, 3\)"),
    (np.zeros((2, 3)), np.array([0.0, 1.0]), "target must hold integer indices, got "
                                             "dtype float64"),
    (np.zeros((2, 3)), [True, False], "target must hold integer indices, got dtype bool"),
    (np.zeros((2, 3)), [0, 1, 2], r"target of shape \(3,\) for logits of shape \(2, 3\); "
                                  r"expected \(2,\)"),
    (np.zeros((2, 3)), [[0], [1]], r"target of shape \(2, 1\)"),
    # the class axis is last: (C,) logits take a 0-d target, (N, T, C) ones an (N, T) target
    (np.zeros(3), [0], r"target of shape \(1,\) for logits of shape \(3,\); expected \(\)"),
    (np.zeros((2, 3, 4)), [0, 1],
     r"target of shape \(2,\) for logits of shape \(2, 3, 4\); expected \(2, 3\)"),
    (np.zeros((2, 0)), [0, 0], r"logits must have shape \(\.\.\., C\) with C >= 1 classes, "
                               r"got \(2, 0\)"),
])
def test_cross_entropy_mistakes_get_clear_errors(logits, target, message):
    with pytest.raises(ValueError, match=message):
        cross_entropy(logits, target)


def test_cross_entropy_gradcheck_over_shapes():
    rng = np.random.default_rng(0)
    for n, c in [(1, 1), (1, 4), (5, 3), (4, 1)]:
        x = leaf(rng.standard_normal((n, c)) * 3)
        target = rng.integers(0, c, n)
        assert mg.gradcheck(lambda z: cross_entropy(z, target), [x])


# -- tensor methods -----------------------------------------------------------------------

def test_tensor_methods_and_builtin_abs():
    x = mg.Tensor([[-1.0, 2.0], [3.0, -4.0]])
    assert abs(x).data.tolist() == x.abs().data.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert x.max().data.tolist() == 3.0 and x.min(axis=0).data.tolist() == [-1.0, -4.0]
    assert x.max(axis=1, keepdims=True).shape == (2, 1)
    assert x.clip(-2.0, 2.0).data.tolist() == [[-1.0, 2.0], [2.0, -2.0]]
    np.testing.assert_allclose(x.softmax(axis=0).data.sum(0), [1.0, 1.0])
    np.testing.assert_allclose(np.exp(x.log_softmax().data).sum(1), [1.0, 1.0])


def test_ops_show_their_settings_in_drawings():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    assert repr(mg.max(x, axis=-1).op) == "<op max axis=1>"
    assert repr(mg.min(x, axis=(0, 1)).op) == "<op min axis=(0, 1)>"
    assert repr(mg.clip(x, -1, 1).op) == "<op clip low=-1, high=1>"
    assert repr(mg.clip(x, None, np.array([0.0, 1.0])).op) == "<op clip high=array>"
    assert repr(mg.log_softmax(x, axis=0).op) == "<op logsoftmax axis=0>"
