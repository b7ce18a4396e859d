"""The benchmark's hand-written LSTM must compute exactly what minigrad computes.

Its gradients are checked two independent ways: against central differences of its own
forward pass, and against minigrad's backward through ``models.LSTM`` + ``nn.Linear`` +
the BCE-with-logits loss on the same arrays. A floor that computed something else would
make every speed ratio measured against it meaningless.
"""
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from models import LSTM

_path = Path(__file__).resolve().parent.parent / "benchmarks" / "reference_lstm.py"
_spec = importlib.util.spec_from_file_location("reference_lstm", _path)
reference_lstm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference_lstm)
ReferenceLSTM, make_problem = reference_lstm.ReferenceLSTM, reference_lstm.make_problem

NAMES = ("weight", "bias", "head_weight", "head_bias")


def _minigrad_loss_and_grads(params, x, target):
    """Loss and gradients from minigrad's own LSTM, loaded with the same arrays."""
    d, h = x.shape[2], params["head_weight"].shape[0]
    lstm = LSTM(d, h, dtype=x.dtype)
    head = mg.nn.Linear(h, params["head_weight"].shape[1], dtype=x.dtype)
    lstm.l0.weight.data[...] = params["weight"]
    lstm.l0.bias.data[...] = params["bias"]
    head.weight.data[...] = params["head_weight"]
    head.bias.data[...] = params["head_bias"]
    xt = mg.Tensor(x, requires_grad=True)
    out, _ = lstm(xt)
    loss = mg.nn.binary_cross_entropy_with_logits(head(out), mg.Tensor(target))
    loss.backward()
    grads = {"weight": lstm.l0.weight.grad, "bias": lstm.l0.bias.grad,
             "head_weight": head.weight.grad, "head_bias": head.bias.grad, "x": xt.grad}
    return loss.item(), out.data, grads


@pytest.mark.parametrize("shape", [(3, 5, 2, 4, 1), (4, 7, 3, 5, 2), (2, 1, 1, 3, 1)])
def test_gradients_match_central_differences(shape):
    n, t, d, h, o = shape
    params, x, target = make_problem(n, t, d, h, o, seed=sum(shape))
    # Spread the weights so gates saturate somewhere: a derivative term that is wrong
    # only away from zero pre-activations would pass with small weights.
    params["weight"] *= 4.0
    ref = ReferenceLSTM(**params)
    ref.forward(x, target)
    analytic = {k: v.copy() for k, v in ref.backward(input_grad=True).items()}
    arrays = dict(params, x=x)
    eps = 1e-6
    for name, array in arrays.items():
        numeric = np.empty_like(array)
        for index in np.ndindex(array.shape):
            original = array[index]
            array[index] = original + eps
            plus = ref.forward(x, target)
            array[index] = original - eps
            minus = ref.forward(x, target)
            array[index] = original
            numeric[index] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-9,
                                   err_msg=f"gradient of {name}")


@pytest.mark.parametrize("shape", [(3, 6, 2, 4, 1), (5, 9, 3, 6, 2)])
def test_matches_minigrad_lstm_to_1e10(shape):
    n, t, d, h, o = shape
    params, x, target = make_problem(n, t, d, h, o, seed=7)
    params["weight"] *= 3.0
    ref = ReferenceLSTM(**params)
    loss = ref.forward(x, target)
    grads = ref.backward(input_grad=True)
    mg_loss, mg_out, mg_grads = _minigrad_loss_and_grads(params, x, target)
    assert loss == pytest.approx(mg_loss, rel=1e-12)
    np.testing.assert_allclose(ref.output, mg_out, rtol=0, atol=1e-12)
    for name in NAMES + ("x",):
        assert grads[name].shape == mg_grads[name].shape
        np.testing.assert_allclose(grads[name], mg_grads[name], rtol=1e-10, atol=1e-12,
                                   err_msg=f"gradient of {name}")


def test_saturated_gates_stay_finite_and_match_minigrad():
    """Pre-activations of several hundred overflow exp(-z) in float64 (and far less in
    float32): the gates must saturate to exactly 0 or 1, silently, as minigrad's do."""
    params, x, target = make_problem(3, 4, 2, 3, seed=8)
    params["weight"] *= 2000.0
    ref = ReferenceLSTM(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = ref.forward(x, target)
        grads = ref.backward(input_grad=True)
    assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())
    assert np.any(ref.act == 0.0) and np.any(ref.act == 1.0)
    mg_loss, _, mg_grads = _minigrad_loss_and_grads(params, x, target)
    assert loss == pytest.approx(mg_loss, rel=1e-12)
    for name in NAMES + ("x",):
        np.testing.assert_allclose(grads[name], mg_grads[name], rtol=1e-10, atol=1e-12)


def test_works_on_the_callers_arrays_not_copies():
    """An in-place update of the arrays (an optimizer step) is seen by the next call."""
    params, x, target = make_problem(4, 5, 2, 3, seed=1)
    ref = ReferenceLSTM(**params)
    before = ref.forward(x, target)
    params["weight"] *= 0.5
    after = ref.forward(x, target)
    assert after != before
    assert after == ReferenceLSTM(**params).forward(x, target)


def test_buffers_follow_a_change_of_batch_and_length():
    params, x, target = make_problem(4, 6, 2, 3, seed=2)
    _, x2, target2 = make_problem(3, 9, 2, 3, seed=3)
    ref = ReferenceLSTM(**params)
    ref.forward(x, target)
    ref.backward()
    loss = ref.forward(x2, target2)
    grads = ref.backward()
    fresh = ReferenceLSTM(**params)
    assert loss == fresh.forward(x2, target2)
    for name, value in fresh.backward().items():
        np.testing.assert_array_equal(grads[name], value)


def test_float32_keeps_its_dtype_and_agrees_with_float64():
    params64, x64, target64 = make_problem(8, 12, 3, 16, seed=4)
    params32 = {k: v.astype(np.float32) for k, v in params64.items()}
    ref32 = ReferenceLSTM(**params32)
    loss32 = ref32.forward(x64.astype(np.float32), target64.astype(np.float32))
    grads32 = ref32.backward()
    ref64 = ReferenceLSTM(**params64)
    loss64 = ref64.forward(x64, target64)
    grads64 = ref64.backward()
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    for name in NAMES:
        assert grads32[name].dtype == np.float32
        np.testing.assert_allclose(grads32[name], grads64[name], rtol=1e-3, atol=1e-5)


def test_rejects_a_weight_of_the_wrong_layout():
    params, _, _ = make_problem(2, 3, 2, 4, seed=5)
    with pytest.raises(ValueError, match=r"weight of shape \(6, 15\): expected \(D\+H, 4H\)"):
        ReferenceLSTM(params["weight"][:, :15], params["bias"], params["head_weight"],
                      params["head_bias"])


def test_rejects_input_of_the_wrong_width():
    params, x, target = make_problem(2, 3, 2, 4, seed=6)
    with pytest.raises(ValueError, match="expected last dimension 2"):
        ReferenceLSTM(**params).forward(np.zeros((2, 3, 5)), target)
