"""Watch backpropagation through time: the graph explorer and the GIF of the sweep.

    python examples/binary_addition.py --out runs/addition      # train the model once
    python examples/explore_graph.py                             # docs/bptt.html, docs/bptt.gif
    python examples/explore_graph.py --untrained --bits 4 --html /tmp/bptt.html --gif ""

One pair (a, b) goes through the addition LSTM, least-significant bit first, one time
step per bit. The loss is that of the last (most significant) sum bit: it depends on the
carry from every earlier bit, so its gradient has to travel back through every step,
and the explorer shows it doing so, op by op, in the order the engine ran them. Open the
HTML file in a browser (it needs no network) and press play.
"""
import argparse
import os
import sys

import numpy as np

import minigrad as mg
from minigrad.models.arithmetic import ArithmeticModel, load_model
from minigrad.models.data.arithmetic import encode, sample_pairs

DEFAULT_MODEL = os.path.join("runs", "addition", "model.npz")
# 1010111 + 0101001 = 10000000: the last sum bit is 1 only through a carry that starts
# at bit 0 and runs through every step, so the loss really depends on every step.
DEFAULT_PAIR = (87, 41)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--load", metavar="PATH", default=DEFAULT_MODEL,
                        help=f"the addition model saved by binary_addition.py "
                             f"(default {DEFAULT_MODEL})")
    parser.add_argument("--untrained", action="store_true",
                        help="use fresh random weights instead of --load (hidden size 8)")
    parser.add_argument("--bits", type=int, default=8,
                        help="bits of the numbers = time steps (default 8)")
    parser.add_argument("--pair", type=int, nargs=2, metavar=("A", "B"),
                        help=f"the numbers to add (default {DEFAULT_PAIR[0]} "
                             f"{DEFAULT_PAIR[1]} with 8 bits, else drawn with --seed)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of fresh weights and of a drawn pair (default 0)")
    parser.add_argument("--html", default=os.path.join("docs", "bptt.html"),
                        help="where to write the explorer (default docs/bptt.html)")
    parser.add_argument("--gif", default=os.path.join("docs", "bptt.gif"),
                        help='where to write the animation (default docs/bptt.gif; "" for none)')
    args = parser.parse_args(argv)
    if not 1 <= args.bits <= 32:
        parser.error(f"--bits must be in 1..32, got {args.bits}")
    if args.pair is not None and not all(0 <= v < 2 ** (args.bits - 1) for v in args.pair):
        parser.error(f"--pair: with {args.bits} bits each number must be in "
                     f"[0, {2 ** (args.bits - 1)}) so that the sum fits")
    if args.pair is None and args.bits == 8:
        args.pair = list(DEFAULT_PAIR)
    args.model = None
    if not args.untrained:
        if not os.path.isfile(args.load):
            parser.error(f"--load {args.load}: no such file; train the model first with "
                         f"`python examples/binary_addition.py --out runs/addition`, or "
                         f"pass --untrained")
        try:
            args.model, _ = load_model(args.load, "addition")
        except ValueError as err:
            parser.error(str(err))
    return args


def build(args):
    """The loss of the last sum bit for one pair, and a title saying what it shows."""
    rng = np.random.default_rng(args.seed)
    model = ArithmeticModel(8, rng=rng) if args.model is None else args.model
    if args.pair is None:
        a, b = sample_pairs("addition", args.bits, 1, rng)
    else:
        a, b = np.array([args.pair[0]]), np.array([args.pair[1]])
    x, y = encode("addition", a, b, args.bits)
    logits = model(mg.Tensor(x, name="x"))
    loss = mg.nn.binary_cross_entropy_with_logits(logits[:, -1, :],
                                                  mg.Tensor(y[:, -1, :], name="target"))
    loss.name = "loss"
    state = "an untrained" if args.model is None else "a trained"
    title = (f"{int(a[0])} + {int(b[0])} = {int(a[0]) + int(b[0])}, {args.bits} bits: "
             f"{state} LSTM's backward sweep from the loss of the last sum bit")
    return loss, title


def main(argv=None):
    args = parse_args(argv)
    loss, title = build(args)
    for path in (args.html, args.gif):
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        print(f"wrote {mg.viz.explore(loss, args.html, title=title)} "
              f"({os.path.getsize(args.html):,} bytes)")
        if args.gif:
            short = title.split(",")[0] + ": the gradient flows back one step at a time"
            print(f"wrote {mg.viz.animate(loss, args.gif, title=short)} "
                  f"({os.path.getsize(args.gif):,} bytes)")
    except RuntimeError as err:  # Graphviz or Pillow missing: the message says what to do
        print(f"explore_graph.py: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
