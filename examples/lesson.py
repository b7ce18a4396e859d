"""What the example scripts share, so that each script can show its lesson and nothing else.

The scripts run from ``examples/``, so ``import lesson`` finds this file. It holds the
plumbing a reader of a lesson does not need to see: the command line, the progress bar,
the plot, the JSON record. The training loops stay in the scripts.

    import lesson

    def parse_args(argv=None):
        parser = lesson.Parser("my_example.py", "What the script teaches, in one sentence.")
        parser.add_argument("--steps", type=lesson.positive_int, default=500, help="...")
        lesson.add_output_flags(parser, out="runs/mine")   # --seed --out --json --quiet
        args = parser.parse_args(argv)   # bad flags: one line on stderr, exit status 2
        "steps" in args.given            # True when --steps was on the command line
        parser.refuse_overwrite(weights_path, config, read_config)  # never replace a run
        return args

    def run(args):                   # the lesson: prints as it goes, returns the JSON record
        history = lesson.History()   # the loss, its moving average, accuracies, evaluations
        bar = lesson.progress(args.steps, "training", quiet=args.quiet)
        for step in range(args.steps):
            ...
            history.log(loss.item(), batch_accuracy)
            bar.set_postfix(loss=f"{history.smoothed[-1]:.4f}", refresh=False)
            bar.update()
        bar.close()
        history.plot(os.path.join(args.out, "training.png"), "title")  # or plot_training
        return {"task": "mine", ...}

    def main(argv=None):
        return lesson.run_script(parse_args, run, argv)

With ``--json -`` the standard output carries the JSON alone, so a script's text must go
to stderr while it runs: ``run_script`` runs the lesson inside ``text_output`` and
writes the JSON after it.
"""
import argparse
import contextlib
import json
import math
import os
import sys

__all__ = ["Parser", "positive_int", "nonnegative_int", "positive_float", "nonnegative_float",
           "bounded_int", "add_output_flags", "progress", "figure", "save_figure",
           "plot_training", "History", "run_script", "text_output", "write_json"]


# -- the command line ----------------------------------------------------------------------

def _number(kind, convert, test, condition):
    """An argparse ``type=`` that converts and checks in one go, so that a bad value gets
    argparse's one-line error: ``argument --steps: must be at least 1, got 0``."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"must be {condition}, got {text}")
        return value
    parse.__name__ = kind  # argparse names the type in some messages
    return parse


positive_int = _number("an integer", int, lambda v: v >= 1, "at least 1")
nonnegative_int = _number("an integer", int, lambda v: v >= 0, "zero or positive")
positive_float = _number("a number", float, lambda v: 0 < v < math.inf, "positive")
nonnegative_float = _number("a number", float, lambda v: 0 <= v < math.inf,
                            "zero or positive")


def bounded_int(low, high):
    """An argparse ``type=`` for integers in ``low..high``."""
    return _number("an integer", int, lambda v: low <= v <= high, f"in {low}..{high}")


class Parser(argparse.ArgumentParser):
    """argparse with the habits every example shares.

    - An error is one line on stderr, ``prog: error: what was wrong``, exit status 2,
      without the usage block: a script that fails says what was wrong, not everything
      it accepts.
    - No abbreviated flags (``--hid`` is an error, not ``--hidden``), so that
      ``args.given`` is exact.
    - ``parse_args`` sets ``args.given``: the flags the user typed (their dests), which is
      how a script tells ``--hidden 16`` from the default 16.
    - It checks the paths of ``--out``, ``--json`` and ``--load`` when the script has them.
    """

    def __init__(self, prog, description, **kwargs):
        super().__init__(prog=prog, description=description, allow_abbrev=False, **kwargs)
        self._valued = []  # the actions that give a value (all but --help)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")

    def add_argument(self, *args, **kwargs):
        action = super().add_argument(*args, **kwargs)
        if action.default is not argparse.SUPPRESS:
            self._valued.append(action)
        return action

    def parse_args(self, args=None, namespace=None):
        # argparse fills in a default only where the namespace has no value yet: start
        # every flag at a marker, and what still holds it after one parse was not typed.
        unset = object()
        parsed = namespace if namespace is not None else argparse.Namespace()
        for action in self._valued:
            if not hasattr(parsed, action.dest):
                setattr(parsed, action.dest, unset)
        parsed = super().parse_args(args, parsed)
        parsed.given = set()
        for action in self._valued:
            if getattr(parsed, action.dest) is not unset:
                parsed.given.add(action.dest)
                continue
            default = action.default  # a string default goes through type=, as in argparse
            if isinstance(default, str) and callable(action.type):
                default = action.type(default)
            setattr(parsed, action.dest, default)

        out, load = getattr(parsed, "out", None), getattr(parsed, "load", None)
        path = getattr(parsed, "json", None)
        if out is not None and os.path.exists(out) and not os.path.isdir(out):
            self.error(f"--out {out}: exists and is not a directory")
        if path not in (None, "-") and not os.path.isdir(os.path.dirname(path) or "."):
            self.error(f"--json {path}: no such directory")
        if load is not None and not os.path.isfile(load):
            self.error(f"--load {load}: no such file")
        return parsed

    def reject(self, args, dests, reason):
        """Error if any of the flags ``dests`` was typed: they would be silently ignored.

        e.g. ``parser.reject(args, ["hidden", "steps"], "with --load (the saved model
        fixes them)")`` -> ``error: --hidden, --steps cannot be used with --load (...)``.
        """
        typed = [_flag(d) for d in dests if d in args.given]
        if typed:
            self.error(f"{', '.join(typed)} cannot be used {reason}")

    def refuse_overwrite(self, path, config, read_config):
        """Error if ``path`` holds anything but a model saved with this very ``config``.

        ``read_config(path)`` returns the configuration saved in the file (ValueError if
        it is not a checkpoint of the script). Only the keys present in both are compared.
        A run may replace only a file that the same settings made, so a quick ``--bits 1``
        trial never destroys the model a longer run saved there.
        """
        if not os.path.exists(path):
            return
        try:
            saved = read_config(path)
        except ValueError:
            self.error(f"{path} exists and is not a checkpoint of this script; choose "
                       f"another --out, or delete the file")
        differ = [f"{key} {saved[key]}, not {config[key]}" for key in config
                  if key in saved and saved[key] != config[key]]
        if differ:
            self.error(f"{path} holds a model of another configuration ({'; '.join(differ)}):"
                       f" choose another --out, or delete the file to replace it")


def _flag(dest):
    return "--" + dest.replace("_", "-")


def add_compile_flag(parser):
    """``--compile`` / ``--no-compile``, on by default: the long lessons replay their
    training step with ``mg.compile`` (the same losses and weights, faster)."""
    parser.add_argument(
        "--compile", action=argparse.BooleanOptionalAction, default=True,
        help="replay the training step with mg.compile (default; --no-compile runs the "
             "engine at every step: same results, slower)")


def add_output_flags(parser, out):
    """``--seed``, ``--out DIR`` (default ``out``), ``--json PATH`` and ``--quiet``."""
    add = parser.add_argument
    add("--seed", type=nonnegative_int, default=0,
        help="seed of every random choice: data, weights, batches (default 0)")
    add("--out", default=out, metavar="DIR",
        help=f"directory for the plot and the weights (default {out})")
    add("--json", metavar="PATH",
        help="write the results as JSON to PATH ('-': standard output, and the text goes "
             "to stderr)")
    add("--quiet", action="store_true", help="no progress bar")


# -- progress, plots, results --------------------------------------------------------------

class _NoBar:
    def set_postfix(self, *args, **kwargs):
        pass

    def update(self, n=1):
        pass

    def close(self):
        pass


def progress(total, description, quiet=False):
    """A tqdm progress bar on stderr (``set_postfix``, ``update``, ``close``), or an object
    with the same methods that shows nothing (``quiet``, or tqdm not installed)."""
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is an optional dependency (the "examples" extra)
        return _NoBar()
    if quiet:
        return _NoBar()
    return tqdm(total=total, desc=description, unit="step", file=sys.stderr,
                dynamic_ncols=True)


def figure(nrows=1, ncols=1, *, figsize=(8, 6), **subplots):
    """``(fig, axes)``: a matplotlib Figure without pyplot (no GUI backend, no global
    state), laid out with ``constrained`` so labels never overlap."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(nrows, ncols, **subplots)


def save_figure(fig, path, dpi=100):
    """Write ``fig`` (format from the suffix of ``path``), creating its directory."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def plot_training(path, title, losses, *, smoothed=None, loss_target=None, loss_label="loss",
                  accuracy=None, evals=None, accuracy_label="training batch",
                  eval_label="held-out data", accuracy_axis="accuracy"):
    """The loss (log scale) above the accuracy, against the training step, as an image.

    ``losses``: the loss of every step; ``smoothed``: its moving average; ``accuracy``:
    a per-step accuracy (e.g. on the training batch); ``evals``: ``(step, accuracy)``
    pairs of the occasional evaluations. Returns ``path``, or None when matplotlib (an
    optional dependency) is not installed.
    """
    try:
        fig, (top, bottom) = figure(2, 1, sharex=True)
    except ImportError:
        return None
    steps = range(1, len(losses) + 1)
    if smoothed is None:
        top.semilogy(steps, losses, color="tab:blue")
    else:
        top.semilogy(steps, losses, color="tab:blue", alpha=0.3, lw=1, label="batch")
        top.semilogy(steps, smoothed, color="tab:blue", label="moving average")
    if loss_target is not None:
        top.axhline(loss_target, color="gray", ls="--", lw=1, label="loss target")
    top.set_ylabel(loss_label)
    if smoothed is not None or loss_target is not None:
        top.legend(loc="upper right")
    top.set_title(title)
    if accuracy is not None:
        bottom.plot(steps, accuracy, color="tab:orange", lw=1, label=accuracy_label)
    if evals:
        bottom.plot(*zip(*evals), "o", color="tab:green", label=eval_label)
    bottom.set_ylim(-0.03, 1.03)
    bottom.set_xlabel("training step")
    bottom.set_ylabel(accuracy_axis)
    if accuracy is not None or evals:
        bottom.legend(loc="lower right")
    return save_figure(fig, path)


class History:
    """The curves of one training run, kept for the stopping rule, the plot and the JSON.

    ``log(loss, accuracy)`` once per step appends the loss, its moving average
    (``smoothed``: noisy batch losses make a poor stopping signal) and an optional
    per-step accuracy; ``evals`` collects ``(step, accuracy)`` of occasional evaluations.
    """

    def __init__(self, smoothing=0.9):
        self.smoothing = smoothing
        self.losses, self.smoothed, self.accuracy, self.evals = [], [], [], []

    def __len__(self):
        return len(self.losses)

    def log(self, loss, accuracy=None):
        loss = float(loss)
        self.smoothed.append(loss if not self.losses else
                             self.smoothing * self.smoothed[-1] + (1 - self.smoothing) * loss)
        self.losses.append(loss)
        if accuracy is not None:
            self.accuracy.append(float(accuracy))

    def plot(self, path, title, **labels):
        """``plot_training`` of these curves; ``labels``: its label and target options."""
        return plot_training(path, title, self.losses, smoothed=self.smoothed,
                             accuracy=self.accuracy or None, evals=self.evals, **labels)


def run_script(parse_args, run, argv=None, status=None):
    """A script's ``main``: ``args = parse_args(argv)``; ``record = run(args)``, printing
    inside ``text_output``; the record written with ``write_json``. Returns the exit
    status, ``status(record)`` (default 0)."""
    args = parse_args(argv)
    with text_output(args.json):
        record = run(args)
    write_json(args.json, record)
    return 0 if status is None else status(record)


@contextlib.contextmanager
def text_output(json_path):
    """Inside, ``print()`` writes where the lesson's text belongs: the standard output, or
    stderr when ``--json -`` (``json_path == "-"``) keeps the standard output for the JSON
    alone. Restored on the way out, errors included."""
    if json_path != "-":
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def write_json(path, record):
    """Write ``record`` as JSON to ``path``; ``"-"`` is the standard output, None nothing.
    Says where a file went. Returns the path written (None for none)."""
    if path is None:
        return None
    text = json.dumps(record, indent=2) + "\n"
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        with open(path, "w") as f:
            f.write(text)
        print(f"results: {path}")
    return path
