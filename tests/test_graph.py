"""What the graph and the backward traversal promise, beyond each op's own gradient."""
import gc
import weakref

import numpy as np
import pytest

import minigrad as mg
from builders import leaf
from minigrad.tensor import topological_order



# -- gradients through shared nodes -------------------------------------------------------

def test_fan_out_sums_the_gradient_of_every_use():
    a = leaf([1.0, -2.0, 3.0])
    b = a + a
    c = b * b
    c.sum().backward()
    np.testing.assert_allclose(a.grad, 8 * a.data)  # c = 4a^2


def test_parameter_reused_across_many_steps_gets_the_sum_over_steps():
    rng = np.random.default_rng(0)
    w = leaf(rng.standard_normal((3, 3)) * 0.5, "w")
    xs = [mg.Tensor(rng.standard_normal((2, 3))) for _ in range(30)]

    def unrolled(w):
        h = mg.Tensor(np.zeros((2, 3)))
        for x in xs:
            h = mg.tanh(h @ w + x)
        return h

    assert mg.gradcheck(unrolled, [w])
    out = unrolled(w)
    uses = [node for node in topological_order(out)
            if node.op and any(t is w for t in node.op.inputs)]
    assert len(uses) == 30


def test_constants_and_non_grad_inputs_get_no_gradient():
    a = leaf([1.0, 2.0])
    const = mg.Tensor([3.0, 4.0])
    out = (a * const + np.array([1.0, 1.0]) + 5).sum()
    out.backward()
    np.testing.assert_allclose(a.grad, [3.0, 4.0])
    assert const.grad is None and not const.requires_grad


def test_an_op_on_constants_only_records_nothing():
    out = mg.Tensor([1.0]) * 2 + mg.Tensor([3.0])
    assert out.op is None and not out.requires_grad


def test_numpy_arrays_and_scalars_work_on_either_side():
    a = leaf([1.0, 2.0])
    out = (np.array([2.0, 2.0]) * a) + (1 - a) + (6 / a) + (2 ** a) + (a ** 2)
    out.sum().backward()
    x = a.data
    np.testing.assert_allclose(a.grad, 2 - 1 - 6 / x**2 + np.log(2) * 2**x + 2 * x)
    assert isinstance(np.ones(2) + a, mg.Tensor)


# -- leaves, accumulation, retained gradients ---------------------------------------------

def test_leaf_gradients_accumulate_across_backward_calls_until_zeroed():
    a = leaf([1.0, 2.0])
    (a * 3).sum().backward()
    (a * 3).sum().backward()
    np.testing.assert_allclose(a.grad, [6.0, 6.0])
    a.zero_grad()
    assert a.grad is None
    (a * a).sum().backward()
    np.testing.assert_allclose(a.grad, [2.0, 4.0])


def test_backward_twice_on_a_retained_graph_accumulates_again():
    a = leaf([1.0, 2.0])
    out = (a * a).sum()
    out.backward(retain_graph=True)
    out.backward()
    np.testing.assert_allclose(a.grad, 4 * a.data)


def test_a_second_backward_through_a_released_graph_says_to_retain_it():
    a = leaf([1.0, 2.0])
    out = (a * a).sum()
    out.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        out.backward()
    with pytest.raises(RuntimeError, match="sum.*retain_graph=True"):
        topological_order(out)
    np.testing.assert_allclose(a.grad, 2 * a.data)  # the failed call added nothing


def test_gradients_of_0d_tensors_are_arrays_and_every_use_counts():
    a = leaf(2.0)
    (a + a + a + a).backward()
    assert type(a.grad) is np.ndarray and a.grad.shape == () and a.grad == 4.0
    (a * a).backward()
    assert type(a.grad) is np.ndarray and a.grad == 8.0


def test_leaf_gradients_never_alias_each_other_or_the_upstream_gradient():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    upstream = np.array([1.0, 1.0])
    (a + b).backward(upstream)
    assert not np.shares_memory(a.grad, b.grad)
    assert not np.shares_memory(a.grad, upstream)
    a.grad += 100  # the user (or an optimizer) may change a gradient in place
    np.testing.assert_allclose(b.grad, [1.0, 1.0])
    np.testing.assert_allclose(upstream, [1.0, 1.0])


def test_gradient_summed_from_many_uses_does_not_corrupt_shared_arrays():
    a = leaf([1.0, 2.0])
    b = a + 0  # add hands the same gradient array to both of its inputs
    c = b + b + b
    c.backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(a.grad, [3.0, 30.0])


def test_intermediate_gradients_are_dropped_unless_asked_for():
    a = leaf([1.0, 2.0])
    b = a * 2
    c = b * b
    kept = (c * 1).retain_grad()
    (kept.sum()).backward()
    assert b.grad is None and c.grad is None
    np.testing.assert_allclose(kept.grad, [1.0, 1.0])

    a.zero_grad()
    b = a * 2
    c = b * b
    c.sum().backward(retain_grads=True)
    np.testing.assert_allclose(c.grad, [1.0, 1.0])
    np.testing.assert_allclose(b.grad, 2 * b.data)


def test_retained_intermediate_gradients_accumulate_across_backward_calls_like_leaves():
    a = leaf([1.0, 2.0])
    b = (a * 2).retain_grad()
    out = (b * b).sum()
    out.backward(retain_graph=True)
    out.backward()
    np.testing.assert_allclose(b.grad, 2 * (2 * b.data))  # twice d out / d b = 2b
    np.testing.assert_allclose(a.grad, 2 * (8 * a.data))


# -- releasing the graph during backward ---------------------------------------------------

def test_backward_frees_the_graph_even_while_the_root_is_still_referenced():
    gc.collect()
    gc.disable()  # freed by reference counting, during the sweep
    try:
        a = leaf(np.ones((3, 3)))
        h = a
        refs = []
        for _ in range(20):
            h = mg.tanh(h @ a * 0.5)
            refs.append(weakref.ref(h))
        loss = h.sum()
        loss.backward()
        assert all(ref() is None for ref in refs[:-1])  # h itself is still a variable here
        assert loss.op.inputs is None and h.op.inputs is None and h.op.out is None
    finally:
        gc.enable()


@pytest.mark.parametrize("keep", [{"retain_graph": True}, {"retain_grads": True}])
def test_retain_graph_and_retain_grads_keep_the_graph(keep):
    a = leaf([1.0, 2.0])
    b = mg.tanh(a * 3)
    out = (b * b).sum()
    out.backward(**keep)
    first = a.grad.copy()
    assert len(topological_order(out)) == 6  # a, the constant 3, a*3, b, b*b, out
    out.backward()  # a second sweep through the kept graph, which it then releases
    np.testing.assert_allclose(a.grad, 2 * first)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        out.backward()


def test_a_second_backward_through_a_shared_released_subgraph_says_to_retain_it():
    a = leaf([1.0, 2.0])
    shared = mg.exp(a)
    shared.sum().backward()
    with pytest.raises(RuntimeError, match=r"through exp.*retain_graph=True"):
        (shared * 2).sum().backward()


def test_drawing_a_released_graph_says_to_retain_it():
    out = (leaf([1.0]) * 2).sum()
    out.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        mg.viz.graph(out)


# -- recording the backward sweep ----------------------------------------------------------

def test_record_backward_lists_each_op_in_engine_order_with_its_gradients():
    a, b = leaf([1.0, 2.0, 3.0], "a"), leaf([0.5, -1.0, 2.0], "b")
    const = mg.Tensor([2.0, 2.0, 2.0])
    prod = a * b
    out = (prod[1:] * const[1:]).sum() + (prod + a).sum()
    with mg.record_backward() as sweep:
        out.backward(retain_graph=True)
    assert isinstance(sweep, list) and all(isinstance(s, mg.SweepStep) for s in sweep)
    serials = [s.tensor.serial for s in sweep]
    assert serials == sorted(serials, reverse=True)
    assert sweep[0].tensor is out and all(s.op is s.tensor.op for s in sweep)
    assert [s.op.label for s in sweep] == ["add", "sum", "add", "sum", "multiply", "slice",
                                           "multiply"]  # const[1:] needs no gradient: no op
    assert all([t for t, _ in s.input_grads] == list(s.op.inputs) for s in sweep)
    np.testing.assert_array_equal(sweep[0].grad, 1.0)
    # Every step's grad is the sum of what its users sent it; leaves' .grad the same.
    sent = {}
    for step in sweep:
        for tensor, g in step.input_grads:
            if g is not None:
                assert type(g) is np.ndarray and g.shape == tensor.shape
                sent.setdefault(id(tensor), []).append(g)
    for step in sweep[1:]:
        np.testing.assert_allclose(sum(sent[id(step.tensor)]), step.grad)
    for t in (a, b):
        np.testing.assert_allclose(sum(sent[id(t)]), t.grad)
    with_const = sweep[4]
    assert with_const.input_grads[1][0].op is None and with_const.input_grads[1][1] is None


def test_record_backward_copies_and_stops_recording_when_the_block_ends():
    a = leaf([1.0, 2.0])
    with mg.record_backward() as sweep:
        (a * 3).sum().backward()
    step = sweep[-1]
    assert step.op.label == "multiply" and step.input_grads[1][1] is None
    assert not np.shares_memory(step.input_grads[0][1], a.grad)
    (a * 3).sum().backward()
    assert len(sweep) == 2


def test_detach_cuts_the_graph():
    a = leaf([2.0])
    b = (a * a).detach()
    out = b * a
    out.backward()
    np.testing.assert_allclose(a.grad, [4.0])  # only the direct use of a
    assert b.op is None and not b.requires_grad


# -- no_grad and scope ---------------------------------------------------------------------

def test_no_grad_builds_no_graph_nests_and_restores_after_an_exception():
    a = leaf([1.0])
    with mg.no_grad():
        assert (a * 2).op is None
        with mg.no_grad():
            pass
        assert not mg.is_grad_enabled()
        with mg.enable_grad():
            assert (a * 2).requires_grad
    assert mg.is_grad_enabled()
    with pytest.raises(KeyError):
        with mg.no_grad():
            raise KeyError("boom")
    assert mg.is_grad_enabled() and (a * 2).requires_grad


def test_no_grad_works_as_a_decorator_with_or_without_parentheses():
    @mg.no_grad()
    def evaluate(x):
        return x * 2

    @mg.no_grad
    def bare(x):
        return x * 2

    @mg.enable_grad
    def inner(x):
        return x * 2

    assert evaluate(leaf([1.0])).op is None and bare(leaf([1.0])).op is None
    assert bare.__name__ == "bare" and mg.is_grad_enabled()
    with mg.no_grad():
        assert inner(leaf([1.0])).requires_grad
    with pytest.raises(TypeError, match="decorates a function"):
        mg.no_grad(3)


def test_one_no_grad_object_can_be_entered_again_while_inside():
    switch = mg.no_grad()
    with switch:
        with switch:
            assert not mg.is_grad_enabled()
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()


def test_scopes_nest_tag_nodes_and_restore_after_an_exception():
    a = leaf([1.0])
    with mg.scope("lstm"):
        with mg.scope("t3"):
            inner = a * 2
            assert mg.current_scope() == "lstm/t3"
        outer = inner + 1
    top = outer * 3
    assert (inner.scope, outer.scope, top.scope, a.scope) == ("lstm/t3", "lstm", "", "")
    with pytest.raises(RuntimeError):
        with mg.scope("t0"):
            raise RuntimeError
    assert mg.current_scope() == ""


@pytest.mark.parametrize("bad", ["", "a/b", None, 3])
def test_scope_names_are_validated(bad):
    with pytest.raises(ValueError, match="scope name"):
        with mg.scope(bad):
            pass


# -- depth and memory ----------------------------------------------------------------------

def test_a_20000_op_chain_backpropagates_without_recursion():
    x = leaf([1.0])
    y = x
    for _ in range(20_000):
        y = y * 1.0001
    y.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad, [1.0001 ** 20_000], rtol=1e-9)
    assert len(topological_order(y)) == 40_001  # the chain, its constants and x


def test_dropping_the_root_frees_every_node_without_the_cycle_collector():
    gc.collect()
    gc.disable()  # freed by reference counting alone: the graph has no cycles
    try:
        a = leaf(np.ones((3, 3)))
        h = a
        nodes = []
        for _ in range(50):
            h = mg.sigmoid(mg.concat([h, h], axis=1)[:, :3] @ a)
            nodes.append(weakref.ref(h))
        saved = weakref.ref(h.op.inputs[0].data)
        loss = h.sum()
        loss.backward()
        del h, loss
        assert all(ref() is None for ref in nodes)
        assert saved() is None
        assert a.grad is not None  # the leaf and its gradient stay
    finally:
        gc.enable()


def test_a_very_deep_graph_is_freed_without_overflowing_the_c_stack():
    y = leaf([1.0])
    for _ in range(200_000):
        y = y + 1.0
    ref = weakref.ref(y)
    del y
    assert ref() is None


# -- error messages ------------------------------------------------------------------------

def test_matmul_shape_mismatch_names_the_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: incompatible shapes \(2, 3\) and \(4, 5\)"):
        leaf(np.ones((2, 3))) @ leaf(np.ones((4, 5)))


def test_broadcast_mismatch_names_the_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"multiply: incompatible shapes \(2, 3\) and \(4,\)"):
        leaf(np.ones((2, 3))) * np.ones(4)


def test_concat_mismatch_names_the_op_and_the_shapes():
    with pytest.raises(ValueError, match=r"concat: incompatible shapes \(2, 3\) and \(4, 5\)"):
        mg.concat([leaf(np.ones((2, 3))), leaf(np.ones((4, 5)))], axis=1)


def test_concat_needs_a_list():
    with pytest.raises(ValueError, match="concat takes a non-empty list"):
        mg.concat(leaf(np.ones((2, 3))))


def test_backward_on_a_non_scalar_needs_grad():
    with pytest.raises(ValueError, match=r"one-element tensor, got shape \(2,\).*grad="):
        (leaf([1.0, 2.0]) * 2).backward()


def test_backward_with_a_grad_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"needs shape \(2,\), got \(3,\)"):
        (leaf([1.0, 2.0]) * 2).backward(np.ones(3))


def test_backward_on_a_tensor_that_needs_no_grad_says_why():
    with pytest.raises(RuntimeError, match="does not require grad.*no_grad"):
        (mg.Tensor([1.0]) * 2).backward()


def test_a_backward_returning_a_wrong_shape_is_caught_at_accumulation():
    class Broken(mg.ops.Op):
        __slots__ = ()

        def forward(self, a):
            return a * 2

        def backward(self, grad):
            return (grad.sum(),)

    with pytest.raises(RuntimeError, match=r"broken backward returned a gradient of shape \(\)"):
        Broken()(leaf([1.0, 2.0])).sum().backward()


def test_non_numeric_data_is_rejected():
    with pytest.raises(TypeError, match="numeric"):
        mg.Tensor(["a", "b"])


# -- dtype and repr ------------------------------------------------------------------------

def test_integer_and_bool_input_becomes_float64_and_float32_is_kept():
    assert mg.Tensor([1, 2]).dtype == np.float64
    assert mg.Tensor(np.array([True])).dtype == np.float64
    assert mg.Tensor(np.ones(2, np.float32)).dtype == np.float32


def test_python_scalars_and_integer_arrays_do_not_upcast_float32():
    x = mg.Tensor(np.ones(3, np.float32), requires_grad=True)
    out = (2 * x + 1.5 - x / 3 + x ** 2 + np.arange(3)).sum()
    assert out.dtype == np.float32
    out.backward()
    assert x.grad.dtype == np.float32


def test_a_0d_tensor_does_not_promote_an_nd_tensor_as_in_pytorch():
    x32 = mg.Tensor(np.ones(3, np.float32), requires_grad=True)
    s64 = mg.Tensor(2.0, requires_grad=True)
    for out in (x32 * s64, s64 * x32, x32 + s64, s64 - x32, x32 / s64, x32 ** s64, s64 ** x32):
        assert out.dtype == np.float32
    (x32 * s64).sum().backward()
    assert x32.grad.dtype == np.float32 and s64.grad.dtype == np.float64
    np.testing.assert_allclose(s64.grad, 3.0)
    # Both 0-d, or both n-d: numpy's (and PyTorch's) promotion to the wider type.
    assert (mg.Tensor(np.float32(1.0)) * s64).dtype == np.float64
    assert (x32 * mg.Tensor(np.ones(3))).dtype == np.float64


def test_a_gradient_has_the_dtype_of_its_tensor_after_mixed_dtype_ops():
    x = mg.Tensor(np.ones(3, np.float32), requires_grad=True)
    w = mg.Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    out = (x * np.ones(3)).sum() + mg.concat([w, mg.Tensor(np.ones((2, 2)))]).sum()
    assert out.dtype == np.float64  # numpy's promotion in forward, as in PyTorch
    out.backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_repr_shows_data_shape_dtype_and_op():
    t = leaf([1.0, 2.0], name="w") * 2
    text = repr(t)
    assert text.startswith("Tensor([2., 4.]") and "shape=(2,)" in text
    assert "dtype=float64" in text and "op=multiply" in text
    assert "requires_grad=True" in repr(leaf([1.0])) and "name='w'" in repr(leaf([1.0], "w"))


def test_numpy_functions_see_the_values():
    t = mg.Tensor([[1.0, 2.0]])
    assert np.asarray(t) is t.data
    assert np.array(t, dtype=np.float32).dtype == np.float32
    assert not np.shares_memory(np.array(t), t.data)


def test_conversions_like_numpy_and_pytorch():
    assert float(mg.Tensor([[2.5]])) == 2.5 and int(mg.Tensor(-2.7)) == -2
    assert bool(mg.Tensor([1.0])) and not bool(mg.Tensor(0.0))
    with pytest.raises(ValueError, match="truth value of a tensor with 2 elements is ambiguous"):
        bool(mg.Tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(mg.Tensor(np.ones(0)))
    with pytest.raises(TypeError, match=r"one-element.*shape \(2,\)"):
        float(mg.Tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="len.. of a 0-d tensor"):
        len(mg.Tensor(3.0))
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(mg.Tensor(3.0))
    assert len(mg.Tensor(np.ones((4, 2)))) == 4


def test_iterating_a_tensor_gives_rows_that_stay_in_the_graph():
    a = leaf([[1.0, 2.0], [3.0, 4.0]])
    rows = list(a)
    assert [r.shape for r in rows] == [(2,), (2,)]
    (rows[0] * rows[1]).sum().backward()
    np.testing.assert_allclose(a.grad, [[3.0, 4.0], [1.0, 2.0]])


def test_a_list_of_tensors_is_refused_with_a_pointer_to_stack():
    for data in ([mg.Tensor(1.0), mg.Tensor(2.0)], [[1.0], [mg.Tensor(2.0)]],
                 (mg.Tensor([1.0]), mg.Tensor([2.0]))):
        with pytest.raises(TypeError, match=r"mg\.stack"):
            mg.Tensor(data)


def test_a_tensor_used_as_an_index_is_refused_never_cast():
    x = leaf([10.0, 20.0, 30.0])
    for index in (mg.Tensor([True, False, True]), mg.Tensor([0.0, 2.0]), (mg.Tensor(1.0),)):
        with pytest.raises(IndexError, match="tensors hold floats.*integer or boolean numpy array"):
            x[index]


def test_boolean_and_integer_array_indices_select_like_numpy():
    x = leaf([10.0, 20.0, 30.0])
    picked = x[np.array([True, False, True])]
    np.testing.assert_array_equal(picked.data, [10.0, 30.0])
    (picked * np.array([1.0, 2.0])).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 2.0])
    m = leaf(np.arange(6.0).reshape(2, 3))
    assert mg.gradcheck(lambda t: t[np.array([[True, False, True], [False, True, True]])] ** 2, [m])


def test_item_and_numpy():
    t = mg.Tensor([[3.5]])
    assert t.item() == 3.5 and t.numpy() is t.data
    with pytest.raises(ValueError, match="one element"):
        mg.Tensor([1.0, 2.0]).item()


def test_a_20000_op_chain_is_drawn_without_recursion(monkeypatch):
    monkeypatch.setattr(mg.viz, "LAYOUT_LIMIT", None)  # the DOT text only: too big for dot
    x = leaf([1.0], "x")
    y = x
    for _ in range(20_000):
        y = mg.tanh(y)
    source = mg.viz.graph(y).source
    assert source.count('label="tanh"') == 20_000
    visible = [line for line in source.splitlines() if "->" in line and "invis" not in line]
    assert len(visible) == 40_000  # x -> op -> tensor -> op ... for every op
