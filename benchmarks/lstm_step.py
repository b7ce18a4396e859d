"""One training step of models.LSTM, eager and compiled, against the hand-fused numpy
reference.

A step is: forward over T steps, a Linear head on every step's h, mean BCE-with-logits,
backward to every parameter (no optimizer). ``minigrad`` runs the engine (``loss =
fn(x, y); loss.backward()``), ``compiled`` the same ``fn`` through ``mg.compile``
(replayed; its capture is timed apart and reported in steps). All use the same arrays
and dtype, and before timing the script checks that they give the same loss and
gradients, so the ratios compare ways of computing one thing. If PyTorch is importable, two more
columns: ``torch.nn.LSTM`` (fused kernels) and an LSTM written from the same primitive
ops as ours (cat, mm, slices, sigmoid, tanh, mul, add), which shows what another
engine's per-op overhead costs on the same graph.

    python benchmarks/lstm_step.py                 # all shapes, float32 and float64
    python benchmarks/lstm_step.py --quick         # fewer reps, S1 and S3 only
    python benchmarks/lstm_step.py --shapes S3 --dtypes float64 --reps 40 --json out.json

Thread settings are taken from the environment, e.g. ``OPENBLAS_NUM_THREADS=1``.
"""
import argparse
import os
import time

import numpy as np

from common import (interleaved, lstm_problem, machine, machine_line, median, table,
                    write_json)

import minigrad as mg
from reference_lstm import ReferenceLSTM, self_check

try:  # optional: extra columns, never a requirement
    import torch
except ImportError:
    torch = None

SHAPES = {  # name: (N, T, D, H), target ratio minigrad / reference (eager)
    "S1": ((64, 8, 2, 32), 1.6),
    "S2": ((256, 8, 2, 32), 1.6),
    "S3": ((32, 100, 16, 64), 1.6),
    "S4": ((64, 32, 128, 256), 1.15),
}
COMPILED_TARGET = 1.0  # compiled / reference, at every shape


def make_candidates(shape, dtype, seed=0):
    """name -> a function running one training step; all share one set of weights."""
    lstm, head, x, target = lstm_problem(shape, dtype, seed)
    params = [lstm.l0.weight, lstm.l0.bias, head.weight, head.bias]

    def loss_fn(x, y):
        out, _ = lstm(x)
        return mg.nn.binary_cross_entropy_with_logits(head(out), y)

    def minigrad_step():
        for p in params:
            p.grad = None
        loss = loss_fn(x, target)
        loss.backward()
        return loss.item(), [p.grad for p in params]

    step = mg.compile(loss_fn)

    def compiled_step():
        for p in params:
            p.grad = None
        loss = step(x, target)
        return loss.item(), [p.grad for p in params]

    def capture(clock=time.perf_counter):
        """Seconds of a first call (the capture: the engine plus planning)."""
        for p in params:
            p.grad = None
        start = clock()
        mg.compile(loss_fn)(x, target)
        return clock() - start

    ref = ReferenceLSTM(*(p.data for p in params))

    def reference_step():
        loss = ref.forward(x, target)
        grads = ref.backward()
        return loss, [grads[k] for k in ("weight", "bias", "head_weight", "head_bias")]

    candidates = {"minigrad": minigrad_step, "compiled": compiled_step,
                  "reference": reference_step}
    candidates.update(torch_candidates([p.data for p in params], x, target))
    return candidates, capture


def torch_candidates(arrays, x, target):
    """PyTorch versions of the step, or nothing if PyTorch is not importable."""
    if torch is None:
        return {}
    w, b, hw, hb = (torch.tensor(a, requires_grad=True) for a in arrays)
    d = x.shape[2]
    h = w.shape[1] // 4
    xt, yt = torch.from_numpy(x), torch.from_numpy(target)
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    fused = torch.nn.LSTM(d, h, batch_first=True).to(w.dtype)
    fused_head = torch.nn.Linear(h, hw.shape[1]).to(w.dtype)
    with torch.no_grad():
        fused.weight_ih_l0.copy_(w[:d].T)
        fused.weight_hh_l0.copy_(w[d:].T)
        fused.bias_ih_l0.copy_(b)
        fused.bias_hh_l0.zero_()
        fused_head.weight.copy_(hw.T)
        fused_head.bias.copy_(hb)
    fused_params = [fused.weight_ih_l0, fused.weight_hh_l0, fused.bias_ih_l0,
                    fused.bias_hh_l0, fused_head.weight, fused_head.bias]

    def torch_fused():
        for p in fused_params:
            p.grad = None
        out, _ = fused(xt)
        loss = bce(fused_head(out), yt)
        loss.backward()
        wi, wh, bi, _, hw_g, hb_g = (p.grad.numpy() for p in fused_params)
        # bias_ih and bias_hh are only ever added, so each has our bias's gradient.
        return loss.item(), [np.concatenate([wi.T, wh.T]), bi, hw_g.T, hb_g]

    def torch_ops():
        for p in (w, b, hw, hb):
            p.grad = None
        hs = []
        hprev = torch.zeros(x.shape[0], h, dtype=w.dtype)
        c = torch.zeros_like(hprev)
        for s in range(x.shape[1]):
            z = torch.cat([xt[:, s, :], hprev], 1) @ w + b
            i, f = torch.sigmoid(z[:, :h]), torch.sigmoid(z[:, h:2 * h])
            g, o = torch.tanh(z[:, 2 * h:3 * h]), torch.sigmoid(z[:, 3 * h:])
            c = f * c + i * g
            hprev = o * torch.tanh(c)
            hs.append(hprev)
        loss = bce(torch.stack(hs, 1) @ hw + hb, yt)
        loss.backward()
        return loss.item(), [p.grad.numpy() for p in (w, b, hw, hb)]

    return {"torch.nn.LSTM": torch_fused, "torch ops": torch_ops}


def check_agreement(candidates, dtype):
    """Every candidate must give the reference's loss and gradients before it is timed."""
    rtol = 1e-9 if dtype == np.float64 else 2e-3
    loss, grads = candidates["reference"]()
    grads = [g.copy() for g in grads]  # the reference's buffers are reused by each call
    for name, fn in candidates.items():
        other_loss, other_grads = fn()
        scale = [max(np.abs(g).max(), 1e-30) for g in grads]
        errors = [np.abs(a - g).max() / s for a, g, s in zip(other_grads, grads, scale)]
        if abs(other_loss - loss) > rtol * abs(loss) or max(errors) > rtol:
            raise AssertionError(f"{name} disagrees with the reference: loss {other_loss} vs "
                                 f"{loss}, largest relative gradient error {max(errors):.2e}")


def measure(name, dtype_name, reps, warmup, clock=time.perf_counter):
    """Check, then time every candidate at one shape and dtype; returns a JSON record."""
    shape, target = SHAPES[name]
    candidates, capture = make_candidates(shape, np.dtype(dtype_name))
    check_agreement(candidates, np.dtype(dtype_name))
    load_before = os.getloadavg()[0]
    times = interleaved(candidates, reps, warmup, clock)
    us = {k: median(v) * 1e6 for k, v in times.items()}
    ratio = us["minigrad"] / us["reference"]
    compiled_ratio = us["compiled"] / us["reference"]
    capture_us = median([capture(clock) for _ in range(3)]) * 1e6
    return {"shape": name, "N_T_D_H": shape, "dtype": dtype_name, "reps": reps,
            "median_us": us, "ratio": ratio, "target_ratio": target,
            "meets_target": ratio <= target,
            "compiled_ratio": compiled_ratio, "compiled_target": COMPILED_TARGET,
            "compiled_meets_target": compiled_ratio <= COMPILED_TARGET,
            "capture_us": capture_us, "capture_steps": capture_us / us["compiled"],
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            # The fastest run of each is what a quiet machine gives: a second view of the
            # ratio, which other processes on the same cores distort less than the median.
            "min_us": {k: min(v) * 1e6 for k, v in times.items()},
            "ratio_of_minimums": min(times["minigrad"]) / min(times["reference"]),
            "all_us": {k: [s * 1e6 for s in v] for k, v in times.items()}}


def table_row(r, extra):
    us = r["median_us"]
    return ([f"{r['shape']} {tuple(r['N_T_D_H'])}", r["dtype"], f"{us['reference']:,.0f}",
             f"{us['minigrad']:,.0f}", f"{r['ratio']:.2f}",
             f"<= {r['target_ratio']}", "yes" if r["meets_target"] else "no",
             f"{us['compiled']:,.0f}", f"{r['compiled_ratio']:.2f}",
             "yes" if r["compiled_meets_target"] else "no", f"{r['capture_steps']:.1f}",
             " to ".join(f"{v:.1f}" for v in r["load_average"])]
            + [f"{us[k]:,.0f}" for k in extra])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, help="default: all")
    parser.add_argument("--dtypes", nargs="+", choices=("float32", "float64"),
                        default=["float32", "float64"])
    parser.add_argument("--reps", type=int, default=20,
                        help="timed repetitions (>= 20 for reported figures)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="5 reps after 1 warm-up, S1 and S3 unless --shapes: a smoke run")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: time this process's CPU seconds (steadier on a busy "
                             "machine; the load average is printed either way)")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.quick:
        args.reps, args.warmup = 5, 1
    if args.shapes is None:
        args.shapes = ["S1", "S3"] if args.quick else list(SHAPES)

    self_check()  # a floor that computed something else would make every ratio meaningless
    info = machine()
    if torch is not None:
        info["torch"] = f"{torch.__version__}, {torch.get_num_threads()} threads"
    print(machine_line(info) + (f"  torch {info['torch']}" if torch is not None else ""))
    results = []
    for name in args.shapes:
        for dtype_name in args.dtypes:
            results.append(measure(name, dtype_name, args.reps, args.warmup, clock))
            results[-1]["clock"] = args.clock
            print(f"  {name} {dtype_name}: " + ", ".join(
                f"{k} {v:,.0f} µs" for k, v in results[-1]["median_us"].items()), flush=True)
    extra = [k for k in results[0]["median_us"]
             if k not in ("minigrad", "compiled", "reference")]
    print(f"\nmedian µs ({args.clock} clock) per training step, {args.reps} interleaved "
          f"reps after {args.warmup} "
          f"warm-up; ratios to the reference; compiled target <= {COMPILED_TARGET}; "
          f"capture in compiled steps; load average before and after")
    print(table(["shape (N, T, D, H)", "dtype", "reference µs", "eager µs", "eager ratio",
                 "target", "met", "compiled µs", "compiled ratio", "met", "capture",
                 "load"] + [f"{k} µs" for k in extra],
                [table_row(r, extra) for r in results]))
    write_json(args.json, {"benchmark": "lstm_step", "machine": info, "results": results})


if __name__ == "__main__":
    main()
