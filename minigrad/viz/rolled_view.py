"""The "rolled" view: one time step's ops drawn once, the recurrence as back-edges.

This is the folded diagram of the textbooks, derived from the real graph. The steps of
each layer (found by ``minigrad.timesteps``) are grouped into runs of consecutive steps
with the same structure (the same ops, names and wiring, see ``Step.signature``); each
run is drawn once, as its first step, in a box labelled with the steps it stands for
("t1 ... t7, 7 steps"). Parameters and everything made outside the steps are drawn once.
A tensor one step hands to the next of the same run (``h``, ``c``) becomes a back-edge
from where it is made to where the next step uses it, labelled with how many times it
passes ("h x6": from t1 to t2, ..., t6 to t7). A first step that reads its initial
state (``h0``) from outside, where the others read the previous step's, is drawn with
them, and the edge from ``h0`` says which step uses it ("t0"). Steps whose structure
differs otherwise are never merged silently: a first step fed with zeros that need no gradient records fewer ops
than the steps after it, so it is drawn as a run of its own, with its state entering
the next run by an edge coloured like the back-edges (runs of one layer are drawn one
below the other, in time order).

Each node is one tensor together with the op that made it ("i" above "sigmoid"), so a
step of an LSTM is about fifteen nodes. Edges into an op whose operand order matters
(subtract, divide, matmul, where, concat ...) are named by operand (a, b or 0, 1, ..., as
in the ops view, from the op class). Edges standing for several uses are labelled "xN".
With ``show_grads`` a node is filled by the largest gradient norm among the tensors it
stands for (the legend states the log scale), and each back-edge states the range of
the gradient norms of the tensors it carries.

A graph without ``t<number>`` scopes has no steps to fold; it is drawn in the ops view
instead, with a caption saying so.

Node ids (the ``Drawing``'s ``meanings`` map each to what it stands for):

- ``r{run}_{k}``  the k-th tensor (in creation order) of every step of run number ``run``
                  (runs counted layer by layer, in time order);
- ``v{index}``    a tensor made outside every step; ``index`` is its place in the
                  topological order, as in the ops view;
- ``legend``.
"""
import math
import re


from ..nn import Parameter
from ..timesteps import same_entry
from . import ops_view
from .drawing import Drawing
from .labels import attrs, quoted
from .style import (EDGE_GREY, MAX_DETAIL, ROLES, digraph, grad_colour,
                    grad_norm, is_dark, listed, log_range, operand_names, scale_legend,
                    shape_text, short_name, tensor_role)

DEFAULT_RANKDIR = "TB"
KEEP_STEPS_IGNORED = True  # every step is folded into its run already

NODE_STYLE = {"shape": "box", "style": "rounded,filled", "fontsize": "9", "height": "0.2",
              "margin": "0.06,0.03"}
RUN_STYLE = {"style": "dashed,rounded", "color": "#737373", "fontsize": "11",
             "labeljust": "l"}
LAYER_STYLE = {"style": "rounded", "color": "#bdbdbd", "fontsize": "12", "labeljust": "l"}
BACK_COLOUR = "#d94801"


def same_fold(a, b):
    """True when steps ``a`` and ``b`` are drawn as one: equal signatures, but for one
    allowed difference, an input that one step reads from outside every step where the
    other reads the previous step's state (a first step reading ``h0``, marked on its
    edge). Everything else, ops, names, the rest of the wiring, must be equal."""
    return len(a.signature) == len(b.signature) and all(
        same_entry(x, y) for x, y in zip(a.signature, b.signature))


def runs_of(steps):
    """The steps of one layer as runs of consecutive steps drawn as one (``same_fold``)."""
    runs = []
    for step in steps:
        if runs and same_fold(runs[-1][-1], step):
            runs[-1].append(step)
        else:
            runs.append([step])
    return runs


def _difference(step, typical, is_typical):
    """Why a run is drawn apart from the layer's longest run (whose first step is
    ``typical``): 'same structure' for the longest run itself, else what differs."""
    if is_typical or same_fold(step, typical):
        return "same structure"
    ops = sum(t.op is not None for t in step.tensors)
    usual = sum(t.op is not None for t in typical.tensors)
    if ops != usual:
        return f"{ops} ops, not {usual} as in t{typical.t}"
    return f"other ops or wiring than t{typical.t}"


def _common_detail(tensors, steps):
    """The op detail shared by the tensors at one place of a run's steps: as it is when
    equal, with the step number written 't' when only that changes ('[:, t, :]'),
    else '' (it varies otherwise)."""
    details = [t.op.detail() for t in tensors]
    if all(d == details[0] for d in details):
        return details[0]
    generic = {re.sub(rf"(?<![\w.]){s.t}(?![\w.])", "t", d) for d, s in zip(details, steps)}
    return generic.pop() if len(generic) == 1 else ""


def _label(tensor, detail, show_shapes, separator):
    """'name / op detail' and the shape, or the value of a one-element constant."""
    parts = []
    if tensor.name is not None:
        parts.append(str(tensor.name))
    if tensor.op is not None:
        op = tensor.op.label
        if detail and len(detail) <= MAX_DETAIL:
            op += separator + detail
        parts.append(op)
    elif tensor.name is None:
        parts.append(f"{tensor.data.item():.4g}" if tensor.data.size == 1 else "input")
    if show_shapes and tensor.data.size > 1:
        parts.append(shape_text(tensor.shape))
    return "\\n".join(quoted(p) for p in parts)


def _run(node):
    """The run number in a node id 'r3_7', None for 'v12'."""
    return int(node[1:node.index("_")]) if node.startswith("r") else None


def _largest(norms):
    """The largest of the norms (None for none), or the NaN or infinity among them:
    that must show, and ``max`` would return or skip a NaN depending on where it is."""
    values = [n for n in norms if n is not None]
    odd = [n for n in values if not math.isfinite(n)]
    return odd[0] if odd else max(values, default=None)


def _norm_range(norms):
    """'|grad| 0.1 ... 2.3' over the finite norms, then any nan and inf among them."""
    values = [n for n in norms if n is not None]
    finite = [n for n in values if math.isfinite(n)]
    odd = sorted({str(n) for n in values if not math.isfinite(n)})
    parts = []
    if finite:
        low, high = min(finite), max(finite)
        parts.append(f"{low:.2g}" if low == high else f"{low:.2g} ... {high:.2g}")
    return f"|grad| {', '.join(parts + odd)}" if values else ""


def draw(root, *, show_shapes=True, show_grads=False, rankdir=DEFAULT_RANKDIR,
         cluster_scopes=True, keep_steps=None, title=None, order=None):
    """The folded graph of ``root``: each run of same-structure steps drawn once.

    Options (as for ``mg.viz.graph``):
      show_shapes     each tensor's shape in its node.
      show_grads      fill nodes by log10 of the largest gradient norm they stand for,
                      and state the range on back-edges. Needs
                      ``root.backward(retain_grads=True)``.
      rankdir         "TB" (default), "LR", "BT" or "RL".
      cluster_scopes  ignored: the boxes are the layers and the runs of steps.
      keep_steps      ignored: every step is already folded into its run.
      title           a caption at the top.

    Returns a ``Drawing`` whose ``meanings`` say what each node stands for (see the
    module docstring):
    {"kind": "step tensor", "layer": "l0", "t": [steps], "tensors": [indices in the
    topological order, one per step]} or {"kind": "tensor", "tensors": [index]}. A
    graph without ``t<number>`` scopes is drawn in the ops view.
    """
    structure, instead = ops_view.time_steps_for("rolled", root, dict(
        show_shapes=show_shapes, show_grads=show_grads, rankdir=rankdir,
        cluster_scopes=cluster_scopes, keep_steps=keep_steps, title=title, order=order))
    if instead is not None:
        return instead
    order = structure.order
    index = {id(t): i for i, t in enumerate(order)}
    separator = "\\n" if rankdir in ("LR", "RL") else " "

    # Every tensor's node: the same place in its run's first step, or its own.
    node_of, run_of, members = {}, {}, {}
    runs = []  # (layer, [steps])
    for layer, steps in structure.layers.items():
        for run in runs_of(steps):
            r = len(runs)
            runs.append((layer, run))
            for step in run:
                run_of[id(step)] = r
                for k, tensor in enumerate(step.tensors):
                    node = f"r{r}_{k}"
                    node_of[id(tensor)] = node
                    members.setdefault(node, []).append(tensor)
    for i, tensor in enumerate(order):
        if id(tensor) not in node_of:
            node_of[id(tensor)] = f"v{i}"
            members[f"v{i}"] = [tensor]

    norms = {node: _largest(map(grad_norm, tensors))
             for node, tensors in members.items()} if show_grads else {}
    grad_range = log_range(norms.values()) if show_grads else None

    # Edges: (tail, head, operand) -> [back-edge?, tensors carried, steps of the head]
    edges = {}
    for tensor in order:
        if tensor.op is None:
            continue
        head = node_of[id(tensor)]
        tails = [node_of[id(parent)] for parent in tensor.op.inputs]
        names = operand_names(tensor.op)  # named when the order matters, as in the ops view
        if not (names and names[0]) or len(set(tails)) < len(tails):
            names = [""] * len(tails)
        here = structure.step_at.get(id(tensor))
        for p, (tail, parent) in enumerate(zip(tails, tensor.op.inputs)):
            there = structure.step_at.get(id(parent))
            back = (here is not None and there is not None and there is not here
                    and run_of[id(here)] == run_of[id(there)])
            entry = edges.setdefault((tail, head, names[p]), [back, [], []])
            entry[1].append(parent)
            entry[2].append(here)

    # Nodes, in their boxes.
    meaning, has_no_grad, roles = {}, False, set()
    boxes = {r: [] for r in range(len(runs))}
    outside = []
    for node, tensors in members.items():
        first = tensors[0]
        if node.startswith("r"):
            r = int(node[1:node.index("_")])
            steps = runs[r][1]
            detail = _common_detail(tensors, steps) if first.op is not None else ""
        else:
            detail = first.op.detail() if first.op is not None else ""
        role = tensor_role(first, root) if len(tensors) == 1 or first.op is not None else "input"
        roles.add(role)
        fill, border = ROLES[role]
        attributes = {"label": _label(first, detail, show_shapes, separator), **NODE_STYLE,
                      "fillcolor": fill, "color": border}
        if first.op is None:
            attributes["style"] = "filled"
        if show_grads:
            colour = grad_colour(norms.get(node), grad_range)
            attributes["penwidth"] = "2"
            attributes["fillcolor"] = colour or "#ffffff"
            has_no_grad |= colour is None
            if colour and is_dark(colour):
                attributes["fontcolor"] = "#ffffff"
        line = f"{node} {attrs(attributes)}"
        if node.startswith("r"):
            boxes[r].append(line)
            meaning[node] = {"kind": "step tensor", "layer": runs[r][0],
                             "t": [s.t for s in runs[r][1]],
                             "tensors": [index[id(t)] for t in tensors]}
        else:
            outside.append(line)
            meaning[node] = {"kind": "tensor", "tensors": [index[id(first)]]}

    body = [f'label="{quoted(title)}" labelloc="t" fontsize="16"'] if title else []
    rows = [(ROLES[r][1 if show_grads else 0], r + (" (border)" if show_grads else ""))
            for r in ROLES if r in roles]
    rows.append(("#ffffff", "dashed box: steps drawn once"))
    legend = scale_legend("log10 |grad| (fill)", grad_range, rows, has_no_grad)
    body.append(f"legend [shape=plaintext fontsize=10 label={legend}]")
    meaning["legend"] = {"kind": "legend"}
    body += outside
    cluster = 0
    layer_runs = {}
    for r, (layer, steps) in enumerate(runs):
        layer_runs.setdefault(layer, []).append(r)
    for layer, rs in layer_runs.items():
        body.append(f"subgraph cluster_{cluster} {{")
        cluster += 1
        body.append(f'\tlabel="{quoted(layer or "steps")}" {attrs(LAYER_STYLE)[1:-1]}')
        longest = max(rs, key=lambda r: len(runs[r][1]))
        for r in rs:
            steps = runs[r][1]
            first, last = steps[0].t, steps[-1].t
            if steps[0].prev is not None and steps[0].prev.t > first:
                first, last = last, first  # a layer that runs backwards in time
            what = (f"t{first}, 1 step" if len(steps) == 1 else
                    f"t{first} ... t{last}, {len(steps)} steps")
            if len(rs) > 1:
                what += ": " + _difference(steps[0], runs[longest][1][0], r == longest)
            body.append(f"\tsubgraph cluster_{cluster} {{")
            cluster += 1
            body.append(f'\t\tlabel="{quoted(what)}" {attrs(RUN_STYLE)[1:-1]}')
            body += ["\t\t" + line for line in boxes[r]]
            body.append("\t}")
        body.append("}")

    pairs = []  # (tail, head) of every edge, as written
    for (tail, head, operand), (back, carried, heads) in edges.items():
        attributes, text = {}, ""
        count = len(carried)
        if back:
            text = short_name(carried[0]) + f" \u00d7{count}"
            attributes.update(color=BACK_COLOUR, fontcolor=BACK_COLOUR, penwidth="1.5")
            if show_grads:
                text += "\n" + _norm_range(map(grad_norm, carried))
        elif _run(tail) is not None and _run(head) is not None and _run(tail) != _run(head) \
                and runs[_run(tail)][0] == runs[_run(head)][0]:
            # The state handed from one run of a layer to the next, coloured like the
            # back-edges. It ranks the later run below the earlier one: side by side,
            # dot (2.43) would not keep them in time order.
            text = short_name(carried[0]) + (f" \u00d7{count}" if count > 1 else "")
            attributes.update(color=BACK_COLOUR, fontcolor=BACK_COLOUR, penwidth="1.5")
        elif heads[0] is not None and tail.startswith("v") and \
                count < len(runs[run_of[id(heads[0])]][1]):
            text = listed(f"t{step.t}" for step in heads)  # only some of the steps use it
        elif count > 1 and tail.split("_")[0] != head.split("_")[0]:
            text = f"\u00d7{count}"  # inside a run every edge stands for every step
        if text:
            attributes["label"] = quoted(text)
        if operand:
            attributes["taillabel" if back else "headlabel"] = operand
        if back:  # written from the user to the maker, drawn with the arrow reversed:
            tail, head = head, tail  # dot then ranks it like the step's other edges
            attributes["dir"] = "back"
        elif "color" not in attributes:
            parameter = isinstance(members[tail][0], Parameter)
            attributes["color"] = ROLES["parameter"][1] if parameter else EDGE_GREY
        body.append(f"{tail} -> {head}" + (f" {attrs(attributes)}" if attributes else ""))
        pairs.append((tail, head))

    picture = digraph(
        "minigrad_rolled", body,
        # A small mclimit all but skips dot's crossing minimisation, so nodes tend to stay
        # in the order they are written (creation order: an LSTM's gates i, f, g, o).
        # Inside clusters dot 2.43 keeps neither that nor ordering=out reliably.
        {"rankdir": rankdir, "nodesep": "0.15", "ranksep": "0.25", "fontname": "Helvetica",
         "ordering": "out", "mclimit": "0.1"},
        {"fontname": "Helvetica"},
        {"arrowsize": "0.6", "fontsize": "9", "fontname": "Helvetica", "labelfontsize": "8"})
    node_of = [node_of[id(t)] for t in order]
    return Drawing(picture, nodes=list(meaning), edges=pairs, clusters=cluster,
                   meanings=meaning, node_of=node_of,
                   op_node_of=[None if t.op is None else node
                               for t, node in zip(order, node_of)])


def min_nodes(census, keep):
    """The fewest nodes this view draws (the guard's census): a node per tensor made
    outside the steps and the legend; a graph without steps is drawn by the ops view."""
    if not census.steps:
        return ops_view.min_nodes(census, keep)
    return census.outside[0] + 1

