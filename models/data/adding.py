"""The adding problem of Hochreiter & Schmidhuber (1997), in the form later papers use.

Each sequence has T steps of two inputs: a value drawn from U[0, 1] and a marker. Exactly
two markers are 1, one at a random step in the first half of the sequence and one in
the second half; every other marker is 0. The target, read after the last step, is the
sum of the two marked values. (Le, Jaitly and Hinton 2015 and Arjovsky, Shah and Bengio
2016 use this form; the 1997 paper's markers and scaling differ in details.)

Why it is hard for a plain RNN: the first marked value may lie up to T steps before the
answer is read, and nothing in between is informative. To learn to keep it, the
gradient of the loss must reach that early step, and in a plain RNN it has vanished
long before (``examples/gradient_flow.py`` measures by how much).

Why 1/6 is the line to beat: a model that ignores the markers can at best predict the
mean of the target, 1. The target is a sum of two independent U[0, 1] values, whose
variance is 2 * 1/12, so that prediction has mean squared error 1/6 ~ 0.167.
"""
import numpy as np

__all__ = ["sample", "BASELINE_MSE", "baseline_mse", "TOLERANCE", "accuracy"]

BASELINE_MSE = 1.0 / 6.0
TOLERANCE = 0.04  # the 1997 paper's error threshold, here applied to the unscaled sum


def sample(n, length, rng, dtype=np.float64):
    """``n`` sequences of ``length`` steps: ``x`` (n, length, 2) holding (value, marker)
    at every step, and the targets ``y`` (n, 1).

    The first marker is uniform over steps ``0 .. length//2 - 1``, the second over
    ``length//2 .. length - 1``. Needs ``length >= 2`` (each half needs a step).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"sample: n must be a positive integer, got {n!r}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 2:
        raise ValueError(f"sample: length must be an integer of at least 2 (one marker "
                         f"in each half), got {length!r}")
    half = length // 2
    values = rng.uniform(0.0, 1.0, size=(n, length))
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    rows = np.arange(n)
    markers = np.zeros((n, length))
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=2).astype(dtype)
    y = (values[rows, first] + values[rows, second])[:, None].astype(dtype)
    return x, y


def baseline_mse(y):
    """The mean squared error of always predicting 1 on targets ``y`` (about 1/6)."""
    return float(np.mean((np.asarray(y, dtype=np.float64) - 1.0) ** 2))


def accuracy(prediction, y, tolerance=TOLERANCE):
    """The fraction of predictions within ``tolerance`` of their target."""
    prediction, y = np.asarray(prediction), np.asarray(y)
    if prediction.shape != y.shape:
        raise ValueError(f"accuracy: prediction shape {prediction.shape} and target shape "
                         f"{y.shape} differ")
    return float(np.mean(np.abs(prediction - y) <= tolerance))
