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
(statistics and a heatmap downsampled to at most ``MAX_CELLS`` x ``MAX_CELLS`` block
means, stored as 8-bit codes), so the page stays small whatever the batch size.
"""
import base64
import contextlib
import html
import json
import math
import os
import pathlib
import re

import numpy as np

from ..context import record_backward
from ..nn import Parameter
from ..tensor import topological_order
from ..timesteps import TimeSteps, step_of
from .files import write_atomically, run_dot
from .guard import VIEWS, fit
from .labels import shown
from .ops_view import _tensor_role
from .style import GRAD_SCALE, ROLES, log_range

MAX_CELLS = 24  # heatmaps: at most this many rows and columns of block means
HERE = pathlib.Path(__file__).parent


def explore(root, path, *, title=None):
    """Write the explorer of everything ``root`` depends on to ``path`` (.html); returns it.

    ``root`` is a one-element tensor, usually the loss, whose graph is still there (not
    released by a plain ``backward()``). The sweep is run here, with the graph retained;
    every tensor's ``.grad`` is put back as it was afterwards, so exploring never changes
    what an optimizer would see.
    """
    if pathlib.Path(path).suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"explore writes an HTML page: {os.fspath(path)!r} must end in .html")
    with recorded_sweep(root, "explore") as (order, sweep):
        data = page_data(root, order, sweep)
        views = {}
        for name in VIEWS:
            drawing = fit(root, name, shrink=True)
            views[name] = _svg(drawing.digraph, name)
            data["views"][name] = dict(_node_maps(drawing, order, root),
                                       keep_steps=drawing.keep_steps)
    if title is not None:
        data["title"] = shown(title)
    write_atomically(path, _page(data, views).encode("utf-8"))
    return path


@contextlib.contextmanager
def recorded_sweep(root, caller):
    """``(order, sweep)``: the topological order of ``root``'s graph and the backward
    sweep the engine runs from ``root``, recorded by ``mg.record_backward``.

    The graph is retained, and every tensor's ``.grad`` is put back as it was when the
    block ends, so that a picture of the sweep changes nothing an optimizer would see.
    """
    if root.data.size != 1:
        raise ValueError(f"{caller} needs a one-element root (a loss) to start the backward "
                         f"sweep from, got a tensor of shape {root.shape}")
    if not root.requires_grad:
        raise ValueError(f"{caller} needs a root that requires grad: nothing in its "
                         "computation has requires_grad=True, so there is no sweep to show")
    order = topological_order(root)
    saved = [t.grad for t in order]
    try:
        for t in order:
            t.grad = None
        with record_backward() as sweep:
            root.backward(retain_grads=True)
        yield order, list(sweep)
    finally:
        for t, grad in zip(order, saved):
            t.grad = grad


# -- the data -----------------------------------------------------------------------------

def page_data(root, order, sweep):
    """Everything the page's script needs, as JSON-ready lists and dicts.

    ``sweep`` holds the entries of ``mg.record_backward`` in the order the engine ran
    them. Tensors are referred to by their position in ``order`` (``topological_order``),
    which is also how the drawings name their nodes.
    """
    position = {id(t): i for i, t in enumerate(order)}
    steps, done = [], {}
    running = {}  # leaf index -> sum of the contributions so far (float64)
    by_step = {}  # (leaf index, step label) -> sum of that step's contributions so far
    # leaf index -> [[sweep step, step label, norm of that step's sum so far,
    #                 summary of the sum so far, summary of this contribution]]
    arrivals = {}
    for k, entry in enumerate(sweep):
        index = position[id(entry.tensor)]
        done[index] = k
        label = _step_label(entry.tensor.scope)
        inputs, received = [], {}
        for tensor, grad in entry.input_grads:
            i = position[id(tensor)]
            if grad is None:
                continue
            grad = np.asarray(grad, dtype=np.float64)
            inputs.append([i, _number(_norm(grad))])
            if tensor.op is None:  # a leaf: it holds the sum of what it received so far
                received[i] = received[i] + grad if i in received else grad
        for i, grad in received.items():
            running[i] = running[i] + grad if i in running else grad
            by_step[i, label] = by_step[i, label] + grad if (i, label) in by_step else grad
            arrivals.setdefault(i, []).append(
                [k, label, _number(_norm(by_step[i, label])), summary(running[i]),
                 summary(grad)])
        steps.append({"tensor": index, "norm": _number(_norm(entry.grad)), "inputs": inputs,
                      "label": label})

    grads = {position[id(e.tensor)]: e.grad for e in sweep}
    tensors = []
    for i, t in enumerate(order):
        record = {
            "name": None if t.name is None else shown(t.name), "scope": shown(t.scope),
            "shape": list(t.shape), "dtype": str(t.dtype),
            "role": _tensor_role(t, root), "leaf": t.op is None,
            "op": None if t.op is None else t.op.label,
            "detail": None if t.op is None else (t.op.detail() or None),
            "value": summary(t.data),
        }
        if t.op is not None:
            record["done"] = done.get(i)
            record["grad"] = summary(grads[i]) if i in grads else None
        else:
            record["arrivals"] = arrivals.get(i, [])
        tensors.append(record)

    # The fill scale spans every norm the timeline shows: complete gradients, and the
    # leaves' sums so far (non-finite norms take the darkest colour, outside the range).
    norms = [s["norm"] for s in steps]
    norms += [a[3]["norm"] for rows in arrivals.values() for a in rows]
    finite = [n for n in norms if isinstance(n, float)]
    grad_range = log_range(finite) or (0.0, 0.0)
    return {
        "title": None, "tensors": tensors, "sweep": steps,
        "parameters": [i for i, t in enumerate(order) if isinstance(t, Parameter)]
                      or [i for i, t in enumerate(order) if t.op is None and t.requires_grad],
        "states": _state_series(root, order, done),
        "scale": list(GRAD_SCALE), "range": list(grad_range),
        "roles": {role: border for role, (_, border) in ROLES.items()},
        "views": {}, "start_view": "steps",  # the overview, when the graph has steps
    }


def summary(array):
    """Statistics and a downsampled heatmap of ``array``: what the page shows of a tensor.

    Heatmap cells are block means, coded as signed bytes on a scale symmetric around 0
    (``scale`` is the largest magnitude); -128 marks a cell that is not finite.
    """
    a = np.asarray(array, dtype=np.float64)
    if a.size == 0:
        return {"min": None, "max": None, "mean": None, "norm": 0.0, "heat": None}
    stats = {"min": _number(a.min()), "max": _number(a.max()), "mean": _number(a.mean()),
             "norm": _number(_norm(a))}
    grid = a.reshape(1, 1) if a.ndim == 0 else a.reshape(1, -1) if a.ndim == 1 \
        else a.reshape(-1, a.shape[-1])
    grid = _block_means(_block_means(grid, 0), 1)
    finite = np.isfinite(grid)
    scale = float(np.abs(grid[finite]).max()) if finite.any() else 0.0
    codes = np.full(grid.shape, -128, dtype=np.int8)
    if scale > 0:
        codes[finite] = np.rint(grid[finite] / scale * 127).astype(np.int8)
    else:
        codes[finite] = 0
    stats["heat"] = {"rows": grid.shape[0], "cols": grid.shape[1], "scale": scale,
                     "codes": base64.b64encode(codes.tobytes()).decode("ascii")}
    return stats


def _block_means(grid, axis):
    """``grid`` with ``axis`` cut into at most MAX_CELLS nearly equal blocks, averaged."""
    n = grid.shape[axis]
    if n <= MAX_CELLS:
        return grid
    edges = np.linspace(0, n, MAX_CELLS + 1).astype(int)
    sums = np.add.reduceat(grid, edges[:-1], axis=axis)
    counts = np.diff(edges).reshape((-1, 1) if axis == 0 else (1, -1))
    return sums / counts


def _norm(a):
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64).ravel()))


def _number(x):
    """A float for JSON; 'nan', 'inf' or '-inf' as strings, which JSON cannot hold."""
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _step_label(scope):
    """'t3' for a tensor made in time step 3 (of any layer), None outside time steps."""
    _, step = step_of(scope)
    return None if step is None else f"t{step}"


def _state_series(root, order, done):
    """The recurrent state of each layer, per time step: what dLoss/dh_t is taken of.

    ``minigrad.timesteps`` finds it from the graph (what step t hands to step t + 1),
    the same tensors ``mg.step_grad_norms`` measures. Returns one series per state key
    ('lstm/l0/h'): [{"layer", "name", "points": [[t, tensor index, sweep step]]}].
    """
    structure = TimeSteps(root)
    position = {id(t): i for i, t in enumerate(order)}
    series = {}
    for layer, steps in structure.layers.items():
        for step in steps:
            state = structure.state_of(step)
            for key, tensor in zip(structure.state_keys(step, state), state):
                i = position[id(tensor)]
                entry = series.setdefault(key, {"layer": layer, "name": key.rsplit("/", 1)[-1],
                                                "points": []})
                entry["points"].append([step.t, i, done.get(i)])
    return list(series.values())


# -- the drawings -------------------------------------------------------------------------

def _node_maps(drawing, order, root):
    """How the script finds a tensor in one drawing, indexed like ``order``:
    "tensor": the node id standing for each tensor (or None), "op": that of the op that
    made it, "edges": [tail, head, label, tensor index] for edges that carry a tensor.

    The ops view names its nodes after positions in ``order`` (``v7``, ``op7``). The
    other views say what each node stands for in ``drawing.meanings``: a node listing
    "tensors" stands for those (a time step, the root). There, a parameter is found in
    its layer's header, the ops after the steps in the root's node, and each state
    tensor on the edge that carries it from its step to the next.
    """
    meanings = drawing.meanings
    if not meanings:
        return {"tensor": [f"v{i}" for i in range(len(order))],
                "op": [None if t.op is None else f"op{i}" for i, t in enumerate(order)],
                "edges": []}
    nodes = [None] * len(order)
    for node, meaning in meanings.items():
        for i in meaning.get("tensors", ()):
            nodes[i] = node
    structure = TimeSteps(root)
    position = {id(t): i for i, t in enumerate(order)}
    headers = {m["layer"]: node for node, m in meanings.items() if m.get("kind") == "layer"}
    for node, meaning in meanings.items():  # steps left out by keep_steps: their marker
        if meaning.get("kind") == "hidden":
            for step in structure.layers.get(meaning["layer"], ()):
                if step.t in meaning["t"]:
                    for tensor in step.tensors:
                        nodes[position[id(tensor)]] = nodes[position[id(tensor)]] or node
    step_node = {}
    for layer, steps in structure.layers.items():
        for step in steps:
            step_node[id(step)] = nodes[position[id(step.tensors[0])]]
            for tensor in step.inputs:
                if isinstance(tensor, Parameter) and layer in headers:
                    nodes[position[id(tensor)]] = nodes[position[id(tensor)]] or headers[layer]
    if "root" in meanings and structure.steps:
        first = min(t.serial for step in structure.steps for t in step.tensors)
        for i, t in enumerate(order):
            if nodes[i] is None and t.op is not None and t.serial > first \
                    and id(t) not in structure.step_at:
                nodes[i] = "root"
    edges = []
    whole_steps = any(m.get("kind") == "step" for m in meanings.values())
    for step in structure.steps if whole_steps else ():
        tail, head = step_node.get(id(step.prev)) if step.prev else None, step_node[id(step)]
        if tail is not None and head is not None:
            edges += [[tail, head, shown(t.name) if t.name is not None else t.op.label,
                       position[id(t)]] for t in step.state_in]
    return {"tensor": nodes, "op": [None if t.op is None else nodes[i]
                                    for i, t in enumerate(order)], "edges": edges}


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

def _page(data, views):
    """The HTML text: the template with the styles, drawings, data and script filled in."""
    template = (HERE / "explorer.html").read_text(encoding="utf-8")
    # Inside <script>, "</script" ends the element and "<!--" followed by "<script"
    # changes how the HTML parser reads the rest: with every "<" written as the JSON
    # escape \u003c, no tensor name can do either.
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    drawings = "\n".join(f'<div class="drawing" data-view="{html.escape(name)}" hidden>\n'
                         f'{svg}\n</div>' for name, svg in views.items())
    title = data["title"] or "The backward sweep, step by step"
    parts = {"TITLE": html.escape(title), "CSS": (HERE / "explorer.css").read_text("utf-8"),
             "DRAWINGS": drawings, "DATA": payload,
             "SCRIPT": (HERE / "explorer.js").read_text("utf-8")}
    return re.sub(r"@@(TITLE|CSS|DRAWINGS|DATA|SCRIPT)@@", lambda m: parts[m.group(1)],
                  template)
