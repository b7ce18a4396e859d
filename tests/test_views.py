"""Tests of the "steps" and "rolled" views of mg.viz: their structure, read off the DOT
text; and every view ("ops" too) x TB/LR x with and without gradients rendered through
the real Graphviz ``dot`` to valid SVG, for a hand-written RNN and GRU at T = 1..8,
models.LSTM and random graphs from the public ops (no scopes, nested scopes, odd names)."""
import re
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad.tensor import topological_order
from minigrad.viz import rolled_view, steps_view
from builders import hand_gru, hand_rnn, lstm_loss
from dot_reader import cluster_labels, labelled_edges, svg_node_titles, svg_texts

# -- graphs ----------------------------------------------------------------------------------

def random_graph(seed, scoped=False, odd=False):
    """A random graph from the public ops: leaves with and without gradients, fan-out,
    reuse; optionally in nested scopes with 't<number>' components, and odd names."""
    rng = np.random.default_rng(seed)
    names = ['w"1', "{b}", "a&b", "line\nbreak", "<x|y>", "back\\slash"] if odd else [None]
    pool = [mg.nn.Parameter(rng.normal(size=(3, 3)), name=str(names[k % len(names)]))
            for k in range(2)]
    pool.append(mg.Tensor(rng.normal(size=(3, 3)), name=names[-1]))
    unary = [mg.tanh, mg.sigmoid, mg.relu, lambda a: mg.exp(mg.tanh(a)), lambda a: a.T,
             lambda a: -a, lambda a: a ** 2, lambda a: a[:, :3]]
    binary = [mg.add, mg.subtract, mg.multiply, mg.matmul,
              lambda a, b: a / (1.5 + mg.tanh(b)),
              lambda a, b: mg.concat([a, b], axis=0)[1:4],
              lambda a, b: mg.stack([a, b]).sum(axis=0)]
    scopes = ["outer", "t0", "t1", "t2", "inner", 'odd "scope" {&}' if odd else "plain"]
    for k in range(14):
        op = rng.integers(2)
        a = pool[rng.integers(len(pool))]
        scope = [scopes[i] for i in sorted(rng.choice(len(scopes), rng.integers(3),
                                                      replace=False))] if scoped else []
        with _nested(scope):
            if op == 0:
                new = unary[rng.integers(len(unary))](a)
            else:
                new = binary[rng.integers(len(binary))](a, pool[rng.integers(len(pool))])
        if odd and k % 3 == 0:
            new.name = names[k % len(names)]
        pool.append(new)
    loss = sum(t.sum() for t in pool[-3:]) + pool[0].sum()  # always needs a gradient
    loss.name = names[0] if odd else "loss"
    return loss


class _nested:
    def __init__(self, names):
        self.contexts = [mg.scope(n) for n in names]

    def __enter__(self):
        for c in self.contexts:
            c.__enter__()

    def __exit__(self, *exc):
        for c in reversed(self.contexts):
            c.__exit__(*exc)
        return False


def backward(loss):
    loss.backward(retain_grads=True)
    return loss


# -- rendering -------------------------------------------------------------------------------

def node_titles(digraph):
    """The node ids in the SVG that the real dot makes of ``digraph``."""
    return svg_node_titles(digraph.pipe(format="svg"))


GRAPHS = ([(f"rnn{T}", lambda T=T: hand_rnn(T)) for T in range(1, 9)]
          + [(f"gru{T}", lambda T=T: hand_gru(T)) for T in range(1, 9)]
          + [("lstm1", lambda: lstm_loss(4, 1).loss), ("lstm2", lambda: lstm_loss(3, 2, x_grad=True).loss)]
          + [(f"random{s}", lambda s=s: random_graph(s)) for s in range(2)]
          + [(f"scoped{s}", lambda s=s: random_graph(s, scoped=True)) for s in range(3)]
          + [(f"odd{s}", lambda s=s: random_graph(s, scoped=True, odd=True)) for s in range(2)])


@pytest.mark.parametrize("make", [m for _, m in GRAPHS], ids=[n for n, _ in GRAPHS])
def test_every_view_renders_to_valid_svg(make):
    loss = backward(make())
    for view in ("ops", "steps", "rolled"):
        for rankdir in ("TB", "LR"):
            for show_grads in (False, True):
                drawing = mg.viz.fit(loss, view, rankdir=rankdir, show_grads=show_grads)
                titles = node_titles(drawing.digraph)
                if drawing.meanings:  # the steps and rolled views say what each node is
                    assert titles == set(drawing.meanings), (view, rankdir, show_grads)


def test_keep_steps_renders_in_every_view():
    loss = backward(lstm_loss(12, 2, x_grad=True).loss)
    for view in ("steps", "rolled"):
        for rankdir in ("TB", "LR"):
            drawing = mg.viz.fit(loss, view, rankdir=rankdir, show_grads=True, keep_steps=2)
            assert node_titles(drawing.digraph) == set(drawing.meanings)


# -- the steps view --------------------------------------------------------------------------

def test_steps_view_is_a_chain_of_steps_with_the_state_on_its_edges():
    T = 5
    loss = backward(hand_rnn(T, loss="mean"))
    drawing = steps_view.draw(loss, show_grads=True)
    steps = {n: m for n, m in drawing.meanings.items() if m["kind"] == "step"}
    assert [m["t"] for m in steps.values()] == list(range(T))
    norms = mg.step_grad_norms(loss)["h"]
    chain = [(tail, head, label) for tail, head, label in labelled_edges(drawing.source)
             if tail in steps and head in steps]
    assert [(steps[tail]["t"], steps[head]["t"]) for tail, head, _ in chain] == [
        (t, t + 1) for t in range(T - 1)]
    for (tail, _, label), norm in zip(chain, norms):
        assert label == f"h\n{norm:.2g}"
    # Every step's tensors are listed, by their place in the topological order.
    order = topological_order(loss)
    for meaning in steps.values():
        assert {order[i].scope for i in meaning["tensors"]} == {f"t{meaning['t']}"}
    # x reaches every step through its slice; the output goes to the stack.
    inputs = [m for n, m in drawing.meanings.items() if m["kind"] == "inputs"]
    assert len(inputs) == T
    assert "x[:, 3, :]" not in drawing.source  # x needs no gradient: the slice is a leaf
    assert drawing.source.count("h \u2192 stack") == T


def test_steps_view_of_a_two_layer_lstm():
    T = 4
    loss = backward(lstm_loss(T, 2, x_grad=True).loss)
    drawing = steps_view.draw(loss, show_grads=True, rankdir="TB")
    ids = drawing.meanings
    step_of = {n: (m["layer"], m["t"]) for n, m in ids.items() if m["kind"] == "step"}
    assert sorted(step_of.values()) == [(f"l{k}", t) for k in range(2) for t in range(T)]
    found = labelled_edges(drawing.source)
    norms = mg.step_grad_norms(loss)
    for layer in ("l0", "l1"):
        for name in ("h", "c"):
            along = [(step_of[a][1], label) for a, b, label in found
                     if step_of.get(a, (None,))[0] == layer and
                     step_of.get(b, (None,))[0] == layer and label.split()[0] == name]
            assert [t for t, _ in along] == list(range(T - 1))
            assert [label.split()[1] for _, label in along] == [  # "h 0.012" in TB
                f"{v:.2g}" for v in norms[f"{layer}/{name}"][:-1]]
    up = [(step_of[a], step_of[b]) for a, b, label in found if a in step_of and b in step_of
          and step_of[a][0] != step_of[b][0]]
    assert sorted(up) == [(("l0", t), ("l1", t)) for t in range(T)]
    assert "x[:, 2, :]" in drawing.source  # x needs a gradient here: the slice is shown
    headers = [m for m in ids.values() if m["kind"] == "layer"]
    assert [h["layer"] for h in headers] == ["l0", "l1"]
    assert "l0.weight (5, 12)" in drawing.source and "l1.bias (12,)" in drawing.source


def test_steps_view_keep_steps_hides_the_middle():
    loss = backward(lstm_loss(10, 1).loss)
    drawing = steps_view.draw(loss, keep_steps=2)
    ts = sorted(m["t"] for m in drawing.meanings.values() if m["kind"] == "step")
    assert ts == [0, 1, 8, 9]
    hidden = [m for m in drawing.meanings.values() if m["kind"] == "hidden"]
    assert hidden == [{"kind": "hidden", "layer": "l0", "t": list(range(2, 8))}]
    assert "6 steps" in drawing.source


def test_show_grads_without_retained_gradients_says_what_to_do():
    loss = hand_rnn(3)
    for module in (steps_view, rolled_view):
        with pytest.raises(ValueError, match=r"retain_grads=True"):
            module.draw(loss, show_grads=True)


def test_drawing_a_released_graph_says_to_keep_it():
    loss = hand_rnn(3)
    loss.backward()
    for module in (steps_view, rolled_view):
        with pytest.raises(RuntimeError, match=r"retain_graph=True"):
            module.draw(loss)


def test_steps_and_rolled_views_without_graphviz_say_how_to_install_it(monkeypatch):
    """Every view makes its Digraph in one place, which explains a missing package."""
    monkeypatch.setitem(sys.modules, "graphviz", None)
    for view in ("ops", "steps", "rolled"):
        with pytest.raises(ImportError, match=r"pip install graphviz"):
            mg.viz.graph(hand_rnn(3), view=view)


# -- the rolled view -------------------------------------------------------------------------

def test_rolled_view_draws_one_step_with_back_edges():
    T = 6
    loss = backward(hand_rnn(T))
    drawing = rolled_view.draw(loss, show_grads=True)
    # t0 reads h0 from outside where the others read the state: drawn as one, and the
    # edge from h0 says which step uses it.
    assert cluster_labels(drawing.source) == ["steps", f"t0 ... t{T - 1}, {T} steps"]
    back = [label for _, _, label in labelled_edges(drawing.source)
            if label and label.startswith("h \u00d7")]
    norms = mg.step_grad_norms(loss)["h"][:-1]
    assert back == [f"h \u00d7{T - 1}\n|grad| {norms.min():.2g} ... {norms.max():.2g}"]
    assert re.search(r'v\d+ -> r0_\d+ \[label="t0"', drawing.source)  # h0, step t0 only
    steps = [m for m in drawing.meanings.values() if m["kind"] == "step tensor"]
    assert all(m["t"] == list(range(T)) and len(m["tensors"]) == T for m in steps)
    assert 'label="slice [:, t, :]' not in drawing.source  # the slice of x is a leaf here


def test_rolled_view_keeps_a_first_step_of_another_structure_apart():
    T = 5
    loss = backward(lstm_loss(T, 2).loss)  # x needs no gradient: l0's t0 records no concat
    drawing = rolled_view.draw(loss)
    steps = mg.timesteps.time_steps(loss).layers["l0"]
    ops = [sum(t.op is not None for t in step.tensors) for step in steps[:2]]
    assert ops[0] == ops[1] - 1  # the concat of x_0 and h0: neither needs a gradient
    # Layer 1 reads layer 0's h, which needs a gradient, so its t0 is like the others
    # but for h0 and c0 coming from outside.
    assert cluster_labels(drawing.source) == [
        "l0", f"t0, 1 step: {ops[0]} ops, not {ops[1]} as in t1",
        f"t1 ... t{T - 1}, {T - 1} steps: same structure", "l1", f"t0 ... t{T - 1}, {T} steps"]
    labels = [label for _, _, label in labelled_edges(drawing.source) if label]
    assert labels.count(f"h \u00d7{T - 2}") == 1 and labels.count(f"c \u00d7{T - 2}") == 1
    assert labels.count(f"h \u00d7{T - 1}") == 1 and labels.count(f"c \u00d7{T - 1}") == 1
    # t0's state enters the run after it by ordinary edges, from its own h and c nodes.
    t0 = {n for n, m in drawing.meanings.items() if m.get("t") == [0] and m["layer"] == "l0"}
    into_run = [(a, b) for a, b, _ in labelled_edges(drawing.source) if a in t0 and b.startswith("r1_")]
    assert len(into_run) == 2


def test_rolled_view_with_x_needing_a_gradient_folds_every_step():
    T = 7
    loss = backward(lstm_loss(T, 1, x_grad=True).loss)
    drawing = rolled_view.draw(loss)
    assert cluster_labels(drawing.source) == ["l0", f"t0 ... t{T - 1}, {T} steps"]
    assert 'slice [:, t, :]' in drawing.source
    found = labelled_edges(drawing.source)
    assert sorted(label for _, _, label in found if label and "\u00d7" in label and
                  label[0] in "hc") == [f"c \u00d7{T - 1}", f"h \u00d7{T - 1}"]
    weight = [n for n, m in drawing.meanings.items() if m["kind"] == "tensor"
              and topological_order(loss)[m["tensors"][0]].name == "l0.weight"]
    assert [label for a, _, label in found if a == weight[0]] == [f"\u00d7{T}"]


def test_rolled_view_writes_every_step_in_creation_order():
    """Each run's nodes are written as its steps made them (gates i, f, g, o), and the
    DOT text of one run lists the same ops as any of the steps it stands for."""
    loss = backward(lstm_loss(5, 2).loss)
    drawing = rolled_view.draw(loss)
    order = topological_order(loss)
    written = re.findall(r"^\t\t\t(r\d+_\d+) \[", drawing.source, re.M)
    for run in sorted({n.split("_")[0] for n in written}):
        nodes = [n for n in written if n.split("_")[0] == run]
        assert [int(n.split("_")[1]) for n in nodes] == list(range(len(nodes)))
        for k in range(len(drawing.meanings[nodes[0]]["tensors"])):  # every step
            tensors = [order[drawing.meanings[n]["tensors"][k]] for n in nodes]
            assert [t.name for t in tensors if t.name in ("i", "f", "g", "o")] == [
                "i", "f", "g", "o"]
            assert len({t.scope for t in tensors}) == 1


def test_rolled_view_never_merges_steps_of_different_structure():
    h = mg.Tensor(np.ones(3), requires_grad=True, name="h0")
    for t in range(6):
        with mg.scope(f"t{t}"):
            h = mg.tanh(h) * 0.5 if t != 3 else mg.sigmoid(h) * 0.5
            h.name = "h"
    drawing = rolled_view.draw(backward(h.sum()))
    assert cluster_labels(drawing.source) == [
        "steps", "t0 ... t2, 3 steps: same structure", "t3, 1 step: other ops or wiring than t0",
        "t4 ... t5, 2 steps: same structure"]


# -- any graph --------------------------------------------------------------------------------

def test_a_graph_without_time_steps_is_drawn_in_the_ops_view_with_a_note():
    loss = backward(random_graph(0))
    for module in (steps_view, rolled_view):
        drawing = module.draw(loss, title="mine")
        assert "no time steps" in drawing.source and "mine" in drawing.source
        assert drawing.meanings == {}
        node_titles(drawing.digraph)


def test_odd_names_are_shown_as_written():
    rng = np.random.default_rng(0)
    odd = 'a "quoted" {brace} & <tag> | back\\slash\nnewline'
    W = mg.nn.Parameter(rng.normal(size=(2, 2)), name=odd)
    h = mg.Tensor(np.ones((1, 2)), name=odd)
    with mg.scope('layer "{&}"'):
        for t in range(3):
            with mg.scope(f"t{t}"):
                h = mg.tanh(h @ W)
                h.name = odd
    loss = backward(h.sum())
    for module in (steps_view, rolled_view):
        for rankdir in ("TB", "LR"):
            drawing = module.draw(loss, show_grads=True, rankdir=rankdir)
            texts = [t for t in svg_texts(drawing.digraph.pipe(format="svg")) if t]
            assert any('a "quoted" {brace} & <tag> | back\\slash' in t for t in texts)
            assert any('layer "{&}"' in t for t in texts) or module is rolled_view
    assert list(mg.step_grad_norms(loss)) == [f'layer "{{&}}"/{odd}']


def test_drawings_are_the_same_on_every_run():
    for module in (steps_view, rolled_view):
        first = module.draw(backward(lstm_loss(4, 2).loss), show_grads=True).source
        again = module.draw(backward(lstm_loss(4, 2).loss), show_grads=True).source
        assert first == again


def test_long_sequences_draw_without_recursion():
    loss = backward(hand_rnn(400))
    assert len(steps_view.draw(loss, show_grads=True).meanings) > 400
    assert len(rolled_view.draw(loss, show_grads=True).meanings) < 20


def test_every_view_names_the_operands_of_an_op_whose_order_matters():
    """The op class says whether its inputs can be swapped (ops.Op.commutative): a
    3-step mg.where names its operands a and b in the ops view and the rolled view
    alike, while an add names none."""
    x = mg.Tensor(np.ones((1, 2)), name="x")
    w = mg.nn.Parameter(np.full((2, 2), 0.5), name="w")
    h = mg.Tensor(np.zeros((1, 2)), name="h0")
    for t in range(3):
        with mg.scope(f"t{t}"):
            h = mg.where(np.array([[True, False]]), mg.tanh(h @ w), x + h)
            h.name = "h"
    loss = h.sum()
    rolled = rolled_view.draw(loss).source
    assert re.search(r'-> r\d+_\d+ \[headlabel="a"', rolled)
    assert re.search(r'-> r\d+_\d+ \[headlabel="b"', rolled)
    ops = mg.viz.graph(loss).source
    assert re.search(r'>a</font></td><td>where</td>', ops)
    assert not re.search(r'>a</font></td><td>add</td>', ops)


def encoder_decoder(S=4, T=3, seed=0):
    """An encoder RNN over S steps in scope 'encoder', and a decoder RNN over T steps in
    'decoder' that starts from the encoder's last state and reads the stack of every
    encoder output at each step (attention's shape): two chains, one after the other."""
    rng = np.random.default_rng(seed)
    W = {k: mg.nn.Parameter(rng.normal(size=(3, 3)) * 0.5, name=f"W{k}") for k in "exd"}
    h = mg.Tensor(np.zeros((1, 3)), name="h0")
    outputs = []
    with mg.scope("encoder"):
        for t in range(S):
            with mg.scope(f"t{t}"):
                h = mg.tanh(h @ W["e"] + 1.0)
                h.name = "h"
            outputs.append(h)
    memory = mg.stack(outputs, axis=1)
    memory.name = "encoder outputs"
    with mg.scope("decoder"):
        for t in range(T):
            with mg.scope(f"t{t}"):
                h = mg.tanh(h @ W["d"] + memory.sum(axis=1) @ W["x"])
                h.name = "h"
    return h.sum()


def test_an_encoder_and_its_decoder_are_drawn_as_two_chains_one_after_the_other():
    loss = backward(encoder_decoder())
    drawing = steps_view.draw(loss)
    step = {(m["layer"], m["t"]): n for n, m in drawing.meanings.items() if m["kind"] == "step"}
    ranks = [line for line in drawing.source.splitlines() if "rank=same" in line]
    for line in ranks:  # no rank holds a step of each
        assert not (any(f" {step['encoder', t]};" in line + ";" for t in range(4)) and
                    any(f" {step['decoder', t]};" in line + ";" for t in range(3))), line
    assert (step["encoder", 3], step["decoder", 0], "h") in labelled_edges(drawing.source)
    for view in ("ops", "steps", "rolled"):
        node_titles(mg.viz.graph(loss, view=view))  # dot lays it out; the SVG parses
