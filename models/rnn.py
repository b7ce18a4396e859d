"""The plain ("Elman") recurrent network, from minigrad's primitive ops.

One step is PyTorch's ``torch.nn.RNN``::

    h_t = tanh([x_t, h_{t-1}] @ W + b)        W: (D + H, H), b: (H,)

(or relu instead of tanh). It is the LSTM's step without gates and without a cell state,
and that is exactly why it forgets: the gradient reaching ``h_{t-1}`` from ``h_t`` is
``(dh_t * tanh'(.)) @ W_hh^T``, a product of T such factors over T steps, which shrinks
(or grows) geometrically. ``examples/gradient_flow.py`` measures it.

The input checks, the unrolling over layers and steps and the PyTorch interchange are
shared with ``LSTM`` and ``GRU`` (``models/recurrent.py``).
"""
import numpy as np

import minigrad as mg
from minigrad.nn import Parameter, uniform

from .recurrent import ConcatLayoutCell, Recurrent

__all__ = ["RNNCell", "RNN"]

NONLINEARITIES = {"tanh": mg.tanh, "relu": mg.relu}


def _nonlinearity(owner, name):
    if name not in NONLINEARITIES:
        raise ValueError(f"{owner}: nonlinearity must be one of {sorted(NONLINEARITIES)}, "
                         f"got {name!r}")
    return name


class RNNCell(ConcatLayoutCell):
    """One RNN step: ``h = cell(x_t, h_prev)``, ``x_t`` (N, input_size), ``h_prev``
    (N, hidden_size) or None for zeros.

    Parameters ``weight`` (input_size + hidden_size, hidden_size) and ``bias``
    (hidden_size,), U(-1/sqrt(H), 1/sqrt(H)) as in PyTorch; the same one-matmul layout
    as ``LSTMCell``, so the PyTorch conversion is shared.
    """

    state_names = ("h",)
    gates = 1

    def __init__(self, input_size, hidden_size, *, nonlinearity="tanh", rng=None,
                 dtype=np.float64):
        super().__init__(input_size, hidden_size, dtype=dtype)
        self.nonlinearity = _nonlinearity("RNNCell", nonlinearity)
        D, H = self.input_size, self.hidden_size
        bound = 1.0 / np.sqrt(H)
        self.weight = Parameter(uniform((D + H, H), bound, rng, self.dtype))
        self.bias = Parameter(uniform((H,), bound, rng, self.dtype))

    def step(self, x_t, h_prev):
        a = mg.concat([x_t, h_prev], axis=1) @ self.weight + self.bias
        h = NONLINEARITIES[self.nonlinearity](a)
        a.name, h.name = "a", "h"
        return (h,)

    def extra_repr(self):
        text = super().extra_repr()
        return text if self.nonlinearity == "tanh" else f"{text}, nonlinearity='relu'"


class RNN(Recurrent):
    """A stack of ``num_layers`` RNN cells over a batch-first sequence.

    ``out, h_n = rnn(x, h0=None)``: ``x`` (N, T, input_size), ``h0`` and ``h_n``
    (num_layers, N, H), ``out`` (N, T, H) the last layer's h at every step.
    ``nonlinearity`` is ``"tanh"`` (default) or ``"relu"``, as in ``torch.nn.RNN``.
    """

    cell_class = RNNCell

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", *,
                 rng=None, dtype=np.float64):
        self.nonlinearity = _nonlinearity("RNN", nonlinearity)
        super().__init__(input_size, hidden_size, num_layers, rng=rng, dtype=dtype,
                         nonlinearity=nonlinearity)

    def forward(self, x, h0=None):
        out, (h_n,) = self.run(x, h0)
        return out, h_n

    def extra_repr(self):
        text = super().extra_repr()
        return text if self.nonlinearity == "tanh" else f"{text}, nonlinearity='relu'"
