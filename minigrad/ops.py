"""The op table: every primitive the graph is made of, each with its gradient beside it.

An op is a small class. ``forward`` takes numpy arrays and returns one array, saving on
``self`` only what ``backward`` needs. ``backward(grad)`` takes the gradient of the output
and returns one gradient per input, None where ``self.needs_input_grad`` says that input
needs none; it never changes ``grad`` in place, because the same array may be handed to
several ops. The class name,
lower-cased, is the op's label in errors and in the graph drawing.

Broadcasting is undone in one place, ``unbroadcast``; no op repeats that rule.
"""
import math

import numpy as np

from .context import IGNORE, numpy_errors, thread_state
from .tensor import Tensor, as_array, astype, check_forward, in_place_changes


def unbroadcast(grad, shape):
    """Sum ``grad`` back down to ``shape``, undoing numpy broadcasting.

    Broadcasting prepends dimensions and stretches size-1 ones; an input used that way
    contributed to every stretched position, so its gradient is the sum over them.
    """
    if grad.shape == shape:
        return grad
    if shape and grad.shape[1:] == shape:  # a bias added to every row: a sum over rows
        return np.add.reduce(grad, 0)
    return grad.sum(axis=broadcast_axes(grad.shape, shape), keepdims=True).reshape(shape)


def broadcast_axes(grad_shape, shape):
    """The axes of ``grad_shape`` that broadcasting prepended or stretched from ``shape``:
    what a gradient is summed over (by ``unbroadcast``, and by a compiled step's plan)."""
    extra = len(grad_shape) - len(shape)
    return tuple(range(extra)) + tuple(i + extra for i, n in enumerate(shape)
                                       if n == 1 and grad_shape[i + extra] != 1)


# 1 as a 0-d array of each float dtype: numpy converts a Python 1 at every call, and
# np.ones() costs more than the sigmoid's arithmetic at small sizes. Never written to.
_ONES = {np.dtype(t): np.ones((), t) for t in (np.float16, np.float32, np.float64)}


def _stable_sigmoid(x):
    """1 / (1 + exp(-x)): where exp(-x) overflows to inf the result is exactly 0, its limit
    (ops run with numpy's overflow warnings off, see ``Op.__call__``). Computed in one
    array, in place (``out`` passed by position: the ``out=`` keyword costs more than it
    saves at small sizes), with the very operations of the plain expression, so the
    value is the same bit for bit; Sigmoid's replay runs the same calls."""
    y = as_array(np.negative(x))  # (numpy gives a scalar for a 0-d x)
    one = _ONES.get(y.dtype)
    if one is None:  # another float dtype (longdouble)
        one = np.ones((), y.dtype)
    np.exp(y, y)
    np.add(y, one, y)
    np.divide(one, y, y)
    return y


class Op:
    """Base of every op. Calling an op instance on Tensors runs it and records it.

    When the op is recorded, ``self.inputs`` holds its input Tensors and
    ``self.needs_input_grad`` one bool per input, decided once here: ``backward`` returns
    None for an input that needs no gradient and never computes one to be thrown away.
    An op whose backward is cheaper from its output keeps that array in ``self.out``.
    ``release()`` drops both once backward has run (see ``Tensor.backward``).

    In-place changes: backward reads the values of some inputs, or the output, as they
    were in forward. Each op class declares which: ``reads_input[i]`` lists the inputs
    whose gradient needs input ``i``'s value (Multiply: ``((1,), (0,))``, a's value
    for b's gradient), ``reads_output`` those whose gradient needs the output. A recorded
    op notes its inputs' versions in ``self.versions``, and in ``self.epoch`` the count of
    all in-place changes so far; backward calls ``check_versions`` only when that count
    has grown since (never in a plain forward-backward-step loop), and it refuses a value
    needed and changed since. Only what
    this backward will read is checked, so ``x @ w`` with a constant ``x`` does not mind
    ``w`` changing (as in PyTorch, which saves only what the needed gradients use).
    """

    __slots__ = ("inputs", "needs_input_grad", "out", "versions", "epoch")
    label = "op"
    # How a drawing names the inputs (mg.viz): none for an op whose inputs can be swapped,
    # 0, 1, ... for a sequence op (concat, stack, like its list), else a, b.
    commutative = False
    sequence_operands = False
    reads_input = ()
    reads_output = ()
    reads_saved = False  # set from the two above
    # True for an op whose backward takes an ``InputProductGrad`` as it is (concat): the
    # sweep makes every other lazy gradient dense before handing it to ``backward``.
    takes_input_product = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.label = cls.__name__.lower()
        cls.reads_saved = bool(cls.reads_input or cls.reads_output)

    def __call__(self, *inputs):
        settings = thread_state.settings
        if settings.capture is not None:  # mg.compile is recording a step (compile.py)
            return settings.capture.record(self, inputs)
        # numpy's errors off (inf and NaN come back silently, as in PyTorch), unless the
        # region this op runs in switched them off already (``numpy_errors_ignored``)
        token = None if numpy_errors.get() is IGNORE else numpy_errors.set(IGNORE)
        try:
            # One and two inputs spelled out: on Python 3.11 a comprehension, or a call
            # with *arrays, costs more than all the rest of this method.
            if len(inputs) == 1:
                a = inputs[0]
                out = self.forward(a.data)
            elif len(inputs) == 2:
                a, b = inputs
                out = self.forward(a.data, b.data)
            else:
                out = self.forward(*[t.data for t in inputs])
        except ValueError as err:
            raise _forward_error(self, inputs, err) from None
        finally:
            if token is not None:
                numpy_errors.reset(token)
        if type(out) is not np.ndarray:  # numpy gives scalars for 0-d results
            out = np.asarray(out)
        if settings.detect_anomaly:
            check_forward(self, out, inputs, settings.scope)
        if settings.grad_enabled:
            if len(inputs) == 1:
                needs = (a.requires_grad,)
            elif len(inputs) == 2:
                needs = (a.requires_grad, b.requires_grad)
            else:
                needs = tuple([t.requires_grad for t in inputs])
            if True in needs:
                self.inputs = inputs
                self.needs_input_grad = needs
                if self.reads_saved:  # the one place versions are saved
                    self.epoch = in_place_changes[0]
                    self.versions = (a._counter[0],) if len(inputs) == 1 else (
                        (a._counter[0], b._counter[0]) if len(inputs) == 2
                        else tuple([t._counter[0] for t in inputs]))
                return Tensor._from_op(out, self, settings.scope)
        return Tensor._from_op(out, None, settings.scope)

    def check_versions(self, out):
        """Raise RuntimeError if backward is about to read a value changed in place
        since forward: an input in ``reads_input``, or the output tensor ``out`` (made
        at version 0), for a gradient this backward computes. The one place versions
        are checked."""
        if self.reads_input:
            for i, (tensor, version) in enumerate(zip(self.inputs, self.versions)):
                if tensor._counter[0] != version and True in [
                        self.needs_input_grad[j] for j in self.reads_input[i]]:
                    raise _changed_in_place(self, out, f"input {i}", tensor, version)
        if out._counter[0] != 0 and True in [self.needs_input_grad[j] for j in self.reads_output]:
            raise _changed_in_place(self, out, "output", out, 0)

    def release(self):
        """Drop the inputs and saved arrays: the graph behind this op can then be freed."""
        self.inputs = self.out = None

    # mg.compile's replay (compile.py): an op plans its forward and backward as numpy
    # calls into planned arrays. These defaults call the eager forward and backward,
    # which is right for any op; the ops a training step is made of plan their own.
    draws_random = False  # True for an op that must draw anew at every replay

    def replay_forward(self, r):
        r.eager_forward()

    def replay_backward(self, r):
        r.eager_backward()

    def detail(self):
        """Parameters worth showing next to the label in a drawing ('' if none)."""
        return ""

    def __repr__(self):
        detail = self.detail()
        return f"<op {self.label}{' ' + detail if detail else ''}>"


class View(Op):
    """Base of the ops whose output may share its input's memory (reshape, transpose,
    slicing). Such an output shares its input's version counter, as in PyTorch, so an
    in-place change through either is seen by a graph that saved the other."""

    __slots__ = ()

    def __call__(self, source):
        settings = thread_state.settings
        if settings.capture is not None or settings.detect_anomaly or self.reads_saved:
            result = Op.__call__(self, source)
        else:  # the usual case spelled out: a view computes no numbers, so numpy's error
            try:  # state is not switched
                out = self.forward(source.data)
            except ValueError as err:
                raise _forward_error(self, (source,), err) from None
            if type(out) is not np.ndarray:  # a[2] of a vector: a numpy scalar
                out = np.asarray(out)
            if settings.grad_enabled and source.requires_grad:
                self.inputs, self.needs_input_grad = (source,), (True,)
                result = Tensor._from_op(out, self, settings.scope)
            else:
                result = Tensor._from_op(out, None, settings.scope)
        out, data = result.data, source.data
        # A view's base is the owner of its memory: data, or data's own base. Anything
        # else (a reshape that had to copy, a fancy index) is checked in full.
        if out.base is not None and (out.base is data or out.base is data.base
                                     or np.may_share_memory(out, data)):
            result._counter = source._shared_counter()
        return result


def _forward_error(op, inputs, err):
    """The ValueError of a forward that numpy refused, naming the op and the shapes."""
    shapes = " and ".join(str(t.shape) for t in inputs)
    if isinstance(err, np.exceptions.AxisError) or "'axis'" in str(err):
        # a bad axis= (out of range, repeated), not a shape mismatch
        return ValueError(f"{op.label}: {err} (input shape{'s' * (len(inputs) > 1)} {shapes})")
    return ValueError(f"{op.label}: incompatible shapes {shapes}: {err}")


def _changed_in_place(op, out, role, tensor, saved):
    scope = f" in scope '{out.scope}'" if out.scope else ""
    name = f"{tensor.name!r}" if tensor.name else "unnamed"
    return RuntimeError(
        f"backward through {op.label}{scope} needs the value of its {role} ({name}, shape "
        f"{tensor.shape}) as forward saw it, but it was changed in place since: it is at "
        f"version {tensor._counter[0]}, forward saw version {saved}. Call backward() before "
        f"changing the tensor (an optimizer's step(), `t -= ...`, `t[i] = ...` inside "
        f"no_grad()), or change a copy (t = t - ...).")


# -- elementwise arithmetic (numpy broadcasting) ----------------------------------------

class Elementwise(Op):
    """Base of the broadcasting binary ops: ``ufunc(a, b)``, with PyTorch's dtype rule
    where it differs from numpy's: a 0-d tensor does not promote an n-d one, so a float32
    array times a 0-d float64 tensor stays float32."""

    __slots__ = ()
    ufunc = None

    def forward(self, a, b):
        # "is not" first: numpy's built-in dtypes are singletons, so equal dtypes (the
        # common case) cost one identity test.
        if a.dtype is not b.dtype and a.dtype != b.dtype and (a.ndim == 0) != (b.ndim == 0):
            if a.ndim == 0:
                a = a.astype(b.dtype)
            else:
                b = b.astype(a.dtype)
        return self.ufunc(a, b)

    def replay_forward(self, r):
        a, b = r.ins
        if a.dtype != b.dtype:  # the dtype rule above
            r.eager_forward()
        elif self.ufunc in (np.maximum, np.minimum):  # numpy wants their out= by name
            r.call(self.ufunc, a, b, out=r.out)
        else:
            r.call(self.ufunc, a, b, r.out)


class Add(Elementwise):
    __slots__ = ()
    commutative = True
    ufunc = np.add

    def backward(self, grad):
        (a, b), (need_a, need_b) = self.inputs, self.needs_input_grad
        return (unbroadcast(grad, a.data.shape) if need_a else None,
                unbroadcast(grad, b.data.shape) if need_b else None)

    def replay_backward(self, r):
        r.pass_through(0, r.grad)
        r.pass_through(1, r.grad)


class Subtract(Elementwise):
    __slots__ = ()
    ufunc = np.subtract

    def backward(self, grad):
        (a, b), (need_a, need_b) = self.inputs, self.needs_input_grad
        return (unbroadcast(grad, a.data.shape) if need_a else None,
                unbroadcast(-grad, b.data.shape) if need_b else None)

    def replay_backward(self, r):
        r.pass_through(0, r.grad)
        r.give(1, np.negative, r.grad)


class Multiply(Elementwise):
    __slots__ = ()
    commutative = True
    reads_input = ((1,), (0,))  # a is read for b's gradient, b for a's
    ufunc = np.multiply

    def backward(self, grad):
        (a, b), (need_a, need_b) = self.inputs, self.needs_input_grad
        return (unbroadcast(grad * b.data, a.data.shape) if need_a else None,
                unbroadcast(grad * a.data, b.data.shape) if need_b else None)

    def replay_backward(self, r):
        (a, b), grad = r.ins, r.grad
        r.give(0, np.multiply, grad, b)
        r.give(1, np.multiply, grad, a)


class Divide(Elementwise):
    __slots__ = ()
    reads_input = ((1,), (0, 1))
    ufunc = np.divide

    def backward(self, grad):
        (a, b), (need_a, need_b) = self.inputs, self.needs_input_grad
        grad_a = grad / b.data
        return (unbroadcast(grad_a, a.data.shape) if need_a else None,
                unbroadcast(-grad_a * a.data / b.data, b.data.shape) if need_b else None)

    def replay_backward(self, r):
        (a, b), grad = r.ins, r.grad
        r.give(0, np.divide, grad, b)
        if r.needs[1]:  # -(grad / b) * a / b, in the order above
            t = r.scratch(grad.shape)
            r.call(np.divide, grad, b, t)
            r.call(np.negative, t, t)
            r.call(np.multiply, t, a, t)
            r.give(1, np.divide, t, b)


def _pow(a, b):
    """``a ** b`` as C's pow gives it, whatever the exponent's shape. numpy computes a 0-d
    exponent 0.5 as sqrt, which differs from pow at -0.0 (-0.0 rather than +0.0) and at
    -inf (nan rather than +inf)."""
    out = np.power(a, b)
    if b.ndim == 0 and b == 0.5:
        out = np.where(a == -np.inf, np.inf, out + 0)  # -0.0 + 0 is +0.0
    return out


class Power(Elementwise):
    """a ** b, with PyTorch's gradients where the formulas meet 0 * inf: d/da is 0 where
    b == 0 (also at a == 0, and whatever gradient arrives, inf or nan included), d/db is
    grad * 0 where a == 0 and b >= 0 (the limit of a**b log a); elsewhere d/db uses
    log(a), so it is nan for a < 0, as in PyTorch.

    Values are C's pow (IEEE 754) for every exponent, a number or a tensor, as PyTorch's
    ``torch.pow(a, b)`` with a tensor b: (-0.0) ** 0.5 is +0.0 and (-inf) ** 0.5 is +inf,
    with d/da +inf and 0; (-0.0) ** -0.5 is +inf and (-inf) ** -0.5 is +0.0. (PyTorch's
    ``a ** 0.5`` with a Python number runs sqrt instead, giving -0.0 and nan there.)"""

    __slots__ = ()
    reads_input, reads_output = ((0, 1), (0, 1)), (1,)
    ufunc = staticmethod(_pow)

    def forward(self, a, b):
        self.out = Elementwise.forward(self, a, b)
        return self.out

    def backward(self, grad):
        (a, b), (need_a, need_b) = self.inputs, self.needs_input_grad
        a, b = a.data, b.data
        grad_a = grad_b = None
        if need_a:
            grad_a = unbroadcast(np.where(b == 0, 0, grad * b * _pow(a, b - 1)), a.shape)
        if need_b:
            d = np.where((a == 0) & (b >= 0), 0, self.out * np.log(a))
            grad_b = unbroadcast(grad * d, b.shape)
        return grad_a, grad_b

    replay_forward = Op.replay_forward  # backward needs self.out, which forward sets


class Matmul(Op):
    """numpy's matmul: 1-D operands are promoted to matrices, leading dims broadcast."""

    __slots__ = ()
    reads_input = ((1,), (0,))

    def forward(self, a, b):
        if a.ndim > 2 and b.ndim == 2:  # (..., k) @ (k, m): one large product, not many
            rows = a.reshape(math.prod(a.shape[:-1]), a.shape[-1])
            return (rows @ b).reshape(a.shape[:-1] + b.shape[1:])
        return a @ b

    def backward(self, grad):
        a, b = self.inputs[0].data, self.inputs[1].data
        need_a, need_b = self.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:  # dot product: grad is a scalar
            return grad * b if need_a else None, grad * a if need_b else None
        if a.ndim == 2 and b.ndim == 2:  # the common case, without the general machinery
            return (InputProductGrad.of(self.inputs[0], grad, b) if need_a else None,
                    ProductGrad.of(a, grad) if need_b else None)
        if a.ndim > 2 and b.ndim == 2:  # batch of rows times a weight matrix
            count = math.prod(a.shape[:-1])
            grad_rows = grad.reshape(count, b.shape[1])
            return ((grad_rows @ b.T).reshape(a.shape) if need_a else None,
                    a.reshape(count, a.shape[-1]).T @ grad_rows if need_b else None)
        # Promote 1-D operands the way matmul did, so one matrix rule covers every case.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if a.ndim == 1:
            grad = np.expand_dims(grad, -2)
        if b.ndim == 1:
            grad = np.expand_dims(grad, -1)
        grad_a = grad_b = None
        if need_a:
            grad_a = unbroadcast(grad @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if need_b:
            grad_b = unbroadcast(np.swapaxes(a2, -1, -2) @ grad, b2.shape).reshape(b.shape)
        return grad_a, grad_b

    def replay_forward(self, r):
        a, b = r.ins
        if len(a.shape) == 2 and len(b.shape) == 2:
            r.call(np.matmul, a, b, r.out)
        elif len(a.shape) > 2 and len(b.shape) == 2:  # one large product, as forward
            r.call(np.matmul, r.rows(a), b, r.rows(r.out))
        else:
            r.eager_forward()

    def replay_backward(self, r):
        (a, b), grad = r.ins, r.grad
        if len(a.shape) < 2 or len(b.shape) != 2:
            return r.eager_backward()
        columns = r.columns(0)
        if len(a.shape) > 2:  # as rows, as forward
            grad_rows = r.rows(grad)
            if r.needs[0]:
                rows = r.scratch(grad_rows.shape[:1] + b.shape[:1], a.dtype)
                r.call(np.matmul, grad_rows, r.transposed(b), rows)
                r.pass_through(0, r.reshaped(rows, a.shape))
            r.matmul_weight(1, r.rows(a), grad_rows)
        elif columns is not None:  # only the columns of a concat that need a gradient
            columns, through = columns
            span = f"{columns.start}:{columns.stop}"
            rows = r.view(b, lambda w: w[columns].T, f"{b.name}[{span}].T")
            if through is not None:  # one part needs it (h of [x_t, h]): straight to it
                through(np.matmul, grad, rows, shape=grad.shape[:1] + rows.shape[1:])
            else:
                target, _ = r.target(0)
                r.call(np.matmul, grad, rows,
                       r.view(target, lambda g: g[:, columns], f"{target.name}[:, {span}]"))
            r.matmul_weight(1, a, grad)
        else:
            r.give(0, np.matmul, grad, r.transposed(b), shape=a.shape)
            r.matmul_weight(1, a, grad)


# -- elementwise functions --------------------------------------------------------------
# One input each: an op is only recorded when that input needs a gradient.

class Negative(Op):
    __slots__ = ()

    def forward(self, a):
        return -a

    def backward(self, grad):
        return (-grad,)

    def replay_forward(self, r):
        r.call(np.negative, r.ins[0], r.out)

    def replay_backward(self, r):
        r.give(0, np.negative, r.grad)


class Exp(Op):
    __slots__ = ()
    reads_output = (0,)

    def forward(self, a):
        self.out = np.exp(a)
        return self.out

    def backward(self, grad):
        return (grad * self.out,)

    def replay_forward(self, r):
        r.call(np.exp, r.ins[0], r.out)

    def replay_backward(self, r):
        r.give(0, np.multiply, r.grad, r.out)


class Log(Op):
    __slots__ = ()
    reads_input = ((0,),)

    def forward(self, a):
        return np.log(a)

    def backward(self, grad):
        return (grad / self.inputs[0].data,)

    def replay_forward(self, r):
        r.call(np.log, r.ins[0], r.out)

    def replay_backward(self, r):
        r.give(0, np.divide, r.grad, r.ins[0])


class Sigmoid(Op):
    """Keeps its output: d sigmoid = y (1 - y), no second exp in backward."""

    __slots__ = ()
    reads_output = (0,)

    def forward(self, a):
        self.out = _stable_sigmoid(a)
        return self.out

    def backward(self, grad):
        y = self.out
        d = as_array(np.subtract(_ONES.get(y.dtype, 1), y))  # 1 - y, y (1 - y), times grad
        np.multiply(d, y, d)
        np.multiply(d, grad, d)
        return (d,)

    def replay_forward(self, r):  # _stable_sigmoid, in place in the output
        y = r.out
        r.call(np.negative, r.ins[0], y)
        r.call(np.exp, y, y)
        r.call(np.add, y, r.one, y)
        r.call(np.divide, r.one, y, y)

    def replay_backward(self, r):
        y = r.out
        d = r.scratch(y.shape)  # contiguous: only the last call writes into the gradient
        r.call(np.subtract, r.one, y, d)
        r.call(np.multiply, d, y, d)
        r.give(0, np.multiply, d, r.grad)


class Tanh(Op):
    """Keeps its output: d tanh = 1 - y^2."""

    __slots__ = ()
    reads_output = (0,)

    def forward(self, a):
        self.out = np.tanh(a)
        return self.out

    def backward(self, grad):
        y = self.out
        d = as_array(np.multiply(y, y))  # an array even for 0-d, so it can be written to
        np.subtract(_ONES.get(y.dtype, 1), d, d)
        np.multiply(d, grad, d)
        return (d,)

    def replay_forward(self, r):
        r.call(np.tanh, r.ins[0], r.out)

    def replay_backward(self, r):
        y = r.out
        d = r.scratch(y.shape)  # contiguous: only the last call writes into the gradient
        r.call(np.multiply, y, y, d)
        r.call(np.subtract, r.one, d, d)
        r.give(0, np.multiply, d, r.grad)


class Relu(Op):
    """max(a, 0), as PyTorch computes it: a where a is not < 0, so NaN stays NaN and
    -0.0 stays -0.0. Keeps its output, as PyTorch does, and like PyTorch passes the
    gradient wherever the output is not <= 0: 1 at a NaN input, 0 at 0 and -0.0."""

    __slots__ = ()
    reads_output = (0,)

    def forward(self, a):
        self.out = np.where(a < 0, 0, a)
        return self.out

    def backward(self, grad):
        return (np.where(self.out <= 0, 0, grad),)


class Softplus(Op):
    """log(1 + exp(a)) computed as logaddexp(0, a): finite for any a, so losses built
    on it (binary cross-entropy with logits) never overflow."""

    __slots__ = ()
    reads_input = ((0,),)

    def forward(self, a):
        return np.logaddexp(0, a)

    def backward(self, grad):
        return (grad * _stable_sigmoid(self.inputs[0].data),)

    def replay_forward(self, r):
        r.call(np.logaddexp, 0, r.ins[0], r.out)

    def replay_backward(self, r):  # grad * _stable_sigmoid(a)
        d = r.begin(0)
        r.call(np.negative, r.ins[0], d)
        r.call(np.exp, d, d)
        r.call(np.add, d, r.one, d)
        r.call(np.divide, r.one, d, d)
        r.call(np.multiply, r.grad, d, d)
        r.end(0, d)


class BinaryCrossEntropyWithLogits(Op):
    """The elementwise binary cross-entropy of sigmoid(x) against a target t in [0, 1]:
    -[t log s(x) + (1-t) log(1-s(x))], written (1-t) softplus(x) + t softplus(-x) so no
    log of a rounded-to-zero probability is taken: finite for every finite x. One op
    rather than softplus(x) - x*t, because there each infinite logit meets a 0 * inf:
    here the loss is its limit, +inf where it diverges and 0 at (+inf, 1) and (-inf, 0),
    and the gradient is sigmoid(x) - t (0 at those points), as PyTorch's; d/dt is -x."""

    __slots__ = ()
    reads_input = ((0, 1), (0,))

    def forward(self, x, t):
        # where() drops the 0 * inf of an infinite x at t == 1 or t == 0 (silently: ops
        # run with numpy's warnings off, see Op.__call__)
        kept = np.where(t == 1, 0, (1 - t) * np.logaddexp(0, x))
        return kept + np.where(t == 0, 0, t * np.logaddexp(0, -x))

    def backward(self, grad):
        (x, t), (need_x, need_t) = self.inputs, self.needs_input_grad
        return (grad * (_stable_sigmoid(x.data) - t.data) if need_x else None,
                grad * -x.data if need_t else None)


# -- reductions and shape ops -----------------------------------------------------------

def _normalize_axes(axis, ndim):
    """A sorted tuple of non-negative axes (all of them for None)."""
    if axis is None:
        return tuple(range(ndim))
    if ndim == 0:  # numpy and PyTorch take axis 0 or -1 of a 0-d array: nothing to undo
        return ()
    axes = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted(ax % ndim for ax in axes))  # forward already rejected bad axes


class Sum(Op):
    __slots__ = ("axis", "keepdims")

    def __init__(self, axis=None, keepdims=False):
        self.axis = tuple(axis) if isinstance(axis, list) else axis
        self.keepdims = keepdims

    def forward(self, a):
        return a.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        shape = self.inputs[0].data.shape
        if not self.keepdims:  # put the reduced axes back as size 1, then broadcast
            reduced = _normalize_axes(self.axis, len(shape))
            grad = grad.reshape([1 if i in reduced else n for i, n in enumerate(shape)])
        full = np.empty(shape, grad.dtype)
        full[...] = grad
        return (full,)

    def replay_forward(self, r):
        r.call(np.add.reduce, r.ins[0], self.axis, None, r.out, self.keepdims)

    def replay_backward(self, r):
        self._replay_spread(r, r.grad)

    def _replay_spread(self, r, grad):
        """The input's gradient: ``grad`` with the reduced axes put back, broadcast."""
        shape = r.ins[0].shape
        reduced = _normalize_axes(self.axis, len(shape))
        kept = tuple(1 if i in reduced else n for i, n in enumerate(shape))
        r.pass_through(0, r.reshaped(grad, kept))

    def detail(self):
        return "" if self.axis is None else f"axis={self.axis}"


class Mean(Sum):
    __slots__ = ()

    def forward(self, a):
        # The sum over the count, not a.mean: numpy's mean of an empty slice warns through
        # warnings.warn, which the error state ops run under does not silence; 0 / 0 gives
        # NaN silently, as PyTorch's mean of nothing does.
        # float16 adds up in float32, as np.mean does (a float16 sum overflows at 65504)
        wide = np.float32 if a.dtype == np.float16 else None
        total = a.sum(axis=self.axis, keepdims=self.keepdims, dtype=wide)  # checks the axis
        count = math.prod(a.shape[i] for i in _normalize_axes(self.axis, a.ndim))
        return np.true_divide(total, count).astype(a.dtype, copy=False)

    def backward(self, grad):
        shape = self.inputs[0].data.shape
        # A Python int: a numpy integer would promote a float32 gradient to float64.
        count = math.prod(shape[i] for i in _normalize_axes(self.axis, len(shape)))
        if grad.dtype == np.float16:  # the int would become float16 first: inf past 65504
            return super().backward((grad.astype(np.float32) / count).astype(np.float16))
        return super().backward(grad / count)

    def replay_forward(self, r):
        a = r.ins[0]
        if a.dtype == np.float16:
            return r.eager_forward()
        count = math.prod(a.shape[i] for i in _normalize_axes(self.axis, len(a.shape)))
        r.call(np.add.reduce, a, self.axis, None, r.out, self.keepdims)
        r.call(np.true_divide, r.out, count, r.out)

    def replay_backward(self, r):
        grad, shape = r.grad, r.ins[0].shape
        if grad.dtype == np.float16:
            return r.eager_backward()
        count = math.prod(shape[i] for i in _normalize_axes(self.axis, len(shape)))
        divided = r.scratch(grad.shape)
        r.call(np.true_divide, grad, count, divided)
        self._replay_spread(r, divided)


class Reshape(View):
    __slots__ = ("shape",)

    def __init__(self, shape):
        self.shape = shape

    def forward(self, a):
        return a.reshape(self.shape)

    def backward(self, grad):
        return (grad.reshape(self.inputs[0].data.shape),)

    def replay_forward(self, r):
        shape = self.shape
        if not r.alias_output(lambda a: a.reshape(shape)):
            r.eager_forward()

    def replay_backward(self, r):
        r.pass_through(0, r.reshaped(r.grad, r.ins[0].shape))

    def detail(self):
        return str(self.shape)


class Transpose(View):
    __slots__ = ("axes",)

    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, a):
        return np.transpose(a, self.axes)

    def backward(self, grad):
        axes = self.axes
        if axes is None:
            return (np.transpose(grad),)
        return (np.transpose(grad, np.argsort([ax % grad.ndim for ax in axes])),)

    def replay_forward(self, r):
        axes = self.axes
        r.alias_output(lambda a: np.transpose(a, axes))

    def replay_backward(self, r):
        ndim = len(r.grad.shape)
        back = None if self.axes is None else tuple(np.argsort([ax % ndim for ax in self.axes]))
        r.pass_through(0, r.view(r.grad, lambda g: np.transpose(g, back)))

    def detail(self):
        return "" if self.axes is None else str(tuple(self.axes))


_BASIC_INDEX_TYPES = (int, slice, type(None), type(Ellipsis))


def _is_basic_index(index):
    """Only ints, slices, None and ...: each position is selected at most once."""
    for i in index:
        if type(i) is slice or type(i) is int:  # the usual case, told apart at once
            continue
        if not isinstance(i, _BASIC_INDEX_TYPES) or isinstance(i, bool):
            return False
    return True


def _format_index(index):
    def one(i):
        if isinstance(i, slice):
            text = f"{'' if i.start is None else i.start}:{'' if i.stop is None else i.stop}"
            return text + (f":{i.step}" if i.step is not None else "")
        return "..." if i is Ellipsis else "array" if isinstance(i, (list, np.ndarray)) else str(i)
    return "[" + ", ".join(one(i) for i in index) + "]"


class IndexedGrad:
    """A gradient that is zero except for ``values`` at ``index`` of a ``shape`` array.

    Slicing returns this instead of a mostly-zero array. The slices of one tensor (the
    four gates of an LSTM step) stay apart (``join``, in ``tensor.accumulate``) until
    their node's turn in the sweep, when ``np.asarray`` makes the dense gradient in one
    pass: a single ``np.concatenate`` where they tile the array along one axis, else
    zeros with each part added in. ``parts`` holds ``(index, values, basic)`` triples.
    """

    __slots__ = ("parts", "shape")

    def __init__(self, index, values, shape, basic):
        self.parts, self.shape = [(index, values, basic)], shape

    dtype = property(lambda self: self.parts[0][1].dtype)

    def astype(self, dtype):
        cast = IndexedGrad(None, None, self.shape, True)
        cast.parts = [(index, values.astype(dtype), basic) for index, values, basic in self.parts]
        return cast

    def join(self, other):
        """Take ``other``'s parts too (in place: each slice's backward makes its own)."""
        self.parts += other.parts
        return self

    def add_into(self, dense):
        for index, values, basic in self.parts:
            if not basic:  # integer arrays may select a position twice: add every one
                np.add.at(dense, index, values)
                continue
            region = dense[index]  # a view to add into, unless one element was picked
            if type(region) is np.ndarray:
                np.add(region, values, region)
            else:
                dense[index] += values
        return dense

    def __array__(self, dtype=None, copy=None):
        if dtype is None or dtype == self.dtype:
            tiled = self._tiled()
            if tiled is not None:
                return tiled
        return self.add_into(np.zeros(self.shape, dtype or self.dtype))

    def _tiled(self):
        """The parts joined by one ``np.concatenate``, if they are slices that tile the
        array along one axis (each part whole, ``:``, along the others), else None."""
        parts, shape = self.parts, self.shape
        if len(parts) < 2:
            return None
        axis, spans = None, []
        for index, values, basic in parts:
            if not basic or len(index) != len(shape):
                return None
            cut = None
            for i, item in enumerate(index):
                if type(item) is not slice:
                    return None
                if item.start is None and item.stop is None and item.step is None:
                    continue  # ':'
                if cut is not None:
                    return None
                cut, span = i, item.indices(shape[i])
            if cut is None or span[2] != 1 or (axis is not None and cut != axis):
                return None
            axis = cut
            spans.append((span[0], span[1], values))
        spans.sort(key=_first)
        end = 0
        for start, stop, _ in spans:
            if start != end:
                return None
            end = stop
        if end != shape[axis]:
            return None
        return np.concatenate([values for _, _, values in spans], axis=axis)


def _first(pair):
    return pair[0]


class InputProductGrad:
    """The gradient ``g @ b.T`` of a matrix product's left operand, kept as its factors
    (``of``: only where a concat made that operand) until the operand's turn in the
    sweep. There the concat's backward computes only the parts that need a gradient
    (``part``): an LSTM step's [x_t, h_prev] @ W needs h_prev's columns, never x_t's.
    Anything else makes it dense (``np.asarray``)."""

    __slots__ = ("g", "b", "shape", "dtype")

    @staticmethod
    def of(operand, g, b):
        if type(operand.op) is not Concat or g.dtype != b.dtype:
            return g @ b.T
        lazy = object.__new__(InputProductGrad)
        lazy.g, lazy.b, lazy.shape, lazy.dtype = g, b, (g.shape[0], b.shape[0]), g.dtype
        return lazy

    def part(self, axis, start, stop):
        """Rows (axis 0) or columns (axis 1) ``start:stop`` of ``g @ b.T``."""
        if axis == 0:
            return self.g[start:stop] @ self.b.T
        return self.g @ self.b[start:stop].T

    def astype(self, dtype):
        return np.asarray(self).astype(dtype)

    def __array__(self, dtype=None, copy=None):
        product = self.g @ self.b.T
        return product if dtype is None else product.astype(dtype, copy=False)


class ProductGrad:
    """The gradient ``a.T @ g`` of a matrix product's right operand (a weight), kept as
    its factors where they are smaller than the product (``of``).

    A weight used at every time step gets one such gradient per step; ``join`` (in
    ``tensor.accumulate``) collects them, and ``np.asarray`` computes their sum as one
    product of the stacked factors when the weight's turn comes in the sweep. One large
    product beats T small ones, each followed by an addition into the weight's gradient,
    once the weight is large beside the rows of a step (S4 of the LSTM benchmark).
    ``pairs`` holds the ``(a, g)`` factors.
    """

    __slots__ = ("pairs", "shape", "dtype")

    @staticmethod
    def of(a, g):
        """``a.T @ g``, lazily when its factors (copied once to be stacked) take less than
        half the room of the product, which each step's addition would pass over twice."""
        rows, inner, outer = a.shape[0], a.shape[1], g.shape[1]
        if 2 * rows * (inner + outer) >= inner * outer or a.dtype != g.dtype:
            return a.T @ g
        lazy = object.__new__(ProductGrad)
        lazy.pairs, lazy.shape, lazy.dtype = [(a, g)], (inner, outer), a.dtype
        return lazy

    def join(self, other):
        """Take ``other``'s pairs too (in place: each product's backward makes its own)."""
        self.pairs += other.pairs
        return self

    def astype(self, dtype):
        return np.asarray(self).astype(dtype)

    def __array__(self, dtype=None, copy=None):
        pairs = self.pairs
        if len(pairs) == 1:
            a, g = pairs[0]
            product = a.T @ g
        else:
            product = (np.concatenate([a for a, _ in pairs]).T
                       @ np.concatenate([g for _, g in pairs]))
        return product if dtype is None else product.astype(dtype, copy=False)


class Slice(View):
    """``t[index]``. The gradient is zero outside the selected part, so it is returned
    as an ``IndexedGrad`` that backward adds into the input's gradient buffer."""

    __slots__ = ("index", "basic")

    def __init__(self, index):
        index = index if type(index) is tuple else (index,)
        self.basic = _is_basic_index(index)
        if not self.basic and any(isinstance(i, Tensor) for i in index):
            raise IndexError("a Tensor cannot index: tensors hold floats; index with an "
                             "integer or boolean numpy array (t.data.astype(int) if meant)")
        self.index = index

    def forward(self, a):
        return a[self.index]

    def backward(self, grad):
        return (IndexedGrad(self.index, grad, self.inputs[0].data.shape, self.basic),)

    def replay_forward(self, r):
        if not self.basic or not r.alias_output(lambda a, index=self.view_index(): a[index]):
            r.eager_forward()  # an integer-array index (read at replay: it may be an argument)

    def replay_backward(self, r):
        if not self.basic:
            return r.eager_backward()
        if r.in_place():  # the ops after this slice wrote into the input's gradient
            return
        index = self.view_index()
        target, mode = r.target(0)
        if mode == "write":
            r.call(np.copyto, target, 0)
        region = r.view(target, lambda g: g[index])
        r.call(np.add, region, r.grad, region)

    def view_index(self):
        """The index with a trailing ``...``: a 0-d array view where ``a[1]`` of a
        vector would give a scalar (which numpy cannot write into)."""
        return self.index if any(i is Ellipsis for i in self.index) else self.index + (...,)

    def detail(self):
        return _format_index(self.index)


class Concat(Op):
    """Joins inputs along an axis (with axis=None: flattened, then joined, as in numpy);
    the gradient is split back at the same boundaries. A matrix product's gradient
    ``g @ b.T`` arrives as its factors (``InputProductGrad``), and only the parts that
    need a gradient are computed: never the x_t columns of an LSTM step's [x_t, h]."""

    __slots__ = ("axis",)
    sequence_operands = True
    takes_input_product = True

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, *arrays):
        return np.concatenate(arrays, axis=self.axis)

    def backward(self, grad):
        flat = self.axis is None
        product = type(grad) is InputProductGrad and not flat
        if not product and type(grad) is not np.ndarray:
            grad = np.asarray(grad)  # another lazy kind
        axis = 0 if flat else self.axis % len(grad.shape)
        before = (slice(None),) * axis
        grads, start = [], 0
        for t, needs in zip(self.inputs, self.needs_input_grad):
            shape = t.data.shape
            stop = start + (math.prod(shape) if flat else shape[axis])
            if not needs:
                part = None
            elif product:
                part = grad.part(axis, start, stop)
            else:
                part = grad[before + (slice(start, stop),)]
            grads.append(part.reshape(shape) if flat and needs else part)
            start = stop
        return grads

    def replay_forward(self, r):
        r.call(np.concatenate, tuple(r.ins), self.axis, r.out)

    def replay_backward(self, r):
        if self.axis is None:
            return r.eager_backward()
        grad = r.grad
        axis = self.axis % len(grad.shape)
        start = 0
        for i, value in enumerate(r.ins):
            stop = start + value.shape[axis]
            if r.needs[i]:
                part = (slice(None),) * axis + (slice(start, stop),)
                r.pass_through(i, r.view(grad, lambda g, part=part: g[part],
                                         f"{grad.name}{_format_index(part)}"))
            start = stop

    def detail(self):
        return f"axis={self.axis}"


class Stack(Op):
    __slots__ = ("axis",)
    sequence_operands = True

    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *arrays):
        return np.stack(arrays, axis=self.axis)

    def backward(self, grad):
        moved = np.moveaxis(grad, self.axis, 0)
        return tuple(moved[i] if needs else None
                     for i, needs in enumerate(self.needs_input_grad))

    def replay_forward(self, r):
        r.call(np.stack, tuple(r.ins), self.axis, r.out)

    def replay_backward(self, r):
        axis = self.axis
        for i in range(len(r.ins)):
            if r.needs[i]:
                part = f"{r.grad.name}[{':, ' * (axis % len(r.grad.shape))}{i}]"
                r.pass_through(i, r.view(r.grad, lambda g, i=i: np.moveaxis(g, axis, 0)[i, ...],
                                         part))

    def detail(self):
        return f"axis={self.axis}"


# -- piecewise ops and softmax ----------------------------------------------------------
# abs, maximum/minimum, max/min, clip and where have kinks; each takes PyTorch's
# gradient there, and its docstring says which.

class Abs(Op):
    """|a|. Its gradient is grad * sign(a), with PyTorch's sign: 0 at a == 0 and at a
    NaN (numpy's sign of NaN is NaN)."""

    __slots__ = ()
    reads_input = ((0,),)

    def forward(self, a):
        return np.abs(a)

    def backward(self, grad):
        a = self.inputs[0].data
        return (grad * np.where(np.isnan(a), 0, np.sign(a)),)


def _winner_gradients(op, grad, loses):
    """Gradients of maximum (``loses`` = np.less) or minimum (np.greater), as PyTorch's:
    an input gets ``grad`` where it is the result, none where it lost, and half where
    a == b. Where either is NaN (so is the result) neither lost, and both get ``grad``."""
    (a, b), (need_a, need_b) = op.inputs, op.needs_input_grad
    a, b = a.data, b.data
    shared = np.where(a == b, grad * 0.5, grad)
    return (unbroadcast(np.where(loses(a, b), 0, shared), a.shape) if need_a else None,
            unbroadcast(np.where(loses(b, a), 0, shared), b.shape) if need_b else None)


class Maximum(Elementwise):
    """The larger of a and b, elementwise; a tie splits the gradient in halves
    (as torch.maximum)."""

    __slots__ = ()
    commutative = True
    reads_input = ((0, 1), (0, 1))
    ufunc = np.maximum

    def backward(self, grad):
        return _winner_gradients(self, grad, np.less)


class Minimum(Elementwise):
    """The smaller of a and b, elementwise; a tie splits the gradient in halves
    (as torch.minimum)."""

    __slots__ = ()
    commutative = True
    reads_input = ((0, 1), (0, 1))
    ufunc = np.minimum

    def backward(self, grad):
        return _winner_gradients(self, grad, np.greater)


class Max(Op):
    """The largest element over ``axis`` (all axes for None). Tied maxima share the
    gradient equally, as torch.amax does (np.argmax-style "first one wins" would make
    the gradient depend on the order of the elements). A slice holding NaN has result
    NaN and, as in PyTorch, gradient NaN."""

    __slots__ = ("axis", "keepdims")
    reads_input, reads_output = ((0,),), (0,)
    reduce = staticmethod(np.max)

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, a):
        self.out = self.reduce(a, axis=self.axis, keepdims=True)
        return self.out if self.keepdims else np.squeeze(self.out, self.axis)

    def backward(self, grad):
        a = self.inputs[0].data
        chosen = a == self.out
        count = chosen.sum(axis=self.axis, keepdims=True).astype(grad.dtype)
        # chosen * (g / count), not np.where: 0 * inf keeps a NaN slice's gradient NaN.
        return (chosen * (grad.reshape(self.out.shape) / count),)

    def detail(self):
        if self.axis is None:
            return ""
        return f"axis={self.axis[0] if len(self.axis) == 1 else self.axis}"


class Min(Max):
    """The smallest element over ``axis``; tied minima share the gradient equally
    (as torch.amin)."""

    __slots__ = ()
    reduce = staticmethod(np.min)


class Clip(Op):
    """a limited to [low, high]; either bound may be None (no limit on that side).

    The gradient passes where low <= a <= high, the bounds included, and is 0 outside,
    as for torch.clamp. With low > high every element becomes high and none passes.
    The bounds are constants (numbers, or arrays that broadcast against a).
    """

    __slots__ = ("low", "high")
    reads_input = ((0,),)

    def __init__(self, low, high):
        self.low, self.high = low, high

    def forward(self, a):
        return np.clip(a, self.low, self.high)

    def backward(self, grad):
        a = self.inputs[0].data
        inside = True
        if self.low is not None:
            inside = a >= self.low
        if self.high is not None:
            inside = inside & (a <= self.high)
        # where, not *: outside the bounds the gradient is 0 even where grad is inf or nan
        return (unbroadcast(np.where(inside, grad, 0), a.shape),)

    def detail(self):
        def text(bound):
            return "array" if getattr(bound, "ndim", 0) else f"{float(bound):g}"
        return ", ".join(f"{name}={text(bound)}" for name, bound in
                         (("low", self.low), ("high", self.high)) if bound is not None)


class Where(Elementwise):
    """``a`` where ``condition`` holds, else ``b``; all three broadcast together. The
    condition is a constant bool array (no gradient); each branch gets the gradient
    where it was chosen and 0 elsewhere. As an Elementwise op it follows PyTorch's
    dtype rule for a and b."""

    __slots__ = ("condition",)

    def __init__(self, condition):
        self.condition = condition

    def ufunc(self, a, b):  # called by Elementwise.forward, after its dtype rule
        return np.where(self.condition, a, b)

    def backward(self, grad):
        (a, b), (need_a, need_b) = self.inputs, self.needs_input_grad
        return (unbroadcast(np.where(self.condition, grad, 0), a.data.shape) if need_a else None,
                unbroadcast(np.where(self.condition, 0, grad), b.data.shape) if need_b else None)

    replay_forward = Op.replay_forward  # (its ufunc is a method reading the condition)


def _kept_shape(shape, axis):
    """``shape`` reduced over ``axis`` with keepdims (all of it for None)."""
    return tuple(1 if axis is None or k == axis % len(shape) else n
                 for k, n in enumerate(shape))


class Softmax(Op):
    """exp(a) / sum(exp(a)) along ``axis``, computed from a - max(a), so no exp can
    overflow: stable for logits of any size. Keeps its output y: the gradient is
    y * (grad - sum(grad * y))."""

    __slots__ = ("axis",)
    reads_output = (0,)

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, a):
        e = np.exp(a - np.max(a, axis=self.axis, keepdims=True, initial=-np.inf))
        self.out = as_array(e / e.sum(axis=self.axis, keepdims=True))
        return self.out

    def backward(self, grad):
        y = self.out
        return (y * (grad - (grad * y).sum(axis=self.axis, keepdims=True)),)

    def replay_forward(self, r):  # the operations of forward, into the output's array
        (a,), y, axis = r.ins, r.out, self.axis
        peak, total = r.scratch(_kept_shape(a.shape, axis)), r.scratch(_kept_shape(a.shape, axis))
        r.call(np.maximum.reduce, a, axis, None, peak, True, -np.inf)
        r.call(np.subtract, a, peak, y)
        r.call(np.exp, y, y)
        r.call(np.add.reduce, y, axis, None, total, True)
        r.call(np.divide, y, total, y)

    def replay_backward(self, r):
        grad, y, axis = r.grad, r.out, self.axis
        product, total = r.scratch(y.shape), r.scratch(_kept_shape(y.shape, axis))
        r.call(np.multiply, grad, y, product)
        r.call(np.add.reduce, product, axis, None, total, True)
        r.call(np.subtract, grad, total, product)
        r.give(0, np.multiply, y, product)

    def detail(self):
        return "" if self.axis is None else f"axis={self.axis}"


class LogSoftmax(Softmax):
    """a - logsumexp(a) along ``axis``, computed from a - max(a): finite for logits of
    any size (where log(softmax(a)) would take the log of an underflowed 0). Keeps its
    output y: the gradient is grad - exp(y) * sum(grad)."""

    __slots__ = ()

    def forward(self, a):
        shifted = a - np.max(a, axis=self.axis, keepdims=True, initial=-np.inf)
        self.out = as_array(shifted - np.log(np.exp(shifted).sum(axis=self.axis, keepdims=True)))
        return self.out

    def backward(self, grad):
        return (grad - np.exp(self.out) * grad.sum(axis=self.axis, keepdims=True),)

    def replay_forward(self, r):  # the operations of forward, into the output's array
        (a,), y, axis = r.ins, r.out, self.axis
        peak, total = r.scratch(_kept_shape(a.shape, axis)), r.scratch(_kept_shape(a.shape, axis))
        r.call(np.maximum.reduce, a, axis, None, peak, True, -np.inf)
        r.call(np.subtract, a, peak, y)
        exp = r.scratch(y.shape)
        r.call(np.exp, y, exp)
        r.call(np.add.reduce, exp, axis, None, total, True)
        r.call(np.log, total, total)
        r.call(np.subtract, y, total, y)

    def replay_backward(self, r):
        grad, y, axis = r.grad, r.out, self.axis
        total = r.scratch(_kept_shape(grad.shape, axis))
        r.call(np.add.reduce, grad, axis, None, total, True)
        spread = r.scratch(y.shape)
        r.call(np.exp, y, spread)
        r.call(np.multiply, spread, total, spread)
        r.give(0, np.subtract, grad, spread)


class Dropout(Op):
    """Zeroes each element with probability ``p`` and scales the others by 1/(1-p), so
    the expected output equals the input (inverted dropout, as in PyTorch).

    The mask is drawn in ``forward`` from ``rng``, not given as an input: running the op
    again (a replayed step) draws a fresh mask, as every training step must. Backward
    multiplies by the same scaled mask."""

    __slots__ = ("p", "rng", "mask")
    draws_random = True  # a compiled step draws a fresh mask at every replay

    def __init__(self, p, rng):
        self.p, self.rng = p, rng

    def forward(self, a):
        scale = np.asarray(1.0 / (1.0 - self.p), dtype=a.dtype)
        self.mask = (self.rng.random(a.shape) >= self.p) * scale
        return a * self.mask

    def backward(self, grad):
        return (grad * self.mask,)

    def release(self):
        super().release()
        self.mask = None

    def detail(self):
        return f"p={self.p:g}"


class NLLLoss(Op):
    """The mean over positions of -a[..., target]: the negative log-likelihood of the
    target classes, given log-probabilities ``a`` (..., C) with the class axis last.

    Positions whose target is ``ignore_index`` add nothing and are not counted (NaN if
    none is left, as in PyTorch). One op rather than an index and a mean because which
    positions count depends on the target's values: kept as an attribute and read at
    every forward, the target can change from call to call (``mg.compile`` replays the
    op with each call's target). The gradient is -grad / count at each kept target."""

    __slots__ = ("target", "ignore_index", "keep", "count")

    def __init__(self, target, ignore_index=None):
        self.target, self.ignore_index = target, ignore_index

    def forward(self, a):
        target = self.target
        self.keep = None if self.ignore_index is None else target != self.ignore_index
        safe = target if self.keep is None else np.where(self.keep, target, 0)
        picked = np.take_along_axis(a, safe[..., None], axis=-1)[..., 0]
        if self.keep is not None:
            picked = picked * self.keep
        self.count = np.asarray(target.size if self.keep is None else self.keep.sum(),
                                dtype=a.dtype)
        return 0.0 - picked.sum(dtype=a.dtype) / self.count  # +0.0 for a zero loss, as PyTorch

    def backward(self, grad):
        a = self.inputs[0].data
        out = np.empty(a.shape, a.dtype)
        self._fill(grad, out)
        return (out,)

    def replay_backward(self, r):  # backward's values, written into the planned array
        r.give(0, self._fill, r.grad, shape=r.ins[0].shape)

    def _fill(self, grad, out):
        """Write the gradient into ``out``: -grad / count at each kept target, 0 elsewhere."""
        scale = -grad / self.count
        values = np.broadcast_to(scale, self.target.shape)
        if self.keep is not None:  # (where, not *: with nothing kept, -grad / 0 is inf)
            values = np.where(self.keep, values, 0)
        safe = self.target if self.keep is None else np.where(self.keep, self.target, 0)
        out[...] = 0
        np.put_along_axis(out, safe[..., None], values[..., None].astype(out.dtype), axis=-1)

    def release(self):
        super().release()
        self.keep = None

    def detail(self):
        return "" if self.ignore_index is None else f"ignore_index={self.ignore_index}"


# -- the functional API: convert operands, call the op -----------------------------------

def _lift(x, like):
    """Make a non-Tensor operand a constant Tensor.

    Numbers (Python's and numpy's scalars) and integer arrays take the dtype of the
    Tensor they meet, so ``x32 * 0.5`` stays float32 (as in PyTorch); float arrays keep
    their own dtype, 0-d ones included, and ``Elementwise`` applies PyTorch's rule to
    them as to tensors (``Tensor(np.float32(1.5)) * np.array(2.0)`` is float64).
    """
    if isinstance(x, Tensor):
        return x
    array = np.asarray(x)
    number = array.ndim == 0 and not isinstance(x, np.ndarray)
    if like is not None and array.dtype.kind in "biuf" and (number or array.dtype.kind != "f"):
        array = astype(array, like.data.dtype)
    return Tensor(array)


def _operands(a, b):
    if isinstance(a, Tensor):
        return a, b if isinstance(b, Tensor) else _lift(b, a)
    b = _lift(b, None)
    return _lift(a, b), b


def add(a, b):
    """a + b with numpy broadcasting."""
    return Add()(*_operands(a, b))


def subtract(a, b):
    """a - b with numpy broadcasting."""
    return Subtract()(*_operands(a, b))


def multiply(a, b):
    """a * b (elementwise) with numpy broadcasting."""
    return Multiply()(*_operands(a, b))


def divide(a, b):
    """a / b with numpy broadcasting."""
    return Divide()(*_operands(a, b))


def power(a, b):
    """a ** b with numpy broadcasting."""
    return Power()(*_operands(a, b))


def matmul(a, b):
    """a @ b with numpy's rules (1-D promotion, batched leading dims)."""
    return Matmul()(*_operands(a, b))


def negative(x):
    return Negative()(_lift(x, None))


def exp(x):
    return Exp()(_lift(x, None))


def log(x):
    return Log()(_lift(x, None))


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow."""
    return Sigmoid()(_lift(x, None))


def tanh(x):
    return Tanh()(_lift(x, None))


def relu(x):
    return Relu()(_lift(x, None))


def softplus(x):
    """log(1 + exp(x)), computed without overflow."""
    return Softplus()(_lift(x, None))


def sum(x, axis=None, keepdims=False):  # noqa: A001  (mirrors np.sum)
    return Sum(axis, keepdims)(_lift(x, None))


def mean(x, axis=None, keepdims=False):
    return Mean(axis, keepdims)(_lift(x, None))


def _shape_args(args):
    """Accept both f(t, 2, 3) and f(t, (2, 3)), like numpy's and PyTorch's methods."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return args


def reshape(x, *shape):
    return Reshape(_shape_args(shape))(_lift(x, None))


def transpose(x, *axes):
    """Reverse the axes (no axes, or None as in numpy), or permute them as given."""
    axes = _shape_args(axes)
    return Transpose(None if axes in ((), (None,)) else axes)(_lift(x, None))


def getitem(x, index):
    """``x[index]`` for basic indexing and slicing (and integer arrays)."""
    return Slice(index)(_lift(x, None))


def _sequence_of_tensors(name, tensors):
    if isinstance(tensors, (Tensor, np.ndarray)) or not tensors:
        raise ValueError(f"{name} takes a non-empty list of tensors, got {type(tensors).__name__}")
    tensors = [_lift(t, None) for t in tensors]
    return tensors


def concat(tensors, axis=-1):
    """Join tensors along an existing axis (``np.concatenate``)."""
    return Concat(axis)(*_sequence_of_tensors("concat", tensors))


def stack(tensors, axis=0):
    """Join tensors along a new axis (``np.stack``)."""
    return Stack(axis)(*_sequence_of_tensors("stack", tensors))


# Named like numpy's functions, so these shadow the builtins abs, max and min in this
# module: nothing here uses the builtins.

def abs(x):  # noqa: A001  (mirrors np.abs)
    """|x| elementwise; the gradient at 0 is 0 (sign), as in PyTorch."""
    return Abs()(_lift(x, None))


def maximum(a, b):
    """The larger of a and b, elementwise, with broadcasting; a tie splits the gradient
    in halves, as torch.maximum."""
    return Maximum()(*_operands(a, b))


def minimum(a, b):
    """The smaller of a and b, elementwise, with broadcasting; a tie splits the gradient
    in halves, as torch.minimum."""
    return Minimum()(*_operands(a, b))


def _checked_axes(name, x, axis):
    """``axis`` (None, an int or a tuple of ints) checked against ``x``: None or a tuple
    of distinct non-negative axes. A 0-d tensor also takes axis 0 or -1, as in PyTorch."""
    if axis is None:
        return None
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    if not all(isinstance(ax, (int, np.integer)) and not isinstance(ax, bool) for ax in axes):
        raise TypeError(f"{name}: axis must be None, an int or a tuple of ints, got {axis!r}")
    if x.ndim == 0 and all(ax in (0, -1) for ax in axes):
        return None
    for ax in axes:
        if not -x.ndim <= ax < x.ndim:
            raise ValueError(f"{name}: axis {ax} is out of range for a tensor of shape "
                             f"{x.shape}")
    normalized = tuple(int(ax) % x.ndim for ax in axes)
    for i, ax in enumerate(normalized):
        if ax in normalized[:i]:
            raise ValueError(f"{name}: axis {ax} is repeated in {axes}")
    return normalized


def _extreme(op, name, x, axis, keepdims):
    x = _lift(x, None)
    axes = _checked_axes(name, x, axis)
    for ax in range(x.ndim) if axes is None else axes:
        if x.shape[ax] == 0:
            raise ValueError(f"{name}: cannot reduce over axis {ax} of size 0 (shape "
                             f"{x.shape}): the {name} of nothing is undefined")
    return op(axes, bool(keepdims))(x)


def max(x, axis=None, keepdims=False):  # noqa: A001  (mirrors np.max)
    """The largest element over ``axis`` (None: all; an int; a tuple). Ties share the
    gradient equally, as torch.amax."""
    return _extreme(Max, "max", x, axis, keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001  (mirrors np.min)
    """The smallest element over ``axis``. Ties share the gradient equally, as
    torch.amin."""
    return _extreme(Min, "min", x, axis, keepdims)


def clip(x, low=None, high=None):
    """``x`` limited to [low, high], either bound None for no limit on that side.

    The gradient passes where low <= x <= high (bounds included), as for torch.clamp.
    Bounds are numbers or arrays (broadcasting against x), cast to x's dtype; a bound
    that needs a gradient is a job for ``maximum``/``minimum``.
    """
    if low is None and high is None:
        raise ValueError("clip: give low, high or both (None means no limit on that side)")
    x = _lift(x, None)
    bounds = []
    for name, bound in (("low", low), ("high", high)):
        if isinstance(bound, Tensor):
            raise TypeError(f"clip: the bounds are constants, got a Tensor for {name}; "
                            "for a bound that needs a gradient use mg.maximum(x, low) / "
                            "mg.minimum(x, high)")
        if bound is not None:
            bound = np.asarray(bound)
            if bound.dtype.kind not in "biuf":
                raise ValueError(f"clip: {name} must be numeric, got {bound.dtype}")
            bound = astype(bound, x.dtype, copy=True)
        bounds.append(bound)
    return Clip(*bounds)(x)


def where(condition, a, b):
    """``a`` where ``condition`` holds, else ``b`` (all three broadcast together).

    ``condition`` is a bool array (``x > 0``, ``x.data > 0``), or a Tensor of 0s and 1s
    (a mask); it gets no gradient. ``a`` and ``b`` may be Tensors, arrays or numbers.
    """
    if isinstance(condition, Tensor):
        values = condition.data
        if not np.all((values == 0) | (values == 1)):
            raise ValueError("where: a Tensor condition must hold only 0 and 1 (a mask); "
                             "compare first, e.g. x > 0")
        condition = values == 1
    else:
        condition = np.asarray(condition)
        if condition.dtype != bool:
            raise ValueError(f"where: condition must be a bool array (such as x > 0), "
                             f"got dtype {condition.dtype}")
    a, b = _operands(a, b)
    try:
        np.broadcast_shapes(condition.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(f"where: condition {condition.shape}, a {a.shape} and b {b.shape} "
                         "do not broadcast together") from None
    return Where(condition)(a, b)


def _softmax_axis(name, x, axis):
    """The one axis softmax normalises over, checked (None for a 0-d tensor)."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: axis must be an int, got {axis!r}")
    axes = _checked_axes(name, x, axis)
    return None if axes is None else axes[0]


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``: probabilities that sum to 1. Stable for
    logits of any size (computed from x - max(x))."""
    x = _lift(x, None)
    return Softmax(_softmax_axis("softmax", x, axis))(x)


def log_softmax(x, axis=-1):
    """log(softmax(x)) along ``axis``, computed as x - logsumexp(x): finite where the
    softmax underflows to 0. The input of a cross-entropy."""
    x = _lift(x, None)
    return LogSoftmax(_softmax_axis("log_softmax", x, axis))(x)
