"""minigrad: a small reverse-mode automatic differentiation engine over numpy."""
from . import nn, optim, timesteps, viz
from .allocator import keep_freed_memory
from .compile import compile  # noqa: A004  (mg.compile, like torch.compile)
from .context import (SweepStep, current_scope, detect_anomaly, enable_grad, is_grad_enabled,
                      no_grad, record_backward, scope)
from .gradcheck import GradcheckError, gradcheck
from .ops import (add, concat, divide, exp, getitem, log, matmul, mean, multiply, negative,
                  power, relu, reshape, sigmoid, softplus, stack, subtract, sum, tanh,
                  transpose)
from .ops import (abs, clip, log_softmax, max, maximum, min, minimum, softmax,  # noqa: A004
                  where)
from .serialization import load, save
from .tensor import Tensor
from .timesteps import step_grad_norms

__version__ = "0.1.0"

__all__ = [
    "Tensor", "GradcheckError", "gradcheck", "no_grad", "enable_grad", "is_grad_enabled",
    "scope", "current_scope", "save", "load", "keep_freed_memory", "nn", "optim", "viz",
    "detect_anomaly", "record_backward", "SweepStep", "compile",
    "timesteps", "step_grad_norms",
    "add", "subtract", "multiply", "divide", "matmul", "power", "negative", "exp", "log",
    "sigmoid", "tanh", "relu", "softplus", "sum", "mean", "reshape", "transpose", "getitem",
    "concat", "stack",
    "abs", "maximum", "minimum", "max", "min", "clip", "where", "softmax", "log_softmax",
]
