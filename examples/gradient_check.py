"""Check every gradient of the LSTM against central differences, and show why T >= 3.

    python examples/gradient_check.py [--json PATH]

Part 1 compares minigrad's gradients (the reverse sweep over the unrolled graph) with
central differences for every parameter of a 2-layer LSTM, and for its input and its
initial state, over T = 4 steps from a non-zero initial state. It prints, per tensor, the
worst relative error |a - n| / max(|a| + |n|, 1e-12) over its elements.

Part 2 shows why the number of steps matters. ``faulty_bptt`` below is a hand-derived
backward pass of the same LSTM in plain numpy with a classic bug, and it is labelled
FAULTY wherever it appears. When step t hands the cell-state gradient back to step t-1,
it passes on only the part that arose at step t (through h_t) and forgets the part that
was itself carried back from step t+1.

With T = 2 nothing is carried into the last step, so nothing can be forgotten. The
only cell-state gradient that crosses a step boundary (from step 2 to step 1) is
complete, and the 2-step check passes. With T = 3, the gradient that step 2 receives
from step 3 never reaches step 1, and the check fails. The graph-derived gradient has
no such code to get wrong and passes both. A gradient check therefore needs at least
three steps to see every path of backpropagation through time. (The loss here is on the
outputs h_t. A loss on the final cell state c_T would put a carried-in gradient into
the last step too, and the bug would already show at T = 2.)

Exit status 0 when everything came out as described, 1 otherwise. ``--json PATH`` (or
``-`` for standard output) writes every error measured.
"""
import sys

import numpy as np

import lesson
import minigrad as mg
from minigrad.gradcheck import numeric_gradient
from minigrad.models import LSTM

EPS = 1e-5         # central-difference step: balances rounding (~1e-16/EPS) and
                   # truncation (~EPS**2) errors in float64
TOLERANCE = 1e-5   # correct float64 gradients come out near 1e-7 or better here
INPUT, HIDDEN, BATCH = 3, 4, 2


def relative_error(analytic, numeric):
    """|a - n| / max(|a| + |n|, tiny), elementwise: scale-free, and 0 where both are 0."""
    return np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), 1e-12)


def random_problem(num_layers, steps, rng):
    """An LSTM with a random input, a random non-zero initial state and random weights."""
    lstm = LSTM(INPUT, HIDDEN, num_layers, rng=rng)
    x = mg.Tensor(rng.standard_normal((BATCH, steps, INPUT)), requires_grad=True, name="x")
    h0 = mg.Tensor(rng.standard_normal((num_layers, BATCH, HIDDEN)), requires_grad=True,
                   name="h0")
    c0 = mg.Tensor(rng.standard_normal((num_layers, BATCH, HIDDEN)), requires_grad=True,
                   name="c0")
    return lstm, x, h0, c0


# -- part 1: every gradient of the graph ---------------------------------------------------

def check_all_gradients(num_layers=2, steps=4, seed=0):
    """[(name, shape, worst relative error)] for every parameter, the input and the state.

    The loss contracts the outputs, and the final cell state, with random weights: an
    all-ones upstream gradient would let a backward that ignores it pass.
    """
    rng = np.random.default_rng(seed)
    lstm, x, h0, c0 = random_problem(num_layers, steps, rng)
    out_weights = rng.standard_normal((BATCH, steps, HIDDEN))
    cell_weights = rng.standard_normal((num_layers, BATCH, HIDDEN))

    def forward():
        out, (_, c_n) = lstm(x, (h0, c0))
        return (out * out_weights).sum() + (c_n * cell_weights).sum()

    forward().backward()

    def loss():
        with mg.no_grad():
            return forward().item()

    results = []
    for name, t in lstm.named_parameters() + [("x", x), ("h0", h0), ("c0", c0)]:
        error = relative_error(t.grad, numeric_gradient(loss, t.data, EPS))
        results.append((name, t.shape, float(error.max())))
    return results


# -- part 2: a hand-written BPTT with a bug ------------------------------------------------

def sigmoid(z):
    return 0.5 * np.tanh(0.5 * z) + 0.5


def numpy_forward(W, b, x, h0, c0):
    """The same one-layer LSTM in plain numpy (gates i, f, g, o), keeping what backward needs."""
    H = h0.shape[1]
    h, c, outputs, cache = h0, c0, [], []
    for t in range(x.shape[1]):
        xh = np.concatenate([x[:, t], h], axis=1)
        z = xh @ W + b
        i, f, g, o = (sigmoid(z[:, :H]), sigmoid(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]),
                      sigmoid(z[:, 3 * H:]))
        c_prev, c = c, f * c + i * g
        h = o * np.tanh(c)
        cache.append((xh, i, f, g, o, c_prev, c))
        outputs.append(h)
    return np.stack(outputs, axis=1), cache


def faulty_bptt(W, b, x, h0, c0, dout):
    """FAULTY hand-derived backward pass: gradients of sum(out * dout) w.r.t. W and b.

    Everything is right except one line, marked BUG. Kept to show what a 2-step gradient
    check cannot catch; do not use it.
    """
    D = x.shape[2]
    _, cache = numpy_forward(W, b, x, h0, c0)
    dW, db = np.zeros_like(W), np.zeros_like(b)
    dh_next = np.zeros_like(h0)  # gradient reaching h_t from step t+1
    dc_next = np.zeros_like(c0)  # gradient reaching c_t from step t+1
    for t in reversed(range(x.shape[1])):
        xh, i, f, g, o, c_prev, c = cache[t]
        dh = dout[:, t] + dh_next
        tanh_c = np.tanh(c)
        dc_here = dh * o * (1 - tanh_c ** 2)  # through h_t = o * tanh(c_t)
        dc = dc_here + dc_next                # all of dL/dc_t
        dz = np.concatenate([dc * g * i * (1 - i),        # input gate
                             dc * c_prev * f * (1 - f),   # forget gate
                             dc * i * (1 - g ** 2),       # candidate
                             dh * tanh_c * o * (1 - o)],  # output gate
                            axis=1)
        dW += xh.T @ dz
        db += dz.sum(axis=0)
        dh_next = dz @ W[D:].T
        dc_next = dc_here * f  # BUG: must be dc * f; drops what came back from step t+1
    return dW, db


def compare_on(steps, seed=0):
    """Relative errors {method: {'weight': array, 'bias': array}} of the graph gradient
    and of the faulty BPTT, both against central differences, for a T-step one-layer LSTM."""
    rng = np.random.default_rng(seed)
    lstm, x, h0, c0 = random_problem(1, steps, rng)
    dout = rng.standard_normal((BATCH, steps, HIDDEN))
    W, b = lstm.l0.weight, lstm.l0.bias
    state = (h0.data[0], c0.data[0])

    out, _ = lstm(x, (h0, c0))
    reference, _ = numpy_forward(W.data, b.data, x.data, *state)
    assert np.allclose(out.data, reference), "the numpy forward must be the same LSTM"
    (out * dout).sum().backward()
    faulty = faulty_bptt(W.data, b.data, x.data, *state, dout)

    def loss():
        with mg.no_grad():
            return float((lstm(x, (h0, c0))[0].data * dout).sum())

    numeric = (numeric_gradient(loss, W.data, EPS), numeric_gradient(loss, b.data, EPS))
    errors = {}
    for method, grads in (("graph", (W.grad, b.grad)), ("faulty", faulty)):
        errors[method] = {name: relative_error(g, n)
                          for name, g, n in zip(("weight", "bias"), grads, numeric)}
    return errors


def verdict(error):
    return "pass" if error < TOLERANCE else "FAIL"


def parse_args(argv=None):
    parser = lesson.Parser("gradient_check.py", "Check every LSTM gradient against central "
                           "differences, and show a BPTT bug that a 2-step check misses.")
    parser.add_argument("--json", metavar="PATH", help="write the measured errors as JSON to "
                        "PATH ('-': standard output, and the text goes to stderr)")
    return parser.parse_args(argv)


def main(argv=None):
    """Exit status 0 when everything came out as described, 1 otherwise."""
    return lesson.run_script(parse_args, run, argv,
                             status=lambda record: 0 if record["as_described"] else 1)


def run(args):
    """Both parts, printed as they go; returns the JSON record."""
    print("Part 1: every gradient of a 2-layer LSTM (input 3, hidden 4, batch 2) over T = 4 "
          "steps,\nfrom a random non-zero initial state, against central differences "
          f"(eps {EPS:g}).\nWorst relative error |a - n| / max(|a| + |n|, 1e-12) per tensor:")
    results = check_all_gradients()
    for name, shape, error in results:
        print(f"  {name:<16} {str(shape):<14} {error:9.2e}   {verdict(error)}")
    all_pass = all(error < TOLERANCE for _, _, error in results)
    print(f"all {len(results)} tensors below {TOLERANCE:g}: {'yes' if all_pass else 'NO'}")

    print("\nPart 2: a hand-written numpy BPTT that, when handing the cell-state gradient back "
          "from\nstep t to step t-1, forgets the part carried back from step t+1 "
          "(labelled FAULTY).\nWorst relative error of the one-layer LSTM's weight and bias "
          "gradients:")
    passed, record = {}, {"part1": [{"tensor": name, "shape": list(shape), "error": error}
                                    for name, shape, error in results], "part2": []}
    for steps in (2, 3):
        errors = compare_on(steps)
        for method, label in (("graph", "minigrad graph"), ("faulty", "FAULTY numpy BPTT")):
            weight, bias = errors[method]["weight"], errors[method]["bias"]
            wrong = int((weight >= TOLERANCE).sum() + (bias >= TOLERANCE).sum())
            passed[method, steps] = wrong == 0
            record["part2"].append({"steps": steps, "method": method, "weight": weight.max(),
                                    "bias": bias.max(), "wrong_elements": wrong})
            print(f"  T = {steps}  {label:<18} weight {weight.max():9.2e}  bias {bias.max():9.2e}"
                  f"   {verdict(max(weight.max(), bias.max()))}"
                  + (f" ({wrong} of {weight.size + bias.size} elements wrong)" if wrong else ""))

    def outcome(method, steps):
        return f"{'passes' if passed[method, steps] else 'fails'} at {steps} steps"

    print(f"\nThe FAULTY BPTT {outcome('faulty', 2)} and {outcome('faulty', 3)}; the graph-"
          f"derived gradient {outcome('graph', 2)} and {outcome('graph', 3)}.")
    as_described = (all_pass and passed["graph", 2] and passed["graph", 3]
                    and passed["faulty", 2] and not passed["faulty", 3])
    if as_described:
        print("A 2-step gradient check cannot see this bug: check BPTT with T >= 3.")
    return dict(record, tolerance=TOLERANCE, as_described=as_described)


if __name__ == "__main__":
    sys.exit(main())
