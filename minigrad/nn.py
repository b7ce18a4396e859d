"""Modules, parameters and losses, shaped like ``torch.nn`` so PyTorch users feel at home.

A ``Module`` finds its parameters by looking at its attributes, so a model is plain Python:
assign ``Parameter``s and sub-modules in ``__init__``, write ``forward``. Parameter names
are dotted attribute paths (``lstm.l0.weight``); they key ``state_dict`` and checkpoints.
Sub-modules kept in a sequence go in a ``ModuleList`` (a plain list would hide them).

One dtype rule for every module: a module is built in one float dtype (``dtype=``,
float64 by default); arrays and lists given to it are cast to that dtype, and a Tensor
of another dtype is refused (``as_input``), so a model's dtype holds end to end.
"""
import contextlib
import operator
import weakref
from collections.abc import Mapping

import numpy as np

from . import ops
from .tensor import Tensor, astype

_default_rng = np.random.default_rng()


def manual_seed(seed):
    """Reseed the generator that initialises parameters when no ``rng`` is given."""
    global _default_rng
    _default_rng = np.random.default_rng(seed)


def positive_int(owner, name, value):
    """``value`` as an int, or a ValueError naming ``owner`` and ``name`` (bools are
    rejected: ``True`` is an int to Python but never a meant size)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def float_dtype(owner, dtype):
    """``dtype`` as a numpy float dtype, or a ValueError naming ``owner``."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"{owner}: dtype must be a float type, got {dtype!r}") from None
    if dtype.kind != "f":
        raise ValueError(f"{owner}: dtype must be a float type, got {dtype}")
    return dtype


def as_input(owner, what, value, dtype):
    """``value`` as a Tensor of the module's ``dtype``: the one dtype rule of every module.

    Arrays, lists and numbers are converted (a float64 batch fed to a float32 model
    becomes float32, so the model's dtype holds end to end). A Tensor is used as it is,
    so that gradients reach it, and must therefore already have the module's dtype:
    numpy would otherwise silently promote the whole computation, parameter gradients
    included. ``what`` names the argument in the error (``"input"``, ``"h0"``).
    """
    if isinstance(value, Tensor):
        if value.dtype != dtype:
            raise ValueError(f"{owner}: {what} has dtype {value.dtype}, expected the "
                             f"module's dtype {np.dtype(dtype)} (convert it with "
                             f"mg.Tensor(x.data.astype(...)), or build the module with "
                             f"dtype={value.dtype})")
        return value
    try:
        array = np.asarray(value)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{owner}: {what} is not an array: {err}") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{owner}: {what} must be numeric, got an array of dtype "
                         f"{array.dtype}")
    return Tensor(astype(array, dtype))


def uniform(shape, bound, rng=None, dtype=np.float64):
    """U(-bound, bound) samples: PyTorch's default initialisation for Linear and LSTM."""
    rng = _default_rng if rng is None else rng
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def copy_into(param, array):
    """Write ``array`` into ``param``'s own array (so optimizers and graphs keep the same
    Parameter), cast to its dtype silently, and count it as an in-place change, as
    PyTorch's loading does: a graph that saved the old value refuses to use it."""
    np.copyto(param.data, astype(np.asarray(array), param.dtype))
    param._changed_in_place()


class Parameter(Tensor):
    """A Tensor a Module trains: ``requires_grad=True``, and named after its place in the
    module tree (``lstm.l0.weight``) so errors and drawings can say which one it is."""

    __slots__ = ()

    def __init__(self, data, name=None):
        # A private copy: the optimizer updates it in place, which must not reach the caller.
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(np.array(data, copy=True), requires_grad=True, name=name)

    def __repr__(self):
        return "Parameter" + super().__repr__()[len("Tensor"):]


class Module:
    """Base class of layers and models.

    Attributes that are Parameters or Modules register themselves, in assignment order;
    ``named_parameters`` yields their dotted paths. Assigning a Parameter or a module as
    an attribute renames every parameter to its path from the outermost module above
    the owner (each module remembers the one it was last assigned to), so the outermost
    module's names are the ones errors, checkpoints and drawings show, and a shared
    parameter's ``.name`` is the key it has in ``state_dict``, even after an assignment
    deep inside (``model.fc.bias = ...``).

    A list, tuple or dict holding Modules or Parameters is refused (``TypeError``, on
    assignment and by ``named_parameters``): nothing inside it would be trained or
    saved. Use ``ModuleList``, or assign each to an attribute of its own.
    """

    def __setattr__(self, name, value):
        _refuse_hidden_members(self, name, value)
        old = vars(self).get(name)
        if old is not value and isinstance(old, (Parameter, Module)):
            replacements[0] += 1
        if value is not None and not isinstance(value, Parameter) and isinstance(
                vars(self).get(name), Parameter):
            # As in PyTorch: the parameter would silently leave parameters(), state_dict()
            # and the optimizer, and stop being trained or saved.
            raise TypeError(
                f"cannot assign a {type(value).__name__} to {type(self).__name__}.{name}, "
                f"which holds a Parameter (Parameter or None expected): wrap the new value "
                f"in mg.nn.Parameter(...) to replace the parameter, or write into its data "
                f"(`with mg.no_grad(): module.{name}[...] = value`, or "
                f"`module.{name}.data[...] = value`)")
        object.__setattr__(self, name, value)
        if isinstance(value, Module):
            with contextlib.suppress(TypeError):  # a module made unhashable (a dataclass)
                _owners[value] = weakref.ref(self)
        if isinstance(value, (Parameter, Module)):
            # From the outermost module this one belongs to: assigning inside a sub-module
            # (tying model.dec.weight = model.enc.weight, a fresh model.fc.bias) would
            # otherwise rename its parameters 'weight' where state_dict says 'fc.weight'.
            for path, param in _outermost(self).named_parameters():
                param.name = path

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def children(self):
        """(name, module) pairs of the direct sub-modules, in assignment order."""
        return [(k, v) for k, v in vars(self).items() if isinstance(v, Module)]

    def named_parameters(self):
        """(dotted name, Parameter) pairs, each parameter once, in PyTorch's order.

        A module's own parameters come first, in assignment order, then each sub-module's,
        depth first. A parameter or module reached twice (shared weights) is listed once,
        under the name of its first visit in that walk.
        """
        seen = set()
        stack = [("", self)]
        result = []
        while stack:
            prefix, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            subs = []
            for key, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    result.append((prefix + key, value))
                elif isinstance(value, Module):
                    subs.append((f"{prefix}{key}.", value))
                else:  # a list filled after it was assigned
                    _refuse_hidden_members(module, key, value)
            stack.extend(reversed(subs))
        return result

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    # Training mode: a class default, so that subclasses need not call __init__.
    training = True

    def modules(self):
        """This module and every sub-module below it, each once, depth first."""
        seen, stack, result = set(), [self], []
        while stack:
            module = stack.pop()
            if id(module) not in seen:
                seen.add(id(module))
                result.append(module)
                stack.extend(reversed([m for _, m in module.children()]))
        return result

    def train(self, mode=True):
        """Set ``training`` on this module and every sub-module; returns self, as in
        PyTorch. Layers that act differently while training (``Dropout``) read it."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode): mode must be a bool, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        """``train(False)``: the mode for evaluation and sampling."""
        return self.train(False)

    def state_dict(self):
        """name -> a copy of the parameter's array (later training does not change it)."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state, strict=True):
        """Copy arrays (or Tensors) into the parameters, after checking all of them.

        A missing or unexpected key (with ``strict``), a wrong shape or a dtype that cannot
        be cast to the parameter's (complex, strings) raises ``ValueError`` naming the key
        and the shapes. Every check runs before the first copy, so a failed load leaves
        the module exactly as it was. Values are cast to each parameter's dtype (a float64
        checkpoint loads into a float32 model) and copied into the existing arrays.
        """
        owner = f"load_state_dict into {type(self).__name__}"
        if not isinstance(state, Mapping):
            raise TypeError(f"{owner}: expected a dict of name -> array (a state_dict() or "
                            f"mg.load(path)), got {type(state).__name__}")
        params = dict(self.named_parameters())
        arrays = {}
        for key, value in state.items():
            try:
                arrays[key] = np.asarray(value.data if isinstance(value, Tensor) else value)
            except ValueError as err:  # ragged nested lists
                raise ValueError(f"{owner}: the value for {key!r} is not an array: {err}") \
                    from None
        problems = []
        if strict:
            problems += [f"missing key {k!r} (expected shape {params[k].shape})"
                         for k in params if k not in arrays]
            problems += [f"unexpected key {k!r} (shape {v.shape})"
                         for k, v in arrays.items() if k not in params]
        for key, value in arrays.items():
            if key not in params:
                continue
            expected = params[key].data
            if value.shape != expected.shape:
                problems.append(f"wrong shape for {key!r}: expected {expected.shape}, "
                                f"got {value.shape}")
            elif not np.can_cast(value.dtype, expected.dtype, "same_kind"):
                problems.append(f"wrong dtype for {key!r}: cannot cast {value.dtype} to "
                                f"{expected.dtype}")
        if problems:
            raise ValueError(f"{owner}: " + "; ".join(problems))
        for key, value in arrays.items():
            if key in params:
                copy_into(params[key], value)

    def extra_repr(self):
        return ""

    def __repr__(self):
        """PyTorch's layout: settings inline when there are no children, otherwise one
        indented line each for the settings and every child."""
        extra = self.extra_repr()
        children = [f"({name}): " + repr(child).replace("\n", "\n  ")
                    for name, child in self.children()]
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = ([extra] if extra else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


# Each module's owner, the module it was last assigned to as an attribute (weakly held,
# and kept outside the module: a ModuleList's attributes are its items).
_owners = weakref.WeakKeyDictionary()
# How many times a module's Parameter or sub-module has been replaced by another object:
# a step made by mg.compile reads parameters by identity, and captures anew when this grows.
replacements = [0]


def _outermost(module):
    """The module at the top of the chain of owners above ``module``."""
    seen = {id(module)}
    while True:
        try:
            ref = _owners.get(module)
        except TypeError:  # unhashable: its owner is not known
            return module
        owner = ref() if ref is not None else None
        if owner is None or id(owner) in seen:  # no owner, or a module that owns itself
            return module
        seen.add(id(owner))
        module = owner


def _refuse_hidden_members(owner, name, value):
    """A TypeError if ``value`` is a container holding Modules or Parameters, which the
    attribute walk of ``named_parameters`` would not see."""
    if not isinstance(value, (list, tuple, dict, set, frozenset)):
        return
    items = value.values() if isinstance(value, dict) else value
    kinds = {type(v).__name__ for v in items if isinstance(v, (Module, Parameter))}
    if kinds:
        raise TypeError(
            f"{type(owner).__name__}.{name}: a {type(value).__name__} holding "
            f"{' and '.join(sorted(kinds))} objects is not registered, so its parameters "
            f"would be missing from parameters(), state_dict() and the optimizer; use "
            f"mg.nn.ModuleList([...]) for modules, or assign each one to its own attribute")


class ModuleList(Module):
    """A list of modules, registered as children ``"0"``, ``"1"``, ... like PyTorch's.

    Parameters are named ``layers.0.weight`` when the list is the attribute ``layers``.
    Supports ``append``, ``extend``, ``len``, iteration and indexing (negative indices
    and slices; a slice is a new ModuleList of the same modules). It has no ``forward``:
    call its modules in the owner's ``forward``.
    """

    def __init__(self, modules=()):
        if isinstance(modules, Module):
            raise TypeError("ModuleList takes an iterable of modules, got a single "
                            f"{type(modules).__name__}; wrap it in a list")
        for module in modules:
            self.append(module)

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList can only hold Modules, got "
                            f"{type(module).__name__} at index {len(self)}")
        setattr(self, str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def __len__(self):
        return len(self.children())

    def __iter__(self):
        return iter([module for _, module in self.children()])

    def _position(self, index):
        i = operator.index(index)
        if not -len(self) <= i < len(self):
            raise IndexError(f"ModuleList index {i} out of range for length {len(self)}")
        return str(i % len(self))

    def __getitem__(self, index):
        if isinstance(index, slice):
            part = ModuleList()
            for i, module in enumerate(list(self)[index]):
                # Bypasses Module.__setattr__: a slice is a view for iterating, and must
                # not rename the parameters after itself ("0.weight" for "layers.1.weight").
                object.__setattr__(part, str(i), module)
            return part
        return vars(self)[self._position(index)]

    def __setitem__(self, index, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList can only hold Modules, got {type(module).__name__}")
        setattr(self, self._position(index), module)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(): iterate over it and call "
                                  "its modules in your own module's forward()")


class Linear(Module):
    """``x @ weight + bias`` with weight of shape (in_features, out_features).

    Initialised U(-1/sqrt(in_features), 1/sqrt(in_features)), as in PyTorch. Input
    follows the dtype rule of every module (see ``as_input``): arrays and lists are
    cast to ``dtype``, a Tensor of another dtype raises ``ValueError``.
    """

    def __init__(self, in_features, out_features, bias=True, *, rng=None, dtype=np.float64):
        self.in_features = positive_int("Linear", "in_features", in_features)
        self.out_features = positive_int("Linear", "out_features", out_features)
        self.dtype = float_dtype("Linear", dtype)
        bound = 1.0 / np.sqrt(in_features)
        self.weight = Parameter(uniform((in_features, out_features), bound, rng, self.dtype))
        self.bias = (Parameter(uniform((out_features,), bound, rng, self.dtype)) if bias
                     else None)

    def forward(self, x):
        x = as_input("Linear", "input", x, self.dtype)
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(f"Linear: expected input with last dimension {self.in_features}, "
                             f"got shape {x.shape}")
        y = x @ self.weight
        return y if self.bias is None else y + self.bias

    def extra_repr(self):
        text = (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
        return text if self.dtype == np.float64 else f"{text}, dtype={self.dtype}"



class Embedding(Module):
    """A table of ``num_embeddings`` learned vectors: ``emb(idx)`` maps an integer array
    of any shape to ``(*idx.shape, embedding_dim)``.

    It is one integer-array index into ``weight``, the same thing as a one-hot vector
    times a matrix without the multiply; an index used twice in a batch gets the sum
    of both gradients (``np.add.at`` in the index op's backward). Initialised N(0, 1),
    as in PyTorch. A float array or an index outside [0, num_embeddings) raises
    ValueError: numpy would truncate the one and wrap the other around.
    """

    def __init__(self, num_embeddings, embedding_dim, *, rng=None, dtype=np.float64):
        self.num_embeddings = positive_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = positive_int("Embedding", "embedding_dim", embedding_dim)
        self.dtype = float_dtype("Embedding", dtype)
        rng = _default_rng if rng is None else rng
        self.weight = Parameter(rng.standard_normal((num_embeddings, embedding_dim))
                                .astype(self.dtype))

    def forward(self, idx):
        return self.weight[class_indices("Embedding", "input", idx, self.num_embeddings)]

    def extra_repr(self):
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text if self.dtype == np.float64 else f"{text}, dtype={self.dtype}"


class Dropout(Module):
    """In training mode, zeroes each element with probability ``p`` and scales the rest
    by 1/(1-p) (so nothing needs rescaling at test time); in eval mode
    (``model.eval()``), the identity.

    Why: a network that cannot count on any one unit learns redundant features and
    overfits a small data set less. ``rng`` (a seed or a numpy Generator) makes the masks
    reproducible; each call draws a fresh mask.
    """

    def __init__(self, p=0.5, *, rng=None):
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) \
                or not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = np.random.default_rng(rng)

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        if not self.training or self.p == 0:
            return x
        return ops.Dropout(self.p, self.rng)(x)

    def extra_repr(self):
        return f"p={self.p:g}"

def _same_shape(loss, pred, target):
    pred = pred if isinstance(pred, Tensor) else Tensor(pred)
    if not isinstance(target, Tensor):
        target = Tensor(astype(np.asarray(target), pred.dtype))
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

    One elementwise op (``ops.BinaryCrossEntropyWithLogits``) then the mean: finite for
    finite logits of any size, and at an infinite logit the limit (+inf where the loss
    diverges, 0 at (+inf, 1) and (-inf, 0)) with the gradient (sigmoid(x) - t) / N.
    """
    logits, target = _same_shape("binary_cross_entropy_with_logits", logits, target)
    return ops.mean(ops.BinaryCrossEntropyWithLogits()(logits, target))


def class_indices(owner, what, value, size, *, ignore_index=None):
    """``value`` as an integer numpy array of indices into ``size`` classes or rows, or a
    ValueError naming ``owner`` and ``what``.

    Floats are refused rather than truncated (a Tensor holds floats, so it is refused
    too), and an index outside [0, size) is refused rather than wrapping around as
    numpy's negative indices would. Positions equal to ``ignore_index`` are exempt.
    """
    if isinstance(value, Tensor):
        raise ValueError(f"{owner}: {what} must be an integer numpy array, got a Tensor "
                         f"(tensors hold floats); pass an integer array, e.g. "
                         f"t.data.astype(int)")
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{owner}: {what} must hold integer indices, got dtype "
                         f"{array.dtype} (convert with .astype(int) if the values are whole)")
    outside = (array < 0) | (array >= size)
    if ignore_index is not None:
        outside &= array != ignore_index
    if outside.any():
        raise ValueError(f"{owner}: {what} holds {array[outside][0]}, outside [0, {size})")
    return array


def cross_entropy(logits, target, *, ignore_index=None):
    """Mean cross-entropy of ``logits`` (..., C) against integer class indices (...).

    The class axis is last, so one call serves a batch (N, C) with targets (N,) and a
    sequence (N, T, C) with targets (N, T) alike. Positions whose target equals
    ``ignore_index`` (the padding of a variable-length batch) add nothing, and the mean
    is over the others, as in ``torch.nn.functional.cross_entropy``; with every position
    ignored the result is NaN, as there. Two ops, as PyTorch composes it:
    ``log_softmax`` (finite for logits of any size) and ``NLLLoss``, which reads the
    target at every call (so a compiled step replays it with each batch's target and
    padding). Any other index outside [0, C) raises ValueError rather than wrapping
    around as numpy's would.
    """
    logits = logits if isinstance(logits, Tensor) else Tensor(logits)
    if logits.ndim == 0 or logits.shape[-1] == 0:
        raise ValueError(f"cross_entropy: logits must have shape (..., C) with C >= 1 "
                         f"classes, got {logits.shape}")
    if ignore_index is not None and (isinstance(ignore_index, bool)
                                     or not isinstance(ignore_index, (int, np.integer))):
        raise ValueError(f"cross_entropy: ignore_index must be an integer or None, got "
                         f"{ignore_index!r}")
    classes = logits.shape[-1]
    target = class_indices("cross_entropy", "target", target, classes,
                           ignore_index=ignore_index)
    if target.shape != logits.shape[:-1]:
        raise ValueError(f"cross_entropy: target of shape {target.shape} for logits of shape "
                         f"{logits.shape}; expected {logits.shape[:-1]}, one class index "
                         f"per position (the class axis of the logits is last)")
    return ops.NLLLoss(target, ignore_index)(ops.log_softmax(logits, axis=-1))
