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
from .animation import animate
from .explorer import explore
from .files import FORMATS, render_source
from .guard import LAYOUT_LIMIT, VIEWS, fit, layout_size  # noqa: F401  (for users and tests)
from .style import ROLES  # noqa: F401  (the colours, for users and tests)

__all__ = ["graph", "render", "explore", "animate", "VIEWS", "LAYOUT_LIMIT"]


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
    Graphviz to lay out in about 20 s on a busy 2-core machine (more than about 64 LSTM
    steps in the ops view; ``minigrad.viz.guard``) raises ValueError before ``dot`` ever
    sees it, within a second, saying which ``keep_steps=`` would fit and which views to
    try. To get the
    DOT text of such a graph anyway (for another tool), set
    ``mg.viz.LAYOUT_LIMIT = None``.
    """
    return fit(root, view, show_shapes=show_shapes, show_grads=show_grads, rankdir=rankdir,
               cluster_scopes=cluster_scopes, keep_steps=keep_steps, title=title).digraph


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
