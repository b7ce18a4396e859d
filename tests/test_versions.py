"""In-place changes are tracked, as in PyTorch: a backward that needs a value an op saved,
changed in place since, raises RuntimeError; it never returns a silently wrong gradient."""
import numpy as np
import pytest

import minigrad as mg
from builders import leaf



def test_each_in_place_operator_counts_one_version():
    t = leaf([[1.0, 2.0], [3.0, 4.0]])
    assert t._version == 0
    with mg.no_grad():
        t += 1.0
        t -= 1.0
        t *= 2.0
        t /= 2.0
        t[0, 1] = 5.0
    assert t._version == 5
    assert mg.Tensor(3.0)._version == 0


def test_changed_weight_between_forward_and_backward_raises_naming_everything():
    x, w = leaf([[1.0, 2.0]]), leaf([[3.0], [4.0]], name="w")
    y = (x @ w).sum()
    with mg.no_grad():
        w -= 10.0
    with pytest.raises(RuntimeError) as info:
        y.backward()
    message = str(info.value)
    for part in ("matmul", "'w'", "(2, 1)", "version 1", "version 0", "backward() before",
                 "copy"):
        assert part in message
    assert x.grad is None


def test_setitem_between_forward_and_backward_raises():
    p = leaf([1.0, 2.0, 3.0], name="p")
    y = (p * p).sum()
    with mg.no_grad():
        p[1] = 7.0
    with pytest.raises(RuntimeError, match="multiply.*'p'"):
        y.backward()


@pytest.mark.parametrize("make", [lambda ps: mg.optim.SGD(ps, lr=0.1),
                                  lambda ps: mg.optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: mg.optim.Adam(ps, lr=0.1)])
def test_second_backward_after_an_optimizer_step_raises(make):
    mg.nn.manual_seed(0)
    first, second = mg.nn.Linear(3, 4), mg.nn.Linear(4, 1)
    x = np.ones((2, 3))
    loss = second(first(x).tanh()).sum()
    opt = make(first.parameters() + second.parameters())
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="matmul.*'weight'.*version 1, forward saw "
                                           "version 0"):
        loss.backward()


def test_training_loop_runs_with_versions_growing():
    mg.nn.manual_seed(0)
    model = mg.nn.Linear(3, 1)
    opt = mg.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        loss = mg.nn.mse_loss(model(np.ones((2, 3))), np.zeros((2, 1)))
        loss.backward()
        opt.step()
    assert model.weight._version == 3


def test_load_state_dict_counts_as_an_in_place_change():
    model = mg.nn.Linear(2, 1)
    y = (mg.Tensor(np.ones((1, 2)), requires_grad=True) @ model.weight).sum()
    model.load_state_dict(model.state_dict())
    with pytest.raises(RuntimeError, match="matmul"):
        y.backward()


@pytest.mark.parametrize("op", [mg.sigmoid, mg.tanh, mg.exp, mg.relu, mg.softmax,
                                mg.log_softmax, lambda t: mg.max(t, axis=1)])
def test_changed_output_of_an_op_that_keeps_it_raises(op):
    x = leaf([[0.5, -1.0], [2.0, 0.25]])
    y = op(x)
    with mg.no_grad():
        y *= 2.0
    with pytest.raises(RuntimeError, match="its output"):
        (y * 1.0).sum().backward()


def test_values_no_backward_reads_may_change():
    """add needs no input values, and x @ w with a constant x reads only x: as in
    PyTorch, neither change raises, and the gradient is the right one."""
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = (a + b).sum()
    with mg.no_grad():
        a += 100.0
    y.backward()
    np.testing.assert_array_equal(a.grad, [1.0, 1.0])

    x, w = mg.Tensor([[1.0, 2.0]]), leaf([[3.0], [4.0]])
    y = (x @ w).sum()
    with mg.no_grad():
        w -= 10.0
    y.backward()
    np.testing.assert_array_equal(w.grad, [[1.0], [2.0]])


def test_a_changed_constant_input_still_raises():
    x, w = mg.Tensor([[1.0, 2.0]], name="x"), leaf([[3.0], [4.0]])
    y = (x @ w).sum()
    with mg.no_grad():
        x *= 3.0
    with pytest.raises(RuntimeError, match="input 0 \\('x', shape \\(1, 2\\)\\)"):
        y.backward()


@pytest.mark.parametrize("view", [lambda w: w.T, lambda w: w.reshape(4), lambda w: w[0],
                                  lambda w: w[:, 1:], lambda w: w.detach(),
                                  lambda w: mg.Tensor(w)])
def test_views_share_their_base_version(view):
    w = leaf([[1.0, 2.0], [3.0, 4.0]], name="w")
    v = view(w)
    y = (v * leaf(np.ones(v.shape))).sum()  # keeps v for the other factor's gradient
    with mg.no_grad():
        w += 1.0  # changes v's memory too
    with pytest.raises(RuntimeError, match="multiply"):
        y.backward()
    # and a change through the view reaches a graph that saved the base
    w = leaf([[1.0, 2.0], [3.0, 4.0]], name="w")
    y = (w * w).sum()
    with mg.no_grad():
        view(w)[...] = 0.0
    with pytest.raises(RuntimeError, match="'w'"):
        y.backward()


def test_a_reshape_that_copies_does_not_share_the_version():
    w = leaf([[1.0, 2.0], [3.0, 4.0]])
    v = w.T.reshape(4)  # not contiguous: numpy copies, as torch.reshape does
    y = (v * v).sum()
    with mg.no_grad():
        w += 1.0
    y.backward()
    np.testing.assert_array_equal(w.grad, 2 * np.array([[1.0, 2.0], [3.0, 4.0]]))


def test_retained_graph_checks_again_on_the_second_backward():
    x = leaf([1.0, 2.0])
    y = mg.sigmoid(x)
    loss = (y * 3.0).sum()
    loss.backward(retain_graph=True)
    with mg.no_grad():
        x += 1.0  # sigmoid kept its output, not its input: still fine
    loss.backward()
    s = 1 / (1 + np.exp(-np.array([1.0, 2.0])))
    np.testing.assert_allclose(x.grad, 2 * 3 * s * (1 - s))
