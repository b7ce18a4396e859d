"""What a user hits one step beyond the shipped path: hand-written models, odd inputs and
the corners of the engine, each a regression test of a bug once found there."""
import numpy as np
import pytest

import minigrad as mg

from builders import leaf

# Outside detect_anomaly ops return inf and NaN silently (SPEC): any warning fails.
pytestmark = pytest.mark.usefixtures("warnings_are_errors")


# -- empty and 0-d reductions -------------------------------------------------------------

@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_mean_of_nothing_is_nan_without_a_warning(axis):
    x = leaf(np.zeros((0, 3)))
    y = mg.mean(x, axis=axis)
    expected = np.full(np.zeros((0, 3)).sum(axis=axis).shape, np.nan)
    np.testing.assert_array_equal(y.data, expected)
    y.backward(np.ones(y.shape))
    assert x.grad.shape == (0, 3)


def test_cross_entropy_of_an_empty_batch_is_nan_without_a_warning():
    logits = leaf(np.zeros((0, 4)))
    loss = mg.nn.cross_entropy(logits, np.zeros(0, dtype=int))
    assert np.isnan(loss.item())  # as torch.nn.functional.cross_entropy
    loss.backward()
    assert logits.grad.shape == (0, 4)


@pytest.mark.parametrize("reduce", [mg.sum, mg.mean])
@pytest.mark.parametrize("axis", [0, -1])
def test_reducing_a_0d_tensor_over_axis_0_has_a_gradient(reduce, axis):
    # numpy and PyTorch accept axis 0 and -1 on a 0-d array; backward used to divide by
    # the number of dimensions (ZeroDivisionError).
    x = leaf(3.0)
    reduce(x, axis=axis).backward()
    assert x.grad == 1.0
    assert mg.gradcheck(lambda t: reduce(t, axis=axis) * t, [leaf(0.7)])


# -- a layer that runs backwards in time (the second half of a bidirectional RNN) --------

def bidirectional_rnn(T=5, N=2, H=3, seed=0):
    """A forward and a backward tanh RNN over the same x, in scopes fwd/t{t}, bwd/t{t};
    the backward one runs t = T-1 ... 0. Returns (loss, [h_t forward], [h_t backward])."""
    rng = np.random.default_rng(seed)
    x = mg.Tensor(rng.normal(size=(N, T, H)), name="x")
    hs = {}
    for layer in ("fwd", "bwd"):
        W = mg.nn.Parameter(rng.normal(size=(H, H)) * 0.5, name=f"W_{layer}")
        h = mg.Tensor(np.zeros((N, H)), name="h0")
        hs[layer] = [None] * T
        with mg.scope(layer):
            for t in range(T) if layer == "fwd" else reversed(range(T)):
                with mg.scope(f"t{t}"):
                    h = mg.tanh(x[:, t, :] + h @ W)
                    h.name = "h"
                hs[layer][t] = h
    loss = (mg.concat([hs["fwd"][-1], hs["bwd"][0]]) ** 2).sum()
    return loss, hs["fwd"], hs["bwd"]


def test_step_grad_norms_of_a_layer_running_backwards_in_time():
    # The backward layer hands h from t to t - 1; it used to be missed entirely.
    loss, forward, backward = bidirectional_rnn()
    loss.backward(retain_grads=True)
    norms = mg.step_grad_norms(loss)
    assert set(norms) == {"fwd/h", "bwd/h"}
    for key, hs in (("fwd/h", forward), ("bwd/h", backward)):  # index k is time step k
        np.testing.assert_allclose(norms[key], [np.linalg.norm(h.grad) for h in hs])
    structure = mg.timesteps.time_steps(loss)
    t3 = structure.layers["bwd"][3]
    assert (t3.prev.t, t3.next.t) == (4, 2) and t3.state_in == [backward[4]]


def test_steps_view_draws_a_backwards_layer_in_time_order_with_its_arrows_reversed(tmp_path):
    import xml.etree.ElementTree as ET
    loss, _, backward = bidirectional_rnn()
    loss.backward(retain_grads=True)
    drawing = mg.viz.fit(loss, "steps", show_grads=True)
    ids = {meaning["t"]: node for node, meaning in drawing.meanings.items()
           if meaning["kind"] == "step" and meaning["layer"] == "bwd"}
    state_edges = {}
    for line in drawing.source.splitlines():
        parts = line.strip().split(" ", 3)
        if len(parts) == 4 and parts[1] == "->" and 'label="h' in parts[3]:
            state_edges[(parts[0], parts[2])] = parts[3]
    for t in range(4):  # written t -> t + 1, the arrow pointing back to t
        attributes = state_edges[(ids[t], ids[t + 1])]
        assert 'dir="back"' in attributes
        assert f"{np.linalg.norm(backward[t + 1].grad):.2g}" in attributes
    path = mg.viz.render(loss, tmp_path / "bidirectional.svg", view="steps")
    x = {}
    for group in ET.parse(path).getroot().iter("{http://www.w3.org/2000/svg}g"):
        title = group.find("{http://www.w3.org/2000/svg}title")
        text = group.find("{http://www.w3.org/2000/svg}text")
        if group.get("class") == "node" and title is not None and title.text in ids.values():
            x[title.text] = float(text.get("x"))
    assert [x[ids[t]] for t in range(5)] == sorted(x.values())  # t0 at the left


def test_rolled_view_labels_a_backwards_layer_in_the_order_it_runs():
    loss, _, _ = bidirectional_rnn()
    loss.backward(retain_grads=True)
    source = mg.viz.graph(loss, view="rolled").source
    assert 'label="t0 ... t4, 5 steps"' in source and 'label="t4 ... t0, 5 steps"' in source


# -- copies of tensors and modules --------------------------------------------------------

def test_a_deep_copy_of_a_model_trains_beside_it():
    # copy.deepcopy(model) as a teacher or target network: the copies used to keep the
    # originals' serial numbers, and backward failed comparing two Parameters.
    import copy
    student = mg.nn.Linear(3, 2, rng=np.random.default_rng(0))
    teacher = copy.deepcopy(student)
    assert isinstance(teacher.weight, mg.nn.Parameter) and teacher.weight.name == "weight"
    assert not np.shares_memory(teacher.weight.data, student.weight.data)
    x = np.random.default_rng(1).normal(size=(4, 3))
    loss = ((student(x) * 2 - teacher(x)) ** 2).mean()
    loss.backward()
    residual = 2 * student(x).data - teacher(x).data  # d loss / d out = 2 r / size
    np.testing.assert_allclose(student.weight.grad, x.T @ (2 * residual / residual.size) * 2)
    np.testing.assert_allclose(teacher.weight.grad, x.T @ (2 * residual / residual.size) * -1)


def test_pickled_parameters_are_new_leaves_and_an_op_output_refuses_to_copy():
    import copy
    import pickle
    p = mg.nn.Parameter(np.arange(3.0), name="p")
    p.grad = np.ones(3)
    q = pickle.loads(pickle.dumps(p))
    assert type(q) is mg.nn.Parameter and q.name == "p" and q.requires_grad
    np.testing.assert_array_equal(q.grad, p.grad)
    (p * q).sum().backward()  # two leaves, both get their gradient
    np.testing.assert_array_equal(q.grad, 1 + p.data)
    with pytest.raises(RuntimeError, match="detach"):
        copy.deepcopy(p * 2)


# -- no_grad and enable_grad on generator functions ----------------------------------------

def test_no_grad_decorating_a_generator_holds_inside_it_and_not_between():
    # The decorator used to switch only while the generator object was made, so every
    # yielded batch recorded a graph (PyTorch switches around each resumption).
    w = leaf([1.0, 2.0])
    seen = []

    @mg.no_grad
    def predictions(batches):
        for batch in batches:
            seen.append(mg.is_grad_enabled())
            sent = yield w * batch
            seen.append(sent)

    outputs = predictions([1.0, 2.0])
    first = next(outputs)
    assert mg.is_grad_enabled() and not first.requires_grad  # the caller's setting between
    second = outputs.send("sent")
    assert not second.requires_grad and seen == [False, "sent", False]
    with pytest.raises(KeyError):
        outputs.throw(KeyError("thrown in"))

    with mg.no_grad():
        @mg.enable_grad()
        def recorded():
            yield w * 2
            return "done"
        steps = recorded()
    assert next(steps).requires_grad
    with pytest.raises(StopIteration, match="done"):
        next(steps)


# -- load_state_dict of things that are not a state dict ------------------------------------

def test_load_state_dict_names_a_value_that_is_not_an_array_and_refuses_a_non_dict():
    model = mg.nn.Linear(3, 2)
    before = model.state_dict()
    state = dict(before, bias=[[1.0, 2.0], [3.0]])  # ragged: numpy's own error named no key
    with pytest.raises(ValueError, match="'bias' is not an array"):
        model.load_state_dict(state)
    with pytest.raises(TypeError, match="expected a dict .* got list"):
        model.load_state_dict(list(before.items()))
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


# -- save into a place that cannot hold the file ----------------------------------------------

def test_save_into_a_missing_directory_or_onto_a_directory_names_the_path(tmp_path):
    # The errors used to name the temporary file ('.../nope/.k2j3h.tmp').
    target = tmp_path / "nope" / "model.npz"
    with pytest.raises(FileNotFoundError, match="does not exist") as missing:
        mg.save({"w": np.ones(2)}, target)
    assert missing.value.filename == str(target)
    with pytest.raises(IsADirectoryError, match="is a directory") as directory:
        mg.save({"w": np.ones(2)}, tmp_path)
    assert directory.value.filename == str(tmp_path)
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


# -- truncated BPTT and the messages that lead there -----------------------------------------

def test_carrying_a_state_across_chunks_without_detach_points_to_detach():
    W = leaf(np.eye(2) * 0.5)
    h = mg.Tensor(np.ones((1, 2)))
    h = mg.tanh(h @ W)
    h.sum().backward()
    with pytest.raises(RuntimeError, match=r"retain_graph=True.*state\.detach\(\)"):
        mg.tanh(h @ W).sum().backward()
    h = h.detach()  # the truncated-BPTT way: the next chunk backpropagates to W alone
    W.grad = None
    mg.tanh(h @ W).sum().backward()
    assert W.grad.shape == (2, 2)


def test_step_grad_norms_of_something_other_than_a_tensor_is_a_type_error():
    with pytest.raises(TypeError, match="got tuple"):
        mg.step_grad_norms((leaf([1.0]), leaf([2.0])))  # e.g. the (out, h_n) of a model


# -- gradcheck of a float32 model ----------------------------------------------------------------

def test_gradcheck_refuses_to_pass_a_float32_model_it_never_checked():
    # gradcheck hands fn float64 copies of float32 inputs; a fn reaching the module's own
    # float32 parameters left both gradients at zero, and the check passed vacuously.
    model = mg.nn.Linear(2, 2, dtype=np.float32)
    x = np.ones((1, 2))
    with pytest.raises(ValueError, match="'weight'.*float32.*nothing would be checked"):
        mg.gradcheck(lambda w, b: model(x), [model.weight, model.bias])
    # computing from its arguments, a float32 input is checked on its float64 copy
    assert mg.gradcheck(lambda w: mg.tanh(w * 2), [model.weight])
    with pytest.raises(mg.GradcheckError):  # and a wrong gradient is still caught
        mg.gradcheck(lambda w: mg.tanh(w) + w.detach() * w, [model.weight])


# -- the legend of a narrow gradient range --------------------------------------------------

def test_a_narrow_gradient_scale_has_distinct_legend_labels():
    # Gradients within a few percent of each other: at one decimal every label of the
    # scale read the same ('+0.5' five times).
    w = leaf([[1.02]])
    h = mg.Tensor(np.ones((1, 1)))
    for t in range(4):
        with mg.scope(f"t{t}"):
            h = h @ w
            h.name = "h"
    loss = (h * 3.0).sum()
    loss.backward(retain_grads=True)
    legend = next(line for line in mg.viz.graph(loss, view="steps", show_grads=True)
                  .source.splitlines() if line.strip().startswith("legend"))
    labels = [cell.split("<")[0] for cell in legend.split('<td align="left">')[1:]]
    scale = [text for text in labels if text[:1] in "+-"]
    assert len(scale) == 5 and len(set(scale)) == 5, scale


def test_a_scale_of_one_value_is_labelled_once():
    from minigrad.viz.style import scale_steps
    assert scale_steps(0.5, 0.5) == [(1.0, "+0.5")]
    assert [text for _, text in scale_steps(-3.0, 1.0)] == ["+1.0", "+0.0", "-1.0", "-2.0", "-3.0"]


# -- parameter names after assigning inside a sub-module ------------------------------------

class _Wrapper(mg.nn.Module):
    def __init__(self):
        self.enc = mg.nn.Linear(3, 3)
        self.dec = mg.nn.Linear(3, 3)


def test_parameter_names_stay_the_outermost_paths_after_assigning_inside_a_submodule():
    # Assigning inside a sub-module renamed its parameters from there: 'weight' where
    # state_dict, errors and drawings say 'enc.weight'.
    model = _Wrapper()
    model.dec.weight = model.enc.weight  # weight tying
    model.enc.bias = mg.nn.Parameter(np.zeros(3))  # a fresh bias after construction
    assert [name for name, _ in model.named_parameters()] == ["enc.weight", "enc.bias",
                                                              "dec.bias"]
    assert all(p.name == name for name, p in model.named_parameters())

    class Stack(mg.nn.Module):
        def __init__(self):
            self.blocks = mg.nn.ModuleList([_Wrapper(), _Wrapper()])

    stack = Stack()
    stack.blocks[1].dec = mg.nn.Linear(3, 1)  # a sub-module replaced two levels down
    assert stack.blocks[1].dec.weight.name == "blocks.1.dec.weight"
    assert stack.blocks[0].enc.weight.name == "blocks.0.enc.weight"
    assert all(p.name == name for name, p in stack.named_parameters())


def test_save_into_a_read_only_directory_names_the_path(tmp_path, monkeypatch):
    import tempfile

    def refuse(prefix, suffix, dir):  # what a read-only directory answers (even as root)
        raise PermissionError(13, "Permission denied", f"{dir}/{prefix}k2j3h{suffix}")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    target = tmp_path / "model.npz"
    with pytest.raises(PermissionError, match="cannot create a file in.*Permission denied") \
            as refused:
        mg.save({"w": np.ones(2)}, target)
    assert refused.value.filename == str(target) and "k2j3h" not in str(refused.value)


# -- printing a loss ---------------------------------------------------------------------------

def test_a_0d_loss_formats_like_a_number():
    loss = mg.nn.mse_loss(leaf([1.0, 2.0]), np.array([0.0, 0.0]))
    assert f"loss {loss:.3f}" == "loss 2.500" and f"{loss:>8.1e}" == " 2.5e+00"
    assert f"{loss}" == str(loss)  # no format spec: the repr, as before
    with pytest.raises(TypeError):  # as numpy and PyTorch: only a 0-d tensor is a number
        f"{leaf([1.0, 2.0]):.3f}"


# -- a read-out made inside the last step's scope ------------------------------------------

@pytest.mark.parametrize("T", [2, 4])
def test_step_grad_norms_when_the_last_step_also_computes_the_read_out(T):
    # The last step did more than the others, so its state was taken to be its output
    # (the read-out): h at the last step read 0, under a spurious 'matmul#0' key.
    rng = np.random.default_rng(0)
    W, V = leaf(rng.normal(size=(3, 3)) * 0.5), leaf(rng.normal(size=(3, 1)))
    x = mg.Tensor(rng.normal(size=(2, T, 3)))
    h, hs = mg.Tensor(np.zeros((2, 3))), []
    for t in range(T):
        with mg.scope(f"t{t}"):
            h = mg.tanh(x[:, t] + h @ W)
            hs.append(h)
            if t == T - 1:
                y = h @ V
    loss = (y * y).mean()
    loss.backward(retain_grads=True)
    norms = mg.step_grad_norms(loss)
    assert list(norms) == ["tanh#0"]
    np.testing.assert_allclose(norms["tanh#0"], [np.linalg.norm(h.grad) for h in hs])


# -- a bad axis is not a shape mismatch -------------------------------------------------------

def test_a_bad_axis_is_reported_as_one():
    x = leaf(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^sum: axis 2 is out of bounds .*"
                                         r"\(input shape \(2, 3\)\)"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match=r"^mean: duplicate value in 'axis'"):
        x.mean(axis=(0, 0))
    with pytest.raises(ValueError, match=r"^concat: axis 3 is out of bounds .*input shapes"):
        mg.concat([x, x], axis=3)
    with pytest.raises(ValueError, match=r"^add: incompatible shapes \(2, 3\) and \(4,\)"):
        x + np.ones(4)  # a real mismatch still says so


def test_an_unhashable_module_still_registers():
    import dataclasses

    @dataclasses.dataclass  # eq=True: dataclasses make the class unhashable
    class Head(mg.nn.Module):
        size: int = 2

        def __post_init__(self):
            self.fc = mg.nn.Linear(self.size, 1)

    model = _Wrapper()
    model.head = Head()
    assert [name for name, _ in model.named_parameters()][-2:] == ["head.fc.weight",
                                                                   "head.fc.bias"]


def test_the_mean_of_many_float16_values_neither_overflows_nor_vanishes():
    # The sum over the count (for the empty mean) added float16 up in float16: inf past
    # 65,504, so the mean read NaN; the backward's count overflowed to inf too, and the
    # gradient read 0.
    x = mg.Tensor(np.ones(100_000, np.float16), requires_grad=True)
    y = mg.mean(x)
    assert y.dtype == np.float16 and y.item() == 1.0
    y.backward()
    assert x.grad.dtype == np.float16
    np.testing.assert_allclose(x.grad, 1e-5, rtol=1e-2)


# -- comparisons are elementwise, so they make where's condition ---------------------------

def test_where_takes_the_mask_a_comparison_gives():
    x = leaf([0.0, 1.0, 0.0])
    np.testing.assert_array_equal(mg.where(x == 0, x, 5.0).data, [0.0, 5.0, 0.0])
    np.testing.assert_array_equal(mg.where(x != 0, x, 5.0).data, [5.0, 1.0, 5.0])
    np.testing.assert_array_equal(mg.where(np.bool_(True), x, 5.0).data, x.data)


def test_in_looks_at_the_values():
    t = mg.Tensor([[1.0, 2.0], [3.0, np.nan]])
    assert 3.0 in t and 4.0 not in t and mg.Tensor(2.0) in t  # was False for every value
    assert np.nan not in t  # NaN equals nothing, as in numpy


# -- a hand-written optimizer step -------------------------------------------------------------

def test_p_minus_equals_inside_no_grad_updates_the_parameter_in_place():
    # Python rebound the name to a new tensor: the model's parameter never changed.
    model = mg.nn.Linear(2, 1, rng=np.random.default_rng(0))
    before = model.weight.data.copy()
    model(np.ones((3, 2))).sum().backward()
    with mg.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    np.testing.assert_allclose(model.weight.data, before - 0.1 * 3.0)
    assert model.weight.is_leaf and isinstance(model.weight, mg.nn.Parameter)
    with pytest.raises(RuntimeError, match=r"in-place \+= on a leaf .*'weight'.*no_grad"):
        model.weight += 1.0  # recording gradients: refused, as in PyTorch
    h = leaf([1.0, 2.0]) * 2
    same = h
    h += 1.0  # a non-leaf while recording: a new tensor, h = h + 1
    assert h is not same and h.op.label == "add" and same.data.tolist() == [2.0, 4.0]


def test_assigning_into_a_parameter_inside_no_grad_writes_its_data():
    bias = mg.nn.Parameter(np.zeros(8), name="bias")
    with mg.no_grad():
        bias[2:4] = 1.0  # a forget-gate bias set by hand (TypeError before)
    np.testing.assert_array_equal(bias.data, [0, 0, 1, 1, 0, 0, 0, 0])
    with pytest.raises(TypeError, match="no_grad"):
        bias[0] = 5.0  # while gradients are recorded: refused, the graph has no op for it
    with mg.no_grad(), pytest.raises(IndexError, match="cannot index"):
        bias[mg.Tensor(1.0)] = 5.0


# -- NaN gradients in the steps and rolled views ------------------------------------------------

def test_nan_gradients_are_drawn_as_nan_not_as_no_gradient():
    # With every state gradient NaN there was no finite range, and the steps view drew
    # each edge as "no gradient": the NaN the drawing exists to show went unseen.
    W = leaf(np.eye(2) * 1e200)
    h = mg.Tensor(np.ones((1, 2)))
    for t in range(3):
        with mg.scope(f"t{t}"):
            h = h @ W
            h.name = "h"
    loss = (h * np.array([[np.nan, 1.0]])).sum()
    loss.backward(retain_grads=True)
    edges = [line for line in mg.viz.graph(loss, view="steps", show_grads=True).source
             .splitlines() if "-> step" in line and "label=" in line]
    assert len(edges) == 2 and all("nan" in e and "no gradient" not in e and "#800026" in e
                                   for e in edges)
    back = [line for line in mg.viz.graph(loss, view="rolled", show_grads=True).source
            .splitlines() if 'dir="back"' in line]
    assert back and all("|grad| nan" in line for line in back)


def test_a_rolled_node_shows_the_nan_among_its_steps_wherever_it_is():
    from minigrad.viz.rolled_view import _largest, _norm_range
    assert np.isnan(_largest([1.0, float("nan"), 2.0]))  # max() kept 2.0 here
    assert _largest([1.0, None, 3.0]) == 3.0 and _largest([None]) is None
    assert _norm_range([0.5, float("nan"), 2.0]) == "|grad| 0.5 ... 2, nan"
    assert _norm_range([float("inf")]) == "|grad| inf" and _norm_range([None]) == ""


def test_the_root_of_the_steps_view_counts_one_op_in_the_singular():
    h = leaf([[1.0, 2.0]])
    for t in range(2):
        with mg.scope(f"t{t}"):
            h = mg.tanh(h)
    source = mg.viz.graph(h.sum(), view="steps").source
    assert "1 op after the steps" in source and "1 ops" not in source
