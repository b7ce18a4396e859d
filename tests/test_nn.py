"""Modules, parameters, Linear and the losses.

Registration is checked on a nested model with shared pieces; ``load_state_dict`` on
every failure it must report, each time checking that the module did not change; the
losses by value, by gradcheck, and at logits of +-1000 with every numpy warning an error.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import (Linear, Module, ModuleList, Parameter,
                         binary_cross_entropy_with_logits, mse_loss)


class Block(Module):
    def __init__(self, rng):
        self.lin = Linear(2, 3, rng=rng)
        self.scale = Parameter(np.ones(3))

    def forward(self, x):
        return self.lin(x) * self.scale


class Net(Module):
    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.first = Block(rng)
        self.gain = Parameter(np.full(3, 2.0))
        self.second = Block(rng)
        self.head = Linear(3, 1, bias=False, rng=rng)

    def forward(self, x):
        return self.head(self.first(x) * self.gain + self.second(x))


NET_NAMES = ["gain",
             "first.scale", "first.lin.weight", "first.lin.bias",
             "second.scale", "second.lin.weight", "second.lin.bias",
             "head.weight"]


# -- registration ---------------------------------------------------------------------

def test_parameters_are_named_by_dotted_path_own_parameters_first():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    # As in PyTorch: a module's own parameters, then each sub-module's in order.
    assert names == NET_NAMES
    assert [p.name for _, p in net.named_parameters()] == NET_NAMES
    assert net.parameters() == [p for _, p in net.named_parameters()]
    assert [name for name, _ in net.children()] == ["first", "second", "head"]


def test_a_shared_parameter_or_module_is_listed_once():
    class Shared(Module):
        def __init__(self):
            self.encoder = Linear(2, 2)
            self.decoder = self.encoder  # the same module under a second name
            self.w = Parameter(np.zeros(2))
            self.w_again = self.w

    model = Shared()
    named = model.named_parameters()
    assert [name for name, _ in named] == ["w", "encoder.weight", "encoder.bias"]
    assert [p.name for _, p in named] == ["w", "encoder.weight", "encoder.bias"]
    assert len({id(p) for p in model.parameters()}) == 3
    assert list(model.state_dict()) == ["w", "encoder.weight", "encoder.bias"]


def test_a_module_shared_at_two_depths_takes_its_depth_first_name():
    class Outer(Module):
        def __init__(self):
            self.block = Block(np.random.default_rng(0))
            self.lin = self.block.lin  # also reachable as block.lin, which is visited first

    model = Outer()
    assert [name for name, _ in model.named_parameters()] == [
        "block.scale", "block.lin.weight", "block.lin.bias"]
    assert model.block.lin.weight.name == "block.lin.weight"


def test_zero_grad_clears_every_parameter():
    net = Net()
    net(np.ones((4, 2))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_parameter_copies_its_data_and_accepts_a_tensor():
    source = np.array([1.0, 2.0])
    p = Parameter(source)
    p.data += 1
    assert source.tolist() == [1.0, 2.0]
    q = Parameter(mg.Tensor(np.array([3.0], dtype=np.float32)))
    assert q.requires_grad and q.dtype == np.float32 and q.data.tolist() == [3.0]
    assert Parameter([1, 2]).dtype == np.float64


def test_repr_of_a_nested_module():
    assert repr(Net()) == (
        "Net(\n"
        "  (first): Block(\n"
        "    (lin): Linear(in_features=2, out_features=3, bias=True)\n"
        "  )\n"
        "  (second): Block(\n"
        "    (lin): Linear(in_features=2, out_features=3, bias=True)\n"
        "  )\n"
        "  (head): Linear(in_features=3, out_features=1, bias=False)\n"
        ")")


# -- ModuleList and containers that would hide parameters ----------------------------

class Stack(Module):
    def __init__(self, sizes, seed=0):
        rng = np.random.default_rng(seed)
        self.layers = ModuleList(Linear(a, b, rng=rng) for a, b in zip(sizes, sizes[1:]))
        self.scale = Parameter(np.ones(sizes[-1]))

    def forward(self, x):
        for layer in self.layers:
            x = mg.tanh(layer(x))
        return x * self.scale


def test_module_list_registers_its_modules_as_numbered_children():
    model = Stack([2, 4, 3, 1])
    assert [name for name, _ in model.layers.children()] == ["0", "1", "2"]
    assert [name for name, _ in model.named_parameters()] == [
        "scale", "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
        "layers.2.weight", "layers.2.bias"]
    assert model.layers[0].weight.name == "layers.0.weight"
    assert len(model.layers) == 3 and len(model.parameters()) == 7
    assert repr(model.layers).startswith("ModuleList(\n  (0): Linear(in_features=2, "
                                         "out_features=4, bias=True)\n  (1): Linear(")


def test_module_list_indexing_iteration_append_and_assignment():
    a, b, c = Linear(1, 1), Linear(1, 2), Linear(2, 2)
    layers = ModuleList([a, b])
    assert layers[0] is a and layers[-1] is b and layers[-2] is a
    assert layers[np.int64(1)] is b
    assert list(layers) == [a, b]
    assert layers.append(c) is layers and len(layers) == 3 and layers[2] is c
    tail = layers[1:]
    assert isinstance(tail, ModuleList) and list(tail) == [b, c]
    assert [name for name, _ in tail.children()] == ["0", "1"]
    assert layers[::-1][0] is c and len(layers[5:]) == 0
    layers[-1] = Linear(2, 3)
    assert layers[2] is not c and layers[2].out_features == 3
    assert ModuleList().extend([a]).parameters() == a.parameters()
    assert len(ModuleList()) == 0 and list(ModuleList()) == []


def test_slicing_a_module_list_leaves_the_parameter_names_alone():
    model = Stack([2, 4, 3, 1])
    names = [p.name for p in model.parameters()]
    for layer in model.layers[1:]:  # a view for iterating, as in a forward()
        layer(np.ones((1, layer.in_features)))
    assert [p.name for p in model.parameters()] == names
    assert model.layers[2].weight.name == "layers.2.weight"


@pytest.mark.parametrize("make, error, message", [
    (lambda: ModuleList([Linear(1, 1), "relu"]), TypeError,
     "ModuleList can only hold Modules, got str at index 1"),
    (lambda: ModuleList(Linear(1, 1)), TypeError, "got a single Linear; wrap it in a list"),
    (lambda: ModuleList([Linear(1, 1)])[1], IndexError, "index 1 out of range for length 1"),
    (lambda: ModuleList([Linear(1, 1)])[-2], IndexError, "index -2 out of range"),
    (lambda: ModuleList([Linear(1, 1)])["0"], TypeError, "cannot be interpreted as an integer"),
    (lambda: ModuleList([Linear(1, 1)])(np.ones(1)), NotImplementedError,
     r"ModuleList has no forward\(\): iterate over it"),
])
def test_module_list_mistakes_get_clear_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_state_dict_and_load_state_dict_work_through_a_module_list():
    source, target = Stack([2, 3, 1], seed=1), Stack([2, 3, 1], seed=2)
    state = source.state_dict()
    assert list(state) == ["scale", "layers.0.weight", "layers.0.bias", "layers.1.weight",
                           "layers.1.bias"]
    target.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((4, 2))
    assert np.array_equal(source(x).data, target(x).data)
    with pytest.raises(ValueError, match=r"missing key 'layers.1.bias'"):
        target.load_state_dict({k: v for k, v in state.items() if k != "layers.1.bias"})


def test_training_through_a_module_list_updates_every_layer():
    model = Stack([2, 5, 1])
    before = snapshot(model)
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    mse_loss(model(np.ones((3, 2))), np.zeros((3, 1))).backward()
    opt.step()
    assert all(not np.array_equal(p.data, before[name])
               for name, p in model.named_parameters())
    assert mg.gradcheck(lambda *ps: model(np.ones((3, 2))), model.parameters())


@pytest.mark.parametrize("value, kind", [
    (lambda: [Linear(2, 2), Linear(2, 2)], "list holding Linear objects"),
    (lambda: (Linear(2, 2),), "tuple holding Linear objects"),
    (lambda: {"enc": Linear(2, 2), "w": Parameter(np.ones(2))},
     "dict holding Linear and Parameter objects"),
    (lambda: [Parameter(np.ones(2)), 3.0], "list holding Parameter objects"),
])
def test_a_container_of_modules_or_parameters_is_refused_on_assignment(value, kind):
    class Net(Module):
        def __init__(self):
            self.layers = value()

    with pytest.raises(TypeError, match=f"Net.layers: a {kind} is not registered, so its "
                                        r"parameters would be missing from parameters\(\), "
                                        r"state_dict\(\) and the optimizer; use "
                                        r"mg.nn.ModuleList\(\[...\]\)"):
        Net()


def test_a_list_filled_after_assignment_is_refused_when_parameters_are_listed():
    class Net(Module):
        def __init__(self):
            self.lin = Linear(2, 2)
            self.layers = []
            self.layers.append(Linear(2, 2))  # too late for __setattr__ to see

    net = Net()
    with pytest.raises(TypeError, match="Net.layers: a list holding Linear objects"):
        net.parameters()


def test_containers_of_other_things_are_ordinary_attributes():
    class Net(Module):
        def __init__(self):
            self.sizes = [2, 3]
            self.names = {"a": 1}
            self.cache = (mg.Tensor([1.0]),)  # plain Tensors are not trained anyway
            self.lin = Linear(2, 3)

    assert [name for name, _ in Net().named_parameters()] == ["lin.weight", "lin.bias"]


# -- state dicts ----------------------------------------------------------------------

def test_state_dict_holds_copies():
    net = Net()
    state = net.state_dict()
    assert list(state) == NET_NAMES
    state["gain"][:] = -1.0
    assert net.gain.data.tolist() == [2.0, 2.0, 2.0]
    net.gain.data[0] = 5.0
    assert state["gain"][0] == -1.0


def test_load_state_dict_round_trip_keeps_the_parameter_objects():
    source, target = Net(seed=1), Net(seed=2)
    arrays = [p.data for p in target.parameters()]
    target.load_state_dict(source.state_dict())
    for (name, p), q, array in zip(source.named_parameters(), target.parameters(), arrays):
        assert np.array_equal(p.data, q.data), name
        assert q.data is array  # copied into the existing arrays
    x = np.random.default_rng(0).standard_normal((5, 2))
    assert np.array_equal(source(x).data, target(x).data)


def snapshot(module):
    return {name: p.data.copy() for name, p in module.named_parameters()}


def assert_unchanged(module, before):
    after = snapshot(module)
    assert list(after) == list(before)
    assert all(np.array_equal(after[k], before[k]) for k in before)


def good_and_bad(**bad):
    """A full, loadable state with new values, then the given bad entries on top."""
    state = {k: v + 1.0 for k, v in Net(seed=5).state_dict().items()}
    state.update(bad)
    return state


@pytest.mark.parametrize("state, message", [
    (good_and_bad(**{"first.scale": np.ones(4)}),
     r"wrong shape for 'first.scale': expected \(3,\), got \(4,\)"),
    (good_and_bad(**{"head.weight": np.ones((1, 3))}),
     r"wrong shape for 'head.weight': expected \(3, 1\), got \(1, 3\)"),
    (good_and_bad(**{"head.bias": np.ones(1)}), r"unexpected key 'head.bias' \(shape \(1,\)\)"),
    ({k: v for k, v in good_and_bad().items() if k != "second.lin.bias"},
     r"missing key 'second.lin.bias' \(expected shape \(3,\)\)"),
    (good_and_bad(gain=np.ones(3) * 1j), "wrong dtype for 'gain': cannot cast complex128"),
])
def test_load_state_dict_failures_name_the_key_and_change_nothing(state, message):
    net = Net()
    before = snapshot(net)
    with pytest.raises(ValueError, match=message):
        net.load_state_dict(state)
    assert_unchanged(net, before)  # the good keys were not loaded either


def test_every_problem_is_reported_at_once():
    state = Net().state_dict()
    del state["gain"]
    state["extra"] = np.zeros(2)
    state["head.weight"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"missing key 'gain'.*unexpected key 'extra'"
                                         r".*wrong shape for 'head.weight'"):
        Net().load_state_dict(state)


def test_non_strict_load_ignores_missing_and_extra_keys_but_not_shapes():
    net = Net()
    before = snapshot(net)
    net.load_state_dict({"gain": np.zeros(3), "unrelated": np.ones(7)}, strict=False)
    assert net.gain.data.tolist() == [0.0, 0.0, 0.0]
    assert np.array_equal(net.head.weight.data, before["head.weight"])
    with pytest.raises(ValueError, match=r"wrong shape for 'gain'"):
        net.load_state_dict({"gain": np.zeros(2)}, strict=False)


def test_a_float64_state_loads_into_a_float32_model():
    model = Linear(3, 2, dtype=np.float32)
    model.load_state_dict({"weight": np.full((3, 2), 0.5), "bias": mg.Tensor([1.0, 2.0])})
    assert model.weight.dtype == np.float32 and model.bias.dtype == np.float32
    assert model.weight.data.tolist() == [[0.5, 0.5]] * 3 and model.bias.data.tolist() == [1, 2]


# -- Linear ---------------------------------------------------------------------------

def test_linear_shapes_and_forward():
    lin = Linear(4, 3, rng=np.random.default_rng(0))
    assert lin.weight.shape == (4, 3) and lin.bias.shape == (3,)
    x = np.random.default_rng(1).standard_normal((5, 4))
    y = lin(x)
    assert y.shape == (5, 3)
    np.testing.assert_allclose(y.data, x @ lin.weight.data + lin.bias.data, rtol=1e-14)
    assert lin(mg.Tensor(np.ones((2, 7, 4)))).shape == (2, 7, 3)  # leading dims broadcast


def test_linear_without_bias_has_one_parameter():
    lin = Linear(4, 3, bias=False)
    assert lin.bias is None
    assert [name for name, _ in lin.named_parameters()] == ["weight"]


def test_linear_init_is_uniform_within_one_over_sqrt_fan_in():
    lin = Linear(100, 400, rng=np.random.default_rng(0))
    bound = 1 / np.sqrt(100)
    for p in (lin.weight.data, lin.bias.data):
        assert np.abs(p).max() <= bound
        assert np.abs(p).max() > 0.97 * bound  # uses the whole range, not a smaller one
    assert abs(lin.weight.data.mean()) < 0.01 * bound
    assert lin.weight.data.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)


def test_linear_init_is_reproducible_from_rng_or_manual_seed():
    a = Linear(3, 2, rng=np.random.default_rng(7))
    b = Linear(3, 2, rng=np.random.default_rng(7))
    assert np.array_equal(a.weight.data, b.weight.data)
    mg.nn.manual_seed(3)
    c = Linear(3, 2)
    mg.nn.manual_seed(3)
    d = Linear(3, 2)
    assert np.array_equal(c.weight.data, d.weight.data)
    assert not np.array_equal(a.weight.data, c.weight.data)


def test_linear_dtype_float32_stays_float32():
    lin = Linear(3, 2, dtype=np.float32)
    assert lin.weight.dtype == np.float32 and lin.bias.dtype == np.float32
    assert lin(mg.Tensor(np.ones((1, 3), dtype=np.float32))).dtype == np.float32
    assert repr(lin) == "Linear(in_features=3, out_features=2, bias=True, dtype=float32)"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("value", [
    [[1.0, 2.0, 3.0]], [[1, 2, 3]], np.ones((2, 3)), np.ones((2, 3), np.float32),
    np.ones(3, np.int64), np.array([[True, False, True]]),
], ids=["floats", "ints", "float64", "float32", "int64", "bool"])
def test_arrays_and_lists_are_cast_to_the_module_dtype(dtype, value):
    lin = Linear(3, 1, dtype=dtype)
    out = lin(value)
    assert out.dtype == dtype
    expected = np.asarray(value, dtype=dtype) @ lin.weight.data + lin.bias.data
    np.testing.assert_allclose(out.data, expected, rtol=1e-6)


def test_a_list_works_as_linear_input():
    lin = Linear(2, 1)
    np.testing.assert_allclose(lin([[1.0, 2.0]]).data,
                               [[lin.weight.data[0, 0] + 2 * lin.weight.data[1, 0]
                                 + lin.bias.data[0]]])


@pytest.mark.parametrize("model_dtype, tensor_dtype", [(np.float32, np.float64),
                                                       (np.float64, np.float32)])
def test_a_tensor_of_another_dtype_is_refused_naming_both(model_dtype, tensor_dtype):
    x = mg.Tensor(np.ones((2, 3), tensor_dtype), requires_grad=True)
    with pytest.raises(ValueError, match=f"Linear: input has dtype "
                                         f"{np.dtype(tensor_dtype)}, expected the module's "
                                         f"dtype {np.dtype(model_dtype)}"):
        Linear(3, 1, dtype=model_dtype)(x)


@pytest.mark.parametrize("value, message", [
    (np.array([["a", "b"]]), "Linear: input must be numeric, got an array of dtype <U1"),
    ([[1.0, 2.0], [3.0]], "Linear: input is not an array"),
    ([[1.0, 2.0, 3.0]], r"last dimension 2, got shape \(1, 3\)"),
])
def test_bad_linear_inputs_get_clear_errors(value, message):
    with pytest.raises(ValueError, match=message):
        Linear(2, 1)(value)


@pytest.mark.parametrize("dtype", [np.int32, "complex128", "nonsense"])
def test_linear_dtype_must_be_a_float_type(dtype):
    with pytest.raises(ValueError, match="Linear: dtype must be a float type"):
        Linear(2, 1, dtype=dtype)


@pytest.mark.parametrize("args, message", [
    ((0, 3), "in_features must be a positive integer, got 0"),
    ((2.5, 3), "in_features must be a positive integer, got 2.5"),
    ((True, 3), "in_features must be a positive integer, got True"),
    ((3, -1), "out_features must be a positive integer, got -1"),
])
def test_linear_validates_its_sizes(args, message):
    with pytest.raises(ValueError, match=message):
        Linear(*args)


def test_linear_names_the_expected_input_size():
    with pytest.raises(ValueError, match=r"last dimension 4, got shape \(2, 5\)"):
        Linear(4, 3)(np.ones((2, 5)))


def test_gradcheck_through_linear():
    rng = np.random.default_rng(0)
    lin = Linear(4, 3, rng=rng)
    x = mg.Tensor(rng.standard_normal((5, 4)), requires_grad=True)
    assert mg.gradcheck(lambda x, w, b: mg.tanh(lin(x)), [x, lin.weight, lin.bias])


def test_gradcheck_through_a_nested_module():
    net = Net()
    x = mg.Tensor(np.random.default_rng(0).standard_normal((3, 2)), requires_grad=True)
    assert mg.gradcheck(lambda x, *params: net(x), [x, *net.parameters()])


# -- losses ---------------------------------------------------------------------------

def test_mse_loss_value_and_gradient():
    pred = mg.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    loss = mse_loss(pred, np.array([[0.0, 2.0], [5.0, 4.0]]))
    assert loss.item() == pytest.approx((1 + 0 + 4 + 0) / 4)
    loss.backward()
    np.testing.assert_allclose(pred.grad, 2 * np.array([[1.0, 0.0], [-2.0, 0.0]]) / 4)


def test_gradcheck_through_the_losses():
    rng = np.random.default_rng(0)
    pred = mg.Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    target = mg.Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    assert mg.gradcheck(mse_loss, [pred, target])
    logits = mg.Tensor(rng.standard_normal((4, 3)) * 5, requires_grad=True)
    probs = mg.Tensor(rng.uniform(0, 1, (4, 3)), requires_grad=True)
    assert mg.gradcheck(binary_cross_entropy_with_logits, [logits, probs])


def test_bce_with_logits_matches_the_textbook_formula():
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal(6) * 3, rng.uniform(0, 1, 6)
    s = 1 / (1 + np.exp(-x))
    expected = -np.mean(t * np.log(s) + (1 - t) * np.log(1 - s))
    assert binary_cross_entropy_with_logits(mg.Tensor(x), t).item() == pytest.approx(expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_with_logits_is_exact_and_silent_at_extreme_logits(dtype, float_errors_raise):
    logits = mg.Tensor(np.array([1000.0, -1000.0, 1000.0, -1000.0], dtype=dtype),
                       requires_grad=True)
    target = np.array([1.0, 0.0, 0.0, 1.0], dtype=dtype)
    loss = binary_cross_entropy_with_logits(logits, target)
    loss.backward()
    # Right answers cost nothing; confidently wrong ones cost |logit| each: (0+0+1000+1000)/4.
    assert loss.item() == 500.0 and loss.dtype == dtype
    # (sigmoid(x) - t) / N, where sigmoid(+-1000) is 1 or 0 to within the smallest float
    np.testing.assert_allclose(logits.grad, [0.0, 0.0, 0.25, -0.25], rtol=1e-7, atol=1e-30)
    assert logits.grad.dtype == dtype


def test_losses_need_matching_shapes():
    with pytest.raises(ValueError, match=r"mse_loss: input shape \(3,\) and target shape "
                                         r"\(3, 1\) differ"):
        mse_loss(mg.Tensor(np.zeros(3)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="binary_cross_entropy_with_logits: input shape"):
        binary_cross_entropy_with_logits(mg.Tensor(np.zeros(2)), np.zeros(3))
