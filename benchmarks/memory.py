"""Peak memory of one forward + backward of models.LSTM, against the reference, as T grows;
and of each iteration of a training loop.

Backpropagation through time must keep every step's activations until backward reaches
them, so memory grows linearly in T for both; what matters is the slope (peak / T should
stay constant) and how far above the reference's slope minigrad's graph sits.

Each measurement runs in a fresh subprocess, so nothing one leaves behind (numpy's
cached blocks, a graph still referenced, a grown heap) shows up in the next. Inside it,
the model and the input are built first, then ``tracemalloc`` traces the step: the peak
counts every allocation made by the step, numpy arrays and Python objects alike, and
nothing allocated before. The process's max RSS is printed too as a cross-check (it
includes the interpreter and numpy, about 30-40 MB).

A training loop is the second measurement: ``models.LSTM(16, 64)``, N = 32, T = 200,
Adam, the loss of the previous iteration still referenced while the next forward runs (as
in any ``for`` loop that assigns ``loss = ...``). Its peak per iteration shows how many
graphs are alive at once: backward releases the graph as it goes, so a later iteration
should peak no higher than the first (which also allocates Adam's moment buffers).

    python benchmarks/memory.py [--lengths 100 1000 5000] [--iterations 4] [--json PATH]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from common import lstm_problem, machine, machine_line, table, write_json

N, D, H = 32, 16, 64
DTYPE = np.float32
TARGET_RATIO = 1.5  # minigrad / reference at T = 1,000
TARGET_COMPILED_RATIO = 1.3  # a replayed mg.compile step / reference at T = 1,000
LOOP_T = 200
TARGET_LOOP_RATIO = 1.1  # peak of a later training iteration / peak of the first


def measure(impl, t):
    """Peak traced bytes of one training step of ``impl`` at length ``t`` (run in a child)."""
    import minigrad as mg
    from reference_lstm import ReferenceLSTM

    lstm, head, x, target = lstm_problem((N, t, D, H), DTYPE)

    setup = None
    if impl == "compiled":
        # Traced from before the capture, so the planned arrays it keeps count; the peak
        # is reset after it (it runs the engine once): what every later step peaks at.
        def loss_fn(xs, ys):
            out, _ = lstm(xs)
            return mg.nn.binary_cross_entropy_with_logits(head(out), ys)

        step = mg.compile(loss_fn)
        xt, yt = x, target

        def setup():
            step(x, target)
            lstm.zero_grad()
            head.zero_grad()
    elif impl == "minigrad":
        xt, yt = mg.Tensor(x), mg.Tensor(target)

        def step(xs, ys):
            out, _ = lstm(xs)
            mg.nn.binary_cross_entropy_with_logits(head(out), ys).backward()

        step(xt[:, :2], yt[:, :2])  # warm-up: first-call allocations are not the step's
        lstm.zero_grad()
        head.zero_grad()
    else:
        arrays = (lstm.l0.weight.data, lstm.l0.bias.data, head.weight.data, head.bias.data)
        ReferenceLSTM(*arrays).forward(x[:, :2], target[:, :2])
        xt, yt = x, target

        def step(xs, ys):
            ref = ReferenceLSTM(*arrays)  # its buffers are part of its footprint
            ref.forward(xs, ys)
            ref.backward()

    tracemalloc.start()
    if setup is not None:
        setup()
        tracemalloc.reset_peak()
    start = time.perf_counter()
    step(xt, yt)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {"impl": impl, "T": t, "peak_bytes": peak, "max_rss_bytes": max_rss,
            "seconds_traced": seconds}


def measure_loop(iterations):
    """Peak traced bytes of each of ``iterations`` training iterations (run in a child).

    Traced from before the first iteration; each iteration's peak is the most memory
    alive at any moment during it, including what earlier iterations left alive."""
    import minigrad as mg

    lstm, head, x, target = lstm_problem((N, LOOP_T, D, H), DTYPE)
    xt, yt = mg.Tensor(x), mg.Tensor(target)
    optimizer = mg.optim.Adam(lstm.parameters() + head.parameters(), lr=1e-3)
    tracemalloc.start()
    peaks = []
    for _ in range(iterations):
        tracemalloc.reset_peak()
        optimizer.zero_grad()
        out, _ = lstm(xt)
        loss = mg.nn.binary_cross_entropy_with_logits(head(out), yt)
        loss.backward()
        optimizer.step()
        peaks.append(tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
    return {"T": LOOP_T, "iterations": iterations, "peak_bytes": peaks}


def run_child(*args):
    out = subprocess.run([sys.executable, __file__, "--child", *map(str, args)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--iterations", type=int, default=4,
                        help="training iterations in the loop measurement (0: skip it)")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--child", nargs=2, metavar=("IMPL", "T"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        impl, value = args.child[0], int(args.child[1])
        print(json.dumps(measure_loop(value) if impl == "loop" else measure(impl, value)))
        return

    from reference_lstm import self_check
    self_check()  # the floor must compute what minigrad computes before it is compared
    info = machine()
    print(machine_line(info))
    results = {(impl, t): run_child(impl, t)
               for t in args.lengths for impl in ("minigrad", "compiled", "reference")}
    rows = []
    mb = 1 / 2**20
    for t in args.lengths:
        m, c, r = (results[impl, t] for impl in ("minigrad", "compiled", "reference"))
        rows.append([f"{t:,}", f"{m['peak_bytes'] * mb:,.1f}", f"{m['peak_bytes'] / t / 1024:,.1f}",
                     f"{c['peak_bytes'] * mb:,.1f}", f"{c['peak_bytes'] / t / 1024:,.1f}",
                     f"{r['peak_bytes'] * mb:,.1f}", f"{r['peak_bytes'] / t / 1024:,.1f}",
                     f"{m['peak_bytes'] / r['peak_bytes']:.2f}",
                     f"{c['peak_bytes'] / r['peak_bytes']:.2f}",
                     f"{m['max_rss_bytes'] * mb:,.0f} / {r['max_rss_bytes'] * mb:,.0f}"])
    print(f"\npeak traced memory of forward+backward, (N, D, H) = ({N}, {D}, {H}), "
          f"{np.dtype(DTYPE).name}, Linear head + BCE loss; compiled: a replayed step, with "
          f"the arrays its plan keeps; load average {os.getloadavg()[0]:.1f}")
    print(table(["T", "eager MB", "eager KB/step", "compiled MB", "compiled KB/step",
                 "reference MB", "reference KB/step", "eager ratio", "compiled ratio",
                 "max RSS MB (eager / ref)"], rows))
    summary = {}
    if 1000 in args.lengths:
        ratio = results["minigrad", 1000]["peak_bytes"] / results["reference", 1000]["peak_bytes"]
        compiled = results["compiled", 1000]["peak_bytes"] / \
            results["reference", 1000]["peak_bytes"]
        summary = {"ratio_at_1000": ratio, "target_ratio": TARGET_RATIO,
                   "meets_target": ratio <= TARGET_RATIO,
                   "compiled_ratio_at_1000": compiled,
                   "compiled_target_ratio": TARGET_COMPILED_RATIO,
                   "compiled_meets_target": compiled <= TARGET_COMPILED_RATIO}
        print(f"\nratio at T = 1,000: eager {ratio:.2f} (target <= {TARGET_RATIO}: "
              f"{'met' if ratio <= TARGET_RATIO else 'not met'}), compiled {compiled:.2f} "
              f"(target <= {TARGET_COMPILED_RATIO}: "
              f"{'met' if compiled <= TARGET_COMPILED_RATIO else 'not met'})")
    loop = {}
    if args.iterations:
        loop = run_child("loop", args.iterations)
        first, later = loop["peak_bytes"][0], max(loop["peak_bytes"][1:] or [0])
        loop.update(later_over_first=later / first, target_ratio=TARGET_LOOP_RATIO,
                    meets_target=later / first <= TARGET_LOOP_RATIO)
        print(f"\npeak traced memory of each training iteration, models.LSTM({D}, {H}), "
              f"N = {N}, T = {LOOP_T}, Adam, the previous loss still referenced")
        print(table(["iteration", "peak MB", "/ first"],
                    [[str(i + 1), f"{p * mb:,.1f}", f"{p / first:.2f}"]
                     for i, p in enumerate(loop["peak_bytes"])]))
        print(f"\nlater iterations / first: {later / first:.2f} (target <= {TARGET_LOOP_RATIO}: "
              f"{'met' if loop['meets_target'] else 'not met'})")
    write_json(args.json, {"benchmark": "memory", "machine": info,
                           "N_D_H": [N, D, H], "dtype": np.dtype(DTYPE).name,
                           "results": list(results.values()), **summary,
                           "training_loop": loop})


if __name__ == "__main__":
    main()
