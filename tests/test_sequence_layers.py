"""The layers of the sequence lessons: Embedding, Dropout with train/eval, and
cross_entropy over (..., C) with ignore_index.

Values are checked against hand computations (PyTorch gives the same: checked once in a
throwaway script, never imported here), gradients by gradcheck in float64 over several
shapes, size-1 dimensions included; every bad input by the error it must raise.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import Dropout, Embedding, Linear, Module, ModuleList, cross_entropy


def reference_cross_entropy(x, target, ignore_index=None):
    """The definition, in numpy: mean over kept positions of logsumexp - picked logit."""
    x = x.reshape(-1, x.shape[-1])
    target = target.reshape(-1)
    keep = np.ones(len(target), bool) if ignore_index is None else target != ignore_index
    top = x.max(axis=1, keepdims=True)
    logsumexp = (top + np.log(np.exp(x - top).sum(axis=1, keepdims=True)))[:, 0]
    return np.mean((logsumexp - x[np.arange(len(x)), np.where(keep, target, 0)])[keep])


# -- cross_entropy -----------------------------------------------------------------------

@pytest.mark.parametrize("shape, classes", [((5,), 4), ((2, 3), 4), ((2, 3, 4), 5),
                                            ((1, 1), 3), ((3, 1), 1), ((), 4)])
@pytest.mark.parametrize("ignore_index", [None, -100, 0])
def test_cross_entropy_over_any_leading_shape_matches_the_definition_and_gradcheck(
        shape, classes, ignore_index):
    rng = np.random.default_rng(len(shape) * 10 + classes)
    x = rng.standard_normal(shape + (classes,)) * 3
    target = rng.integers(0, classes, size=shape)
    if ignore_index is not None and shape:
        target[rng.random(shape) < 0.3] = ignore_index
        target.flat[0] = classes - 1 if ignore_index == 0 and classes > 1 else 0
    kept = target if ignore_index is None else target[target != ignore_index]
    logits = mg.Tensor(x, requires_grad=True)
    loss = cross_entropy(logits, target, ignore_index=ignore_index)
    if kept.size == 0:  # nothing to average: NaN, and no gradient, as in PyTorch
        assert np.isnan(loss.item())
        loss.backward()
        assert np.all(logits.grad == 0)
        return
    assert loss.item() == pytest.approx(reference_cross_entropy(x, target, ignore_index),
                                        rel=1e-12)
    assert mg.gradcheck(lambda t: cross_entropy(t, target, ignore_index=ignore_index) * 1.7,
                        [logits])
    if ignore_index is not None and shape:  # ignored positions get exactly no gradient
        loss.backward()
        assert np.all(logits.grad[target == ignore_index] == 0)


def test_cross_entropy_ignores_padding_as_if_it_were_not_there():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 6))
    target = np.array([[1, 2, 3, 5], [4, 0, -1, -1]])  # the second row is padded
    padded = cross_entropy(x, target, ignore_index=-1).item()
    rows = np.concatenate([x[0], x[1, :2]])
    assert padded == pytest.approx(cross_entropy(rows, np.array([1, 2, 3, 5, 4, 0])).item(),
                                   rel=1e-12)


def test_cross_entropy_is_finite_for_huge_logits():
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]])
    with np.errstate(all="raise"):
        loss = cross_entropy(mg.Tensor(x, requires_grad=True), np.array([1, 2]))
    assert loss.item() == pytest.approx((2000 + 1 + np.log1p(np.exp(-1))) / 2)


@pytest.mark.parametrize("target, ignore_index, message", [
    (np.array([[0, 1, 2]]), None, r"target of shape \(1, 3\) for logits of shape \(2, 3, 4\); "
                                  r"expected \(2, 3\)"),
    (np.array([0, 1, 2, 0, 1, 2]), None, r"expected \(2, 3\)"),
    (np.zeros((2, 3)), None, "must hold integer indices, got dtype float64"),
    (np.array([[0, 1, 4], [0, 0, 0]]), None, r"holds 4, outside \[0, 4\)"),
    (np.array([[0, 1, -1], [0, 0, 0]]), None, r"holds -1, outside \[0, 4\)"),
    (np.array([[0, 1, -1], [0, 0, -100]]), -100, r"holds -1, outside \[0, 4\)"),
    (np.array([[0, 1, 2], [0, 0, 0]]), 1.5, "ignore_index must be an integer or None"),
])
def test_cross_entropy_refuses_bad_targets(target, ignore_index, message):
    with pytest.raises(ValueError, match=message):
        cross_entropy(np.zeros((2, 3, 4)), target, ignore_index=ignore_index)


def test_cross_entropy_refuses_a_tensor_target_and_logits_without_classes():
    with pytest.raises(ValueError, match="got a Tensor"):
        cross_entropy(np.zeros((2, 4)), mg.Tensor([1, 2]))
    with pytest.raises(ValueError, match=r"shape \(..., C\)"):
        cross_entropy(np.zeros((2, 0)), np.zeros(2, int))


# -- Embedding ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(), (1,), (5,), (2, 3), (3, 1, 2)])
def test_embedding_looks_up_rows_and_gradcheck(shape):
    rng = np.random.default_rng(2)
    emb = Embedding(4, 3, rng=rng)
    idx = rng.integers(0, 4, size=shape)
    out = emb(idx)
    assert out.shape == shape + (3,)
    np.testing.assert_array_equal(out.data, emb.weight.data[idx])
    upstream = rng.standard_normal(out.shape)
    assert mg.gradcheck(lambda w: mg.sum(w[idx] * upstream), [emb.weight])


def test_a_repeated_embedding_index_accumulates_its_gradient():
    emb = Embedding(5, 2, rng=np.random.default_rng(0))
    idx = np.array([[1, 3, 1], [1, 0, 3]])
    upstream = np.arange(12.0).reshape(2, 3, 2)
    emb(idx).backward(upstream)
    expected = np.zeros((5, 2))
    for (i, j), k in np.ndenumerate(idx):
        expected[k] += upstream[i, j]
    np.testing.assert_array_equal(emb.weight.grad, expected)
    assert np.all(emb.weight.grad[[2, 4]] == 0)


def test_embedding_init_is_standard_normal_in_its_dtype():
    emb = Embedding(200, 50, rng=np.random.default_rng(0), dtype=np.float32)
    assert emb.weight.dtype == np.float32
    assert abs(emb.weight.data.mean()) < 0.02 and abs(emb.weight.data.std() - 1) < 0.02
    assert repr(emb) == "Embedding(200, 50, dtype=float32)"
    assert [n for n, _ in emb.named_parameters()] == ["weight"]


@pytest.mark.parametrize("idx, error, message", [
    (np.array([0.0, 1.0]), ValueError, "Embedding: input must hold integer indices, got "
                                       "dtype float64"),
    (np.array([0, 4]), ValueError, r"Embedding: input holds 4, outside \[0, 4\)"),
    (np.array([-1, 2]), ValueError, r"Embedding: input holds -1, outside \[0, 4\)"),
    (mg.Tensor([0, 1]), ValueError, "got a Tensor"),
    (np.array([True, False]), ValueError, "got dtype bool"),
])
def test_embedding_refuses_bad_indices(idx, error, message):
    with pytest.raises(error, match=message):
        Embedding(4, 3)(idx)


def test_embedding_refuses_bad_sizes():
    with pytest.raises(ValueError, match="embedding_dim must be a positive integer"):
        Embedding(4, 0)


# -- Dropout and train/eval --------------------------------------------------------------

def test_dropout_scales_the_kept_elements_and_zeroes_about_p_of_them():
    drop = Dropout(0.25, rng=0)
    out = drop(mg.Tensor(np.ones((200, 100)))).data
    assert set(np.unique(out)) == {0.0, 1 / 0.75}
    assert abs((out == 0).mean() - 0.25) < 0.01
    assert abs(out.mean() - 1) < 0.02  # the expectation is unchanged


def test_dropout_draws_a_fresh_mask_each_call_reproducibly_from_its_seed():
    x = mg.Tensor(np.ones((4, 8)))
    first, second = Dropout(0.5, rng=3), Dropout(0.5, rng=3)
    a, b = first(x).data, first(x).data
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(second(x).data, a)


@pytest.mark.parametrize("shape", [(3,), (2, 4), (1, 3, 1)])
def test_dropout_backward_uses_the_forward_mask_and_gradcheck(shape):
    rng = np.random.default_rng(4)
    x = mg.Tensor(rng.standard_normal(shape), requires_grad=True)
    upstream = rng.standard_normal(shape)

    def fn(t):  # the same mask on every call, as a central difference needs
        return mg.sum(Dropout(0.4, rng=7)(t) * upstream)
    assert mg.gradcheck(fn, [x])
    out = Dropout(0.4, rng=7)(x)
    out.backward(upstream)
    np.testing.assert_allclose(x.grad, np.where(out.data != 0, upstream / 0.6, 0))


def test_dropout_keeps_float32():
    out = Dropout(0.5, rng=0)(mg.Tensor(np.ones(10, np.float32)))
    assert out.dtype == np.float32


@pytest.mark.parametrize("p", [-0.1, 1, 1.0, 2, "0.5", True, float("nan")])
def test_dropout_refuses_p_outside_0_1(p):
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\)"):
        Dropout(p)


class Net(Module):
    def __init__(self):
        self.layers = ModuleList([Linear(3, 3), Dropout(0.5)])
        self.head = Dropout(0.9)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def test_train_and_eval_reach_every_submodule_and_eval_makes_dropout_the_identity():
    net = Net()
    assert net.training and all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    assert len(net.modules()) == 5 and len(net.layers) == 2  # the flag is not a member
    x = mg.Tensor(np.ones((2, 3)))
    np.testing.assert_array_equal(net(x).data, net.layers[0](x).data)
    net.train()
    assert all(m.training for m in net.modules())
    assert (net(mg.Tensor(np.ones((50, 3)))).data == 0).mean() > 0.8
    with pytest.raises(TypeError, match="mode must be a bool"):
        net.train("no")


def test_cross_entropy_is_log_softmax_then_one_nllloss_op_reading_the_target():
    target = np.array([[1, -1], [0, 2]])
    loss = cross_entropy(mg.Tensor(np.zeros((2, 2, 3)), requires_grad=True), target,
                         ignore_index=-1)
    assert repr(loss.op) == "<op nllloss ignore_index=-1>"
    assert loss.op.inputs[0].op.label == "logsoftmax" and loss.op.target is target
    assert loss.dtype == np.float64
    assert cross_entropy(mg.Tensor(np.zeros((2, 3), np.float32)), [0, 1]).dtype == np.float32


def test_dropout_is_drawn_as_one_op_with_its_p():
    out = Dropout(0.3, rng=0)(mg.Tensor(np.ones(3), requires_grad=True))
    assert out.op.label == "dropout" and repr(out.op) == "<op dropout p=0.3>"


def test_cross_entropy_of_a_sure_prediction_is_positive_zero():
    """PyTorch gives +0.0 for a zero loss; -0.0 would turn 1 / loss into -inf."""
    logits = mg.Tensor(np.array([[0.0, -1e9]]), requires_grad=True)
    loss = mg.nn.cross_entropy(logits, np.array([0]))
    assert loss.item() == 0.0 and not np.signbit(loss.data)
