"""Teach a recurrent network to add binary numbers, one bit per time step.

    python examples/binary_addition.py [--bits 8] [--cell lstm] [--test-bits 32] [--json PATH]

The training is this file, top to bottom: the held-out split, the model, the optimizer,
the training loop, the evaluation on pairs it never saw, and worked examples. What it
reads from elsewhere is short, and each piece is named where it is used:

- the data, ``models/data/arithmetic.py``: 13 + 9 becomes the sequence
  x[:, t] = (bit t of 13, bit t of 9), least-significant bit first, and the target
  y[:, t] = bit t of 22, so the carry travels forward in time as on paper;
- the model, ``models/arithmetic.py``: an LSTM (or GRU, RNN) over those bit pairs and a
  ``Linear`` head that gives one logit per step, the bit of the result;
- the plumbing (flags, progress bar, plot, JSON), ``lesson.py``.

``--help`` lists every flag.
"""
import os
import time

import numpy as np

import lesson
import minigrad as mg
from minigrad.models.arithmetic import (CELLS, ArithmeticModel, accuracy, checkpoint,
                                        load_model, noisy_state, predict, read_config)
from minigrad.models.data.arithmetic import (MAX_BITS, compute, encode, make_split,
                                             sample_pairs, streams, worked_examples)

TEST_PAIRS = 2000
DEFAULT_BITS = {"addition": 8, "subtraction": 4}  # binary_subtraction.py runs this lesson too
TRAINING = ("cell", "hidden", "steps", "batch_size", "lr", "loss_target", "state_noise")


def main(argv=None, task="addition"):
    """Parse the flags, run the lesson (its text on stdout, or stderr with --json -), then
    write the JSON record."""
    return lesson.run_script(lambda argv: parse_args(argv, task), run, argv)


def run(args):
    """The lesson: data, model, training, evaluation, worked examples; the JSON record."""
    task = args.task
    mg.keep_freed_memory()  # a training loop frees and reallocates its graph every step
    # 1. The data: 2,000 pairs held out for evaluation (if there are enough), the rest to train.
    rng = streams(args.seed)  # one generator each for the split, weights, batches, long test
    split = make_split(task, args.bits, TEST_PAIRS, rng["split"])
    if args.load and args.split != split.fingerprint:
        split.held_out = False  # the checkpoint does not confirm which pairs it held out
    print(f"binary {task} of {args.bits}-bit numbers, least-significant bit first (seed "
          f"{args.seed})\nevaluation pairs: {split.description}")
    # 2. The model, and 3. its training (see ``train`` below), unless --load gives one.
    if args.load:
        model, history, seconds = args.model, lesson.History(), 0.0
        print(f"loaded {args.load} ({model.cell}, hidden size {model.hidden_size}); no training")
    else:
        model = ArithmeticModel(args.hidden, cell=args.cell, rng=rng["init"])
        start = time.perf_counter()
        history = train(model, split, args, rng["batches"])
        seconds = time.perf_counter() - start
        done = bool(history.evals) and history.evals[-1][1] == 1.0
        why = (f"every evaluation pair right, smoothed loss {history.smoothed[-1]:.4g}" if done
               else f"stopped at --steps {args.steps} before every evaluation pair was right")
        print(f"trained {len(history)} steps in {seconds:.2f} s ({why})")

    # 4. Evaluation: exact match on pairs never trained on, and on longer numbers.
    which = "the held-out pairs" if split.held_out else f"{len(split.test_a):,} pairs"
    test_accuracy, examples = evaluate(model, split.test_a, split.test_b, args.bits, which, task)
    record = dict(task=task, bits=args.bits, seed=args.seed, cell=model.cell,
                  train_steps=len(history), seconds=round(seconds, 4), held_out=split.held_out,
                  test_accuracy=test_accuracy, test_pairs=len(split.test_a))
    if args.test_bits:  # does the learned rule work on longer numbers than it has seen?
        a, b = sample_pairs(task, args.test_bits, TEST_PAIRS, rng["long"])
        what = f"random {args.test_bits}-bit pairs (trained on {args.bits} bits)"
        record["long_test_accuracy"], more = evaluate(model, a, b, args.test_bits, what, task)
        record["test_bits"], examples = args.test_bits, examples + more[:1]
    print("\nworked examples (most-significant bit first):\n" + "\n\n".join(examples) + "\n")

    # 5. The weights (with what rebuilds the split), the plot and the JSON record.
    if args.load:
        record["loaded_from"] = args.load
    else:
        os.makedirs(args.out, exist_ok=True)
        settings = {k: v for k, v in args.config.items() if k not in record}
        mg.save(checkpoint(model, task, args.bits, args.seed, split=split.fingerprint,
                           **settings), args.weights)
        plot = history.plot(os.path.join(args.out, "training.png"), f"binary {task}, "
                            f"{args.bits} bits, {args.cell} hidden {args.hidden}, seed {args.seed}",
                            loss_target=args.loss_target, loss_label="binary cross-entropy",
                            accuracy_axis="exact match (all bits right)",
                            eval_label="held-out pairs" if split.held_out else "all pairs")
        print(f"plot:    {plot or 'skipped (matplotlib is not installed)'}\n"
              f"weights: {args.weights}  (evaluate it again with --load {args.weights})")
        record.update(settings, converged=done, final_loss=history.smoothed[-1], plot=plot,
                      weights=args.weights)
    return record


def train(model, split, args, rng):
    """The training loop: Adam on fresh batches until every held-out pair is right."""
    optimizer = mg.optim.Adam(model.parameters(), lr=args.lr)
    task = args.task
    history, bar = lesson.History(), lesson.progress(args.steps, f"training {task}", args.quiet)
    for step in range(1, args.steps + 1):
        a, b = split.train_batch(args.batch_size, rng)  # never a held-out pair
        x, y = encode(task, a, b, args.bits)             # (N, bits, 2) and (N, bits, 1)
        state = noisy_state(model, len(a), args.state_noise, rng)  # why: see noisy_state
        logits = model(x, state)                         # the network unrolled over the bits
        loss = mg.nn.binary_cross_entropy_with_logits(logits, y)
        optimizer.zero_grad()
        loss.backward()                                  # BPTT: one sweep back through time
        optimizer.step()

        batch_right = np.all((logits.data > 0) == (y > 0.5), axis=(1, 2)).mean()
        history.log(loss.item(), batch_right)
        # Stop once every held-out pair is right AND the loss is low: at the first 100% the
        # logits are barely right and longer numbers fail (8-bit addition, ten seeds: 88-100%
        # at 32 bits; trained on to a loss of 0.05, 99.95-100%). The 2,000-pair check runs
        # only when this batch was all right and the loss low, at most every 5 steps.
        evals = history.evals
        if batch_right == 1 and history.smoothed[-1] < args.loss_target \
                and (not evals or step - evals[-1][0] >= 5):
            evals.append((step, accuracy(model, task, split.test_a, split.test_b, args.bits)))
        bar.set_postfix(loss=f"{history.smoothed[-1]:.4f}", batch=f"{batch_right:.2f}",
                        held_out=f"{evals[-1][1]:.3f}" if evals else "-", refresh=False)
        bar.update()
        if evals and evals[-1][1] == 1.0:
            break
    bar.close()
    return history


def evaluate(model, a, b, bits, what, task="addition"):
    """Print the exact match (every bit right) on the pairs; return it and worked examples."""
    predicted = predict(model, task, a, b, bits)
    right = int(np.sum(predicted == compute(task, a, b)))
    print(f"exact match on {what}: {100 * right / len(a):.2f}% ({right:,} of {len(a):,} right)")
    return right / len(a), worked_examples(task, a, b, predicted, bits)


# -- the command line ------------------------------------------------------------------

def parse_args(argv=None, task="addition"):
    default_bits = DEFAULT_BITS[task]
    parser = lesson.Parser(f"binary_{task}.py", f"Train a recurrent network on binary {task}, "
                           "least-significant bit first, to exact match on held-out pairs.")
    add, bits = parser.add_argument, lesson.bounded_int(1, MAX_BITS)
    add("--bits", type=bits, default=default_bits,
        help=f"length of the numbers (default {default_bits})")
    add("--cell", choices=CELLS, default="lstm", help="the recurrent network (default lstm)")
    add("--hidden", type=lesson.positive_int, default=16, help="hidden size (default 16)")
    add("--steps", type=lesson.positive_int, default=3000,
        help="at most this many training steps; it usually stops far earlier (default 3000)")
    add("--batch-size", type=lesson.positive_int, default=64, help="pairs per step (default 64)")
    add("--lr", type=lesson.positive_float, default=1e-2,
        help="Adam's learning rate (default 0.01)")
    add("--loss-target", type=lesson.positive_float, default=0.05,
        help="stop once every held-out pair is right AND the smoothed loss is below this "
             "(default 0.05)")
    add("--state-noise", type=lesson.nonnegative_float, default=0.3,
        help="std of the random initial state in training (default 0.3; 0: zeros)")
    add("--test-bits", type=bits, help=f"also test on {TEST_PAIRS:,} random pairs this long")
    add("--load", metavar="PATH", help="evaluate the model saved at PATH, on the pairs it "
        "held out; no training (the flags it fixes are errors)")
    lesson.add_output_flags(parser, out=os.path.join("runs", task))
    args = parser.parse_args(argv)
    args.task = task
    args.weights = os.path.join(args.out, "model.npz")
    args.config = dict(task=task, bits=args.bits, seed=args.seed, cell=args.cell,
                       hidden_size=args.hidden, **{k: getattr(args, k) for k in TRAINING[2:]})
    if args.load:  # the checkpoint fixes the model and its data: these flags could only lie
        parser.reject(args, TRAINING + ("bits", "seed", "out"),
                      "with --load: the saved model fixes them (--test-bits tests other lengths)")
        try:
            args.model, saved = load_model(args.load, task)
        except ValueError as err:
            parser.error(str(err))
        args.bits, args.seed, args.split = saved["bits"], saved["seed"], saved.get("split")
    else:  # replace only a model that these very flags made
        parser.refuse_overwrite(args.weights, args.config, lambda p: read_config(mg.load(p)))
    return args


if __name__ == "__main__":
    raise SystemExit(main())
