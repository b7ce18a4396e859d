"""Random graphs: seeded compositions of every primitive op over shapes with 0-d, size-0
and size-1 dimensions and broadcasting, each checked four ways:

- the forward value equals the same program evaluated with plain numpy;
- ``mg.gradcheck`` agrees with backward for every leaf (float64);
- in float32 every value and gradient stays float32, with the shapes of its tensor;
- no numpy warning escapes, and the recorded sweep's contributions add up to each
  leaf's gradient.

A program is a list of instructions over numbered nodes, interpreted by one function
with either minigrad or a numpy stand-in (``NumpyOps``) as the backend, so both
evaluate literally the same expression. A failure names its seed; ``describe(seed)``
prints the program.
"""
import numpy as np
import pytest

import minigrad as mg

pytestmark = pytest.mark.usefixtures("warnings_are_errors")

SEEDS = range(400)
SHAPES = [(), (1,), (3,), (0,), (2, 3), (1, 3), (3, 1), (2, 0), (2, 1, 3), (1, 2, 2)]


class NumpyOps:
    """minigrad's functional API written with numpy alone: the reference backend."""

    add, subtract = staticmethod(np.add), staticmethod(np.subtract)
    multiply = staticmethod(np.multiply)
    divide, power, matmul = staticmethod(np.divide), staticmethod(np.power), staticmethod(np.matmul)
    negative, exp, log, tanh = (staticmethod(np.negative), staticmethod(np.exp),
                                staticmethod(np.log), staticmethod(np.tanh))
    sigmoid = staticmethod(lambda x: 1 / (1 + np.exp(-x)))
    relu = staticmethod(lambda x: np.maximum(x, 0))
    softplus = staticmethod(lambda x: np.logaddexp(0, x))
    sum = staticmethod(lambda x, axis=None, keepdims=False: np.sum(x, axis, keepdims=keepdims))
    mean = staticmethod(lambda x, axis=None, keepdims=False: np.mean(x, axis, keepdims=keepdims))
    reshape = staticmethod(lambda x, shape: np.reshape(x, shape))
    transpose = staticmethod(lambda x, axes: np.transpose(x, axes))
    getitem = staticmethod(lambda x, index: x[index])
    concat = staticmethod(lambda xs, axis: np.concatenate(xs, axis))
    stack = staticmethod(lambda xs, axis: np.stack(xs, axis))
    constant = staticmethod(lambda value: np.asarray(value, np.float64))


class MinigradOps:
    """minigrad itself, plus a 0-d float64 constant (which must not promote float32)."""

    def __getattr__(self, name):
        return getattr(mg, name)

    constant = staticmethod(lambda value: mg.Tensor(np.asarray(value, np.float64)))


MG = MinigradOps()


# Each instruction: name -> (number of node arguments, f(backend, *nodes, *params)).
# Where an op has a pole or a restricted domain, its argument is first mapped into a
# safe range by other ops, so every value stays finite and every gradient smooth.
INSTRUCTIONS = {
    "negative": (1, lambda m, a: m.negative(a)),
    "exp": (1, lambda m, a: m.exp(m.tanh(a))),
    "log": (1, lambda m, a: m.log(m.add(m.multiply(a, a), 0.5))),
    "tanh": (1, lambda m, a: m.tanh(a)),
    "sigmoid": (1, lambda m, a: m.sigmoid(a)),
    "relu": (1, lambda m, a: m.relu(a)),
    "softplus": (1, lambda m, a: m.softplus(a)),
    "add": (2, lambda m, a, b: m.add(a, b)),
    "subtract": (2, lambda m, a, b: m.subtract(a, b)),
    "multiply": (2, lambda m, a, b: m.multiply(a, b)),
    "divide": (2, lambda m, a, b: m.divide(a, m.add(m.multiply(b, b), 0.5))),
    "power": (2, lambda m, a, b: m.power(m.add(m.sigmoid(a), 0.5), b)),
    "square": (1, lambda m, a: m.power(a, 2.0)),
    # A 0-d float64 tensor does not promote an n-d float32 one (two 0-d ones promote).
    "scale-by-0d": (1, lambda m, a: m.multiply(m.constant(1.5) if a.ndim else 1.5, a)),
    "matmul": (2, lambda m, a, b: m.matmul(a, b)),
    "sum": (1, lambda m, a, axis, keepdims: m.sum(a, axis, keepdims)),
    "mean": (1, lambda m, a, axis, keepdims: m.mean(a, axis, keepdims)),
    "reshape": (1, lambda m, a, shape: m.reshape(a, shape)),
    "transpose": (1, lambda m, a, axes: m.transpose(a, axes)),
    "getitem": (1, lambda m, a, index: m.getitem(a, index)),
    "concat": (2, lambda m, a, b, axis: m.concat([a, b], axis)),
    "stack": (2, lambda m, a, b, axis: m.stack([a, b], axis)),
}


def run(program, leaves, m):
    """Evaluate ``program`` on the ``leaves`` with backend ``m``; returns the last node.
    The instruction ``("leaf", [], (k,))`` makes leaf k the next node."""
    nodes = []
    for name, args, params in program:
        if name == "leaf":
            nodes.append(leaves[params[0]])
        else:
            nodes.append(INSTRUCTIONS[name][1](m, *[nodes[i] for i in args], *params))
    return nodes[-1]


def broadcast_partner(rng, shape):
    """A shape that broadcasts with ``shape``: some dims set to 1, leading ones dropped."""
    partner = [1 if rng.random() < 0.3 else n for n in shape]
    return tuple(partner[rng.integers(0, len(partner) + 1):])


def random_index(rng, shape):
    """A basic index (ints, slices, None, ...) or an integer/boolean array on one axis."""
    axis = int(rng.integers(len(shape)))
    n = shape[axis]
    kind = rng.choice(["slice", "step", "int", "newaxis", "ints", "mask"])
    if kind == "int" and n > 0:
        one = int(rng.integers(-n, n))
    elif kind == "ints" and n > 0:
        one = rng.integers(0, n, size=int(rng.integers(1, 4)))  # repeats allowed
    elif kind == "mask":
        one = rng.random(n) < 0.5
    elif kind == "newaxis":
        return (Ellipsis, None) if rng.random() < 0.5 else (None,)
    elif kind == "step":
        one = slice(None, None, int(rng.choice([-1, 2, -2])))
    else:
        one = slice(int(rng.integers(0, n + 1)), None)
    return (slice(None),) * axis + (one,)


def random_program(seed):
    """(leaf shapes, instructions): 3-8 random ops, any of which may reuse any node."""
    rng = np.random.default_rng(seed)
    leaf_shapes, shapes, program = [], [], []

    def new_leaf(shape):
        program.append(("leaf", [], (len(leaf_shapes),)))
        leaf_shapes.append(shape)
        shapes.append(shape)
        return len(shapes) - 1

    for _ in range(int(rng.integers(1, 3))):
        new_leaf(SHAPES[int(rng.integers(len(SHAPES)))])
    for _ in range(int(rng.integers(3, 9))):
        a = int(rng.integers(max(0, len(shapes) - 3), len(shapes)))  # mostly recent nodes
        name = str(rng.choice(list(INSTRUCTIONS)))
        shape = shapes[a]
        ndim = len(shape)
        params, args = (), [a]
        if name in ("add", "subtract", "multiply", "divide", "power"):
            others = [i for i, s in enumerate(shapes) if _broadcasts(s, shape)]
            if rng.random() < 0.5:
                b = int(rng.choice(others))
            else:
                b = new_leaf(broadcast_partner(rng, shape))
            args = [a, b] if rng.random() < 0.5 else [b, a]
        elif name == "matmul":
            if ndim == 0:
                continue
            k = int(rng.choice([0, 1, 3]))
            args = [a, new_leaf((shape[-1],) if rng.random() < 0.3 else (shape[-1], k))]
        elif name in ("sum", "mean"):
            axis = None if ndim == 0 or rng.random() < 0.3 else int(rng.integers(-ndim, ndim))
            reduced = np.prod(shape) if axis is None else shape[axis]
            if name == "mean" and reduced == 0:  # the mean of nothing is NaN
                name = "sum"
            params = (axis, bool(rng.random() < 0.5))
        elif name == "reshape":
            size = int(np.prod(shape))
            options = [(-1,), (size, 1), (1,) + shape] + ([()] if size == 1 else [])
            params = (options[int(rng.integers(len(options)))],)
        elif name == "transpose":
            params = (tuple(int(i) for i in rng.permutation(ndim)) if ndim else None,)
        elif name == "getitem":
            if ndim == 0:
                continue
            params = (random_index(rng, shape),)
        elif name in ("concat", "stack"):
            axes = ndim if name == "concat" else ndim + 1
            if name == "concat" and (ndim == 0 or rng.random() < 0.2):
                axis = None  # numpy's flatten-then-join
            else:
                axis = int(rng.integers(-axes, axes))
            same = [i for i, s in enumerate(shapes) if s == shape]  # a itself among them
            args = [a, int(rng.choice(same))]
            params = (axis,)
        program.append((name, args, params))
        with np.errstate(all="ignore"):
            shapes.append(np.shape(run(program, [np.ones(s) for s in leaf_shapes], NumpyOps)))
    if program[-1][0] == "leaf":
        program.append(("tanh", [len(shapes) - 1], ()))
    return leaf_shapes, program


def _broadcasts(s, t):
    try:
        return np.broadcast_shapes(s, t) == t
    except ValueError:
        return False


def describe(seed):
    leaf_shapes, program = random_program(seed)
    lines = [f"node {k} = {name}{tuple(args)} {params}" +
             (f" shape {leaf_shapes[params[0]]}" if name == "leaf" else "")
             for k, (name, args, params) in enumerate(program)]
    return "\n".join(lines)


def leaves_for(seed, dtype=np.float64):
    leaf_shapes, program = random_program(seed)
    rng = np.random.default_rng(seed + 10_000)
    arrays = [rng.standard_normal(s).astype(dtype) for s in leaf_shapes]
    return program, arrays


@pytest.mark.parametrize("seed", SEEDS)
def test_forward_equals_numpy_and_backward_equals_central_differences(seed):
    program, arrays = leaves_for(seed)
    with np.errstate(all="raise"):  # the reference's values are finite everywhere
        expected = run(program, arrays, NumpyOps)
    leaves = [mg.Tensor(a, requires_grad=True) for a in arrays]
    out = run(program, leaves, MG)
    assert out.shape == np.shape(expected), describe(seed)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-300, err_msg=describe(seed))
    assert mg.gradcheck(lambda *ts: run(program, ts, MG), leaves, max_elements=12)


@pytest.mark.parametrize("seed", SEEDS)
def test_float32_stays_float32_and_the_sweep_adds_up(seed):
    program, arrays = leaves_for(seed, np.float32)
    leaves = [mg.Tensor(a, requires_grad=True) for a in arrays]
    out = run(program, leaves, MG)
    assert out.dtype == np.float32, describe(seed)
    with mg.record_backward() as sweep:
        out.backward(np.ones(out.shape, np.float32))
    sent = {id(t): np.zeros(t.shape, np.float32) for t in leaves}
    for step in sweep:
        for tensor, g in step.input_grads:
            if g is not None and tensor.op is None:
                sent[id(tensor)] += g
    for t in leaves:
        grad = t.grad if t.grad is not None else np.zeros(t.shape, np.float32)
        assert grad.dtype == np.float32 and grad.shape == t.shape, describe(seed)
        np.testing.assert_allclose(sent[id(t)], grad, rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="retain_graph"):
        out.backward(np.ones(out.shape, np.float32))


def test_the_programs_cover_every_instruction_and_the_awkward_shapes():
    """A guard on the generator itself: a generator that stopped producing, say, size-0
    operands would let every test above pass while checking nothing new."""
    names, shapes = set(), set()
    for seed in SEEDS:
        leaf_shapes, program = random_program(seed)
        names |= {name for name, _, _ in program} - {"leaf"}
        shapes |= set(leaf_shapes)
    assert names == set(INSTRUCTIONS)
    assert () in shapes and any(0 in s for s in shapes) and any(1 in s for s in shapes)
