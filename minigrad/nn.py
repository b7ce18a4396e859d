"""Modules, parameters and losses, shaped like ``torch.nn`` so PyTorch users feel at home."""
import numpy as np

from . import ops
from .tensor import Tensor

_default_rng = np.random.default_rng()


def manual_seed(seed):
    """Reseed the generator that initialises parameters when no ``rng`` is given."""
    global _default_rng
    _default_rng = np.random.default_rng(seed)


def uniform(shape, bound, rng=None, dtype=np.float64):
    """U(-bound, bound) samples: PyTorch's default initialisation for Linear and LSTM."""
    rng = _default_rng if rng is None else rng
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class Parameter(Tensor):
    """A Tensor a Module trains: ``requires_grad=True``, and named after its place in the
    module tree (``lstm.l0.weight``) so errors and drawings can say which one it is."""

    __slots__ = ()

    def __init__(self, data, name=None):
        super().__init__(np.array(data, copy=True), requires_grad=True, name=name)
        if self.data.dtype.kind != "f":
            raise TypeError(f"Parameter needs float data, got {self.data.dtype}")

    def __repr__(self):
        return "Parameter" + super().__repr__()[len("Tensor"):]


class Module:
    """Base class of layers and models.

    Attributes that are Parameters or Modules register themselves, in assignment order;
    ``named_parameters`` yields their dotted paths. Assigning a module as an attribute
    renames its parameters to paths from the new owner, so the outermost module's names
    are the ones errors, checkpoints and drawings show.
    """

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            value.name = name
        elif isinstance(value, Module):
            for path, param in value.named_parameters():
                param.name = f"{name}.{path}"
        object.__setattr__(self, name, value)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def children(self):
        """(name, module) pairs of the direct sub-modules, in assignment order."""
        return [(k, v) for k, v in vars(self).items() if isinstance(v, Module)]

    def named_parameters(self):
        """(dotted name, Parameter) pairs, each parameter once, in assignment order."""
        seen = set()
        stack = [("", self)]
        result = []
        while stack:
            prefix, module = stack.pop()
            subs = []
            for key, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    result.append((prefix + key, value))
                elif isinstance(value, Module):
                    subs.append((f"{prefix}{key}.", value))
            stack.extend(reversed(subs))
        return result

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def state_dict(self):
        """name -> a copy of the parameter's array (later training does not change it)."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters, after checking all of them.

        A missing or unexpected key (with ``strict``) or a wrong shape raises
        ``ValueError`` naming the key and the shapes; nothing is changed then.
        """
        params = dict(self.named_parameters())
        problems = []
        if strict:
            problems += [f"missing key {k!r} (expected shape {params[k].shape})"
                         for k in params if k not in state]
            problems += [f"unexpected key {k!r}" for k in state if k not in params]
        for key, value in state.items():
            if key in params and np.shape(value) != params[key].shape:
                problems.append(f"wrong shape for {key!r}: expected {params[key].shape}, "
                                f"got {np.shape(value)}")
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__}: "
                             + "; ".join(problems))
        for key, value in state.items():
            if key in params:
                np.copyto(params[key].data, np.asarray(value), casting="same_kind")

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ") for name, child in self.children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ")" if not lines else head + "\n  " + "\n  ".join(lines) + "\n)"


class Linear(Module):
    """``x @ weight + bias`` with weight of shape (in_features, out_features).

    Initialised U(-1/sqrt(in_features), 1/sqrt(in_features)), as in PyTorch.
    """

    def __init__(self, in_features, out_features, bias=True, *, rng=None, dtype=np.float64):
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Linear: {name} must be a positive integer, got {value!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        bound = 1.0 / np.sqrt(in_features)
        self.weight = Parameter(uniform((in_features, out_features), bound, rng, dtype))
        self.bias = Parameter(uniform((out_features,), bound, rng, dtype)) if bias else None

    def forward(self, x):
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(f"Linear: expected input with last dimension {self.in_features}, "
                             f"got shape {x.shape}")
        y = x @ self.weight
        return y if self.bias is None else y + self.bias

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


def _same_shape(loss, pred, target):
    pred = pred if isinstance(pred, Tensor) else Tensor(pred)
    target = target if isinstance(target, Tensor) else Tensor(np.asarray(target, dtype=pred.dtype))
    if pred.shape != target.shape:
        raise ValueError(f"{loss}: input shape {pred.shape} and target shape {target.shape} "
                         "differ")
    return pred, target


def mse_loss(pred, target):
    """Mean of the squared differences."""
    pred, target = _same_shape("mse_loss", pred, target)
    diff = pred - target
    return ops.mean(diff * diff)


def binary_cross_entropy_with_logits(logits, target):
    """Mean binary cross-entropy of sigmoid(logits) against targets in [0, 1].

    Written as softplus(x) - x*t, which equals -[t log s(x) + (1-t) log(1-s(x))] but
    never takes the log of a rounded-to-zero probability: finite for logits of any size.
    """
    logits, target = _same_shape("binary_cross_entropy_with_logits", logits, target)
    return ops.mean(ops.softplus(logits) - logits * target)
