"""The graph explorer: one HTML file that replays the backward sweep in a browser.

A static drawing shows how large each gradient ended up. The explorer shows how it got
there: ``explore`` runs the backward sweep once under ``mg.record_backward()``, keeps the
order in which the engine ran each op's backward and the gradients it produced, and
writes a page whose timeline replays that order over the drawings of the graph. Step k
of the timeline is the state right after the k-th op's backward ran: that op is
highlighted, every tensor whose gradient is complete is filled by its gradient norm, and
each leaf (a parameter, the input) shows the sum of the contributions it received so
far, one per time step, arriving last step first.

The page is one file and needs nothing from the network: the SVGs come from Graphviz's
``dot`` and are inlined, the data is one JSON block, and the script and styles are the
package's own ``explorer.js`` and ``explorer.css``. Large tensors are summarised
(statistics and a heatmap downsampled to at most ``sweep.MAX_CELLS`` x ``MAX_CELLS``
block means, stored as 8-bit codes), so the page stays small whatever the batch size.
"""
import html
import json
import os
import pathlib
import re

from .files import run_dot, write_atomically
from .guard import VIEWS, fit
from .labels import shown
from .style import GRAD_SCALE, ROLES
from .sweep import record, sweep_order

HERE = pathlib.Path(__file__).parent


def explore(root, path, *, title=None):
    """Write the explorer of everything ``root`` depends on to ``path`` (.html); returns it.

    ``root`` is a one-element tensor, usually the loss, whose graph is still there (not
    released by a plain ``backward()``). The sweep is run here, with the graph retained;
    every tensor's ``.grad`` is put back as it was afterwards, so exploring never changes
    what an optimizer would see. A view too big for dot to lay out draws the first and
    last time steps that fit (``guard.fit``); the timeline still covers the whole sweep.
    """
    if pathlib.Path(path).suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"explore writes an HTML page: {os.fspath(path)!r} must end in .html")
    order = sweep_order(root, "explore")
    fitted = {name: fit(root, name, shrink=True, order=order) for name in VIEWS}  # or refuse
    data = page_data(record(root, "explore", order), title)
    drawings = {}
    for name, drawing in fitted.items():
        drawings[name] = _svg(drawing.digraph, name)
        data["views"][name] = {"tensor": drawing.node_of, "op": drawing.op_node_of,
                               "edges": drawing.state_edges,
                               "keep_steps": drawing.keep_steps}
    write_atomically(path, _page(data, drawings).encode("utf-8"))
    return path


def page_data(sweep, title=None):
    """Everything the page's script needs from ``sweep``, as JSON-ready lists and dicts
    (``explorer.js`` says how it reads them); the drawings' maps go in "views"."""
    return {
        "title": None if title is None else shown(title),
        "tensors": [record.page() for record in sweep.tensors],
        "sweep": [{"tensor": e.tensor, "norm": e.norm, "inputs": e.inputs, "label": e.step}
                  for e in sweep.entries],
        "parameters": sweep.parameters, "states": sweep.states,
        "scale": list(GRAD_SCALE), "range": list(sweep.grad_range),
        "roles": {role: border for role, (_, border) in ROLES.items()},
        "views": {}, "start_view": "steps",  # the overview, when the graph has steps
    }


# -- the drawings -------------------------------------------------------------------------

_LEGEND = re.compile(r'<g id="node\d+" class="node">\s*<title>legend</title>.*?</g>\s*',
                     re.DOTALL)


def _svg(drawing, view):
    """The SVG of ``drawing`` laid out by ``dot``, ready to inline: no XML prolog, no
    legend (the page draws its own), element ids prefixed by the view's name so that
    several drawings can share one page."""
    svg = run_dot(drawing.source, "svg", ".html").decode("utf-8")
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.DOTALL)
    svg = _LEGEND.sub("", svg)
    return re.sub(r'\bid="', f'id="{view}-', svg)


# -- the page -----------------------------------------------------------------------------

def _page(data, drawings):
    """The HTML text: the template with the styles, drawings, data and script filled in."""
    template = (HERE / "explorer.html").read_text(encoding="utf-8")
    # Inside <script>, "</script" ends the element and "<!--" followed by "<script"
    # changes how the HTML parser reads the rest: with every "<" written as the JSON
    # escape \u003c, no tensor name can do either.
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    divs = "\n".join(f'<div class="drawing" data-view="{html.escape(name)}" hidden>\n'
                     f'{svg}\n</div>' for name, svg in drawings.items())
    title = data["title"] or "The backward sweep, step by step"
    parts = {"TITLE": html.escape(title), "CSS": (HERE / "explorer.css").read_text("utf-8"),
             "DRAWINGS": divs, "DATA": payload,
             "SCRIPT": (HERE / "explorer.js").read_text("utf-8")}
    return re.sub(r"@@(TITLE|CSS|DRAWINGS|DATA|SCRIPT)@@", lambda m: parts[m.group(1)],
                  template)
