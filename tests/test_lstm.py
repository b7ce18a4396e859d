"""models.LSTMCell / models.LSTM against an independent closed-form LSTM written here.

The reference below is plain numpy: the forward equations, and backpropagation through
time derived by hand, step by step, including the cell-state gradient carried from
step t+1 to step t (dc_prev = dc * f). models.LSTM has no backward of its own; its
gradients come from the engine's generic sweep over the unrolled graph, so agreement to
1e-10 checks the engine and the model together against the textbook derivation.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad.gradcheck import numeric_gradient
from minigrad.tensor import topological_order
from minigrad.models import LSTM, LSTMCell

ATOL = 1e-10


# -- closed-form reference -----------------------------------------------------------------

def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def ref_forward(x, h0, c0, W, b):
    """One layer, gates i, f, g, o: returns out (N, T, H), h_T, c_T and a cache."""
    N, T, D = x.shape
    H = h0.shape[1]
    h, c = h0, c0
    out = np.empty((N, T, H))
    cache = []
    for t in range(T):
        xh = np.concatenate([x[:, t], h], axis=1)
        z = xh @ W + b
        i, f = _sigmoid(z[:, :H]), _sigmoid(z[:, H:2 * H])
        g, o = np.tanh(z[:, 2 * H:3 * H]), _sigmoid(z[:, 3 * H:])
        c_prev = c
        c = f * c_prev + i * g
        tanh_c = np.tanh(c)
        h = o * tanh_c
        out[:, t] = h
        cache.append((xh, c_prev, i, f, g, o, tanh_c))
    return out, h, c, cache


def ref_backward(dout, dh_T, dc_T, W, cache, steps=None):
    """Hand-derived BPTT for one layer.

    ``dout`` is the upstream gradient on every output h_t, ``dh_T`` / ``dc_T`` on the
    final state. Returns dx, dh0, dc0, dW, db. If ``steps`` is a dict, the full
    gradients dLoss/dh_t and dLoss/dc_t go into ``steps["h"][t]`` and ``steps["c"][t]``.
    """
    N, T, H = dout.shape
    D = W.shape[0] - H
    dx = np.zeros((N, T, D))
    dW = np.zeros_like(W)
    db = np.zeros(W.shape[1])
    dh_next, dc_next = dh_T, dc_T
    for t in reversed(range(T)):
        xh, c_prev, i, f, g, o, tanh_c = cache[t]
        dh = dout[:, t] + dh_next                  # from the output and from step t+1
        dc = dc_next + dh * o * (1 - tanh_c ** 2)  # from step t+1 and through h_t
        if steps is not None:
            steps.setdefault("h", {})[t], steps.setdefault("c", {})[t] = dh, dc
        do = dh * tanh_c
        di, dg, df = dc * g, dc * i, dc * c_prev
        dc_next = dc * f                           # carried to step t-1
        dz = np.concatenate([di * i * (1 - i), df * f * (1 - f),
                             dg * (1 - g ** 2), do * o * (1 - o)], axis=1)
        dW += xh.T @ dz
        db += dz.sum(axis=0)
        dxh = dz @ W.T
        dx[:, t] = dxh[:, :D]
        dh_next = dxh[:, D:]
    return dx, dh_next, dc_next, dW, db


def ref_stacked(x, h0, c0, Ws, bs, dout, dh_n, dc_n):
    """Layers of the reference stacked: forward bottom-up, backward top-down."""
    layer_in, caches, h_n, c_n = x, [], [], []
    for k, (W, b) in enumerate(zip(Ws, bs)):
        layer_in, h, c, cache = ref_forward(layer_in, h0[k], c0[k], W, b)
        caches.append(cache)
        h_n.append(h)
        c_n.append(c)
    out = layer_in
    grads = {}
    dh0, dc0 = np.zeros_like(h0), np.zeros_like(c0)
    d_above = dout
    for k in reversed(range(len(Ws))):
        d_above, dh0[k], dc0[k], grads[f"l{k}.weight"], grads[f"l{k}.bias"] = \
            ref_backward(d_above, dh_n[k], dc_n[k], Ws[k], caches[k])
    grads["x"], grads["h0"], grads["c0"] = d_above, dh0, dc0
    return out, np.stack(h_n), np.stack(c_n), grads


def _run_both(N, T, D, H, L, seed):
    rng = np.random.default_rng(seed)
    model = LSTM(D, H, L, rng=rng)
    x = mg.Tensor(rng.standard_normal((N, T, D)), requires_grad=True)
    h0 = mg.Tensor(rng.standard_normal((L, N, H)), requires_grad=True)
    c0 = mg.Tensor(rng.standard_normal((L, N, H)), requires_grad=True)
    u_out = rng.standard_normal((N, T, H))
    u_h = rng.standard_normal((L, N, H))
    u_c = rng.standard_normal((L, N, H))

    out, (h_n, c_n) = model(x, (h0, c0))
    loss = (out * u_out).sum() + (h_n * u_h).sum() + (c_n * u_c).sum()
    loss.backward()

    cells = model.cells()
    ref = ref_stacked(x.data, h0.data, c0.data, [c.weight.data for c in cells],
                      [c.bias.data for c in cells], u_out, u_h, u_c)
    ours = (out.data, h_n.data, c_n.data,
            {"x": x.grad, "h0": h0.grad, "c0": c0.grad,
             **{name: p.grad for name, p in model.named_parameters()}})
    return ours, ref


@pytest.mark.parametrize("N, T, D, H, L", [(3, 5, 4, 6, 1), (2, 4, 3, 5, 2), (1, 3, 2, 2, 3)])
def test_matches_closed_form_forward_and_bptt(N, T, D, H, L):
    ours, ref = _run_both(N, T, D, H, L, seed=N * 100 + T)
    for name, a, b in zip(("out", "h_n", "c_n"), ours[:3], ref[:3]):
        np.testing.assert_allclose(a, b, rtol=0, atol=ATOL, err_msg=name)
    assert set(ours[3]) == set(ref[3]) == {"x", "h0", "c0"} | {
        f"l{k}.{p}" for k in range(L) for p in ("weight", "bias")}
    for name in ref[3]:
        assert ours[3][name] is not None, name
        np.testing.assert_allclose(ours[3][name], ref[3][name], rtol=0, atol=ATOL,
                                   err_msg=name)


def test_reference_bptt_matches_central_differences_of_its_own_forward():
    """The hand-derived reference is itself checked, independently of minigrad."""
    rng = np.random.default_rng(7)
    N, T, D, H = 2, 4, 3, 2
    x = rng.standard_normal((N, T, D))
    h0, c0 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    W, b = rng.standard_normal((D + H, 4 * H)), rng.standard_normal(4 * H)
    u_out, u_h, u_c = (rng.standard_normal(s) for s in ((N, T, H), (N, H), (N, H)))

    def loss(x, h0, c0, W, b):
        out, h, c, _ = ref_forward(x, h0, c0, W, b)
        return np.sum(out * u_out) + np.sum(h * u_h) + np.sum(c * u_c)

    args = [x, h0, c0, W, b]
    analytic = ref_backward(u_out, u_h, u_c, W, ref_forward(*args)[3])
    for k, (arg, grad) in enumerate(zip(args, analytic)):
        numeric = numeric_gradient(lambda: loss(*args), arg)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8, err_msg=f"arg {k}")


# -- gradcheck -----------------------------------------------------------------------------

def test_gradcheck_cell():
    rng = np.random.default_rng(1)
    cell = LSTMCell(3, 4, rng=rng)
    x = mg.Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    h = mg.Tensor(rng.standard_normal((2, 4)), requires_grad=True)
    c = mg.Tensor(rng.standard_normal((2, 4)), requires_grad=True)

    def fn(x, h, c, weight, bias):
        h1, c1 = cell(x, (h, c))
        return mg.concat([h1, c1], axis=1)

    assert mg.gradcheck(fn, [x, h, c, cell.weight, cell.bias])


def test_gradcheck_two_layer_lstm():
    rng = np.random.default_rng(2)
    model = LSTM(3, 2, num_layers=2, rng=rng)
    x = mg.Tensor(rng.standard_normal((2, 3, 3)), requires_grad=True)
    h0 = mg.Tensor(rng.standard_normal((2, 2, 2)), requires_grad=True)
    c0 = mg.Tensor(rng.standard_normal((2, 2, 2)), requires_grad=True)

    def fn(x, h0, c0, *params):
        out, (h_n, c_n) = model(x, (h0, c0))
        return mg.concat([out.reshape(-1), h_n.reshape(-1), c_n.reshape(-1)], axis=0)

    assert mg.gradcheck(fn, [x, h0, c0, *model.parameters()])


# -- gate order and PyTorch layout -----------------------------------------------------------

def _torch_dict(D, H, bias_ih, bias_hh=None, w_ih=None):
    return {"weight_ih_l0": np.zeros((4 * H, D)) if w_ih is None else w_ih,
            "weight_hh_l0": np.zeros((4 * H, H)),
            "bias_ih_l0": np.asarray(bias_ih, dtype=np.float64),
            "bias_hh_l0": np.zeros(4 * H) if bias_hh is None else np.asarray(bias_hh)}


def _gates(H, i, f, g, o):
    """A bias vector laid out i, f, g, o (PyTorch's order) with one value per block."""
    return np.repeat([i, f, g, o], H).astype(np.float64)


def test_gate_order_memory_keeps_cell_state():
    """Forget open, input shut, output open: c stays c0 and h is tanh(c0), every step."""
    D, H, N, T = 3, 4, 2, 5
    rng = np.random.default_rng(4)
    model = LSTM(D, H, rng=rng)
    # Our own parameters, set by hand: weight zero, bias blocks i, f, g, o.
    model.l0.weight.data[...] = 0.0
    model.l0.bias.data[...] = _gates(H, i=-50, f=+50, g=0.7, o=+50)
    c0 = rng.standard_normal((1, N, H))
    out, (h_n, c_n) = model(rng.standard_normal((N, T, D)), (np.zeros((1, N, H)), c0))
    np.testing.assert_allclose(c_n.data, c0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(out.data, np.broadcast_to(np.tanh(c0[0])[:, None], (N, T, H)),
                               rtol=0, atol=1e-15)


def test_gate_order_write_forgets_and_stores_candidate():
    """Forget shut, input open, output open, candidate driven by x through the g block of
    weight_ih: c1 = tanh(0.5 x) whatever c0 was, h1 = tanh(c1). Loaded in PyTorch's
    layout with the bias split over bias_ih and bias_hh, so the folding is checked too."""
    D = H = 3
    N = 2
    rng = np.random.default_rng(5)
    w_ih = np.zeros((4 * H, D))
    w_ih[2 * H:3 * H] = 0.5 * np.eye(H)            # rows of gate g
    bias = _gates(H, i=+50, f=-50, g=0.0, o=+50)
    model = LSTM(D, H, rng=rng)
    model.load_torch_state_dict(_torch_dict(D, H, bias - 10.0, np.full(4 * H, 10.0), w_ih))
    x = rng.standard_normal((N, 1, D))
    c0 = 5.0 + rng.standard_normal((1, N, H))
    out, (h_n, c_n) = model(x, (rng.standard_normal((1, N, H)), c0))
    np.testing.assert_allclose(c_n.data[0], np.tanh(0.5 * x[:, 0]), rtol=0, atol=1e-14)
    np.testing.assert_allclose(h_n.data[0], np.tanh(np.tanh(0.5 * x[:, 0])), rtol=0,
                               atol=1e-14)


def test_gate_order_output_gate_shut():
    """Output gate shut (o = -50): h is 0 although the memory c = c0 is intact."""
    D, H, N = 2, 3, 2
    rng = np.random.default_rng(6)
    model = LSTM(D, H, rng=rng)
    model.load_torch_state_dict(_torch_dict(D, H, _gates(H, i=-50, f=+50, g=0.3, o=-50)))
    c0 = 1.0 + rng.standard_normal((1, N, H))
    out, (h_n, c_n) = model(rng.standard_normal((N, 3, D)), (np.zeros((1, N, H)), c0))
    np.testing.assert_allclose(c_n.data, c0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(out.data, 0.0, rtol=0, atol=1e-15)


def test_torch_state_dict_layout_and_lossless_round_trip():
    D, H, L = 3, 5, 2
    model = LSTM(D, H, L, rng=np.random.default_rng(8))
    exported = model.torch_state_dict()
    assert {k: v.shape for k, v in exported.items()} == {
        "weight_ih_l0": (20, 3), "weight_hh_l0": (20, 5), "bias_ih_l0": (20,),
        "bias_hh_l0": (20,), "weight_ih_l1": (20, 5), "weight_hh_l1": (20, 5),
        "bias_ih_l1": (20,), "bias_hh_l1": (20,)}
    np.testing.assert_array_equal(exported["weight_ih_l0"], model.l0.weight.data[:D].T)
    np.testing.assert_array_equal(exported["weight_hh_l1"], model.l1.weight.data[H:].T)
    assert np.all(exported["bias_hh_l0"] == 0) and np.all(exported["bias_hh_l1"] == 0)
    # The export is a copy: changing it leaves the model alone.
    exported["bias_ih_l0"][:] = 123.0
    assert not np.any(model.l0.bias.data == 123.0)

    other = LSTM(D, H, L, rng=np.random.default_rng(9))
    other.load_torch_state_dict(model.torch_state_dict())
    for (name, a), (_, b) in zip(model.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_torch_layout_follows_pytorch_equations():
    """A dict in PyTorch's layout with both biases nonzero gives what PyTorch's documented
    equations give, written here directly in that layout (x W_ih^T + b_ih + h W_hh^T +
    b_hh, split i, f, g, o)."""
    D, H, N, T = 2, 3, 2, 4
    rng = np.random.default_rng(10)
    d = {"weight_ih_l0": rng.standard_normal((4 * H, D)),
         "weight_hh_l0": rng.standard_normal((4 * H, H)),
         "bias_ih_l0": rng.standard_normal(4 * H), "bias_hh_l0": rng.standard_normal(4 * H)}
    model = LSTM(D, H)
    model.load_torch_state_dict(d)
    x = rng.standard_normal((N, T, D))
    h, c = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    out, (h_n, c_n) = model(x, (h[None], c[None]))
    for t in range(T):
        gates = x[:, t] @ d["weight_ih_l0"].T + d["bias_ih_l0"] + h @ d["weight_hh_l0"].T \
            + d["bias_hh_l0"]
        i, f, g, o = np.split(gates, 4, axis=1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        np.testing.assert_allclose(out.data[:, t], h, rtol=0, atol=ATOL)
    np.testing.assert_allclose(c_n.data[0], c, rtol=0, atol=ATOL)
    exported = model.torch_state_dict()
    np.testing.assert_allclose(exported["bias_ih_l0"], d["bias_ih_l0"] + d["bias_hh_l0"],
                               rtol=0, atol=1e-15)


@pytest.mark.parametrize("change, match", [
    (lambda d: d.pop("bias_hh_l1"), r"missing key 'bias_hh_l1' \(expected shape \(16,\)\)"),
    (lambda d: d.update(weight_hr_l0=np.zeros((2, 4))), r"unexpected key 'weight_hr_l0'"),
    (lambda d: d.update(weight_ih_l0=np.zeros((3, 16))),
     r"wrong shape for 'weight_ih_l0': expected \(16, 3\), got \(3, 16\)"),
    (lambda d: d.update(bias_ih_l1=np.zeros(12)),
     r"wrong shape for 'bias_ih_l1': expected \(16,\), got \(12,\)"),
])
def test_load_torch_state_dict_validates_before_changing_anything(change, match):
    model = LSTM(3, 4, 2, rng=np.random.default_rng(11))
    before = model.state_dict()
    d = LSTM(3, 4, 2, rng=np.random.default_rng(12)).torch_state_dict()
    d["weight_hh_l0"] = d["weight_hh_l0"] + 1.0  # a valid change listed before the bad one
    change(d)
    with pytest.raises(ValueError, match=match):
        model.load_torch_state_dict(d)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


# -- structure: names, scopes, statelessness, init ------------------------------------------

def test_parameter_names_inside_a_parent_model():
    class Tagger(mg.nn.Module):
        def __init__(self):
            self.lstm = LSTM(2, 3, num_layers=2, rng=np.random.default_rng(0))
            self.head = mg.nn.Linear(3, 1, rng=np.random.default_rng(0))

    names = [name for name, _ in Tagger().named_parameters()]
    assert names == ["lstm.l0.weight", "lstm.l0.bias", "lstm.l1.weight", "lstm.l1.bias",
                     "head.weight", "head.bias"]
    assert Tagger().lstm.l1.weight.name == "lstm.l1.weight"
    assert [(n, p.shape) for n, p in LSTM(2, 3).named_parameters()] == [
        ("l0.weight", (5, 12)), ("l0.bias", (12,))]


def test_each_step_lives_in_its_layer_and_step_scope():
    model = LSTM(2, 3, num_layers=2, rng=np.random.default_rng(0))
    x = mg.Tensor(np.ones((1, 3, 2)), requires_grad=True)
    with mg.scope("lstm"):
        out, _ = model(x)
    nodes = topological_order(out)
    matmuls = [n.scope for n in nodes if n.op is not None and n.op.label == "matmul"]
    assert sorted(matmuls) == [f"lstm/l{k}/t{t}" for k in range(2) for t in range(3)]
    slices = [(n.scope, n.op.detail()) for n in nodes
              if n.op is not None and n.op.label == "slice" and n.op.inputs[0] is x]
    assert sorted(slices) == [(f"lstm/l0/t{t}", f"[:, {t}, :]") for t in range(3)]
    # Every gate op of a step is tagged with that step's scope.
    step_ops = {n.op.label for n in nodes if n.op is not None and n.scope == "lstm/l1/t2"}
    assert {"concat", "matmul", "add", "slice", "sigmoid", "tanh", "multiply"} <= step_ops


def test_no_state_kept_between_calls():
    model = LSTM(2, 3, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 4, 2))
    first, (h1, _) = model(x)
    second, (h2, _) = model(x)
    np.testing.assert_array_equal(first.data, second.data)
    continued, _ = model(x, (h1.data, np.zeros_like(h1.data)))
    assert not np.allclose(continued.data, first.data)  # the state argument does matter


def test_default_init_is_uniform_in_one_over_sqrt_hidden():
    H = 64
    model = LSTM(5, H, num_layers=2, rng=np.random.default_rng(0))
    bound = 1 / np.sqrt(H)
    for name, p in model.named_parameters():
        assert np.max(np.abs(p.data)) <= bound, name
        assert np.max(np.abs(p.data)) > 0.9 * bound, name
        assert abs(np.mean(p.data)) < 0.2 * bound, name
    again = LSTM(5, H, num_layers=2, rng=np.random.default_rng(0))
    for (name, a), (_, b) in zip(model.named_parameters(), again.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    mg.nn.manual_seed(3)
    a = LSTM(2, 2)
    mg.nn.manual_seed(3)
    np.testing.assert_array_equal(a.l0.weight.data, LSTM(2, 2).l0.weight.data)


def test_repr():
    assert repr(LSTMCell(3, 4)) == "LSTMCell(input_size=3, hidden_size=4)"
    text = repr(LSTM(3, 4, num_layers=2, dtype=np.float32))
    assert text.startswith("LSTM(\n  input_size=3, hidden_size=4, num_layers=2, dtype=float32\n")
    assert "(l0): LSTMCell(input_size=3, hidden_size=4, dtype=float32)" in text
    assert "(l1): LSTMCell(input_size=4, hidden_size=4, dtype=float32)" in text


# -- validation --------------------------------------------------------------------------

@pytest.mark.parametrize("x, state, match", [
    (np.zeros((4, 3)), None, r"expected batch-first input of shape \(N, T, 3\), got \(4, 3\)"),
    (np.zeros((4, 5, 2)), None, r"expected .* \(N, T, 3\), got \(4, 5, 2\)"),
    (np.zeros((4, 0, 3)), None, r"at least one step.*\(4, 0, 3\) \(T = 0\)"),
    (np.zeros((4, 5, 3)), np.zeros((2, 4, 6)), r"state must be a pair \(h, c\) or None, got a "
                                               r"ndarray"),
    (np.zeros((4, 5, 3)), (np.zeros((2, 4, 6)),), r"pair .* got a tuple of length 1"),
    (np.zeros((4, 5, 3)), (np.zeros((2, 4, 6)), np.zeros((1, 4, 6))),
     r"expected c0 of shape \(2, 4, 6\) \(num_layers, N, hidden_size\), got \(1, 4, 6\)"),
    (np.zeros((4, 5, 3)), (np.zeros((4, 6)), np.zeros((2, 4, 6))),
     r"expected h0 of shape \(2, 4, 6\) .* got \(4, 6\)"),
    (mg.Tensor(np.zeros((4, 5, 3), np.float32)), None,
     r"input has dtype float32, expected the module's dtype float64"),
])
def test_lstm_rejects_bad_input_before_computing(x, state, match):
    model = LSTM(3, 6, num_layers=2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=match):
        model(x, state)


def test_cell_rejects_bad_input():
    cell = LSTMCell(3, 2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3\), got \(5, 4\)"):
        cell(np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"expected h_prev of shape \(5, 2\) "
                                         r"\(N, hidden_size\), got \(5, 3\)"):
        cell(np.zeros((5, 3)), (np.zeros((5, 3)), np.zeros((5, 2))))
    with pytest.raises(ValueError, match=r"state must be a pair"):
        cell(np.zeros((5, 3)), [np.zeros((5, 2))] * 3)


@pytest.mark.parametrize("args, match", [
    ((0, 3), r"input_size must be a positive integer, got 0"),
    ((3, 2.5), r"hidden_size must be a positive integer, got 2.5"),
    ((3, 2, 0), r"num_layers must be a positive integer, got 0"),
])
def test_constructor_rejects_bad_sizes(args, match):
    with pytest.raises(ValueError, match=match):
        LSTM(*args)


# -- truncated BPTT, dtype, long sequences --------------------------------------------------

def test_detached_state_stops_gradients():
    rng = np.random.default_rng(13)
    model = LSTM(2, 3, num_layers=2, rng=rng)
    x1 = mg.Tensor(rng.standard_normal((2, 4, 2)), requires_grad=True)
    x2 = rng.standard_normal((2, 4, 2))
    h0 = mg.Tensor(rng.standard_normal((2, 2, 3)), requires_grad=True)
    _, (h1, c1) = model(x1, (h0, h0 * 0.5))

    out, _ = model(x2, (h1.detach(), c1.detach()))
    out.sum().backward()
    assert x1.grad is None and h0.grad is None      # nothing flowed past the cut
    truncated = {n: p.grad.copy() for n, p in model.named_parameters()}

    # The same gradients as a fresh run from a constant state of the same values...
    model.zero_grad()
    fresh, _ = model(x2, (h1.data.copy(), c1.data.copy()))
    fresh.sum().backward()
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad, truncated[name], err_msg=name)

    # ...and different from the undetached run, where the gradient does reach x1 and h0.
    model.zero_grad()
    full, _ = model(x2, (h1, c1))
    full.sum().backward()
    assert x1.grad is not None and np.any(x1.grad != 0) and np.any(h0.grad != 0)
    assert not np.allclose(model.l0.weight.grad, truncated["l0.weight"])


def test_float32_end_to_end():
    rng = np.random.default_rng(14)
    model = LSTM(3, 4, num_layers=2, rng=rng, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in model.parameters())
    x = rng.standard_normal((2, 5, 3))                 # float64 data is converted
    h0 = mg.Tensor(np.zeros((2, 2, 4), np.float32), requires_grad=True)
    out, (h_n, c_n) = model(x, (h0, np.zeros((2, 2, 4))))
    assert out.dtype == h_n.dtype == c_n.dtype == np.float32
    (out.sum() + (h_n * c_n).sum()).backward()
    assert h0.grad.dtype == np.float32
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.dtype == np.float32, name
    # Close to the float64 model with the same weights.
    wide = LSTM(3, 4, num_layers=2, rng=np.random.default_rng(0))
    wide.load_state_dict(model.state_dict())
    np.testing.assert_allclose(wide(x)[0].data, model(x)[0].data, atol=1e-5)


def test_three_thousand_steps_forward_and_backward():
    """A deep unrolled graph: no recursion anywhere, gradients still exact, and the
    graph grows linearly with the sequence length."""
    T, N, D, H = 3000, 1, 1, 2
    rng = np.random.default_rng(15)
    model = LSTM(D, H, rng=rng)
    x = mg.Tensor(rng.standard_normal((N, T, D)), requires_grad=True)
    h0, c0 = rng.standard_normal((1, N, H)), rng.standard_normal((1, N, H))
    u = rng.standard_normal((N, T, H))
    out, (h_n, c_n) = model(x, (h0, c0))
    (out * u).sum().backward()

    ref = ref_stacked(x.data, h0, c0, [model.l0.weight.data], [model.l0.bias.data], u,
                      np.zeros((1, N, H)), np.zeros((1, N, H)))
    np.testing.assert_allclose(out.data, ref[0], rtol=0, atol=ATOL)
    np.testing.assert_allclose(x.grad, ref[3]["x"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(model.l0.weight.grad, ref[3]["l0.weight"], rtol=0, atol=1e-9)

    def graph_size(steps):
        y, _ = model(np.zeros((1, steps, D)))
        return len(topological_order(y))
    assert graph_size(200) - graph_size(100) == graph_size(300) - graph_size(200)


def test_step_tensors_are_named_for_drawings():
    lstm = LSTM(2, 3, rng=np.random.default_rng(0))
    out, _ = lstm(mg.Tensor(np.ones((1, 2, 2)), requires_grad=True))
    names = {node.name for node in topological_order(out) if node.name}
    assert {"z", "i", "f", "g", "o", "c", "h", "h0", "c0", "l0.weight", "l0.bias"} <= names


def test_step_grad_norms_equal_the_hand_derived_per_step_gradients():
    """mg.step_grad_norms on a 2-layer LSTM: the norms of dLoss/dh_t and dLoss/dc_t of
    the closed-form BPTT, for every layer and step (the cell state's own path included)."""
    N, T, D, H, L = 2, 6, 3, 4, 2
    rng = np.random.default_rng(21)
    model = LSTM(D, H, L, rng=rng)
    x = rng.standard_normal((N, T, D))
    h0, c0 = rng.standard_normal((L, N, H)), rng.standard_normal((L, N, H))
    u_last = rng.standard_normal((N, H))
    out, _ = model(x, (h0, c0))
    loss = (out[:, -1] * u_last).sum()
    loss.backward(retain_grads=True)
    norms = mg.step_grad_norms(loss)

    caches, layer_in = [], x
    for k, cell in enumerate(model.cells()):
        layer_in, _, _, cache = ref_forward(layer_in, h0[k], c0[k], cell.weight.data,
                                            cell.bias.data)
        caches.append(cache)
    d_above = np.zeros((N, T, H))
    d_above[:, -1] = u_last
    expected = {}
    for k in reversed(range(L)):
        steps = {}
        d_above = ref_backward(d_above, np.zeros((N, H)), np.zeros((N, H)),
                               model.cells()[k].weight.data, caches[k], steps)[0]
        for name in ("h", "c"):
            expected[f"l{k}/{name}"] = [np.linalg.norm(steps[name][t]) for t in range(T)]
    assert set(norms) == set(expected)
    for key, want in expected.items():
        np.testing.assert_allclose(norms[key], want, rtol=1e-12, atol=0, err_msg=key)


# -- forget_bias ---------------------------------------------------------------------------

def test_forget_bias_shifts_only_the_forget_block_and_survives_interchange():
    H = 4
    plain = LSTM(3, H, num_layers=2, rng=np.random.default_rng(0))
    opened = LSTM(3, H, num_layers=2, forget_bias=1.0, rng=np.random.default_rng(0))
    for k in range(2):
        shift = getattr(opened, f"l{k}").bias.data - getattr(plain, f"l{k}").bias.data
        np.testing.assert_allclose(shift, np.repeat([0.0, 1.0, 0.0, 0.0], H), rtol=0,
                                   atol=1e-15, err_msg=f"l{k}")
        np.testing.assert_array_equal(getattr(opened, f"l{k}").weight.data,
                                      getattr(plain, f"l{k}").weight.data)
    # It is part of the bias: a PyTorch round trip keeps it, into a model without it.
    other = LSTM(3, H, num_layers=2, rng=np.random.default_rng(1))
    other.load_torch_state_dict(opened.torch_state_dict())
    x = np.random.default_rng(2).standard_normal((2, 5, 3))
    np.testing.assert_array_equal(other(x)[0].data, opened(x)[0].data)
    # The forget gate starts open: mean f over a sequence is near sigmoid(1), not 0.5.
    out = opened(x)
    f_mean = np.mean([n.data.mean() for n in topological_order(out[0]) if n.name == "f"])
    assert 0.65 < f_mean < 0.8


def test_forget_bias_repr_and_validation():
    assert "forget_bias=1" in repr(LSTM(2, 3, forget_bias=1.0))
    assert repr(LSTMCell(2, 3, forget_bias=0.5)) == \
        "LSTMCell(input_size=2, hidden_size=3, forget_bias=0.5)"
    assert "forget_bias" not in repr(LSTM(2, 3))
    for bad in (float("nan"), "1", None, True):
        with pytest.raises(ValueError, match=r"LSTMCell: forget_bias must be a finite number"):
            LSTM(2, 3, forget_bias=bad)
