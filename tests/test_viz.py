"""Tests of mg.viz: the DOT text as text, then rendering through Graphviz.

Most graphs here come from a tiny LSTM written inline with mg ops and scopes
(lstm > l0 > t0, t1, ...), so they depend on nothing but the engine; only the test of
examples/render_graph.py uses models/.
"""
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg

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


# -- reading DOT text ----------------------------------------------------------------------

NODE = re.compile(r'^\t*(\w+) \[(.*)\]$')
EDGE = re.compile(r'^\t*(\w+)(?::(\w+))? -> (\w+)(?::(\w+))?(?: \[(.*)\])?$')


def attribute(attrs, key):
    match = re.search(rf'(?:^| ){key}="((?:[^"\\]|\\.)*)"', attrs)
    return match.group(1) if match else None


def _unquote(text):
    """What Graphviz shows for the inside of a quoted DOT label."""
    text = re.sub(r'\\(.)', lambda m: "\n" if m.group(1) in "nlr" else m.group(1), text)
    return text.replace("&amp;", "&")


def label_text(attrs):
    """The text a node's label shows: table cells joined by ' | ', lines by newlines;
    the port cells of ops (a, b, 0, 1 ...) left out."""
    quoted = attribute(attrs, "label")
    if quoted is not None:
        return _unquote(quoted)
    start = attrs.find("label=<")
    if start < 0:
        return None
    depth, k = 0, start + len("label=")
    for k in range(start + len("label="), len(attrs)):
        depth += {"<": 1, ">": -1}.get(attrs[k], 0)
        if depth == 0:
            break
    table = ET.fromstring(attrs[start + len("label=<"):k].replace("<br/>", "\n"))
    cells = ["".join(td.itertext()) for td in table.iter("td")
             if td.find("table") is None and "port" not in td.attrib]
    return " | ".join(cells)


def parse(source):
    """nodes: id -> (label text, cluster path, attrs); clusters: list of label paths;
    edges: visible (tail, head, attrs, tail port, head port); read line by line as
    graph() writes them."""
    nodes, clusters, edges, path = {}, [], [], []
    lines = source.splitlines()
    for k, line in enumerate(lines):
        if line.strip().startswith("subgraph cluster_"):
            path.append(_unquote(attribute(lines[k + 1].strip(), "label")))
            clusters.append(tuple(path))
        elif line.strip() == "}" and path:
            path.pop()
        elif EDGE.match(line):
            tail, tail_port, head, head_port, attrs = EDGE.match(line).groups()
            if "invis" not in (attrs or ""):
                edges.append((tail, head, attrs or "", tail_port, head_port))
        elif NODE.match(line) and not line.strip().startswith(("graph ", "node ", "edge ",
                                                                "legend ")):
            node, attrs = NODE.match(line).groups()
            nodes[node] = (label_text(attrs), tuple(path), attrs)
    return nodes, clusters, edges


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


def test_parameters_stay_outside_clusters_with_one_edge_per_step():
    steps = 4
    nodes, _, edges = parse(mg.viz.graph(tiny_lstm(steps=steps)).source)
    for name in ("cell.weight", "cell.bias"):
        node = node_labelled(nodes, name)
        assert nodes[node][1] == ()  # top level
        out = [head for tail, head, *_ in edges if tail == node]
        assert len(out) == steps and len(set(out)) == steps
        assert {nodes[head][1][-1] for head in out} == {f"t{t}" for t in range(steps)}


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


def test_a_2000_step_chain_draws_without_recursion():
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
    to_marker = [attrs for tail, head, attrs, *_ in edges if (tail, head) == (weight, marker)]
    assert len(to_marker) == 1 and attribute(to_marker[0], "xlabel") == "x3"
    # the weight still feeds the four drawn steps directly
    assert len([1 for tail, *_ in edges if tail == weight]) == 4 + 1
    # the recurrent state flows from t1 into the marker and out of it into t5
    assert any(nodes[t][1][-1:] == ("t1",) for t, h, *_ in edges if h == marker)
    assert any(nodes[h][1][-1:] == ("t5",) for t, h, *_ in edges if t == marker)
    assert all(tail != head for tail, head, *_ in edges)  # no loops on the marker
    assert "time steps not drawn" in source  # legend


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
         "two\nlines"]


def _weird_graph():
    tensors = [mg.Tensor(np.ones(2), requires_grad=True, name=name) for name in WEIRD]
    with mg.scope('scope "q" {b} |p| <a> \\'):
        total = tensors[0]
        for t in tensors[1:]:
            total = total + t
    return total.sum()


def test_weird_names_are_escaped_in_the_dot_text():
    nodes, clusters, _ = parse(mg.viz.graph(_weird_graph()).source)
    labels = [label for label, _, _ in nodes.values()]
    for name in WEIRD:
        assert f"{name} | (2,)" in labels, name
    assert clusters == [('scope "q" {b} |p| <a> \\',)]


def test_weird_names_render_and_show_exactly(tmp_path):
    path = mg.viz.render(_weird_graph(), tmp_path / "weird.svg", title='t"i{t}le\\')
    texts = [t.text for t in ET.parse(path).getroot().iter("{http://www.w3.org/2000/svg}text")]
    for name in WEIRD + ['scope "q" {b} |p| <a> \\', 't"i{t}le\\']:
        for line in name.split("\n"):
            assert line in texts, (line, texts)


# -- rendering ------------------------------------------------------------------------------

def test_render_svg(tmp_path):
    path = tmp_path / "g.svg"
    assert mg.viz.render(tiny_lstm(steps=2), path) == path
    root = ET.parse(path).getroot()
    assert root.tag in ("svg", "{http://www.w3.org/2000/svg}svg")
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
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
    root = ET.parse(out).getroot()
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"t0", "t1", "lstm.l0.weight", "lstm.l0.bias", "head.weight", "x", "loss",
            "sigmoid", "tanh", "log10 |grad| (fill)"} <= texts
    assert "t2" not in texts


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
