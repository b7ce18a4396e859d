"""The gated recurrent unit (Cho et al. 2014), from minigrad's primitive ops.

One step is PyTorch's ``torch.nn.GRU``, gates in its order r, z, n::

    gx = x_t @ W_ih + b_ih                    W_ih: (D, 3H)   the input's part
    gh = h_{t-1} @ W_hh + b_hh                W_hh: (H, 3H)   the recurrent part
    r = sigmoid(gx_r + gh_r)                  reset gate
    z = sigmoid(gx_z + gh_z)                  update gate
    n = tanh(gx_n + r * gh_n)                 candidate
    h_t = (1 - z) * n + z * h_{t-1}

Unlike the LSTM and the RNN, the input and recurrent parts need separate matmuls and
biases: the reset gate multiplies the recurrent part of the candidate *including its
bias* ``b_hn``, so ``b_hn`` cannot be folded into ``b_in``. That is PyTorch's (and
cuDNN's) form; the original paper applies r to h before the matmul.

Where the LSTM has a separate cell state, the GRU's h is its memory: with z near 1,
``h_t`` is ``h_{t-1}`` and the gradient passes back through ``z * h_{t-1}`` unchanged.

The input checks, the unrolling over layers and steps and the PyTorch interchange are
shared with ``LSTM`` and ``RNN`` (``models/recurrent.py``).
"""
import numpy as np

import minigrad as mg
from minigrad.nn import Parameter, copy_into, uniform

from .recurrent import Recurrent, RecurrentCell

__all__ = ["GRUCell", "GRU"]


class GRUCell(RecurrentCell):
    """One GRU step: ``h = cell(x_t, h_prev)``, ``x_t`` (N, input_size), ``h_prev``
    (N, hidden_size) or None for zeros.

    Parameters ``weight_ih`` (input_size, 3H), ``weight_hh`` (H, 3H), ``bias_ih`` and
    ``bias_hh`` (3H,), column blocks r, z, n, all U(-1/sqrt(H), 1/sqrt(H)) as in
    PyTorch. They are PyTorch's four tensors, with the weights transposed so that they
    apply as ``x @ W`` like ``Linear``.
    """

    state_names = ("h",)
    gates = 3

    def __init__(self, input_size, hidden_size, *, rng=None, dtype=np.float64):
        super().__init__(input_size, hidden_size, dtype=dtype)
        D, H = self.input_size, self.hidden_size
        bound = 1.0 / np.sqrt(H)
        self.weight_ih = Parameter(uniform((D, 3 * H), bound, rng, self.dtype))
        self.weight_hh = Parameter(uniform((H, 3 * H), bound, rng, self.dtype))
        self.bias_ih = Parameter(uniform((3 * H,), bound, rng, self.dtype))
        self.bias_hh = Parameter(uniform((3 * H,), bound, rng, self.dtype))

    def step(self, x_t, h_prev):
        H = self.hidden_size
        gx = x_t @ self.weight_ih + self.bias_ih
        gh = h_prev @ self.weight_hh + self.bias_hh
        r = mg.sigmoid(gx[:, :H] + gh[:, :H])
        z = mg.sigmoid(gx[:, H:2 * H] + gh[:, H:2 * H])
        n = mg.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
        h = (1 - z) * n + z * h_prev
        for tensor, name in ((gx, "gx"), (gh, "gh"), (r, "r"), (z, "z"), (n, "n"), (h, "h")):
            tensor.name = name
        return (h,)

    def torch_arrays(self):
        return (np.ascontiguousarray(self.weight_ih.data.T),
                np.ascontiguousarray(self.weight_hh.data.T),
                self.bias_ih.data.copy(), self.bias_hh.data.copy())

    def load_torch_arrays(self, weight_ih, weight_hh, bias_ih, bias_hh):
        for param, array in ((self.weight_ih, weight_ih.T), (self.weight_hh, weight_hh.T),
                             (self.bias_ih, bias_ih), (self.bias_hh, bias_hh)):
            copy_into(param, array)


class GRU(Recurrent):
    """A stack of ``num_layers`` GRU cells over a batch-first sequence.

    ``out, h_n = gru(x, h0=None)``: ``x`` (N, T, input_size), ``h0`` and ``h_n``
    (num_layers, N, H), ``out`` (N, T, H) the last layer's h at every step.
    """

    cell_class = GRUCell

    def __init__(self, input_size, hidden_size, num_layers=1, *, rng=None,
                 dtype=np.float64):
        super().__init__(input_size, hidden_size, num_layers, rng=rng, dtype=dtype)

    def forward(self, x, h0=None):
        out, (h_n,) = self.run(x, h0)
        return out, h_n
