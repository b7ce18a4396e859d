"""The value node of the graph, the walk over the graph, and the backward sweep.

A graph has two kinds of object. A ``Tensor`` holds an array and, if an op made it, that
op in ``.op``. An op (see ``ops.py``) holds its input Tensors and whatever its backward
needs, never its output. References therefore only point from later to earlier nodes:
there are no reference cycles, and dropping the root of a graph frees all of it at once.
"""
import itertools
import operator
from heapq import heappop, heappush

import numpy as np

from .context import _state

# Every Tensor gets the next serial number when it is created. An op's inputs always
# exist before its output, so sorting by serial number is a topological order.
_serials = itertools.count()


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    ``Tensor(data, requires_grad=False, name=None)`` wraps ``np.asarray(data)`` without
    copying it. Integer and bool input becomes float64; float arrays keep their dtype.
    """

    __slots__ = ("data", "grad", "requires_grad", "name", "op", "scope", "retains_grad",
                 "serial", "__weakref__")
    # Makes ``ndarray + Tensor`` return NotImplemented, so Python calls Tensor.__radd__.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad=False, name=None):
        if isinstance(data, Tensor):
            data = data.data
        array = np.asarray(data)
        if array.dtype.kind in "biu":
            array = array.astype(np.float64)
        elif array.dtype.kind != "f":
            raise TypeError(f"Tensor needs numeric data, got an array of dtype {array.dtype}")
        self.data = array
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self.op = None
        self.scope = _state.scope
        self.retains_grad = False
        self.serial = next(_serials)

    @classmethod
    def _from_op(cls, data, op):
        """Fast constructor for op outputs: ``data`` is already a float ndarray."""
        t = object.__new__(cls)
        t.data = data
        t.grad = None
        t.requires_grad = op is not None
        t.name = None
        t.op = op
        t.scope = _state.scope
        t.retains_grad = False
        t.serial = next(_serials)
        return t

    # -- array-like attributes ---------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)
    T = property(lambda self: ops.transpose(self))
    is_leaf = property(lambda self: self.op is None,
                       doc="True for tensors no recorded op made (inputs, parameters).")

    def __len__(self):
        return len(self.data)

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
        """A Tensor sharing this data but cut from the graph (truncated BPTT cuts here)."""
        return Tensor(self.data, name=self.name)

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
    def backward(self, grad=None, *, retain_grads=False):
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad.

        ``grad`` is the upstream gradient; it may be omitted only for a one-element
        tensor. Non-leaf gradients are dropped as soon as they are used, unless the tensor
        called ``retain_grad()`` or ``retain_grads=True`` keeps them all (the graph
        drawer needs them to colour nodes by gradient norm).
        """
        if not self.requires_grad:
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
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad,
                              dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(grad=...) needs shape {self.shape}, "
                                 f"got {grad.shape}")
        backpropagate(self, grad, retain_grads)

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

    def sum(self, axis=None, keepdims=False): return ops.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return ops.mean(self, axis, keepdims)
    def reshape(self, *shape): return ops.reshape(self, *shape)
    def transpose(self, *axes): return ops.transpose(self, *axes)
    def exp(self): return ops.exp(self)
    def log(self): return ops.log(self)
    def sigmoid(self): return ops.sigmoid(self)
    def tanh(self): return ops.tanh(self)
    def relu(self): return ops.relu(self)


class IndexedGrad:
    """A gradient that is zero except for ``values`` at ``index`` of a ``shape`` array.

    Slicing returns this instead of a mostly-zero array, so the four gate slices of an
    LSTM step add into one buffer rather than allocating and summing four full ones.
    """

    __slots__ = ("index", "values", "shape", "basic")

    def __init__(self, index, values, shape, basic):
        self.index, self.values, self.shape, self.basic = index, values, shape, basic

    def add_into(self, dense):
        if self.basic:
            dense[self.index] += self.values
        else:  # integer arrays may select a position twice: add every contribution
            np.add.at(dense, self.index, self.values)
        return dense


def topological_order(root):
    """Every tensor ``root`` depends on through recorded ops, inputs before users.

    An iterative reachability walk (a recursive one overflows Python's stack at about a
    thousand nodes deep), then a sort by creation serial number: an op's inputs are
    always created before its output, so that is a topological order, and the same
    computation gives the same order on every run. Used by the graph drawer; backward
    relies on the same serial numbers without walking the graph first.
    """
    found = {id(root): root}
    stack = [root]
    while stack:
        op = stack.pop().op
        if op is None:
            continue
        for parent in op.inputs:
            if id(parent) not in found:
                found[id(parent)] = parent
                stack.append(parent)
    return sorted(found.values(), key=_by_serial)


_by_serial = operator.attrgetter("serial")


def backpropagate(root, grad, retain_grads=False):
    """Reverse-mode sweep: hand each op its output's gradient, users before inputs.

    A node enters a max-heap keyed by its serial number when it first receives a
    gradient. Every user of a node was created after it, so by the time the node has the
    highest serial in the heap, every user on a path from ``root`` has been processed and
    its gradient is complete: a topological order without sorting the whole graph first.
    Gradients are popped from ``pending`` as they are consumed, so memory is released
    during the sweep.

    A gradient an op returned may be shared (``add`` returns the same array for both
    inputs), so the first contribution is stored as is and the second creates a new
    array; only arrays this function created itself (``owned``) are added to in place,
    and every gradient is kept an ndarray (numpy gives scalars for 0-d results).
    """
    pending = {id(root): grad}
    owned = set()
    heap = [(-root.serial, root)]
    while heap:
        node = heappop(heap)[1]
        key = id(node)
        grad = pending.pop(key)
        op = node.op
        if op is None:
            if key not in owned:
                grad = grad.copy()  # never alias an array another node holds
            node.grad = grad if node.grad is None else as_array(node.grad + grad)
            continue
        if retain_grads or node.retains_grad:
            node.grad = grad if key in owned else grad.copy()
        for parent, parent_grad in zip(op.inputs, op.backward(grad)):
            if parent_grad is None or not parent.requires_grad:
                continue
            if type(parent_grad) is not IndexedGrad:
                parent_grad = as_array(parent_grad)
                if parent_grad.dtype != parent.data.dtype:  # a mixed-dtype op: the gradient
                    parent_grad = parent_grad.astype(parent.data.dtype)  # takes the input's
            if parent_grad.shape != parent.data.shape:
                raise RuntimeError(
                    f"{op.label} backward returned a gradient of shape {parent_grad.shape} "
                    f"for an input of shape {parent.data.shape}")
            pkey = id(parent)
            existing = pending.get(pkey)
            if existing is None:
                heappush(heap, (-parent.serial, parent))
            if type(parent_grad) is IndexedGrad:  # zero outside an index: add in place
                if pkey not in owned:
                    existing = (np.zeros(parent_grad.shape, parent.data.dtype)
                                if existing is None else existing.copy())
                    owned.add(pkey)
                pending[pkey] = parent_grad.add_into(existing)
            elif existing is None:
                pending[pkey] = parent_grad
            elif pkey in owned:
                existing += parent_grad
            else:
                pending[pkey] = as_array(existing + parent_grad)
                owned.add(pkey)


def as_array(x):
    """``x``, or the 0-d array of a numpy scalar: numpy returns scalars, not arrays, for
    arithmetic on 0-d arrays. Values and gradients must stay arrays (``.data`` is always
    an ndarray, and adding into a scalar in place would silently drop a contribution)."""
    return x if type(x) is np.ndarray else np.asarray(x)


from . import ops  # noqa: E402  (ops builds Tensors; Tensor's operators call ops)
