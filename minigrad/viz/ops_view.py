"""The "ops" view: every primitive op and tensor of the unrolled graph.

Every tensor is a box (name, shape, gradient), every op a small rounded box between its
inputs and its output. Tensors made inside ``mg.scope`` blocks are drawn inside nested,
labelled clusters, so an unrolled LSTM shows one box per layer and time step, with the
gates inside and the shared weights outside, feeding every step (along one bus once
three or more steps use them). With ``show_grads`` each tensor is coloured by the size
of its gradient.

Node ids are sequential in the engine's topological order (creation order); nothing
depends on ``id()`` or on set order, and nothing recurses, so the text is the same on
every run and a graph thousands of nodes deep draws.

The layout is chosen so that every step looks the same and long sequences lay out in
seconds (``LAYOUT``, ``_Builder.sibling_order``, ``_Builder.buses``): the statements
are written in creation order, the users of a tensor leave it from ports in that order,
so the gates of an LSTM sit i, f, g, o from left to right in every step, and no edge
runs the length of the drawing.
"""
from ..nn import Parameter
from ..tensor import topological_order
from ..timesteps import TimeSteps, step_of
from .drawing import Drawing, longest_path_ranks
from .labels import attrs, html_table, html_text, quoted, with_out_ports
from .style import (CLUSTER_STYLE, ELIDED_STYLE, MAX_DETAIL, NO_GRAD_FILL, OP_STYLE,
                    PORT_FONT, ROLES, TENSOR_STYLE, check_grads, digraph, grad_colour,
                    grad_norm, is_dark, log_range, operand_names, ops_legend, tensor_role)

DEFAULT_RANKDIR = "TB"  # time steps top to bottom, the ops of a step flowing down
KEEP_STEPS_IGNORED = False

# How dot lays out the graph. newrank ranks all nodes at once instead of cluster by
# cluster: with the old ranking an edge between two step clusters could end up inside
# one rank, which breaks the order of the steps. ordering=out keeps each node's outgoing edges in the order they
# are written (creation order) outside clusters; inside them the tail ports of
# ``sibling_order`` do it. nslimit and mclimit bound the two searches that dominate
# dot's time: network simplex placing nodes within their ranks (in full it grows like
# the square of the graph: 16 LSTM steps took minutes) and crossing reduction. Bounded,
# an LSTM step reads as well (checked by eye at 2, 8 and 32 steps) and lays out in a
# fraction of the time: benchmarks/viz.py.
LAYOUT = {"newrank": "true", "ordering": "out", "nslimit": "1", "nslimit1": "1",
          "mclimit": "0.3", "nodesep": "0.12", "ranksep": "0.16", "fontname": "Helvetica"}

BUS_STEPS = 3  # a tensor used in this many time steps or more reaches them along a bus


# -- scopes and time steps ----------------------------------------------------------------

def _elided_steps(scopes, keep_steps):
    """{layer scope: sorted step numbers to hide}, keeping the first and last keep_steps."""
    steps = {}
    for scope in scopes:
        layer, step = step_of(scope)
        if layer is not None:
            steps.setdefault(layer, set()).add(step)
    hidden = {}
    for layer, numbers in steps.items():
        numbers = sorted(numbers)
        if len(numbers) > 2 * keep_steps:
            hidden[layer] = numbers[keep_steps:len(numbers) - keep_steps]
    return hidden


# -- labels -------------------------------------------------------------------------------

def _tensor_label(tensor, show_shapes, grad_norm, across):
    """A table of name, shape, the value of a one-element tensor, gradient norm.

    The fields sit side by side across the direction of the arrows, keeping the drawing
    short along its long axis. A tensor with nothing to show gets an empty box.
    """
    fields = []
    if tensor.name is not None:
        fields.append(str(tensor.name))
    constant = tensor.op is None and tensor.name is None and tensor.data.size == 1
    if show_shapes and not constant:  # a constant such as the 1 in 1 - f shows its value
        fields.append(str(tensor.shape))
    if tensor.data.size == 1:
        fields.append(f"{tensor.data.item():.4g}")
    if grad_norm is not None:
        fields.append(f"|grad| {grad_norm:.2g}")
    fields = fields or [" "]  # nothing to show: an empty box
    return html_table([html_text(field) for field in fields], across)


def _op_label(op, across, slots=True):
    """The op's name and details, with a cell (port) per input slot, named when the
    order matters: ``a matmul b`` across the arrows, each input's edge entering at its
    own cell. The unnamed slots of a commutative op (add, multiply) keep its inputs in
    creation order, so that ``f * c + i * g`` is laid out the same in every step."""
    detail = op.detail()
    text = op.label
    if detail and len(detail) <= MAX_DETAIL:
        text += (" " if across else "\n") + detail
    names = operand_names(op) if slots else None
    if names is None:
        return quoted(text)
    ports = [(PORT_FONT.format(name) if name else "", f"p{k}") for k, name in enumerate(names)]
    if len(ports) == 2:  # infix: a subtract b
        cells = [ports[0], html_text(text), ports[1]]
    else:
        cells = ports + [html_text(text)]
    return html_table(cells, across, rules=False, cellpadding=1)


class _Builder:
    """The DOT statements of one graph, collected in one pass over the topological order.

    Node ids come from a tensor's index in that order: ``v7`` is the 8th tensor, ``op7``
    the op that made it, ``elided0`` the first marker of hidden time steps.
    """

    def __init__(self, root, *, show_shapes, norms, grad_range, rankdir, cluster_scopes,
                 hidden):
        self.root, self.show_shapes, self.rankdir = root, show_shapes, rankdir
        self.across = rankdir in ("TB", "BT")
        self.norms, self.grad_range = norms, grad_range
        self.cluster_scopes, self.hidden = cluster_scopes, hidden
        self.hidden_sets = {layer: set(steps) for layer, steps in hidden.items()}
        self.clusters = {"": []}  # scope -> its own node ids, in first-seen order
        self.attributes = {}  # node id -> its attributes
        self.tail_port = {}  # (tensor node, user node) -> the port the edge leaves from
        self.port_count = {}  # tensor node -> number of ports o0, o1, ...
        self.children = {"": []}  # scope -> child scopes, in first-seen order
        self.nodes_of_step = {}  # (layer scope, step number) -> its node ids, in order
        self.markers = {}  # layer scope -> id of the node standing for its hidden steps
        self.node_of = []  # index in order -> node id of the tensor (or of its marker)
        self.op_node_of = {}  # index in order -> node id of the op that made the tensor
        self.cluster_of = {}  # node id -> the scope of the cluster it is drawn in
        self.bus_nodes = set()  # the tap nodes of buses (see ``buses``)
        self.bus_of = {}  # tap node -> the tensor node whose bus it is on
        self.op_of = {}  # op node -> its op
        self.roles, self.has_no_grad = set(), False

    # -- nodes ---------------------------------------------------------------------------
    def add(self, index, tensor):
        """The nodes of ``tensor`` and of the op that made it (or its marker)."""
        layer, step = step_of(tensor.scope)
        if step in self.hidden_sets.get(layer, ()):
            self.node_of.append(self.marker(layer))
            self.op_node_of[index] = self.marker(layer)
            return
        if tensor.op is not None:
            self.op_node_of[index] = f"op{index}"
            self.op_of[f"op{index}"] = tensor.op
            label = _op_label(tensor.op, self.across)
            self.add_node(tensor.scope, f"op{index}", {"label": label, **OP_STYLE},
                          (layer, step))
        self.node_of.append(f"v{index}")
        self.add_node(tensor.scope, f"v{index}", self.tensor_attributes(index, tensor),
                      (layer, step))

    def tensor_attributes(self, index, tensor):
        role = tensor_role(tensor, self.root)
        self.roles.add(role)
        fill, border = ROLES[role]
        norm = self.norms.get(index)
        attributes = {"label": _tensor_label(tensor, self.show_shapes, norm, self.across),
                      **TENSOR_STYLE, "fillcolor": fill, "color": border}
        if self.grad_range is None:
            return attributes
        attributes["penwidth"] = "2"
        colour = grad_colour(norm, self.grad_range)
        if colour is None:
            self.has_no_grad = True
            attributes["fillcolor"] = NO_GRAD_FILL
            return attributes
        attributes["fillcolor"] = colour
        if is_dark(colour):
            attributes["fontcolor"] = "#ffffff"
        return attributes

    def marker(self, layer):
        """The node for ``layer``'s hidden steps, in a box of its own among its steps."""
        if layer not in self.markers:
            self.markers[layer] = f"elided{len(self.markers)}"
            steps = self.hidden[layer]
            box = f"t{steps[0]} ... t{steps[-1]}"
            label = quoted(f"{len(steps)} time steps\nnot drawn")
            self.add_node(f"{layer}/{box}" if layer else box, self.markers[layer],
                          {"label": label, **ELIDED_STYLE}, (layer, steps[0]))
        return self.markers[layer]

    def add_node(self, scope, node, attributes, step):
        self.cluster_of[node] = scope if self.cluster_scopes else ""
        self.attributes[node] = attributes
        self.lines_of(scope).append(node)
        if step[0] is not None:
            self.nodes_of_step.setdefault(step, []).append(node)

    # -- clusters ------------------------------------------------------------------------
    def lines_of(self, scope):
        """The statements of ``scope``'s cluster, creating it and its parents if new."""
        if not self.cluster_scopes:
            return self.clusters[""]
        if scope not in self.clusters:
            parts = scope.split("/")
            for k in range(1, len(parts) + 1):
                path, parent = "/".join(parts[:k]), "/".join(parts[:k - 1])
                if path not in self.clusters:
                    self.clusters[path], self.children[path] = [], []
                    self.children[parent].append(path)
        return self.clusters[scope]

    def node_line(self, node):
        attributes = self.attributes[node]
        if node in self.port_count:
            attributes = {**attributes, "label": with_out_ports(
                attributes["label"], self.port_count[node], self.rankdir)}
        return f"{node} {attrs(attributes)}"

    def cluster_lines(self):
        """Top-level nodes, then nested ``subgraph cluster_N`` blocks, written depth
        first with an explicit stack."""
        lines = [self.node_line(node) for node in self.clusters[""]]
        stack = [(False, scope) for scope in reversed(self.children[""])]
        count = 0
        while stack:
            closing, scope = stack.pop()
            indent = "\t" * (scope.count("/") + 1)
            if closing:
                lines.append(indent + "}")
                continue
            lines.append(f"{indent}subgraph cluster_{count} {{")
            count += 1
            lines.append(f'{indent}\tlabel="{quoted(scope.rsplit("/", 1)[-1])}" '
                         f'{attrs(CLUSTER_STYLE)[1:-1]}')
            lines += [indent + "\t" + self.node_line(node) for node in self.clusters[scope]]
            stack.append((True, scope))
            stack.extend((False, child) for child in reversed(self.children[scope]))
        return lines

    # -- edges ---------------------------------------------------------------------------
    def edge_counts(self, order):
        """{(tail, head, port): uses}: each input into its op (into the input's own slot
        when the order of the inputs matters), each op into its output."""
        position = {id(tensor): index for index, tensor in enumerate(order)}
        markers = set(self.markers.values())
        counts = {}
        for index, tensor in enumerate(order):
            if tensor.op is None:
                continue
            op_node = self.op_node_of[index]
            names = None if op_node in markers else operand_names(tensor.op)
            inputs = [self.node_of[position[id(t)]] for t in tensor.op.inputs]
            if names is None:
                ports = [None] * len(inputs)
            elif names[0]:  # order matters: each input its own slot
                ports = [f"p{k}" for k in range(len(inputs))]
            else:  # commutative: a tensor used twice (w * w) is one edge, labelled x2
                ports = [f"p{inputs.index(node)}" for node in inputs]
            # what comes out of hidden steps enters as one edge, not one per slot
            ports = [None if node in markers else port for node, port in zip(inputs, ports)]
            edges = list(zip(inputs, [op_node] * len(inputs), ports))
            edges.append((op_node, self.node_of[index], None))
            for edge in edges:
                if edge[0] != edge[1]:  # edges among hidden steps vanish into the marker
                    counts[edge] = counts.get(edge, 0) + 1
        return counts

    def buses(self, counts):
        """Route each tensor made outside the time steps and used in BUS_STEPS or more of
        them (a weight, the input x) along one line with a tap per step, instead of one
        edge into every step; and likewise what an op outside the steps collects from
        that many steps (the stack of every step's h).

        Those edges run the length of the drawing, side by side: at 32 steps, a hundred
        parallel curves, and most of dot's work (an edge spanning k ranks is k nodes to
        place, and each crosses its neighbours' branches). A bus is one line down the
        side of the steps, ``tensor -> tap -> tap ...``, each tap a dot beside its step
        with that step's edges leaving from it (or, collecting, ``h -> tap -> tap ... ->
        stack``, labelled with the number of inputs it carries, in step order): the same
        picture of one tensor shared by every step, at the cost of a step's height per
        tap. Returns the new counts; taps are top-level point nodes.
        """
        step_of_node = {node: step for step, nodes in self.nodes_of_step.items()
                        for node in nodes}
        users, collected = {}, {}  # node outside the steps -> {step: its edges there}
        for edge in counts:
            tail, head, _ = edge
            if tail.startswith("v") and tail not in step_of_node and head in step_of_node:
                users.setdefault(tail, {}).setdefault(step_of_node[head], []).append(edge)
            if head.startswith("op") and head not in step_of_node and tail in step_of_node:
                collected.setdefault(head, {}).setdefault(step_of_node[tail], []).append(edge)
        rerouted = dict(counts)
        for tail, by_step in users.items():
            if len(by_step) >= BUS_STEPS:
                previous = tail
                for k, edges in enumerate(by_step.values()):  # steps in creation order
                    tap = self.tap(f"tap{tail}_{k}", tail)
                    rerouted[previous, tap, None] = 1
                    previous = tap
                    for edge in edges:
                        rerouted[tap, edge[1], edge[2]] = rerouted.pop(edge)
        for head, by_step in collected.items():
            if len(by_step) >= BUS_STEPS:
                taps = [self.tap(f"tap{head}_{k}", head) for k in range(len(by_step))]
                uses = 0
                for tap, edges in zip(taps, by_step.values()):
                    for edge in edges:
                        uses += counts[edge]
                        rerouted[edge[0], tap, None] = rerouted.pop(edge)
                rerouted.update(((a, b, None), 1) for a, b in zip(taps, taps[1:]))
                rerouted[taps[-1], head, None] = uses
                # its inputs arrive together, in step order: no slots to point into
                self.attributes[head]["label"] = _op_label(self.op_of[head], self.across,
                                                           slots=False)
        return rerouted

    def tap(self, node, owner):
        """A new top-level point on the bus of ``owner``."""
        self.attributes[node] = {"shape": "point", "width": "0.06", "height": "0.06",
                                 "label": ""}
        self.clusters[""].append(node)
        self.cluster_of[node] = ""
        self.bus_nodes.add(node)
        self.bus_of[node] = owner
        return node

    def edge_lines(self, counts, parameter_nodes):
        """One line per distinct edge, labelled 'xN' when it stands for N uses. Edges
        from a parameter take its colour, so a weight's fan-out stands out. The count is
        an external label, placed after the layout: a true edge label would double the
        number of ranks dot has to lay out."""
        markers = set(self.markers.values())
        lines = []
        for (tail, head, port), count in counts.items():
            attributes = {}
            if count > 1:
                attributes["xlabel"] = f"x{count}"
            if self.bus_of.get(tail, tail) in parameter_nodes:
                attributes["color"] = ROLES["parameter"][1]
            if head in self.bus_nodes:
                attributes["arrowhead"] = "none"
            if tail.startswith("op") and head == "v" + tail[2:]:
                # an op and its output stay together: a tensor used only much later (the
                # o gate) would otherwise sit anywhere in between, not alike in every step
                attributes["weight"] = "2"
            if tail in markers or head in markers:
                attributes["style"] = "dashed"
            source = f"{tail}:{self.tail_port[tail, head]}" if (
                tail, head) in self.tail_port else tail
            target = f"{head}:{port}" if port else head
            lines.append(f"{source} -> {target}" +
                         (f" {attrs(attributes)}" if attributes else ""))
        return lines

    def step_order_lines(self, counts):
        """Invisible edges that draw each layer's time steps one after another, in order.

        A step's nodes that need nothing from the step before (the slice ``x[:, t]`` of
        the input, constants) would otherwise be ranked as early as possible: every step
        box would reach back to the start, the boxes would sit side by side in whatever
        order Graphviz's heuristics pick, often not time order. An invisible edge from
        each node that ends step t (no successor inside it) to each node that starts the
        next drawn step (no predecessor inside it) makes the order part of the ranking,
        which Graphviz always obeys.
        """
        step_of_node = {node: step for step, nodes in self.nodes_of_step.items()
                        for node in nodes}
        has_inner_input, has_inner_output = set(), set()
        for tail, head, _ in counts:
            if tail in step_of_node and step_of_node.get(head) == step_of_node[tail]:
                has_inner_output.add(tail)
                has_inner_input.add(head)
        layers = {}
        for (layer, step), nodes in self.nodes_of_step.items():
            layers.setdefault(layer, []).append((step, nodes))
        lines = []
        for steps in layers.values():
            steps.sort(key=lambda entry: entry[0])
            for (_, before), (_, after) in zip(steps, steps[1:]):
                ends = [node for node in before if node not in has_inner_output]
                starts = [node for node in after if node not in has_inner_input]
                lines += [f"{tail} -> {head} [style=invis]" for tail in ends for head in starts]
        return lines

    def sibling_order(self, counts, step_lines):
        """Keep the users of a tensor in creation order, left to right, in every step.

        Graphviz reorders nodes freely to reduce crossings; inside clusters it ignores
        ``ordering=out`` and even the direction of edges within a rank, so the gates of
        an LSTM came out f i g o in one step and o f i g in the next. What it does
        respect is the order of the ports edges leave from: users of one tensor that sit
        in the same cluster at the same depth (the four slices of z) get edges from
        ports o0, o1, ... in creation order. Depth is the longest path from the sources,
        so users at different depths (the concat and the multiply fed by a GRU's h) are
        left alone.
        """
        edges = [(tail, head) for tail, head, _ in counts]
        edges += [(line.split()[0], line.split()[2]) for line in step_lines]
        rank = longest_path_ranks(self.cluster_of, edges)
        users = {}  # (tensor node, cluster, rank) -> its users there, in creation order
        for tail, head, _ in counts:
            if tail.startswith("v"):
                group = users.setdefault((tail, self.cluster_of[head], rank[head]), [])
                if head not in group:
                    group.append(head)
        for (tail, _, _), heads in users.items():
            if len(heads) > 1:
                for head in heads:
                    self.tail_port[tail, head] = f"o{self.port_count.get(tail, 0)}"
                    self.port_count[tail] = self.port_count.get(tail, 0) + 1


def draw(root, *, show_shapes=True, show_grads=False, rankdir=DEFAULT_RANKDIR,
         cluster_scopes=True, keep_steps=None, title=None, order=None):
    """The computation graph of everything ``root`` depends on, as a ``graphviz.Digraph``.

    Tensors are boxes of fields (name and shape; parameters by their dotted name such
    as ``lstm.l0.weight``); ops are small rounded boxes labelled with the op and its
    parameters (``slice [:, 0:8]``). An op whose inputs cannot be swapped (subtract,
    divide, power, matmul, concat ...) shows a slot per input, ``a`` and ``b`` or
    ``0``, ``1`` ..., and each input's edge enters its slot: ``1 - z`` is drawn
    differently from ``z - 1``. Tensor fills show the role: parameter, input (any other
    leaf the graph reaches, constants included), output (``root``) or intermediate,
    explained by a legend. Each use of a tensor is one edge; repeated edges between the
    same two nodes are drawn once, labelled ``xN``. A tensor made outside the time steps
    and used in three or more of them (a weight, the input) reaches them along one line
    with a dot per step, and what three or more steps give one op outside them (the
    stack of every h) arrives the same way. A leaf that needs no gradient appears only
    where a recorded op used it.

    Options:
      show_shapes     put each tensor's shape in its box.
      show_grads      fill tensors by log10 of their gradient norm instead (pale for the
                      smallest, dark red for the largest; the legend states the range)
                      and show the role by the border colour. Needs
                      ``root.backward(retain_grads=True)`` first, since plain
                      ``backward()`` frees intermediate gradients; ValueError otherwise.
      rankdir         where the arrows point: "TB" (default), "LR", "BT" or "RL".
      cluster_scopes  draw each ``mg.scope`` as a dashed, labelled box, nested as the
                      scopes are ('lstm/l0/t3': a layer box around step boxes). An op is
                      drawn in the box of the tensor it makes; tensors created at top
                      level (parameters, inputs) stay outside, so a weight's edges into
                      every step are visible.
      keep_steps      for long sequences: draw only the first and last ``keep_steps``
                      time steps of each layer (a time step is a scope named
                      ``t<number>``). The steps in between become one dashed marker
                      node per layer, and edges into or out of them go to the marker.
                      None (default) draws every step.
      title           a caption at the top.

    The time steps of a layer follow one another in the direction of the arrows, in
    time order, each laid out like the others. The DOT text (``.source``) is identical
    on every run for the same graph. In Jupyter the returned Digraph displays inline;
    ``render`` writes it to a file.
    """
    order = order or topological_order(root)
    norms, grad_range = {}, None
    if show_grads:
        norms = {i: grad_norm(t) for i, t in enumerate(order) if t.grad is not None}
        if not norms or any(t.op is not None for t in order):  # a lone leaf: its own
            check_grads(order)
        grad_range = log_range(norms.values()) or (0.0, 0.0)

    drawing = _Builder(
        root, show_shapes=show_shapes, norms=norms, grad_range=grad_range,
        rankdir=rankdir, cluster_scopes=cluster_scopes,
        hidden=_elided_steps((t.scope for t in order), keep_steps) if keep_steps else {})
    for index, tensor in enumerate(order):
        drawing.add(index, tensor)
    counts = drawing.buses(drawing.edge_counts(order))
    step_lines = drawing.step_order_lines(counts)
    drawing.sibling_order(counts, step_lines)
    parameters = {drawing.node_of[i] for i, t in enumerate(order) if isinstance(t, Parameter)}

    body = [f'label="{quoted(title)}" labelloc="t" fontsize="16"'] if title else []
    legend = ops_legend(drawing.roles, grad_range, drawing.has_no_grad, bool(drawing.markers))
    body.append(f"legend [shape=plaintext fontsize=10 label={legend}]")
    # tied to the root, the legend sits just below the graph instead of beside it as a
    # component of its own, which widened every picture by its width
    body.append(f"{drawing.node_of[-1]} -> legend [style=invis]")
    body += drawing.cluster_lines()
    body += drawing.edge_lines(counts, parameters)
    body += step_lines
    picture = digraph("minigrad", body, graph_attr={"rankdir": rankdir, **LAYOUT},
                      node_attr={"fontname": "Helvetica"},
                      edge_attr={"arrowsize": "0.6", "fontsize": "9"})
    edges = [(tail, head) for tail, head, _ in counts]
    edges += [(line.split()[0], line.split()[2]) for line in step_lines]
    edges.append((drawing.node_of[-1], "legend"))
    return Drawing(picture, nodes=[*drawing.attributes, "legend"], edges=edges,
                   clusters=len(drawing.clusters) - 1, node_of=drawing.node_of,
                   op_node_of=[drawing.op_node_of.get(i) for i in range(len(order))])


def min_nodes(census, keep):
    """The fewest nodes this view draws at ``keep_steps=keep`` (the guard's census): a
    node per tensor and per op, one marker per layer with hidden steps, the legend."""
    count = sum(census.outside) + 1
    for kept, hiding in census.kept(keep).values():
        count += sum(sum(step) for step in kept) + hiding
    return count


NO_STEPS_CAPTION = ("no time steps to draw in the {view} view (no scope named t<number>): "
                    "the ops view instead")


def time_steps_for(view, root, options):
    """(the ``TimeSteps`` of ``root``'s graph, None) for ``view`` (steps, rolled), which
    draws time steps, once show_grads is checked to have gradients to show; or (None,
    this view's drawing, captioned to say why) when the graph has none. ``options``:
    the view's ``draw`` arguments."""
    structure = TimeSteps(root, options["order"])
    if not structure.layers:
        caption = NO_STEPS_CAPTION.format(view=view)
        title = options["title"]
        return None, draw(root, **dict(
            options, order=structure.order, title=f"{title}\n{caption}" if title else caption,
            rankdir=options["rankdir"] or DEFAULT_RANKDIR))
    if options["show_grads"]:
        check_grads(t for step in structure.steps for t in step.tensors)
    return structure, None
