"""The "steps" view: each time step one node, the textbook unrolled chain.

Time runs along the arrows (left to right by default), layers are rows (the first layer
at the bottom in LR), and what passes from step to step is drawn as labelled edges: one
edge per state tensor (``h`` and ``c`` for an LSTM), between the steps of a layer, and
the layer below's output going up into the layer above. Below each step a small node
names what it takes from outside (``x[:, 3, :]``, an initial state); above it, what it
gives to the rest of the graph (``h -> stack``). Each layer's parameters are listed once,
in a header at the start of its row, instead of being drawn as edges into every step.

With ``show_grads=True`` every state edge carries the norm of the loss's gradient with
respect to that tensor, as a number and as a colour (pale: small, dark red: large, on a
log scale stated in the legend), so a vanishing gradient reads along the chain.

The steps are found by ``minigrad.timesteps`` (innermost scope ``t<number>``, layer =
the scope around it). A graph without such scopes has no steps to draw; it is drawn in
the ops view instead, with a caption saying so.

Node ids (the ``Drawing``'s ``meanings`` map each to what it stands for):

- ``step{i}``   the i-th time step, counting steps in order of creation (``TimeSteps.steps``);
- ``in{i}``     what step i takes from outside the steps (not drawn when nothing);
- ``init{i}``   the initial state step i (a first step) takes from outside;
- ``out{i}``    what step i gives to the rest of the graph (not drawn when nothing);
- ``layer{j}``  the header of the j-th layer (``TimeSteps.layers`` order), with its
                parameters;
- ``hidden{j}`` the steps of layer j left out by ``keep_steps``;
- ``root``      the root, when it is made after the steps; ``legend``.
"""
from ..nn import Parameter
from . import ops_view
from .drawing import Drawing
from .labels import attrs, quoted
from .style import (EDGE_GREY, MAX_LISTED, NO_GRAD_NOTE, ROLES, digraph, grad_colour,
                    grad_norm, listed, log_range, scale_legend, shape_text, short_name)

DEFAULT_RANKDIR = "LR"
KEEP_STEPS_IGNORED = False

STEP_STYLE = {"shape": "box", "style": "rounded,filled", "fillcolor": "#f0f0f0",
              "color": "#525252", "fontsize": "12", "margin": "0.12,0.06"}
SIDE_STYLE = {"shape": "box", "style": "filled", "fontsize": "9", "height": "0.2",
              "margin": "0.06,0.03"}
HEADER_STYLE = {"shape": "note", "style": "filled", "fontsize": "10",
                "fillcolor": ROLES["parameter"][0], "color": ROLES["parameter"][1]}
HIDDEN_STYLE = {"shape": "box", "style": "dashed,rounded", "color": "#636363",
                "fontsize": "10"}
def aligned_layers(structure):
    """{layer: the layer whose columns it is drawn in}. A layer whose steps read the
    step of the same number of another layer (the layer below, in a stacked network) is
    aligned with it, step under step; any other (a decoder after its encoder, which
    reads only the encoder's last step) has columns of its own, after what it reads."""
    group = {}
    for layer, steps in structure.layers.items():
        group[layer] = next((group[owner.layer] for step in steps for owner in (
            structure.step_at.get(id(t)) for t in step.inputs) if owner is not None
            and owner.layer != layer and owner.t == step.t), layer)
    return group


def hidden_steps(structure, keep_steps):
    """{id(step): layer index} of the steps ``keep_steps`` leaves out (the middle)."""
    hidden = {}
    if keep_steps is None:
        return hidden
    for j, steps in enumerate(structure.layers.values()):
        if len(steps) > 2 * keep_steps:
            for step in steps[keep_steps:len(steps) - keep_steps]:
                hidden[id(step)] = j
    return hidden


# -- what each step takes and gives ----------------------------------------------------------

def _step_inputs(structure, step):
    """What ``step`` takes from outside the steps, as (per-step lines, initial-state
    lines): tensors made outside (through a slice they read as ``x[:, 3, :]``), leaves
    made inside the step that are not constants, and, for a layer's first step, the
    outside tensors only it uses: the initial state, drawn entering the row."""
    lines, initial = [], []
    for tensor in step.inputs:
        if isinstance(tensor, Parameter) or id(tensor) in structure.step_at:
            continue
        users = structure.users.get(id(tensor), ())
        details = [user.op.detail() for user in users
                   if structure.step_at.get(id(user)) is step and user.op.label == "slice"]
        name = short_name(tensor)
        if details:
            lines += [name + detail for detail in details]
        elif step.prev is None and all(structure.step_at.get(id(u)) is step for u in users):
            initial.append(name)
        else:
            lines.append(name)
    for tensor in step.tensors:
        if tensor.op is None and (tensor.name is not None or tensor.data.size > 1):
            lines.append(short_name(tensor) + " " + shape_text(tensor.shape))
    return lines, initial


def _step_outputs(structure, step):
    """'h -> stack' for each tensor of ``step`` used by tensors outside every step."""
    lines = []
    for tensor in step.outputs:
        users = [u for u in structure.users.get(id(tensor), ())
                 if id(u) not in structure.step_at]
        if users:
            lines.append(f"{short_name(tensor)} \u2192 {listed(short_name(u) for u in users)}")
        if tensor is structure.root:
            lines.append(f"{short_name(tensor)} (the root)")
    return lines


def _parameters(structure, steps):
    """The parameters a layer's steps use, in order of first use."""
    found = {}
    for step in steps:
        for tensor in step.inputs:
            if isinstance(tensor, Parameter):
                found[id(tensor)] = tensor
    return list(found.values())


# -- the drawing -----------------------------------------------------------------------------

class _Builder:
    """The DOT statements of the steps view, built step by step (``draw``)."""

    def __init__(self, structure, *, show_shapes, show_grads, rankdir, keep_steps):
        self.structure, self.show_shapes, self.show_grads = structure, show_shapes, show_grads
        self.rankdir = rankdir
        self.flip = rankdir in ("LR", "RL")  # rows then run top to bottom: flip flat edges
        self.gap = "\n" if self.flip else " "  # name and |grad| of a state edge: stacked
        self.hidden = hidden_steps(structure, keep_steps)
        self.group = aligned_layers(structure)
        self.ids = {id(step): f"step{i}" for i, step in enumerate(structure.steps)}
        self.nodes, self.edges, self.columns = [], [], {}
        self.pairs = []  # (tail, head) of every edge, as written
        self.state_edges = []  # (edge id, index of the state tensor it carries)
        self.index = {id(t): i for i, t in enumerate(structure.order)}
        self.meaning = {}
        self.has_no_grad = False
        self.grad_range = None
        if show_grads:
            self.grad_range = log_range(grad_norm(t) for s in structure.steps
                                        for t in s.state_out)  # what the edges carry

    def node(self, node, attributes, column, meaning):
        self.nodes.append(f"{node} {attrs(attributes)}")
        if column is not None:
            self.columns.setdefault(column, []).append(node)
        self.meaning[node] = meaning

    def flat(self, tail, head, attributes=None):
        """An edge between two nodes of one column (across the time axis)."""
        attributes = dict(attributes or {})
        if self.flip:
            tail, head = head, tail
            attributes["dir"] = "back"
        self.pairs.append((tail, head))
        self.edges.append(f"{tail} -> {head}" + (f" {attrs(attributes)}" if attributes else ""))

    def edge(self, tail, head, attributes):
        self.pairs.append((tail, head))
        self.edges.append(f"{tail} -> {head} {attrs(attributes)}")

    def ports(self, k, count):
        """Where the k-th of ``count`` state edges leaves and enters its steps: with two
        (h and c) in a vertical chain, one on each side, so their labels do not collide."""
        if count != 2 or self.rankdir not in ("TB", "BT"):
            return {}
        side = "w" if k == 0 else "e"
        tail, head = ("s", "n") if self.rankdir == "TB" else ("n", "s")
        return {"tailport": tail + side, "headport": head + side}

    def state_edge(self, tail, head, tensor, dashed=False, ports=None, backwards=False):
        """One state tensor passing from step to step, with its gradient if asked.

        ``backwards``: from step t + 1 to step t (a layer running backwards in time),
        written from t to t + 1 with the arrow reversed, so that dot still lays the
        row out in time order, aligned with the other layers."""
        attributes = {**(ports or {}), "label": quoted(short_name(tensor)), "color": EDGE_GREY}
        if backwards:
            tail, head = head, tail
            attributes["dir"] = "back"
            if "tailport" in attributes:
                attributes["tailport"], attributes["headport"] = (attributes["headport"],
                                                                  attributes["tailport"])
        if self.show_grads:
            norm = grad_norm(tensor)
            colour = grad_colour(norm, self.grad_range)
            if colour is None:
                self.has_no_grad = True
                attributes["label"] = quoted(f"{short_name(tensor)}{self.gap}{NO_GRAD_NOTE}")
            else:
                attributes["label"] = quoted(f"{short_name(tensor)}{self.gap}{norm:.2g}")
                attributes["color"] = f"{EDGE_GREY}:{colour}:{colour}:{EDGE_GREY}"
                attributes["penwidth"] = "1.2"
        if dashed:
            attributes["style"] = "dashed"
        attributes["id"] = f"state{len(self.state_edges)}"  # how a page finds it
        self.state_edges.append((attributes["id"], self.index[id(tensor)]))
        self.edge(tail, head, attributes)

    def layer(self, j, layer, steps):
        """The header of a row: the layer's name and its parameters, once."""
        lines = [layer or "steps", f"{len(steps)} steps"]
        for p in _parameters(self.structure, steps):
            text = short_name(p) + (" " + shape_text(p.shape) if self.show_shapes else "")
            if self.show_grads and p.grad is not None:
                text += f"  |grad| {grad_norm(p):.2g}"
            lines.append(text)
        label = quoted(lines[0]) + "\\n" + "\\l".join(quoted(x) for x in lines[1:]) + "\\l"
        self.node(f"layer{j}", {"label": label, **HEADER_STYLE}, ("header", self.group[layer]),
                  {"kind": "layer", "layer": layer, "steps": len(steps)})

    def step(self, step, order_index):
        node = self.ids[id(step)]
        attributes = {"label": quoted(f"t{step.t}"), **STEP_STYLE}
        if any(t is self.structure.root for t in step.tensors):
            attributes["fillcolor"], attributes["color"] = ROLES["output"]
        self.node(node, attributes, self.column(step),
                  {"kind": "step", "layer": step.layer, "t": step.t,
                   "tensors": [order_index[id(t)] for t in step.tensors]})
        index = node[4:]
        inputs, initial = _step_inputs(self.structure, step)
        if initial:
            fill, border = ROLES["input"]
            # A layer running backwards in time starts at its last step: its initial
            # state enters from the far end of the row, not from beside the header.
            backwards = step.next is not None and step.next.t < step.t
            self.node(f"init{index}", {"label": "\\n".join(quoted(x) for x in initial),
                                       **SIDE_STYLE, "fillcolor": fill, "color": border},
                      None if backwards else ("header", self.group[step.layer]),
                      {"kind": "initial state", "layer": step.layer, "t": step.t})
            if backwards:
                self.edge(node, f"init{index}", {"color": border, "dir": "back"})
            else:
                self.edge(f"init{index}", node, {"color": border})
        if inputs:
            label = quoted(listed(inputs)) if len(inputs) > MAX_LISTED else \
                "\\n".join(quoted(x) for x in inputs)
            fill, border = ROLES["input"]
            self.node(f"in{index}", {"label": label, **SIDE_STYLE, "fillcolor": fill,
                                     "color": border}, self.column(step),
                      {"kind": "inputs", "layer": step.layer, "t": step.t})
            self.flat(f"in{index}", node, {"color": border})
        outputs = _step_outputs(self.structure, step)
        if outputs:
            fill, border = ROLES["output"]
            label = "\\n".join(quoted(x) for x in outputs[:MAX_LISTED])
            self.node(f"out{index}", {"label": label, **SIDE_STYLE, "fillcolor": fill,
                                      "color": border}, self.column(step),
                      {"kind": "outputs", "layer": step.layer, "t": step.t})
            self.flat(node, f"out{index}", {"color": border})

    def tensor_nodes(self):
        """The drawn node standing for each tensor, indexed like the topological order:
        its step's node (or its layer's marker of hidden steps), a parameter's layer
        header, the root's node for the ops after the steps; None for the rest."""
        structure, index = self.structure, self.index
        found = [None] * len(structure.order)
        for node, meaning in self.meaning.items():
            for i in meaning.get("tensors", ()):
                found[i] = node
        for step in structure.steps:
            if id(step) in self.hidden:
                for tensor in step.tensors:
                    found[index[id(tensor)]] = found[index[id(tensor)]] or \
                        f"hidden{self.hidden[id(step)]}"
        for j, steps in enumerate(structure.layers.values()):
            for tensor in (t for step in steps for t in step.inputs):
                if isinstance(tensor, Parameter):
                    found[index[id(tensor)]] = found[index[id(tensor)]] or f"layer{j}"
        if "root" in self.meaning:
            first = min(t.serial for step in structure.steps for t in step.tensors)
            for i, tensor in enumerate(structure.order):
                if found[i] is None and tensor.op is not None and tensor.serial > first \
                        and id(tensor) not in structure.step_at:
                    found[i] = "root"
        return found

    def marker(self, j, layer, steps):
        first, last = steps[0].t, steps[-1].t
        self.node(f"hidden{j}", {"label": quoted(f"t{first} ... t{last}\n{len(steps)} steps"
                                                  "\nnot drawn"), **HIDDEN_STYLE},
                  ("hidden", self.group[layer]),
                  {"kind": "hidden", "layer": layer, "t": [s.t for s in steps]})

    def column(self, step):
        """The rank ``step`` shares with the steps of the same number of the layers
        aligned with it (``aligned_layers``)."""
        return ("t", self.group[step.layer], step.t)

    def node_of(self, step):
        """The drawn node standing for ``step``: its own, or its layer's marker."""
        j = self.hidden.get(id(step))
        return self.ids[id(step)] if j is None else f"hidden{j}"

    def links(self):
        """State edges along each layer, and edges between steps of different layers."""
        structure = self.structure
        between_markers = set()  # edges between two layers' markers, drawn once
        for step in structure.steps:
            head = self.node_of(step)
            if step.prev is not None:
                tail = self.node_of(step.prev)
                if tail != head:
                    dashed = tail.startswith("hidden") or head.startswith("hidden")
                    for k, tensor in enumerate(step.state_in):
                        self.state_edge(tail, head, tensor, dashed,
                                        self.ports(k, len(step.state_in)),
                                        backwards=step.prev.t > step.t)
            sources = {}
            for tensor in step.inputs:
                owner = structure.step_at.get(id(tensor))
                if owner is not None:
                    sources.setdefault(self.node_of(owner), (owner, []))[1].append(tensor)
            for tail, (owner, tensors) in sources.items():
                markers = tail.startswith("hidden") + head.startswith("hidden")
                if tail == head or (markers == 2 and (tail, head) in between_markers):
                    continue
                attributes = {"label": quoted(listed(short_name(t) for t in tensors)),
                              "color": EDGE_GREY}
                if markers:
                    attributes["style"] = "dashed"
                if markers == 2:
                    between_markers.add((tail, head))
                if self.column(owner) == self.column(step) or markers == 2:
                    self.flat(tail, head, attributes)
                else:
                    self.edge(tail, head, attributes)


def _root_line(structure):
    """The root's label when it is made after the steps, and the ops after them."""
    root = structure.root
    first = min(t.serial for s in structure.steps for t in s.tensors)
    after = [t for t in structure.order if id(t) not in structure.step_at
             and t.op is not None and t.serial > first]
    text = f"{short_name(root)}\n{len(after)} op{'s' * (len(after) != 1)} after the steps"
    names = listed(t.op.label for t in after).split(", ") if after else []
    for k in range(0, len(names), 2):
        text += (":" if k == 0 else ",") + "\n" + ", ".join(names[k:k + 2])
    return text


def draw(root, *, show_shapes=True, show_grads=False, rankdir=DEFAULT_RANKDIR,
         cluster_scopes=True, keep_steps=None, title=None, order=None):
    """The unrolled chain of time steps of ``root``'s graph, as a ``graphviz.Digraph``.

    Options (as for ``mg.viz.graph``):
      show_shapes     the parameters' shapes in each layer's header, and the shape of
                      the leaves a step makes itself.
      show_grads      label and colour each state edge with |dLoss/d state| (norm over
                      the whole tensor). Needs ``root.backward(retain_grads=True)``.
      rankdir         the direction of time: "LR" (default), "TB", "BT" or "RL".
      cluster_scopes  ignored: a step is one node.
      keep_steps      draw only the first and last ``keep_steps`` steps of each layer;
                      the steps between become one dashed node per layer.
      title           a caption at the top.

    Returns a ``Drawing`` whose ``meanings`` say what each node stands for (see the
    module docstring): {"kind": "step", "layer": "l0", "t": 3, "tensors": [indices in
    the topological order]}, {"kind": "inputs" | "outputs", "layer", "t"},
    {"kind": "layer", "layer", "steps"}, {"kind": "hidden", "layer", "t": [...]},
    {"kind": "root", "tensors": [index]}. A graph without ``t<number>`` scopes is
    drawn in the ops view.
    """
    structure, instead = ops_view.time_steps_for("steps", root, dict(
        show_shapes=show_shapes, show_grads=show_grads, rankdir=rankdir,
        cluster_scopes=cluster_scopes, keep_steps=keep_steps, title=title, order=order))
    if instead is not None:
        return instead
    drawing = _Builder(structure, show_shapes=show_shapes, show_grads=show_grads,
                       rankdir=rankdir, keep_steps=keep_steps)
    order_index = drawing.index
    for j, (layer, steps) in enumerate(structure.layers.items()):
        drawing.layer(j, layer, steps)
        shown = [s for s in steps if id(s) not in drawing.hidden]
        for step in shown:
            drawing.step(step, order_index)
        if len(shown) < len(steps):
            drawing.marker(j, layer, [s for s in steps if id(s) in drawing.hidden])
        drawing.edge(f"layer{j}", drawing.node_of(steps[0]), {"style": "invis"})
    drawing.links()

    in_steps = id(root) in structure.step_at
    if not in_steps:
        fill, border = ROLES["output"]
        drawing.node("root", {"label": quoted(_root_line(structure)), **SIDE_STYLE,
                              "fillcolor": fill, "color": border, "fontsize": "10"},
                     None, {"kind": "root", "tensors": [order_index[id(root)]]})
        group = drawing.group[structure.steps[-1].layer]  # the steps made last
        last = ("t", group, max(s.t for s in structure.steps if drawing.group[s.layer] == group))
        for node in drawing.columns.get(last, []):
            if node.startswith("out"):
                drawing.edge(node, "root", {"style": "dashed", "color": ROLES["output"][1]})
        if not any(n.startswith("out") for n in drawing.columns.get(last, [])):
            drawing.edge(drawing.columns[last][0], "root", {"style": "invis"})

    body = [f'label="{quoted(title)}" labelloc="t" fontsize="16"'] if title else []
    rows = [(STEP_STYLE["fillcolor"], "time step (one node)"),
            (ROLES["input"][0], "taken from outside the steps"),
            (ROLES["output"][0], "given to the rest of the graph"),
            (ROLES["parameter"][0], "layer and its parameters")]
    legend = scale_legend("log10 |grad| of the state (edge)", drawing.grad_range,
                          rows, drawing.has_no_grad, per_row=1 if drawing.flip else 2)
    body.append(f"legend [shape=plaintext fontsize=10 label={legend}]")
    drawing.meaning["legend"] = {"kind": "legend"}
    body += drawing.nodes
    if not in_steps:  # the legend goes beside the root, at the end, not before t0
        drawing.columns["root"] = ["root", "legend"]
    for column, nodes in drawing.columns.items():
        body.append("{rank=same; " + "; ".join(nodes) + "}")
    body += drawing.edges
    picture = digraph(
        "minigrad_steps", body,
        {"rankdir": rankdir, "nodesep": "0.2", "ranksep": "0.25", "fontname": "Helvetica"},
        {"fontname": "Helvetica"},
        {"arrowsize": "0.6", "fontsize": "9", "fontname": "Helvetica"})
    node_of = drawing.tensor_nodes()
    return Drawing(picture, nodes=list(drawing.meaning), edges=drawing.pairs,
                   meanings=drawing.meaning, node_of=node_of,
                   op_node_of=[None if t.op is None else node_of[i]
                               for i, t in enumerate(structure.order)],
                   state_edges=drawing.state_edges)


def min_nodes(census, keep):
    """The fewest nodes this view draws at ``keep_steps=keep`` (the guard's census): a
    node per drawn step, one marker per layer with hidden steps, the layers' headers and
    the legend; a graph without steps is drawn by the ops view."""
    if not census.steps:
        return ops_view.min_nodes(census, keep)
    return 1 + sum(len(kept) + hiding + 1 for kept, hiding in census.kept(keep).values())

