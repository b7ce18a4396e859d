"""The guard: which drawing of a graph ``dot`` can lay out in reasonable time.

dot places every node, and every edge that spans k ranks is laid out as a chain of
k - 1 invisible nodes: the layout's size is nodes + edges + those chain nodes (ranks
estimated by the longest path from the sources, then each node that gains by it settled
just above its nearest user, as dot's ranking would) + CLUSTER_COST per cluster. Its
bounded network simplex (``nslimit``) then makes up to one pass over that whole layout
per node, so its work grows like nodes x size: ``layout_size``.

Measured with ``benchmarks/viz.py`` on a 2-core machine shared with other jobs: the
time per unit grows with the machine's load and with the size. At load average 2 to 3,
LSTM, GRU, RNN and plain chains of 50 to 100 million units took 5 to 11 s; at load 5 to
7, 100 million took 22 to 64 s and 30 million 2 to 17 s. ``LAYOUT_LIMIT`` = 30 million
keeps every drawing the guard lets through within about 20 s and 100 MB on such a
machine, even busy (a quiet one takes a fraction of that): an LSTM of about 64 steps
in the ops view, a GRU of about 45, an RNN of about 170 (``models``).

``fit`` decides without drawing what cannot fit: one pass over the graph counts the
nodes each view must draw for each ``keep_steps`` (``Census``), and a drawing of n
nodes measures at least n x n. What may fit is drawn once and measured; each smaller
``keep_steps`` is predicted from that measure (it grows like the square of the nodes),
and the largest one predicted to fit is drawn to confirm it (unless the prediction
is far below the limit and only advice is asked for).
"""
import sys

import numpy as np

from ..tensor import Tensor, topological_order
from ..timesteps import step_of
from . import ops_view, rolled_view, steps_view
from .drawing import longest_path_ranks
from .style import RANKDIRS

VIEWS = {"ops": ops_view, "steps": steps_view, "rolled": rolled_view}
LAYOUT_LIMIT = 30_000_000  # the default of ``mg.viz.LAYOUT_LIMIT``, which fit reads
# A cluster costs dot nodes of its own (it is laid out as a unit, then expanded): a
# 2,000-step chain of four nodes a step, each step a cluster, took 35 s and 800 MB.
CLUSTER_COST = 4
KEEP_CHOICES = (16, 8, 4, 2, 1)  # the keep_steps fit tries, largest first
SLACK = 2  # a prediction is a guess: one up to twice the limit is drawn to find out
SURE = 32  # ...and one a 32nd of it is advice enough without drawing (the ops and steps
# views of LSTM, GRU and RNN graphs measure 4 to 22 times the census's node count squared)


def layout_size(drawing):
    """The guard's measure of a ``Drawing``: its nodes times the layout's size, nodes +
    edges + the chain nodes of edges spanning several ranks + CLUSTER_COST a cluster."""
    rank = longest_path_ranks(drawing.nodes, drawing.edges, settle=True)
    chains = sum(max(abs(rank[head] - rank[tail]) - 1, 0) for tail, head in drawing.edges)
    nodes = len(drawing.nodes)
    return nodes * (nodes + len(drawing.edges) + chains + CLUSTER_COST * drawing.clusters)


class Census:
    """How many tensors and ops a graph has inside each time step and outside them, from
    one pass over its topological order: what each view's ``min_nodes`` counts."""

    def __init__(self, order):
        self.outside = [0, 0]  # tensors, ops made outside every time step
        self.steps = {}  # layer scope -> {step number: [tensors, ops]}
        for tensor in order:
            layer, t = step_of(tensor.scope)
            counts = self.outside if layer is None else \
                self.steps.setdefault(layer, {}).setdefault(t, [0, 0])
            counts[0] += 1
            counts[1] += tensor.op is not None

    def kept(self, keep):
        """{layer: (the kept steps' [tensors, ops] lists, whether any step is hidden)}."""
        found = {}
        for layer, steps in self.steps.items():
            numbers = sorted(steps)
            if keep is not None and len(numbers) > 2 * keep:
                numbers = numbers[:keep] + numbers[len(numbers) - keep:]
            found[layer] = ([steps[t] for t in numbers], len(numbers) < len(steps))
        return found

    def changes(self, keep):
        """True when ``keep_steps=keep`` hides any step."""
        return any(len(steps) > 2 * keep for steps in self.steps.values())


def check(root, view, rankdir, keep_steps):
    """TypeError or ValueError naming what is wrong with the options every view shares."""
    if not isinstance(root, Tensor):
        raise TypeError(f"mg.viz needs the minigrad Tensor whose graph to draw (a loss, "
                        f"an output), got {type(root).__module__}.{type(root).__qualname__}"
                        .replace("builtins.", ""))
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(map(repr, VIEWS))}, got {view!r}")
    if rankdir is not None and rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)} or None, "
                         f"got {rankdir!r}")
    if keep_steps is not None and (isinstance(keep_steps, bool) or not isinstance(
            keep_steps, (int, np.integer)) or keep_steps < 1):
        raise ValueError(f"keep_steps must be a positive integer or None, got {keep_steps!r}")


def fit(root, view="ops", *, keep_steps=None, shrink=False, rankdir=None, order=None,
        **options):
    """The ``Drawing`` of ``root`` in ``view`` with ``keep_steps``, if dot can lay it out
    in reasonable time (``mg.viz.LAYOUT_LIMIT``; None turns the guard off).

    Otherwise, with ``shrink``, the drawing with the largest smaller ``keep_steps`` that
    fits (its ``keep_steps`` says which); without, or when none fits, ValueError saying
    which ``keep_steps`` would fit and which views to try. ``order``: the graph's
    topological order, when the caller has it already (one walk of the graph).
    """
    check(root, view, rankdir, keep_steps)
    module = VIEWS[view]
    order = order or topological_order(root)
    options.update(rankdir=rankdir or module.DEFAULT_RANKDIR, order=order)
    limit = sys.modules[__package__].LAYOUT_LIMIT  # the package's: the one users set
    if limit is None:
        drawing = module.draw(root, keep_steps=keep_steps, **options)
        drawing.keep_steps = keep_steps
        return drawing
    census = Census(order)
    measured = _Measured(root, module, census, limit, options)
    size, drawing = measured.size(keep_steps)
    if drawing is not None:
        return drawing
    fits = None
    for keep in KEEP_CHOICES:  # largest first; predicted sizes shrink with keep
        if (keep_steps is None or keep < keep_steps) and census.changes(keep) and \
                not module.KEEP_STEPS_IGNORED and measured.predict(keep) <= SLACK * limit:
            if not shrink and measured.predict(keep) * SURE <= limit:
                fits = keep  # advice only, and surely within the limit: nothing to draw
                break
            _, drawing = measured.size(keep)
            if drawing is not None:
                if shrink:
                    return drawing
                fits = keep
                break
    raise ValueError(_too_big(view, size, limit, fits, bool(census.steps),
                              drawn=keep_steps not in measured.bounds))


class _Measured:
    """The sizes of one view of a graph at several ``keep_steps``: measured where drawn,
    else predicted from the census."""

    def __init__(self, root, module, census, limit, options):
        self.root, self.module, self.census, self.limit = root, module, census, limit
        self.options = options
        self.known = {}
        self.bounds = set()  # the keep_steps whose size is the census's lower bound
        self.per_node_squared = 1.0  # measure / min_nodes ** 2 of the last drawing

    def size(self, keep):
        """(size, the drawing if it fits else None); a size that the nodes alone put
        over the limit is not drawn, and given as that lower bound."""
        nodes = self.module.min_nodes(self.census, keep)
        if nodes * nodes > self.limit:
            self.known[keep] = nodes * nodes
            self.bounds.add(keep)
            return nodes * nodes, None
        drawing = self.module.draw(self.root, keep_steps=keep, **self.options)
        drawing.keep_steps = keep
        size = layout_size(drawing)
        self.known[keep] = size
        self.per_node_squared = size / max(nodes * nodes, 1)
        return size, drawing if size <= self.limit else None

    def predict(self, keep):
        """The measure expected at ``keep``: the measured one, or the squared node count
        scaled like the last drawing's."""
        if keep in self.known:
            return self.known[keep]
        nodes = self.module.min_nodes(self.census, keep)
        return nodes * nodes * self.per_node_squared


def _too_big(view, size, limit, fits, has_steps, drawn):
    """The guard's message: what was too big, and what would fit."""
    advice = [f"keep_steps={fits} (draws the first and last {fits} time steps)"] if fits \
        else []
    if has_steps:
        advice += [f"view={other!r}" for other in VIEWS if other not in (view, "ops")]
    else:
        advice.append("a part of the graph (graph() of a tensor nearer the inputs), or "
                      "mg.viz.LAYOUT_LIMIT = None and render(..., 'x.dot') for the DOT "
                      "text alone")
    return (f"this {view} view is too big for Graphviz to lay out in reasonable time "
            f"(layout work {'' if drawn else 'at least '}{size:,} > limit {limit:,}: nodes "
            f"times nodes, edges and the ranks they span); draw " + " or ".join(advice))
