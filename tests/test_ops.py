"""Every primitive op's backward, checked against central differences.

One table: each row is an op applied to inputs of given shapes. ``mg.gradcheck`` contracts
the output with a random upstream gradient, so a backward that ignores its incoming
gradient fails. Shapes cover 0-d tensors, size-1 dimensions and broadcasting; sigmoid,
tanh and softplus (and softmax, log_softmax, cross_entropy) also get saturated inputs
(|x| = 30).
"""
import numpy as np
import pytest

import minigrad as mg


def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def away_from_zero(rng, shape):
    """Magnitudes in [0.5, 2] with random signs: keeps relu's kink and 1/x's pole away."""
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def saturated(rng, shape):
    """Mostly ±30 (deep in the flat tails), the rest ordinary values."""
    x = rng.standard_normal(shape)
    mask = rng.random(shape) < 0.6
    return np.where(mask, 30.0 * rng.choice([-1.0, 1.0], shape), x)


def case(name, fn, *shapes, make=normal):
    return pytest.param(fn, shapes, make, id=f"{name}-" + "-".join(map(str, shapes)))


COND_2x3 = np.array([[True, False, True], [False, False, True]])

BROADCAST_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 3)),
                   ((1,), (5,)), ((4, 1), (1, 1))]

OP_TABLE = [
    *[case("add", mg.add, a, b) for a, b in BROADCAST_PAIRS],
    *[case("subtract", mg.subtract, a, b) for a, b in BROADCAST_PAIRS],
    *[case("multiply", mg.multiply, a, b) for a, b in BROADCAST_PAIRS],
    *[case("divide", mg.divide, a, b, make=away_from_zero) for a, b in BROADCAST_PAIRS],
    *[case("power", mg.power, a, b, make=positive) for a, b in BROADCAST_PAIRS],
    case("power-scalar-exponent", lambda a: a ** 3, (2, 3)),
    case("rpow", lambda a: 2.0 ** a, (2, 3)),
    case("matmul", mg.matmul, (3, 4), (4, 5)),
    case("matmul", mg.matmul, (4,), (4, 5)),
    case("matmul", mg.matmul, (3, 4), (4,)),
    case("matmul", mg.matmul, (4,), (4,)),
    case("matmul", mg.matmul, (1, 4), (4, 1)),
    case("matmul", mg.matmul, (2, 3, 4), (4, 5)),
    case("matmul", mg.matmul, (2, 3, 4), (2, 4, 5)),
    case("matmul", mg.matmul, (5, 1, 3, 4), (2, 4, 2)),
    case("matmul", mg.matmul, (4,), (2, 4, 3)),
    case("matmul-size0", mg.matmul, (2, 3, 0), (0, 4)),
    case("matmul-size0", mg.matmul, (2, 3, 4), (4, 0)),
    case("matmul-size0", mg.matmul, (0, 3), (3, 2)),
    case("matmul-size0", mg.matmul, (0,), (0,)),
    case("negative", mg.negative, (3, 4)),
    case("negative", mg.negative, ()),
    case("exp", mg.exp, (3, 4)),
    case("exp", mg.exp, ()),
    case("log", mg.log, (3, 4), make=positive),
    case("log", mg.log, (1,), make=positive),
    case("sigmoid", mg.sigmoid, (3, 4)),
    case("sigmoid", mg.sigmoid, (4, 5), make=saturated),
    case("sigmoid", mg.sigmoid, ()),
    case("tanh", mg.tanh, (3, 4)),
    case("tanh", mg.tanh, (4, 5), make=saturated),
    case("tanh", mg.tanh, (1, 1)),
    case("tanh", mg.tanh, ()),
    case("relu", mg.relu, (3, 4), make=away_from_zero),
    case("relu", mg.relu, (), make=away_from_zero),
    case("softplus", mg.softplus, (3, 4)),
    case("softplus", mg.softplus, (4, 5), make=saturated),
    case("bce-with-logits", mg.nn.binary_cross_entropy_with_logits, (3, 4), (3, 4)),
    case("bce-with-logits", mg.nn.binary_cross_entropy_with_logits, (4, 5), (4, 5),
         make=saturated),
    case("sum", mg.sum, (3, 4)),
    case("sum", mg.sum, ()),
    case("sum-axis0", lambda a: mg.sum(a, axis=0), (3, 4)),
    case("sum-axis-1-keepdims", lambda a: mg.sum(a, axis=-1, keepdims=True), (2, 3, 4)),
    case("sum-axes02", lambda a: a.sum(axis=(0, 2)), (2, 3, 4)),
    case("sum-size1", lambda a: a.sum(axis=1), (3, 1)),
    case("mean", mg.mean, (3, 4)),
    case("mean", mg.mean, ()),
    case("mean-axis1", lambda a: a.mean(axis=1), (2, 3, 4)),
    case("mean-axes-keepdims", lambda a: a.mean(axis=(0, -1), keepdims=True), (2, 3, 4)),
    case("reshape", lambda a: a.reshape(4, 3), (3, 4)),
    case("reshape-tuple", lambda a: mg.reshape(a, (2, -1)), (2, 3, 2)),
    case("reshape-to-0d", lambda a: a.reshape(()), (1, 1)),
    case("transpose", lambda a: a.T, (3, 4)),
    case("transpose-axes", lambda a: a.transpose(1, 2, 0), (2, 3, 4)),
    case("transpose-negative-axes", lambda a: mg.transpose(a, (-1, 0, 1)), (2, 3, 4)),
    case("slice-columns", lambda a: a[:, 1:3], (3, 4)),
    case("slice-row", lambda a: a[1], (3, 4)),
    case("slice-step", lambda a: a[::2, ::-1], (5, 4)),
    case("slice-middle-int", lambda a: a[:, 2, :], (2, 3, 4)),
    case("slice-ellipsis-newaxis", lambda a: a[None, ..., 0], (2, 3, 4)),
    case("slice-size1", lambda a: a[:, 0:1], (3, 1)),
    case("index-one-element", lambda a: a[1] * a[2] + a[0], (4,)),
    case("index-one-element-2d", lambda a: a[1, 2] + a[-1, 0] * a[1, 2], (3, 4)),
    case("index-repeated", lambda a: a[np.array([0, 0, 2])], (3, 4)),
    case("concat-last", lambda a, b: mg.concat([a, b]), (3, 2), (3, 5)),
    case("concat-axis0", lambda a, b, c: mg.concat([a, b, c], axis=0), (1, 4), (3, 4), (2, 4)),
    case("concat-size1", lambda a, b: mg.concat([a, b], axis=1), (2, 1, 3), (2, 1, 3)),
    case("concat-flat", lambda a, b, c: mg.concat([a, b, c], axis=None), (2, 3), (), (4,)),
    case("concat-size0", lambda a, b: mg.concat([a, b], axis=0), (0, 3), (2, 3)),
    case("stack-axis0", lambda a, b: mg.stack([a, b]), (3, 4), (3, 4)),
    case("stack-axis1", lambda a, b, c: mg.stack([a, b, c], axis=1), (2, 3), (2, 3), (2, 3)),
    case("stack-last", lambda a, b: mg.stack([a, b], axis=-1), (), ()),
    # 0-d tensors used many times: numpy's 0-d arithmetic returns scalars, not arrays.
    case("reuse-0d", lambda a: a * a + a * a + a + a + a, ()),
    case("reuse-0d-with-matrix", lambda a, b: (a * b).sum() + a * a + a, (), (2, 3)),
    # Slice gradients are added into a shared buffer: mix them with dense uses, both orders.
    case("slices-then-dense", lambda a: a[:, :2] * a[:, 2:] + a[:, 1:3] + a[:, :2] * a[:, :2], (3, 4)),
    case("dense-then-slices", lambda a: (a * a)[:, 1:] + a[:, :3] + a[np.array([1, 1, 0]), 1:], (3, 4)),
    case("composite-lstm-gate", lambda x, w, b: mg.sigmoid(mg.concat([x, x * 2]) @ w + b)[:, :2],
         (3, 2), (4, 4), (4,)),
    # Ops with kinks, checked away from them (their conventions there: test_new_ops.py).
    case("abs", mg.abs, (3, 4), make=away_from_zero),
    case("abs", mg.abs, (), make=away_from_zero),
    case("abs", lambda a: abs(a) * a, (1, 3), make=away_from_zero),
    *[case("maximum", mg.maximum, a, b) for a, b in BROADCAST_PAIRS],
    *[case("minimum", mg.minimum, a, b) for a, b in BROADCAST_PAIRS],
    case("maximum-number", lambda a: mg.maximum(a, 0.1) * a, (3, 4)),
    case("max", mg.max, (3, 4)),
    case("max", mg.max, ()),
    case("max-axis0", lambda a: mg.max(a, axis=0), (3, 4)),
    case("max-axis-1-keepdims", lambda a: a.max(axis=-1, keepdims=True), (2, 3, 4)),
    case("max-axes02", lambda a: mg.max(a, axis=(0, 2)), (2, 3, 4)),
    case("max-size1", lambda a: mg.max(a, axis=1), (3, 1)),
    case("max-0d-axis0", lambda a: mg.max(a, axis=0), ()),
    case("min", mg.min, (3, 4)),
    case("min-axis1", lambda a: a.min(axis=1), (2, 3, 4)),
    case("min-axes-keepdims", lambda a: mg.min(a, axis=(0, -1), keepdims=True), (2, 3, 4)),
    case("min-size1", lambda a: mg.min(a, axis=0), (1, 4)),
    case("clip", lambda a: mg.clip(a, -0.5, 0.5), (3, 4)),
    case("clip-low", lambda a: mg.clip(a, -0.3, None), (3, 4)),
    case("clip-high", lambda a: a.clip(None, 0.2), (2, 3)),
    case("clip", lambda a: mg.clip(a, -0.5, 0.5), ()),
    case("clip-array-bounds", lambda a: mg.clip(a, np.array([-1.0, 0.0, 0.5]), 1.0), (2, 3)),
    case("clip-bounds-broadcast-x", lambda a: mg.clip(a, np.zeros((2, 3)), None), (3,)),
    case("where", lambda a, b: mg.where(COND_2x3, a, b), (2, 3), (2, 3)),
    case("where-broadcast", lambda a, b: mg.where(COND_2x3, a, b), (2, 1), (3,)),
    case("where-0d", lambda a, b: mg.where(COND_2x3, a, b), (), ()),
    case("where-condition-broadcast", lambda a, b: mg.where(COND_2x3[:1], a, b), (4, 1, 3), (1,)),
    case("where-number", lambda a: mg.where(COND_2x3, a, 0.0) * a, (2, 3)),
    case("where-mask-tensor", lambda a, b: mg.where(mg.Tensor(COND_2x3), a, b), (2, 3), ()),
    case("softmax", mg.softmax, (3, 4)),
    case("softmax-axis0", lambda a: mg.softmax(a, axis=0), (3, 4)),
    case("softmax-middle-axis", lambda a: a.softmax(axis=1), (2, 3, 4)),
    case("softmax", mg.softmax, ()),
    case("softmax", mg.softmax, (1,)),
    case("softmax-size1-axis", lambda a: mg.softmax(a, axis=-1), (4, 1)),
    case("softmax", mg.softmax, (4, 5), make=saturated),
    case("log_softmax", mg.log_softmax, (3, 4)),
    case("log_softmax-axis0", lambda a: mg.log_softmax(a, axis=0), (3, 4)),
    case("log_softmax-middle-axis", lambda a: a.log_softmax(axis=1), (2, 3, 4)),
    case("log_softmax", mg.log_softmax, ()),
    case("log_softmax-size1-axis", lambda a: mg.log_softmax(a, axis=1), (3, 1)),
    case("log_softmax", mg.log_softmax, (4, 5), make=saturated),
    case("cross_entropy", lambda z: mg.nn.cross_entropy(z, np.array([2, 0, 1, 2])), (4, 3)),
    case("cross_entropy-one-class", lambda z: mg.nn.cross_entropy(z, np.array([0, 0])), (2, 1)),
    case("cross_entropy", lambda z: mg.nn.cross_entropy(z, np.array([3, 0])), (2, 5),
         make=saturated),
    # Size-0 dimensions: nothing to check numerically, but forward and backward must run.
    case("abs", mg.abs, (0, 3)),
    case("maximum", mg.maximum, (0, 3), (3,)),
    case("max-over-nonempty-axis", lambda a: mg.max(a, axis=1), (0, 2)),
    case("clip", lambda a: mg.clip(a, 0.0, None), (2, 0)),
    case("where", lambda a, b: mg.where(np.zeros((0, 1), bool), a, b), (0, 3), ()),
    case("softmax", mg.softmax, (2, 0)),
    case("log_softmax-axis0", lambda a: mg.log_softmax(a, axis=0), (0, 3)),
]


@pytest.mark.parametrize("fn, shapes, make", OP_TABLE)
def test_backward_matches_central_differences(fn, shapes, make):
    rng = np.random.default_rng(len(OP_TABLE))
    inputs = [mg.Tensor(make(rng, s), requires_grad=True) for s in shapes]
    assert mg.gradcheck(fn, inputs)


@pytest.mark.parametrize("fn, shapes, make", OP_TABLE)
def test_float32_stays_float32_through_forward_and_backward(fn, shapes, make):
    rng = np.random.default_rng(1)
    inputs = [mg.Tensor(make(rng, s).astype(np.float32), requires_grad=True) for s in shapes]
    out = fn(*inputs)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, np.float32))
    for t in inputs:
        assert t.grad.dtype == np.float32 and t.grad.shape == t.shape


@pytest.mark.parametrize("fn, shapes, make", OP_TABLE)
def test_no_grad_records_nothing_and_data_stays_an_ndarray(fn, shapes, make):
    """Under no_grad no op is recorded; 0-d results are arrays too, not numpy scalars."""
    rng = np.random.default_rng(2)
    arrays = [make(rng, s) for s in shapes]
    with mg.no_grad():
        out = fn(*[mg.Tensor(a) for a in arrays])
    assert out.op is None and not out.requires_grad
    assert isinstance(out.data, np.ndarray)


EXTREMES = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e308, -1e308, 1e-320, 1.0, -2.0])


@pytest.mark.parametrize("fn, shapes, make", OP_TABLE)
def test_no_numpy_warning_escapes_at_zeros_infinities_and_nan(fn, shapes, make,
                                                            warnings_are_errors):
    """As in PyTorch, overflow, log(0), 0/0 give inf and NaN silently, forward and backward."""
    rng = np.random.default_rng(4)
    inputs = [mg.Tensor(rng.choice(EXTREMES, s), requires_grad=True) for s in shapes]
    out = fn(*inputs)
    out.backward(np.ones(out.shape))


FORWARD_VALUES = [
    (mg.add, np.add), (mg.subtract, np.subtract), (mg.multiply, np.multiply),
    (mg.divide, np.divide), (mg.matmul, np.matmul),
]


@pytest.mark.parametrize("fn, reference", FORWARD_VALUES, ids=lambda f: getattr(f, "__name__", ""))
def test_binary_forward_equals_numpy(fn, reference):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 4, 4)), rng.standard_normal((4, 4)) + 3
    np.testing.assert_array_equal(fn(mg.Tensor(a), mg.Tensor(b)).data, reference(a, b))


def test_unary_forward_values():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    t = mg.Tensor(x)
    np.testing.assert_allclose(mg.sigmoid(t).data, 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(mg.tanh(t).data, np.tanh(x))
    np.testing.assert_allclose(mg.relu(t).data, np.maximum(x, 0))
    np.testing.assert_allclose(mg.softplus(t).data, np.log1p(np.exp(x)), rtol=1e-15)
    np.testing.assert_allclose(mg.exp(t).data, np.exp(x))
    np.testing.assert_allclose((-t).data, -x)


def test_sigmoid_and_softplus_are_finite_without_warnings_at_extremes():
    x = mg.Tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0]), requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = mg.sigmoid(x)
        (s.sum() + mg.softplus(x).sum()).backward()
    np.testing.assert_array_equal(s.data[[2, 4]], [0.5, 1.0])
    assert 0.0 <= s.data[0] < 1e-300  # clipped where exp(-x) would overflow
    assert np.all(np.isfinite(x.grad))
    np.testing.assert_allclose(mg.softplus(x).data[[0, 4]], [0.0, 1000.0])


def test_sigmoid_of_every_float_dtype():
    for dtype in (np.float16, np.float32, np.float64, np.longdouble):
        x = np.array([-1000.0, 0.0, 2.0], dtype=dtype)
        with np.errstate(over="raise"):
            y = mg.sigmoid(mg.Tensor(x)).data
        assert y.dtype == dtype
        np.testing.assert_allclose(y.astype(np.float64), [0.0, 0.5, 1 / (1 + np.exp(-2.0))],
                                   atol=1e-3 if dtype == np.float16 else 1e-7)


def test_power_at_base_zero_has_pytorchs_gradients_and_no_nan():
    x = mg.Tensor([0.0, 1.0], requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])  # b == 0: 0 everywhere, also at 0
    w = mg.Tensor(2.0, requires_grad=True)
    (mg.Tensor([0.0]) ** w).sum().backward()
    np.testing.assert_array_equal(w.grad, 0.0)  # a == 0, b >= 0: the limit of a**b log a
    base, exponent = (mg.Tensor([0.0, 0.0, 2.0], requires_grad=True),
                      mg.Tensor([0.0, 3.0, 0.0], requires_grad=True))
    assert mg.gradcheck(mg.power, [base, exponent])
    v = mg.Tensor([-2.0], requires_grad=True)
    (v ** mg.Tensor([0.5], requires_grad=True)).sum().backward()
    assert np.isnan(v.grad).all()  # a negative base to a fractional power: nan, as in PyTorch


def test_a_0d_tensor_keeps_the_dtype_of_an_nd_one_in_every_binary_op():
    """A 0-d tensor does not promote an n-d one of the same kind (PyTorch's rule)."""
    x = mg.Tensor(np.ones((2, 2), np.float32))
    for fn in (mg.add, mg.subtract, mg.multiply, mg.divide, mg.power):
        assert fn(x, mg.Tensor(np.float64(2.0))).dtype == np.float32
        assert fn(mg.Tensor(np.float64(2.0)), x).dtype == np.float32
        assert fn(x, mg.Tensor(np.ones(2))).dtype == np.float64


def test_gradcheck_catches_a_backward_that_ignores_its_upstream_gradient():
    class BadSquare(mg.ops.Op):
        __slots__ = ()

        def forward(self, a):
            return a * a

        def backward(self, grad):
            return (2 * self.inputs[0].data,)  # forgot to multiply by grad

    x = mg.Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True, name="x")
    with pytest.raises(mg.GradcheckError, match=r"input 0 \('x'.*index \(0, 0\).*analytic.*numeric"):
        mg.gradcheck(lambda a: BadSquare()(a), [x])


def test_gradcheck_checks_float32_inputs_on_float64_copies():
    x = mg.Tensor(np.array([0.3, -0.2], np.float32), requires_grad=True)
    assert mg.gradcheck(lambda a: mg.tanh(a) * a, [x])
    assert x.dtype == np.float32 and x.grad is None


def test_gradcheck_needs_an_input_to_check():
    with pytest.raises(ValueError, match="no input has requires_grad"):
        mg.gradcheck(lambda a: a * 2, [mg.Tensor([1.0])])


def test_numeric_gradient_of_a_known_function_and_array_restored():
    from minigrad.gradcheck import numeric_gradient
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = x.copy()
    grad = numeric_gradient(lambda: float(np.sum(x ** 3)), x)
    np.testing.assert_allclose(grad, 3 * before ** 2, rtol=1e-8)
    np.testing.assert_array_equal(x, before)
