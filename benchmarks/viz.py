"""How long Graphviz's ``dot`` takes to lay out each view of an unrolled LSTM, and how much
memory it needs, as the sequence grows.

The graph is ``models.LSTM(2, 8)`` and a ``Linear(8, 1)`` head over one sequence of T
steps, the loss of the last step backpropagated with ``retain_grads=True`` and drawn
with ``show_grads=True`` (what ``examples/render_graph.py --grads`` draws). For each view
and T: the size of the DOT text, the guard's measure of it (``mg.viz.files.layout_size``:
nodes x (nodes + edges + the ranks long edges span); above ``LAYOUT_LIMIT`` a drawing is
refused), the time to build the DOT text, and the wall time and peak memory of
``dot -Tsvg``.
Each ``dot`` runs under a small Python parent of its own, so that parent's
``RUSAGE_CHILDREN`` peak is that one run's peak.

    python benchmarks/viz.py [--cases ops:4 ops:16 steps:64 ...] [--reps 1] [--json PATH]
"""
import argparse
import json
import subprocess
import sys
import time

import numpy as np

from common import machine, machine_line, median, table, write_json

import minigrad as mg
from minigrad.viz.files import LAYOUT_LIMIT, layout_size
from minigrad.models import LSTM

DEFAULT_CASES = ("ops:4", "ops:8", "ops:16", "ops:32", "ops:64", "ops:128", "steps:64", "rolled:64",
                 "steps:256")
TARGETS = {("ops", 16): 3.0, ("ops", 32): 10.0, ("steps", 64): 2.0, ("rolled", 64): 2.0,
           ("steps", 256): 5.0}  # seconds of dot, from the issue

# Runs dot on stdin; prints the wall time and this process's children's peak RSS (KB on
# Linux, bytes on macOS).
_DOT_RUNNER = """
import resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(["dot", "-Tsvg", "-o", "/dev/null"], stdin=sys.stdin,
                      capture_output=True)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(seconds, peak * (1 if sys.platform == "darwin" else 1024), done.returncode)
sys.stderr.write(done.stderr.decode("utf-8", "replace")[:500])
"""


def lstm_loss(T, seed=0):
    """The benchmarked graph: LSTM(2, 8) + Linear(8, 1), loss of the last step, gradients
    retained for show_grads."""
    rng = np.random.default_rng(seed)
    lstm, head = LSTM(2, 8, rng=rng), mg.nn.Linear(8, 1, rng=rng)
    x = mg.Tensor(rng.integers(0, 2, size=(1, T, 2)).astype(float), requires_grad=True,
                  name="x")
    with mg.scope("lstm"):
        out, _ = lstm(x)
    loss = (head(out[:, -1, :]) ** 2).sum()
    loss.name = "loss"
    loss.backward(retain_grads=True)
    return loss


def run_dot(source):
    """(seconds, peak bytes) of one ``dot -Tsvg`` of ``source``."""
    done = subprocess.run([sys.executable, "-c", _DOT_RUNNER], input=source.encode("utf-8"),
                          capture_output=True, check=True)
    seconds, peak, returncode = done.stdout.split()
    if returncode != b"0":
        raise RuntimeError(f"dot failed: {done.stderr.decode('utf-8', 'replace')}")
    return float(seconds), int(peak)


def measure(view, T, reps):
    loss = lstm_loss(T)
    start = time.perf_counter()
    drawing = mg.viz.graph(loss, view=view, show_grads=True)
    build = time.perf_counter() - start
    source = drawing.source
    runs = [run_dot(source) for _ in range(reps)]
    return {"view": view, "T": T, "dot_text_kb": round(len(source.encode()) / 1024, 1),
            "layout_work": layout_size(drawing), "build_seconds": round(build, 3),
            "dot_seconds": round(median([r[0] for r in runs]), 3),
            "dot_peak_mb": round(max(r[1] for r in runs) / 2**20, 1),
            "target_seconds": TARGETS.get((view, T))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES, metavar="VIEW:T")
    parser.add_argument("--reps", type=int, default=1, help="dot runs per case (median)")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    info = machine()
    print(machine_line(info))
    print(f"guard: LAYOUT_LIMIT = {LAYOUT_LIMIT:,}", flush=True)
    results = []
    for case in args.cases:
        view, T = case.split(":")
        results.append(measure(view, int(T), args.reps))
        r = results[-1]
        print(f"  {view} T={T}: dot {r['dot_seconds']:.2f} s, {r['dot_peak_mb']:.0f} MB",
              file=sys.stderr, flush=True)
    rows = []
    for r in results:
        target = r["target_seconds"]
        rows.append([r["view"], r["T"], f"{r['dot_text_kb']:,.1f}", f"{r['layout_work']:,}",
                     f"{r['build_seconds']:.2f}", f"{r['dot_seconds']:.2f}",
                     f"{r['dot_peak_mb']:,.0f}",
                     f"<= {target:g} s" if target else "", "" if target is None else
                     ("yes" if r["dot_seconds"] <= target else "no")])
    print(table(["view", "T", "DOT KB", "layout work", "DOT text s", "dot s", "dot peak MB",
                 "target", "met"], rows))
    print(json.dumps({"machine": info, "results": results}))
    write_json(args.json, {"machine": info, "results": results})


if __name__ == "__main__":
    main()
