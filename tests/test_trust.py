"""Places where the engine used to be silently wrong: a dropped parameter, comparisons by
identity, infinite logits, edge values of relu and power, float16 overflow warnings,
the dtype of 0-d operands, a one-step graph's state."""
import numpy as np
import pytest

import minigrad as mg
from minigrad.models import LSTM

# -- a parameter never silently stops being trained or saved ------------------------------


@pytest.mark.parametrize("value", [np.ones((2, 1)), mg.Tensor(np.ones((2, 1))), 1.0,
                                   [[1.0], [1.0]]])
def test_assigning_anything_but_a_parameter_over_a_parameter_raises(value):
    lin = mg.nn.Linear(2, 1)
    weight = lin.weight
    with pytest.raises(TypeError, match="Linear.weight.*Parameter.*\\.data"):
        lin.weight = value
    assert lin.weight is weight
    assert [name for name, _ in lin.named_parameters()] == ["weight", "bias"]


def test_a_parameter_or_none_may_replace_a_parameter():
    lin = mg.nn.Linear(2, 1)
    lin.weight = mg.nn.Parameter(np.ones((2, 1)))
    lin.bias = None
    assert list(lin.state_dict()) == ["weight"]
    np.testing.assert_array_equal(lin.weight.data, np.ones((2, 1)))
    lin.scale = np.ones(3)  # an attribute that held no Parameter takes anything
    lin.scale = mg.Tensor(np.ones(3))


# -- comparisons are elementwise; hashing stays by identity --------------------------------

@pytest.mark.parametrize("compare, expected", [
    (lambda a, b: a == b, [True, False, False]), (lambda a, b: a != b, [False, True, True]),
    (lambda a, b: a < b, [False, True, False]), (lambda a, b: a <= b, [True, True, False]),
    (lambda a, b: a > b, [False, False, True]), (lambda a, b: a >= b, [True, False, True])])
def test_comparisons_are_elementwise_with_any_operand(compare, expected):
    a, b = [1.0, 2.0, 3.0], [1.0, 5.0, 0.0]
    for x, y in [(mg.Tensor(a), mg.Tensor(b)), (mg.Tensor(a), np.array(b)),
                 (np.array(a), mg.Tensor(b)), (mg.Tensor(a, requires_grad=True), b)]:
        result = compare(x, y)
        assert type(result) is np.ndarray and result.dtype == bool
        np.testing.assert_array_equal(result, expected)


def test_comparison_of_0d_tensors_is_a_0d_bool_array():
    loss = mg.Tensor(0.05)
    for result in (loss < 0.1, 0.1 > loss, loss == mg.Tensor(0.05), loss >= np.float32(1)):
        assert type(result) is np.ndarray and result.shape == () and result.dtype == bool
    assert loss < 0.1 and not loss > 0.1
    assert (mg.Tensor([1.0, 2.0]) > 1.5).shape == (2,)


def test_comparisons_build_no_graph_and_broadcast():
    x = mg.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    np.testing.assert_array_equal(x > np.array([[1.0], [4.0]]),
                                  [[False, False, True], [False, False, True]])
    with pytest.raises(ValueError):
        x == np.ones(4)


def test_tensors_hash_by_identity_and_compare_to_other_objects_by_identity():
    a, b = mg.Tensor([1.0, 2.0]), mg.Tensor([1.0, 2.0])
    assert len({a, b}) == 2 and {a: 1, b: 2}[b] == 2
    assert hash(a) != hash(b)
    assert not (a == None) and a != "a"  # noqa: E711
    assert [None, a].count(None) == 1


def test_a_training_loop_sees_the_value_of_the_loss():
    mg.nn.manual_seed(0)
    model = mg.nn.Linear(1, 1)
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    x, y = np.array([[1.0], [2.0]]), np.array([[2.0], [4.0]])
    for step in range(1000):
        opt.zero_grad()
        loss = mg.nn.mse_loss(model(x), y)
        if loss < 1e-6:
            break
        loss.backward()
        opt.step()
    assert 0 < step < 999


# -- binary cross-entropy with logits at infinite logits -----------------------------------

def bce_reference(x, t):
    """The definition, -[t log s(x) + (1-t) log(1-s(x))], in float64 for finite x."""
    s = 1 / (1 + np.exp(-x))
    return -(t * np.log(s) + (1 - t) * np.log(1 - s))


def test_bce_with_logits_equals_its_definition_and_passes_gradcheck():
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((3, 4)) * 3, rng.uniform(0, 1, (3, 4))
    t[0, :2] = (0.0, 1.0)
    loss = mg.nn.binary_cross_entropy_with_logits(mg.Tensor(x), t)
    np.testing.assert_allclose(loss.data, bce_reference(x, t).mean(), rtol=1e-12)
    for shape in [(), (1,), (3, 1), (2, 3)]:
        logits = mg.Tensor(rng.standard_normal(shape) * 4, requires_grad=True)
        target = mg.Tensor(rng.uniform(0, 1, shape), requires_grad=True)
        assert mg.gradcheck(mg.nn.binary_cross_entropy_with_logits, [logits, target])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_with_logits_at_infinite_logits_is_the_limit(dtype, warnings_are_errors):
    inf = np.inf
    x = np.array([inf, inf, inf, -inf, -inf, -inf, 800.0, -800.0], dtype)
    t = np.array([1.0, 0.3, 0.0, 0.0, 0.3, 1.0, 1.0, 0.0], dtype)
    logits = mg.Tensor(x, requires_grad=True)
    target = mg.Tensor(t, requires_grad=True)
    n = len(x)
    for k in range(n):  # each element alone: its loss is the limit
        one = mg.nn.binary_cross_entropy_with_logits(x[k:k + 1], t[k:k + 1]).item()
        assert one == [0.0, inf, inf, 0.0, inf, inf, 0.0, 0.0][k], k
    loss = mg.nn.binary_cross_entropy_with_logits(logits, target)
    loss.backward()
    assert loss.item() == inf and loss.dtype == dtype
    sigmoid = np.array([1, 1, 1, 0, 0, 0, 1, 0], dtype)
    np.testing.assert_array_equal(logits.grad, (sigmoid - t) / n)  # PyTorch's gradient
    np.testing.assert_array_equal(target.grad, -x / n)
    assert logits.grad.dtype == dtype


# -- edge values: relu at NaN, power at -0.0 and -inf (PyTorch's conventions) --------------

def same_floats(actual, expected):
    """Equal including NaN, and the sign of zero."""
    actual, expected = np.asarray(actual), np.asarray(expected, dtype=actual.dtype)
    number = ~np.isnan(expected)
    return np.array_equal(actual, expected, equal_nan=True) and np.array_equal(
        np.signbit(actual[number]), np.signbit(expected[number]))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_at_nan_and_signed_zeros_is_pytorchs(dtype, warnings_are_errors):
    x = mg.Tensor(np.array([np.nan, -0.0, 0.0, -np.inf, np.inf, -1.0, 2.0], dtype),
                  requires_grad=True)
    y = mg.relu(x)
    y.sum().backward()
    assert same_floats(y.data, [np.nan, -0.0, 0.0, 0.0, np.inf, 0.0, 2.0])
    assert same_floats(x.grad, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0])


INF = np.inf
# (a, b): a ** b, d/da, d/db, as torch.pow(a, b) gives them for tensors a and b
POWER_EDGES = [
    (-0.0, 0.5, 0.0, INF, 0.0), (-0.0, -0.5, INF, -INF, -INF), (0.0, 0.5, 0.0, INF, 0.0),
    (0.0, -0.5, INF, -INF, -INF), (-INF, 0.5, INF, 0.0, np.nan),
    (-INF, -0.5, 0.0, -0.0, np.nan),
    (INF, 0.5, INF, 0.0, INF), (INF, -0.5, 0.0, -0.0, np.nan), (-0.0, 1.5, 0.0, 0.0, 0.0),
    (-INF, 1.5, INF, INF, np.nan), (-0.0, 0.0, 1.0, 0.0, 0.0), (-INF, 0.0, 1.0, 0.0, np.nan),
    (-0.0, 2.0, 0.0, -0.0, 0.0), (-0.0, 3.0, -0.0, 0.0, 0.0), (-0.0, -1.0, -INF, -INF, INF),
    (-0.0, -2.0, INF, INF, -INF), (-INF, 2.0, INF, -INF, np.nan),
    (-INF, 3.0, -INF, INF, np.nan),
    (-1.0, 0.5, np.nan, np.nan, np.nan), (0.0, INF, 0.0, np.nan, 0.0),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("a, b, value, d_a, d_b", POWER_EDGES)
def test_power_at_edges_is_pytorchs_pow(a, b, value, d_a, d_b, dtype, warnings_are_errors):
    for shape in [(), (2,)]:  # a 0-d exponent took numpy's sqrt shortcut for 0.5
        x = mg.Tensor(np.full(shape, a, dtype), requires_grad=True)
        e = mg.Tensor(np.full(shape, b, dtype), requires_grad=True)
        y = x ** e
        y.sum().backward()
        assert same_floats(y.data, np.full(shape, value)), (shape, y.data)
        assert same_floats(x.grad, np.full(shape, d_a)), (shape, x.grad)
        assert same_floats(e.grad, np.full(shape, d_b)), (shape, e.grad)
        # a number as the exponent: the same values and d/da
        x.grad = None
        y = x ** b
        y.sum().backward()
        assert same_floats(y.data, np.full(shape, value)) and same_floats(
            x.grad, np.full(shape, d_a))


# -- float16: an overflowing cast gives inf silently, like any op's overflow ---------------

def f16(values):
    return mg.Tensor(np.array(values, np.float16), requires_grad=True)


FLOAT16_OVERFLOWS = {
    "add a number": lambda: f16([1.0, 2.0]) + 1e6,
    "radd an array": lambda: np.float64(1e6) + f16([1.0, 2.0]),
    "multiply": lambda: f16([1.0, 2.0]) * np.array(-1e6),
    "power": lambda: f16([1.0, 2.0]) ** 1e6,
    "clip": lambda: mg.clip(f16([1.0, 2.0]), -1e6, 1e6),
    "maximum": lambda: mg.maximum(f16([1.0, 2.0]), 1e6),
    "minimum": lambda: mg.minimum(f16([1.0, 2.0]), -1e6),
    "where": lambda: mg.where(np.array([True, False]), f16([1.0, 2.0]), 1e6),
    "backward": lambda: (f16([1.0, 2.0]) * 2).backward(np.array([1e6, 1.0])),
    "backward mixed dtypes":
        lambda: (f16([1.0, 2.0]) * np.array([[1e6], [1.0]])).sum().backward(),
    "linear": lambda: mg.nn.Linear(2, 1, dtype=np.float16)(np.array([[1e6, 1.0]])),
    "mse_loss target": lambda: mg.nn.mse_loss(f16([1.0, 2.0]), np.array([1e6, 1.0])),
    "load_state_dict": lambda: mg.nn.Linear(2, 1, dtype=np.float16).load_state_dict(
        {"weight": np.array([[1e6], [1.0]]), "bias": np.array([-1e6])}),
    "setitem": lambda: setitem(f16([1.0, 2.0]), 0, 1e6),
    "in-place": lambda: inplace_add(f16([1.0, 2.0]), 1e6),
    "sgd step": lambda: optimizer_steps(lambda ps: mg.optim.SGD(ps, lr=1e3, momentum=0.9)),
    "adam step": lambda: optimizer_steps(lambda ps: mg.optim.Adam(ps, lr=0.1)),
}


def optimizer_steps(make):
    p = mg.nn.Parameter(np.ones(3, np.float16))
    opt = make([p])
    for _ in range(2):
        p.grad = np.array([1e4, 300.0, 1.0], np.float16)  # g * g overflows float16
        opt.step()
    assert p._version == 2


def setitem(t, index, value):
    with mg.no_grad():
        t[index] = value
    return t


def inplace_add(t, value):
    with mg.no_grad():
        t += value
    return t


@pytest.mark.parametrize("name", FLOAT16_OVERFLOWS)
def test_float16_overflow_is_inf_without_warnings(name, warnings_are_errors):
    with np.errstate(all="warn"):  # whatever the caller's setting, minigrad stays quiet
        FLOAT16_OVERFLOWS[name]()


def test_float16_overflow_gives_inf_values():
    assert np.isinf((f16([1.0, 2.0]) + 1e6).data).all()
    lin = mg.nn.Linear(2, 1, dtype=np.float16)
    lin.load_state_dict({"weight": np.array([[1e6], [1.0]]), "bias": np.array([-1e6])})
    assert lin.weight.data[0, 0] == np.inf and lin.bias.data[0] == -np.inf
    x = f16([1.0, 2.0])
    (x * 2).backward(np.array([1e6, 1.0]))
    assert x.grad.dtype == np.float16 and x.grad[0] == np.inf


# -- result dtypes: PyTorch's rule for 0-d operands ----------------------------------------

FLOATS = [np.float16, np.float32, np.float64]


def expected_dtype(tensor_dtype, tensor_ndim, other):
    """PyTorch's result dtype (checked against torch for this table): numbers and integer
    arrays never promote; among float operands a 0-d one does not promote an n-d one."""
    if not isinstance(other, (np.ndarray, mg.Tensor)) or other.dtype.kind != "f":
        return np.dtype(tensor_dtype)
    if (tensor_ndim == 0) == (other.ndim == 0):
        return np.promote_types(tensor_dtype, other.dtype)
    return np.dtype(tensor_dtype) if other.ndim == 0 else other.dtype


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("ndim", [0, 2])
def test_result_dtypes_follow_pytorch_for_every_operand_kind(dtype, ndim):
    shape = (2,) * ndim
    others = [2.0, 2, np.float64(2), np.float32(2), np.ones(3, np.int64)[0]]
    for other_dtype in FLOATS + [np.int64]:
        for other_shape in [(), (2, 2)]:
            others.append(np.ones(other_shape, other_dtype))
            if other_dtype is not np.int64:
                others.append(mg.Tensor(np.ones(other_shape, other_dtype)))
    for other in others:
        want = expected_dtype(dtype, ndim, other)
        for fn in (lambda a, b: a * b, lambda a, b: b + a, mg.maximum,
                   lambda a, b: mg.where(np.array(True), b, a)):
            got = fn(mg.Tensor(np.ones(shape, dtype)), other).dtype
            assert got == want, (dtype, ndim, type(other).__name__,
                                 getattr(other, "dtype", None), getattr(other, "ndim", None))


def test_a_0d_tensor_and_a_wider_0d_array_give_the_wider_dtype():
    assert (mg.Tensor(np.float32(1.5)) * np.array(2.0)).dtype == np.float64
    assert (np.array(2.0) * mg.Tensor(np.float32(1.5))).dtype == np.float64
    assert (mg.Tensor(np.ones(3, np.float32)) * np.array(2.0)).dtype == np.float32
    assert (mg.Tensor(np.float32(1.5)) * 2.0).dtype == np.float32


# -- step_grad_norms of a one-step model ----------------------------------------------------

@pytest.mark.parametrize("layers", [1, 2])
def test_step_grad_norms_of_a_one_step_lstm_has_every_state(layers):
    mg.nn.manual_seed(0)
    lstm = LSTM(2, 3, num_layers=layers)
    out, _ = lstm(np.ones((2, 1, 2)))
    loss = (out * out).sum()  # reads only out: c stays inside the step
    loss.backward(retain_grads=True)
    norms = mg.timesteps.step_grad_norms(loss)
    assert sorted(norms) == sorted(f"l{k}/{s}" for k in range(layers) for s in "ch")
    structure = mg.timesteps.time_steps(loss)
    for step in structure.steps:
        c = [t for t in step.tensors if t.name == "c"][-1]
        np.testing.assert_allclose(norms[f"{step.layer}/c"], [np.linalg.norm(c.grad)])
        assert norms[f"{step.layer}/c"][0] > 0


def test_clip_and_abs_gradients_at_nan_and_infinite_upstream_are_pytorchs(warnings_are_errors):
    x = mg.Tensor([-5.0, 0.5, 5.0, np.nan], requires_grad=True)
    mg.clip(x, -1.0, 1.0).backward(np.array([np.inf, 2.0, np.nan, 3.0]))
    assert same_floats(x.grad, [0.0, 2.0, 0.0, 0.0])  # 0 outside and at NaN, whatever came
    x = mg.Tensor([np.nan, 0.0, -2.0], requires_grad=True)
    mg.abs(x).backward(np.array([1.0, 1.0, 1.0]))
    assert same_floats(x.grad, [0.0, 0.0, -1.0])


@pytest.mark.parametrize("model", [LSTM, mg.models.GRU, mg.models.RNN])
def test_float16_models_load_too_large_torch_weights_as_inf(model, warnings_are_errors):
    net = model(2, 3, dtype=np.float16)
    state = {k: np.full(v.shape, 1e6) for k, v in net.torch_state_dict().items()}
    x = mg.Tensor(np.ones((1, 2, 2), np.float16))
    out = net(x)[0]
    net.load_torch_state_dict(state)
    assert all(np.isinf(p.data).all() for p in net.parameters())
    with pytest.raises(RuntimeError, match="changed in place"):
        out.sum().backward()  # the graph saw the old weights


def test_power_gradients_at_an_infinite_or_nan_upstream_are_pytorchs():
    a = mg.Tensor([2.0, 0.0, 3.0], requires_grad=True)
    b = mg.Tensor([0.0, 2.0, 1.0], requires_grad=True)
    (a ** b).backward(np.array([np.nan, np.inf, 1.0]))
    assert same_floats(a.grad, [0.0, np.nan, 1.0])  # b == 0: 0 whatever arrives
    assert same_floats(b.grad, [np.nan, np.nan, 3.0 * np.log(3.0)])  # grad * 0
