"""What the recurrent models (``LSTM``, ``GRU``, ``RNN``) have in common.

A recurrent model is two things: a *cell*, which takes one step (``x_t`` and the previous
state in, the new state out), and a *stack*, which runs ``num_layers`` cells over a
batch-first sequence. Only the cell differs between the three models, so this file holds
everything else once:

- ``RecurrentCell``: sizes, dtype and input checks of one step (the dtype rule of every
  module, ``mg.nn.as_input``), ``cell(x_t, state)`` for a single step, and the
  conversion of one layer to and from PyTorch's layout.
- ``Recurrent``: the stack. It checks the whole input once, then unrolls: layer k runs
  inside ``mg.scope(f"l{k}")`` and each of its steps inside ``mg.scope(f"t{t}")``, so a
  drawing shows one box per layer and step, and ``mg.step_grad_norms`` finds the state
  tensor of every step (``"l0/h"``, ``"l0/c"``). It also writes and reads the PyTorch
  state dict (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``).

A cell declares its state (``("h", "c")`` for the LSTM, ``("h",)`` for the others) and
how many H-sized blocks PyTorch stacks in its weights (4, 3 or 1); it names every new
state tensor after its entry in ``state_names`` so that tools can find it.
"""
import numpy as np

import minigrad as mg
from minigrad.context import numpy_errors_ignored
from minigrad.nn import Module, as_input, copy_into, float_dtype, positive_int

__all__ = ["RecurrentCell", "ConcatLayoutCell", "Recurrent"]


def _state_parts(owner, names, state, *, suffix, expected, layout, dtype):
    """The state as a tuple of Tensors of ``dtype``, one per name (a single tensor for a
    one-tensor state, a pair for the LSTM's (h, c)), each checked to have shape
    ``expected``; errors call them ``<name><suffix>`` ("h_prev", "c0") and say the
    ``layout`` of that shape."""
    if len(names) == 1:
        state = (state,)
    elif not isinstance(state, (tuple, list)) or len(state) != len(names):
        got = f"a {type(state).__name__} of length {len(state)}" \
            if isinstance(state, (tuple, list)) else f"a {type(state).__name__}"
        raise ValueError(f"{owner}: state must be a pair ({', '.join(names)}) or None, "
                         f"got {got}")
    parts = []
    for name, value in zip(names, state):
        value = as_input(owner, f"{name}{suffix}", value, dtype)
        if value.shape != expected:
            raise ValueError(f"{owner}: expected {name}{suffix} of shape {expected} "
                             f"({layout}), got {value.shape}")
        parts.append(value)
    return tuple(parts)


class RecurrentCell(Module):
    """One step of a recurrent model. Subclasses set the class attributes and write
    ``step``, ``torch_arrays`` and ``load_torch_arrays``.

    ``cell(x_t, state=None)`` with ``x_t`` (N, input_size) returns the new state: one
    (N, hidden_size) tensor, or a tuple for a cell with several state tensors. None
    means a zero state.
    """

    state_names = ("h",)
    gates = 1  # H-sized blocks stacked in PyTorch's weight_ih / weight_hh

    def __init__(self, input_size, hidden_size, *, dtype=np.float64):
        owner = type(self).__name__
        self.input_size = positive_int(owner, "input_size", input_size)
        self.hidden_size = positive_int(owner, "hidden_size", hidden_size)
        self.dtype = float_dtype(owner, dtype)

    def forward(self, x_t, state=None):
        """Validate, then take one step."""
        owner = type(self).__name__
        x_t = as_input(owner, "input", x_t, self.dtype)
        if x_t.ndim != 2 or x_t.shape[1] != self.input_size:
            raise ValueError(f"{owner}: expected input of shape (N, {self.input_size}), "
                             f"got {x_t.shape}")
        expected = (x_t.shape[0], self.hidden_size)
        if state is None:
            parts = [mg.Tensor(np.zeros(expected, self.dtype)) for _ in self.state_names]
        else:
            parts = _state_parts(owner, self.state_names, state, suffix="_prev",
                                 expected=expected, layout="N, hidden_size", dtype=self.dtype)
        new = self.step(x_t, *parts)
        return new[0] if len(self.state_names) == 1 else new

    def step(self, x_t, *state):
        """One step on Tensors already checked; returns the new state as a tuple."""
        raise NotImplementedError

    def torch_arrays(self):
        """This layer as PyTorch keeps it: ``(weight_ih, weight_hh, bias_ih, bias_hh)``,
        shapes (gates*H, D), (gates*H, H), (gates*H,), (gates*H,); fresh arrays."""
        raise NotImplementedError

    def load_torch_arrays(self, weight_ih, weight_hh, bias_ih, bias_hh):
        """The inverse of ``torch_arrays`` (shapes already checked by the caller)."""
        raise NotImplementedError

    def extra_repr(self):
        text = f"input_size={self.input_size}, hidden_size={self.hidden_size}"
        return text if self.dtype == np.float64 else f"{text}, dtype={self.dtype}"


class ConcatLayoutCell(RecurrentCell):
    """A cell whose step starts ``[x_t, h_prev] @ weight + bias``: one matmul for the
    input and the recurrent part together (the LSTM and the plain RNN).

    ``weight`` is (input_size + hidden_size, gates*H), applied as ``x @ W`` like
    ``Linear``; PyTorch keeps the two row blocks transposed as ``weight_ih`` and
    ``weight_hh``, and two biases that it only ever adds. Our one bias goes to
    ``bias_ih``, and ``bias_hh`` is exported as zeros: nothing is lost either way.
    """

    def torch_arrays(self):
        D = self.input_size
        w = self.weight.data
        return (np.ascontiguousarray(w[:D].T), np.ascontiguousarray(w[D:].T),
                self.bias.data.copy(), np.zeros_like(self.bias.data))

    def load_torch_arrays(self, weight_ih, weight_hh, bias_ih, bias_hh):
        weight = np.concatenate([weight_ih.T, weight_hh.T], axis=0)
        with np.errstate(over="ignore"):  # float16: a sum too large is inf, silently
            bias = bias_ih.astype(self.dtype) + bias_hh.astype(self.dtype)
        copy_into(self.weight, weight)
        copy_into(self.bias, bias)


class Recurrent(Module):
    """A stack of ``num_layers`` cells of class ``cell_class`` over a batch-first sequence.

    Subclasses set ``cell_class`` and write ``forward`` in their own signature, calling
    ``self.run(x, state)``. The cells are attributes ``l0``, ``l1``, ..., so parameters
    are named ``l0.weight``, ... Layer k > 0 reads the per-step outputs of layer k-1
    directly rather than slicing them back out of a stacked tensor. The model keeps no
    state between calls: pass the detached final state back in to continue a sequence
    (truncated backpropagation through time).
    """

    cell_class = RecurrentCell

    def __init__(self, input_size, hidden_size, num_layers=1, *, rng=None,
                 dtype=np.float64, **cell_options):
        owner = type(self).__name__
        self.input_size = positive_int(owner, "input_size", input_size)
        self.hidden_size = positive_int(owner, "hidden_size", hidden_size)
        self.num_layers = positive_int(owner, "num_layers", num_layers)
        self.dtype = float_dtype(owner, dtype)
        for k in range(self.num_layers):
            size = self.input_size if k == 0 else self.hidden_size
            setattr(self, f"l{k}", self.cell_class(size, self.hidden_size, rng=rng,
                                                   dtype=dtype, **cell_options))

    def cells(self):
        """The layers, bottom first."""
        return [getattr(self, f"l{k}") for k in range(self.num_layers)]

    @property
    def state_names(self):
        return self.cell_class.state_names

    def run(self, x, state):
        """Check, then unroll. Returns ``out`` (N, T, H) and the final state as a tuple
        with one (num_layers, N, H) tensor per state name."""
        x, initial = self._check(x, state)
        N, T, _ = x.shape
        zeros = np.zeros((N, self.hidden_size), self.dtype)
        final = [[] for _ in self.state_names]
        steps = None  # the layer below's h at every step
        for k, cell in enumerate(self.cells()):
            with mg.scope(f"l{k}"), numpy_errors_ignored():  # once, not at every op
                if initial is None:
                    state = tuple(mg.Tensor(zeros, name=f"{name}0")
                                  for name in self.state_names)
                else:
                    state = tuple(part[k] for part in initial)
                    for part, given, name in zip(state, initial, self.state_names):
                        part.name = given.name or f"{name}0"  # what drawings label it
                outputs = []
                for t in range(T):
                    with mg.scope(f"t{t}"):
                        state = cell.step(x[:, t, :] if k == 0 else steps[t], *state)
                    outputs.append(state[0])
            for collected, part in zip(final, state):
                collected.append(part)
            steps = outputs
        return mg.stack(steps, axis=1), tuple(mg.stack(parts, axis=0) for parts in final)

    def _check(self, x, state):
        """All input checks, before any op runs: errors say what was expected and got."""
        owner = type(self).__name__
        x = as_input(owner, "input", x, self.dtype)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"{owner}: expected batch-first input of shape "
                             f"(N, T, {self.input_size}), got {x.shape}")
        if x.shape[1] == 0:
            raise ValueError(f"{owner}: expected a sequence of at least one step, got "
                             f"input of shape {x.shape} (T = 0)")
        if state is None:
            return x, None
        expected = (self.num_layers, x.shape[0], self.hidden_size)
        return x, _state_parts(owner, self.state_names, state, suffix="0", expected=expected,
                               layout="num_layers, N, hidden_size", dtype=self.dtype)

    # -- PyTorch interchange -----------------------------------------------------------
    def _torch_shapes(self):
        """key -> shape in the state dict of the PyTorch module of the same sizes."""
        G, H = self.cell_class.gates, self.hidden_size
        shapes = {}
        for k, cell in enumerate(self.cells()):
            shapes[f"weight_ih_l{k}"] = (G * H, cell.input_size)
            shapes[f"weight_hh_l{k}"] = (G * H, H)
            shapes[f"bias_ih_l{k}"] = (G * H,)
            shapes[f"bias_hh_l{k}"] = (G * H,)
        return shapes

    def torch_state_dict(self):
        """The parameters as the PyTorch module's ``state_dict()`` lays them out
        (``torch.nn.LSTM`` / ``GRU`` / ``RNN`` with ``batch_first=True``).

        Arrays are fresh copies in the model's dtype; ``{k: torch.from_numpy(v)}`` makes a
        dict the PyTorch module loads. How each cell maps its own parameters is in its
        class docstring.
        """
        state = {}
        for k, cell in enumerate(self.cells()):
            for key, array in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
                                  cell.torch_arrays()):
                state[f"{key}_l{k}"] = array
        return state

    def load_torch_state_dict(self, state):
        """Load the PyTorch module's state dict (arrays, or CPU torch tensors).

        Every key and shape is checked first; a missing or unexpected key (e.g.
        ``weight_hr_l0`` of a projected LSTM, or the ``_reverse`` keys of a bidirectional
        model) or a wrong shape raises ``ValueError`` naming the key and the shapes, and
        the model is left unchanged.
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
            raise ValueError(f"{type(self).__name__}.load_torch_state_dict: "
                             + "; ".join(problems))
        for k, cell in enumerate(self.cells()):
            cell.load_torch_arrays(*(arrays[f"{key}_l{k}"] for key in
                                     ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))

    def extra_repr(self):
        text = (f"input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"num_layers={self.num_layers}")
        return text if self.dtype == np.float64 else f"{text}, dtype={self.dtype}"
