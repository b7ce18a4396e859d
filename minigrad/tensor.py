"""The value node of the graph, the walk over the graph, and the backward sweep.

A graph has two kinds of object. A ``Tensor`` holds an array and, if an op made it, that
op in ``.op``. An op (see ``ops.py``) holds its input Tensors and whatever its backward
needs, never its output. References therefore only point from later to earlier nodes:
there are no reference cycles, and dropping the root of a graph frees all of it at once.
Backward frees it sooner: each op lets go of its inputs once its own backward has run.
"""
import itertools
import operator

import numpy as np

from .context import SweepStep, thread_state, ignore_numpy_errors, restore_numpy_errors

# Every Tensor gets the next serial number when it is created. An op's inputs always
# exist before its output, so sorting by serial number is a topological order.
_serials = itertools.count()

# How many in-place changes any tensor has had: backward checks an op's saved versions
# only if this grew since the op's forward (see ``Op.check_versions``).
in_place_changes = [0]
UNCHANGED = (0,)  # the version counter of tensors never changed in place nor viewed


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    ``Tensor(data, requires_grad=False, name=None)`` wraps ``np.asarray(data)`` without
    copying it. Integer and bool input becomes float64; float arrays keep their dtype.

    ``_version`` counts the in-place changes (``+=``, ``t[i] = v``, an optimizer's
    ``step()``), as in PyTorch: an op that saves a value for backward notes it, and
    backward refuses a value changed since. The count lives in a one-element list
    (``_counter``) shared by the tensors that view the same memory (``detach()``, and the
    outputs of reshape, transpose and slicing), so a change through one is seen by all;
    until its first change or view a tensor shares the constant ``UNCHANGED`` instead
    (no list for each of the many tensors that never get one). Writes straight into
    ``.data`` are not counted, as in PyTorch.

    ``pending`` is where a backward sweep sums this tensor's gradient until its turn
    (None outside a sweep).
    """

    __slots__ = ("data", "grad", "requires_grad", "name", "op", "scope", "retains_grad",
                 "serial", "_counter", "pending", "__weakref__")
    # Makes ``ndarray + Tensor`` return NotImplemented, so Python calls Tensor.__radd__.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad=False, name=None):
        self._counter = UNCHANGED
        if isinstance(data, Tensor):
            self._counter = data._shared_counter()  # the same memory: the same changes
            data = data.data
        elif isinstance(data, (list, tuple)):
            _refuse_nested_tensors(data)
        array = np.asarray(data)
        if array.dtype.kind in "biu":
            array = astype(array, np.float64)
        elif array.dtype.kind != "f":
            raise TypeError(f"Tensor needs numeric data, got an array of dtype {array.dtype}")
        self.data = array
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self.op = None
        self.scope = thread_state.settings.scope
        self.retains_grad = False
        self.serial = next(_serials)
        self.pending = None

    @classmethod
    def _from_op(cls, data, op, scope):
        """Fast constructor for op outputs: ``data`` is already a float ndarray."""
        t = object.__new__(cls)
        t.data = data
        t.grad = None
        t.requires_grad = op is not None
        t.name = None
        t.op = op
        t.scope = scope
        t.retains_grad = False
        t.serial = next(_serials)
        t._counter = UNCHANGED
        t.pending = None
        return t

    _version = property(lambda self: self._counter[0],
                        doc="How many in-place changes this tensor's memory has had.")

    def _changed_in_place(self):
        """Count one in-place change (the only place versions grow)."""
        self._shared_counter()[0] += 1
        in_place_changes[0] += 1

    def _shared_counter(self):
        """This tensor's version counter as a list another tensor of the same memory can
        share (made now if it was still ``UNCHANGED``)."""
        if self._counter is UNCHANGED:
            self._counter = [0]
        return self._counter

    # -- array-like attributes ---------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)
    T = property(lambda self: ops.transpose(self))
    is_leaf = property(lambda self: self.op is None,
                       doc="True for tensors no recorded op made (inputs, parameters).")

    # -- conversions, like numpy's and PyTorch's -----------------------------------------
    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        """The sub-tensors ``t[0], t[1], ...`` (each one op of the graph)."""
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __contains__(self, value):
        """``3.0 in t``: whether any element equals it, as numpy and PyTorch answer (without
        this, Python would compare the sub-tensors themselves, never equal to a number)."""
        return bool((self.data == (value.data if isinstance(value, Tensor) else value)).any())

    # -- comparisons: elementwise, like numpy's and PyTorch's ------------------------------
    # They return a numpy bool array (0-d for 0-d operands, so ``if loss < 0.1:`` works)
    # and build no graph. Hashing stays by identity, so tensors still key dicts and sets;
    # to ask whether a list holds a tensor, compare identities (``any(t is x for x in
    # xs)``): ``t in xs`` and ``xs.index(t)`` compare values.
    __hash__ = object.__hash__

    def _compare(self, other, ufunc):
        if isinstance(other, Tensor):
            other = other.data
        elif not isinstance(other, (np.ndarray, np.generic, int, float, bool, list, tuple)):
            return NotImplemented  # None, strings, ...: Python falls back to identity
        return np.asarray(ufunc(self.data, other))

    def __eq__(self, other): return self._compare(other, np.equal)
    def __ne__(self, other): return self._compare(other, np.not_equal)
    def __lt__(self, other): return self._compare(other, np.less)
    def __le__(self, other): return self._compare(other, np.less_equal)
    def __gt__(self, other): return self._compare(other, np.greater)
    def __ge__(self, other): return self._compare(other, np.greater_equal)

    def __float__(self):
        return float(self._one_element("float"))

    def __int__(self):
        return int(self._one_element("int"))

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.data.size} elements is "
                             f"ambiguous; use t.data.any() or t.data.all()")
        return bool(self.data.item())

    def _one_element(self, kind):
        if self.data.size != 1:
            raise TypeError(f"only one-element tensors convert to Python {kind}s, got shape "
                            f"{self.shape}")
        return self.data.item()

    def __format__(self, spec):
        """``f"{loss:.4f}"`` formats the value of a 0-d tensor, as numpy and PyTorch do."""
        if spec and self.data.ndim == 0:
            return format(self.data.item(), spec)
        return super().__format__(spec)

    def numpy(self):
        """The underlying array (shared, not copied)."""
        return self.data

    def __array__(self, dtype=None, copy=None):
        """Lets ``np.asarray(t)`` (and matplotlib, and friends) see the values."""
        if copy is False and dtype is not None and dtype != self.data.dtype:
            raise ValueError("a copy is needed to change the dtype")
        array = self.data if dtype is None else self.data.astype(dtype, copy=False)
        return array.copy() if copy else array

    def item(self):
        """The value of a one-element tensor as a Python float."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def detach(self):
        """A Tensor sharing this data (and its in-place changes) but cut from the graph
        (truncated BPTT cuts here)."""
        t = Tensor(self.data, name=self.name)
        t._counter = self._shared_counter()
        return t

    def __reduce_ex__(self, protocol):
        """``copy.copy``, ``copy.deepcopy`` and pickle: a leaf with a serial number of its own.

        A plain copy would keep the original's serial number, and two nodes with one
        number break the order backward relies on (a deep copy of a model used beside the
        model, as a teacher or a target network, made backward fail). As in PyTorch only
        leaves copy: an op's output would drag its whole graph along.
        """
        if self.op is not None:
            raise RuntimeError(f"only leaf tensors (inputs, parameters) can be copied or "
                               f"pickled; this one was made by {self.op.label}: copy its "
                               f"detach() instead")
        return _rebuild, (type(self), self.data, self.grad, self.requires_grad, self.name,
                          self.scope, self.retains_grad)

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward."""
        self.retains_grad = True
        return self

    def zero_grad(self):
        self.grad = None

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="Tensor(", precision=4)
        extras = [f"shape={self.shape}", f"dtype={self.dtype}"]
        if self.op is not None:
            extras.append(f"op={self.op.label}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.name is not None:
            extras.append(f"name={self.name!r}")
        return f"Tensor({body}, {', '.join(extras)})"

    # -- backward ----------------------------------------------------------------------
    def backward(self, grad=None, *, retain_graph=False, retain_grads=False):
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad.

        ``grad`` is the upstream gradient; it may be omitted only for a one-element
        tensor. As in PyTorch, each op is released once its backward has run (its saved
        arrays and its links to its inputs are dropped), so the graph is freed during the
        sweep; ``retain_graph=True`` keeps it for a second backward or a drawing.
        Non-leaf gradients are dropped as soon as they are used, unless the tensor called
        ``retain_grad()`` or ``retain_grads=True`` keeps them all (the graph drawer needs
        them to colour nodes by gradient norm; it implies ``retain_graph``). Kept
        gradients, leaf or not, add up across backward calls.
        """
        if not self.requires_grad:
            if getattr(self.op, "no_graph", None):  # a compiled step's loss
                raise released_error(self, "run backward through")
            raise RuntimeError(
                "backward() called on a tensor that does not require grad: no input of "
                "the computation has requires_grad=True, or it was made under no_grad()")
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward() without grad= needs a one-element tensor, got shape "
                    f"{self.shape}; pass grad= of that shape")
            grad = np.ones_like(self.data)
        else:
            grad = astype(np.asarray(grad.data if isinstance(grad, Tensor) else grad),
                          self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(grad=...) needs shape {self.shape}, "
                                 f"got {grad.shape}")
        backpropagate(self, grad, retain_graph or retain_grads, retain_grads)

    # -- operators (each is one call into ops.py) --------------------------------------
    def __add__(self, other): return ops.add(self, other)
    def __radd__(self, other): return ops.add(other, self)
    def __sub__(self, other): return ops.subtract(self, other)
    def __rsub__(self, other): return ops.subtract(other, self)
    def __mul__(self, other): return ops.multiply(self, other)
    def __rmul__(self, other): return ops.multiply(other, self)
    def __truediv__(self, other): return ops.divide(self, other)
    def __rtruediv__(self, other): return ops.divide(other, self)
    def __matmul__(self, other): return ops.matmul(self, other)
    def __rmatmul__(self, other): return ops.matmul(other, self)
    def __pow__(self, other): return ops.power(self, other)
    def __rpow__(self, other): return ops.power(other, self)
    def __neg__(self): return ops.negative(self)
    def __getitem__(self, index): return ops.getitem(self, index)

    # -- in-place operators: the update step of a hand-written optimizer -------------------
    def __iadd__(self, other): return self._in_place(np.add, "+=", other)
    def __isub__(self, other): return self._in_place(np.subtract, "-=", other)
    def __imul__(self, other): return self._in_place(np.multiply, "*=", other)
    def __itruediv__(self, other): return self._in_place(np.divide, "/=", other)

    def __setitem__(self, index, value):
        """``p[:, :H] = 1.0`` inside ``no_grad()`` writes into the data, as in PyTorch (a
        forget-gate bias set by hand). While gradients are recorded it is refused: the
        graph has no op for it, and the tensor may already be saved by one."""
        if thread_state.settings.grad_enabled:
            raise TypeError("assigning into a tensor is only done inside `with mg.no_grad():` "
                            "(it changes the data in place, as in PyTorch) or on its .data; "
                            "to build a new value from parts, use mg.where or mg.concat")
        if isinstance(index, Tensor) or (type(index) is tuple and any(
                isinstance(i, Tensor) for i in index)):
            raise IndexError("a Tensor cannot index: tensors hold floats; index with an "
                             "integer or boolean numpy array")
        value = np.asarray(value.data if isinstance(value, Tensor) else value)
        self.data[index] = astype(value, self.dtype) if value.dtype.kind in "biuf" else value
        self._changed_in_place()

    def _in_place(self, ufunc, symbol, other):
        """``p -= lr * p.grad`` inside ``no_grad()`` updates ``p``'s data in place, as in
        PyTorch (without this, Python would rebind the name to a new tensor and leave the
        model's parameter unchanged). With gradients recorded, a leaf that requires grad
        refuses, as in PyTorch, and anything else gets the usual new tensor (``h += x``
        is ``h = h + x``): an in-place change could corrupt a graph that saved the value.
        """
        if thread_state.settings.grad_enabled:
            if self.requires_grad and self.op is None:
                raise RuntimeError(
                    f"in-place {symbol} on a leaf tensor that requires grad"
                    f"{f' ({self.name!r})' if self.name else ''}: to update a parameter, do it "
                    f"inside `with mg.no_grad():` (it changes the data in place, as in "
                    f"PyTorch), or on its .data")
            return NotImplemented  # Python falls back to the out-of-place operator
        value = other.data if isinstance(other, Tensor) else np.asarray(other)
        with np.errstate(all="ignore"):  # inf and NaN silently, as for every op
            ufunc(self.data, value, out=self.data, casting="same_kind")
        self._changed_in_place()
        return self

    def sum(self, axis=None, keepdims=False): return ops.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return ops.mean(self, axis, keepdims)
    def reshape(self, *shape): return ops.reshape(self, *shape)
    def transpose(self, *axes): return ops.transpose(self, *axes)
    def exp(self): return ops.exp(self)
    def log(self): return ops.log(self)
    def sigmoid(self): return ops.sigmoid(self)
    def tanh(self): return ops.tanh(self)
    def relu(self): return ops.relu(self)
    def abs(self): return ops.abs(self)
    def __abs__(self): return ops.abs(self)
    def max(self, axis=None, keepdims=False): return ops.max(self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return ops.min(self, axis, keepdims)
    def clip(self, low=None, high=None): return ops.clip(self, low, high)
    def softmax(self, axis=-1): return ops.softmax(self, axis)
    def log_softmax(self, axis=-1): return ops.log_softmax(self, axis)


def _rebuild(cls, data, grad, requires_grad, name, scope, retains_grad):
    """The leaf ``Tensor.__reduce_ex__`` describes, with a new serial number."""
    t = object.__new__(cls)
    t.data, t.grad, t.requires_grad, t.name = data, grad, requires_grad, name
    t.op, t.scope, t.retains_grad = None, scope, retains_grad
    t.serial = next(_serials)
    t._counter = UNCHANGED
    t.pending = None
    return t


def topological_order(root, needs_grad=False):
    """Every tensor ``root`` depends on through recorded ops, inputs before users.

    An iterative reachability walk (a recursive one overflows Python's stack at about a
    thousand nodes deep), then a sort by creation serial number: an op's inputs are
    always created before its output, so that is a topological order, and the same
    computation gives the same order on every run. ``needs_grad=True`` walks only
    through tensors that require grad: the nodes backward visits, in the order it
    visits them reversed. Used by backward and the graph drawer. Raises RuntimeError on
    reaching a graph that backward has released.
    """
    order, found = [root], {root}  # (tensors hash by identity)
    for node in order:  # breadth first: the loop reaches what it appends
        op = node.op
        if op is None:
            continue
        inputs = op.inputs
        if inputs is None:
            raise released_error(node, "backward" if needs_grad else "walk")
        for parent in inputs:
            if parent not in found and (parent.requires_grad or not needs_grad):
                found.add(parent)
                order.append(parent)
    order.sort(key=_by_serial)
    return order


_by_serial = operator.attrgetter("serial")


def released_error(node, what):
    if getattr(node.op, "no_graph", None):  # the loss of a step made by mg.compile
        return RuntimeError(f"cannot {what} the graph: {node.op.no_graph}")
    where = f" in scope '{node.scope}'" if node.scope else ""
    return RuntimeError(
        f"cannot {what} the graph through {node.op.label}{where}: an earlier backward() "
        f"released it (what each op saved and its links to its inputs are dropped once its "
        f"backward has run). Pass retain_graph=True to that backward() to keep the graph "
        f"for a second backward or for drawing it."
        + (" If this is a state carried into the next chunk of a sequence (truncated "
           "BPTT), pass the next chunk state.detach(), cut from the graph already "
           "backpropagated." if what == "backward" else ""))


def backpropagate(root, grad, retain_graph=False, retain_grads=False):
    """Reverse-mode sweep: hand each op its output's gradient, users before inputs.

    One walk of the graph gives its topological order (``topological_order``, through
    the tensors that need a gradient); the sweep runs it backwards, so every user of a
    node has sent its contribution before the node's turn comes, and the node's gradient
    is complete. Each gradient waits on its node (``node.pending``, no dict) and is
    dropped from there when consumed, and unless ``retain_graph`` each op is released
    as soon as its backward has run, so memory is freed during the sweep. Leaves (and
    retained non-leaves) add the gradient into ``.grad``; ``accumulate`` sums the
    contributions of a node's several users. As with ``.grad`` itself, two sweeps must
    not run through the same tensors at once (from two threads).
    """
    settings = thread_state.settings
    watched = settings.detect_anomaly or settings.recorder is not None
    changes = in_place_changes[0]
    order = topological_order(root, needs_grad=True)
    owned = set()  # nodes whose pending gradient is a buffer of this sweep's own
    root.pending = grad
    token = ignore_numpy_errors()  # inf and NaN come back silently, as in PyTorch
    try:
        for node in reversed(order):
            grad = node.pending
            if grad is None:  # reached, but every user sent None
                continue
            node.pending = None
            op = node.op
            if type(grad) is not np.ndarray and (  # a numpy scalar, or a lazy kind (ops.py)
                    op is None or not op.takes_input_product or type(grad) is not
                    ops.InputProductGrad or watched or retain_grads or node.retains_grad):
                grad = np.asarray(grad)  # made dense here (but for the op that can use it)
                owned.add(node)
            if op is None or retain_grads or node.retains_grad:
                if node.grad is not None:
                    node.grad = as_array(node.grad + grad)
                else:  # never alias an array another node or the caller holds
                    node.grad = grad if node in owned else grad.copy()
                if op is None:
                    continue
            inputs = op.inputs
            if op.reads_saved and op.epoch != changes:
                op.check_versions(node)
            grads = op.backward(grad)
            if watched:
                watch(settings, node, grad, inputs, grads)
            if not retain_graph:
                op.release()
            for parent, parent_grad in zip(inputs, grads):
                if parent_grad is None or not parent.requires_grad:
                    continue
                data = parent.data
                if parent_grad.dtype is not data.dtype and parent_grad.dtype != data.dtype:
                    parent_grad = parent_grad.astype(data.dtype)  # after a mixed-dtype op
                if parent_grad.shape != data.shape:
                    raise RuntimeError(
                        f"{op.label} backward returned a gradient of shape "
                        f"{parent_grad.shape} for an input of shape {data.shape}")
                total = parent.pending
                parent.pending = (parent_grad if total is None else
                                  accumulate(total, parent_grad, parent, owned))
    except BaseException:
        for node in order:  # a later sweep must not find this one's gradients
            node.pending = None
        raise
    finally:
        restore_numpy_errors(token)


def accumulate(total, grad, key, owned):
    """Add the contribution ``grad`` to node ``key``'s pending gradient ``total``.

    The first contribution is kept as it came, for it may be shared (``add`` returns one
    array for both inputs) or lazy (a slice's ``IndexedGrad``, a weight's
    ``ProductGrad``); this, the one place contributions are summed, makes a buffer of
    the sweep's own (``owned``) at the second (two dense ones are summed into a new
    array in one pass), and adds into it in place from then on. Lazy ones of one kind
    are joined, to be made dense in one pass at the node's turn; a sparse
    ``IndexedGrad`` is added straight into a dense buffer, never expanded on its own.
    """
    kind, joined = type(grad), (ops.IndexedGrad, ops.ProductGrad)
    if kind is type(total) and kind in joined:  # slices of one tensor, products with one
        owned.add(key)  # weight: joined, made dense at its turn (each is the sweep's own)
        return total.join(grad)
    if type(total) is not np.ndarray:  # joined or lazy, then another: dense from here on
        total = np.asarray(total)
        owned.add(key)
    if kind is ops.ProductGrad or kind is ops.InputProductGrad:
        grad = np.asarray(grad)
    lazy = kind is ops.IndexedGrad
    if key not in owned:
        owned.add(key)
        if not lazy and type(total) is np.ndarray:
            return total + grad
        total = np.array(total)  # a copy, dense and an ndarray even for numpy's 0-d scalars
    if lazy:
        return grad.add_into(total)
    total += grad
    return total


# -- detect_anomaly and record_backward: only called inside those blocks ------------------

def watch(settings, node, grad, inputs, grads):
    """Check (detect_anomaly) and record (record_backward) one op's backward: ``grad``
    reached ``node``, and ``node.op`` sent ``grads`` to its ``inputs``."""
    sent = [g if g is not None and t.requires_grad else None for t, g in zip(inputs, grads)]
    if settings.detect_anomaly:
        check_backward(node, grad, None, inputs)
        for parent, g in zip(inputs, sent):
            if g is not None:
                check_backward(node, g, parent, inputs)
    if settings.recorder is not None:
        settings.recorder.append(SweepStep(node, node.op, np.array(grad), tuple(
            (t, None if g is None else np.array(g, dtype=t.dtype)) for t, g in zip(inputs, sent))))


def check_forward(op, out, inputs, scope):
    """Raise FloatingPointError if ``op``'s output ``out`` holds a NaN or an infinity."""
    if np.isfinite(out).all():
        return
    shapes = ", ".join(str(t.shape) for t in inputs)
    bad = [f"input {i}{_describe(t)} already held {_kind(t.data)}"
           for i, t in enumerate(inputs) if not np.isfinite(t.data).all()]
    raise FloatingPointError(
        f"detect_anomaly: {_kind(out)} in the forward output of {op.label}{_scope(scope)}: "
        f"output shape {out.shape}, input shapes {shapes}" + (f"; {'; '.join(bad)}" if bad else ""))


def check_backward(node, grad, parent, inputs):
    """Raise FloatingPointError if a gradient of the sweep holds a NaN or an infinity:
    ``grad`` is the gradient reaching ``node`` (``parent`` None) or the contribution
    ``node``'s op sent to its input ``parent``."""
    grad = np.asarray(grad)
    if np.isfinite(grad).all():
        return
    where = f"{node.op.label}{_scope(node.scope)}"
    if parent is None:
        raise FloatingPointError(
            f"detect_anomaly: {_kind(grad)} in the gradient reaching the output of {where} "
            f"in backward (shape {grad.shape}): the sum of its users' gradients overflowed, "
            f"or backward(grad=...) held it")
    position = next(i for i, t in enumerate(inputs) if t is parent)
    raise FloatingPointError(
        f"detect_anomaly: {_kind(grad)} in the backward of {where}: the gradient for "
        f"input {position}{_describe(parent)} of shape {parent.shape}, from an output "
        f"gradient of shape {node.shape} (input shapes "
        f"{', '.join(str(t.shape) for t in inputs)})")


def _kind(array):
    return "nan" if np.isnan(array).any() else "inf"


def _scope(scope):
    return f" in scope '{scope}'" if scope else " (top level, no scope)"


def _describe(t):
    role = "leaf" if t.op is None else t.op.label
    return f" ({role}{f' {t.name!r}' if t.name else ''})"


def _refuse_nested_tensors(data):
    """numpy would copy the values out of Tensors in a list (or fail on 0-d ones), cutting
    them from the graph without a word: point to stack instead."""
    stack = [data]
    while stack:
        for item in stack.pop():
            if isinstance(item, Tensor):
                raise TypeError("Tensor() of a list holding Tensors: use mg.stack(list) to "
                                "join tensors (it keeps them in the graph), or pass arrays")
            if isinstance(item, (list, tuple)):
                stack.append(item)


def astype(array, dtype, copy=False):
    """``array`` as ``dtype`` (itself if it already is, unless ``copy``). A value too large
    for a narrower dtype (1e6 in float16) becomes inf silently, as an op's overflowing
    result does: numpy would warn "overflow encountered in cast". While mg.compile
    captures a step, each cast is noted, so that its replay casts an argument anew at
    every call (an integer target, a float64 batch fed to a float32 model)."""
    if not copy and array.dtype == dtype:
        return array
    token = ignore_numpy_errors()
    try:
        result = array.astype(dtype)
    finally:
        restore_numpy_errors(token)
    tape = thread_state.settings.capture
    if tape is not None:
        tape.casts[id(result)] = (result, array)
    return result


def as_array(x):
    """``x``, or the 0-d array of a numpy scalar: numpy returns scalars, not arrays, for
    arithmetic on 0-d arrays. Values and gradients must stay arrays (``.data`` is always
    an ndarray, and adding into a scalar in place would silently drop a contribution)."""
    return x if type(x) is np.ndarray else np.asarray(x)


from . import ops  # noqa: E402  (ops builds Tensors; Tensor's operators call ops)
