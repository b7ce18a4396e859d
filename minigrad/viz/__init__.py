"""Drawing computation graphs with Graphviz.

``graph(root, view=...)`` turns everything ``root`` depends on into a
``graphviz.Digraph``, in one of three views of the same graph:

- ``"ops"``: every primitive op and tensor, the unrolled graph in full (``ops_view``);
- ``"steps"``: each time step one node, the textbook unrolled chain (``steps_view``);
- ``"rolled"``: one step's ops drawn once, the recurrence as back-edges (``rolled_view``).

The DOT text is the product and is built line by line by the views, so that it is the
same on every run. ``render`` is the thin step that hands that text to Graphviz's ``dot``.

Two pictures of the backward sweep itself, recorded with ``mg.record_backward``:
``explore`` writes one offline HTML page that replays it op by op over the three views
(``explorer``), and ``animate`` a GIF of it on the steps view, one frame per time step
(``animation``).
"""
import numpy as np

from . import ops_view, rolled_view, steps_view
from .animation import animate
from .explorer import explore
from ..tensor import Tensor
from .files import FORMATS, LAYOUT_LIMIT, layout_size, render_source
from .style import RANKDIRS, ROLES  # noqa: F401  (ROLES: the colours, for users and tests)

__all__ = ["graph", "render", "explore", "animate", "VIEWS"]

VIEWS = {"ops": ops_view, "steps": steps_view, "rolled": rolled_view}


def graph(root, *, view="ops", show_shapes=True, show_grads=False, rankdir=None,
          cluster_scopes=True, keep_steps=None, title=None):
    """The computation graph of everything ``root`` depends on, as a ``graphviz.Digraph``.

    view            "ops" (every op and tensor), "steps" (one node per time step) or
                    "rolled" (one step drawn once, recurrent tensors as back-edges).
    show_shapes     put each tensor's shape in its label.
    show_grads      colour by log10 of gradient norms (pale small, dark red large; the
                    legend states the range). Needs ``root.backward(retain_grads=True)``.
    rankdir         where the arrows point: "LR", "TB", "BT" or "RL"; None lets the
                    view pick its natural direction.
    cluster_scopes  draw each ``mg.scope`` as a dashed, labelled box (ops view).
    keep_steps      draw only the first and last ``keep_steps`` time steps of each
                    layer; the steps in between become one marked box.
    title           a caption at the top.

    The options are described in full in each view's module. A drawing too big for
    Graphviz to lay out in reasonable time (more than about 180 LSTM steps in the ops
    view: ``files.LAYOUT_LIMIT``) raises ValueError before ``dot`` ever sees it, saying
    which ``keep_steps=`` would fit and suggesting ``view="steps"``. To get the DOT
    text of such a graph anyway (for another tool), set ``mg.viz.LAYOUT_LIMIT = None``.
    """
    drawing = _draw(root, view, show_shapes=show_shapes, show_grads=show_grads,
                    rankdir=rankdir, cluster_scopes=cluster_scopes, keep_steps=keep_steps,
                    title=title)
    if LAYOUT_LIMIT is not None:
        size = layout_size(drawing)
        if size > LAYOUT_LIMIT:
            raise ValueError(_too_big(root, view, size, keep_steps, dict(
                show_shapes=show_shapes, show_grads=show_grads, rankdir=rankdir,
                cluster_scopes=cluster_scopes, title=title)))
    return drawing


def _draw(root, view, *, rankdir, keep_steps, **options):
    """The view's drawing, after checking the options every view shares."""
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
    module = VIEWS[view]
    return module.draw(root, rankdir=rankdir or module.DEFAULT_RANKDIR,
                       keep_steps=keep_steps, **options)


def _too_big(root, view, size, keep_steps, options):
    """The guard's message: what was too big, and the options that would fit."""
    fits = None
    for keep in (16, 8, 4, 2, 1):
        if (keep_steps is None or keep < keep_steps) and layout_size(
                _draw(root, view, keep_steps=keep, **options)) <= LAYOUT_LIMIT:
            fits = keep
            break
    advice = [f"keep_steps={fits} (draws the first and last {fits} time steps)"] if fits \
        else []
    advice += [f"view={other!r}" for other in ("steps", "rolled") if other != view
               and other in VIEWS]
    return (f"this {view} view is too big for Graphviz to lay out in reasonable time "
            f"(layout work {size:,} > limit {LAYOUT_LIMIT:,}: nodes times nodes, edges "
            f"and the ranks they span); draw less of it with "
            + " or ".join(advice or ["keep_steps=1"]))


def render(root, path, **options):
    """Draw ``graph(root, **options)`` into ``path``; the suffix picks the format.

    ``.dot`` writes the DOT source and needs nothing else; ``.svg``, ``.png`` and
    ``.pdf`` run Graphviz's ``dot`` (directly, without a shell) and raise RuntimeError
    explaining how to install it when it is missing, or with what dot said when it
    fails. The file is written atomically (through a symbolic link, as ``open`` does).
    Returns ``path``.
    """
    FORMATS.check(path)
    return render_source(graph(root, **options), path)
