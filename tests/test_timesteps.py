"""Tests of minigrad.timesteps: the time-step structure of an unrolled graph, and
mg.step_grad_norms against gradients derived by hand."""
import numpy as np
import pytest

import minigrad as mg
from minigrad.tensor import topological_order
from minigrad.timesteps import step_of, time_steps
from minigrad.models import GRU, LSTM, RNN


@pytest.mark.parametrize("scope, expected", [
    ("", (None, None)), ("l0", (None, None)), ("t3", ("", 3)), ("l0/t3", ("l0", 3)),
    ("lstm/l1/t12", ("lstm/l1", 12)), ("l0/t2/gates", ("l0", 2)),
    ("t1/inner/t4", ("t1/inner", 4)), ("t", (None, None)), ("tx3", (None, None)),
    ("step3", (None, None)), ("t-1", (None, None))])
def test_step_of(scope, expected):
    assert step_of(scope) == expected


# -- a small RNN whose gradients are derived by hand ---------------------------------------

def hand_rnn(T=3, N=2, H=2, seed=0, named=True, layer=None):
    """h_t = tanh(x_t + h_{t-1} @ W), loss = sum_t sum(h_t * y_t), each step in 't{t}'.

    Returns the loss, and the numpy arrays needed to derive dloss/dh_t by hand.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, N, H))
    y = rng.normal(size=(T, N, H))
    W = mg.Tensor(rng.normal(size=(H, H)), requires_grad=True, name="W")
    h = mg.Tensor(np.zeros((N, H)))
    loss, hs = 0.0, []
    with mg.scope(layer) if layer else _no_scope():
        for t in range(T):
            with mg.scope(f"t{t}"):
                h = mg.tanh(mg.Tensor(x[t]) + h @ W)
                if named:
                    h.name = "h"
            hs.append(h.data)
            loss = loss + (h * mg.Tensor(y[t])).sum()
    return loss, hs, W.data, y


class _no_scope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def closed_form(hs, W, y):
    """dloss/dh_t: y_t, plus what reaches h_t through h_{t+1} = tanh(x + h_t @ W)."""
    T = len(hs)
    grads = [None] * T
    grads[T - 1] = y[T - 1]
    for t in range(T - 2, -1, -1):
        grads[t] = y[t] + (grads[t + 1] * (1 - hs[t + 1] ** 2)) @ W.T
    return np.array([np.linalg.norm(g) for g in grads])


@pytest.mark.parametrize("T", [1, 2, 3, 5])
def test_step_grad_norms_match_the_closed_form(T):
    loss, hs, W, y = hand_rnn(T)
    loss.backward(retain_grads=True)
    norms = mg.step_grad_norms(loss)
    assert list(norms) == ["h"]
    np.testing.assert_allclose(norms["h"], closed_form(hs, W, y), rtol=1e-12)


def test_unnamed_state_gets_a_key_from_its_op_and_place():
    loss, hs, W, y = hand_rnn(4, named=False, layer="rnn")
    loss.backward(retain_grads=True)
    norms = mg.step_grad_norms(loss)
    assert list(norms) == ["rnn/tanh#0"]
    np.testing.assert_allclose(norms["rnn/tanh#0"], closed_form(hs, W, y), rtol=1e-12)


def test_retain_grad_on_out_holds_only_the_direct_path():
    """The trap the docstring warns about: out.grad misses what comes back in time."""
    rng = np.random.default_rng(1)
    model = RNN(2, 3, rng=rng)
    out, _ = model(rng.normal(size=(2, 5, 2)))
    out.retain_grad()
    loss = (out * mg.Tensor(rng.normal(size=out.shape))).sum()
    loss.backward(retain_grads=True)
    direct = np.linalg.norm(out.grad[:, 0, :])
    full = mg.step_grad_norms(loss)["l0/h"][0]
    assert not np.isclose(direct, full)


def retained(loss, layer, name, T):
    """|grad| of the tensor called ``name`` in each step of ``layer``, found by hand."""
    found = {t.scope: t for t in topological_order(loss) if t.name == name}
    return np.array([np.linalg.norm(found[f"{layer}/t{t}"].grad) for t in range(T)])


@pytest.mark.parametrize("model_class, layers", [(LSTM, 1), (LSTM, 2), (GRU, 1), (GRU, 2),
                                                 (RNN, 2)])
def test_step_grad_norms_of_the_models_match_their_retained_grads(model_class, layers):
    rng = np.random.default_rng(2)
    T = 4
    model = model_class(3, 4, layers, rng=rng)
    out, _ = model(rng.normal(size=(2, T, 3)))
    loss = (out[:, -1, :] ** 2).sum()  # only the last step: the gradient flows back
    loss.backward(retain_grads=True)
    norms = mg.step_grad_norms(loss)
    names = ("c", "h") if model_class is LSTM else ("h",)
    assert sorted(norms) == sorted(f"l{k}/{n}" for k in range(layers) for n in names)
    for key, values in norms.items():
        layer, name = key.split("/")
        assert values.shape == (T,)
        np.testing.assert_allclose(values, retained(loss, layer, name, T), rtol=1e-12)
        assert np.all(values > 0)


def test_the_state_the_loss_does_not_reach_is_zero():
    rng = np.random.default_rng(3)
    model = LSTM(2, 3, rng=rng)
    out, (h_n, c_n) = model(rng.normal(size=(1, 3, 2)))
    loss = (out[:, 0, :] ** 2).sum()  # depends on step 0 only
    loss.backward(retain_grads=True)
    norms = mg.step_grad_norms(loss)
    assert norms["l0/h"][0] > 0 and norms["l0/c"][0] > 0
    np.testing.assert_array_equal(norms["l0/h"][1:], 0.0)
    np.testing.assert_array_equal(norms["l0/c"][1:], 0.0)


def test_errors_say_what_to_do():
    x = mg.Tensor(np.ones(3), requires_grad=True)
    loss = (mg.tanh(x) * 2).sum()
    loss.backward(retain_grads=True)
    with pytest.raises(ValueError, match=r"t<number>"):
        mg.step_grad_norms(loss)
    loss, *_ = hand_rnn(3)  # no backward at all
    with pytest.raises(ValueError, match=r"retain_grads=True"):
        mg.step_grad_norms(loss)
    loss.backward(retain_graph=True)  # the graph, but only the leaves' gradients
    with pytest.raises(ValueError, match=r"hold no gradient.*retain_grads=True"):
        mg.step_grad_norms(loss)
    loss, *_ = hand_rnn(3)
    loss.backward()  # releases the graph
    with pytest.raises(ValueError, match=r"released.*retain_grads=True"):
        mg.step_grad_norms(loss)


# -- the structure ---------------------------------------------------------------------------

def test_structure_of_a_two_layer_lstm():
    rng = np.random.default_rng(4)
    model = LSTM(2, 3, 2, rng=rng)
    out, _ = model(mg.Tensor(rng.normal(size=(1, 5, 2)), requires_grad=True, name="x"))
    structure = time_steps(out.sum())
    assert list(structure.layers) == ["l0", "l1"]
    for layer, steps in structure.layers.items():
        assert [s.t for s in steps] == list(range(5))
        for step in steps[:-1]:
            assert [t.name for t in step.state_out] == ["c", "h"]
            assert step.next.state_in == step.state_out
        assert steps[-1].state_out == [] and steps[0].state_in == []
        # x and the zero state enter t0 from outside; h0 is zeros that need no
        # gradient, so t0 is its own structure and t1..t4 repeat.
        assert steps[0].signature != steps[1].signature
        assert len({s.signature for s in steps[1:]}) == 1
        for step in steps:
            assert {p.name for p in step.inputs if isinstance(p, mg.nn.Parameter)} == {
                f"{layer}.weight", f"{layer}.bias"}
            assert [t.name for t in step.outputs] == ["h"]  # into out (c_n is not used)
    below, above = structure.layers["l0"], structure.layers["l1"]
    for t in range(5):  # layer 1 reads layer 0's h at the same step
        h = below[t].tensors[-1]
        assert h.name == "h" and any(i is h for i in above[t].inputs)
    assert all(structure.step_at[id(t)] is s for s in structure.steps for t in s.tensors)


def test_structure_is_the_same_on_every_run():
    def signatures():
        rng = np.random.default_rng(5)
        out, _ = GRU(2, 3, rng=rng)(rng.normal(size=(1, 4, 2)))
        return [s.signature for s in time_steps(out.sum()).steps]
    assert signatures() == signatures()


def test_a_graph_without_steps_has_no_layers():
    x = mg.Tensor(np.ones(3), requires_grad=True)
    structure = time_steps((x * x).sum())
    assert structure.layers == {} and structure.steps == [] and len(structure.order) == 3


def test_a_long_chain_needs_no_recursion():
    h = mg.Tensor(np.ones(2), requires_grad=True)
    for t in range(3000):
        with mg.scope(f"t{t}"):
            h = mg.tanh(h) * 0.9
            h.name = "h"
    loss = h.sum()
    loss.backward(retain_grads=True)
    norms = mg.step_grad_norms(loss)["h"]
    assert norms.shape == (3000,) and np.all(np.diff(norms) >= 0)
