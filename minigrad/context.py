"""The only two pieces of global state: whether ops record a graph, and the current scope.

Both live on one thread-local object and are changed only through context managers that
restore the previous value in ``finally``, so an exception inside a block can never leave
gradient recording switched off or a scope half-open.
"""
import contextlib
import threading


class _State(threading.local):
    def __init__(self):
        self.grad_enabled = True
        self.scope = ""  # "" at top level, "lstm/l0/t3" inside nested scopes


_state = _State()


def is_grad_enabled():
    """True unless inside ``no_grad()``."""
    return _state.grad_enabled


def current_scope():
    """The '/'-joined names of the enclosing ``scope()`` blocks ('' at top level)."""
    return _state.scope


@contextlib.contextmanager
def no_grad():
    """Run without building a graph: ops return plain Tensors that need no gradient.

    Usable as ``with mg.no_grad():`` or as a decorator, like ``torch.no_grad``.
    """
    previous = _state.grad_enabled
    _state.grad_enabled = False
    try:
        yield
    finally:
        _state.grad_enabled = previous


@contextlib.contextmanager
def enable_grad():
    """Record a graph again inside a ``no_grad()`` block."""
    previous = _state.grad_enabled
    _state.grad_enabled = True
    try:
        yield
    finally:
        _state.grad_enabled = previous


@contextlib.contextmanager
def scope(name):
    """Tag every Tensor created inside with ``name``; nested scopes join with '/'.

    The graph drawer turns each scope into a labelled cluster, which is how an unrolled
    LSTM shows one box per time step.
    """
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"scope name must be a non-empty string without '/', got {name!r}")
    previous = _state.scope
    _state.scope = f"{previous}/{name}" if previous else name
    try:
        yield
    finally:
        _state.scope = previous
