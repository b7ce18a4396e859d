"""models.RNN / models.GRU against independent closed-form implementations written here.

The references are plain numpy: PyTorch's documented forward equations, and
backpropagation through time derived by hand, step by step. The GRU's is the
interesting one: the gradient reaching h_{t-1} has a direct part through ``z * h_{t-1}``
and a part through every gate's recurrent matmul, and ``b_hn`` sits inside the reset
product. The models have no backward of their own; agreement to 1e-10 checks the
engine's generic sweep over the unrolled graph against the derivation.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad.gradcheck import numeric_gradient
from minigrad import models
from minigrad.tensor import topological_order
from minigrad.models import GRU, LSTM, RNN, GRUCell, RNNCell

ATOL = 1e-10


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# -- closed-form RNN -------------------------------------------------------------------

def rnn_forward(x, h0, W, b, nonlinearity):
    """One layer: h_t = act([x_t, h_{t-1}] @ W + b). Returns out, h_T and a cache."""
    N, T, _ = x.shape
    h = h0
    out = np.empty((N, T, h0.shape[1]))
    cache = []
    for t in range(T):
        xh = np.concatenate([x[:, t], h], axis=1)
        a = xh @ W + b
        h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)
        out[:, t] = h
        cache.append((xh, a, h))
    return out, h, cache


def rnn_backward(dout, dh_T, W, cache, nonlinearity, dh_steps=None):
    """Hand-derived BPTT; returns dx, dh0, {"weight", "bias"}. The full gradient
    dLoss/dh_t of every step goes into ``dh_steps[t]`` when a dict is given."""
    N, T, H = dout.shape
    D = W.shape[0] - H
    dx, dW, db = np.zeros((N, T, D)), np.zeros_like(W), np.zeros(H)
    dh_next = dh_T
    for t in reversed(range(T)):
        xh, a, h = cache[t]
        dh = dout[:, t] + dh_next
        if dh_steps is not None:
            dh_steps[t] = dh
        da = dh * (1 - h ** 2) if nonlinearity == "tanh" else dh * (a > 0)
        dW += xh.T @ da
        db += da.sum(axis=0)
        dxh = da @ W.T
        dx[:, t], dh_next = dxh[:, :D], dxh[:, D:]
    return dx, dh_next, {"weight": dW, "bias": db}


# -- closed-form GRU -------------------------------------------------------------------

def gru_forward(x, h0, W_ih, W_hh, b_ih, b_hh):
    """One layer of PyTorch's GRU, weights applied as x @ W (column blocks r, z, n)."""
    N, T, _ = x.shape
    H = h0.shape[1]
    h = h0
    out = np.empty((N, T, H))
    cache = []
    for t in range(T):
        gx = x[:, t] @ W_ih + b_ih
        gh = h @ W_hh + b_hh
        r = _sigmoid(gx[:, :H] + gh[:, :H])
        z = _sigmoid(gx[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
        cache.append((x[:, t], h, gh, r, z, n))
        h = (1 - z) * n + z * h
        out[:, t] = h
    return out, h, cache


def gru_backward(dout, dh_T, W_ih, W_hh, cache, dh_steps=None):
    """Hand-derived BPTT for one GRU layer; returns dx, dh0 and the parameter grads
    (and dLoss/dh_t in ``dh_steps[t]``, as ``rnn_backward``)."""
    N, T, H = dout.shape
    D = W_ih.shape[0]
    dx = np.zeros((N, T, D))
    g = {"weight_ih": np.zeros_like(W_ih), "weight_hh": np.zeros_like(W_hh),
         "bias_ih": np.zeros(3 * H), "bias_hh": np.zeros(3 * H)}
    dh_next = dh_T
    for t in reversed(range(T)):
        x_t, h_prev, gh, r, z, n = cache[t]
        dh = dout[:, t] + dh_next
        if dh_steps is not None:
            dh_steps[t] = dh
        dn = dh * (1 - z)
        dz = dh * (h_prev - n)
        da_n = dn * (1 - n ** 2)            # pre-activation of the candidate
        dr = da_n * gh[:, 2 * H:]           # r multiplies W_hn h + b_hn
        da_r = dr * r * (1 - r)
        da_z = dz * z * (1 - z)
        dgx = np.concatenate([da_r, da_z, da_n], axis=1)
        dgh = np.concatenate([da_r, da_z, da_n * r], axis=1)
        g["weight_ih"] += x_t.T @ dgx
        g["bias_ih"] += dgx.sum(axis=0)
        g["weight_hh"] += h_prev.T @ dgh
        g["bias_hh"] += dgh.sum(axis=0)
        dx[:, t] = dgx @ W_ih.T
        dh_next = dh * z + dgh @ W_hh.T     # the direct path, and through the gates
    return dx, dh_next, g


# -- stacking, for both -----------------------------------------------------------------

def _layer_params(cell):
    return {name: p.data for name, p in cell.named_parameters()}


def ref_stacked(kind, model, x, h0, dout, dh_n, dh_steps=None):
    """Forward bottom-up, backward top-down, with the references above. Returns out,
    h_n and every gradient, keyed as ``model.named_parameters()`` plus "x" and "h0".
    ``dh_steps``, if a dict, receives {"l{k}/h": {t: dLoss/dh_t}}."""
    caches, h_n, layer_in = [], [], x
    for k, cell in enumerate(model.cells()):
        p = _layer_params(cell)
        if kind == "gru":
            layer_in, h, cache = gru_forward(layer_in, h0[k], p["weight_ih"], p["weight_hh"],
                                             p["bias_ih"], p["bias_hh"])
        else:
            layer_in, h, cache = rnn_forward(layer_in, h0[k], p["weight"], p["bias"],
                                             model.nonlinearity)
        caches.append(cache)
        h_n.append(h)
    grads, dh0, d_above = {}, np.zeros_like(h0), dout
    for k in reversed(range(model.num_layers)):
        p = _layer_params(model.cells()[k])
        steps = None if dh_steps is None else dh_steps.setdefault(f"l{k}/h", {})
        if kind == "gru":
            d_above, dh0[k], g = gru_backward(d_above, dh_n[k], p["weight_ih"],
                                              p["weight_hh"], caches[k], steps)
        else:
            d_above, dh0[k], g = rnn_backward(d_above, dh_n[k], p["weight"], caches[k],
                                              model.nonlinearity, steps)
        grads.update({f"l{k}.{name}": value for name, value in g.items()})
    grads["x"], grads["h0"] = d_above, dh0
    return layer_in, np.stack(h_n), grads


def _build(kind, D, H, L, rng):
    if kind == "gru":
        return GRU(D, H, L, rng=rng)
    return RNN(D, H, L, nonlinearity=kind.split("-")[1], rng=rng)


KINDS = ["rnn-tanh", "rnn-relu", "gru"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("N, T, D, H, L", [(3, 5, 4, 6, 1), (2, 4, 3, 5, 2), (1, 3, 2, 2, 3)])
def test_matches_closed_form_forward_and_bptt(kind, N, T, D, H, L):
    rng = np.random.default_rng(N * 100 + T + KINDS.index(kind))
    model = _build(kind, D, H, L, rng)
    x = mg.Tensor(rng.standard_normal((N, T, D)), requires_grad=True)
    h0 = mg.Tensor(rng.standard_normal((L, N, H)), requires_grad=True)
    u_out, u_h = rng.standard_normal((N, T, H)), rng.standard_normal((L, N, H))

    out, h_n = model(x, h0)
    ((out * u_out).sum() + (h_n * u_h).sum()).backward()

    ref_out, ref_h_n, ref_grads = ref_stacked(kind.split("-")[0], model, x.data, h0.data,
                                              u_out, u_h)
    np.testing.assert_allclose(out.data, ref_out, rtol=0, atol=ATOL)
    np.testing.assert_allclose(h_n.data, ref_h_n, rtol=0, atol=ATOL)
    ours = {"x": x.grad, "h0": h0.grad, **{n: p.grad for n, p in model.named_parameters()}}
    assert set(ours) == set(ref_grads)
    if kind == "rnn-relu":  # the relu reference must not be trivially dead
        assert np.any(ref_out == 0) and np.any(ref_out > 0)
    for name, expected in ref_grads.items():
        assert ours[name] is not None, name
        assert np.any(expected != 0), name
        np.testing.assert_allclose(ours[name], expected, rtol=0, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("kind", KINDS)
def test_step_grad_norms_equal_the_hand_derived_per_step_gradients(kind):
    """mg.step_grad_norms finds every step's h in our models' graphs: its norms are
    those of dLoss/dh_t from the closed-form BPTT, for every layer and step."""
    N, T, D, H, L = 2, 6, 3, 4, 2
    rng = np.random.default_rng(21)
    model = _build(kind, D, H, L, rng)
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((L, N, H))
    u_last = rng.standard_normal((N, H))      # a loss on the last output only
    out, h_n = model(x, h0)
    loss = (out[:, -1] * u_last).sum()
    loss.backward(retain_grads=True)
    norms = mg.step_grad_norms(loss)

    dout = np.zeros((N, T, H))
    dout[:, -1] = u_last
    expected = {}
    ref_stacked(kind.split("-")[0], model, x, h0, dout, np.zeros((L, N, H)), expected)
    assert set(norms) == set(expected) == {"l0/h", "l1/h"}
    for key, steps in expected.items():
        want = [np.linalg.norm(steps[t]) for t in range(T)]
        np.testing.assert_allclose(norms[key], want, rtol=1e-12, atol=0, err_msg=key)


@pytest.mark.parametrize("kind", ["rnn-tanh", "gru"])
def test_reference_bptt_matches_central_differences_of_its_own_forward(kind):
    """The hand-derived references are themselves checked, independently of minigrad."""
    rng = np.random.default_rng(7)
    N, T, D, H = 2, 4, 3, 2
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    u_out, u_h = rng.standard_normal((N, T, H)), rng.standard_normal((N, H))
    if kind == "gru":
        params = [rng.standard_normal(s) for s in ((D, 3 * H), (H, 3 * H), (3 * H,), (3 * H,))]

        def run(x, h0, *p):
            out, h, cache = gru_forward(x, h0, *p)
            return out, h, cache

        def analytic(cache):
            dx, dh0, g = gru_backward(u_out, u_h, params[0], params[1], cache)
            return [dx, dh0, g["weight_ih"], g["weight_hh"], g["bias_ih"], g["bias_hh"]]
    else:
        params = [rng.standard_normal((D + H, H)), rng.standard_normal(H)]

        def run(x, h0, *p):
            return rnn_forward(x, h0, *p, "tanh")

        def analytic(cache):
            dx, dh0, g = rnn_backward(u_out, u_h, params[0], cache, "tanh")
            return [dx, dh0, g["weight"], g["bias"]]

    def loss(*args):
        out, h, _ = run(*args)
        return np.sum(out * u_out) + np.sum(h * u_h)

    args = [x, h0, *params]
    grads = analytic(run(*args)[2])
    for k, (arg, grad) in enumerate(zip(args, grads)):
        numeric = numeric_gradient(lambda: loss(*args), arg)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8, err_msg=f"arg {k}")


# -- gradcheck -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_two_layer_model(kind):
    rng = np.random.default_rng(2)
    model = _build(kind, 3, 2, 2, rng)
    x = mg.Tensor(rng.standard_normal((2, 3, 3)), requires_grad=True)
    h0 = mg.Tensor(rng.standard_normal((2, 2, 2)), requires_grad=True)

    def fn(x, h0, *params):
        out, h_n = model(x, h0)
        return mg.concat([out.reshape(-1), h_n.reshape(-1)], axis=0)

    assert mg.gradcheck(fn, [x, h0, *model.parameters()])


@pytest.mark.parametrize("cell_class", [RNNCell, GRUCell])
def test_gradcheck_cell(cell_class):
    rng = np.random.default_rng(1)
    cell = cell_class(3, 4, rng=rng)
    x = mg.Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    h = mg.Tensor(rng.standard_normal((2, 4)), requires_grad=True)
    assert mg.gradcheck(lambda x, h, *params: cell(x, h), [x, h, *cell.parameters()])


# -- PyTorch layout ----------------------------------------------------------------------

def _torch_reference(kind, d, x, h):
    """PyTorch's documented equations written directly in its layout (W applied as
    x @ W.T, two biases), for one layer: returns every h_t."""
    outs = []
    for t in range(x.shape[1]):
        gi = x[:, t] @ d["weight_ih_l0"].T + d["bias_ih_l0"]
        gh = h @ d["weight_hh_l0"].T + d["bias_hh_l0"]
        if kind == "gru":
            i_r, i_z, i_n = np.split(gi, 3, axis=1)
            h_r, h_z, h_n = np.split(gh, 3, axis=1)
            r, z = _sigmoid(i_r + h_r), _sigmoid(i_z + h_z)
            n = np.tanh(i_n + r * h_n)
            h = (1 - z) * n + z * h
        else:
            h = np.tanh(gi + gh) if kind == "rnn-tanh" else np.maximum(gi + gh, 0)
        outs.append(h)
    return np.stack(outs, axis=1)


@pytest.mark.parametrize("kind", KINDS)
def test_torch_layout_follows_pytorch_equations(kind):
    """Both biases nonzero: for the GRU this tells b_hn (inside the reset product) from
    b_in, which a model that folded the biases together would get wrong."""
    D, H, N, T = 2, 3, 2, 4
    G = 3 if kind == "gru" else 1
    rng = np.random.default_rng(10)
    d = {"weight_ih_l0": rng.standard_normal((G * H, D)),
         "weight_hh_l0": rng.standard_normal((G * H, H)),
         "bias_ih_l0": rng.standard_normal(G * H), "bias_hh_l0": rng.standard_normal(G * H)}
    model = _build(kind, D, H, 1, rng)
    model.load_torch_state_dict(d)
    x, h = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    out, h_n = model(x, h[None])
    expected = _torch_reference(kind, d, x, h)
    np.testing.assert_allclose(out.data, expected, rtol=0, atol=ATOL)
    np.testing.assert_allclose(h_n.data[0], expected[:, -1], rtol=0, atol=ATOL)


def test_gru_keeps_b_hn_inside_the_reset_product():
    """Reset gate shut (r = 0): the candidate is tanh(b_in) whatever b_hn is. Moving the
    same number from b_in to b_hn changes the output, so the two are not folded."""
    D, H, N = 2, 2, 3
    zeros = {"weight_ih_l0": np.zeros((3 * H, D)), "weight_hh_l0": np.zeros((3 * H, H))}
    reset_shut = np.repeat([-50.0, -50.0, 0.0], H)   # r = 0, z = 0: h = n
    model = GRU(D, H)
    model.load_torch_state_dict({**zeros, "bias_ih_l0": reset_shut + np.repeat([0, 0, 0.5], H),
                                 "bias_hh_l0": np.repeat([0, 0, 3.0], H)})
    h = model(np.ones((N, 1, D)))[1].data
    np.testing.assert_allclose(h, np.tanh(0.5), rtol=0, atol=1e-15)
    model.load_torch_state_dict({**zeros, "bias_ih_l0": reset_shut,
                                 "bias_hh_l0": np.repeat([0, 0, 3.5], H)})
    np.testing.assert_allclose(model(np.ones((N, 1, D)))[1].data, 0.0, rtol=0, atol=1e-15)


@pytest.mark.parametrize("kind, keys", [
    ("gru", {"weight_ih_l0": (15, 3), "weight_hh_l0": (15, 5), "bias_ih_l0": (15,),
             "bias_hh_l0": (15,), "weight_ih_l1": (15, 5), "weight_hh_l1": (15, 5),
             "bias_ih_l1": (15,), "bias_hh_l1": (15,)}),
    ("rnn-tanh", {"weight_ih_l0": (5, 3), "weight_hh_l0": (5, 5), "bias_ih_l0": (5,),
                  "bias_hh_l0": (5,), "weight_ih_l1": (5, 5), "weight_hh_l1": (5, 5),
                  "bias_ih_l1": (5,), "bias_hh_l1": (5,)}),
])
def test_torch_state_dict_layout_and_lossless_round_trip(kind, keys):
    model = _build(kind, 3, 5, 2, np.random.default_rng(8))
    exported = model.torch_state_dict()
    assert {k: v.shape for k, v in exported.items()} == keys
    # A copy: changing it leaves the model alone.
    before = model.state_dict()
    for value in exported.values():
        value[...] = 123.0
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)

    other = _build(kind, 3, 5, 2, np.random.default_rng(9))
    other.load_torch_state_dict(model.torch_state_dict())
    for (name, a), (_, b) in zip(model.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    x = np.random.default_rng(1).standard_normal((2, 4, 3))
    np.testing.assert_array_equal(model(x)[0].data, other(x)[0].data)
    if kind == "gru":  # PyTorch's four tensors are the GRU's own parameters
        np.testing.assert_array_equal(model.torch_state_dict()["bias_hh_l1"],
                                      model.l1.bias_hh.data)
        np.testing.assert_array_equal(model.torch_state_dict()["weight_ih_l0"],
                                      model.l0.weight_ih.data.T)


@pytest.mark.parametrize("kind", ["rnn-tanh", "gru"])
@pytest.mark.parametrize("change, match", [
    (lambda d: d.pop("bias_hh_l1"), r"missing key 'bias_hh_l1' \(expected shape \(\d+,\)\)"),
    (lambda d: d.update(weight_ih_l0_reverse=np.zeros((4, 3))),
     r"unexpected key 'weight_ih_l0_reverse'"),
    (lambda d: d.update(weight_hh_l1=np.zeros((4, 5))),
     r"wrong shape for 'weight_hh_l1': expected \(\d+, 4\), got \(4, 5\)"),
])
def test_load_torch_state_dict_validates_before_changing_anything(kind, change, match):
    model = _build(kind, 3, 4, 2, np.random.default_rng(11))
    before = model.state_dict()
    d = _build(kind, 3, 4, 2, np.random.default_rng(12)).torch_state_dict()
    d["weight_hh_l0"] = d["weight_hh_l0"] + 1.0  # a valid change listed before the bad one
    change(d)
    name = "GRU" if kind == "gru" else "RNN"
    with pytest.raises(ValueError, match=rf"{name}\.load_torch_state_dict: .*{match}"):
        model.load_torch_state_dict(d)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_an_lstm_state_dict_does_not_load_into_a_gru():
    d = LSTM(3, 4, rng=np.random.default_rng(0)).torch_state_dict()
    with pytest.raises(ValueError, match=r"wrong shape for 'weight_ih_l0': expected "
                                         r"\(12, 3\), got \(16, 3\)"):
        GRU(3, 4).load_torch_state_dict(d)


# -- structure: names, scopes, state ------------------------------------------------------

def test_parameter_names():
    assert [(n, p.shape) for n, p in GRU(2, 3, 2).named_parameters()] == [
        ("l0.weight_ih", (2, 9)), ("l0.weight_hh", (3, 9)), ("l0.bias_ih", (9,)),
        ("l0.bias_hh", (9,)), ("l1.weight_ih", (3, 9)), ("l1.weight_hh", (3, 9)),
        ("l1.bias_ih", (9,)), ("l1.bias_hh", (9,))]
    assert [(n, p.shape) for n, p in RNN(2, 3).named_parameters()] == [
        ("l0.weight", (5, 3)), ("l0.bias", (3,))]


@pytest.mark.parametrize("kind, gates", [("gru", {"r", "z", "n"}), ("rnn-tanh", set()),
                                         ("lstm", {"i", "f", "g", "o", "c"})])
def test_each_step_lives_in_its_layer_and_step_scope_with_named_tensors(kind, gates):
    rng = np.random.default_rng(0)
    model = LSTM(2, 3, 2, rng=rng) if kind == "lstm" else _build(kind, 2, 3, 2, rng)
    with mg.scope("net"):
        out, _ = model(mg.Tensor(np.ones((1, 3, 2)), requires_grad=True))
    nodes = topological_order(out)
    named = {}
    for node in nodes:
        if node.name in gates | {"h"} and node.op is not None:
            named.setdefault(node.name, []).append(node.scope)
    for name in gates | {"h"}:
        assert sorted(named[name]) == [f"net/l{k}/t{t}" for k in range(2) for t in range(3)], \
            name
    assert {n.name for n in nodes if n.op is None and n.name in ("h0", "c0")} == \
        ({"h0", "c0"} if kind == "lstm" else {"h0"})


@pytest.mark.parametrize("kind", KINDS)
def test_no_state_kept_between_calls_and_h0_matters(kind):
    model = _build(kind, 2, 3, 1, np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 4, 2))
    first, h1 = model(x)
    second, _ = model(x)
    np.testing.assert_array_equal(first.data, second.data)
    np.testing.assert_array_equal(h1.data[0], first.data[:, -1])
    continued, _ = model(x, h1.data)
    assert not np.allclose(continued.data, first.data)


@pytest.mark.parametrize("cell_class", [RNNCell, GRUCell])
def test_cell_alone_equals_one_step_of_the_model(cell_class):
    model_class = RNN if cell_class is RNNCell else GRU
    model = model_class(3, 4, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 1, 3))
    h0 = np.random.default_rng(2).standard_normal((1, 2, 4))
    h = model.l0(x[:, 0], h0[0])
    np.testing.assert_array_equal(h.data, model(x, h0)[1].data[0])
    np.testing.assert_array_equal(model.l0(x[:, 0]).data, model(x)[1].data[0])


@pytest.mark.parametrize("kind", KINDS)
def test_default_init_is_uniform_in_one_over_sqrt_hidden(kind):
    H = 64
    model = _build(kind, 5, H, 2, np.random.default_rng(0))
    bound = 1 / np.sqrt(H)
    for name, p in model.named_parameters():
        assert np.max(np.abs(p.data)) <= bound, name
        assert np.max(np.abs(p.data)) > 0.9 * bound, name
    again = _build(kind, 5, H, 2, np.random.default_rng(0))
    for (name, a), (_, b) in zip(model.named_parameters(), again.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_repr():
    assert repr(GRUCell(3, 4)) == "GRUCell(input_size=3, hidden_size=4)"
    assert repr(RNNCell(3, 4, nonlinearity="relu")) == \
        "RNNCell(input_size=3, hidden_size=4, nonlinearity='relu')"
    text = repr(RNN(3, 4, num_layers=2, nonlinearity="relu"))
    assert text.startswith("RNN(\n  input_size=3, hidden_size=4, num_layers=2, "
                           "nonlinearity='relu'\n")
    assert "(l1): RNNCell(input_size=4, hidden_size=4, nonlinearity='relu')" in text
    assert repr(GRU(3, 4, dtype=np.float32)).startswith(
        "GRU(\n  input_size=3, hidden_size=4, num_layers=1, dtype=float32\n")


def test_recurrent_by_name():
    assert type(models.recurrent("gru", 2, 3)) is GRU
    assert models.recurrent("rnn", 2, 3, nonlinearity="relu").nonlinearity == "relu"
    lstm = models.recurrent("lstm", 2, 3, 2, forget_bias=1.0)
    assert type(lstm) is LSTM and lstm.num_layers == 2 and lstm.forget_bias == 1.0
    with pytest.raises(ValueError, match=r"kind must be one of \['gru', 'lstm', 'rnn'\], "
                                         r"got 'transformer'"):
        models.recurrent("transformer", 2, 3)


# -- validation, dtype ---------------------------------------------------------------------

@pytest.mark.parametrize("model_class", [RNN, GRU])
@pytest.mark.parametrize("x, h0, match", [
    (np.zeros((4, 3)), None, r"expected batch-first input of shape \(N, T, 3\), got \(4, 3\)"),
    (np.zeros((4, 0, 3)), None, r"expected a sequence of at least one step.*\(4, 0, 3\) \(T = 0\)"),
    (np.zeros((4, 5, 3)), np.zeros((1, 4, 6)),
     r"expected h0 of shape \(2, 4, 6\) \(num_layers, N, hidden_size\), got \(1, 4, 6\)"),
    (np.zeros((4, 5, 3)), (np.zeros((2, 4, 6)), np.zeros((2, 4, 6))),
     r"expected h0 of shape \(2, 4, 6\) .* got \(2, 2, 4, 6\)"),
    (np.zeros((4, 5, 3)), np.array([["a"]]), r"h0 must be numeric"),
    (mg.Tensor(np.zeros((4, 5, 3), np.float32)), None,
     r"input has dtype float32, expected the module's dtype float64"),
])
def test_rejects_bad_input_before_computing(model_class, x, h0, match):
    model = model_class(3, 6, num_layers=2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=rf"{model_class.__name__}: {match}"):
        model(x, h0)


@pytest.mark.parametrize("make, match", [
    (lambda: RNN(3, 2, nonlinearity="sigmoid"),
     r"RNN: nonlinearity must be one of \['relu', 'tanh'\], got 'sigmoid'"),
    (lambda: RNNCell(3, 2, nonlinearity="gelu"), r"RNNCell: nonlinearity must be one of"),
    (lambda: GRU(0, 3), r"GRU: input_size must be a positive integer, got 0"),
    (lambda: RNN(3, 2, 0), r"RNN: num_layers must be a positive integer, got 0"),
    (lambda: GRUCell(3, 2.5), r"GRUCell: hidden_size must be a positive integer, got 2.5"),
    (lambda: GRUCell(3, 2, dtype=np.int64), r"GRUCell: dtype must be a float type"),
])
def test_constructor_rejects_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_cell_rejects_bad_input():
    cell = GRUCell(3, 2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"GRUCell: expected input of shape \(N, 3\), "
                                         r"got \(5, 4\)"):
        cell(np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"GRUCell: expected h_prev of shape \(5, 2\) "
                                         r"\(N, hidden_size\), got \(5, 3\)"):
        cell(np.zeros((5, 3)), np.zeros((5, 3)))


@pytest.mark.parametrize("kind", KINDS)
def test_float32_end_to_end(kind):
    rng = np.random.default_rng(14)
    model = (GRU if kind == "gru" else RNN)(3, 4, 2, rng=rng, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in model.parameters())
    h0 = mg.Tensor(np.zeros((2, 2, 4), np.float32), requires_grad=True)
    out, h_n = model(rng.standard_normal((2, 5, 3)), h0)  # float64 data is converted
    assert out.dtype == h_n.dtype == np.float32
    (out.sum() + (h_n * h_n).sum()).backward()
    assert h0.grad.dtype == np.float32
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.dtype == np.float32, name
