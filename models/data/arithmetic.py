"""Binary addition and subtraction as data: the pairs of numbers, their split into
training and held-out pairs, and the bit sequences a recurrent network reads.

Numbers are read least-significant bit first: at step t the network sees bit t of both
operands and emits bit t of the result, so the carry (or borrow) flows forward in time as
on paper, and a network that has learned the rule works for numbers of any length. The
network itself is ``minigrad.models.arithmetic``.
"""
import hashlib

import numpy as np

TASKS = {"addition": "+", "subtraction": "-"}
MAX_BITS = 64  # results are computed in uint64


# -- the pair space ----------------------------------------------------------------------

def operand_limit(task, bits):
    """Operands are below 2**(bits-1) for addition (the sum fits), 2**bits for subtraction."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    if not isinstance(bits, (int, np.integer)) or not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be an integer in 1..{MAX_BITS}, got {bits!r}")
    return 2 ** (bits - 1) if task == "addition" else 2 ** bits


def pair_count(task, bits):
    """How many distinct (a, b) pairs the task has at this length (a Python int)."""
    n = operand_limit(task, bits)
    return n * n if task == "addition" else n * (n + 1) // 2


def compute(task, a, b):
    """The exact result of ``a op b`` as uint64 (no overflow for operands in range)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    a, b = np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64)
    return a + b if task == "addition" else a - b


def sample_pairs(task, bits, n, rng):
    """``n`` pairs drawn uniformly from the task's pair space, as two uint64 arrays (for
    subtraction, half the a != b draws are dropped, or a == b would be half as likely)."""
    limit = operand_limit(task, bits)
    if task == "addition":
        return (rng.integers(0, limit, size=n, dtype=np.uint64),
                rng.integers(0, limit, size=n, dtype=np.uint64))
    a, b = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64)
    while len(a) < n:
        x = rng.integers(0, limit, size=n, dtype=np.uint64)
        y = rng.integers(0, limit, size=n, dtype=np.uint64)
        keep = (x == y) | (rng.integers(0, 2, size=n) == 1)
        a = np.concatenate([a, np.maximum(x, y)[keep]])
        b = np.concatenate([b, np.minimum(x, y)[keep]])
    return a[:n], b[:n]


def all_pairs(task, bits):
    """Every pair of the task, in a fixed order (only sensible for small ``bits``)."""
    limit = operand_limit(task, bits)
    a, b = np.meshgrid(np.arange(limit, dtype=np.uint64), np.arange(limit, dtype=np.uint64),
                       indexing="ij")
    keep = (a >= b).ravel() if task == "subtraction" else slice(None)
    return a.ravel()[keep], b.ravel()[keep]


def streams(seed):
    """Independent generators for the split, the weights, the batches and the long test:
    the split depends on the seed alone, so (task, bits, seed) rebuild it exactly."""
    return dict(zip(("split", "init", "batches", "long"),
                    (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))))


class Split:
    """The evaluation pairs of one run, and a sampler of training pairs that avoids them.
    ``held_out`` is False when the space is too small to set pairs aside (4-bit
    subtraction has 136 pairs): then both use every pair, and ``description`` says so."""

    def __init__(self, task, bits, test_a, test_b, held_out):
        self.task, self.bits, self.test_a, self.test_b = task, bits, test_a, test_b
        self.held_out = held_out
        self._test_keys = set(zip(test_a.tolist(), test_b.tolist())) if held_out else set()

    @property
    def description(self):
        n, total = len(self.test_a), pair_count(self.task, self.bits)
        if self.held_out:
            return (f"held out {n:,} of the {total:,} {self.bits}-bit pairs; "
                    f"training never sees them")
        if n < total:  # a reloaded model whose checkpoint does not confirm the split
            return f"{n:,} of the {total:,} {self.bits}-bit pairs, NOT known to be held out"
        return (f"the {self.bits}-bit {self.task} space has only {total:,} pairs, too few "
                f"to hold any out: trained and evaluated on all of them")

    @property
    def fingerprint(self):
        """A hash of the evaluation pairs: lets a reload confirm they are the held-out ones."""
        return hashlib.sha256(self.test_a.tobytes() + self.test_b.tobytes()).hexdigest()[:16]

    def train_batch(self, n, rng):
        """``n`` training pairs, drawn uniformly from the pairs not held out."""
        a, b = sample_pairs(self.task, self.bits, n, rng)
        if not self.held_out:
            return a, b
        while True:  # redraw held-out pairs (at most half of the space) until n are left
            keep = [pair not in self._test_keys for pair in zip(a.tolist(), b.tolist())]
            a, b = a[keep], b[keep]
            if len(a) == n:
                return a, b
            more_a, more_b = sample_pairs(self.task, self.bits, n - len(a), rng)
            a, b = np.concatenate([a, more_a]), np.concatenate([b, more_b])


def make_split(task, bits, n_test, rng):
    """Choose the evaluation pairs: ``n_test`` distinct held-out pairs when the space has
    at least twice that many, otherwise all pairs (and nothing is held out)."""
    if n_test < 1:
        raise ValueError(f"n_test must be positive, got {n_test}")
    if pair_count(task, bits) < 2 * n_test:
        a, b = all_pairs(task, bits)
        order = rng.permutation(len(a))  # shuffled, so the first few are typical pairs
        return Split(task, bits, a[order], b[order], held_out=False)
    keys = {}  # dict, not set: keeps the draw order, so the split is deterministic
    while len(keys) < n_test:
        a, b = sample_pairs(task, bits, n_test - len(keys), rng)
        keys.update(dict.fromkeys(zip(a.tolist(), b.tolist())))
    pairs = np.array(list(keys), dtype=np.uint64)
    return Split(task, bits, pairs[:, 0].copy(), pairs[:, 1].copy(), held_out=True)


# -- encoding and reading ----------------------------------------------------------------

def to_bits(values, bits):
    """(N,) non-negative integers -> (N, bits) array of 0/1, least-significant bit first."""
    values = np.asarray(values, dtype=np.uint64)
    return ((values[:, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)


def from_bits(bit_array):
    """(N, T) array of 0/1, least-significant bit first -> (N,) uint64 values."""
    bit_array = np.asarray(bit_array).astype(np.uint64)
    weights = np.uint64(1) << np.arange(bit_array.shape[-1], dtype=np.uint64)
    return (bit_array * weights).sum(axis=-1, dtype=np.uint64)


def encode(task, a, b, bits):
    """Input x (N, bits, 2) and target y (N, bits, 1), float64, for operands ``a``, ``b``
    (integer arrays (N,)): x[:, t] holds bit t of a and b, y[:, t] bit t of the result.
    ValueError for operands outside the task's range: a result is never truncated."""
    limit = operand_limit(task, bits)
    a, b = np.atleast_1d(np.asarray(a)), np.atleast_1d(np.asarray(b))
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D arrays of the same length, got shapes "
                         f"{a.shape} and {b.shape}")
    if a.dtype.kind not in "iuO" or b.dtype.kind not in "iuO":
        raise ValueError(f"operands must be integers, got dtypes {a.dtype} and {b.dtype}")
    for name, v in (("a", a), ("b", b)):
        if v.size and (min(v.tolist()) < 0 or max(v.tolist()) >= limit):
            raise ValueError(f"{task} with {bits} bits needs operands in [0, {limit}), "
                             f"got {name} in [{min(v.tolist())}, {max(v.tolist())}]")
    a, b = a.astype(np.uint64), b.astype(np.uint64)
    if task == "subtraction" and np.any(a < b):
        raise ValueError("subtraction needs a >= b for every pair (results are unsigned)")
    x = np.stack([to_bits(a, bits), to_bits(b, bits)], axis=-1).astype(np.float64)
    y = to_bits(compute(task, a, b), bits)[:, :, None].astype(np.float64)
    return x, y


def format_example(task, a, b, predicted, bits):
    """A worked example laid out like a written sum, most-significant bit first:
    ``  x1: 1101 / - x2: 1001 / true: 0100   pred: 0100   13 - 9 = 4`` on three lines."""
    true = int(compute(task, a, b))
    line = (f"true: {int(true):0{bits}b}   pred: {int(predicted):0{bits}b}   "
            f"{int(a)} {TASKS[task]} {int(b)} = {true}")
    if int(predicted) != true:
        line += f"   WRONG (predicted {int(predicted)})"
    return f"  x1: {int(a):0{bits}b}\n{TASKS[task]} x2: {int(b):0{bits}b}\n" + line


def worked_examples(task, a, b, predicted, bits, count=4):
    """Up to ``count`` formatted examples, mistakes first (they are the interesting ones)."""
    correct = predicted == compute(task, a, b)
    wrong, right = np.flatnonzero(~correct), np.flatnonzero(correct)
    chosen = list(wrong[:(count + 1) // 2]) + list(right[:count])
    return [format_example(task, a[i], b[i], predicted[i], bits) for i in chosen[:count]]
