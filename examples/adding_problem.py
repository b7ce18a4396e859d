"""The adding problem: the task the LSTM was invented for, learned in a minute of CPU.

    python examples/adding_problem.py [--model lstm|gru|rnn] [--length 100] [--json PATH]

Each sequence is T steps of (value, marker): values from U[0, 1], and exactly two markers
set, one in each half. After the last step the network must answer the sum of the two
marked values. The first one may lie a hundred steps back, and nothing in between helps:
the network must learn to notice it and keep it. Predicting 1 every time (the mean of the
answer) gives a mean squared error of 1/6, so that is the line to beat; a plain RNN does
not get below it at T = 100 (``--model rnn``), an LSTM does, and ends with nearly every
answer within 0.04. Hochreiter & Schmidhuber (1997) needed 74,000 training sequences for
1 error in 2,560 test sequences; ``--json`` reports how many this run saw.

The lesson is this file, top to bottom: the data, the model, the optimizer, the training
loop, the evaluation. The sequences come from ``models/data/adding.py``; the plumbing
(flags, progress bar, JSON) in ``lesson.py``. ``--help`` lists every flag.
"""
import os
import time

import numpy as np

import lesson
import minigrad as mg
from minigrad import models
from minigrad.models.data.adding import BASELINE_MSE, TOLERANCE, accuracy, baseline_mse, sample

TEST_SEQUENCES = 2560       # as in the 1997 paper's test
VALIDATION_SEQUENCES = 1024  # what the stopping rule looks at (never the test set)
EVAL_EVERY = 25              # training steps between two looks at the validation set
PAPER_SEQUENCES = 74_000     # the 1997 paper, Table 7, T = 100


class Adder(mg.nn.Module):
    """A recurrent network reads the sequence; a linear layer turns its last h into the
    answer."""

    def __init__(self, kind, hidden, *, forget_bias=0.0, rng=None):
        options = {"forget_bias": forget_bias} if kind == "lstm" else {}
        self.rnn = models.recurrent(kind, 2, hidden, rng=rng, **options)
        self.head = mg.nn.Linear(hidden, 1, rng=rng)

    def forward(self, x):
        _, state = self.rnn(x)          # the state after the last step; an LSTM's is (h, c)
        h_n = state[0] if isinstance(self.rnn, models.LSTM) else state   # (layers, N, H)
        return self.head(h_n[-1])       # (N, 1): the answer, read from the top layer's h


def predict(model, x, batch=128):
    """The model's answers for ``x``, without building a graph. (In small batches: for
    larger matrices numpy's BLAS may start threads, which at these sizes, on a busy
    machine, cost far more than they save.)"""
    with mg.no_grad():
        return np.concatenate([model(x[i:i + batch]).data for i in range(0, len(x), batch)])


def main(argv=None):
    """Parse the flags, run the lesson (its text on stdout, or stderr with --json -), then
    write the JSON record."""
    return lesson.run_script(parse_args, run, argv)


def run(args):
    """The lesson, printed as it goes; returns the JSON record."""
    mg.keep_freed_memory()  # a training loop frees and reallocates its graph every step
    T = args.length
    rng = dict(zip(("init", "batches", "validation"),
                   (np.random.default_rng(s) for s in np.random.SeedSequence(args.seed).spawn(3))))

    # 1. The data. Training batches are drawn fresh at every step, so the network never
    #    sees a sequence twice. The test set depends on T only: every model and seed is
    #    tested on the same 2,560 sequences.
    test_x, test_y = sample(TEST_SEQUENCES, T, np.random.default_rng(T))
    val_x, val_y = sample(VALIDATION_SEQUENCES, T, rng["validation"])
    print(f"adding problem, T = {T}: {args.model}, hidden {args.hidden}, seed {args.seed}; "
          f"predicting 1 always gives test MSE {baseline_mse(test_y):.4f} (1/6 = "
          f"{BASELINE_MSE:.4f})")

    # 2. The model and 3. the optimizer.
    model = Adder(args.model, args.hidden, forget_bias=args.forget_bias, rng=rng["init"])
    optimizer = mg.optim.Adam(model.parameters(), lr=args.lr)

    # 4. The training loop. One step is the loss of a batch and its backward pass.
    #    mg.compile records that step once and then replays it as plain numpy calls
    #    (docs/compile.md): the same loss and gradients, about twice as fast; the
    #    graph is not kept, so to draw it, call training_loss(x, y) itself.
    def training_loss(x, y):
        return mg.nn.mse_loss(model(x), y)

    def eager_step(x, y):
        loss = training_loss(x, y)
        loss.backward()                                    # back through all T steps
        return loss

    def validation(x, y):  # the held-out loss, and the answers whose accuracy we report
        answer = model(x)
        return mg.nn.mse_loss(answer, y), answer

    train_step = mg.compile(training_loss) if args.compile else eager_step
    evaluate = mg.compile(validation) if args.compile else validation
    history = {"sequences": [], "loss": [], "val_mse": [], "val_accuracy": []}
    bar = lesson.progress(args.steps, f"training {args.model}", args.quiet)
    start, cpu_start = time.perf_counter(), time.process_time()
    smoothed, converged = None, False
    for step in range(1, args.steps + 1):
        x, y = sample(args.batch_size, T, rng["batches"])
        optimizer.zero_grad()
        loss = train_step(x, y)                            # forward and backward
        mg.optim.clip_grad_norm(model.parameters(), args.clip)
        optimizer.step()

        smoothed = loss.item() if smoothed is None else 0.95 * smoothed + 0.05 * loss.item()
        if step % EVAL_EVERY == 0 or step == args.steps:
            with mg.no_grad():                             # the forward alone
                val_mse, answer = evaluate(val_x, val_y)
            history["sequences"].append(step * args.batch_size)
            history["loss"].append(smoothed)
            history["val_mse"].append(float(val_mse))
            history["val_accuracy"].append(accuracy(answer.data, val_y))
            # Stop when two evaluations in a row reach the target: the first to get
            # there is often a lucky one, and the test set would then score less.
            converged = len(history["val_accuracy"]) >= 2 \
                and min(history["val_accuracy"][-2:]) >= args.target
            bar.set_postfix(loss=f"{smoothed:.4f}", val_mse=f"{history['val_mse'][-1]:.4f}",
                            within_004=f"{history['val_accuracy'][-1]:.3f}", refresh=False)
        bar.update()
        if converged:
            break
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    bar.close()
    sequences = step * args.batch_size
    why = (f"{args.target:.1%} of the validation sequences within {TOLERANCE}, twice in a row"
           if converged
           else f"--steps {args.steps} reached before {args.target:.1%} of the validation "
                f"sequences were within {TOLERANCE}")
    print(f"trained {step:,} steps ({sequences:,} sequences; the 1997 paper: "
          f"{PAPER_SEQUENCES:,}) in {seconds:.1f} s: {why}")

    # 5. The evaluation, on sequences that played no part in training or stopping.
    answer = predict(model, test_x)
    test_mse = float(np.mean((answer - test_y) ** 2))
    test_accuracy = accuracy(answer, test_y)
    wrong = int(round((1 - test_accuracy) * TEST_SEQUENCES))
    print(f"test MSE {test_mse:.5f} (baseline {BASELINE_MSE:.4f}); within {TOLERANCE} of the "
          f"sum: {test_accuracy:.2%} of {TEST_SEQUENCES:,} ({wrong:,} wrong)")
    for i in range(3):
        marked = test_x[i, :, 0][test_x[i, :, 1] == 1]
        print(f"  {marked[0]:.3f} + {marked[1]:.3f} = {test_y[i, 0]:.3f}, "
              f"the network says {answer[i, 0]:.3f}")

    os.makedirs(args.out, exist_ok=True)
    mg.save(checkpoint(model, args.config), args.weights)
    plot = save_plot(history, os.path.join(args.out, f"{args.name}.png"), args,
                     test_mse)
    print(f"plot:    {plot or 'skipped (matplotlib is not installed)'}\n"
          f"weights: {args.weights}")
    record = {"task": "adding", "model": args.model, "length": T, "seed": args.seed,
              "train_steps": step, "sequences": sequences, "seconds": round(seconds, 3),
              "cpu_seconds": round(cpu_seconds, 3),  # less moved by other processes
              "test_mse": test_mse, "test_accuracy": test_accuracy,
              "test_sequences": TEST_SEQUENCES, "baseline_mse": baseline_mse(test_y),
              "converged": converged, "compile": args.compile,
              "validation_accuracy": history["val_accuracy"][-1],
              **{k: v for k, v in args.config.items() if k not in ("task", "model", "length",
                                                                    "seed", "steps")},
              "plot": plot, "weights": args.weights}
    return record


# -- plumbing: the command line, the plot and the checkpoint ---------------------------

def parse_args(argv=None):
    parser = lesson.Parser("adding_problem.py", "Train a recurrent network on the adding "
                           "problem of Hochreiter & Schmidhuber (1997).")
    add = parser.add_argument
    add("--model", choices=("lstm", "gru", "rnn"), default="lstm",
        help="the recurrent network (default lstm; rnn is the plain tanh RNN)")
    add("--length", type=lesson.bounded_int(2, 100_000), default=100,
        help="T, the number of steps of every sequence (default 100)")
    add("--hidden", type=lesson.positive_int, default=32, help="hidden size (default 32)")
    add("--steps", type=lesson.positive_int, default=5000,
        help="at most this many training steps; the LSTM stops earlier (default 5000)")
    add("--batch-size", type=lesson.positive_int, default=32,
        help="sequences per training step (default 32)")
    add("--lr", type=lesson.positive_float, default=1e-2, help="Adam's learning rate (0.01)")
    add("--clip", type=lesson.positive_float, default=1.0,
        help="clip the gradient to this norm before every update (default 1)")
    add("--forget-bias", type=float, default=1.0,
        help="LSTM only: initial forget-gate bias (default 1: the cell starts by remembering)")
    lesson.add_compile_flag(parser)
    add("--target", type=lesson.positive_float, default=0.995,
        help="stop once this fraction of the validation sequences is within 0.04, at two "
             "evaluations in a row (default 0.995)")
    lesson.add_output_flags(parser, out=os.path.join("runs", "adding"))
    args = parser.parse_args(argv)
    if args.target > 1:
        parser.error(f"--target must be at most 1, got {args.target}")
    if args.model != "lstm":
        parser.reject(args, ["forget_bias"], f"with --model {args.model} (LSTM only)")
    args.config = {"task": "adding", "model": args.model, "length": args.length,
                   "hidden": args.hidden, "seed": args.seed, "batch_size": args.batch_size,
                   "lr": args.lr, "clip": args.clip, "target": args.target,
                   "steps": args.steps}
    if args.model == "lstm":
        args.config["forget_bias"] = args.forget_bias
    args.name = f"{args.model}-T{args.length}-seed{args.seed}"  # of the weights and the plot
    args.weights = os.path.join(args.out, f"{args.name}.npz")
    parser.refuse_overwrite(args.weights, args.config, read_config)
    return args


def save_plot(history, path, args, test_mse):
    """Held-out MSE (log scale) and accuracy against the sequences seen, with the
    baseline and the 1997 paper's sequence count drawn in. None without matplotlib."""
    try:
        fig, (top, bottom) = lesson.figure(2, 1, sharex=True)
    except ImportError:
        return None
    seen = history["sequences"]
    top.semilogy(seen, history["loss"], color="tab:blue", alpha=0.5,
                 label="training loss (moving average)")
    top.semilogy(seen, history["val_mse"], color="tab:blue",
                 label=f"held-out MSE ({VALIDATION_SEQUENCES:,} sequences)")
    top.semilogy([seen[-1]], [test_mse], "o", color="tab:red",
                 label=f"test MSE ({TEST_SEQUENCES:,} sequences): {test_mse:.2g}")
    top.axhline(BASELINE_MSE, color="gray", ls="--", lw=1, label="baseline: always 1 (1/6)")
    top.set_ylabel("mean squared error")
    top.legend(loc="best", fontsize="small")
    top.set_title(f"adding problem, T = {args.length}: {args.model}, hidden {args.hidden}, "
                  f"batch {args.batch_size}, seed {args.seed}")
    bottom.plot(seen, history["val_accuracy"], color="tab:green",
                label=f"held-out answers within {TOLERANCE}")
    bottom.axhline(args.target, color="gray", ls=":", lw=1, label="stopping target")
    for ax in (top, bottom):
        ax.axvline(PAPER_SEQUENCES, color="tab:purple", ls="--", lw=1)
    bottom.text(PAPER_SEQUENCES, 0.3, "1997 paper, T = 100:\n74,000 sequences ",
                color="tab:purple", fontsize="small", ha="right")
    bottom.set_ylim(-0.03, 1.03)
    bottom.set_xlabel("training sequences seen")
    bottom.set_ylabel("fraction within 0.04")
    bottom.legend(loc="upper left", fontsize="small")
    return lesson.save_figure(fig, path)


def checkpoint(model, config):
    """The weights plus the settings that made them (numbers only: text as UTF-8 bytes)."""
    state = model.state_dict()
    for key, value in config.items():
        state[f"config.{key}"] = (np.frombuffer(value.encode(), np.uint8)
                                  if isinstance(value, str) else np.array(value))
    return state


def read_config(path):
    """The settings saved with the weights at ``path``; ValueError if there are none."""
    state = mg.load(path)
    if "config.task" not in state or bytes(state["config.task"]) != b"adding":
        raise ValueError(f"{path} is not an adding-problem checkpoint")
    return {key[len("config."):]: (bytes(value).decode() if value.dtype == np.uint8
                                   else value.item())
            for key, value in state.items() if key.startswith("config.")}


if __name__ == "__main__":
    raise SystemExit(main())
