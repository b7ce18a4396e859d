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
"""
import numpy as np

import minigrad as mg
from minigrad.nn import Module, Parameter, positive_int, uniform

__all__ = ["LSTMCell", "LSTM"]


def _as_tensor(owner, what, value, dtype):
    """``value`` as a Tensor of the model's dtype.

    Arrays and lists are converted (a float64 batch fed to a float32 model becomes
    float32, so the model's dtype holds end to end). A Tensor is used as it is, so that
    gradients reach it, and must therefore already have the model's dtype: numpy would
    otherwise silently promote the whole computation, parameter gradients included.
    """
    if isinstance(value, mg.Tensor):
        if value.dtype != dtype:
            raise ValueError(f"{owner}: {what} has dtype {value.dtype}, expected the "
                             f"model's dtype {np.dtype(dtype)}")
        return value
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{owner}: {what} must be numeric, got an array of dtype "
                         f"{array.dtype}")
    return mg.Tensor(array.astype(dtype, copy=False))


def _state_pair(owner, state):
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        got = f"a {type(state).__name__} of length {len(state)}" \
            if isinstance(state, (tuple, list)) else f"a {type(state).__name__}"
        raise ValueError(f"{owner}: state must be a pair (h, c) or None, got {got}")
    return state


class LSTMCell(Module):
    """One LSTM step: ``h, c = cell(x_t, (h_prev, c_prev))``.

    ``x_t`` is (N, input_size); ``h_prev`` and ``c_prev`` are (N, hidden_size), or the
    state is None for zeros. Parameters: ``weight`` (input_size + hidden_size,
    4 * hidden_size) and ``bias`` (4 * hidden_size,), gate blocks in the order i, f, g, o
    (see the module docstring). Both start U(-1/sqrt(H), 1/sqrt(H)), as in PyTorch.
    """

    def __init__(self, input_size, hidden_size, *, rng=None, dtype=np.float64):
        self.input_size = positive_int("LSTMCell", "input_size", input_size)
        self.hidden_size = positive_int("LSTMCell", "hidden_size", hidden_size)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"LSTMCell: dtype must be a float type, got {self.dtype}")
        D, H = self.input_size, self.hidden_size
        bound = 1.0 / np.sqrt(H)
        self.weight = Parameter(uniform((D + H, 4 * H), bound, rng, self.dtype))
        self.bias = Parameter(uniform((4 * H,), bound, rng, self.dtype))

    def forward(self, x_t, state=None):
        """Validate, then take one step; returns the new ``(h, c)``."""
        x_t = _as_tensor("LSTMCell", "input", x_t, self.dtype)
        if x_t.ndim != 2 or x_t.shape[1] != self.input_size:
            raise ValueError(f"LSTMCell: expected input of shape (N, {self.input_size}), "
                             f"got {x_t.shape}")
        expected = (x_t.shape[0], self.hidden_size)
        if state is None:
            h_prev = mg.Tensor(np.zeros(expected, self.dtype))
            c_prev = mg.Tensor(np.zeros(expected, self.dtype))
        else:
            h_prev, c_prev = _state_pair("LSTMCell", state)
            h_prev = _as_tensor("LSTMCell", "h_prev", h_prev, self.dtype)
            c_prev = _as_tensor("LSTMCell", "c_prev", c_prev, self.dtype)
            for name, t in (("h_prev", h_prev), ("c_prev", c_prev)):
                if t.shape != expected:
                    raise ValueError(f"LSTMCell: expected {name} of shape {expected} "
                                     f"(N, hidden_size), got {t.shape}")
        return self.step(x_t, h_prev, c_prev)

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
        text = f"input_size={self.input_size}, hidden_size={self.hidden_size}"
        return text if self.dtype == np.float64 else f"{text}, dtype={self.dtype}"


class LSTM(Module):
    """A stack of ``num_layers`` LSTM cells run over a batch-first sequence.

    ``out, (h_n, c_n) = lstm(x, state=None)`` with ``x`` (N, T, input_size) as a Tensor
    or array; ``state`` is ``(h0, c0)``, each (num_layers, N, H), or None for zeros.
    ``out`` (N, T, H) holds the last layer's h at every step; ``h_n`` and ``c_n``
    (num_layers, N, H) the final state of every layer. The module keeps no state between
    calls: pass ``(h_n.detach(), c_n.detach())`` back in to continue a sequence with
    truncated backpropagation through time.

    The cells are attributes ``l0``, ``l1``, ..., so parameters are named
    ``l0.weight``, ``l0.bias``, ... Layer k > 0 reads the previous layer's per-step
    outputs directly rather than slicing them back out of ``out``.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, *, rng=None, dtype=np.float64):
        self.input_size = positive_int("LSTM", "input_size", input_size)
        self.hidden_size = positive_int("LSTM", "hidden_size", hidden_size)
        self.num_layers = positive_int("LSTM", "num_layers", num_layers)
        self.dtype = np.dtype(dtype)
        for k in range(self.num_layers):
            size = self.input_size if k == 0 else self.hidden_size
            setattr(self, f"l{k}", LSTMCell(size, self.hidden_size, rng=rng, dtype=dtype))

    def cells(self):
        """The layers, bottom first."""
        return [getattr(self, f"l{k}") for k in range(self.num_layers)]

    def forward(self, x, state=None):
        x, state = self._check(x, state)
        N, T, _ = x.shape
        H = self.hidden_size
        h_last, c_last = [], []
        steps = None  # the layer below's h at every step
        for k, cell in enumerate(self.cells()):
            with mg.scope(f"l{k}"):
                if state is None:
                    h = mg.Tensor(np.zeros((N, H), self.dtype), name="h0")
                    c = mg.Tensor(np.zeros((N, H), self.dtype), name="c0")
                else:
                    h, c = state[0][k], state[1][k]
                outputs = []
                for t in range(T):
                    with mg.scope(f"t{t}"):
                        x_t = x[:, t, :] if k == 0 else steps[t]
                        h, c = cell.step(x_t, h, c)
                    outputs.append(h)
            h_last.append(h)
            c_last.append(c)
            steps = outputs
        out = mg.stack(steps, axis=1)
        return out, (mg.stack(h_last, axis=0), mg.stack(c_last, axis=0))

    def _check(self, x, state):
        """All input checks, before any op runs: errors say what was expected and got."""
        x = _as_tensor("LSTM", "input", x, self.dtype)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"LSTM: expected batch-first input of shape "
                             f"(N, T, {self.input_size}), got {x.shape}")
        if x.shape[1] == 0:
            raise ValueError(f"LSTM: expected a sequence of at least one step, got input "
                             f"of shape {x.shape} (T = 0)")
        if state is None:
            return x, None
        h0, c0 = _state_pair("LSTM", state)
        expected = (self.num_layers, x.shape[0], self.hidden_size)
        pair = []
        for name, value in (("h0", h0), ("c0", c0)):
            value = _as_tensor("LSTM", name, value, self.dtype)
            if value.shape != expected:
                raise ValueError(f"LSTM: expected {name} of shape {expected} "
                                 f"(num_layers, N, hidden_size), got {value.shape}")
            pair.append(value)
        return x, tuple(pair)

    # -- PyTorch interchange -----------------------------------------------------------
    def _torch_shapes(self):
        """key -> shape of ``torch.nn.LSTM(input_size, hidden_size, num_layers)``'s state."""
        H = self.hidden_size
        shapes = {}
        for k, cell in enumerate(self.cells()):
            shapes[f"weight_ih_l{k}"] = (4 * H, cell.input_size)
            shapes[f"weight_hh_l{k}"] = (4 * H, H)
            shapes[f"bias_ih_l{k}"] = (4 * H,)
            shapes[f"bias_hh_l{k}"] = (4 * H,)
        return shapes

    def torch_state_dict(self):
        """The parameters as ``torch.nn.LSTM(batch_first=True).state_dict()`` lays them out.

        ``weight_ih_l{k}`` is the transposed input rows of our weight, ``weight_hh_l{k}``
        the transposed hidden rows; the gate order is already PyTorch's. Our one bias
        goes to ``bias_ih_l{k}`` and ``bias_hh_l{k}`` is zeros: PyTorch only ever uses
        their sum, so nothing is lost. Arrays are fresh copies in the model's dtype;
        ``torch.from_numpy`` (or ``torch.tensor``) turns them into a loadable dict.
        """
        state = {}
        for k, cell in enumerate(self.cells()):
            D = cell.input_size
            w = cell.weight.data
            state[f"weight_ih_l{k}"] = np.ascontiguousarray(w[:D].T)
            state[f"weight_hh_l{k}"] = np.ascontiguousarray(w[D:].T)
            state[f"bias_ih_l{k}"] = cell.bias.data.copy()
            state[f"bias_hh_l{k}"] = np.zeros_like(cell.bias.data)
        return state

    def load_torch_state_dict(self, state):
        """Load a ``torch.nn.LSTM`` state dict (arrays, or CPU torch tensors).

        ``bias_ih + bias_hh`` becomes our bias. Every key and shape is checked first; a
        missing or unexpected key (e.g. ``weight_hr_l0`` of a projected LSTM, or the
        ``_reverse`` keys of a bidirectional one) or a wrong shape raises ``ValueError``
        naming the key and the shapes, and the model is left unchanged.
        """
        shapes = self._torch_shapes()
        problems = [f"missing key {key!r} (expected shape {shape})"
                    for key, shape in shapes.items() if key not in state]
        problems += [f"unexpected key {key!r}" for key in state if key not in shapes]
        arrays = {}
        for key, shape in shapes.items():
            if key not in state:
                continue
            array = np.asarray(state[key])
            if array.shape != shape:
                problems.append(f"wrong shape for {key!r}: expected {shape}, "
                                f"got {array.shape}")
            elif array.dtype.kind not in "biuf":
                problems.append(f"{key!r} must be numeric, got dtype {array.dtype}")
            arrays[key] = array
        if problems:
            raise ValueError("LSTM.load_torch_state_dict: " + "; ".join(problems))
        for k, cell in enumerate(self.cells()):
            weight = np.concatenate([arrays[f"weight_ih_l{k}"].T,
                                     arrays[f"weight_hh_l{k}"].T], axis=0)
            bias = (arrays[f"bias_ih_l{k}"].astype(cell.dtype)
                    + arrays[f"bias_hh_l{k}"].astype(cell.dtype))
            np.copyto(cell.weight.data, weight, casting="unsafe")
            np.copyto(cell.bias.data, bias, casting="unsafe")

    def extra_repr(self):
        text = (f"input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"num_layers={self.num_layers}")
        return text if self.dtype == np.float64 else f"{text}, dtype={self.dtype}"
