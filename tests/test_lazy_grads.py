"""Gradients the backward sweep keeps lazy until a node's turn (tensor.accumulate): the
slices of one tensor (ops.IndexedGrad), joined into one concatenate where they tile it,
and a weight's products a.T @ g (ops.ProductGrad), joined into one matrix product where
the weight is large beside the rows of each use. Each must give the dense answer."""
import numpy as np
import pytest

import minigrad as mg


def dense_slices_grad(shape, indices, upstream):
    expected = np.zeros(shape)
    for index, g in zip(indices, upstream):
        np.add.at(expected, index, g)  # (a repeated integer index adds twice)
    return expected


@pytest.mark.parametrize("indices", [
    [np.s_[:, :2], np.s_[:, 2:5], np.s_[:, 5:]],            # tiles along axis 1
    [np.s_[3:, :], np.s_[:3, :]],                            # tiles along axis 0, out of order
    [np.s_[:, :2], np.s_[:, 1:]],                            # overlaps
    [np.s_[:, :2], np.s_[:, 3:]],                            # leaves a gap
    [np.s_[:, :2], np.s_[:2, 2:]],                           # two axes
    [np.s_[:, ::2], np.s_[:, 1::2]],                         # strided
    [np.s_[:, 1], np.s_[:, 0], np.s_[:, 2:]],                # integers drop an axis
    [np.s_[:, :3], (slice(None), np.array([3, 3, 5]))],      # an integer array
])
def test_slices_of_one_tensor_sum_as_dense(indices):
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal((4, 7)), requires_grad=True)
    parts = [x[index] for index in indices]
    upstream = [rng.standard_normal(p.shape) for p in parts]
    loss = mg.Tensor(0.0)
    for p, g in zip(parts, upstream):
        loss = loss + (p * g).sum()
    loss.backward()
    np.testing.assert_allclose(x.grad, dense_slices_grad(x.shape, indices, upstream),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("extra", ["none", "dense", "retain"])
def test_a_weight_used_at_every_step_gets_the_sum_of_its_products(dtype, extra):
    rng = np.random.default_rng(1)
    rows, inner, outer, steps = 2, 40, 50, 5  # large beside the rows: kept lazy
    w = mg.nn.Parameter(rng.standard_normal((inner, outer)).astype(dtype))
    xs = [rng.standard_normal((rows, inner)).astype(dtype) for _ in range(steps)]
    gs = [rng.standard_normal((rows, outer)).astype(dtype) for _ in range(steps)]
    loss = mg.Tensor(np.zeros((), dtype))
    for x, g in zip(xs, gs):
        loss = loss + (mg.Tensor(x) @ w * g).sum()
    expected = sum(x.T.astype(np.float64) @ g for x, g in zip(xs, gs))
    if extra == "dense":  # another kind of use: a dense contribution joins the products
        loss = loss + (w * 3.0).sum()
        expected = expected + 3.0
    loss.backward(retain_grads=extra == "retain")
    assert type(w.grad) is np.ndarray and w.grad.dtype == dtype and w.grad.shape == w.shape
    np.testing.assert_allclose(w.grad, expected, rtol=1e-4 if dtype == np.float32 else 1e-12)


def test_lazy_gradients_are_recorded_and_checked_dense():
    rng = np.random.default_rng(2)
    w = mg.nn.Parameter(rng.standard_normal((30, 40)))
    x = mg.Tensor(rng.standard_normal((2, 30)))
    y = (x @ w)[:, :20].sum() + (x @ w)[:, 20:].sum()
    with mg.record_backward() as sweep:
        y.backward(retain_graph=True)
    assert all(type(g) is np.ndarray for step in sweep for _, g in step.input_grads
               if g is not None)
    w.grad = None
    with mg.detect_anomaly():
        y.backward()
    np.testing.assert_allclose(w.grad, np.repeat(x.data.sum(0)[:, None], 40, axis=1),
                               rtol=1e-12)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("needs", [(False, True), (True, False), (True, True)])
@pytest.mark.parametrize("retain", [False, True])
def test_a_concat_times_a_matrix_sends_each_part_its_rows_or_columns(axis, needs, retain):
    """concat([x, h]) @ w: the product's gradient reaches the concat as its factors, and
    only the parts that need a gradient are computed (an LSTM step's x_t never does)."""
    rng = np.random.default_rng(3)
    shapes = [(3, 2), (3, 4)] if axis == 1 else [(2, 6), (3, 6)]
    x, h = (mg.Tensor(rng.standard_normal(s), requires_grad=n) for s, n in zip(shapes, needs))
    w = mg.nn.Parameter(rng.standard_normal((6, 5)))
    cat = mg.concat([x, h], axis=axis)
    g = rng.standard_normal((cat.shape[0], 5))
    (cat @ w * g).sum().backward(retain_grads=retain)
    full = g @ w.data.T
    split = np.split(full, [shapes[0][axis]], axis=axis)
    for t, part, n in zip((x, h), split, needs):
        if n:
            np.testing.assert_allclose(t.grad, part, rtol=1e-12)
        else:
            assert t.grad is None
    if retain:
        np.testing.assert_allclose(cat.grad, full, rtol=1e-12)
    np.testing.assert_allclose(w.grad, cat.data.T @ g, rtol=1e-12)


def test_a_concat_used_twice_gets_the_product_and_the_other_gradient():
    rng = np.random.default_rng(4)
    h = mg.Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    x = mg.Tensor(rng.standard_normal((3, 2)))
    w = mg.nn.Parameter(rng.standard_normal((6, 5)))
    cat = mg.concat([x, h], axis=1)
    ((cat @ w).sum() + (cat * 2.0).sum()).backward()
    np.testing.assert_allclose(h.grad, (np.ones((3, 5)) @ w.data.T)[:, 2:] + 2.0, rtol=1e-12)
