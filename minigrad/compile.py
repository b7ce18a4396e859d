"""``mg.compile``: record a training step once, then replay it as a flat list of numpy calls.

The eager engine makes a Tensor and an op object per node, a pending gradient per node,
and a fresh array for every output: that bookkeeping is what lets a learner see and draw
the graph, and at small sizes it costs as much as the arithmetic. A training step builds
the same graph every time, so ``step = mg.compile(fn)`` pays for it once:

1. **Capture.** The first call for an argument signature runs ``fn`` with the normal
   engine while every op call is written to a tape (also ops that need no gradient, such
   as ops on the input alone, so they are replayed rather than frozen into constants),
   then the normal ``backward()``. That call's results are the engine's own.
2. **Plan.** One walk over the tape in order (forward) and in reverse (backward, the
   same users-before-inputs order as ``Tensor.backward``) asks each op for its forward
   and backward as numpy calls writing into planned arrays with ``out=`` (its
   ``replay_forward`` / ``replay_backward`` in ``ops.py``). The walk decides once
   whether a gradient is written or added; a gradient that passes through unchanged is
   the same array (a view), not a copy; a weight used at every time step gets its
   gradient from one matrix product over all steps after the loop; a concat's gradient
   is computed only for the columns that need it; and arrays are shared by values whose
   lifetimes do not overlap.
3. **Replay.** Later calls copy the arguments into their planned arrays and run the
   calls. No Tensor, op or graph is made, and none is kept.

What the replay cannot see: anything ``fn`` computes from argument *values* in plain
numpy (``mask = x > 0`` and then ``mg.where(mask, ...)``, a Python ``if`` on a value, a
loop whose length depends on the data) was frozen at capture. ``check=True`` runs the
engine beside every replay and raises where the two differ. See ``docs/compile.md``.
"""
import functools
import heapq
import inspect
import math

import numpy as np

from . import nn
from .context import ignore_numpy_errors, restore_numpy_errors, thread_state
from .ops import broadcast_axes
from .tensor import Tensor

__all__ = ["compile", "CompiledStep"]


def compile(fn, *, check=False):  # noqa: A001  (mirrors torch.compile)
    """Return ``step``: ``step(*args)`` computes ``fn(*args)``'s loss and adds every reached
    Parameter's gradient into its ``.grad``, as ``fn(*args).backward()`` would.

    ``fn`` returns a scalar loss, or ``(loss, *extras)`` (e.g. the final state of a
    truncated-BPTT chunk); ``step`` returns the same, as Tensors without a graph.
    Arguments may be arrays, Tensors, (nested) tuples or lists of them, and other
    values; a new signature (an array's shape or dtype, another value) is captured anew.
    Inside ``no_grad()`` a step replays the forward alone (an evaluation) and computes
    no gradient, as ``fn`` itself would there. ``check=True`` runs the engine beside every replay and raises ``RuntimeError`` naming
    the first op whose value or gradient differs.
    """
    if not callable(fn):
        raise TypeError(f"mg.compile takes a function, got {type(fn).__name__}")
    return CompiledStep(fn, check=bool(check))


class CompiledStep:
    """The callable ``mg.compile`` returns; one plan per argument signature.

    A plan keeps the arrays of its step between calls, so only the ``MAX_PLANS`` most
    recently used are kept (a data set whose batches take many shapes would otherwise
    keep one step's memory per shape); an older signature is captured again."""

    MAX_PLANS = 8

    def __init__(self, fn, check=False):
        self.fn = fn
        self.check = check
        self.plans = {}
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args):
        leaves, key = _flatten(args)
        key = (thread_state.settings.grad_enabled,) + key  # no_grad(): the forward only
        plan = self.plans.get(key)
        if plan is not None and not plan.still_valid():
            plan = None
        if plan is None:
            result, plan = capture(self.fn, args, leaves, keep_values=self.check)
            self.plans.pop(key, None)
            self.plans[key] = plan
            while len(self.plans) > self.MAX_PLANS:
                del self.plans[next(iter(self.plans))]  # the least recently used
            return result
        self.plans[key] = self.plans.pop(key)  # now the most recently used
        if self.check:
            return plan.checked_replay(self.fn, args, leaves)
        return plan.replay(leaves)

    def __repr__(self):
        return f"<compiled {getattr(self.fn, '__qualname__', self.fn)}, " \
               f"{len(self.plans)} signature{'s' * (len(self.plans) != 1)}>"


# -- arguments -----------------------------------------------------------------------------

def _flatten(args):
    """The arrays and Tensors among ``args`` (nested tuples and lists walked), and the
    signature key: shape and dtype of each array, the value of everything else, and
    which arrays are one and the same (a plan made for ``step(x, x)`` reads one)."""
    leaves, key, seen = [], [], {}
    stack = [args]
    while stack:
        item = stack.pop()
        if isinstance(item, (Tensor, np.ndarray)):
            same = seen.setdefault(id(_leaf_array(item)), len(leaves))
            leaves.append(item)
            if isinstance(item, Tensor):
                key.append(("tensor", item.shape, item.dtype.str, item.requires_grad, same))
            else:
                key.append(("array", item.shape, item.dtype.str, same))
        elif isinstance(item, (tuple, list)):
            key.append((type(item).__name__, len(item)))
            stack.extend(reversed(item))
        else:
            try:
                hash(item)
            except TypeError:
                raise TypeError(f"mg.compile: an argument of type {type(item).__name__} is "
                                f"neither an array, a Tensor, a tuple/list of them, nor a "
                                f"hashable value (a new value is a new signature)") from None
            key.append(("value", type(item), item))
    return leaves, tuple(key)


def _leaf_array(leaf):
    return leaf.data if isinstance(leaf, Tensor) else leaf


# -- capture -------------------------------------------------------------------------------

class Tape(list):
    """Every op call made while ``fn`` runs, in order: ``(op, inputs, output)``, also
    the calls the engine does not record (no input needs a gradient, or ``no_grad()``).
    ``Op.__call__`` hands its calls here while ``thread_state.settings.capture`` is set.
    ``casts`` maps id(array) to (array, source) for each cast ``tensor.astype`` made."""

    def __init__(self):
        super().__init__()
        self.casts = {}

    def record(self, op, inputs):
        settings = thread_state.settings
        settings.capture = None
        try:
            result = op(*inputs)
        finally:
            settings.capture = self
        self.append((op, inputs, result))
        return result


def capture(fn, args, leaves, keep_values=False):
    """Run ``fn`` once with the engine, taping every op; plan it; run its backward.
    Returns ``(result, plan)``: the engine's own result for this first call."""
    settings = thread_state.settings
    if settings.capture is not None:
        raise RuntimeError("mg.compile: a compiled step called inside another one's capture")
    tape, loss, extras = run_taped(fn, args)
    planner = Planner(tape, leaves, loss, extras, reuse=not keep_values,
                      arg_names=_argument_names(fn, args, leaves))
    planner.check_outside()
    if loss.requires_grad:  # the engine's own gradients for this first call
        loss.backward()
    plan = planner.build()
    return _result(loss.data, [e.data for e in extras], bool(extras)), plan


def _argument_names(fn, args, leaves):
    """fn's parameter names for its array arguments, when each argument is one array."""
    if len(args) != len(leaves):
        return ()
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return ()
    return tuple(names[:len(args)]) if len(names) >= len(args) else ()


def run_taped(fn, args):
    """``fn(*args)`` with every op call written to a tape: ``(tape, loss, extras)``."""
    settings = thread_state.settings
    tape = Tape()
    settings.capture = tape
    try:
        returned = fn(*args)
    finally:
        settings.capture = None
    return (tape,) + _outputs(returned)


def _outputs(returned):
    """``fn``'s result as (loss, [extras]); a clear error for anything else."""
    parts = returned if isinstance(returned, tuple) else (returned,)
    if not parts or not all(isinstance(p, Tensor) for p in parts):
        raise TypeError(f"mg.compile: fn must return a scalar loss Tensor, or a tuple "
                        f"(loss, *extra Tensors); got {_describe(returned)}")
    loss, extras = parts[0], list(parts[1:])
    if loss.data.size != 1:
        raise ValueError(f"mg.compile: fn's loss must be a scalar (one element), got shape "
                         f"{loss.shape}; return (loss, *extras) to get other tensors out")
    return loss, extras


def _describe(value):
    if isinstance(value, tuple):
        return "a tuple of " + ", ".join(type(v).__name__ for v in value)
    return f"a {type(value).__name__}"


class _NoGraph:
    """The op of a compiled step's result: a graph that is not there. Walking it (a
    drawing, a second backward) raises the engine's released-graph error with this
    explanation."""

    __slots__ = ()
    inputs = None
    label = "a compiled step"
    no_graph = ("this tensor was returned by a step made with mg.compile, which keeps no "
                "graph (its gradients are already in the parameters' .grad). To draw the "
                "graph or run backward yourself, call the eager function: fn(...)")


def _result(loss, extras, as_tuple):
    """The loss (which says, when drawn, that it has no graph) and the extras (plain
    tensors, e.g. a state to pass into the next call), all fresh copies."""
    loss = Tensor(np.array(loss, copy=True))
    loss.op = _NO_GRAPH
    if not as_tuple:
        return loss
    return (loss,) + tuple(Tensor(np.array(e, copy=True)) for e in extras)


_NO_GRAPH = _NoGraph()


# -- the plan ------------------------------------------------------------------------------

class Value:
    """An array of the plan. ``array`` is set for fixed ones (constants, parameters, the
    arguments' arrays); a planned one gets its memory when the plan is allocated, either
    its own or, with ``base`` set, as the view ``how(base's array)``."""

    __slots__ = ("shape", "dtype", "array", "base", "how", "slot", "first", "last", "name")

    def __init__(self, shape, dtype, array=None, base=None, how=None, name=""):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.array, self.base, self.how, self.slot = array, base, how, None
        self.first = self.last = None
        self.name = name

    def probe(self):
        """A throwaway array laid out as this value will be (to ask numpy about views)."""
        if self.array is not None:
            return np.empty_like(self.array)
        if self.base is None:
            return np.empty(self.shape, self.dtype)
        return self.how(self.base.probe())

    def root(self):
        value = self
        while value.base is not None:
            value = value.base
        return value

    def resolve(self):
        """The array (after ``allocate``)."""
        if self.array is None:
            self.array = self.how(self.base.resolve())
        return self.array

    def __repr__(self):
        return f"<value {self.name} {self.shape} {self.dtype}>"


class Planner:
    """Turns a tape into a ``Plan``: values, the calls that compute them, their memory.

    ``values`` and ``grads`` map a tensor (by id; the tape keeps it alive) to the value of
    its data and of its gradient. ``arrivals`` counts the contributions a gradient will
    get: the first writes, the others add. Parameter gradients are ``deferred`` and summed
    after the backward calls, which is where one matrix product replaces T.
    """

    def __init__(self, tape, leaves, loss, extras, reuse=True, arg_names=()):
        self.tape, self.leaves, self.loss, self.extras = tape, leaves, loss, extras
        self.arg_names = arg_names
        self.reuse = reuse
        self.calls = []          # [func, args, kwargs], in order
        self.values = {}
        self.grads = {}
        self.arrivals = {}
        self.regions = {}        # id(slice output) -> its gradient: a view of the input's
        self.columns = {}        # id(concat output) -> the columns of its gradient read
        self.deferred = {}       # id(parameter) -> [(kind, ...)]
        self.waiting = {}        # id(tensor) -> a first contribution not yet written
        self.origins = []        # per call: (pass, op label, scope), for listing the plan
        self.origin = ("forward", "argument", "", 0)  # (pass, op, scope, which op)
        self.params = {}         # id(parameter) -> (tensor, its data array at capture)
        self.variable = set()    # ids of tensors whose value can change between calls
        self.by_data = {}        # id(array) -> value: tensors' data, for detach() & co.
        self.bound = []          # (op, attribute, value with Values in it)
        self.nodes = []          # (op, output tensor, value): replayed ops, in order
        produced = {id(out): entry for entry in tape for out in (entry[2],)}
        self.produced = produced
        self.entries = self._reachable([loss] + extras)

    def _reachable(self, outputs):
        """The tape entries the outputs depend on, in tape order."""
        seen, stack = set(), list(outputs)
        while stack:
            t = stack.pop()
            entry = self.produced.get(id(t))
            if entry is not None and id(t) not in seen:
                seen.add(id(t))
                stack.extend(entry[1])
        return [e for e in self.tape if id(e[2]) in seen]

    def check_outside(self):
        """Refuse a tensor made outside ``fn`` with a graph behind it: eager backward would
        run into that graph, a replay cannot."""
        for op, inputs, out in self.entries:
            for t in inputs:
                if id(t) not in self.produced and t.op is not None and t.requires_grad:
                    raise RuntimeError(
                        f"mg.compile: fn uses a tensor made by {t.op.label} outside fn, "
                        f"with a graph behind it, which a replay cannot backpropagate "
                        f"into. Pass it in as an argument (detached), or compute it in fn")

    # -- building ---------------------------------------------------------------------------
    def build(self):
        """The plan: forward calls, backward calls, parameter gradients, memory."""
        self.classify()
        self._backward()
        self._parameter_gradients()
        return Plan(self)

    def classify(self):
        """Plan the forward calls; ``nodes`` lists the ops replayed (not constants)."""
        self.arg_values = []
        self.arg_ids = {}
        for k, leaf in enumerate(self.leaves):
            array = _leaf_array(leaf)
            value = Value(array.shape, array.dtype, np.empty(array.shape, array.dtype),
                          name=self.arg_names[k] if k < len(self.arg_names) else f"argument {k}")
            self.arg_values.append(value)
            if isinstance(leaf, Tensor):
                self.values[id(leaf)] = value
                self.arg_ids[id(leaf)] = k
                self.variable.add(id(leaf))
        for op, inputs, out in self.entries:
            for t in inputs:
                if id(t) not in self.values:
                    self.values[id(t)] = self._leaf_value(t)
            self._forward(op, inputs, out)
        for t in [self.loss] + self.extras:
            if id(t) not in self.values:
                self.values[id(t)] = self._leaf_value(t)

    def _leaf_value(self, t):
        """What a leaf of the graph is at replay: an argument (or a view or a cast of
        one), a parameter read from its ``.data``, another tensor's data (``detach()``),
        or a constant."""
        found = self.trace(t.data)
        if found is not None:
            if t.requires_grad:
                raise RuntimeError("mg.compile: a leaf that requires grad shares memory with "
                                   "an argument or a tensor of fn; pass the Tensor itself")
            self.variable.add(id(t))
            return found
        if t.requires_grad:
            self.params[id(t)] = (t, t.data)
            self.variable.add(id(t))
            return Value(t.data.shape, t.data.dtype, t.data, name=t.name or "parameter")
        return Value(t.data.shape, t.data.dtype, t.data, name=t.name or "constant")

    def trace(self, array):
        """The value ``array`` is at replay if it is an argument's array, a view of one,
        or a tensor's data already planned; else None (a constant)."""
        for k, leaf in enumerate(self.leaves):
            source = _leaf_array(leaf)
            if array is source:
                return self.arg_values[k]
            if array.base is not None and np.shares_memory(array, source):
                return _view_of(self.arg_values[k], source, array)
        found = self.by_data.get(id(array))
        cast = self.tape.casts.get(id(array))
        if found is None and cast is not None and cast[0] is array:
            source = self.trace(cast[1])  # an argument cast to a module's dtype
            if source is not None:
                found = Value(array.shape, array.dtype, name=f"{source.name} as {array.dtype}")
                self.emit(_cast_into, source, found)
                self.by_data[id(array)] = found
        return found

    # -- forward ----------------------------------------------------------------------------
    def _forward(self, op, inputs, out):
        self._bind_attributes(op)
        if not op.draws_random and not any(id(t) in self.variable for t in inputs):
            # computed from constants only: its captured value is the replay's too
            value = Value(out.data.shape, out.data.dtype, out.data, name="constant")
        else:
            self.variable.add(id(out))
            value = Value(out.data.shape, out.data.dtype,
                          name=out.name or _expression(op, [self.values[id(t)] for t in inputs]))
            self.origin = ("forward", op.label, out.scope, len(self.nodes))
            op.replay_forward(OpPlan(self, op, inputs, out, value))
            self.nodes.append((op, out, value))
        self.values[id(out)] = value
        self.by_data[id(out.data)] = value

    def _bind_attributes(self, op):
        """An op's array attributes (an index, a condition) that are an argument's array
        become the array the replay copies that argument into."""
        for cls in type(op).__mro__:
            for name in getattr(cls, "__slots__", ()):
                if name in ("inputs", "needs_input_grad", "out", "versions"):
                    continue
                value = getattr(op, name, None)
                bound = self._bind(value)
                if bound is not value:
                    self.bound.append((op, name, bound))

    def _bind(self, value):
        if isinstance(value, np.ndarray):
            found = self.trace(value)
            return value if found is None else found
        if type(value) is tuple and any(isinstance(v, np.ndarray) for v in value):
            items = tuple(self._bind(v) for v in value)
            return items if any(isinstance(v, Value) for v in items) else value
        return value

    # -- backward ---------------------------------------------------------------------------
    def _backward(self):
        loss = self.loss
        if not loss.requires_grad:
            return
        reached = {id(loss)}  # the tensors a gradient reaches, counted from the loss
        for op, inputs, out in reversed(self.entries):
            if out.op is op and id(out) in reached:
                for t, needs in zip(inputs, op.needs_input_grad):
                    if needs:
                        reached.add(id(t))
                        self.arrivals[id(t)] = self.arrivals.get(id(t), 0) + 1
        self._plan_slices()
        self._plan_concat_columns()
        ones = np.ones_like(loss.data)
        self.grads[id(loss)] = Value(ones.shape, ones.dtype, ones, name="seed")
        for op, inputs, out in reversed(self.entries):
            grad = self.grads.get(id(out))
            if grad is not None and out.op is op:
                self.origin = ("backward", op.label, out.scope, id(op))
                op.replay_backward(OpPlan(self, op, inputs, out, self.values[id(out)], grad))

    def _plan_slices(self):
        """A tensor whose gradient comes only from disjoint basic slices of it (an LSTM's
        gate pre-activations) gets one gradient array, and each slice's gradient is a
        view into it: the ops after the slices write their gradients in place, and the
        slices' backward has nothing left to do."""
        from .ops import Slice
        self.origin = ("backward", "slice", "", 0)
        slices = {}
        for op, inputs, out in self.entries:
            if type(op) is Slice and op.basic and out.op is op and self.arrivals.get(id(out)):
                slices.setdefault(id(inputs[0]), []).append((op, inputs[0], out))
        for key, found in slices.items():
            source = found[0][1]
            if len(found) != self.arrivals.get(key) or key in self.params \
                    or key in self.arg_ids:
                continue
            cover = np.zeros(source.data.shape, np.int8)
            for op, _, _ in found:
                cover[op.index] += 1
            if cover.max() > 1:
                continue  # overlapping slices: each adds into the whole gradient instead
            grad = Value(source.data.shape, source.data.dtype,
                         name=f"d{self.values[key].name}")
            self.grads[key] = grad
            if cover.min() == 0:
                self.emit(np.copyto, grad, 0)  # where no slice reaches
            for op, _, out in found:
                self.regions[id(out)] = Value(out.data.shape, grad.dtype, base=grad,
                                              how=_indexer(op.view_index()),
                                              name=f"{grad.name}{op.detail()}")

    def _plan_concat_columns(self):
        """A concat along the last axis some of whose parts need no gradient (the x_t
        beside h_{t-1}): its gradient is only needed in the other columns, and the op
        before it (a matmul's backward) computes only those."""
        from .ops import Concat
        for op, inputs, out in self.entries:
            if type(op) is not Concat or out.op is not op or op.axis is None \
                    or self.arrivals.get(id(out)) != 1 or all(op.needs_input_grad):
                continue
            if op.axis % out.data.ndim != out.data.ndim - 1:
                continue
            edges = np.cumsum([0] + [t.data.shape[-1] for t in inputs])
            needed = [k for k, needs in enumerate(op.needs_input_grad) if needs]
            if needed:
                span = slice(int(edges[needed[0]]), int(edges[needed[-1] + 1]))
                self.columns[id(out)] = (span, (op, inputs, out, needed[0])
                                         if len(needed) == 1 else None)

    def target(self, t):
        """(value, mode) for a contribution to ``t``'s gradient: "write" for the first,
        "add" for the others."""
        key = id(t)
        grad = self.grads.get(key)
        if grad is not None:
            return grad, "add"
        grad = self.regions.get(key)
        if grad is None:
            data = self.values[key]
            grad = Value(data.shape, data.dtype, name=f"d{data.name}")
        self.grads[key] = grad
        waiting = self.waiting.pop(key, None)
        if waiting is not None:
            self.emit(np.copyto, grad, waiting)
            return grad, "add"
        return grad, "write"

    def emit(self, func, *args, **kwargs):
        self.calls.append([func, args, kwargs])
        self.origins.append(self.origin)

    def commit(self, t, source):
        """Add ``source`` to ``t``'s gradient (written if first; broadcast up or summed
        down to t's shape as needed)."""
        shape = t.data.shape
        if np.broadcast_shapes(source.shape, shape) != shape:
            reduced = Value(shape, t.data.dtype, name="summed")
            self.emit(_sum_to, source, broadcast_axes(source.shape, shape), reduced)
            source = reduced
        value, mode = self.target(t)
        if mode == "write":
            self.emit(np.copyto, value, source)
        else:
            self.emit(np.add, value, source, value)

    def _parameter_gradients(self):
        """Sum each parameter's deferred contributions. A weight used at every time step
        gets one product of two stacked arrays, [a_1; ...; a_T].T @ [g_1; ...; g_T],
        instead of T small ones, and its bias one sum over all the rows."""
        self.origin = ("after the loop", "parameters", "", 0)
        for key, parts in self.deferred.items():
            t = parts[0][1]
            products = [p for p in parts if p[0] == "matmul"]
            sums = [p for p in parts if p[0] == "rows"]
            terms = []
            if len(products) > 1 and self._stack([p[2] for p in products]) \
                    and self._stack([p[3] for p in products]):
                terms.append((np.matmul, _transposed(_stacked_rows(products[0][2])),
                              _stacked_rows(products[0][3])))
            else:
                terms.extend((np.matmul, _transposed(p[2]), p[3]) for p in products)
            if len(sums) > 1 and self._stack([p[2] for p in sums]):
                rows = _stacked_rows(sums[0][2])
                terms.append((_sum_to, rows, (0,)))
            else:
                terms.extend((_sum_to, p[2], broadcast_axes(p[2].shape, t.data.shape))
                             for p in sums)
            for p in parts:
                if p[0] == "value":
                    terms.append((None, p[2]))
            for func, *args in terms:
                if func is None:
                    self.commit(t, args[0])
                    continue
                value, mode = self.target(t)
                if mode == "write":
                    self.emit(func, *args, value)
                else:
                    scratch = Value(value.shape, value.dtype, name="scratch")
                    self.emit(func, *args, scratch)
                    self.emit(np.add, value, scratch, value)

    def _stack(self, values):
        """Lay ``values`` (planned arrays of one shape) out as the slots of one stacked
        array, if each has memory of its own still to be given, or is that slot already."""
        first = values[0]
        if any(v.shape != first.shape or v.dtype != first.dtype for v in values):
            return False
        if all(v.slot is not None for v in values):
            return all(v.base is first.base and v.slot == i for i, v in enumerate(values))
        if any(v.array is not None or v.base is not None for v in values) \
                or len({id(v) for v in values}) != len(values):
            return False
        stacked = Value((len(values),) + first.shape, first.dtype,
                        name=f"{first.name} (every step)")
        for i, v in enumerate(values):
            v.base, v.slot, v.how = stacked, i, _indexer(i)
        return True


def _view_of(value, source, array):
    """``array``, a view of the argument array ``source``, as a view of ``value``."""
    if array.dtype != source.dtype or not source.flags.c_contiguous:
        raise RuntimeError("mg.compile: fn views an argument of another dtype, or one that "
                           "is not contiguous; pass np.ascontiguousarray(...) instead")
    offset = array.__array_interface__["data"][0] - source.__array_interface__["data"][0]
    shape, strides = array.shape, array.strides

    def how(base):
        return np.ndarray(shape, base.dtype, buffer=base, offset=offset, strides=strides)
    return Value(shape, array.dtype, base=value, how=how, name="view of an argument")


def _indexer(index):
    return lambda a: a[index]


def _transposed(value):
    return Value(value.shape[::-1], value.dtype, base=value, how=np.transpose,
                 name=f"{value.name}.T")


def _stacked_rows(slot):
    """The stacked array that ``slot`` is part of, as a matrix of rows."""
    base = slot.base
    return Value((math.prod(base.shape[:-1]), base.shape[-1]), base.dtype, base=base,
                 how=lambda a: a.reshape(-1, a.shape[-1]), name=base.name)


def _sum_to(source, axes, out):
    """out = source summed over ``axes`` (out has the shape without them, or with 1s)."""
    kept = [1 if k in axes else n for k, n in enumerate(source.shape)]
    np.add.reduce(source, axes, None, out.reshape(kept), True)


def _cast_into(source, out):
    np.copyto(out, source, casting="unsafe")


class OpPlan:
    """What an op's ``replay_forward`` / ``replay_backward`` (in ``ops.py``) plans with.

    ``ins``: the values of the inputs; ``out``: the output's; ``grad``: the output's
    gradient (backward); ``needs[i]``: whether input i gets a gradient. ``call(func,
    *args)`` plans one numpy call, values standing for their arrays.
    """

    def __init__(self, planner, op, inputs, output, out, grad=None):
        self.planner, self.op, self.inputs, self.output = planner, op, inputs, output
        self.ins = [planner.values[id(t)] for t in inputs]
        self.out, self.grad = out, grad
        self.needs = op.needs_input_grad if grad is not None else ()

    @property
    def one(self):
        """1 as a 0-d array of the output's dtype: numpy converts a Python 1 at every
        call, which costs a small ufunc call a quarter of its time."""
        return np.ones((), self.out.dtype)

    def call(self, func, *args, **kwargs):
        """Plan ``func(*args, **kwargs)``; values among them stand for their arrays."""
        self.planner.emit(func, *args, **kwargs)

    def view(self, value, how, name=None):
        """A value that is ``how(array of value)``: a slice, a transpose."""
        probe = value.probe()
        view = how(probe)
        if not isinstance(view, np.ndarray) or view.size and not np.shares_memory(view, probe):
            raise AssertionError(f"{self.op.label}: its replay asked for a view that numpy "
                                 f"makes as a copy")
        return Value(view.shape, value.dtype, base=value, how=how,
                     name=name or f"view of {value.name}")

    def scratch(self, shape, dtype=None):
        return Value(shape, self.out.dtype if dtype is None else dtype, name="scratch")

    def alias_output(self, how):
        """Make the output the view ``how(input 0)``, with no call at all; False when
        numpy would copy instead (reshaping a non-contiguous array)."""
        probe = self.ins[0].probe()
        if not np.shares_memory(how(probe), probe):
            return False
        self.out.base, self.out.how = self.ins[0], how
        if self.output.name is None:
            self.out.name = f"{self.ins[0].name}{self.op.detail()}"
        return True

    def reshaped(self, value, shape):
        """``value`` reshaped: a view when its layout allows, else a copy."""
        how = _reshaper(shape)
        probe = value.probe()
        if np.shares_memory(how(probe), probe):
            return self.view(value, how)
        copy = Value(value.shape, value.dtype, name="contiguous copy")
        self.call(np.copyto, copy, value)
        return self.view(copy, how)

    def rows(self, value):
        """``value`` as a matrix of rows (its leading axes merged)."""
        return self.reshaped(value, (math.prod(value.shape[:-1]), value.shape[-1]))

    transposed = staticmethod(_transposed)

    # -- gradients ----------------------------------------------------------------------------
    def in_place(self):
        """True when the output's gradient is already a view into input 0's (a slice)."""
        return self.planner.regions.get(id(self.output)) is self.grad

    def columns(self, i):
        """``(span, through)`` when input i is a concat along its last axis some of
        whose parts need no gradient: ``span``, the columns of its gradient that are
        read; ``through``, when only one part needs a gradient, a function
        ``through(func, *args)`` giving that part ``func(*args, out)`` straight away (the
        concat then has no backward to run). None when every column is read."""
        found = self.planner.columns.get(id(self.inputs[i]))
        if found is None:
            return None
        span, part = found
        if part is None:
            return span, None
        op, inputs, out, k = part
        concat = OpPlan(self.planner, op, inputs, out, self.planner.values[id(out)], self.grad)
        return span, functools.partial(concat.give, k)

    def target(self, i):
        """(value, mode) of input i's gradient: mode "write" or "add"."""
        return self.planner.target(self.inputs[i])

    def begin(self, i, shape=None):
        """Where to compute input i's contribution: its gradient itself when this is the
        first contribution and has its shape, else a scratch array (``end`` adds it)."""
        t = self.inputs[i]
        shape = t.data.shape if shape is None else tuple(shape)
        key = id(t)
        if shape == t.data.shape and key not in self.planner.params \
                and key not in self.planner.grads and key not in self.planner.waiting:
            return self.planner.target(t)[0]
        return Value(shape, t.data.dtype, name=f"part of d{self.ins[i].name}")

    def end(self, i, value):
        """Finish a contribution begun with ``begin``."""
        t = self.inputs[i]
        if self.planner.grads.get(id(t)) is value:
            return
        self.pass_through(i, value)

    def give(self, i, func, *args, shape=None):
        """Input i's gradient gets ``func(*args, out)`` (written or added, summed down to
        its shape where broadcasting stretched it)."""
        if not self.needs[i]:
            return
        if shape is None:
            shape = np.broadcast_shapes(*(a.shape for a in args if isinstance(a, Value)))
        value = self.begin(i, shape)
        self.call(func, *args, value)
        self.end(i, value)

    def pass_through(self, i, source):
        """Input i's gradient gets ``source`` as it is (an add, a slice, a concat): the
        same array when that is its only contribution, else a copy or an addition."""
        if not self.needs[i]:
            return
        planner, t = self.planner, self.inputs[i]
        key, shape = id(t), t.data.shape
        if key in planner.params:
            kind = "value" if np.broadcast_shapes(source.shape, shape) == shape else "rows"
            planner.deferred.setdefault(key, []).append((kind, t, source))
        elif source.shape != shape or source.dtype != t.data.dtype or key in planner.grads \
                or key in planner.regions:
            planner.commit(t, source)
        elif planner.arrivals.get(key) == 1:
            planner.grads[key] = source  # the very same array: nothing to compute
        elif key in planner.waiting:  # two views: added in one call, never copied first
            grad = Value(shape, source.dtype, name=f"d{planner.values[key].name}")
            planner.grads[key] = grad
            planner.emit(np.add, planner.waiting.pop(key), source, grad)
        else:
            planner.waiting[key] = source

    def matmul_weight(self, i, left, right):
        """Input i's gradient gets ``left.T @ right``; for a parameter this is deferred to
        one product over all its uses."""
        if not self.needs[i]:
            return
        if id(self.inputs[i]) in self.planner.params and len(left.shape) == 2:
            self.planner.deferred.setdefault(id(self.inputs[i]), []).append(
                ("matmul", self.inputs[i], left, right))
        else:
            self.give(i, np.matmul, _transposed(left), right,
                      shape=(left.shape[1], right.shape[1]))

    # -- the engine's own rules, for ops without a replay of their own --------------------
    def eager_forward(self):
        """Replay by calling the op's eager ``forward`` (a fresh array each time, copied
        into the planned one): right for any op, fast for none."""
        self.call(_eager_forward, self.op, tuple(self.ins), self.out)

    def eager_backward(self):
        """Replay by calling the op's eager ``backward`` with stand-ins for its inputs."""
        targets = tuple(Value(t.data.shape, t.data.dtype, name="eager gradient")
                        if needs else None for t, needs in zip(self.inputs, self.needs))
        self.call(_eager_backward, self.op, tuple(self.ins), self.needs, self.grad, targets)
        for i, value in enumerate(targets):
            if value is not None:
                self.pass_through(i, value)


_SYMBOLS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "matmul": "@"}


def _expression(op, ins):
    """A short name for an op's output, for the plan's listing: ``f*c``, ``tanh(c)``."""
    names = [v.name for v in ins]
    if op.label in _SYMBOLS and len(names) == 2:
        text = _SYMBOLS[op.label].join(n if n.isidentifier() or "." in n else f"({n})"
                                       for n in names)
    elif op.label in ("concat", "stack"):
        text = f"{op.label}[{', '.join(names)}]"
    else:
        text = f"{op.label}({', '.join(names)})"
    return text if len(text) <= 16 else op.label


def _describe_call(call):
    """``np.multiply(di, i, out=di)``: a planned call as text, arrays by their names."""
    func, args, kwargs = call
    name = getattr(func, "__name__", type(func).__name__)
    if isinstance(func, np.ufunc) and args and isinstance(args[-1], Value) \
            and len(args) > func.nin:
        kwargs, args = dict(kwargs, out=args[-1]), args[:-1]
    text = [_describe_argument(a) for a in args]
    text += [f"{k}={_describe_argument(v)}" for k, v in kwargs.items()]
    prefix = "np." if getattr(np, name, None) is func else ""
    return f"{prefix}{name}({', '.join(text)})"


def _describe_argument(a):
    if isinstance(a, Value):
        return a.name
    if isinstance(a, tuple):
        return "(" + ", ".join(_describe_argument(b) for b in a) + ")"
    if isinstance(a, np.ndarray):
        return f"{a.item():g}" if a.ndim == 0 else f"array{a.shape}"
    return getattr(a, "label", None) or repr(a)


def _reshaper(shape):
    return lambda a: a.reshape(shape)


class _Stand:
    """Stands for an input Tensor in an op's eager backward, which reads ``.data``."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


def _eager_forward(op, ins, out):
    np.copyto(out, op.forward(*ins), casting="unsafe")


def _eager_backward(op, ins, needs, grad, targets):
    from .ops import IndexedGrad
    op.inputs, op.needs_input_grad = tuple(_Stand(a) for a in ins), needs
    try:
        grads = op.backward(grad)
    finally:
        op.inputs = None
    for g, target in zip(grads, targets):
        if target is None:
            continue
        if type(g) is IndexedGrad:
            target[...] = 0
            g.add_into(target)
        else:
            np.copyto(target, g, casting="unsafe")


class Plan:
    """A captured step ready to replay: the calls with their arrays, where the results
    land, and the parameters whose gradients it adds."""

    def __init__(self, planner):
        grads = planner.grads
        self.params = [(t, data, grads.get(key)) for key, (t, data) in planner.params.items()]
        arg_grads = [(k, grads[key]) for key, k in planner.arg_ids.items()
                     if planner.leaves[k].requires_grad and key in grads]
        loss = planner.values[id(planner.loss)]
        extras = [planner.values[id(e)] for e in planner.extras]
        self.as_tuple = bool(planner.extras)
        kept = [loss] + extras + [g for _, _, g in self.params if g is not None] \
            + [g for _, g in arg_grads]
        if not planner.reuse:  # check=True compares every op's value afterwards
            kept += [value for _, _, value in planner.nodes]
        self.nbytes = allocate(planner.calls, kept, planner.reuse)
        for op, name, bound in planner.bound:  # attributes read by the engine's rules
            object.__setattr__(op, name, _resolved(bound))
        self.calls = [resolve(call) for call in planner.calls]
        self.arg_arrays = [v.array for v in planner.arg_values]
        self.loss, self.extras = loss.resolve(), [e.resolve() for e in extras]
        self.params = [(t, data, None if g is None else g.resolve())
                       for t, data, g in self.params]
        self.arg_grads = [(k, g.resolve()) for k, g in arg_grads]
        self.nodes = [(op.label, out.scope, value.resolve())
                      for op, out, value in planner.nodes]
        self.call_count = len(self.calls)
        self.listing = [origin + (_describe_call(call),)
                        for origin, call in zip(planner.origins, planner.calls)]
        self.replacements = nn.replacements[0]

    def still_valid(self):
        """False when a parameter or its array may have been replaced (``p.data = ...``,
        ``module.weight = Parameter(...)``): then the step is captured anew."""
        return self.replacements == nn.replacements[0] and all(
            t.data is data for t, data, _ in self.params)

    def replay(self, leaves):
        for array, leaf in zip(self.arg_arrays, leaves):
            np.copyto(array, _leaf_array(leaf))
        token = ignore_numpy_errors()  # inf and NaN silently, as in the engine
        try:
            for func, args in self.calls:
                func(*args)
        finally:
            restore_numpy_errors(token)
        for t, _, grad in self.params:  # as backward does: a new array, never an alias
            if grad is not None:
                t.grad = grad.copy() if t.grad is None else t.grad + grad
        for k, grad in self.arg_grads:
            leaf = leaves[k]
            leaf.grad = grad.copy() if leaf.grad is None else leaf.grad + grad
        return _result(self.loss, self.extras, self.as_tuple)

    def checked_replay(self, fn, args, leaves):
        """Run the engine on the same arguments, then the replay; raise RuntimeError
        naming the first op whose value differs, or the parameter whose gradient does."""
        before = [(t, t.grad) for t, _, _ in self.params]
        tape, loss, extras = run_taped(fn, args)
        engine = Planner(tape, leaves, loss, extras)
        if loss.requires_grad:
            loss.backward()
        engine_grads = [t.grad for t, _ in before]
        engine.classify()
        for t, grad in before:
            t.grad = grad
        result = self.replay(leaves)
        try:
            _compare_nodes(self.nodes, engine.nodes)
            for (t, _), theirs in zip(before, engine_grads):
                if not _close(t.grad, theirs):
                    raise RuntimeError(
                        f"mg.compile(check=True): the gradient of {t.name or 'a parameter'} "
                        f"differs between the replay and the engine (largest difference "
                        f"{_difference(t.grad, theirs)}): fn's graph depends on its "
                        f"arguments' values; call fn itself")
        except RuntimeError:
            for t, grad in before:  # a refused step adds nothing to any gradient
                t.grad = grad
            raise
        return result


def _close(a, b):
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return False
    tol = 1e-9 if a.dtype == np.float64 else 1e-4
    scale = np.max(np.abs(b), initial=0.0)
    return bool(np.array_equal(a, b, equal_nan=True)
                or np.all(np.abs(a - b) <= tol * scale))


def _difference(a, b):
    if a is None or b is None:
        return "one of them is None"
    return f"{np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))):.3g}"


def _compare_nodes(planned, engine):
    """Raise RuntimeError naming the first op whose output differs."""
    for k, (op, out, _) in enumerate(engine):
        where = f" in scope '{out.scope}'" if out.scope else ""
        if k >= len(planned) or planned[k][0] != op.label \
                or planned[k][2].shape != out.data.shape:
            had = f"{planned[k][0]} of shape {planned[k][2].shape}" if k < len(planned) \
                else "nothing"
            raise RuntimeError(
                f"mg.compile(check=True): the graph changed at {op.label}{where}: the engine "
                f"ran {op.label} of shape {out.data.shape} where the captured step has "
                f"{had}. fn's graph depends on its arguments' values: call fn itself")
        if not _close(planned[k][2], out.data):
            raise RuntimeError(
                f"mg.compile(check=True): {op.label}{where} gives another value in the "
                f"replay than in the engine (largest difference "
                f"{_difference(planned[k][2], out.data)}): fn computes something from its "
                f"arguments' values that the capture froze (plain numpy on an argument, a "
                f"mask, a Python branch on a value); call fn itself")


# -- memory --------------------------------------------------------------------------------

def allocate(calls, kept, reuse=True):
    """Give every planned value its array. A value lives from the first call that touches
    it to the last (``kept`` ones to the end); with ``reuse``, values whose lifetimes do
    not overlap share memory. Returns the bytes allocated."""
    roots = {}
    for position, (_, args, kwargs) in enumerate(calls):
        for value in _values_in(tuple(args) + tuple(kwargs.values())):
            root = value.root()
            if root.array is None:
                if root.first is None:
                    root.first = position
                    roots[id(root)] = root
                root.last = position
    for value in kept:
        root = value.root()
        if root.array is None:
            if root.first is None:
                root.first = 0
                roots[id(root)] = root
            root.last = len(calls)
    free, busy, total, records = {}, [], 0, {}
    for root in sorted(roots.values(), key=lambda v: v.first):
        while busy and busy[0][0] < root.first:
            _, _, key, record = heapq.heappop(busy)
            if reuse and record[1]:
                free.setdefault(key, []).append(record[0])
        key = (root.dtype.str, math.prod(root.shape))
        ending = _overwritten_input(calls[root.first], root, records) if reuse else None
        if ending is not None:  # an elementwise call writes over an input it is the end of
            record = records[id(ending)]
            record[1] = False  # that memory now belongs to root
            flat = record[0]
        else:
            pool = free.get(key)
            if pool:
                flat = pool.pop()
            else:
                flat = np.empty(key[1], root.dtype)
                total += flat.nbytes
        root.array = flat.reshape(root.shape)
        records[id(root)] = record = [flat, True]
        heapq.heappush(busy, (root.last, id(root), key, record))
    return total


def _overwritten_input(call, root, records):
    """The input of ``call`` whose memory ``root`` (its output) may take: a numpy ufunc
    computes elementwise, so it may write over an input of the same shape and layout
    that nothing reads afterwards (z = m + b over m; c = f*c' + i*g over f*c')."""
    func, args, kwargs = call
    if not isinstance(func, np.ufunc) or kwargs or not args or args[-1] is not root:
        return None
    for value in args[:-1]:
        if isinstance(value, Value) and id(value) in records and records[id(value)][1] \
                and value.last == root.first and value.shape == root.shape \
                and value.dtype == root.dtype and not any(
                    isinstance(other, Value) and other is not value and other.root() is value
                    for other in args):  # (a view of it would be read at other offsets)
            return value
    return None


def _values_in(args):
    for a in args:
        if isinstance(a, Value):
            yield a
        elif type(a) is tuple:
            yield from _values_in(a)


def resolve(call):
    """A planned call as (function, arguments), every value replaced by its array."""
    func, args, kwargs = call
    args = tuple(_resolved(a) for a in args)
    if kwargs:
        func = functools.partial(func, **{k: _resolved(v) for k, v in kwargs.items()})
    return func, args


def _resolved(a):
    if isinstance(a, Value):
        return a.resolve()
    if type(a) is tuple and any(isinstance(b, (Value, tuple)) for b in a):
        return tuple(_resolved(b) for b in a)
    return a
