"""What minigrad adds on top of numpy for one tiny op.

On (4, 4) arrays numpy's own work is about a microsecond, so whatever else a chain of
``y = y + b`` costs is the engine: building the Tensor and op record, checking operands,
and in backward the topological walk, the pending-gradient bookkeeping and the op's
backward call. Costs are measured on a chain of many ops and divided by the op count,
which averages out the timer and the per-chain setup.

Rows: numpy alone; minigrad forward under ``no_grad`` (dispatch only); forward recording
the graph; forward + backward with ``b`` a constant; forward + backward with ``b`` a
parameter shared by every op (so backward also sums its gradient). The backward of a
chain of adds does no arithmetic (each add passes its gradient through), so numpy's
forward time is the whole of the necessary work and the overhead is everything above it.

    python benchmarks/op_overhead.py [--ops 1000] [--long 20000] [--reps 20] [--json PATH]
"""
import argparse

import numpy as np

from common import interleaved, machine, machine_line, median, table, write_json

import minigrad as mg

TARGET_US = 4.0  # forward + backward, above numpy, per op


def chain_candidates(ops):
    a = np.random.default_rng(0).standard_normal((4, 4))
    b = np.random.default_rng(1).standard_normal((4, 4))
    ones = np.ones((4, 4))
    b_const = mg.Tensor(b)
    b_param = mg.nn.Parameter(b)

    def numpy_chain():
        y = a
        for _ in range(ops):
            y = y + b
        return y

    def forward(bt, grad=True):
        x = mg.Tensor(a, requires_grad=True)
        y = x
        if grad:
            for _ in range(ops):
                y = y + bt
        else:
            with mg.no_grad():
                for _ in range(ops):
                    y = y + bt
        return x, y

    def forward_backward(bt):
        bt.grad = None
        x, y = forward(bt)
        y.backward(ones)
        return x.grad

    return {
        "numpy": numpy_chain,
        "minigrad forward, no_grad": lambda: forward(b_const, grad=False),
        "minigrad forward": lambda: forward(b_const),
        "minigrad forward+backward": lambda: forward_backward(b_const),
        "minigrad forward+backward, shared parameter": lambda: forward_backward(b_param),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=1000, help="ops per chain for per-op cost")
    parser.add_argument("--long", type=int, default=20000, help="ops in the long chain")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()

    info = machine()
    print(machine_line(info))
    times = interleaved(chain_candidates(args.ops), args.reps)
    per_op = {k: median(v) / args.ops * 1e6 for k, v in times.items()}
    base = per_op["numpy"]
    rows = []
    for name, us in per_op.items():
        above = us - base
        target = f"<= {TARGET_US}" if name == "minigrad forward+backward" else ""
        met = ("yes" if above <= TARGET_US else "no") if target else ""
        rows.append([name, f"{us:.2f}", "" if name == "numpy" else f"{above:.2f}", target, met])
    print(f"\nadd of two (4, 4) float64 arrays, chain of {args.ops:,} ops, "
          f"median of {args.reps} reps")
    print(table(["", "µs per op", "µs above numpy", "target", "met"], rows))

    long_candidates = chain_candidates(args.long)
    long_reps = max(3, args.reps // 4)
    long_times = interleaved({"fb": long_candidates["minigrad forward+backward"],
                              "f": long_candidates["minigrad forward"]}, long_reps, warmup=1)
    total, fwd = median(long_times["fb"]), median(long_times["f"])
    nodes_per_s = args.long / total
    print(f"\nlong chain of {args.long:,} adds, forward+backward: {total * 1e3:.1f} ms "
          f"(forward {fwd * 1e3:.1f} ms), {nodes_per_s:,.0f} ops/s, median of {long_reps}")
    write_json(args.json, {
        "benchmark": "op_overhead", "machine": info, "ops": args.ops, "reps": args.reps,
        "us_per_op": per_op, "us_above_numpy": {k: v - base for k, v in per_op.items()},
        "target_us_above_numpy_forward_backward": TARGET_US,
        "long_chain": {"ops": args.long, "reps": long_reps, "forward_backward_s": total,
                       "forward_s": fwd, "ops_per_s": nodes_per_s},
    })


if __name__ == "__main__":
    main()
