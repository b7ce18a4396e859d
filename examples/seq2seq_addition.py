"""Decimal addition as text: an encoder reads "535+61", a decoder writes "596".

    python examples/seq2seq_addition.py [--attention] [--reverse] [--digits 3] [--json PATH]

The sequence-to-sequence lesson (Sutskever, Vinyals and Le 2014; Keras's addition_rnn):
an encoder LSTM reads the question one character at a time, and its final state is all
a decoder LSTM gets to write the answer from, one character per step. In training the
decoder reads the true previous character ("teacher forcing"); in the test it reads
its own previous guess ("greedy decoding"), as it must when no answer is known.
``--attention`` lets each decoder step look back at every question character
(``models/seq2seq.py`` shows the three ops), and draws what it looked at. ``--reverse``
reads the question backwards, as Keras's example does.

Numbers have 1 to ``--digits`` digits, so one batch mixes questions of every length:
each number is padded on the left to ``--digits`` characters, and answers end with "."
and are padded with a target that ``cross_entropy(..., ignore_index=...)`` leaves out. The test reports whole answers
right on 2,000 questions never trained on, per character (Keras's measure), and by
question length.

The lesson is this file, top to bottom; the data is ``models/data/sums.py``, the model
``models/seq2seq.py``, the plumbing (flags, progress bar, plots, JSON) ``lesson.py``.
"""
import os
import time

# One BLAS thread: at these matrix sizes a second thread costs more than it saves, and
# on a busy machine far more (set before numpy loads; an explicit setting wins).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

import lesson  # noqa: E402
import minigrad as mg  # noqa: E402
from minigrad.models.data import sums  # noqa: E402
from minigrad.models.seq2seq import Seq2Seq  # noqa: E402

TEST_QUESTIONS = 2000       # whole-answer exact match is reported on these
VALIDATION_QUESTIONS = 1000  # what the stopping rule looks at (never the test set)
EVAL_EVERY = 250             # training steps between two looks at the validation set
KERAS_SEQUENCES = (1.5e6, 5e6)  # addition_rnn: 50,000 questions x 30 to 100 epochs
START = sums.ALPHABET.index(sums.START)


def main(argv=None):
    """Parse the flags, run the lesson (its text on stdout, or stderr with --json -), then
    write the JSON record."""
    return lesson.run_script(parse_args, run, argv)


def run(args):
    mg.keep_freed_memory()  # a training loop frees and reallocates its graph every step
    rng = dict(zip(("held_out", "init", "batches"),
                   (np.random.default_rng(s) for s in np.random.SeedSequence(args.seed).spawn(3))))
    D = args.digits
    # 1. The data: 3,000 distinct questions held out (1,000 to decide when to stop, 2,000
    #    for the test); training questions are drawn fresh every step, skipping those.
    a, b, held_out = sums.held_out_questions(VALIDATION_QUESTIONS + TEST_QUESTIONS, D,
                                             rng["held_out"])
    val, test = (a[:VALIDATION_QUESTIONS], b[:VALIDATION_QUESTIONS]), \
        (a[VALIDATION_QUESTIONS:], b[VALIDATION_QUESTIONS:])
    print(f"decimal addition of 1- to {D}-digit numbers as text (seed {args.seed}); "
          f"{'attention' if args.attention else 'no attention'}, question "
          f"{'reversed' if args.reverse else 'as written'}")

    # 2. The model. float32: half the time of float64 at these sizes, and precise enough
    #    for training (gradcheck, which needs float64, is in the tests).
    model = Seq2Seq(len(sums.ALPHABET), args.hidden, embedding_size=args.embedding,
                    cell=args.cell, attention=args.attention, rng=rng["init"],
                    dtype=np.float32)
    optimizer = mg.optim.Adam(model.parameters(), lr=args.lr)

    def loss_of(question, answer_in, target):
        """The training loss of one batch, with teacher forcing: the decoder reads the
        true answer shifted by one."""
        logits = model(question, answer_in)                     # (N, D+2, vocab)
        return mg.nn.cross_entropy(logits, target, ignore_index=sums.IGNORE)
    # mg.compile records the step's graph once and then replays it as plain numpy calls
    # (the same loss and gradients, no graph built per step); --no-compile: the engine.
    step_of = mg.compile(loss_of) if args.compile else None

    # 3. Training.
    history, bar = lesson.History(), lesson.progress(args.steps, "training", args.quiet)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, y = train_batch(args.batch_size, D, held_out, rng["batches"])
        question = sums.encode_questions(x, y, D, args.reverse)  # (N, 2D+1) token ids
        answer_in, target = sums.encode_answers(x, y, D)         # (N, D+2) each
        optimizer.zero_grad()
        if step_of:
            loss = step_of(question, answer_in, target)  # the loss; gradients in .grad
        else:
            loss = loss_of(question, answer_in, target)
            loss.backward()
        mg.optim.clip_grad_norm(model.parameters(), 5.0)  # an early large step would undo much
        optimizer.step()

        history.log(loss.item())
        if step % EVAL_EVERY == 0 or step == args.steps:
            accuracy = evaluate(model, *val, args)["test_accuracy"]
            if history.evals and accuracy <= max(a for _, a in history.evals):
                optimizer.lr /= 2  # no better than before: take smaller steps to settle
            history.evals.append((step, accuracy))
        bar.set_postfix(loss=f"{history.smoothed[-1]:.4f}",
                        validation=f"{history.evals[-1][1]:.3f}" if history.evals else "-",
                        refresh=False)
        bar.update()
        if history.evals and history.evals[-1][1] >= args.stop_at:
            break
    bar.close()
    seconds = time.perf_counter() - start
    sequences = len(history) * args.batch_size
    print(f"trained {len(history):,} steps ({sequences:,} questions) in {seconds:.1f} s; "
          f"validation exact match {history.evals[-1][1]:.2%}")

    # 4. The test: greedy decoding on 2,000 questions never seen in training.
    result = evaluate(model, *test, args)
    print(f"test, {TEST_QUESTIONS:,} held-out questions: whole answers right "
          f"{result['test_accuracy']:.2%}, characters right {result['char_accuracy']:.2%}")
    print("by the longer number's digits: " + ", ".join(
        f"{k} digit{'s' * (k != '1')} {acc:.2%} ({n:,})"
        for k, (acc, n) in result["by_length"].items()))
    print(f"Keras's addition_rnn sees {KERAS_SEQUENCES[0]:,.0f} to {KERAS_SEQUENCES[1]:,.0f} "
          f"questions to reach 99% of characters right; this run saw {sequences:,}.")
    print("\nworked examples:\n" + "\n".join(result["examples"]))

    # 5. Pictures and the record.
    os.makedirs(args.out, exist_ok=True)
    plot = history.plot(os.path.join(args.out, "training.png"),
                        f"seq2seq addition, {D} digits, {args.cell} {args.hidden}"
                        f"{', attention' if args.attention else ''}, seed {args.seed}",
                        loss_label="cross-entropy (nats per character)",
                        accuracy_axis="whole answers right", eval_label="validation questions")
    record = dict(task="seq2seq_addition", digits=D, attention=args.attention,
                  reverse=args.reverse, cell=args.cell, hidden=args.hidden, seed=args.seed,
                  compiled=args.compile, lr=args.lr, batch_size=args.batch_size,
                  train_steps=len(history), sequences=sequences, seconds=round(seconds, 2),
                  test_accuracy=result["test_accuracy"],
                  char_accuracy=result["char_accuracy"],
                  accuracy_by_digits={k: acc for k, (acc, _) in result["by_length"].items()},
                  examples=result["examples"], wrong=result["wrong"],
                  validation_curve=history.evals, plot=plot)
    record["graph"] = draw_graph(model, test[0][:2], test[1][:2], args)
    print(f"the graph of two questions, steps view: {record['graph']}")
    if args.attention:
        record["heatmap"] = draw_attention(model, test[0][:4], test[1][:4], args)
        print(f"attention heatmap: {record['heatmap']}")
    print(f"plot: {plot or 'skipped (matplotlib is not installed)'}")
    return record


def train_batch(n, digits, held_out, rng):
    """``n`` random questions, none of them held out."""
    a, b = sums.sample(n, digits, rng)
    fresh = np.array([x * 10 ** digits + y not in held_out for x, y in zip(a, b)])
    while not fresh.all():  # redraw the few that are held out
        a2, b2 = sums.sample(int((~fresh).sum()), digits, rng)
        a[~fresh], b[~fresh] = a2, b2
        fresh = np.array([x * 10 ** digits + y not in held_out for x, y in zip(a, b)])
    return a, b


def answer(model, a, b, args):
    """Greedy answers (strings) and attention weights (or None), 500 questions a time."""
    texts, weights = [], []
    for i in range(0, len(a), 500):
        question = sums.encode_questions(a[i:i + 500], b[i:i + 500], args.digits, args.reverse)
        ids, w = model.greedy(question, START, sums.answer_length(args.digits))
        texts += sums.decode_answers(ids)
        weights.append(w)
    return texts, None if weights[0] is None else np.concatenate(weights)


def evaluate(model, a, b, args):
    """Whole answers right, characters right (each answer character and the end mark,
    at its place), the same by the longer number's digit count, and worked examples."""
    predicted, _ = answer(model, a, b, args)
    truth = [str(t) for t in a + b]
    right = np.array([p == t for p, t in zip(predicted, truth)])
    chars = [(p + ".").ljust(len(t) + 1)[:len(t) + 1] for p, t in zip(predicted, truth)]
    char_right = sum(sum(c == d for c, d in zip(p, t + ".")) for p, t in zip(chars, truth))
    lengths = np.maximum(np.char.str_len(a.astype(str)), np.char.str_len(b.astype(str)))
    by_length = {str(k): (float(right[lengths == k].mean()), int((lengths == k).sum()))
                 for k in range(1, args.digits + 1) if (lengths == k).any()}
    lines = [f"{x:>{args.digits}} + {y:>{args.digits}} = {p:<{args.digits + 1}} "
             + ("✓" if ok else f"✗ (is {t})")
             for x, y, p, t, ok in zip(a, b, predicted, truth, right)]
    return dict(test_accuracy=float(right.mean()),
                char_accuracy=char_right / sum(len(t) + 1 for t in truth),
                by_length=by_length, examples=lines[:8],
                wrong=[line for line, ok in zip(lines, right) if not ok][:20])


def draw_graph(model, a, b, args):
    """The steps view of the training graph of two questions, with gradient norms: the
    encoder's chain and the decoder's, joined by the encoder's final state (and, with
    attention, the encoder's outputs read at every decoder step). Returns the SVG's
    path, or a note when Graphviz is missing."""
    question = sums.encode_questions(a, b, args.digits, args.reverse)
    answer_in, target = sums.encode_answers(a, b, args.digits)
    loss = mg.nn.cross_entropy(model(question, answer_in), target, ignore_index=sums.IGNORE)
    loss.backward(retain_grads=True)
    model.zero_grad()
    title = f"{a[0]} + {b[0]} and {a[1]} + {b[1]}: encoder and decoder, steps view"
    try:
        return mg.viz.render(loss, os.path.join(args.out, "graph.svg"), view="steps",
                             show_grads=True, title=title)
    except RuntimeError as err:  # Graphviz's dot is not installed
        return f"skipped ({str(err).splitlines()[0]})"


def draw_attention(model, a, b, args):
    """A heatmap per question: which question character (column) each answer character
    (row) read, as the attention weights of greedy decoding. Returns the PNG's path."""
    predicted, weights = answer(model, a, b, args)
    try:
        fig, axes = lesson.figure(1, len(a), figsize=(3.2 * len(a), 3.4))
    except ImportError:
        return None
    questions = sums.encode_questions(a, b, args.digits, args.reverse)
    for ax, x, y, p, w, ids in zip(np.atleast_1d(axes), a, b, predicted, weights, questions):
        question = "".join(sums.ALPHABET[i] for i in ids)
        rows = list(p + sums.END)[:len(w)]
        ax.imshow(w[:len(rows)], cmap="Greys", vmin=0, vmax=1)
        ax.set_xticks(range(len(question)), [c if c != " " else "·" for c in question])
        ax.set_yticks(range(len(rows)), rows)
        ax.set_title(f"{x} + {y} = {p}", fontsize=11)
        ax.set_xlabel("question (read left to right)")
    np.atleast_1d(axes)[0].set_ylabel("answer character written")
    fig.suptitle("attention: where each answer character looked (dark = weight near 1)")
    return lesson.save_figure(fig, os.path.join(args.out, "attention.png"))


def parse_args(argv=None):
    parser = lesson.Parser("seq2seq_addition.py", "Train an encoder-decoder to add decimal "
                           "numbers written as text, to exact match on held-out questions.")
    add = parser.add_argument
    add("--digits", type=lesson.bounded_int(3, 9), default=3,
        help="numbers have 1 to this many digits (default 3; at least 3, so that the "
             "3,000 held-out questions are a small part of all)")
    add("--attention", action="store_true", help="let the decoder attend to the encoder's states")
    add("--reverse", action="store_true", help="feed the question reversed")
    add("--cell", choices=("lstm", "gru", "rnn"), default="lstm",
        help="encoder and decoder cell (default lstm)")
    add("--hidden", type=lesson.positive_int, default=128, help="hidden size (default 128)")
    add("--embedding", type=lesson.positive_int, default=16,
        help="size of each character's vector (default 16: there are only 14 characters)")
    add("--steps", type=lesson.positive_int, default=6000,
        help="at most this many training steps (default 6000)")
    add("--batch-size", type=lesson.positive_int, default=128,
        help="questions per step (default 128)")
    add("--lr", type=lesson.positive_float, default=1e-2, help="Adam's learning rate "
        "(default 0.01)")
    add("--stop-at", type=lesson.positive_float, default=0.995,
        help="stop once this fraction of the validation questions is answered exactly "
             "(default 0.995)")
    lesson.add_compile_flag(parser)
    lesson.add_output_flags(parser, out=os.path.join("runs", "seq2seq_addition"))
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(main())
