"""An LSTM written only with minigrad's primitive ops.

There is no backward pass in this file, and none anywhere in ``models/``. One step of
the cell is a concat, one matmul, a bias add, four slices, three sigmoids, two tanhs,
three multiplies and an add. ``LSTM`` unrolls that step over the sequence, so the
forward pass leaves behind an ordinary graph of about fifteen nodes per time step, and
memory grows linearly with the sequence length.
Backpropagation through time is then nothing special: it is the engine's generic
reverse sweep over that unrolled graph. The gradient that reaches ``c_{t-1}`` through
``f_t * c_{t-1}`` (the "constant error carousel") is simply the multiply op's backward,
and the gradients from every step into the shared weight add up because the weight is
one leaf used T times. Each step runs inside ``mg.scope("l{k}")`` / ``mg.scope("t{t}")``,
so a drawing of the graph shows one box per layer and time step, with the gates visible.

The equations, per step, with z the pre-activations of all four gates side by side::

    z = [x_t, h_{t-1}] @ W + b           W: (D + H, 4H), b: (4H,)
    i = sigmoid(z[:, 0H:1H])             input gate
    f = sigmoid(z[:, 1H:2H])             forget gate
    g = tanh(z[:, 2H:3H])                candidate cell value
    o = sigmoid(z[:, 3H:4H])             output gate
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

Libraries and textbooks disagree on the order of the four column blocks, which is the
usual reason two "identical" LSTMs give different numbers. Ours is PyTorch's:

    ================================  =============  ================================
    source                            block order    name of the tanh block
    ================================  =============  ================================
    minigrad (this file), PyTorch     i, f, g, o     g
    Keras ``LSTMCell``                i, f, c, o     c  (same order as PyTorch)
    cs231n ``lstm_step_forward``      i, f, o, g     g
    TensorFlow 1 ``BasicLSTMCell``    i, j, f, o     j  (plus ``forget_bias`` on f)
    ONNX ``LSTM`` operator            i, o, f, c     c
    "Deep Learning from Scratch 2"    f, g, i, o     g
    ================================  =============  ================================

The layout differs too: we keep one weight (D + H, 4H) applied as ``x @ W`` and one
bias, where PyTorch keeps ``weight_ih`` (4H, D), ``weight_hh`` (4H, H) applied as
``x @ W.T`` and two biases that are always added together. ``LSTM.torch_state_dict`` and
``LSTM.load_torch_state_dict`` convert between the two without loss.

The input checks, the unrolling over layers and steps and the PyTorch interchange are
shared with ``GRU`` and ``RNN`` (``models/recurrent.py``); this file is the LSTM step.
"""
import numpy as np

import minigrad as mg
from minigrad.nn import Parameter, uniform

from .recurrent import ConcatLayoutCell, Recurrent

__all__ = ["LSTMCell", "LSTM"]


class LSTMCell(ConcatLayoutCell):
    """One LSTM step: ``h, c = cell(x_t, (h_prev, c_prev))``.

    ``x_t`` is (N, input_size); ``h_prev`` and ``c_prev`` are (N, hidden_size), or the
    state is None for zeros. Parameters: ``weight`` (input_size + hidden_size,
    4 * hidden_size) and ``bias`` (4 * hidden_size,), gate blocks in the order i, f, g, o
    (see the module docstring). Both start U(-1/sqrt(H), 1/sqrt(H)), as in PyTorch.

    ``forget_bias`` is added to the forget gate's block of the bias at initialisation.
    Why: with the default init the forget gate starts near sigmoid(0) = 0.5, so the cell
    state, and the gradient flowing back along it (``dc_{t-1} = f * dc_t``), halves at
    every step: after 100 steps almost nothing of an early input is left to learn from.
    A bias of 1 opens the gate to sigmoid(1) = 0.73 on average, so the cell starts by
    remembering and gradients reach far back from the first update (Gers, Schmidhuber
    and Cummins 2000; Jozefowicz, Zaremba and Sutskever 2015 recommend 1.0). It is an
    initial value only, trained like the rest of the bias, and part of the bias in the
    PyTorch layout.
    """

    state_names = ("h", "c")
    gates = 4

    def __init__(self, input_size, hidden_size, *, forget_bias=0.0, rng=None,
                 dtype=np.float64):
        super().__init__(input_size, hidden_size, dtype=dtype)
        if not isinstance(forget_bias, (int, float, np.integer, np.floating)) \
                or isinstance(forget_bias, bool) or not np.isfinite(forget_bias):
            raise ValueError(f"LSTMCell: forget_bias must be a finite number, got "
                             f"{forget_bias!r}")
        self.forget_bias = float(forget_bias)
        D, H = self.input_size, self.hidden_size
        bound = 1.0 / np.sqrt(H)
        self.weight = Parameter(uniform((D + H, 4 * H), bound, rng, self.dtype))
        bias = uniform((4 * H,), bound, rng, self.dtype)
        bias[H:2 * H] += self.forget_bias
        self.bias = Parameter(bias)

    def step(self, x_t, h_prev, c_prev):
        """The step itself, on Tensors already checked (``LSTM`` checks once per call)."""
        H = self.hidden_size
        z = mg.concat([x_t, h_prev], axis=1) @ self.weight + self.bias
        i = mg.sigmoid(z[:, :H])
        f = mg.sigmoid(z[:, H:2 * H])
        g = mg.tanh(z[:, 2 * H:3 * H])
        o = mg.sigmoid(z[:, 3 * H:])
        c = f * c_prev + i * g
        h = o * mg.tanh(c)
        # Names cost nothing and let a drawing of the graph say which gate is which.
        for tensor, name in ((z, "z"), (i, "i"), (f, "f"), (g, "g"), (o, "o"), (c, "c"), (h, "h")):
            tensor.name = name
        return h, c

    def extra_repr(self):
        text = super().extra_repr()
        return text if not self.forget_bias else f"{text}, forget_bias={self.forget_bias:g}"


class LSTM(Recurrent):
    """A stack of ``num_layers`` LSTM cells run over a batch-first sequence.

    ``out, (h_n, c_n) = lstm(x, state=None)`` with ``x`` (N, T, input_size) as a Tensor
    or array; ``state`` is ``(h0, c0)``, each (num_layers, N, H), or None for zeros.
    ``out`` (N, T, H) holds the last layer's h at every step; ``h_n`` and ``c_n``
    (num_layers, N, H) the final state of every layer. The module keeps no state between
    calls: pass ``(h_n.detach(), c_n.detach())`` back in to continue a sequence with
    truncated backpropagation through time.

    ``forget_bias`` (default 0, as in PyTorch) opens every layer's forget gate at
    initialisation; 1.0 is the usual choice for long sequences (see ``LSTMCell``).
    Parameters are named ``l0.weight``, ``l0.bias``, ``l1.weight``, ...
    """

    cell_class = LSTMCell

    def __init__(self, input_size, hidden_size, num_layers=1, *, forget_bias=0.0,
                 rng=None, dtype=np.float64):
        super().__init__(input_size, hidden_size, num_layers, rng=rng, dtype=dtype,
                         forget_bias=forget_bias)
        self.forget_bias = self.l0.forget_bias

    def forward(self, x, state=None):
        out, (h_n, c_n) = self.run(x, state)
        return out, (h_n, c_n)

    def extra_repr(self):
        text = super().extra_repr()
        return text if not self.forget_bias else f"{text}, forget_bias={self.forget_bias:g}"
