"""The graphs the tests build again and again, written once: a leaf, and small recurrent
networks, either written out from primitive ops (an RNN, a GRU) or made with
``minigrad.models.LSTM``. Each step runs in ``mg.scope(f"t{t}")``, as in the models, so
the time-step machinery (views, explorer, step norms) finds the steps.

Import them by name (``from builders import leaf``); pytest puts ``tests/`` on the path.
"""
from contextlib import nullcontext
from typing import NamedTuple

import numpy as np

import minigrad as mg
from minigrad.models import LSTM


def leaf(values, name=None, dtype=np.float64):
    """A tensor that wants a gradient, from a copy of ``values`` (tests reuse their arrays)."""
    return mg.Tensor(np.array(values, dtype=dtype), requires_grad=True, name=name)


def hand_rnn(T, *, batch=2, seed=0, x_grad=False, loss="last", name="h"):
    """h = tanh(x[:, t, :] @ Wx + h @ Wh), D = 2, H = 3, from h0 = 0.

    ``loss="last"``: sum(h_T ** 2), so every gradient travels back through every step;
    ``loss="mean"``: the mean of every step's h, so each step also gets its own.
    By default x needs no gradient: the graph that once made dot fail ("lost edge").
    """
    rng = np.random.default_rng(seed)
    D, H = 2, 3
    x = mg.Tensor(rng.normal(size=(batch, T, D)), requires_grad=x_grad, name="x")
    Wx = mg.nn.Parameter(rng.normal(size=(D, H)) * 0.5, name="Wx")
    Wh = mg.nn.Parameter(rng.normal(size=(H, H)) * 0.5, name="Wh")
    h = mg.Tensor(np.zeros((batch, H)), name="h0")
    hs = []
    for t in range(T):
        with mg.scope(f"t{t}"):
            h = mg.tanh(x[:, t, :] @ Wx + h @ Wh)
            h.name = name
        hs.append(h)
    if loss not in ("last", "mean"):
        raise ValueError(f"loss must be 'last' or 'mean', not {loss!r}")
    out = (hs[-1] ** 2).sum() if loss == "last" else mg.stack(hs, axis=1).mean()
    out.name = "loss"
    return out


def hand_gru(T, *, seed=0, scope="gru"):
    """A GRU written out from primitives (D = 2, H = 3, batch 1), with the operand order
    that matters, ``(1 - z) * n + z * h``; the steps sit in ``scope`` (None: no outer
    scope). x needs no gradient. Returns sum(h_T)."""
    rng = np.random.default_rng(seed)
    D, H = 2, 3
    x = mg.Tensor(rng.normal(size=(1, T, D)), name="x")
    W = {k: mg.nn.Parameter(rng.normal(size=(D + H, H)) * 0.5, name=f"W{k}") for k in "rzn"}
    h = mg.Tensor(np.zeros((1, H)), name="h0")
    with mg.scope(scope) if scope else nullcontext():
        for t in range(T):
            with mg.scope(f"t{t}"):
                xh = mg.concat([x[:, t, :], h], axis=1)
                r = mg.sigmoid(xh @ W["r"])
                z = mg.sigmoid(xh @ W["z"])
                n = mg.tanh(mg.concat([x[:, t, :], r * h], axis=1) @ W["n"])
                h = (1 - z) * n + z * h
                r.name, z.name, n.name, h.name = "r", "z", "n", "h"
    loss = h.sum()
    loss.name = "loss"
    return loss


class Regressor(mg.nn.Module):
    """An LSTM and a linear head on its last output: the shape of the arithmetic models."""

    def __init__(self, hidden, layers, rng):
        self.lstm = LSTM(2, hidden, layers, rng=rng)
        self.head = mg.nn.Linear(hidden, 1, rng=rng)


class Built(NamedTuple):
    model: mg.nn.Module
    x: mg.Tensor
    loss: mg.Tensor


def lstm_loss(T=4, layers=1, *, hidden=3, batch=1, seed=0, x_grad=False, head=False):
    """A ``models.LSTM`` (D = 2) over T steps and a loss of its last step's output, so the
    gradient has to travel back through every step. Returns ``Built(model, x, loss)``.

    ``head=False``: the loss is sum(out_T ** 2) and ``model`` is the LSTM.
    ``head=True``: ``model`` is a ``Regressor`` whose LSTM runs in ``mg.scope("lstm")``,
    and the loss is the MSE of its head against a random target.
    """
    rng = np.random.default_rng(seed)
    if head:
        model = Regressor(hidden, layers, rng)
        x = mg.Tensor(rng.normal(size=(batch, T, 2)), requires_grad=x_grad, name="x")
        with mg.scope("lstm"):
            out, _ = model.lstm(x)
        prediction = model.head(out[:, -1, :])
        loss = mg.nn.mse_loss(prediction, mg.Tensor(rng.normal(size=(batch, 1)), name="target"))
    else:
        model = LSTM(2, hidden, layers, rng=rng)
        x = mg.Tensor(rng.normal(size=(batch, T, 2)), requires_grad=x_grad, name="x")
        out, _ = model(x)
        loss = (out[:, -1, :] ** 2).sum()
    loss.name = "loss"
    return Built(model, x, loss)
