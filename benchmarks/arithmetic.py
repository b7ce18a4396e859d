"""Train the binary addition and subtraction examples over several seeds and tabulate them.

One seed can be lucky; five say how reliably the examples train, how long they take and
how well they generalise to longer numbers. Each run is a separate process running the
example exactly as a user would (``--seed S --json PATH --quiet``); the examples write
the figures, this script only collects them.

    python benchmarks/arithmetic.py [--seeds 0 1 2 3 4] [--tasks addition subtraction]
                                    [--cells lstm gru rnn] [--test-bits 32] [--json PATH]
                                    [-- extra example flags]

e.g. ``python benchmarks/arithmetic.py -- --bits 12`` trains on 12-bit numbers.
"""
import argparse
import tempfile

from common import machine, machine_line, run_example, summary_row, table, write_json

EXAMPLES = {"addition": "binary_addition.py", "subtraction": "binary_subtraction.py"}


def run_arithmetic(task, cell, seed, test_bits, extra, workdir):
    """One training of an arithmetic example: its JSON record, plus its wall time."""
    flags = ["--seed", seed, "--cell", cell] + (["--test-bits", test_bits] if test_bits else [])
    return run_example(EXAMPLES[task], f"{task}-{cell}-{seed}", flags + list(extra), workdir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--tasks", nargs="+", choices=EXAMPLES, default=list(EXAMPLES))
    parser.add_argument("--cells", nargs="+", choices=("lstm", "gru", "rnn"), default=["lstm"],
                        help="the recurrent networks to train (the examples' --cell)")
    parser.add_argument("--test-bits", type=int, default=32,
                        help="also evaluate on numbers this long (the examples' --test-bits; "
                             "0 to skip)")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("extra", nargs="*", help="flags passed on to every example, after --")
    args = parser.parse_args()

    info = machine()
    print(machine_line(info))
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for task in args.tasks:
            for cell in args.cells:
                results[f"{task}/{cell}"] = records = []
                for seed in args.seeds:
                    record = run_arithmetic(task, cell, seed, args.test_bits, args.extra, workdir)
                    records.append(record)
                    print(f"  {task} {cell} seed {seed}: {record['train_steps']} steps, "
                          f"{record['seconds']:.1f} s, accuracy {record['test_accuracy']:.3f}",
                          flush=True)

    for name, records in results.items():
        bits = sorted({r["bits"] for r in records})
        print(f"\n{name} ({', '.join(map(str, bits))} bits)")
        rows = [summary_row("train steps", records, "train_steps", lambda v: f"{v:,.0f}"),
                summary_row("seconds", records, "seconds", lambda v: f"{v:.1f}"),
                summary_row("test accuracy", records, "test_accuracy", lambda v: f"{v:.2%}")]
        if all("converged" in r for r in records):
            rows.append(["converged"] + ["yes" if r["converged"] else "no" for r in records]
                        + [f"{sum(r['converged'] for r in records)}/{len(records)}"])
        if args.test_bits:
            rows.append(summary_row(f"accuracy at {args.test_bits} bits", records,
                                    "long_test_accuracy", lambda v: f"{v:.2%}"))
        print(table([""] + [f"seed {s}" for s in args.seeds] + ["median"],
                    [r for r in rows if r is not None]))
    write_json(args.json, {"benchmark": "arithmetic", "machine": info, "seeds": args.seeds,
                           "extra_flags": args.extra, "results": results})


if __name__ == "__main__":
    main()
