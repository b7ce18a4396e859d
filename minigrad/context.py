"""The engine's per-thread switches: graph recording, the current scope, anomaly detection
and a backward recorder.

They live on one thread-local object and are changed only through context managers that
restore the previous value on exit, so an exception inside a block can never leave
gradient recording switched off or a scope half-open. (The rest of minigrad's global state
is process-wide and not switched: the tensors' serial counter and the count of in-place
changes in ``tensor.py``, the default random generator of ``nn`` and its count of
replaced parameters (which tells ``mg.compile`` a plan is stale), the malloc setting of
``keep_freed_memory``, and ``mg.viz.LAYOUT_LIMIT``, the size of drawing the guard lets
``dot`` lay out.)
"""
import collections
import contextlib
import functools
import inspect
import threading

import numpy as np


class _Settings:
    """One thread's switches."""

    __slots__ = ("grad_enabled", "scope", "detect_anomaly", "recorder", "capture")

    def __init__(self):
        self.grad_enabled = True
        self.scope = ""  # "" at top level, "lstm/l0/t3" inside nested scopes
        self.detect_anomaly = False
        self.recorder = None  # the list record_backward() is filling, if any
        self.capture = None  # the tape mg.compile is recording every op call on, if any


class ThreadState(threading.local):
    # Every op reads several switches: one thread-local lookup (the slow part), then
    # plain attribute reads on this thread's _Settings.
    def __init__(self):
        self.settings = _Settings()


# What ops and tensors read on their hot path (``thread_state.settings.grad_enabled``);
# everything else reads and switches it through the functions below.
thread_state = ThreadState()


def is_grad_enabled():
    """True unless inside ``no_grad()``."""
    return thread_state.settings.grad_enabled


def current_scope():
    """The '/'-joined names of the enclosing ``scope()`` blocks ('' at top level)."""
    return thread_state.settings.scope


class _GradMode:
    """Switch graph recording for a ``with`` block or for every call of a function.

    Works as ``with mg.no_grad():``, ``@mg.no_grad()`` and ``@mg.no_grad``, like PyTorch.
    """

    enabled = True

    def __new__(cls, func=None):
        self = super().__new__(cls)
        self._previous = []  # a stack: one instance may be entered again while inside
        return self if func is None else self(func)

    def __enter__(self):
        settings = thread_state.settings
        self._previous.append(settings.grad_enabled)
        settings.grad_enabled = self.enabled

    def __exit__(self, *exc_info):
        thread_state.settings.grad_enabled = self._previous.pop()

    def __call__(self, func):
        if not callable(func):
            raise TypeError(f"{type(self).__name__}() decorates a function, got {func!r}")

        mode = type(self)
        if inspect.isgeneratorfunction(func):
            return _switched_generator(func, mode)

        @functools.wraps(func)
        def switched(*args, **kwargs):
            with mode():  # a fresh switch per call: safe across threads and recursion
                return func(*args, **kwargs)
        return switched


def _switched_generator(func, mode):
    """A decorated generator function: calling it only makes the generator, so the switch
    is set around each resumption instead, and the caller's setting holds in between
    (as PyTorch's decorators do)."""

    @functools.wraps(func)
    def switched(*args, **kwargs):
        generator = func(*args, **kwargs)
        resume, argument = generator.send, None
        while True:
            try:
                with mode():
                    value = resume(argument)
            except StopIteration as stop:
                return stop.value
            try:
                argument = yield value
                resume = generator.send
            except GeneratorExit:
                with mode():
                    generator.close()
                raise
            except BaseException as error:  # thrown into the generator: pass it on
                resume, argument = generator.throw, error
    return switched


class no_grad(_GradMode):  # noqa: N801  (named like the function it replaces, as in PyTorch)
    """Run without building a graph: ops return plain Tensors that need no gradient."""

    enabled = False


class enable_grad(_GradMode):  # noqa: N801
    """Record a graph again inside a ``no_grad()`` block."""

    enabled = True


class scope(contextlib.ContextDecorator):  # noqa: N801  (used like a function)
    """Tag every Tensor created inside with ``name``; nested scopes join with '/'.

    The graph drawer turns each scope into a labelled cluster, which is how an unrolled
    LSTM shows one box per time step. (A class rather than a generator: a recurrent
    model enters one per time step, and this costs a third as much.)
    """

    __slots__ = ("name", "_previous")

    def __init__(self, name):
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"scope name must be a non-empty string without '/', got {name!r}")
        self.name = name
        self._previous = []  # a stack: one instance may be entered again while inside

    def __enter__(self):
        settings = thread_state.settings
        previous = settings.scope
        self._previous.append(previous)
        settings.scope = f"{previous}/{self.name}" if previous else self.name

    def __exit__(self, *exc_info):
        thread_state.settings.scope = self._previous.pop()


@contextlib.contextmanager
def detect_anomaly():
    """Check every op's output in forward and every gradient in backward.

    The first NaN or infinity raises ``FloatingPointError`` naming the op, its scope, the
    pass and the shapes. Outside this block no check runs: ops return inf and NaN silently.
    """
    settings = thread_state.settings
    previous = settings.detect_anomaly
    settings.detect_anomaly = True
    try:
        yield
    finally:
        settings.detect_anomaly = previous


SweepStep = collections.namedtuple("SweepStep", "tensor op grad input_grads")
SweepStep.__doc__ = """One op's backward as the engine ran it.

``tensor``: the op's output; ``op``: the op (``tensor.op``); ``grad``: a copy of the
complete gradient of ``tensor`` handed to the op; ``input_grads``: one pair per op input,
``(input Tensor, dense copy of the contribution sent to it)``, or ``(input, None)``."""


class Sweep(list):
    """The ``SweepStep``s of every backward run inside ``record_backward()``, in order.
    (A list: "steps" would mean time steps, which ``minigrad.timesteps`` finds.)"""


@contextlib.contextmanager
def record_backward():
    """Record each op's backward, in the order the engine runs them (for explaining it:
    the graph explorer steps through these). Costs one check per backward when unused."""
    sweep = Sweep()
    settings = thread_state.settings
    previous = settings.recorder
    settings.recorder = sweep
    try:
        yield sweep
    finally:
        settings.recorder = previous


# numpy's floating-point error handling is switched to "ignore" around every op forward and
# every backward sweep: like PyTorch, ops return inf and NaN without warnings
# (detect_anomaly() is how to find where they came from). ``ignore_numpy_errors()``
# returns a token for ``restore_numpy_errors(token)``. An op inside a region that has
# switched them off already (``numpy_errors_ignored()``, a backward sweep) does not switch.
try:  # numpy >= 2 keeps the setting in a context variable: setting it directly costs a
    # fifth of entering np.errstate, which matters when every op pays it
    from numpy._core._ufunc_config import _extobj_contextvar as numpy_errors
    from numpy._core._ufunc_config import _make_extobj
    IGNORE = _make_extobj(all="ignore")
except (ImportError, TypeError):  # numpy 1.x, or a numpy whose internals moved
    class _NumpyErrors:
        @staticmethod
        def set(settings):
            return np.seterr(**settings)

        @staticmethod
        def reset(previous):
            np.seterr(**previous)

        @staticmethod
        def get():
            return None  # never IGNORE: every op switches for itself

    numpy_errors, IGNORE = _NumpyErrors(), {"all": "ignore"}
ignore_numpy_errors = functools.partial(numpy_errors.set, IGNORE)
restore_numpy_errors = numpy_errors.reset


@contextlib.contextmanager
def numpy_errors_ignored():
    """Switch numpy's errors off once for a region of many ops (a recurrent model's
    unrolled loop): each op finds the setting made and does not switch it itself."""
    token = ignore_numpy_errors()
    try:
        yield
    finally:
        restore_numpy_errors(token)
