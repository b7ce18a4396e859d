"""The network of the binary arithmetic lessons, and what is about it: prediction, exact
match, checkpoints that know which pairs the model never saw.

An LSTM (or GRU, RNN) reads one pair of bits per step and a linear head turns each step's
output into one logit: the bit of the result at that step. The pairs, the split and the
bit encoding are data: ``minigrad.models.data.arithmetic``. Training lives in the
example scripts (``examples/binary_addition.py``), in plain sight.
"""
import json

import numpy as np

import minigrad as mg
from minigrad import models
from minigrad.models.data.arithmetic import compute, encode, from_bits

CELLS = ("lstm", "gru", "rnn")


# -- the model ---------------------------------------------------------------------------

class ArithmeticModel(mg.nn.Module):
    """A recurrent network over the bit pairs and a linear head: one logit per bit.
    ``cell``: ``"lstm"``, ``"gru"`` or ``"rnn"`` (``models.LSTM``, ``GRU``, ``RNN``),
    kept under its own name: parameters ``lstm.l0.weight``, ..., drawn in that scope."""

    def __init__(self, hidden_size, *, cell="lstm", num_layers=1, rng=None,
                 dtype=np.float64):
        self.hidden_size = mg.nn.positive_int("ArithmeticModel", "hidden_size", hidden_size)
        self.num_layers = mg.nn.positive_int("ArithmeticModel", "num_layers", num_layers)
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
        self.cell, self.dtype = cell, np.dtype(dtype)
        setattr(self, cell, models.recurrent(cell, 2, hidden_size, num_layers, rng=rng,
                                             dtype=dtype))
        self.head = mg.nn.Linear(hidden_size, 1, rng=rng, dtype=dtype)

    def forward(self, x, state=None):
        """x (N, T, 2) -> logits (N, T, 1). ``state`` is the network's initial state
        (``(h0, c0)`` for the LSTM, ``h0`` for the others), or None for zeros."""
        if not isinstance(x, mg.Tensor):
            x = mg.Tensor(np.asarray(x, dtype=self.dtype))
        with mg.scope(self.cell):
            out, _ = getattr(self, self.cell)(x, state)
        return self.head(out)

    def extra_repr(self):
        return f"cell={self.cell!r}, hidden_size={self.hidden_size}, num_layers={self.num_layers}"


def noisy_state(model, n, scale, rng):
    """A random initial state for ``n`` sequences, entries N(0, scale^2); None for 0.

    Why: from a zero start, an LSTM trained on 8 bits meets only the states eight steps
    reach; on longer numbers its cell state drifts off them and bits flip. A random start
    teaches it to read the carry from a neighbourhood of states: over ten seeds, 32-bit
    exact match went from 68-100% to 99.95-100% (scale 0.3). Tests start from zero."""
    if not scale:
        return None
    shape = (model.num_layers, n, model.hidden_size)
    h0 = mg.Tensor(rng.normal(0.0, scale, shape).astype(model.dtype))
    if model.cell != "lstm":
        return h0
    return h0, mg.Tensor(rng.normal(0.0, scale, shape).astype(model.dtype))


def predict(model, task, a, b, bits, chunk=256):
    """The model's results for the pairs (a, b) as uint64, under ``no_grad``, in chunks of
    256 pairs: each array stays in the CPU cache (2-3x faster than one batch of 2,000)."""
    results = []
    with mg.no_grad():
        for start in range(0, len(a), chunk):
            x, _ = encode(task, a[start:start + chunk], b[start:start + chunk], bits)
            results.append(from_bits(model(x).data[:, :, 0] > 0))
    return np.concatenate(results) if results else np.zeros(0, dtype=np.uint64)


def accuracy(model, task, a, b, bits):
    """Fraction of pairs whose every result bit is right (exact match)."""
    return float(np.mean(predict(model, task, a, b, bits) == compute(task, a, b)))


# -- checkpoints -------------------------------------------------------------------------

def checkpoint(model, task, bits, seed, **settings):
    """The model's parameters plus its configuration (JSON text as bytes under
    ``"config"``), for ``mg.save``. Task, bits and seed rebuild the split: a reload then
    knows which pairs the model never saw. ``settings``: e.g. the training flags."""
    config = dict(settings, task=task, bits=bits, seed=seed, cell=model.cell,
                  hidden_size=model.hidden_size, num_layers=model.num_layers)
    return dict(model.state_dict(), config=np.frombuffer(json.dumps(config).encode(), np.uint8))


def read_config(state):
    """The configuration stored by ``checkpoint``; ValueError when there is none. Reads
    the older layout too (integer arrays ``config.task``, ``config.bits``, ...; an LSTM)."""
    if "config" in state:
        return json.loads(bytes(np.asarray(state["config"], dtype=np.uint8)).decode())
    keys = ("config.task", "config.hidden_size", "config.num_layers", "config.bits",
            "config.seed")
    if not all(k in state for k in keys):
        raise ValueError("not an arithmetic model checkpoint: it has no configuration")
    config = {k[len("config."):]: int(np.asarray(state[k]).item()) for k in keys[1:]}
    return dict(config, task=bytes(np.asarray(state["config.task"], np.uint8)).decode(),
                cell="lstm")


def restore(state):
    """``(model, config)`` from a ``checkpoint`` dict (e.g. ``mg.load(path)``);
    ValueError when the configuration is missing or the weights do not fit it."""
    config = read_config(state)
    weights = {k: v for k, v in state.items() if not k.startswith("config")}
    dtype = weights["head.weight"].dtype if "head.weight" in weights else np.float64
    model = ArithmeticModel(config["hidden_size"], cell=config["cell"],
                            num_layers=config["num_layers"], dtype=dtype)
    model.load_state_dict(weights)
    return model, config


def load_model(path, task):
    """``(model, config)`` saved at ``path`` by an example script; ValueError when the file
    is not such a checkpoint or holds a model of another task."""
    model, config = restore(mg.load(path))
    if config["task"] != task:
        raise ValueError(f"{path} holds a model trained on {config['task']}, not {task}")
    return model, config
