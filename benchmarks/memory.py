"""Peak memory of one forward + backward of models.LSTM, against the reference, as T grows.

Backpropagation through time must keep every step's activations until backward reaches
them, so memory grows linearly in T for both; what matters is the slope (peak / T should
stay constant) and how far above the reference's slope minigrad's graph sits.

Each measurement runs in a fresh subprocess, so nothing one leaves behind (numpy's
cached blocks, a graph still referenced, a grown heap) shows up in the next. Inside it,
the model and the input are built first, then ``tracemalloc`` traces the step: the peak
counts every allocation made by the step, numpy arrays and Python objects alike, and
nothing allocated before. The process's max RSS is printed too as a cross-check (it
includes the interpreter and numpy, about 30-40 MB).

    python benchmarks/memory.py [--lengths 100 1000 5000] [--json PATH]
"""
import argparse
import json
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


def measure(impl, t):
    """Peak traced bytes of one training step of ``impl`` at length ``t`` (run in a child)."""
    import minigrad as mg
    from reference_lstm import ReferenceLSTM

    lstm, head, x, target = lstm_problem((N, t, D, H), DTYPE)

    if impl == "minigrad":
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
    start = time.perf_counter()
    step(xt, yt)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {"impl": impl, "T": t, "peak_bytes": peak, "max_rss_bytes": max_rss,
            "seconds_traced": seconds}


def run_child(impl, t):
    out = subprocess.run([sys.executable, __file__, "--child", impl, str(t)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--child", nargs=2, metavar=("IMPL", "T"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]))))
        return

    info = machine()
    print(machine_line(info))
    results = {(impl, t): run_child(impl, t)
               for t in args.lengths for impl in ("minigrad", "reference")}
    rows = []
    mb = 1 / 2**20
    for t in args.lengths:
        m, r = results["minigrad", t], results["reference", t]
        rows.append([f"{t:,}", f"{m['peak_bytes'] * mb:,.1f}", f"{m['peak_bytes'] / t / 1024:,.1f}",
                     f"{r['peak_bytes'] * mb:,.1f}", f"{r['peak_bytes'] / t / 1024:,.1f}",
                     f"{m['peak_bytes'] / r['peak_bytes']:.2f}",
                     f"{m['max_rss_bytes'] * mb:,.0f} / {r['max_rss_bytes'] * mb:,.0f}"])
    print(f"\npeak traced memory of forward+backward, (N, D, H) = ({N}, {D}, {H}), "
          f"{np.dtype(DTYPE).name}, Linear head + BCE loss")
    print(table(["T", "minigrad MB", "minigrad KB/step", "reference MB", "reference KB/step",
                 "ratio", "max RSS MB (mg / ref)"], rows))
    summary = {}
    if 1000 in args.lengths:
        ratio = results["minigrad", 1000]["peak_bytes"] / results["reference", 1000]["peak_bytes"]
        summary = {"ratio_at_1000": ratio, "target_ratio": TARGET_RATIO,
                   "meets_target": ratio <= TARGET_RATIO}
        print(f"\nratio at T = 1,000: {ratio:.2f} (target <= {TARGET_RATIO}: "
              f"{'met' if ratio <= TARGET_RATIO else 'not met'})")
    write_json(args.json, {"benchmark": "memory", "machine": info,
                           "N_D_H": [N, D, H], "dtype": np.dtype(DTYPE).name,
                           "results": list(results.values()), **summary})


if __name__ == "__main__":
    main()
