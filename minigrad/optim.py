"""Optimizers (SGD with momentum, Adam) and gradient clipping, with PyTorch's update rules.

Each optimizer updates ``p.data`` in place, so the Parameter objects a model holds (and
their dtype) never change, and counts the change in the parameter's version, so a
backward through a graph built before the step refuses (as in PyTorch) rather than
using the new values. It keeps its state in arrays of each parameter's dtype.
``state_dict()`` is a flat ``{str: np.ndarray}`` dict keyed by parameter position
(``'exp_avg.0'``), so ``mg.save(opt.state_dict(), path)`` needs no special case and a run
resumed from a checkpoint continues bit for bit like one that never stopped.
"""
import math
import numbers

import numpy as np

from .context import ignore_numpy_errors, restore_numpy_errors
from .tensor import Tensor, astype


def _check_number(owner, name, value, low, high=None):
    """``value`` as a float if low <= value (< high), else a ValueError saying which."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{owner}: {name} must be a number, got {value!r}")
    in_range = low <= value and (high is None or value < high)  # False for nan
    if not in_range:
        bounds = f">= {low}" if high is None else f"in [{low}, {high})"
        raise ValueError(f"{owner}: {name} must be {bounds}, got {value!r}")
    return float(value)


def _param_list(owner, params):
    """Materialise ``params`` (often a generator) into a non-empty list of distinct leaves
    that require grad; anything else is a mistake the first step would hide."""
    if isinstance(params, Tensor):
        raise ValueError(f"{owner}: params must be an iterable of Tensors (a list, or "
                         "model.parameters()), got a single Tensor")
    try:
        params = list(params)
    except TypeError:
        raise ValueError(f"{owner}: params must be an iterable of Tensors (did you mean "
                         f"model.parameters()?), got {type(params).__name__}") from None
    if not params:
        raise ValueError(f"{owner}: params is empty; nothing to optimize")
    seen = set()
    for i, p in enumerate(params):
        label = f"params[{i}]" + (f" ({p.name!r})" if getattr(p, "name", None) else "")
        if not isinstance(p, Tensor):
            raise ValueError(f"{owner}: {label} is a {type(p).__name__}, not a Tensor")
        if not p.requires_grad or not p.is_leaf:
            raise ValueError(f"{owner}: {label} must be a leaf Tensor with requires_grad=True "
                             "(a Parameter)")
        if id(p) in seen:
            raise ValueError(f"{owner}: {label} appears twice; it would be updated twice")
        seen.add(id(p))
    return params


class Optimizer:
    """Shared parts: the parameter list, ``zero_grad`` and the flat state dict.

    Subclasses write ``update(i, p)`` for one parameter, keep hyperparameters as float
    attributes listed in ``_hyper`` and state as one array per parameter in
    ``self.state[name][i]``, plus ``self.steps[i]``, the number of updates parameter
    ``i`` received (a parameter whose grad is None is skipped and its count stays, as in
    PyTorch).
    """

    _hyper = ("lr",)

    def __init__(self, params):
        self.params = _param_list(type(self).__name__, params)
        self.steps = np.zeros(len(self.params), dtype=np.int64)
        self.state = {}

    def zero_grad(self):
        """Drop every parameter's gradient (None, as PyTorch's default ``set_to_none``)."""
        for p in self.params:
            p.grad = None

    def step(self):
        """Update every parameter that has a gradient (``update``), in place.

        Each update counts as an in-place change of the parameter, so a backward through
        a graph built before the step refuses rather than using the new values. inf and
        NaN come out silently, as from any op (a float16 update that overflows).
        """
        token = ignore_numpy_errors()
        try:
            for i, p in enumerate(self.params):
                if p.grad is not None:
                    self.update(i, p)
                    p._changed_in_place()
        finally:
            restore_numpy_errors(token)

    def update(self, i, p):
        """Update parameter ``p`` (position ``i``) from ``p.grad``."""
        raise NotImplementedError

    def state_dict(self):
        """Copies of hyperparameters and state: ``'lr'``, ``'step'`` (one count per
        parameter) and ``'<state>.<i>'`` for parameter position ``i``."""
        d = {name: np.array(getattr(self, name), dtype=np.float64) for name in self._hyper}
        d["step"] = self.steps.copy()
        for name, arrays in self.state.items():
            d.update((f"{name}.{i}", a.copy()) for i, a in enumerate(arrays))
        return d

    def load_state_dict(self, state):
        """Restore hyperparameters and state saved by ``state_dict()``.

        The keys must be exactly this optimizer's and each shape must match, else
        ``ValueError`` naming the key and both shapes. Everything is checked before
        anything is changed. Hyperparameters are restored too (as in PyTorch).
        """
        owner = f"{type(self).__name__}.load_state_dict"
        current = self.state_dict()
        missing = [k for k in current if k not in state]
        unexpected = [k for k in state if k not in current]
        if missing or unexpected:
            raise ValueError(f"{owner}: missing keys {missing}, unexpected keys {unexpected} "
                             f"(was it saved from the same optimizer over the same parameters?)")
        arrays = {k: np.asarray(state[k]) for k in current}
        for key, value in arrays.items():
            if value.shape != current[key].shape:
                raise ValueError(f"{owner}: wrong shape for {key!r}: expected "
                                 f"{current[key].shape}, got {value.shape}")
            if value.dtype.kind not in "biuf":
                raise ValueError(f"{owner}: {key!r} has dtype {value.dtype}, not a real number")
        if np.any(arrays["step"] < 0) or np.any(arrays["step"] != np.round(arrays["step"])):
            raise ValueError(f"{owner}: 'step' must hold non-negative integers, "
                             f"got {arrays['step']}")
        hyper = {name: float(arrays[name]) for name in self._hyper}
        self._check_hyper(owner, **hyper)

        for name, value in hyper.items():
            setattr(self, name, value)
        self.steps[...] = arrays["step"]
        for name, buffers in self.state.items():
            for i, buf in enumerate(buffers):
                np.copyto(buf, astype(arrays[f"{name}.{i}"], buf.dtype))  # the parameter's

    @staticmethod
    def _check_hyper(owner, **hyper):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    With momentum ``mu``, the buffer starts as the first gradient and then follows
    ``buf = mu * buf + g``; the update is ``p -= lr * buf`` (plain ``p -= lr * g``
    without momentum, which keeps no buffer).
    """

    _hyper = ("lr", "momentum")

    def __init__(self, params, lr, momentum=0.0):
        super().__init__(params)
        self._check_hyper("SGD", lr=lr, momentum=momentum)
        self.lr, self.momentum = float(lr), float(momentum)
        if self.momentum != 0:
            self.state["momentum_buffer"] = [np.zeros_like(p.data) for p in self.params]

    @staticmethod
    def _check_hyper(owner, lr, momentum):
        _check_number(owner, "lr", lr, 0.0)
        _check_number(owner, "momentum", momentum, 0.0)

    def update(self, i, p):
        update = p.grad
        if self.momentum != 0:
            buf = self.state["momentum_buffer"][i]
            if self.steps[i] == 0:
                np.copyto(buf, update)
            else:
                buf *= self.momentum
                buf += update
            update = buf
        p.data -= self.lr * update
        self.steps[i] += 1

    def __repr__(self):
        return f"SGD(lr={self.lr}, momentum={self.momentum}, params={len(self.params)})"


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (no weight decay, no amsgrad).

    For step ``t`` of a parameter: ``m = b1*m + (1-b1)*g``, ``v = b2*v + (1-b2)*g*g``,
    ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m/(1-b1**t)`` and
    ``v_hat = v/(1-b2**t)``. The bias corrections are applied to the scalars, as PyTorch
    does, rather than to whole arrays: ``p -= (lr/(1-b1**t)) * m /
    (sqrt(v)/sqrt(1-b2**t) + eps)``.
    """

    _hyper = ("lr", "beta1", "beta2", "eps")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params)
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}") from None
        self._check_hyper("Adam", lr=lr, beta1=beta1, beta2=beta2, eps=eps)
        self.lr, self.beta1, self.beta2, self.eps = map(float, (lr, beta1, beta2, eps))
        self.state["exp_avg"] = [np.zeros_like(p.data) for p in self.params]
        self.state["exp_avg_sq"] = [np.zeros_like(p.data) for p in self.params]

    @staticmethod
    def _check_hyper(owner, lr, beta1, beta2, eps):
        _check_number(owner, "lr", lr, 0.0)
        _check_number(owner, "betas[0]", beta1, 0.0, 1.0)
        _check_number(owner, "betas[1]", beta2, 0.0, 1.0)
        _check_number(owner, "eps", eps, 0.0)

    def update(self, i, p):
        g = p.grad
        m, v = self.state["exp_avg"][i], self.state["exp_avg_sq"][i]
        self.steps[i] += 1
        t = int(self.steps[i])
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        step_size = self.lr / (1 - self.beta1 ** t)
        denom = np.sqrt(v)
        denom /= math.sqrt(1 - self.beta2 ** t)
        denom += self.eps
        p.data -= step_size * m / denom

    def __repr__(self):
        return (f"Adam(lr={self.lr}, betas={(self.beta1, self.beta2)}, eps={self.eps}, "
                f"params={len(self.params)})")


def clip_grad_norm(params, max_norm):
    """Scale gradients in place so their global L2 norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: the norm is taken over all gradients together
    (parameters whose grad is None are left out), and when it exceeds ``max_norm`` every
    gradient is multiplied by ``max_norm / (norm + 1e-6)``. Returns the norm before
    clipping as a float (computed in float64), handy for logging exploding gradients.

    A non-finite norm is not hidden, again as in PyTorch: a NaN norm makes every gradient
    NaN, and an infinite one multiplies every gradient by 0 (so its infinite entries
    become NaN), and the next step shows the problem rather than skipping it quietly.
    """
    params = [params] if isinstance(params, Tensor) else list(params)
    max_norm = _check_number("clip_grad_norm", "max_norm", max_norm, 0.0)
    grads = [p.grad for p in params if p.grad is not None]
    with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN are reported, not warned
        total = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
        coef = max_norm / (total + 1e-6)
        if not coef >= 1:  # NaN fails this test too: PyTorch multiplies by NaN
            for g in grads:
                g *= coef
    return total
