"""The backward sweep, recorded once for the pictures of it (``explore``, ``animate``).

``record(root, caller)`` runs the backward sweep from ``root`` under
``mg.record_backward()``, keeps the order in which the engine ran each op's backward and
the gradients it produced, and puts every ``.grad`` back as it was. The result is a
``Sweep``: per tensor what it is and when its gradient was complete, per leaf each
contribution as it arrived, summarised (statistics and a small heatmap) so that a page
stays small whatever the batch size. Tensors are referred to by their position in the
topological order, as the drawings' ``node_of`` are.
"""
import base64
import math
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import numpy as np

from ..context import record_backward
from ..nn import Parameter
from ..tensor import topological_order
from ..timesteps import TimeSteps, norm, step_of
from .labels import shown
from .style import NO_GRAD_FILL, grad_colour, is_dark, log_range, tensor_role

MAX_CELLS = 24  # heatmaps: at most this many rows and columns of block means


class Entry(NamedTuple):
    """One op's backward, as the engine ran it."""
    tensor: int  # the tensor the op made
    norm: object  # of that tensor's complete gradient (a float, or 'nan', 'inf', '-inf')
    inputs: list  # [input index, norm of the contribution sent to it]
    step: Optional[str]  # 't3' for an op made in time step 3, None outside the steps


class Arrival(NamedTuple):
    """A contribution reaching a leaf (a parameter, the input)."""
    entry: int  # the sweep entry that sent it
    step: Optional[str]  # the time step of that entry's op
    step_norm: object  # norm of the sum of that step's contributions so far
    so_far: dict  # summary of the leaf's gradient so far (the sum of all arrivals), "fill"
    contribution: dict  # summary of this contribution


@dataclass
class Record:
    """What the pictures show of one tensor."""
    name: Optional[str]
    scope: str
    shape: list
    dtype: str
    role: str  # 'parameter', 'input', 'output' or 'intermediate' (style.tensor_role)
    leaf: bool
    op: Optional[str]
    detail: Optional[str]
    value: dict  # summary of its data
    done: Optional[int] = None  # the entry after which its gradient is complete (non-leaf)
    grad: Optional[dict] = None  # summary of that gradient, with its "fill" (non-leaf)
    arrivals: list = field(default_factory=list)  # [Arrival] (leaf)

    def grad_norm_at(self, k):
        """The norm of its gradient once entry k ran, or None: a non-leaf's is complete
        when its op's backward runs, a leaf's is the sum of what arrived so far."""
        if not self.leaf:
            return None if self.done is None or self.done > k else finite(self.grad["norm"])
        arrived = [a for a in self.arrivals if a.entry <= k]
        return finite(arrived[-1].so_far["norm"]) if arrived else None

    def page(self):
        """As the page's script reads it."""
        found = {key: getattr(self, key) for key in ("name", "scope", "shape", "dtype",
                                                       "role", "leaf", "op", "detail",
                                                       "value")}
        if self.leaf:
            found["arrivals"] = [list(a) for a in self.arrivals]
        else:
            found["done"], found["grad"] = self.done, self.grad
        return found


@dataclass
class Sweep:
    """The recorded backward sweep from ``root`` (see ``record``)."""
    order: list  # the graph's tensors, in topological order
    entries: list  # [Entry], in the order the engine ran them
    tensors: list  # [Record], indexed like ``order``
    parameters: list  # indices of the parameters (else of the leaves needing a gradient)
    states: list  # per state key ('lstm/l0/h'): {"layer", "name", "points": [[t, i, k]]}
    grad_range: tuple  # log10 (low, high) over every norm the timeline shows

    def place(self, k):
        """(layer scope, step number) of entry k's op; (None, None) outside the steps."""
        return step_of(self.order[self.entries[k].tensor].scope)


def sweep_order(root, caller):
    """The topological order of ``root``'s graph, once ``root`` is known to have a sweep:
    a one-element tensor that requires grad, whose graph is still there. ``caller`` names
    the function in error messages. (Callers check the drawing's size with this order
    before ``record`` runs the sweep, which costs far more than the check.)"""
    if root.data.size != 1:
        raise ValueError(f"{caller} needs a one-element root (a loss) to start the backward "
                         f"sweep from, got a tensor of shape {root.shape}")
    order = topological_order(root)  # first: a loss without a graph (mg.compile) says so
    if not root.requires_grad:
        raise ValueError(f"{caller} needs a root that requires grad: nothing in its "
                         "computation has requires_grad=True, so there is no sweep to show")
    return order


def record(root, caller, order=None):
    """The ``Sweep`` from ``root``, a one-element tensor whose graph is still there
    (``order``: its ``sweep_order``, when the caller has it already).

    The graph is retained, and every tensor's ``.grad`` is put back as it was, so that a
    picture of the sweep changes nothing an optimizer would see. ``caller`` names the
    function in error messages.
    """
    if order is None:
        order = sweep_order(root, caller)
    saved = [t.grad for t in order]
    try:
        for t in order:
            t.grad = None
        with record_backward() as recorded:
            root.backward(retain_grads=True)
        return _summarised(root, order, list(recorded))
    finally:
        for t, grad in zip(order, saved):
            t.grad = grad


def _summarised(root, order, recorded):
    """The ``Sweep`` of the engine's ``record_backward`` entries."""
    position = {id(t): i for i, t in enumerate(order)}
    entries, done = [], {}
    running = {}  # leaf index -> sum of the contributions so far (float64)
    by_step = {}  # (leaf index, step label) -> sum of that step's contributions so far
    arrivals = {}  # leaf index -> [Arrival]
    for k, step in enumerate(recorded):
        index = position[id(step.tensor)]
        done[index] = k
        label = step_label(step.tensor.scope)
        inputs, received = [], {}
        for tensor, grad in step.input_grads:
            if grad is None:
                continue
            i = position[id(tensor)]
            grad = np.asarray(grad, dtype=np.float64)
            inputs.append([i, number(norm(grad))])
            if tensor.op is None:  # a leaf: it holds the sum of what it received so far
                received[i] = received[i] + grad if i in received else grad
        for i, grad in received.items():
            running[i] = running[i] + grad if i in running else grad
            by_step[i, label] = by_step[i, label] + grad if (i, label) in by_step else grad
            arrivals.setdefault(i, []).append(Arrival(
                k, label, number(norm(by_step[i, label])), summary(running[i]),
                summary(grad)))
        entries.append(Entry(index, number(norm(step.grad)), inputs, label))

    grads = {position[id(s.tensor)]: s.grad for s in recorded}
    tensors = []
    for i, t in enumerate(order):
        record = Record(
            name=None if t.name is None else shown(t.name), scope=shown(t.scope),
            shape=list(t.shape), dtype=str(t.dtype), role=tensor_role(t, root),
            leaf=t.op is None, op=None if t.op is None else t.op.label,
            detail=None if t.op is None else (t.op.detail() or None), value=summary(t.data))
        if t.op is not None:
            record.done = done.get(i)
            record.grad = summary(grads[i]) if i in grads else None
        else:
            record.arrivals = arrivals.get(i, [])
        tensors.append(record)

    # The fill scale spans every norm the timeline shows: complete gradients, and the
    # leaves' sums so far (non-finite norms take the darkest colour, outside the range).
    norms = [e.norm for e in entries]
    norms += [a.so_far["norm"] for rows in arrivals.values() for a in rows]
    grad_range = log_range(n for n in norms if isinstance(n, float)) or (0.0, 0.0)
    for gradient in [r.grad for r in tensors if r.grad] + [a.so_far for rows in
                                                          arrivals.values() for a in rows]:
        gradient["fill"] = grad_colour(finite(gradient["norm"]), grad_range) or NO_GRAD_FILL
        gradient["dark"] = is_dark(gradient["fill"])  # white text reads better on it
    parameters = [i for i, t in enumerate(order) if isinstance(t, Parameter)] or \
        [i for i, t in enumerate(order) if t.op is None and t.requires_grad]
    return Sweep(order, entries, tensors, parameters, _state_series(root, order, done),
                 grad_range)


def summary(array):
    """Statistics and a downsampled heatmap of ``array``: what the page shows of a tensor.

    Heatmap cells are block means, coded as signed bytes on a scale symmetric around 0
    (``scale`` is the largest magnitude); -128 marks a cell that is not finite.
    """
    a = np.asarray(array, dtype=np.float64)
    if a.size == 0:
        return {"min": None, "max": None, "mean": None, "norm": 0.0, "heat": None}
    stats = {"min": number(a.min()), "max": number(a.max()), "mean": number(a.mean()),
             "norm": number(norm(a))}
    grid = a.reshape(1, 1) if a.ndim == 0 else a.reshape(1, -1) if a.ndim == 1 \
        else a.reshape(-1, a.shape[-1])
    grid = _block_means(_block_means(grid, 0), 1)
    finite_cells = np.isfinite(grid)
    scale = float(np.abs(grid[finite_cells]).max()) if finite_cells.any() else 0.0
    codes = np.full(grid.shape, -128, dtype=np.int8)
    if scale > 0:
        codes[finite_cells] = np.rint(grid[finite_cells] / scale * 127).astype(np.int8)
    else:
        codes[finite_cells] = 0
    stats["heat"] = {"rows": grid.shape[0], "cols": grid.shape[1], "scale": scale,
                     "codes": base64.b64encode(codes.tobytes()).decode("ascii")}
    return stats


def _block_means(grid, axis):
    """``grid`` with ``axis`` cut into at most MAX_CELLS nearly equal blocks, averaged."""
    n = grid.shape[axis]
    if n <= MAX_CELLS:
        return grid
    edges = np.linspace(0, n, MAX_CELLS + 1).astype(int)
    sums = np.add.reduceat(grid, edges[:-1], axis=axis)
    counts = np.diff(edges).reshape((-1, 1) if axis == 0 else (1, -1))
    return sums / counts


def number(x):
    """A float for JSON; 'nan', 'inf' or '-inf' as strings, which JSON cannot hold."""
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def finite(x):
    """A norm as ``number`` wrote it, back as a float (the strings as infinity: what a
    picture shows of a NaN is the darkest colour, like an infinity)."""
    return x if isinstance(x, float) else math.inf


def step_label(scope):
    """'t3' for a tensor made in time step 3 (of any layer), None outside time steps."""
    _, step = step_of(scope)
    return None if step is None else f"t{step}"


def _state_series(root, order, done):
    """The recurrent state of each layer, per time step: what dLoss/dh_t is taken of.

    ``minigrad.timesteps`` finds it from the graph (what step t hands to step t + 1),
    the same tensors ``mg.step_grad_norms`` measures. Returns one series per state key
    ('lstm/l0/h'): [{"layer", "name", "points": [[t, tensor index, sweep entry]]}].
    """
    structure = TimeSteps(root, order)
    position = {id(t): i for i, t in enumerate(order)}
    series = {}
    for layer, steps in structure.layers.items():
        for step in steps:
            state = structure.state_of(step)
            for key, tensor in zip(structure.state_keys(step, state), state):
                i = position[id(tensor)]
                entry = series.setdefault(key, {"layer": layer, "name": key.rsplit("/", 1)[-1],
                                                "points": []})
                entry["points"].append([step.t, i, done.get(i)])
    return list(series.values())
