"""Train the adding-problem example over several seeds and models, and tabulate them.

Each run is a separate process running ``examples/adding_problem.py`` exactly as a user
would (``--model M --length T --seed S --json PATH --quiet``); the example writes the
figures, this script only collects them: training steps, sequences seen (the 1997 paper
needed 74,000 at T = 100), training seconds, test MSE against the 1/6 baseline and the
fraction of the 2,560 test sequences answered within 0.04. CPU seconds are reported
beside wall seconds: on a machine shared with other work they move far less.

    python benchmarks/adding.py [--models lstm gru rnn] [--lengths 100] [--seeds 0 1 2]
                                [--json PATH] [-- extra example flags]

e.g. ``python benchmarks/adding.py --models lstm --lengths 200`` for the longer task, or
``... -- --steps 1000`` to cap every run. ``--modes compiled eager`` runs every seed
both with the example's default ``--compile`` (mg.compile) and with ``--no-compile``,
one after the other, and compares their seconds, steps and accuracy.
"""
import os
import argparse
import tempfile

from common import machine, machine_line, run_example, summary_row, table, write_json

PAPER_SEQUENCES = 74_000


def run_adding(model, length, seed, extra, workdir):
    """One training of examples/adding_problem.py: its JSON record, plus its wall time."""
    return run_example("adding_problem.py", f"{model}-T{length}-seed{seed}",
                       ["--model", model, "--length", length, "--seed", seed, *extra], workdir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=("lstm", "gru", "rnn"),
                        default=["lstm", "gru", "rnn"])
    parser.add_argument("--lengths", type=int, nargs="+", default=[100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--modes", nargs="+", choices=("compiled", "eager"),
                        default=["compiled"], help="--compile, --no-compile, or both")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("extra", nargs="*", help="flags passed on to every example, after --")
    args = parser.parse_args()

    info = machine()
    print(machine_line(info))
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for length in args.lengths:
            for model in args.models:
                for seed in args.seeds:
                    for mode in args.modes:
                        key = f"{model} T={length} {mode}"
                        flag = "--compile" if mode == "compiled" else "--no-compile"
                        record = run_adding(model, length, seed, [flag, *args.extra], workdir)
                        record["load_average"] = round(os.getloadavg()[0], 2)
                        results.setdefault(key, []).append(record)
                        print(f"  {key} seed {seed}: {record['train_steps']:,} steps, "
                              f"{record['sequences']:,} sequences, {record['seconds']:.1f} s, "
                              f"test MSE {record['test_mse']:.4f}, within 0.04 "
                              f"{record['test_accuracy']:.2%}, load average "
                              f"{record['load_average']}", flush=True)

    for key, records in results.items():
        print(f"\n{key} (baseline MSE {records[0]['baseline_mse']:.4f}; the 1997 paper: "
              f"{PAPER_SEQUENCES:,} sequences at T = 100)")
        rows = [summary_row("train steps", records, "train_steps", lambda v: f"{v:,.0f}"),
                summary_row("sequences", records, "sequences", lambda v: f"{v:,.0f}"),
                summary_row("seconds", records, "seconds", lambda v: f"{v:.1f}"),
                summary_row("CPU seconds", records, "cpu_seconds", lambda v: f"{v:.1f}"),
                summary_row("load average", records, "load_average", lambda v: f"{v:.1f}"),
                summary_row("test MSE", records, "test_mse", lambda v: f"{v:.4f}"),
                summary_row("within 0.04", records, "test_accuracy", lambda v: f"{v:.2%}"),
                ["converged"] + ["yes" if r["converged"] else "no" for r in records]
                + [f"{sum(r['converged'] for r in records)}/{len(records)}"]]
        print(table([""] + [f"seed {r['seed']}" for r in records] + ["median"], rows))
    comparisons = compare_modes(results) if len(args.modes) == 2 else []
    write_json(args.json, {"benchmark": "adding", "machine": info, "seeds": args.seeds,
                           "extra_flags": args.extra, "results": results,
                           "compiled_vs_eager": comparisons})


def compare_modes(results):
    """Per seed: compiled seconds / eager seconds, and whether steps and accuracy agree."""
    rows, out = [], []
    for key, records in results.items():
        if not key.endswith(" compiled"):
            continue
        for c, e in zip(records, results[key[:-len("compiled")] + "eager"]):
            item = {"run": f"{key[:-len(' compiled')]} seed {c['seed']}",
                    "compiled_seconds": c["seconds"], "eager_seconds": e["seconds"],
                    "ratio": c["seconds"] / e["seconds"],
                    "cpu_ratio": c["cpu_seconds"] / e["cpu_seconds"],
                    "same_steps": c["train_steps"] == e["train_steps"],
                    "compiled_steps": c["train_steps"], "eager_steps": e["train_steps"],
                    "compiled_accuracy": c["test_accuracy"],
                    "eager_accuracy": e["test_accuracy"]}
            out.append(item)
            rows.append([item["run"], f"{e['seconds']:.1f}", f"{c['seconds']:.1f}",
                         f"{item['ratio']:.2f}", f"{item['cpu_ratio']:.2f}",
                         f"{e['train_steps']:,} / {c['train_steps']:,}",
                         f"{e['test_accuracy']:.2%} / {c['test_accuracy']:.2%}",
                         f"{e['load_average']:.1f} / {c['load_average']:.1f}"])
    print("\ncompiled against eager (goal: at most 0.55 of eager's seconds, same steps)")
    print(table(["run", "eager s", "compiled s", "ratio", "CPU ratio", "steps (eager / comp.)",
                 "within 0.04 (eager / comp.)", "load (eager / comp.)"], rows))
    return out


if __name__ == "__main__":
    main()
