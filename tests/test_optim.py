"""Optimizers and gradient clipping.

Single steps are checked against values worked out by hand or from the update formulas
written out here; then a small model must actually learn, and a run interrupted by a
checkpoint on disk must continue bit for bit like one that never stopped.
"""
import math

import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import Linear, Module, Parameter, mse_loss
from minigrad.optim import SGD, Adam, clip_grad_norm


def param(values, grad=None, dtype=np.float64):
    p = Parameter(np.array(values, dtype=dtype))
    p.grad = None if grad is None else np.array(grad, dtype=dtype)
    return p


# -- single steps ---------------------------------------------------------------------

def test_sgd_step_is_p_minus_lr_times_grad_in_place():
    p = param([1.0, -2.0], grad=[0.5, 1.0])
    array = p.data
    SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.95, -2.1], rtol=0, atol=1e-15)
    assert p.data is array  # updated in place: views and references stay valid


def test_sgd_momentum_buffer_starts_as_the_first_gradient():
    p = param([1.0])
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.array([1.0])
    opt.step()  # buf = 1                      p = 1 - 0.1 * 1 = 0.9
    np.testing.assert_allclose(p.data, [0.9], rtol=1e-15)
    p.grad = np.array([2.0])
    opt.step()  # buf = 0.9 * 1 + 2 = 2.9      p = 0.9 - 0.1 * 2.9 = 0.61
    np.testing.assert_allclose(p.data, [0.61], rtol=1e-15)


def test_adam_two_steps_follow_the_bias_corrected_formulas():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    p0 = np.array([1.0, -2.0, 0.5])
    g1 = np.array([0.5, -1.0, 3.0])
    g2 = np.array([-0.25, -1.0, 1.0])
    p = param(p0)
    opt = Adam([p], lr=lr, betas=(b1, b2), eps=eps)

    p.grad = g1
    opt.step()
    # On the first step m_hat = g and v_hat = g^2: each coordinate moves by lr against
    # the sign of its gradient, whatever the gradient's size.
    np.testing.assert_allclose(p.data, p0 - lr * np.sign(g1), rtol=1e-7)

    p.grad = g2
    opt.step()
    m = b1 * ((1 - b1) * g1) + (1 - b1) * g2
    v = b2 * ((1 - b2) * g1 ** 2) + (1 - b2) * g2 ** 2
    m_hat, v_hat = m / (1 - b1 ** 2), v / (1 - b2 ** 2)
    p1 = p0 - lr * g1 / (np.abs(g1) + eps)
    np.testing.assert_allclose(p.data, p1 - lr * m_hat / (np.sqrt(v_hat) + eps), rtol=1e-13)


@pytest.mark.parametrize("make, expected", [
    # b's first update comes later and must still be a *first* step.
    # SGD: the buffer is the gradient itself, 3 - 0.1 * (-4) = 3.4.
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9), 3.4),
    # Adam: the bias correction uses t=1, so the move is exactly lr against the sign;
    # with a shared step count (t=2) it would be lr * 0.1/0.19 / sqrt(0.001/0.001999).
    (lambda ps: Adam(ps, lr=0.1), 3.1),
], ids=["sgd", "adam"])
def test_parameters_without_grad_are_skipped_and_keep_their_own_step_count(make, expected):
    a, b = param([1.0, 2.0], grad=[1.0, -1.0]), param([3.0])
    opt = make([a, b])
    opt.step()
    assert b.data.tolist() == [3.0]
    assert not np.array_equal(a.data, [1.0, 2.0])
    b.grad = np.array([-4.0])
    opt.step()
    np.testing.assert_allclose(b.data, [expected], rtol=1e-7)
    assert opt.state_dict()["step"].tolist() == [2, 1]


def test_zero_grad_sets_grads_to_none():
    a, b = param([1.0], grad=[1.0]), param([2.0], grad=[3.0])
    Adam([a, b]).zero_grad()
    assert a.grad is None and b.grad is None


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1),
                                  lambda ps: SGD(ps, lr=0.1, momentum=0.5),
                                  lambda ps: Adam(ps, lr=0.1)], ids=["sgd", "momentum", "adam"])
def test_float32_parameters_and_state_stay_float32(make):
    model = Linear(3, 2, rng=np.random.default_rng(0), dtype=np.float32)
    weight, weight_array = model.weight, model.weight.data
    opt = make(model.parameters())
    x = np.random.default_rng(1).standard_normal((4, 3))  # float64 input, float32 model
    for _ in range(3):
        opt.zero_grad()
        mse_loss(model(x), np.zeros((4, 2))).backward()
        opt.step()
    assert model.weight is weight and model.weight.data is weight_array
    assert all(p.dtype == np.float32 for p in model.parameters())
    state = opt.state_dict()
    assert all(v.dtype == np.float32 for k, v in state.items() if "." in k)


# -- argument checks ------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "lr must be >= 0"),
    (dict(lr=float("nan")), "lr must be >= 0"),
    (dict(lr="0.1"), "lr must be a number"),
    (dict(lr=0.1, momentum=-0.9), "momentum must be >= 0"),
])
def test_sgd_rejects_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SGD([param([1.0])], **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-1e-3), "lr must be >= 0"),
    (dict(betas=(1.0, 0.999)), r"betas\[0\] must be in \[0.0, 1.0\)"),
    (dict(betas=(0.9, -0.1)), r"betas\[1\] must be in \[0.0, 1.0\)"),
    (dict(betas=(0.9,)), "betas must be a pair"),
    (dict(eps=-1e-8), "eps must be >= 0"),
])
def test_adam_rejects_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Adam([param([1.0])], **kwargs)


class Pair(Module):
    def __init__(self):
        self.a = Parameter(np.zeros(2))
        self.b = Parameter(np.ones(3))


@pytest.mark.parametrize("params, message", [
    ([], "params is empty"),
    (iter([]), "params is empty"),
    (Pair(), r"iterable of Tensors \(did you mean model.parameters\(\)\?\), got Pair"),
    (mg.Tensor([1.0], requires_grad=True), "got a single Tensor"),
    ([np.zeros(2)], r"params\[0\] is a ndarray, not a Tensor"),
    ([mg.Tensor([1.0])], r"params\[0\] must be a leaf Tensor with requires_grad=True"),
    ([mg.Tensor([1.0], requires_grad=True) * 2], r"params\[0\] must be a leaf Tensor"),
])
def test_params_must_be_a_non_empty_iterable_of_trainable_leaves(params, message):
    for make in (lambda: SGD(params, lr=0.1), lambda: Adam(params)):
        with pytest.raises(ValueError, match=message):
            make()


def test_a_parameter_listed_twice_is_rejected_by_name():
    model = Pair()
    with pytest.raises(ValueError, match=r"params\[2\] \('a'\) appears twice"):
        SGD([model.a, model.b, model.a], lr=0.1)


def test_params_may_be_a_generator_and_are_materialised():
    model = Pair()
    opt = SGD((p for p in model.parameters()), lr=0.5)
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()
    opt.step()  # a generator consumed on the first step would leave this one empty
    assert model.a.data.tolist() == [-1.0, -1.0]
    assert model.b.data.tolist() == [0.0, 0.0, 0.0]


# -- gradient clipping ----------------------------------------------------------------

def test_clip_grad_norm_scales_every_gradient_by_the_global_norm():
    a, b, c = param([0.0, 0.0], grad=[3.0, 4.0]), param([0.0], grad=[12.0]), param([0.0])
    total = clip_grad_norm([a, b, c], max_norm=6.5)
    assert total == pytest.approx(13.0, rel=1e-15)  # sqrt(3^2 + 4^2 + 12^2), c has no grad
    scale = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(a.grad, [3.0 * scale, 4.0 * scale], rtol=1e-15)
    np.testing.assert_allclose(b.grad, [12.0 * scale], rtol=1e-15)
    assert c.grad is None
    assert math.sqrt(np.sum(a.grad ** 2) + np.sum(b.grad ** 2)) <= 6.5


def test_clip_grad_norm_leaves_small_gradients_alone_and_accepts_a_generator():
    a, b = param([0.0, 0.0], grad=[3.0, 4.0]), param([0.0], grad=[12.0])
    grad_a = a.grad
    total = clip_grad_norm((p for p in (a, b)), max_norm=20.0)
    assert total == pytest.approx(13.0, rel=1e-15)
    assert a.grad is grad_a and a.grad.tolist() == [3.0, 4.0] and b.grad.tolist() == [12.0]


def test_clip_grad_norm_keeps_float32_and_checks_max_norm():
    p = param([0.0, 0.0], grad=[30.0, 40.0], dtype=np.float32)
    assert clip_grad_norm(p, 1.0) == pytest.approx(50.0)
    assert p.grad.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(p.grad), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        clip_grad_norm([p], -1.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_norm_with_a_non_finite_norm_does_not_hide_it(bad, dtype,
                                                              warnings_are_errors):
    """PyTorch's rule (clip_grad_norm_, written out by hand): coef = max_norm / (norm +
    1e-6), clamped to at most 1, multiplies every gradient. A NaN norm gives coef NaN, so
    every gradient becomes NaN; an infinite norm gives coef 0, so finite entries become 0
    and infinite ones inf * 0 = NaN. Either way the next step shows the problem."""
    a, b = param([0.0, 0.0], grad=[3.0, bad], dtype=dtype), param([0.0], grad=[12.0], dtype=dtype)
    total = clip_grad_norm([a, b], max_norm=1.0)  # and no numpy warnings on the way
    if math.isnan(bad):
        assert math.isnan(total)
        assert np.isnan(a.grad).all() and np.isnan(b.grad).all()
    else:
        assert total == math.inf
        assert a.grad[0] == 0 and np.isnan(a.grad[1]) and b.grad.tolist() == [0.0]
    assert a.grad.dtype == dtype


def test_clip_grad_norm_of_gradients_whose_squares_overflow(warnings_are_errors):
    """1e200 squared overflows float64: the norm is inf, and (as in PyTorch) every
    gradient is multiplied by max_norm / inf = 0. Float32 gradients are summed in float64,
    so 1e20 in float32 still gives its true norm."""
    big = param([1e200, 1e200], grad=[1e200, -1e200])
    assert clip_grad_norm([big], 1.0) == math.inf
    assert big.grad.tolist() == [0.0, -0.0]
    small = param([0.0, 0.0], grad=[1e20, 1e20], dtype=np.float32)
    assert clip_grad_norm([small], 1.0) == pytest.approx(math.sqrt(2) * 1e20, rel=1e-6)
    np.testing.assert_allclose(small.grad, [2 ** -0.5] * 2, rtol=1e-6)


# -- learning -------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: Adam(ps, lr=0.05)], ids=["sgd-momentum", "adam"])
def test_a_linear_model_fits_a_linear_target(make):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3))
    y = x @ np.array([[1.5], [-2.0], [0.5]]) + 0.25
    model = Linear(3, 1, rng=rng)
    opt = make(model.parameters())
    first = mse_loss(model(x), y).item()
    for _ in range(300):
        opt.zero_grad()
        loss = mse_loss(model(x), y)
        loss.backward()
        opt.step()
    assert first > 1.0
    assert loss.item() < 1e-6
    np.testing.assert_allclose(model.weight.data.ravel(), [1.5, -2.0, 0.5], atol=1e-3)
    np.testing.assert_allclose(model.bias.data, [0.25], atol=1e-3)


# -- state dict and exact resume ------------------------------------------------------

class MLP(Module):
    def __init__(self, seed, dtype):
        rng = np.random.default_rng(seed)
        self.hidden = Linear(4, 8, rng=rng, dtype=dtype)
        self.out = Linear(8, 2, rng=rng, dtype=dtype)

    def forward(self, x):
        return self.out(mg.tanh(self.hidden(x)))


def train(model, opt, steps, start, dtype):
    """``steps`` updates on batches that depend only on the step number."""
    for step in range(start, start + steps):
        rng = np.random.default_rng(1000 + step)
        x = rng.standard_normal((5, 4)).astype(dtype)
        y = rng.standard_normal((5, 2)).astype(dtype)
        opt.zero_grad()
        mse_loss(model(x), y).backward()
        clip_grad_norm(model.parameters(), 1.0)
        opt.step()


OPTIMIZERS = [pytest.param(lambda ps: SGD(ps, lr=0.1, momentum=0.9), id="sgd-momentum"),
              pytest.param(lambda ps: Adam(ps, lr=0.01), id="adam")]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make", OPTIMIZERS)
def test_resuming_from_a_checkpoint_on_disk_matches_an_uninterrupted_run(make, dtype, tmp_path):
    straight = MLP(seed=0, dtype=dtype)
    straight_opt = make(straight.parameters())
    train(straight, straight_opt, 20, start=0, dtype=dtype)

    first = MLP(seed=0, dtype=dtype)
    first_opt = make(first.parameters())
    train(first, first_opt, 10, start=0, dtype=dtype)
    mg.save(first.state_dict(), tmp_path / "model.npz")
    mg.save(first_opt.state_dict(), tmp_path / "optim.npz")
    del first, first_opt

    resumed = MLP(seed=123, dtype=dtype)  # different initial weights, overwritten by load
    resumed_opt = make(resumed.parameters())
    resumed.load_state_dict(mg.load(tmp_path / "model.npz"))
    resumed_opt.load_state_dict(mg.load(tmp_path / "optim.npz"))
    train(resumed, resumed_opt, 10, start=10, dtype=dtype)

    for (name, p), q in zip(straight.named_parameters(), resumed.parameters()):
        assert q.dtype == dtype
        assert np.array_equal(p.data, q.data), name
    expected, got = straight_opt.state_dict(), resumed_opt.state_dict()
    assert list(expected) == list(got)
    assert all(np.array_equal(expected[k], got[k]) for k in expected)


@pytest.mark.parametrize("make", OPTIMIZERS)
def test_resuming_without_the_optimizer_state_does_not_match(make):
    """The resume test above can fail: the optimizer state really carries information."""
    straight = MLP(seed=0, dtype=np.float64)
    train(straight, make(straight.parameters()), 20, start=0, dtype=np.float64)
    first = MLP(seed=0, dtype=np.float64)
    train(first, make(first.parameters()), 10, start=0, dtype=np.float64)
    train(first, make(first.parameters()), 10, start=10, dtype=np.float64)
    assert not np.array_equal(straight.out.weight.data, first.out.weight.data)


def test_state_dict_is_flat_named_by_position_and_copied():
    a, b = param([1.0, 2.0], grad=[1.0, 1.0]), param([[3.0]], grad=[[1.0]])
    opt = Adam([a, b], lr=0.01, betas=(0.8, 0.9), eps=1e-6)
    opt.step()
    state = opt.state_dict()
    assert list(state) == ["lr", "beta1", "beta2", "eps", "step",
                           "exp_avg.0", "exp_avg.1", "exp_avg_sq.0", "exp_avg_sq.1"]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert state["exp_avg.1"].shape == (1, 1) and state["step"].tolist() == [1, 1]
    assert float(state["beta1"]) == 0.8 and float(state["eps"]) == 1e-6
    state["exp_avg.0"][:] = 99.0
    assert not np.any(opt.state_dict()["exp_avg.0"] == 99.0)
    assert list(SGD([a], lr=0.1).state_dict()) == ["lr", "momentum", "step"]
    assert list(SGD([a], lr=0.1, momentum=0.9).state_dict()) == [
        "lr", "momentum", "step", "momentum_buffer.0"]


def test_load_state_dict_restores_hyperparameters():
    a = param([1.0], grad=[1.0])
    saved = SGD([a], lr=0.5, momentum=0.9).state_dict()
    opt = SGD([a], lr=0.1, momentum=0.1)
    opt.load_state_dict(saved)
    assert (opt.lr, opt.momentum) == (0.5, 0.9)


def snapshot(opt):
    return {k: v.copy() for k, v in opt.state_dict().items()}


def assert_unchanged(opt, before):
    after = opt.state_dict()
    assert list(after) == list(before)
    assert all(np.array_equal(after[k], before[k]) for k in before)


def test_load_state_dict_with_a_wrong_shape_names_the_key_and_both_shapes():
    small = Adam([param([1.0, 2.0], grad=[1.0, 1.0])])
    small.step()
    opt = Adam([param([1.0, 2.0, 3.0], grad=[1.0, 1.0, 1.0])])
    opt.step()
    before = snapshot(opt)
    with pytest.raises(ValueError, match=r"'exp_avg.0': expected \(3,\), got \(2,\)"):
        opt.load_state_dict(small.state_dict())
    assert_unchanged(opt, before)


def test_load_state_dict_with_missing_or_extra_keys_names_them():
    a = param([1.0], grad=[1.0])
    opt = SGD([a], lr=0.1, momentum=0.9)
    opt.step()
    before = snapshot(opt)
    with pytest.raises(ValueError, match=r"missing keys \['momentum_buffer.0'\]"):
        opt.load_state_dict(SGD([a], lr=0.1).state_dict())
    with pytest.raises(ValueError, match=r"unexpected keys \['momentum_buffer.1'\]"):
        opt.load_state_dict({**before, "momentum_buffer.1": np.zeros(1)})
    assert_unchanged(opt, before)


@pytest.mark.parametrize("key, value, message", [
    ("lr", np.array(-1.0), "lr must be >= 0"),
    ("beta2", np.array(1.5), r"betas\[1\] must be in"),
    ("step", np.array([-1]), "'step' must hold non-negative integers"),
    ("exp_avg.0", np.array(["a", "b"]), "'exp_avg.0' has dtype <U1, not a real number"),
])
def test_load_state_dict_rejects_bad_values_and_changes_nothing(key, value, message):
    opt = Adam([param([1.0, 2.0], grad=[1.0, -1.0])], lr=0.01)
    opt.step()
    before = snapshot(opt)
    bad = {**snapshot(opt), "exp_avg_sq.0": np.array([7.0, 7.0]), key: value}
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(bad)
    assert_unchanged(opt, before)
    assert opt.lr == 0.01
