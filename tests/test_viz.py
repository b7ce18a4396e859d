"""Tests of mg.viz: the DOT text as text, then rendering through Graphviz.

Most graphs here come from a tiny LSTM written inline with mg ops and scopes
(lstm > l0 > t0, t1, ...), a hand-written RNN and GRU, and seeded random graphs, so they
depend on nothing but the engine; only the tests of examples/render_graph.py use models/.
Every drawing that reaches Graphviz goes through the real ``dot`` and must come back as
valid SVG.
"""
import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from dot_reader import attribute, parse, svg_root, svg_texts, unquote
from minigrad.tensor import topological_order
from minigrad.viz.drawing import Drawing
from minigrad.viz.files import run_dot
from minigrad.viz.guard import CLUSTER_COST, layout_size

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# -- graphs --------------------------------------------------------------------------------

class _Cell(mg.nn.Module):
    def __init__(self, D, H, rng):
        self.weight = mg.nn.Parameter(rng.uniform(-0.5, 0.5, (D + H, 4 * H)))
        self.bias = mg.nn.Parameter(rng.uniform(-0.5, 0.5, (4 * H,)))


class _Net(mg.nn.Module):
    def __init__(self, D, H, rng):
        self.cell = _Cell(D, H, rng)  # parameters become 'cell.weight', 'cell.bias'


def tiny_lstm(steps=3, D=2, H=2, seed=0, x_grad=True):
    """The loss of an LSTM unrolled over ``steps``, scoped 'lstm/l0/t{k}' like models.LSTM."""
    rng = np.random.default_rng(seed)
    net = _Net(D, H, rng)
    w, b = net.cell.weight, net.cell.bias
    x = mg.Tensor(rng.normal(size=(1, steps, D)), requires_grad=x_grad, name="x")
    h = mg.Tensor(np.zeros((1, H)))
    c = mg.Tensor(np.zeros((1, H)))
    with mg.scope("lstm"), mg.scope("l0"):
        for t in range(steps):
            with mg.scope(f"t{t}"):
                z = mg.concat([x[:, t, :], h], axis=1) @ w + b
                i, f = mg.sigmoid(z[:, :H]), mg.sigmoid(z[:, H:2 * H])
                g, o = mg.tanh(z[:, 2 * H:3 * H]), mg.sigmoid(z[:, 3 * H:])
                c = f * c + i * g
                h = o * mg.tanh(c)
    return (h * h).mean()


def chain(steps, factor=0.1):
    """h <- factor * tanh(h) per step: the gradient shrinks by about ``factor`` a step."""
    h = mg.Tensor(np.full(3, 0.5), requires_grad=True, name="h0")
    for t in range(steps):
        with mg.scope(f"t{t}"):
            h = mg.tanh(h) * factor
    return h.sum()


def node_labelled(nodes, first):
    """The one node whose label starts with the field or line ``first``."""
    found = [n for n, (label, _, _) in nodes.items()
             if label and re.split(r" \| |\n", label)[0] == first]
    assert len(found) == 1, (first, found)
    return found[0]


# -- structure -------------------------------------------------------------------------------

def test_one_nested_cluster_per_time_step():
    source = mg.viz.graph(tiny_lstm(steps=3)).source
    _, clusters, _ = parse(source)
    assert source.count("subgraph cluster") == 5
    assert clusters == [("lstm",), ("lstm", "l0"), ("lstm", "l0", "t0"),
                        ("lstm", "l0", "t1"), ("lstm", "l0", "t2")]


def test_op_labels_and_details_are_drawn_inside_their_step():
    nodes, _, _ = parse(mg.viz.graph(tiny_lstm(steps=2, H=2)).source)
    labels = {label for label, _, _ in nodes.values()}
    for op in ("matmul", "add", "sigmoid", "tanh", "multiply", "mean"):
        assert op in labels
    # slices show their index; LR puts the detail on a second line
    lr = {label for label, _, _ in parse(mg.viz.graph(tiny_lstm(steps=2, H=2),
                                                      rankdir="LR").source)[0].values()}
    assert "slice\n[:, :2]" in lr
    assert "slice [:, :2]" in labels and "slice [:, 6:]" in labels
    steps = {path for label, path, _ in nodes.values() if label == "matmul"}
    assert steps == {("lstm", "l0", "t0"), ("lstm", "l0", "t1")}


def through_bus(edges, node):
    """[(tap, head, attrs)]: the edges leaving ``node``, followed along its bus (the
    ``tap...`` points it reaches) in order; a tensor used by few steps has no taps."""
    found, todo = [], [(None, node)]
    while todo:
        tap, tail = todo.pop(0)
        for t, head, attrs, *_ in edges:
            if t == tail:
                if head.startswith("tap"):
                    todo.append((head, head))
                else:
                    found.append((tap, head, attrs))
    return found


def test_parameters_stay_outside_clusters_with_one_edge_per_step():
    nodes, _, edges = parse(mg.viz.graph(tiny_lstm(steps=2)).source)
    for name in ("cell.weight", "cell.bias"):
        node = node_labelled(nodes, name)
        assert nodes[node][1] == ()  # top level
        out = [head for tail, head, *_ in edges if tail == node]
        assert [nodes[head][1][-1] for head in out] == ["t0", "t1"]


def test_a_tensor_used_by_many_steps_reaches_them_along_one_bus():
    steps = 5
    nodes, _, edges = parse(mg.viz.graph(tiny_lstm(steps=steps)).source)
    for name in ("cell.weight", "cell.bias", "x"):
        node = node_labelled(nodes, name)
        first = [head for tail, head, *_ in edges if tail == node]
        assert len(first) == 1 and first[0].startswith("tap")  # one line leaves it
        reached = through_bus(edges, node)
        taps = [tap for tap, _, _ in reached]
        assert len(set(taps)) == steps  # one tap per step, each feeding its own step
        assert [nodes[head][1][-1] for _, head, _ in reached] == [f"t{t}" for t in
                                                                   range(steps)]
        if name != "x":  # the bus keeps the parameter's colour all the way
            assert all(attribute(attrs, "color") == mg.viz.ROLES["parameter"][1]
                       for _, _, attrs in reached)


def test_roles_are_coloured_and_explained_in_the_legend():
    source = mg.viz.graph(tiny_lstm(steps=2)).source
    nodes, _, _ = parse(source)
    fill = {name: attribute(nodes[node_labelled(nodes, name)][2], "fillcolor")
            for name in ("cell.weight", "x")}
    root = [n for n, (label, _, _) in nodes.items() if label and label.startswith("()")]
    assert fill["cell.weight"] == mg.viz.ROLES["parameter"][0]
    assert fill["x"] == mg.viz.ROLES["input"][0]
    assert attribute(nodes[root[0]][2], "fillcolor") == mg.viz.ROLES["output"][0]
    for role in ("parameter", "input", "output", "intermediate"):
        assert f"{role} (fill)" in source


def test_repeated_edges_collapse_into_one_labelled_edge():
    w = mg.Tensor(np.ones(2), requires_grad=True, name="w")
    _, _, edges = parse(mg.viz.graph((w * w).sum()).source)
    into_multiply = [e for e in edges if e[0] == "v0"]
    assert len(into_multiply) == 1 and attribute(into_multiply[0][2], "xlabel") == "x2"


def test_leaves_appear_only_as_inputs_of_recorded_ops():
    w = mg.Tensor(np.ones(2), requires_grad=True, name="w")
    mg.Tensor(np.ones(2), name="unused")
    product = mg.Tensor(np.ones(2), name="a") * mg.Tensor(np.ones(2), name="b")  # unrecorded
    nodes, _, _ = parse(mg.viz.graph((w * 2.0 + product).sum()).source)
    tensors = sorted(label for node, (label, _, _) in nodes.items() if node.startswith("v"))
    # w, the constant 2 (shown by value), the product made without recording (a leaf),
    # and the outputs of multiply, add and sum
    assert tensors == sorted(["w | (2,)", "2", "(2,)", "(2,)", "(2,)", "() | 6"])


def test_show_shapes_false_leaves_shapes_out():
    w = mg.Tensor(np.ones((3, 4)), requires_grad=True, name="w")
    assert "(3, 4)" in mg.viz.graph(w.sum()).source
    assert "(3, 4)" not in mg.viz.graph(w.sum(), show_shapes=False).source


def test_cluster_scopes_false_draws_no_clusters():
    source = mg.viz.graph(tiny_lstm(steps=2), cluster_scopes=False).source
    assert "subgraph cluster" not in source and "matmul" in source


# -- determinism and size ------------------------------------------------------------------

def test_same_graph_gives_identical_text():
    loss = tiny_lstm(steps=3)
    assert mg.viz.graph(loss).source == mg.viz.graph(loss).source


def test_identical_graphs_built_separately_give_identical_text():
    first, second = tiny_lstm(steps=3, seed=5), tiny_lstm(steps=3, seed=5)
    first.backward(retain_grads=True)
    second.backward(retain_grads=True)
    assert (mg.viz.graph(first, show_grads=True).source
            == mg.viz.graph(second, show_grads=True).source)
    assert mg.viz.graph(first).source != mg.viz.graph(tiny_lstm(steps=3, seed=6)).source


def test_a_2000_step_chain_draws_without_recursion(monkeypatch):
    with pytest.raises(ValueError, match="too big for Graphviz"):
        mg.viz.graph(chain(2000))  # dot needs 35 s and 800 MB for it
    monkeypatch.setattr(mg.viz, "LAYOUT_LIMIT", None)  # the DOT text, for another tool
    source = mg.viz.graph(chain(2000)).source
    _, clusters, _ = parse(source)
    assert len(clusters) == 2000 and clusters[-1] == ("t1999",)


# -- time steps ---------------------------------------------------------------------------

def _cluster_boxes(source, rankdir):
    """{cluster label: (low, high)} along the rank axis, from Graphviz's own layout."""
    layout = json.loads(subprocess.run(["dot", "-Tjson"], input=source.encode(),
                                       capture_output=True, check=True).stdout)
    axis = 1 if rankdir == "TB" else 0
    boxes = {}
    for obj in layout["objects"]:
        if "bb" in obj and obj.get("label", "").startswith("t"):
            bb = [float(v) for v in obj["bb"].split(",")]
            boxes[obj["label"]] = sorted((bb[axis], bb[axis + 2]))
    return boxes


@pytest.mark.parametrize("rankdir", ["TB", "LR"])
def test_time_steps_are_laid_out_one_after_another_in_order(rankdir):
    boxes = _cluster_boxes(mg.viz.graph(tiny_lstm(steps=4), rankdir=rankdir).source, rankdir)
    spans = [boxes[f"t{t}"] for t in range(4)]
    if rankdir == "TB":  # Graphviz's y grows upwards: t0 on top
        spans = [(-high, -low) for low, high in spans]
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:])), spans


def test_keep_steps_elides_the_middle_into_one_marker():
    source = mg.viz.graph(tiny_lstm(steps=7), keep_steps=2).source
    nodes, clusters, edges = parse(source)
    steps = [path[-1] for path in clusters if len(path) == 3]
    assert steps == ["t0", "t1", "t2 ... t4", "t5", "t6"]
    marker = node_labelled(nodes, "3 time steps")  # "3 time steps\nnot drawn"
    assert nodes[marker][1] == ("lstm", "l0", "t2 ... t4")
    weight = node_labelled(nodes, "cell.weight")
    reached = through_bus(edges, weight)
    to_marker = [attrs for _, head, attrs in reached if head == marker]
    assert len(to_marker) == 1 and attribute(to_marker[0], "xlabel") == "x3"
    # the weight still feeds the four drawn steps, one tap each, and the marker
    assert len({tap for tap, _, _ in reached}) == 4 + 1 and len(reached) == 4 + 1
    # the recurrent state flows from t1 into the marker and out of it into t5
    assert any(nodes[t][1][-1:] == ("t1",) for t, h, *_ in edges if h == marker)
    assert any(nodes[h][1][-1:] == ("t5",) for t, h, *_ in edges if t == marker)
    assert all(tail != head for tail, head, *_ in edges)  # no loops on the marker
    assert "time steps not drawn" in source  # legend


def test_what_hidden_steps_give_one_op_enters_it_as_one_edge():
    h = mg.Tensor(np.ones(2), requires_grad=True, name="h0")
    outputs = []
    for t in range(9):
        with mg.scope(f"t{t}"):
            h = mg.tanh(h) * 0.5
        outputs.append(h)
    nodes, _, edges = parse(mg.viz.graph(mg.stack(outputs).sum(), keep_steps=2).source)
    marker = node_labelled(nodes, "5 time steps")
    out_of_marker = [(head, attrs, port) for tail, head, attrs, _, port in edges
                     if tail == marker and head.startswith("tap")]
    assert len(out_of_marker) == 1  # onto the bus collecting every step's output
    head, attrs, port = out_of_marker[0]
    assert head.startswith("tap") and attribute(attrs, "xlabel") == "x5" and port is None
    # the bus brings all nine into the stack as one edge
    stack = node_labelled(nodes, "stack axis=0")
    into_stack = [attrs for tail, head, attrs, *_ in edges if head == stack]
    assert len(into_stack) == 1 and attribute(into_stack[0], "xlabel") == "x9"


def test_keep_steps_leaves_short_sequences_alone():
    loss = tiny_lstm(steps=4)
    assert mg.viz.graph(loss, keep_steps=2).source == mg.viz.graph(loss).source


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_keep_steps_is_validated(bad):
    with pytest.raises(ValueError, match="keep_steps must be a positive integer"):
        mg.viz.graph(tiny_lstm(steps=2), keep_steps=bad)


# -- gradients ------------------------------------------------------------------------------

def _luminance(hex_colour):
    r, g, b = (int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_gradient_colours_fade_toward_the_first_step():
    loss = chain(4, factor=0.1)
    loss.backward(retain_grads=True)
    source = mg.viz.graph(loss, show_grads=True).source
    nodes, _, _ = parse(source)
    # h_t, the last tensor of step t: its gradient is about 10x smaller one step back
    last = {}
    for node, (label, path, attrs) in nodes.items():
        if path and label.startswith("(3,)") and node.startswith("v"):
            last[path[-1]] = max(last.get(path[-1], (-1, "")), (int(node[1:]), attrs))
    fills = [attribute(last[f"t{t}"][1], "fillcolor") for t in range(4)]
    brightness = [_luminance(fill) for fill in fills]
    assert brightness[0] > brightness[1] > brightness[2] > brightness[3], fills
    assert attribute(last["t3"][1], "fontcolor") == "#ffffff"  # readable on dark red
    low, high = map(float, re.search(r"range ([-+]\d+\.\d) to ([-+]\d+\.\d)", source).groups())
    h0 = mg.tensor.topological_order(loss)[0]  # the smallest gradient; h_3's is the largest
    assert low == pytest.approx(np.log10(np.linalg.norm(h0.grad)), abs=0.05) and low < -3
    assert high == pytest.approx(np.log10(np.sqrt(3)), abs=0.05)
    assert "|grad| 1<" in source


def _scale_labels(source):
    """The gradient scale's title and labels in the ops view's legend, left to right."""
    legend = next(line for line in source.splitlines() if line.lstrip().startswith("legend "))
    scale = legend[legend.index("log10 |grad|"):]
    return (scale[:scale.index("</b>")],
            re.findall(r'<td align="left">([-+]\d+\.\d+)</td>', scale))


def test_a_narrow_gradient_range_gets_distinct_legend_labels():
    loss = chain(2, factor=1.0)  # norms from 1 to sqrt(3): log10 0 to 0.24
    loss.backward(retain_grads=True)
    title, labels = _scale_labels(mg.viz.graph(loss, show_grads=True).source)
    assert len(labels) == 5 and len(set(labels)) == 5, labels  # not +0.0 +0.1 +0.1 ...
    values = [float(text) for text in labels]
    assert values == sorted(values)  # pale to dark, left to right
    assert values[0] == pytest.approx(0.0, abs=0.005)
    assert values[-1] == pytest.approx(np.log10(np.sqrt(3)), abs=0.005)
    assert title.endswith(f"range {labels[0]} to {labels[-1]}:")


def test_a_gradient_scale_of_one_value_is_labelled_once():
    x = mg.Tensor(np.full(1, 2.0), requires_grad=True, name="x")
    loss = (x * 1.0).sum()  # every gradient is norm 1: log10 0
    loss.backward(retain_grads=True)
    title, labels = _scale_labels(mg.viz.graph(loss, show_grads=True).source)
    assert labels == ["+0.0"] and "range" not in title


def test_gradient_colouring_only_with_show_grads():
    loss = chain(2)
    loss.backward(retain_grads=True)
    assert "log10 |grad|" not in mg.viz.graph(loss).source
    assert "log10 |grad|" in mg.viz.graph(loss, show_grads=True).source


def test_show_grads_without_backward_says_what_to_call():
    with pytest.raises(ValueError, match=r"backward\(retain_grads=True\) first"):
        mg.viz.graph(chain(2), show_grads=True)


def test_show_grads_after_plain_backward_asks_for_retained_grads():
    loss = chain(2)
    loss.backward(retain_graph=True)  # only the leaf h0 keeps its gradient
    with pytest.raises(ValueError, match=r"retain_grads=True"):
        mg.viz.graph(loss, show_grads=True)


# -- options and escaping -------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["XY", "lr", ""])
def test_rankdir_is_validated(bad):
    with pytest.raises(ValueError, match="rankdir must be one of TB, LR, BT, RL"):
        mg.viz.graph(chain(1), rankdir=bad)


@pytest.mark.parametrize("rankdir", ["TB", "LR", "BT", "RL"])
def test_rankdir_is_passed_to_graphviz(rankdir):
    assert f"rankdir={rankdir}" in mg.viz.graph(chain(1), rankdir=rankdir).source


WEIRD = ['say "hi"', "{braces}", "a|b", "<port>", "back\\slash", "\\{ and \\\"", "end\\",
         "two\nlines", "&amp;", "&lt;b&gt;", "x & y", "σ(ü) → ħ", "]; } digraph {"]


def _weird_graph():
    tensors = [mg.Tensor(np.ones(2), requires_grad=True, name=name) for name in WEIRD]
    with mg.scope('scope "q" {b} |p| <a> \\ &amp;'):
        total = tensors[0]
        for t in tensors[1:]:
            total = total + t
    return total.sum()


def test_weird_names_are_escaped_in_the_dot_text():
    nodes, clusters, _ = parse(mg.viz.graph(_weird_graph()).source)
    labels = [label for label, _, _ in nodes.values()]
    for name in WEIRD:
        assert f"{name} | (2,)" in labels, name
    assert clusters == [('scope "q" {b} |p| <a> \\ &amp;',)]


def test_weird_names_render_and_show_exactly(tmp_path):
    path = mg.viz.render(_weird_graph(), tmp_path / "weird.svg", title='t"i{t}le\\')
    # Graphviz decodes entities: "&amp;" must reach the SVG as the text "&amp;", not "&"
    texts = svg_texts(Path(path).read_bytes())
    for name in WEIRD + ['scope "q" {b} |p| <a> \\ &amp;', 't"i{t}le\\']:
        for line in name.split("\n"):
            assert line in texts, (line, texts)


# Characters a name may hold that Graphviz or XML treat specially: control characters,
# DEL and C1, lone surrogates, noncharacters, Graphviz's escapes, quotes, markup,
# Chinese and an emoji outside the Basic Multilingual Plane.
AWKWARD = ([chr(c) for c in range(0x20) if c != 0x0a] + ["\x7f", "\x85", "\ud800", "\udfff",
           "\ufffe", "\uffff", "\n"] + [f"\\{c}" for c in "GNEHTLlnr\\x"]
           + ['"', "'", "<", ">", "&", "&amp;", "{", "}", "|", "中文", "😀", "a", "Z"])


def drawn_as(text):
    """What a learner must see for ``text``, one entry per line: printable characters
    as they are, the others as Python writes their escapes."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [line for line in "".join(
        c if c.isprintable() or c == "\n" else c.encode("unicode_escape").decode("ascii")
        for c in text).split("\n") if line]


def awkward_name(rng):
    return "".join(rng.choice(AWKWARD) for _ in range(int(rng.integers(1, 7))))


@pytest.mark.parametrize("seed", range(16))
def test_any_name_scope_and_title_is_drawn_as_written_in_every_view(seed, tmp_path):
    rng = np.random.default_rng(seed)
    x_name, w_name, h_name, loss_name, layer, title = (awkward_name(rng) for _ in range(6))
    x = mg.Tensor(np.ones((1, 2)), name=x_name)
    w = mg.nn.Parameter(np.full((2, 2), 0.5), name=w_name)
    h = x
    with mg.scope(layer.replace("/", "|")):
        for t in range(3):
            with mg.scope(f"t{t}"):
                h = mg.tanh(h @ w)
                h.name = h_name
    loss = h.sum()
    loss.name = loss_name
    for view in ("ops", "steps", "rolled"):
        svg = run_dot(mg.viz.graph(loss, view=view, title=title).source, "svg")
        texts = svg_texts(svg)  # fails unless the SVG is well-formed XML
        # each of these is a whole text of its own: a table cell, a line of a label
        whole = {"title": title, "layer": layer.replace("/", "|"), "h": h_name}
        if view != "steps":  # the steps view lists x as a slice, w beside its shape
            whole.update(x=x_name, weight=w_name, loss=loss_name)
        for what, text in whole.items():
            for line in drawn_as(text):
                assert line in texts, (view, what, line, texts)
        for line in drawn_as(w_name):  # in every view, within its line
            assert any(line in t for t in texts if t), (view, line, texts)
        dot_path = mg.viz.render(loss, tmp_path / f"{view}.dot", view=view, title=title)
        dot_path.read_bytes().decode("utf-8")  # no UnicodeEncodeError, valid UTF-8


@pytest.mark.parametrize("blank", ["\n", "\r", "\r\n \n"])
def test_a_scope_of_nothing_but_line_breaks_is_shown_escaped_in_every_view(blank):
    """Drawn as breaks it is an empty label, on which dot 2.43 aborts (rolled view)."""
    w = mg.nn.Parameter(np.full((2, 2), 0.5), name="w")
    h = mg.Tensor(np.ones((1, 2)), name="x")
    with mg.scope(blank):
        for t in range(3):
            with mg.scope(f"t{t}"):
                h = mg.tanh(h @ w)
    for view in ("ops", "steps", "rolled"):
        texts = svg_texts(run_dot(mg.viz.graph(h.sum(), view=view).source, "svg"))
        assert any(text and text.strip().startswith("\\n") for text in texts), (view, texts)


def test_a_name_is_drawn_whole_in_its_own_field():
    name = "a\\Gb\x01\\N\ud800\ufffe中😀\\\\"
    w = mg.nn.Parameter(np.ones(2), name=name)
    texts = svg_texts(run_dot(mg.viz.graph((w * 2).sum()).source, "svg"))
    assert "a\\Gb\\x01\\N\\ud800\\ufffe中😀\\\\" in texts


# -- rendering ------------------------------------------------------------------------------

def test_render_svg(tmp_path):
    path = tmp_path / "g.svg"
    assert mg.viz.render(tiny_lstm(steps=2), path) == path
    texts = set(svg_texts(path.read_bytes()))
    assert {"t0", "t1", "cell.weight", "matmul"} <= texts
    assert [p.name for p in tmp_path.iterdir()] == ["g.svg"]  # no temporary file left


def test_render_png_and_pdf(tmp_path):
    png = mg.viz.render(tiny_lstm(steps=2), str(tmp_path / "g.PNG"))
    assert png == str(tmp_path / "g.PNG")
    assert (tmp_path / "g.PNG").read_bytes()[:8] == PNG_SIGNATURE
    assert (mg.viz.render(chain(2), tmp_path / "g.pdf")).read_bytes()[:5] == b"%PDF-"


def test_render_dot_needs_no_graphviz(tmp_path, monkeypatch):
    loss = tiny_lstm(steps=2)
    monkeypatch.setenv("PATH", "")
    path = mg.viz.render(loss, tmp_path / "g.dot", rankdir="TB")
    assert path.read_text(encoding="utf-8") == mg.viz.graph(loss, rankdir="TB").source


def test_missing_dot_explains_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RuntimeError, match=r"apt-get install graphviz.*brew install "
                                           r"graphviz.*\.dot file"):
        mg.viz.render(chain(1), tmp_path / "g.svg")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, shown", [("g.jpg", "'.jpg'"), ("graph", "'(none)'")])
def test_unknown_suffix_is_named(tmp_path, name, shown):
    with pytest.raises(ValueError, match=re.escape(f"unknown suffix {shown}")):
        mg.viz.render(chain(1), tmp_path / name)


# -- the example script -----------------------------------------------------------------

def _run_example(*args):
    return subprocess.run([sys.executable, "examples/render_graph.py", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_example_renders_an_unrolled_lstm(tmp_path):
    out = tmp_path / "lstm.svg"
    run = _run_example("--steps", "2", "--hidden", "2", "--grads", "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert str(out) in run.stdout
    texts = set(svg_texts(out.read_bytes()))
    assert {"t0", "t1", "lstm.l0.weight", "lstm.l0.bias", "head.weight", "x", "loss",
            "sigmoid", "tanh"} <= texts
    assert any(text.startswith("log10 |grad| (fill)") for text in texts)
    assert "t2" not in texts


def test_example_draws_long_sequences_legibly_and_says_so(tmp_path):
    out = tmp_path / "lstm.dot"
    run = _run_example("--steps", "16", "--hidden", "2", "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert "first and last 4" in run.stderr and "--view steps" in run.stderr
    _, clusters, _ = parse(out.read_text())
    assert ("lstm", "l0", "t4 ... t11") in clusters


@pytest.mark.parametrize("cell, weight", [("gru", "gru.l0.weight_hh"), ("rnn", "rnn.l0.weight")])
def test_example_draws_the_other_cells(tmp_path, cell, weight):
    out = tmp_path / "g.dot"
    run = _run_example("--cell", cell, "--steps", "3", "--hidden", "2", "-o", str(out))
    assert run.returncode == 0, run.stderr
    text = out.read_text()
    assert weight in text and f"untrained {cell.upper()}" in text


@pytest.mark.parametrize("view", ["steps", "rolled"])
def test_example_draws_the_other_views(tmp_path, view):
    out = tmp_path / "g.dot"
    run = _run_example("--steps", "3", "--hidden", "2", "--view", view, "-o", str(out))
    assert run.returncode == 0, run.stderr
    loss, title = _example_graph(3)
    assert out.read_text() == mg.viz.graph(loss, view=view, title=title).source


def _example_graph(steps):
    """(loss, title) as examples/render_graph.py builds them for a fresh model."""
    sys.path.insert(0, str(REPO / "examples"))
    try:
        import render_graph
    finally:
        sys.path.pop(0)
    return render_graph.build(render_graph.parse_args(["--steps", str(steps), "--hidden",
                                                       "2", "-o", "g.dot"]))


def test_example_rejects_bad_flags_in_one_line():
    run = _run_example("--steps", "0", "-o", "unused.svg")
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].endswith("--steps must be in 1..64, got 0")
    assert not (REPO / "unused.svg").exists()


def _train(script, out, *flags):
    """A (barely) trained 3-bit model saved as ``out/model.npz`` by an example script."""
    run = subprocess.run([sys.executable, str(REPO / "examples" / script), "--bits", "3",
                          *flags, "--quiet", "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_example_draws_a_trained_model_with_load(tmp_path):
    _train("binary_addition.py", tmp_path, "--hidden", "3", "--steps", "5")
    out = tmp_path / "trained.dot"
    run = _run_example("--load", str(tmp_path / "model.npz"), "--steps", "3", "--grads",
                       "-o", str(out))
    assert run.returncode == 0, run.stderr
    text = out.read_text()
    assert "a trained LSTM (hidden size 3)" in text and "t2" in text


def test_example_load_of_a_missing_file_is_one_clear_error(tmp_path):
    run = _run_example("--load", str(tmp_path / "none.npz"), "-o", str(tmp_path / "x.svg"))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].endswith("none.npz: no such file")


def test_example_load_of_a_subtraction_model_says_so(tmp_path):
    _train("binary_subtraction.py", tmp_path, "--hidden", "2", "--steps", "2")
    run = _run_example("--load", str(tmp_path / "model.npz"), "-o", str(tmp_path / "x.svg"))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].endswith("trained on subtraction, not addition")


# -- any graph from the public ops draws with the real dot -----------------------------------

def _svg(root, **options):
    """``root`` drawn by the real dot; what dot writes must be valid XML."""
    data = run_dot(mg.viz.graph(root, **options).source, "svg")
    svg_root(data)
    return data


def hand_rnn(T, x_grad=False, seed=0):
    """h <- tanh(x_t Wx + h Wh), step t in scope 't{t}'; x needs no gradient by default:
    the graph that made dot fail with 'lost v7 v8 edge'."""
    rng = np.random.default_rng(seed)
    x = mg.Tensor(rng.normal(size=(1, T, 2)), requires_grad=x_grad, name="x")
    wx = mg.Tensor(rng.normal(size=(2, 3)), requires_grad=True, name="Wx")
    wh = mg.Tensor(rng.normal(size=(3, 3)), requires_grad=True, name="Wh")
    h = mg.Tensor(np.zeros((1, 3)))
    for t in range(T):
        with mg.scope(f"t{t}"):
            h = mg.tanh(x[:, t, :] @ wx + h @ wh)
    return (h * h).sum()


def hand_gru(T, seed=0):
    """A GRU written out from primitives, with 1 - z; x needs no gradient."""
    rng = np.random.default_rng(seed)
    x = mg.Tensor(rng.normal(size=(1, T, 2)), name="x")
    w = {k: mg.Tensor(rng.normal(size=(5, 3)), requires_grad=True, name=f"W{k}")
         for k in "zrn"}
    h = mg.Tensor(np.zeros((1, 3)), name="h0")
    for t in range(T):
        with mg.scope(f"t{t}"):
            xt = x[:, t, :]
            xh = mg.concat([xt, h], axis=1)
            z, r = mg.sigmoid(xh @ w["z"]), mg.sigmoid(xh @ w["r"])
            n = mg.tanh(mg.concat([xt, r * h], axis=1) @ w["n"])
            h = (1 - z) * n + z * h
    return h.sum()


def _with_grads(loss, grads):
    if grads:
        loss.backward(retain_grads=True)
    return loss


# every T from 1 to 8, each direction with and without gradients twice over; all four
# at T = 5, where dot used to fail
CASES = [(T, *[("TB", False), ("LR", True), ("TB", True), ("LR", False)][T % 4])
         for T in range(1, 9)] + [(5, "TB", True), (5, "LR", True), (5, "TB", False),
                                  (5, "LR", False)]


@pytest.mark.parametrize("T, rankdir, grads", CASES)
@pytest.mark.parametrize("model", [hand_rnn, hand_gru])
def test_hand_written_rnn_and_gru_draw_with_dot(model, T, rankdir, grads):
    svg = _svg(_with_grads(model(T), grads), rankdir=rankdir, show_grads=grads)
    assert {f"t{t}" for t in range(T)} <= set(svg_texts(svg))


@pytest.mark.parametrize("rankdir", ["TB", "LR"])
@pytest.mark.parametrize("grads", [False, True])
def test_lstm_draws_with_dot(rankdir, grads):
    texts = svg_texts(_svg(_with_grads(tiny_lstm(steps=3), grads), rankdir=rankdir,
                            show_grads=grads))
    assert {"t0", "t1", "t2", "cell.weight", "matmul"} <= set(texts)


NAMES = ['q"uote', "{brace}", "&amp;", "a & b", "<tag>", "new\nline", "ünï→ħ", "back\\", ""]
UNARY = [mg.tanh, mg.sigmoid, mg.exp, lambda a: a * a, lambda a: -a, lambda a: a.sum(),
         lambda a: a[:1], lambda a: a.reshape((1, 3)).reshape((3,))]
BINARY = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / (
    b * b + 1), lambda a, b: mg.concat([a, b], axis=0)[:3], lambda a, b: a @ b[:, None] * a,
    lambda a, b: (a * a + 1) ** b, lambda a, b: mg.stack([a, b, a]).sum(axis=0)]


def random_graph(seed):
    """A random graph over 3-vectors from the public ops; names, scopes (none, one,
    nested) and which leaves need gradients all drawn at random."""
    rng = np.random.default_rng(seed)
    tensors = [mg.Tensor(rng.normal(size=3), requires_grad=bool(rng.integers(2)),
                         name=str(rng.choice(NAMES)) or None) for _ in range(3)]
    for k in range(int(rng.integers(4, 12))):
        odd = str(rng.choice(NAMES[:-1])).replace("/", "|")
        scopes = [(), ("s",), ("s", f"t{k % 3}"), (odd, f"t{k}")][int(rng.integers(4))]
        with contextlib.ExitStack() as stack:
            for scope in scopes:
                stack.enter_context(mg.scope(scope))
            if rng.random() < 0.4:
                out = UNARY[int(rng.integers(len(UNARY)))](tensors[int(rng.integers(len(tensors)))])
            else:
                a, b = rng.choice(len(tensors), 2)
                out = BINARY[int(rng.integers(len(BINARY)))](tensors[a], tensors[b])
            if out.shape != (3,):
                out = out * mg.Tensor(np.ones(3), name=str(rng.choice(NAMES)))
            out.name = str(rng.choice(NAMES)) or None
            tensors.append(out)
    return sum(tensors[3:], tensors[3]).sum()


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_draw_with_dot(seed):
    loss = random_graph(seed)
    grads = seed % 2 == 1 and loss.requires_grad
    texts = svg_texts(_svg(_with_grads(loss, grads), rankdir=["TB", "LR"][seed % 4 // 2],
                            show_grads=grads))
    for tensor in topological_order(loss):
        for line in (tensor.name or "").split("\n"):
            if line:
                assert line in texts, (line, texts)


def test_one_minus_z_is_drawn_unlike_z_minus_one():
    def drawn(expression):
        z = mg.Tensor(np.ones(2), requires_grad=True, name="z")
        nodes, _, edges = parse(mg.viz.graph(expression(z).sum()).source)
        op = next(n for n, (label, _, _) in nodes.items() if label == "subtract")
        return {nodes[tail][0]: port for tail, head, _, _, port in edges if head == op}

    assert drawn(lambda z: 1 - z) == {"1": "p0", "z | (2,)": "p1"}
    assert drawn(lambda z: z - 1) == {"z | (2,)": "p0", "1": "p1"}
    z = mg.Tensor(np.ones(2), requires_grad=True, name="z")
    texts = svg_texts(_svg((1 - z).sum()))
    assert {"a", "b", "subtract"} <= set(texts)  # the slots are named in the picture


def test_operand_slots_of_matmul_concat_and_divide():
    a = mg.Tensor(np.ones((2, 2)), requires_grad=True, name="a")
    b = mg.Tensor(np.ones((2, 2)), requires_grad=True, name="b")
    nodes, _, edges = parse(mg.viz.graph((mg.concat([b, a, b @ a / a])).sum()).source)
    slots = {}
    for tail, head, _, _, port in edges:
        slots.setdefault(nodes[head][0], {})[nodes[tail][0].split(" | ")[0]] = port
    assert slots["matmul"] == {"b": "p0", "a": "p1"}
    assert slots["concat axis=-1"]["b"] == "p0" and slots["concat axis=-1"]["a"] == "p1"
    assert slots["divide"]["a"] == "p1"


def _z_users(source):
    """For every step: the ops z's tail ports o0, o1, ... lead to, in port order."""
    nodes, _, edges = parse(source)
    by_step = {}
    for tail, head, _, tail_port, _ in edges:
        if tail_port and nodes[head][0].startswith("slice [:, "):
            by_step.setdefault(nodes[head][1][-1], []).append((int(tail_port[1:]), head))
    return {step: [nodes[h][0] for _, h in sorted(users)] for step, users in by_step.items()}


def test_the_gates_keep_one_order_in_every_step():
    source = mg.viz.graph(tiny_lstm(steps=5, H=2)).source
    gates = ["slice [:, :2]", "slice [:, 2:4]", "slice [:, 4:6]", "slice [:, 6:]"]
    assert _z_users(source) == {f"t{t}": gates for t in range(5)}  # i, f, g, o
    # and dot draws them so: left to right in creation order, in every step
    layout = json.loads(run_dot(source, "json"))
    x_of = {obj["name"]: float(obj["pos"].split(",")[0]) for obj in layout["objects"]
            if "pos" in obj}
    nodes, _, _ = parse(source)
    for t in range(5):
        slices = sorted((int(n[2:]), n) for n, (label, path, _) in nodes.items()
                        if label in gates and path[-1] == f"t{t}")
        xs = [x_of[n] for _, n in slices]
        assert xs == sorted(xs), (t, xs)


def test_every_step_after_the_first_is_laid_out_alike():
    """The nodes of each step, read row by row and left to right from dot's layout, come
    in the same order in every step (t0 differs: its h and c are constants)."""
    source = mg.viz.graph(tiny_lstm(steps=5, H=2)).source
    nodes, _, _ = parse(source)
    layout = json.loads(run_dot(source, "json"))
    position = {obj["name"]: [float(v) for v in obj["pos"].split(",")]
                for obj in layout["objects"] if "pos" in obj}
    reading = {}
    for t in range(1, 5):
        mine = [n for n, (_, path, _) in nodes.items() if path[-1:] == (f"t{t}",)]
        rank_in_step = {n: k for k, n in enumerate(mine)}  # creation order in the step
        rows = sorted(mine, key=lambda n: (-round(position[n][1]), position[n][0]))
        reading[t] = [rank_in_step[n] for n in rows]
    assert all(reading[t] == reading[1] for t in (2, 3, 4)), reading


# -- the guard --------------------------------------------------------------------------

def test_a_graph_too_big_for_dot_is_refused_before_dot_runs(monkeypatch):
    loss = hand_rnn(800)
    monkeypatch.setenv("PATH", "")  # dot is never reached
    with pytest.raises(ValueError, match=r"too big.*keep_steps=(\d+).*view='steps'") as err:
        mg.viz.graph(loss)
    keep = int(re.search(r"keep_steps=(\d+)", str(err.value)).group(1))
    mg.viz.graph(loss, keep_steps=keep)  # the suggestion fits
    assert layout_size(mg.viz.fit(hand_rnn(8))) < mg.viz.LAYOUT_LIMIT / 500


def long_chain(ops, steps):
    """``ops`` ops, tanh then scale, one time step per pair when ``steps``."""
    h = mg.Tensor(np.full(3, 0.5), requires_grad=True, name="h0")
    for t in range(ops // 2):
        with mg.scope(f"t{t}") if steps else contextlib.nullcontext():
            h = mg.tanh(h) * 0.5
    return h.sum()


@pytest.fixture
def drawings_made(monkeypatch):
    """How many times each view drew: the guard must decide without redrawing."""
    made = {view: 0 for view in mg.viz.VIEWS}
    for view, module in mg.viz.VIEWS.items():
        def counted(*args, _draw=module.draw, _view=view, **kwargs):
            made[_view] += 1
            return _draw(*args, **kwargs)
        monkeypatch.setattr(module, "draw", counted)
    return made


@pytest.mark.parametrize("view", sorted(mg.viz.VIEWS))
def test_a_huge_graph_without_time_steps_is_refused_without_drawing_it(drawings_made, view):
    loss = long_chain(20_000, steps=False)
    with pytest.raises(ValueError, match="too big") as err:
        mg.viz.graph(loss, view=view)
    assert "keep_steps=" not in str(err.value)  # it has no steps to leave out
    assert "LAYOUT_LIMIT = None" in str(err.value)
    assert sum(drawings_made.values()) == 0


def test_the_guard_predicts_which_keep_steps_fits_instead_of_trying_each(drawings_made):
    loss = long_chain(20_000, steps=True)
    with pytest.raises(ValueError, match=r"too big.*keep_steps=16 ") as err:
        mg.viz.graph(loss)
    assert "view='steps'" in str(err.value) and "view='rolled'" in str(err.value)
    assert drawings_made["ops"] <= 2  # the whole is refused by its node count alone
    drawing = mg.viz.fit(loss, "ops", shrink=True)
    assert drawing.keep_steps == 16 and layout_size(drawing) <= mg.viz.LAYOUT_LIMIT


def test_a_keep_steps_given_too_big_is_told_a_smaller_one(monkeypatch):
    loss = hand_rnn(40)
    monkeypatch.setattr(mg.viz, "LAYOUT_LIMIT",
                        layout_size(mg.viz.fit(loss, keep_steps=4)) + 1)
    with pytest.raises(ValueError, match=r"keep_steps=4 \(draws"):
        mg.viz.graph(loss, keep_steps=8)
    assert mg.viz.fit(loss, keep_steps=8, shrink=True).keep_steps == 4


@pytest.mark.parametrize("view", sorted(mg.viz.VIEWS))
def test_the_guard_applies_to_every_view(monkeypatch, view):
    loss = tiny_lstm(steps=3)
    mg.viz.graph(loss, view=view)
    monkeypatch.setattr(mg.viz, "LAYOUT_LIMIT", 10)
    with pytest.raises(ValueError, match="too big for Graphviz"):
        mg.viz.graph(loss, view=view)


def test_layout_size_counts_the_ranks_long_edges_span():
    edges = [("a", "b"), ("b", "c"), ("a", "c")]
    # 3 nodes times (3 nodes, 3 edges, and a -> c spans two ranks: one chain node)
    assert layout_size(Drawing(None, nodes=["a", "b", "c"], edges=edges)) == 3 * (3 + 3 + 1)
    assert layout_size(Drawing(None, nodes=["a", "b", "c"], edges=edges, clusters=1)) == \
        3 * (3 + 3 + 1 + CLUSTER_COST)


# -- errors and files -------------------------------------------------------------------

def test_graph_of_something_else_than_a_tensor_is_a_type_error():
    with pytest.raises(TypeError, match=r"Tensor.*got numpy\.ndarray"):
        mg.viz.graph(np.ones(2))
    with pytest.raises(TypeError, match=r"Tensor.*got list"):
        mg.viz.render([1.0], "g.svg")


def test_a_failing_dot_becomes_a_clear_runtime_error(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Error: lost v7 v8 edge' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    with pytest.raises(RuntimeError, match=r"(?s)dot failed.*exit status 1.*lost v7 v8 edge"):
        mg.viz.render(chain(2), tmp_path / "g.svg")
    assert not (tmp_path / "g.svg").exists()


def test_a_250_byte_file_name_renders(tmp_path):
    path = tmp_path / ("g" * 246 + ".svg")
    assert mg.viz.render(chain(2), path) == path
    svg_root(Path(path).read_bytes())
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_errors_writing_the_file_name_the_path_given(tmp_path):
    missing = tmp_path / "no" / "such" / "g.svg"
    with pytest.raises(FileNotFoundError) as err:
        mg.viz.render(chain(1), missing)
    assert err.value.filename == str(missing)
    (tmp_path / "dir.svg").mkdir()
    with pytest.raises(IsADirectoryError) as err:
        mg.viz.render(chain(1), tmp_path / "dir.svg")
    assert err.value.filename == str(tmp_path / "dir.svg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.svg"]


def test_render_writes_through_a_symlink(tmp_path):
    target = tmp_path / "real.svg"
    target.write_text("old")
    link = tmp_path / "link.svg"
    link.symlink_to(target)
    mg.viz.render(chain(2), link)
    assert link.is_symlink() and link.resolve() == target.resolve()
    svg_root(Path(target).read_bytes())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.svg", "real.svg"]



def test_minigrad_imports_without_the_graphviz_package():
    """Only drawing needs the graphviz package; without it, drawing says how to install it."""
    code = ("import sys; sys.modules['graphviz'] = None\n"
            "import numpy as np, minigrad as mg\n"
            "x = mg.Tensor(np.ones(2), requires_grad=True)\n"
            "(x * x).sum().backward()\n"
            "print(x.grad.tolist())\n"
            "try:\n"
            "    mg.viz.graph((x * 2).sum())\n"
            "except ImportError as err:\n"
            "    print(err)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == "[2.0, 2.0]"
    assert "pip install graphviz" in run.stdout


def test_no_module_of_minigrad_imports_a_private_name_of_another():
    """What a module shares it names without an underscore: a private helper imported
    elsewhere is an idea written for one place and used in two."""
    import ast

    root = Path(mg.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "")
                                                     .startswith("minigrad")):
                found += [f"{path.relative_to(root)}: {alias.name}" for alias in node.names
                          if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert found == []
