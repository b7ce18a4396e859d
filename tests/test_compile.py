"""mg.compile: a replayed step gives the engine's loss and gradients, call after call.

Every row of the op table runs compiled against eager (values and gradients, float64, to
1e-12 relative), then the models, a training loop, and the ways a replay could be
silently wrong: arrays reaching ops as attributes (an embedding's indices, the targets
of cross_entropy), random masks, casts, no_grad and detach inside the step, replaced
parameters, a graph that depends on values (check=True names the op).
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad import ops
from minigrad.models import GRU, LSTM, RNN
from test_ops import OP_TABLE

RTOL = 1e-12


def assert_same(mine, theirs, what=""):
    mine, theirs = np.asarray(mine), np.asarray(theirs)
    assert mine.shape == theirs.shape, what
    scale = np.max(np.abs(theirs), initial=0.0)
    np.testing.assert_allclose(mine, theirs, rtol=RTOL, atol=RTOL * scale, err_msg=what)


def eager_and_compiled(fn, params, calls):
    """Run ``fn`` on each argument tuple eagerly and compiled (fresh gradients each time);
    assert equal losses and gradients; return the compiled step."""
    step = mg.compile(fn)
    for args in calls:
        for p in params:
            p.grad = None
        expected = fn(*args)
        expected.backward()
        grads = [p.grad for p in params]
        for p in params:
            p.grad = None
        got = step(*args)
        assert_same(got.data, expected.data, "loss")
        for p, g in zip(params, grads):
            if g is None:
                assert p.grad is None
            else:
                assert_same(p.grad, g, f"gradient of {p.name}")
    return step


@pytest.mark.parametrize("fn, shapes, make", OP_TABLE)
def test_every_op_compiled_equals_eager_over_several_calls(fn, shapes, make):
    rng = np.random.default_rng(3)
    params = [mg.nn.Parameter(make(rng, s), name=f"p{i}") for i, s in enumerate(shapes)]
    out_shape = fn(*params).shape

    def loss(upstream):  # an argument array: its new values must reach every call
        return (fn(*params) * upstream).sum()

    calls = [(rng.standard_normal(out_shape),) for _ in range(3)]
    step = eager_and_compiled(loss, params, calls)
    assert len(step.plans) == 1


@pytest.mark.parametrize("fn, shapes, make", OP_TABLE[::4])
def test_ops_on_arguments_are_replayed_not_frozen(fn, shapes, make):
    """Tensors passed in (requiring grad) get their gradients, and ops applied to
    arguments alone are recomputed at every call."""
    rng = np.random.default_rng(5)
    step = mg.compile(lambda *xs: (fn(*xs) * fn(*xs)).sum())
    for _ in range(3):
        values = [make(rng, s) for s in shapes]
        mine = [mg.Tensor(v.copy(), requires_grad=True) for v in values]
        theirs = [mg.Tensor(v.copy(), requires_grad=True) for v in values]
        loss = step(*mine)
        expected = (fn(*theirs) * fn(*theirs)).sum()
        expected.backward()
        assert_same(loss.data, expected.data, "loss")
        for a, b in zip(mine, theirs):
            assert_same(a.grad, b.grad, "argument gradient")


def test_the_op_table_reaches_every_op_class():
    """So that no op goes without the replay check above (Dropout has its own test)."""
    seen = set()
    for fn, shapes, make in (p.values for p in OP_TABLE):
        inputs = [mg.Tensor(make(np.random.default_rng(0), s), requires_grad=True)
                  for s in shapes]
        seen.update(type(op) for op, _, _ in _tape(lambda: fn(*inputs).sum(), ()))
    everything = {cls for cls in _subclasses(ops.Op)
                  if cls not in (ops.Elementwise, ops.View, ops.Dropout)}
    assert everything <= seen, sorted(c.__name__ for c in everything - seen)


def _subclasses(cls):
    found, stack = set(), [cls]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub.__module__ == ops.__name__ and sub not in found:
                found.add(sub)
                stack.append(sub)
    return found


def _tape(fn, args):
    from minigrad.compile import run_taped
    tape, _, _ = run_taped(fn, args)
    return tape


# -- models ----------------------------------------------------------------------------------

def sequence_batches(rng, n, t, d, count=3):
    return [(rng.standard_normal((n, t, d)), (rng.random((n, t, 1)) < 0.5).astype(float))
            for _ in range(count)]


@pytest.mark.parametrize("model_class", [LSTM, GRU, RNN])
@pytest.mark.parametrize("layers", [1, 2])
def test_recurrent_models_compiled_equal_eager(model_class, layers):
    rng = np.random.default_rng(0)
    model = model_class(3, 5, num_layers=layers, rng=rng)
    head = mg.nn.Linear(5, 1, rng=rng)
    params = list(model.parameters()) + list(head.parameters())

    def loss(x, y):
        out = model(x)[0]
        return mg.nn.binary_cross_entropy_with_logits(head(out), y)

    eager_and_compiled(loss, params, sequence_batches(rng, 4, 6, 3))


def test_linear_and_cross_entropy_over_a_sequence_compiled_equal_eager():
    rng = np.random.default_rng(1)
    emb = mg.nn.Embedding(7, 4, rng=rng)
    fc = mg.nn.Linear(4, 7, rng=rng)
    params = list(emb.parameters()) + list(fc.parameters())

    def loss(tokens, targets):  # both integer arrays: an index and a target attribute
        return mg.nn.cross_entropy(fc(mg.relu(emb(tokens))), targets)

    calls = [(rng.integers(0, 7, (3, 5)), rng.integers(0, 7, (3, 5))) for _ in range(4)]
    calls.append((np.zeros((3, 5), int), np.zeros((3, 5), int)))
    eager_and_compiled(loss, params, calls)


def test_cross_entropy_follows_each_calls_padding():
    rng = np.random.default_rng(12)
    fc = mg.nn.Linear(3, 5, rng=rng)

    def loss(x, targets):
        return mg.nn.cross_entropy(fc(x), targets, ignore_index=-1)

    calls = []
    for ignored in (0, 2, 5, 1):
        targets = rng.integers(0, 5, (2, 4))
        targets.flat[:ignored] = -1
        calls.append((rng.standard_normal((2, 4, 3)), targets))
    eager_and_compiled(loss, list(fc.parameters()), calls)


def test_a_float64_batch_cast_by_a_float32_model_is_read_at_every_call():
    rng = np.random.default_rng(2)
    model = LSTM(2, 3, rng=rng, dtype=np.float32)
    params = list(model.parameters())
    step = mg.compile(lambda x: model(x)[0].sum())
    for _ in range(3):
        x = rng.standard_normal((2, 4, 2))  # float64: nn.as_input casts it
        loss = step(x)
        for p in params:
            p.grad = None
        expected = model(x)[0].sum()
        assert loss.dtype == np.float32
        np.testing.assert_allclose(loss.data, expected.data, rtol=1e-5)


def test_integer_arguments_cast_to_floats_are_read_at_every_call():
    """An integer target of a loss, and mg.Tensor(integer array), are casts of the
    argument: the replay casts it anew, it does not keep the captured values."""
    rng = np.random.default_rng(11)
    w = mg.nn.Parameter(rng.standard_normal((3, 1)), name="w")

    def loss(x, bits, counts):
        logits = x @ w
        return (mg.nn.binary_cross_entropy_with_logits(logits, bits)
                + (mg.Tensor(counts) * logits).mean())

    calls = [(rng.standard_normal((4, 3)), rng.integers(0, 2, (4, 1)),
              rng.integers(0, 5, (4, 1))) for _ in range(3)]
    eager_and_compiled(loss, [w], calls)


# -- training loops ------------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_twenty_training_steps_keep_compiled_and_eager_weights_equal(optimizer):
    def build():
        rng = np.random.default_rng(7)
        model = LSTM(2, 6, rng=rng)
        head = mg.nn.Linear(6, 1, rng=rng)
        params = list(model.parameters()) + list(head.parameters())
        opt = mg.optim.SGD(params, lr=0.5, momentum=0.9) if optimizer == "sgd" \
            else mg.optim.Adam(params, lr=0.02)
        return model, head, params, opt

    eager, compiled = build(), build()
    rng = np.random.default_rng(8)
    batches = sequence_batches(rng, 5, 7, 2, count=20)

    def make_fn(model, head):
        return lambda x, y: mg.nn.mse_loss(head(model(x)[0]), y)

    step = mg.compile(make_fn(*compiled[:2]))
    fn = make_fn(*eager[:2])
    for x, y in batches:
        for (_, _, _, opt), run in ((eager, lambda: fn(x, y).backward()),
                                    (compiled, lambda: step(x, y))):
            opt.zero_grad()
            run()
            opt.step()
    for a, b in zip(eager[2], compiled[2]):
        np.testing.assert_allclose(b.data, a.data, rtol=1e-10, atol=1e-12)
    assert len(step.plans) == 1


def test_inside_no_grad_a_step_replays_the_forward_alone():
    rng = np.random.default_rng(10)
    model, head = LSTM(2, 4, rng=rng), mg.nn.Linear(4, 1, rng=rng)

    def evaluate(x, y):
        answer = head(model(x)[0][:, -1])
        return mg.nn.mse_loss(answer, y), answer

    step = mg.compile(evaluate)
    for _ in range(3):
        x, y = rng.random((5, 6, 2)), rng.random((5, 1))
        with mg.no_grad():
            loss, answer = step(x, y)
            expected, expected_answer = evaluate(x, y)
        assert_same(loss.data, expected.data)
        assert_same(answer.data, expected_answer.data)
        assert all(p.grad is None for p in model.parameters())
    step(x, y)  # with gradients: a signature of its own
    assert len(step.plans) == 2 and model.l0.weight.grad is not None


def test_gradients_accumulate_across_calls_like_backward():
    rng = np.random.default_rng(9)
    w = mg.nn.Parameter(rng.standard_normal((3, 2)), name="w")
    step = mg.compile(lambda x: mg.tanh(x @ w).sum())
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    step(x1)
    step(x2)
    expected_w = mg.nn.Parameter(w.data)
    mg.tanh(x1 @ expected_w).sum().backward()
    mg.tanh(x2 @ expected_w).sum().backward()
    assert_same(w.grad, expected_w.grad)


# -- signatures and replays --------------------------------------------------------------------

def test_a_new_shape_dtype_or_value_is_captured_anew():
    w = mg.nn.Parameter(np.ones((3, 2)), name="w")
    step = mg.compile(lambda x, scale: (x @ w).sum() * scale)
    x = np.arange(12.0).reshape(4, 3)
    assert float(step(x, 2.0)) == 2 * x.sum() * 2
    assert float(step(x, 2.0)) == 2 * x.sum() * 2
    assert len(step.plans) == 1
    assert float(step(x[:2], 2.0)) == 2 * x[:2].sum() * 2
    assert float(step(x, 3.0)) == 2 * x.sum() * 3
    assert len(step.plans) == 3
    with pytest.raises(TypeError, match="hashable"):
        step(x, [{}])


def test_only_the_most_recently_used_plans_are_kept():
    w = mg.nn.Parameter(np.ones((3, 1)), name="w")
    captures = []

    def fn(x):  # runs only when a signature is captured
        captures.append(x.shape)
        return (x @ w).sum()

    step = mg.compile(fn)
    for n in range(1, 12):
        step(np.ones((n, 3)))
        step(np.ones((1, 3)))  # used again and again: kept
    assert len(step.plans) == step.MAX_PLANS
    assert captures == [(n, 3) for n in range(1, 12)]  # (1, 3) never captured again
    assert float(step(np.ones((2, 3)))) == 6.0  # evicted long ago: captured again
    assert captures[-1] == (2, 3)


def test_the_same_array_passed_twice_is_a_signature_of_its_own():
    step = mg.compile(lambda a, b: (mg.Tensor(a) * 2 - mg.Tensor(b)).sum())
    x, y = np.ones(3), np.zeros(3)
    assert float(step(x, x)) == 3.0
    assert float(step(x, y)) == 6.0
    assert float(step(y, x)) == -3.0
    assert len(step.plans) == 2


def test_a_parameter_array_replaced_is_read_again():
    w = mg.nn.Parameter(np.ones((3, 2)), name="w")
    step = mg.compile(lambda x: (x @ w).sum())
    x = np.ones((1, 3))
    assert float(step(x)) == 6.0
    w.data = np.full((3, 2), 2.0)
    assert float(step(x)) == 12.0
    with mg.no_grad():
        w -= 1.0  # in place, as an optimizer does
    assert float(step(x)) == 6.0


def test_a_module_parameter_replaced_by_another_is_used():
    lin = mg.nn.Linear(2, 1)
    step = mg.compile(lambda x: lin(x).sum())
    x = np.ones((1, 2))
    step(x)
    lin.weight = mg.nn.Parameter(np.full((2, 1), 5.0))
    lin.bias = mg.nn.Parameter(np.zeros(1))
    assert float(step(x)) == 10.0
    assert lin.weight.grad is not None


def test_dropout_draws_a_fresh_mask_at_every_replay_as_eager_does():
    def run(compiled):
        drop = mg.nn.Dropout(0.5, rng=0)
        w = mg.nn.Parameter(np.ones((4, 8)), name="w")
        fn = lambda x: (drop(x @ w) ** 2).sum()  # noqa: E731
        call = mg.compile(fn) if compiled else (lambda x: _backward(fn(x)))
        x = np.ones((3, 4))
        losses = []
        for _ in range(4):
            losses.append(float(call(x)))
        return losses, w.grad

    eager_losses, eager_grad = run(False)
    losses, grad = run(True)
    assert len(set(losses)) > 1  # not one mask frozen
    np.testing.assert_allclose(losses, eager_losses, rtol=RTOL)
    assert_same(grad, eager_grad)


def _backward(loss):
    loss.backward()
    return loss


def test_no_grad_and_detach_inside_the_step_are_replayed():
    rng = np.random.default_rng(4)
    w = mg.nn.Parameter(rng.standard_normal((3, 3)), name="w")

    def fn(x):
        with mg.no_grad():
            scale = mg.tanh(x @ w)  # depends on x and w, but gets no gradient
        h = x @ w
        return (h * scale).sum() + (h.detach() * h).sum()

    eager_and_compiled(fn, [w], [(rng.standard_normal((2, 3)),) for _ in range(3)])


def test_truncated_bptt_gets_its_final_state_out_and_back_in():
    rng = np.random.default_rng(6)
    model, head = LSTM(2, 4, rng=rng), mg.nn.Linear(4, 1, rng=rng)
    params = list(model.parameters()) + list(head.parameters())

    def chunk(x, y, h, c):
        out, (h_n, c_n) = model(x, (h, c))
        return mg.nn.mse_loss(head(out), y), h_n, c_n

    step = mg.compile(chunk)
    h = c = eager_h = eager_c = np.zeros((1, 3, 4))
    for x, y in sequence_batches(rng, 3, 5, 2, count=4):
        for p in params:
            p.grad = None
        loss, h, c = step(x, y, h, c)  # the state comes out, and goes back in
        grads = [p.grad for p in params]
        for p in params:
            p.grad = None
        expected, eager_h, eager_c = chunk(x, y, eager_h, eager_c)
        expected.backward()
        eager_h, eager_c = eager_h.detach(), eager_c.detach()
        assert_same(loss.data, expected.data)
        assert_same(h.data, eager_h.data)
        assert_same(c.data, eager_c.data)
        for p, g in zip(params, grads):
            assert_same(p.grad, g)
        assert h.op is None and not h.requires_grad  # a plain array: no graph behind it


def test_check_names_the_op_whose_value_the_capture_froze():
    w = mg.nn.Parameter(np.ones((2, 2)), name="w")

    def fn(x):
        mask = x > 0  # plain numpy on an argument's values: invisible to the capture
        return mg.where(mask, x @ w, 0.0).sum()

    step = mg.compile(fn, check=True)
    step(np.ones((1, 2)))
    step(np.ones((1, 2)) * 2)  # same mask: agrees
    before = w.grad.copy()
    with pytest.raises(RuntimeError, match="where"):
        step(np.array([[-1.0, 2.0]]))
    np.testing.assert_array_equal(w.grad, before)  # the refused step added nothing


def test_check_names_the_op_where_the_graph_changed():
    w = mg.nn.Parameter(np.ones((2, 2)), name="w")

    def fn(x):
        h = x @ w
        return (mg.tanh(h) if x.sum() > 0 else mg.sigmoid(h)).sum()

    step = mg.compile(fn, check=True)
    step(np.ones((1, 2)))
    with pytest.raises(RuntimeError, match="graph changed at sigmoid"):
        step(-np.ones((1, 2)))


def test_a_compiled_steps_loss_has_no_graph_to_draw(tmp_path):
    w = mg.nn.Parameter(np.ones((2, 2)), name="w")
    step = mg.compile(lambda x: (x @ w).sum())
    for _ in range(2):  # the capture's result, then a replay's
        loss = step(np.ones((1, 2)))
        assert float(loss) == 4.0
        for draw in (mg.viz.graph, lambda t: mg.viz.render(t, tmp_path / "g.svg"),
                     lambda t: mg.viz.explore(t, tmp_path / "g.html"),
                     lambda t: mg.viz.animate(t, tmp_path / "g.gif"), mg.Tensor.backward):
            with pytest.raises(RuntimeError, match=r"mg\.compile.*fn\(\.\.\.\)"):
                draw(loss)


def test_bad_functions_get_clear_errors():
    with pytest.raises(TypeError, match="function"):
        mg.compile(3)
    w = mg.nn.Parameter(np.ones(2))
    with pytest.raises(TypeError, match="scalar loss"):
        mg.compile(lambda: 1.0)()
    with pytest.raises(ValueError, match="scalar"):
        mg.compile(lambda: w * 2)()
    outside = w * 2
    with pytest.raises(RuntimeError, match="outside fn"):
        mg.compile(lambda: (outside * w).sum())()
