"""A character-level language model: read a text, predict its next character, then write.

    python examples/char_lm.py [--text verse|tang|PATH] [--cell lstm] [--temperature 0.7]

Karpathy's char-rnn in one file. Each character becomes a vector (``Embedding``), an LSTM
reads them in order, and a linear layer turns its h at every step into a score for
every possible next character; ``cross_entropy`` over (N, T, C) compares them with the
characters that really come next. The text is far longer than one graph should be, so it
is read in chunks of ``--seq-len`` characters by truncated backpropagation through time:
the state flows on from chunk to chunk, the gradient does not (see ``train``).

The held-out last 10% of the text measures how well the model predicts text it never
saw, in nats per character, beside two baselines: the unigram loss (the training text's
character frequencies, no context at all) and the uniform loss (ln of the vocabulary
size). A small text is soon learned by heart, so training stops when the held-out loss
stops improving and keeps the best weights (early stopping). Then the model writes:
each character drawn from its predicted distribution, sharpened or flattened by
``--temperature``.

The lesson is this file, top to bottom; the texts and their helpers are in
``models/data/text.py`` (sources in ``models/data/README.md``), the plumbing (flags,
progress bar, plot, JSON) in ``lesson.py``.
"""
import math
import os
import time

# One BLAS thread: at these matrix sizes a second thread costs more than it saves, and
# on a busy machine far more (set before numpy loads; an explicit setting wins).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

import lesson  # noqa: E402
import minigrad as mg  # noqa: E402
from minigrad import models  # noqa: E402
from minigrad.models.data import text as data  # noqa: E402

EVAL_EVERY = 100     # at most this many training steps between two looks at the held-out loss
HELD_OUT_STREAMS = 16  # the held-out text is read as this many streams side by side


class CharLM(mg.nn.Module):
    """Embedding -> recurrent network -> dropout -> linear: next-character scores."""

    def __init__(self, vocab, hidden, *, cell="lstm", embedding=64, dropout=0.0, rng=None):
        self.embed = mg.nn.Embedding(vocab, embedding, rng=rng, dtype=np.float32)
        self.rnn = models.recurrent(cell, embedding, hidden, rng=rng, dtype=np.float32)
        self.drop = mg.nn.Dropout(dropout, rng=rng)
        self.head = mg.nn.Linear(hidden, vocab, rng=rng, dtype=np.float32)

    def forward(self, ids, state=None):
        """ids (N, T) -> logits (N, T, vocab), and the final state to carry on with, as a
        tuple whatever the cell: (h, c) for the LSTM, (h,) for the GRU and the RNN."""
        if state is not None and len(state) == 1:
            state = state[0]
        out, state = self.rnn(self.embed(ids), state)
        return self.head(self.drop(out)), state if isinstance(state, tuple) else (state,)


def detach(state):
    """The same state, cut from the graph that made it."""
    return tuple(s.detach() for s in state)


def main(argv=None):
    """Parse the flags, run the lesson (its text on stdout, or stderr with --json -), then
    write the JSON record."""
    return lesson.run_script(parse_args, run, argv)


def run(args):
    mg.keep_freed_memory()  # a training loop frees and reallocates its graph every step
    rng = dict(zip(("init", "sample"),
                   (np.random.default_rng(s) for s in np.random.SeedSequence(args.seed).spawn(2))))
    # 1. The data: characters as integer ids; the last 10% held out, in one piece.
    text = args.corpus
    vocab = data.Vocabulary(text)
    train_ids, held_ids = data.split(vocab.encode(text))
    unigram, uniform = data.unigram_loss(train_ids, held_ids, len(vocab)), math.log(len(vocab))
    print(f"text {args.text!r}: {len(text):,} characters, {len(vocab):,} distinct; "
          f"{len(held_ids):,} held out\nheld-out loss to beat, nats per character: "
          f"unigram {unigram:.3f}, uniform {uniform:.3f}")

    # 2. The model, and a picture of where truncated BPTT stops the gradient.
    model = CharLM(len(vocab), args.hidden, cell=args.cell, embedding=args.embedding,
                   dropout=args.dropout, rng=rng["init"])
    os.makedirs(args.out, exist_ok=True)
    picture = draw_truncation(model, train_ids, os.path.join(args.out, "truncated_bptt.svg"))
    print(f"two chunks of truncated BPTT drawn: {picture}")

    # 3. Training (``train`` below), then the best weights seen.
    start = time.perf_counter()
    history, best = train(model, train_ids, held_ids, args)
    seconds = time.perf_counter() - start
    model.load_state_dict(best["weights"])
    print(f"trained {len(history):,} steps in {seconds:.1f} s; best held-out loss "
          f"{best['loss']:.3f} nats/char at step {best['step']:,} "
          f"({best['loss'] / unigram:.2f} x unigram, {best['loss'] / uniform:.2f} x uniform)")

    # 4. Writing: one character at a time, each fed back in.
    samples = {}
    for temperature in dict.fromkeys((args.temperature, 1.0)):
        samples[temperature] = sample(model, vocab, args.sample, temperature, rng["sample"],
                                      after="\n" if "\n" in text else text[0])
        print(f"\nsample at temperature {temperature:g}:\n{samples[temperature]}")

    plot = plot_losses(os.path.join(args.out, "training.png"), history, best, unigram, uniform,
                       f"character LM on {args.text!r}, {args.cell} {args.hidden}, "
                       f"seed {args.seed}")
    return dict(task="char_lm", text=args.text, cell=args.cell, hidden=args.hidden,
                seed=args.seed, compiled=args.compile, lr=args.lr, seq_len=args.seq_len,
                batch_size=args.batch_size, dropout=args.dropout, vocab=len(vocab), characters=len(text),
                train_steps=len(history), best_step=best["step"], seconds=round(seconds, 2),
                val_loss=best["loss"], unigram_loss=unigram, uniform_loss=uniform,
                temperature=args.temperature, sample=samples[args.temperature],
                samples={f"{t:g}": s for t, s in samples.items()}, plot=plot,
                truncated_bptt=picture)


def train(model, train_ids, held_ids, args):
    """Adam on consecutive chunks of the text, by truncated BPTT, with early stopping.

    Returns the History and the best held-out result: ``{"loss", "step", "weights"}``.
    """
    optimizer = mg.optim.Adam(model.parameters(), lr=args.lr)
    streams = data.streams(train_ids, args.batch_size)  # (B, L): B rows read in parallel
    B, T, length = args.batch_size, args.seq_len, streams.shape[1]
    # Look at the held-out loss once per pass over the text (or every EVAL_EVERY steps):
    # a short text is read many times over, and overfits within a few passes.
    every = max(1, min(EVAL_EVERY, (length - 1) // T))
    zeros = tuple(mg.Tensor(np.zeros((1, B, args.hidden), np.float32))
                  for _ in model.rnn.state_names)

    def chunk_loss(x, y, *state):
        """One chunk's loss, and the state it ends with."""
        logits, state = model(x, state)                  # logits (B, T, C)
        return (mg.nn.cross_entropy(logits, y), *state)  # y (B, T)
    # mg.compile records the step's graph once and then replays it as plain numpy calls
    # (the same loss and gradients, no graph built per step); --no-compile: the engine.
    step_of = mg.compile(chunk_loss) if args.compile else None

    history, bar = lesson.History(), lesson.progress(args.steps, "training", args.quiet)
    best = {"loss": math.inf, "step": 0, "weights": model.state_dict()}
    state, position = zeros, 0
    model.train()
    for step in range(1, args.steps + 1):
        if position + T + 1 > length:  # the end of the text: start again, from a fresh state
            state, position = zeros, 0
        x = np.ascontiguousarray(streams[:, position:position + T])  # (B, T) characters
        y = np.ascontiguousarray(streams[:, position + 1:position + T + 1])  # and the next
        position += T
        optimizer.zero_grad()
        # Truncated BPTT: the next chunk starts from this chunk's final state, so the
        # model still reads the text as one long sequence; but that state is cut from
        # the graph that made it (detach()). The next backward then stops at the
        # chunk's first step instead of running back through every chunk since the
        # beginning, and the memory stays that of one chunk. (A compiled step's outputs
        # have no graph: the cut is built in.)
        if step_of:
            loss, *state = step_of(x, y, *state)
        else:
            loss, *state = chunk_loss(x, y, *state)
            loss.backward()
            state = detach(state)
        mg.optim.clip_grad_norm(model.parameters(), 5.0)
        optimizer.step()

        history.log(loss.item())
        if step % every == 0 or step == args.steps:
            held_out = evaluate(model, held_ids)
            model.train()
            history.evals.append((step, held_out))
            if held_out < best["loss"]:
                best = {"loss": held_out, "step": step, "weights": model.state_dict()}
        bar.set_postfix(loss=f"{history.smoothed[-1]:.3f}",
                        held_out=f"{history.evals[-1][1]:.3f}" if history.evals else "-",
                        refresh=False)
        bar.update()
        # Early stopping: a small text is soon known by heart, and from then on the
        # held-out loss only rises.
        if step - best["step"] >= args.patience * every:
            break
    bar.close()
    return history, best


def plot_losses(path, history, best, unigram, uniform, title):
    """Training and held-out loss against the step, with the two baselines and the
    step whose weights were kept. Returns ``path``, or None without matplotlib."""
    try:
        fig, ax = lesson.figure(figsize=(8, 4.5))
    except ImportError:
        return None
    steps = range(1, len(history) + 1)
    ax.plot(steps, history.losses, color="tab:blue", alpha=0.3, lw=1)
    ax.plot(steps, history.smoothed, color="tab:blue", label="training chunks (moving average)")
    ax.plot(*zip(*history.evals), "o-", color="tab:green", label="held-out text")
    ax.axhline(unigram, color="gray", ls="--", lw=1, label=f"unigram {unigram:.2f}")
    ax.axhline(uniform, color="gray", ls=":", lw=1, label=f"uniform {uniform:.2f}")
    ax.axvline(best["step"], color="tab:green", ls=":", lw=1,
               label=f"kept: step {best['step']} ({best['loss']:.2f})")
    ax.set_xlabel("training step")
    ax.set_ylabel("nats per character")
    ax.set_ylim(0, uniform * 1.05)
    ax.set_title(title)
    ax.legend(loc="lower left")
    return lesson.save_figure(fig, path)


def draw_truncation(model, ids, path, length=4):
    """The steps view of two chunks of ``length`` characters, as training runs them: the
    second starts from the first one's final state, detached. Drawn with gradient norms
    after a backward through both losses, it shows the gradient flowing back along each
    chunk and stopping at the cut. Returns ``path``, or a note when Graphviz is missing."""
    model.eval()  # no dropout in the picture
    state, losses = None, []
    for k in range(2):
        x = ids[None, k * length:(k + 1) * length]
        y = ids[None, k * length + 1:(k + 1) * length + 1]
        with mg.scope(f"chunk {k + 1}"):
            logits, state = model(x, state)
            losses.append(mg.nn.cross_entropy(logits, y))
        state = detach(state)
        for part, name in zip(state, "hc"):
            part.name = f"{name} (detached)"
    loss = losses[0] + losses[1]
    loss.backward(retain_grads=True)
    model.zero_grad()
    try:
        return mg.viz.render(loss, path, view="steps", show_grads=True,
                             title="truncated BPTT: two chunks; the gradient stops at the "
                                   "detached state")
    except RuntimeError as err:  # Graphviz's dot is not installed
        return f"skipped ({str(err).splitlines()[0]})"


def evaluate(model, ids):
    """Held-out loss in nats per character: the text cut into streams read side by side
    (each stream's first character is given, not predicted), in eval mode, no graph."""
    streams = data.streams(ids, HELD_OUT_STREAMS)
    model.eval()
    with mg.no_grad():
        logits, _ = model(streams[:, :-1])
        return mg.nn.cross_entropy(logits, streams[:, 1:]).item()


def sample(model, vocab, n, temperature, rng, after="\n"):
    """``n`` characters written by the model after the character ``after`` (a line
    break: it starts a line, or a poem). Each is drawn from softmax(logits /
    temperature): below 1 the likely characters get likelier (safer text), above 1 the
    distribution flattens (more surprising text)."""
    model.eval()
    ids, state = [vocab.encode(after)[0]], None
    with mg.no_grad():
        for _ in range(n):
            logits, state = model(np.array([[ids[-1]]]), state)
            p = mg.softmax(logits[0, -1] / temperature, axis=-1).data.astype(np.float64)
            ids.append(rng.choice(len(p), p=p / p.sum()))
    return vocab.decode(ids[1:])


def parse_args(argv=None):
    parser = lesson.Parser("char_lm.py", "Train a character-level language model by "
                           "truncated BPTT, report its held-out loss, and sample from it.")
    add = parser.add_argument
    add("--text", default="verse", metavar="{tang,verse,PATH}",
        help="a shipped text (tang: Three Hundred Tang Poems; verse: Shakespeare's "
             "sonnets) or the path of a UTF-8 file (default verse)")
    add("--cell", choices=("lstm", "gru", "rnn"), default="lstm",
        help="the recurrent network (default lstm)")
    add("--hidden", type=lesson.positive_int, default=256, help="hidden size (default 256)")
    add("--embedding", type=lesson.positive_int, default=64,
        help="embedding size (default 64)")
    add("--dropout", type=lesson.nonnegative_float, default=0.2,
        help="dropout before the output layer, in training (default 0.2)")
    add("--seq-len", type=lesson.positive_int, default=64,
        help="characters per chunk of truncated BPTT (default 64)")
    add("--steps", type=lesson.positive_int, default=1000,
        help="at most this many training steps (default 1000)")
    add("--batch-size", type=lesson.positive_int, default=32,
        help="streams read side by side (default 32)")
    add("--lr", type=lesson.positive_float, default=3e-3,
        help="Adam's learning rate (default 0.003)")
    add("--patience", type=lesson.positive_int, default=2,
        help=f"stop after this many held-out evaluations (one per pass over the text, "
             f"at most {EVAL_EVERY} steps apart) without a new best (default 2)")
    lesson.add_compile_flag(parser)
    add("--temperature", type=lesson.positive_float, default=0.7,
        help="sampling temperature (default 0.7; a sample at 1.0 is printed too)")
    add("--sample", type=lesson.nonnegative_int, default=400,
        help="characters to write (default 400)")
    lesson.add_output_flags(parser, out=os.path.join("runs", "char_lm"))
    args = parser.parse_args(argv)
    if args.dropout >= 1:
        parser.error(f"argument --dropout: must be below 1, got {args.dropout:g}")
    try:
        args.corpus = data.load(args.text)
    except ValueError as err:
        parser.error(f"argument --text: {err}")
    needed = max(args.batch_size * (args.seq_len + 1), 2 * HELD_OUT_STREAMS) * 10 // 9 + 1
    if len(args.corpus) < needed:
        parser.error(f"argument --text: {len(args.corpus):,} characters are too few for "
                     f"--batch-size {args.batch_size} and --seq-len {args.seq_len} (at least "
                     f"{needed:,}, a tenth of them held out)")
    return args


if __name__ == "__main__":
    raise SystemExit(main())
