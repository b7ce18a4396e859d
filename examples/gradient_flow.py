"""Why the LSTM: how much gradient reaches each of 100 time steps, measured.

    python examples/gradient_flow.py [--length 100] [--train-steps 2000] [--json PATH]

Training a recurrent network means the loss, computed after the last step, must send a
gradient back to every earlier step: that gradient is the only way a step learns that
what it saw mattered. For four networks (a plain tanh RNN, a GRU, an LSTM, and an LSTM
whose forget gate starts open) this script computes the loss of the adding problem
(``examples/adding_problem.py``) on one batch, runs backward once, and reads off
``|dLoss/dh_t|`` for every step t with one call, ``mg.step_grad_norms``. It does so at
initialisation and again after training (until the network has clearly learned the task,
or a step budget runs out), and draws all of it on one log-scale figure.

What to look for. At initialisation every network loses the gradient at a constant rate
per step, a straight line on the log scale: about 21 orders of magnitude over 100 steps
(8 for the LSTM whose forget gates start open). The gated networks learn anyway: the
second marked value often lies near the end, where the gradient is still strong, and
what they learn from it, gates that keep a value, opens the path further back: in
the LSTM ``c_t = f * c_{t-1} + i * g`` sends ``f * dc_t`` back to the step before, with
no weight matrix and no squashing in the way, so with forget gates near 1 the gradient
reaches t = 0 almost whole (the "constant error carousel" of Hochreiter & Schmidhuber
1997; the GRU's ``z * h_{t-1}`` does the same). The plain RNN has only ``W_hh`` and
tanh: training takes it from vanishing to exploding gradients, large but carrying
nothing useful, and it never beats the baseline.
"""
import os

import numpy as np

import lesson
import minigrad as mg
from adding_problem import Adder, predict  # the same network as the adding problem
from minigrad.models.data.adding import BASELINE_MSE, accuracy, sample

MODELS = {  # label: (kind, forget_bias)
    "RNN (tanh)": ("rnn", 0.0),
    "GRU": ("gru", 0.0),
    "LSTM": ("lstm", 0.0),
    "LSTM, forget_bias=1": ("lstm", 1.0),
}
COLOURS = dict(zip(MODELS, ("tab:red", "tab:orange", "tab:blue", "tab:green")))
PROBE = 128  # sequences of the batch whose gradient is measured
SOLVED_MSE = 0.01  # training stops below this held-out MSE (the baseline is 1/6)
CHECK_EVERY = 50   # training steps between two looks at the held-out MSE


def parse_args(argv=None):
    parser = lesson.Parser("gradient_flow.py", "Measure the gradient reaching every time "
                           "step of an RNN, a GRU and an LSTM, before and after training.")
    add = parser.add_argument
    add("--length", type=lesson.bounded_int(2, 100_000), default=100,
        help="T, the number of steps (default 100)")
    add("--hidden", type=lesson.positive_int, default=32, help="hidden size (default 32)")
    add("--train-steps", type=lesson.nonnegative_int, default=2000,
        help="at most this many training steps on the adding problem before the second "
             f"measurement; a model stops once its held-out MSE is below {SOLVED_MSE} "
             "(default 2000; 0: measure at initialisation only)")
    add("--batch-size", type=lesson.positive_int, default=32,
        help="sequences per training step (default 32)")
    add("--lr", type=lesson.positive_float, default=1e-2, help="Adam's learning rate (0.01)")
    lesson.add_output_flags(parser, out=os.path.join("runs", "gradient_flow"))
    return parser.parse_args(argv)


def gradient_per_step(model, x, y):
    """{"h": |dLoss/dh_t| for t = 0..T-1, and "c" for an LSTM} on one batch."""
    loss = mg.nn.mse_loss(model(x), y)
    loss.backward(retain_grads=True)     # keep every intermediate gradient, not just leaves'
    norms = mg.step_grad_norms(loss)     # {"l0/h": array of T norms, "l0/c": ...}
    model.zero_grad()                    # measuring is not training
    return {key.split("/")[-1]: values for key, values in norms.items()}


def train(model, steps, args, rng, held_out, bar):
    """The adding problem's training loop, until the model has clearly learned the task
    (held-out MSE below SOLVED_MSE) or for ``steps`` steps; returns the steps taken."""
    optimizer = mg.optim.Adam(model.parameters(), lr=args.lr)
    for step in range(1, steps + 1):
        x, y = sample(args.batch_size, args.length, rng)
        loss = mg.nn.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        mg.optim.clip_grad_norm(model.parameters(), 1.0)
        optimizer.step()
        bar.update()
        if step % CHECK_EVERY == 0 and \
                np.mean((predict(model, held_out[0]) - held_out[1]) ** 2) < SOLVED_MSE:
            break
    bar.update(steps - step)
    return step


def orders_lost(norms):
    """How many powers of ten the gradient loses from the last step to the first."""
    first, last = norms[0], norms[-1]
    return float(np.log10(last / first)) if first > 0 else float("inf")


def main(argv=None):
    """Parse the flags, run the lesson (its text on stdout, or stderr with --json -), then
    write the JSON record."""
    return lesson.run_script(parse_args, run, argv)


def run(args):
    """The lesson, printed as it goes; returns the JSON record."""
    mg.keep_freed_memory()
    T = args.length
    probe_x, probe_y = sample(PROBE, T, np.random.default_rng(T))  # one batch, for all
    test_x, test_y = sample(1024, T, np.random.default_rng(T + 1))
    held_out = sample(256, T, np.random.default_rng(T + 2))  # for the stopping rule
    stages = ["at initialisation"] + ([f"after training (at most {args.train_steps:,} steps)"]
                                      if args.train_steps else [])
    results = {}
    bar = lesson.progress(len(MODELS) * (1 + args.train_steps), "measuring", args.quiet)
    for label, (kind, forget_bias) in MODELS.items():
        seeds = np.random.SeedSequence([args.seed, list(MODELS).index(label)]).spawn(2)
        model = Adder(kind, args.hidden, forget_bias=forget_bias,
                      rng=np.random.default_rng(seeds[0]))
        entry = {"init": gradient_per_step(model, probe_x, probe_y)}
        bar.update()
        if args.train_steps:
            entry["train_steps"] = train(model, args.train_steps, args,
                                         np.random.default_rng(seeds[1]), held_out, bar)
            entry["trained"] = gradient_per_step(model, probe_x, probe_y)
            answer = predict(model, test_x)
            entry["test_mse"] = float(np.mean((answer - test_y) ** 2))
            entry["test_accuracy"] = accuracy(answer, test_y)
        results[label] = entry
    bar.close()

    print(f"|dLoss/dh_t| from t = {T - 1} back to t = 0, {PROBE} sequences of the adding "
          f"problem, hidden {args.hidden}:")
    for label, entry in results.items():
        for stage, key in zip(("initialised", "trained"), ("init", "trained")[:len(stages)]):
            h = entry[key]["h"]
            line = (f"  {label:20s} {stage:12s} {h[-1]:9.2e} -> {h[0]:9.2e}: "
                    f"{orders_lost(h):5.1f} orders of magnitude lost")
            if "c" in entry[key]:
                line += f" (cell state c: {orders_lost(entry[key]['c']):.1f})"
            print(line)
        if "test_mse" in entry:
            print(f"  {'':20s} after {entry['train_steps']:,} steps: test MSE "
                  f"{entry['test_mse']:.4f} (baseline {BASELINE_MSE:.4f}), within 0.04: "
                  f"{entry['test_accuracy']:.1%}")

    os.makedirs(args.out, exist_ok=True)
    plot = save_plot(results, stages, os.path.join(args.out, "gradient_flow.png"), args)
    print(f"plot: {plot or 'skipped (matplotlib is not installed)'}")
    record = {"task": "gradient_flow", "length": T, "hidden": args.hidden, "seed": args.seed,
              "train_steps": args.train_steps, "batch_size": args.batch_size, "lr": args.lr,
              "probe_sequences": PROBE, "plot": plot, "models": {}}
    for label, entry in results.items():
        out = record["models"][label] = {}
        for key in ("init", "trained"):
            if key in entry:
                out[key] = {name: values.tolist() for name, values in entry[key].items()}
                out[f"orders_lost_{key}"] = orders_lost(entry[key]["h"])
        out.update({k: entry[k] for k in ("train_steps", "test_mse", "test_accuracy")
                    if k in entry})
    return record


def save_plot(results, stages, path, args):
    """One panel per stage: |dLoss/dh_t| against t on a log scale (dotted: the LSTM's
    cell state). None without matplotlib."""
    try:
        fig, axes = lesson.figure(1, len(stages), figsize=(6 * len(stages), 4.8),
                                  sharey=True, squeeze=False)
    except ImportError:
        return None
    steps = np.arange(args.length)
    for ax, stage, key in zip(axes[0], stages, ("init", "trained")):
        for label, entry in results.items():
            norms = entry[key]
            trained = (f", {entry['train_steps']:,} steps, test MSE {entry['test_mse']:.3f}"
                       if key == "trained" else "")
            ax.semilogy(steps, norms["h"], color=COLOURS[label],
                        label=f"{label}: {orders_lost(norms['h']):.1f} orders lost{trained}")
            if "c" in norms:
                ax.semilogy(steps, norms["c"], color=COLOURS[label], ls=":", lw=1)
        ax.set_title(f"{stage}")
        ax.set_xlabel("time step t (the loss is read after the last one)")
        ax.legend(loc="lower right", fontsize="small", title="|dLoss/dh_t|, from t = "
                  f"{args.length - 1} to 0", title_fontsize="small")
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel("gradient norm |dLoss/dh_t|  (dotted: |dLoss/dc_t|)")
    fig.suptitle(f"How much gradient reaches each step: the adding problem, T = "
                 f"{args.length}, hidden {args.hidden}")
    return lesson.save_figure(fig, path)


if __name__ == "__main__":
    raise SystemExit(main())
