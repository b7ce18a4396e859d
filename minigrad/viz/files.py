"""Writing a drawing to a file: the one place that runs Graphviz's ``dot``, and the guard
that keeps it from being handed a graph it cannot lay out in reasonable time."""
import os
import pathlib
import re
import shutil
import subprocess

from ..atomic import replacing
from .style import longest_path_ranks


class _Formats(dict):
    def check(self, path):
        """The format for ``path``'s suffix; ValueError naming the path if unknown."""
        suffix = pathlib.Path(path).suffix.lower()
        if suffix not in self:
            raise ValueError(f"cannot render to {os.fspath(path)!r}: unknown suffix "
                             f"{suffix or '(none)'!r}; use one of {', '.join(self)}")
        return self[suffix]


FORMATS = _Formats({".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot"})


def _write_atomically(path, data):
    """Write ``data`` to ``path`` the way checkpoints are written (``minigrad.atomic``):
    complete or not at all, through a symbolic link, errors naming ``path``."""
    with replacing(path, "render") as f:
        f.write(data)


MISSING_DOT = ("Graphviz's 'dot' program is needed to write {suffix} files but was not "
               "found on PATH. Install it (Debian/Ubuntu: apt-get install graphviz; "
               "macOS: brew install graphviz; conda: conda install graphviz), or write "
               "a .dot file instead, which needs no Graphviz.")
DOT_TIMEOUT = 600  # seconds; the guard keeps what it lets through far below this


def run_dot(source, fmt, suffix=None):
    """The bytes of ``source`` (DOT text) laid out by ``dot -T<fmt>``.

    RuntimeError when dot is missing (saying how to install it), fails (with the first
    lines of what it printed), or runs longer than DOT_TIMEOUT.
    """
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(MISSING_DOT.format(suffix=suffix or "." + fmt))
    try:
        done = subprocess.run([dot, f"-T{fmt}"], input=source.encode("utf-8"),
                              capture_output=True, timeout=DOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"Graphviz's dot did not finish laying out the graph within "
                           f"{DOT_TIMEOUT} s and was stopped; draw fewer time steps "
                           f"(keep_steps=) or another view (view='steps')") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        shown = "\n  ".join(said[:6]) + ("\n  ..." if len(said) > 6 else "")
        how = (f"exit status {done.returncode}" if done.returncode > 0 else
               f"killed by signal {-done.returncode}")
        raise RuntimeError(f"Graphviz's dot failed on this graph ({how}); it said:\n  "
                           f"{shown or '(nothing)'}")
    return done.stdout


def render_source(drawing, path):
    """Write ``drawing`` (a ``graphviz.Digraph``) to ``path`` in the suffix's format."""
    fmt = FORMATS.check(path)
    if fmt == "dot":
        data = drawing.source.encode("utf-8")
    else:
        data = run_dot(drawing.source, fmt, pathlib.Path(path).suffix.lower())
    _write_atomically(path, data)
    return path


# -- the guard ----------------------------------------------------------------------------
# dot places every node, and every edge that spans k ranks is laid out as a chain of
# k - 1 invisible nodes: the layout's size is nodes + edges + those chain nodes (ranks
# estimated by the longest path from the sources, then each node that gains by it settled
# just above its nearest user, as dot's ranking would). Its bounded network simplex
# (``nslimit``) then makes up to one pass over that whole layout per node, so its work
# grows like nodes x size. Measured on LSTM, GRU and RNN graphs in the ops view
# (benchmarks/viz.py, a busy 2-core machine): 40 to 85 ns per unit of that product, and
# about 5 KB of memory per unit of size; unguarded, a 500-step LSTM once took 6 GB of
# memory within a minute. LAYOUT_LIMIT keeps every drawing within about 20 s and 500 MB:
# an LSTM of about 180 steps, a GRU of 220, a hand-written RNN of 750.
LAYOUT_LIMIT = 250_000_000
# A cluster costs dot nodes of its own (it is laid out as a unit, then expanded): a
# 2,000-step chain of four nodes a step, each step a cluster, took 35 s and 800 MB.
CLUSTER_COST = 4

_NODE = re.compile(r"\s*(\w+) \[")
_EDGE = re.compile(r"\s*(\w+)(?::\w+)? -> (\w+)(?::\w+)?")


def layout_size(drawing):
    """The work the guard measures for a ``graphviz.Digraph`` written by one of the
    views: its nodes (one statement ``id [...]`` each) times the layout's size, nodes +
    edges (``tail -> head``) + the chain nodes of edges spanning several ranks +
    CLUSTER_COST per cluster."""
    nodes, edges, clusters = [], [], 0
    for line in drawing.body:
        clusters += "subgraph cluster_" in line
        for statement in line.split(";"):
            edge = _EDGE.match(statement)
            if edge:
                edges.append(edge.groups())
            elif _NODE.match(statement):
                nodes.append(_NODE.match(statement).group(1))
    rank = longest_path_ranks(nodes, edges, settle=True)
    chains = sum(max(abs(rank[head] - rank[tail]) - 1, 0) for tail, head in edges)
    return len(nodes) * (len(nodes) + len(edges) + chains + CLUSTER_COST * clusters)
