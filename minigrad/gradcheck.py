"""Numerical check of analytic gradients: the test every op's backward must pass."""
import numpy as np

from .context import no_grad
from .tensor import Tensor, topological_order


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with central differences."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, *, max_elements=None, seed=0):
    """Compare backward's gradients with central differences, in float64.

    ``fn(*inputs)`` must return a Tensor. Every input with ``requires_grad=True`` is
    checked. The output is contracted with a random upstream gradient ``u``: with an
    all-ones ``u`` a backward that ignores its incoming gradient would still pass.
    Float64 inputs are perturbed in place (and restored), so ``fn`` may also reach them
    another way, e.g. as a module's parameters; other dtypes are checked on float64 copies.

    Each element is checked (for inputs larger than ``max_elements``, a random sample of
    that many). Returns True, or raises ``GradcheckError`` naming the input, the index,
    both values and the error.
    """
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if not all(isinstance(t, Tensor) for t in inputs):
        raise TypeError("gradcheck: inputs must be Tensors")
    given = inputs
    inputs = [t if t.dtype == np.float64 else Tensor(t.data.astype(np.float64),
                                                     t.requires_grad, t.name)
              for t in inputs]
    checked = [i for i, t in enumerate(inputs) if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, nothing to check")
    rng = np.random.default_rng(seed)

    saved_grads = [t.grad for t in inputs]
    for t in inputs:
        t.grad = None
    try:
        out = fn(*inputs)
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
        upstream = rng.standard_normal(out.shape)
        if out.requires_grad:
            _refuse_bypassed_copies(out, given, inputs, checked)
            out.backward(upstream)
        analytic = [t.grad if t.grad is not None else np.zeros_like(t.data) for t in inputs]
    finally:
        for t, g in zip(inputs, saved_grads):
            t.grad = g

    def objective():
        with no_grad():
            return float(np.sum(fn(*inputs).data * upstream))

    for i in checked:
        x = inputs[i].data
        if analytic[i].shape != x.shape:
            raise GradcheckError(f"input {_describe(i, inputs[i])}: gradient has shape "
                                 f"{analytic[i].shape}, input has shape {x.shape}")
        positions = range(x.size)
        if max_elements is not None and x.size > max_elements:
            positions = np.sort(rng.choice(x.size, max_elements, replace=False))
        for flat in positions:
            index = np.unravel_index(flat, x.shape)
            numeric = central_difference(objective, x, index, eps)
            value = float(analytic[i][index])
            error = abs(value - numeric)
            if not error <= atol + rtol * abs(numeric):
                raise GradcheckError(
                    f"gradient mismatch for input {_describe(i, inputs[i])} at index "
                    f"{tuple(int(k) for k in index)}: analytic {value:.10g}, numeric "
                    f"{numeric:.10g}, error {error:.3g} > atol + rtol*|numeric| = "
                    f"{atol + rtol * abs(numeric):.3g}")
    return True


def _refuse_bypassed_copies(out, given, inputs, checked):
    """A ValueError if ``fn`` reached a non-float64 input by another way (a module's
    own parameter) instead of through the float64 copy it was handed: neither gradient
    would then see the copy, and the check would pass without checking anything."""
    reached = {id(t) for t in topological_order(out)}
    for i in checked:
        if given[i] is not inputs[i] and id(inputs[i]) not in reached \
                and id(given[i]) in reached:
            raise ValueError(
                f"gradcheck: input {_describe(i, given[i])} has dtype {given[i].dtype}, so fn "
                f"is given a float64 copy of it, but fn used the original (e.g. a module's "
                f"own parameter) and nothing would be checked; build the model in float64 "
                f"(dtype=np.float64) or compute from fn's arguments")


def central_difference(f, array, index, eps):
    """(f() at array[index] + eps - f() at array[index] - eps) / 2 eps.

    ``array`` is changed in place for the two calls and restored; ``f`` must read it.
    """
    original = array[index]
    array[index] = original + eps
    plus = f()
    array[index] = original - eps
    minus = f()
    array[index] = original
    return (plus - minus) / (2 * eps)


def numeric_gradient(f, array, eps=1e-6):
    """d f() / d array by central differences, every element (f returns a float)."""
    grad = np.zeros(array.shape)
    for index in np.ndindex(array.shape):
        grad[index] = central_difference(f, array, index, eps)
    return grad


def _describe(position, tensor):
    return f"{position} ({tensor.name!r}, shape {tensor.shape})" if tensor.name else \
        f"{position} (shape {tensor.shape})"
