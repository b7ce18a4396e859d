"""Draw the unrolled computation graph of a small LSTM adding two binary numbers.

    python examples/render_graph.py --steps 4 -o lstm.svg [--grads] [--hidden 8] [--seed 0]
    python examples/render_graph.py --load runs/addition/model.npz --grads -o lstm.svg
    python examples/render_graph.py --steps 8 --view steps --grads -o steps.svg
    python examples/render_graph.py --cell gru --steps 4 --grads -o gru.svg

``--view`` picks one of three drawings of the same graph: ``ops`` (default) every op and
tensor; ``steps`` one node per time step, the state passing between them; ``rolled`` one
step drawn once, the recurrence as a back-edge. Each has its own natural direction
(``--rankdir`` overrides it). The ops view of more than 12 steps is too tall to read, so
it then draws only the first and last 4 steps unless ``--keep-steps`` says otherwise,
and says so.

One pair (a, b) is encoded least-significant bit first, so the LSTM runs one time step
per bit. The drawing shows one dashed box per time step with the gates inside (the
slices of the pre-activation into i, f, g, o, then sigmoid/tanh), and the shared weight
and bias outside, feeding every step.

With ``--grads`` the loss is backpropagated first and every tensor is coloured by its
gradient norm. By default the loss is that of the last (most significant) sum bit only:
it depends on the carry from every earlier bit, so its gradient has to travel back
through all the steps, and the colours show how much of it is left at each one.
``--loss mean`` uses the training loss (mean over all bits) instead, where every step
also gets a gradient of its own. The input ``x`` is made to require a gradient so that it
appears in the drawing, feeding every step, with its per-step gradient.

``--load`` draws a model trained by ``binary_addition.py`` instead of fresh random
weights: a trained LSTM carries the gradient back further, through its learned carry.

The format follows the suffix of ``-o``: .svg, .png, .pdf (these need Graphviz's ``dot``)
or .dot (the DOT text, needs nothing).
"""
import argparse
import os
import sys

import numpy as np

import minigrad as mg
from minigrad.models.arithmetic import CELLS, ArithmeticModel, load_model
from minigrad.models.data.arithmetic import MAX_BITS, encode, sample_pairs

FORMATS = (".svg", ".png", ".pdf", ".dot")
LEGIBLE_STEPS = 12  # the ops view of more steps than this draws only KEEP_STEPS at each end
KEEP_STEPS = 4


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Render the unrolled LSTM graph of one binary addition.")
    parser.add_argument("--steps", type=int, default=4,
                        help=f"bits of the numbers = time steps, 1..{MAX_BITS} (default 4)")
    parser.add_argument("-o", "--output", default="lstm.svg",
                        help="output file; format from the suffix: " + ", ".join(FORMATS))
    parser.add_argument("--grads", action="store_true",
                        help="backpropagate and colour tensors by their gradient norm")
    parser.add_argument("--loss", choices=("last", "mean"), default="last",
                        help="last: loss of the most significant bit only (default); "
                             "mean: the training loss over all bits")
    parser.add_argument("--cell", choices=CELLS, default=None,
                        help="recurrent network of a fresh model (default lstm)")
    parser.add_argument("--hidden", type=int, default=8,
                        help="LSTM hidden size of a fresh model (default 8)")
    parser.add_argument("--load", metavar="PATH",
                        help="draw the addition model saved at PATH (by binary_addition.py) "
                             "instead of fresh random weights")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the weights and of the sample (default 0)")
    parser.add_argument("--view", choices=tuple(mg.viz.VIEWS), default="ops",
                        help="ops: every op and tensor (default); steps: one node per time "
                             "step; rolled: one step drawn once, the recurrence as a "
                             "back-edge")
    parser.add_argument("--rankdir", choices=("TB", "LR", "BT", "RL"), default=None,
                        help="direction of the arrows (default: the view's own, TB for "
                             "ops, time steps top to bottom)")
    parser.add_argument("--keep-steps", type=int, default=None, metavar="K",
                        help="draw only the first and last K time steps (default for the "
                             f"ops view of more than {LEGIBLE_STEPS} steps: {KEEP_STEPS})")
    args = parser.parse_args(argv)
    if not 1 <= args.steps <= MAX_BITS:
        parser.error(f"--steps must be in 1..{MAX_BITS}, got {args.steps}")
    if args.hidden < 1:
        parser.error(f"--hidden must be at least 1, got {args.hidden}")
    if args.keep_steps is not None and args.keep_steps < 1:
        parser.error(f"--keep-steps must be at least 1, got {args.keep_steps}")
    if os.path.splitext(args.output)[1].lower() not in FORMATS:
        parser.error(f"-o {args.output!r}: the suffix must be one of {', '.join(FORMATS)}")
    args.model = None
    if args.load is not None:
        if not os.path.isfile(args.load):
            parser.error(f"--load {args.load}: no such file")
        try:
            args.model, _ = load_model(args.load, "addition")
        except ValueError as err:
            parser.error(str(err))
        if args.cell not in (None, args.model.cell):
            parser.error(f"--cell {args.cell}: {args.load} holds a {args.model.cell} model")
        args.hidden = args.model.hidden_size
    args.cell = args.cell or "lstm"
    if args.keep_steps is None and args.view == "ops" and args.steps > LEGIBLE_STEPS:
        args.keep_steps = KEEP_STEPS
        print(f"render_graph.py: {args.steps} steps are too many to read in the ops view: "
              f"drawing the first and last {KEEP_STEPS} (--keep-steps {args.steps} draws "
              f"them all, --view steps one node per step)", file=sys.stderr)
    return args


def build(args):
    """The model's loss on one sample, backpropagated when ``--grads``; and a caption."""
    rng = np.random.default_rng(args.seed)
    model = (ArithmeticModel(args.hidden, cell=args.cell, rng=rng) if args.model is None
             else args.model)
    a, b = sample_pairs("addition", args.steps, 1, rng)
    x, y = encode("addition", a, b, args.steps)
    x = mg.Tensor(x, requires_grad=True, name="x")
    logits = model(x)
    if args.loss == "last":
        logits, y = logits[:, -1, :], y[:, -1, :]
        what = "the loss of the last sum bit"
    else:
        what = "the mean loss over all bits"
    loss = mg.nn.binary_cross_entropy_with_logits(logits, mg.Tensor(y, name="target"))
    loss.name = "loss"
    if args.grads:
        loss.backward(retain_grads=True)
    total = int(a[0]) + int(b[0])
    state = "untrained" if args.model is None else "trained"
    title = (f"{int(a[0])} + {int(b[0])} = {total} in {args.steps} bits, least-significant "
             f"bit first\na {state} {model.cell.upper()} (hidden size {args.hidden}) "
             f"unrolled over {args.steps} time steps\n")
    if args.grads:
        title += f"colour: size of the gradient of {what}"
    else:
        title += f"output: {what}"
    return loss, title


def main(argv=None):
    args = parse_args(argv)
    loss, title = build(args)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    try:
        path = mg.viz.render(loss, args.output, view=args.view, show_grads=args.grads,
                             rankdir=args.rankdir, keep_steps=args.keep_steps, title=title)
    except (RuntimeError, ValueError) as err:  # Graphviz missing or failing; too big
        print(f"render_graph.py: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
