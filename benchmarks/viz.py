"""How long Graphviz's ``dot`` takes to lay out the drawings the guard lets through, and how
long the guard takes to decide.

Layout: for each case ``VIEW:T[:MODEL]``, the graph of one sequence of T steps through
``models.LSTM(2, 8)``, ``GRU(2, 8)`` or ``RNN(2, 8)`` and a ``Linear(8, 1)`` head (the loss
of the last step, gradients retained, drawn with ``show_grads=True``), or ``chain``: T
steps of ``h = 0.5 * tanh(h)``, each in its scope ``t<k>``, or ``flat``: the same without
scopes. Reported: the DOT text's size, the guard's measure (``guard.layout_size``), the
time to draw, the wall time and peak memory of ``dot -Tsvg`` (each run under a Python
parent of its own, so its ``RUSAGE_CHILDREN`` peak is that run's), the machine's load
average when dot started, and whether the guard lets it through.

Decisions (``--decide``): how long ``mg.viz.graph`` takes to refuse (or draw) 5,000- and
20,000-op chains with and without time steps in every view, and ``fit`` as ``explore``
calls it on a 5,000-op chain (no dot runs).

    python benchmarks/viz.py [--cases ops:64 ops:110:GRU ...] [--decide] [--json PATH]
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import time

import numpy as np

from common import machine, machine_line, median, table, write_json

import minigrad as mg
from minigrad.models import GRU, LSTM, RNN
from minigrad.viz.guard import layout_size

MODELS = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}
DEFAULT_CASES = ("ops:4", "ops:32", "ops:64", "ops:110", "ops:80:GRU", "ops:280:RNN",
                 "ops:1000:chain", "ops:1400:flat", "steps:256", "rolled:64")

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


def model_loss(model, T, seed=0):
    """A recurrent model and a linear head over one sequence, the loss of its last step,
    gradients retained for show_grads."""
    rng = np.random.default_rng(seed)
    net, head = MODELS[model](2, 8, rng=rng), mg.nn.Linear(8, 1, rng=rng)
    x = mg.Tensor(rng.integers(0, 2, size=(1, T, 2)).astype(float), requires_grad=True,
                  name="x")
    with mg.scope(model.lower()):
        out = net(x)[0]
    loss = (head(out[:, -1, :]) ** 2).sum()
    loss.name = "loss"
    loss.backward(retain_grads=True)
    return loss


def chain(T, scoped=True):
    """T steps of h = 0.5 * tanh(h): 2 T ops, each step in scope 't<k>' when scoped."""
    h = mg.Tensor(np.full(3, 0.5), requires_grad=True, name="h0")
    for t in range(T):
        with mg.scope(f"t{t}") if scoped else contextlib.nullcontext():
            h = mg.tanh(h) * 0.5
    loss = h.sum()
    loss.backward(retain_grads=True)
    return loss


def build(kind, T):
    if kind in MODELS:
        return model_loss(kind, T)
    return chain(T, scoped=kind == "chain")


def run_dot(source):
    """(seconds, peak bytes) of one ``dot -Tsvg`` of ``source``."""
    done = subprocess.run([sys.executable, "-c", _DOT_RUNNER], input=source.encode("utf-8"),
                          capture_output=True, check=True)
    seconds, peak, returncode = done.stdout.split()
    if returncode != b"0":
        raise RuntimeError(f"dot failed: {done.stderr.decode('utf-8', 'replace')}")
    return float(seconds), int(peak)


def measure(view, T, kind, reps):
    loss = build(kind, T)
    limit, mg.viz.LAYOUT_LIMIT = mg.viz.LAYOUT_LIMIT, None  # measure what it refuses too
    try:
        start = time.perf_counter()
        drawing = mg.viz.fit(loss, view, show_grads=True)
        build_seconds = time.perf_counter() - start
    finally:
        mg.viz.LAYOUT_LIMIT = limit
    source = drawing.source
    load = os.getloadavg()[0]
    runs = [run_dot(source) for _ in range(reps)]
    work = layout_size(drawing)
    seconds = median([r[0] for r in runs])
    return {"view": view, "model": kind, "T": T,
            "dot_text_kb": round(len(source.encode()) / 1024, 1), "layout_work": work,
            "build_seconds": round(build_seconds, 3), "dot_seconds": round(seconds, 2),
            "ns_per_unit": round(seconds / work * 1e9, 1),
            "dot_peak_mb": round(max(r[1] for r in runs) / 2**20, 1),
            "load_average_1min": round(load, 2), "guard_lets_through": work <= limit}


def decisions():
    """Seconds for mg.viz.graph to decide on long chains, and for explore's fit."""
    rows = []
    for ops in (5_000, 20_000):
        for scoped in (False, True):
            loss = build("chain" if scoped else "flat", ops // 2)
            for view in mg.viz.VIEWS:
                start = time.perf_counter()
                try:
                    mg.viz.graph(loss, view=view)
                    outcome = "drawn"
                except ValueError as error:
                    advice = str(error).split("; draw ", 1)[-1]
                    outcome = "refused: " + advice.split(" (")[0]
                rows.append({"ops": ops, "time_steps": scoped, "view": view,
                             "seconds": round(time.perf_counter() - start, 3),
                             "outcome": outcome})
    loss = build("chain", 2_500)
    for view in mg.viz.VIEWS:
        start = time.perf_counter()
        drawing = mg.viz.fit(loss, view, shrink=True)
        rows.append({"ops": 5_000, "time_steps": True, "view": f"{view} (explore's fit)",
                     "seconds": round(time.perf_counter() - start, 3),
                     "outcome": f"drawn, keep_steps={drawing.keep_steps}"})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="*", default=DEFAULT_CASES, metavar="VIEW:T[:MODEL]")
    parser.add_argument("--reps", type=int, default=1, help="dot runs per case (median)")
    parser.add_argument("--decide", action="store_true", help="time the guard's decisions")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    info = machine()
    print(machine_line(info))
    print(f"guard: LAYOUT_LIMIT = {mg.viz.LAYOUT_LIMIT:,}", flush=True)
    results = []
    for case in args.cases:
        view, T, *kind = case.split(":")
        results.append(measure(view, int(T), kind[0] if kind else "LSTM", args.reps))
        r = results[-1]
        print(f"  {view} {r['model']} T={T}: dot {r['dot_seconds']:.2f} s, "
              f"{r['dot_peak_mb']:.0f} MB, load {r['load_average_1min']}", file=sys.stderr,
              flush=True)
    if results:
        print(table(["view", "model", "T", "DOT KB", "layout work", "draw s", "dot s",
                     "ns/unit", "dot peak MB", "load", "guard"],
                    [[r["view"], r["model"], r["T"], f"{r['dot_text_kb']:,.1f}",
                      f"{r['layout_work']:,}", f"{r['build_seconds']:.2f}",
                      f"{r['dot_seconds']:.2f}", f"{r['ns_per_unit']:.0f}",
                      f"{r['dot_peak_mb']:,.0f}", f"{r['load_average_1min']:.1f}",
                      "lets through" if r["guard_lets_through"] else "refuses"]
                     for r in results]))
    decided = decisions() if args.decide else []
    if decided:
        print(table(["ops", "time steps", "view", "decided in s", "outcome"],
                    [[d["ops"], "yes" if d["time_steps"] else "no", d["view"],
                      f"{d['seconds']:.2f}", d["outcome"]] for d in decided]))
    payload = {"machine": info, "limit": mg.viz.LAYOUT_LIMIT, "results": results,
               "decisions": decided}
    print(json.dumps(payload))
    write_json(args.json, payload)


if __name__ == "__main__":
    main()
