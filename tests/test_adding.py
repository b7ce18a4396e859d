"""The adding-problem data (models/adding.py) and a tiny training run that beats its baseline."""
import numpy as np
import pytest

import minigrad as mg
import models
from models.adding import BASELINE_MSE, TOLERANCE, accuracy, baseline_mse, sample


@pytest.mark.parametrize("length", [2, 3, 10, 101])
def test_exactly_two_markers_one_in_each_half_and_the_target_is_their_sum(length):
    n = 4000
    x, y = sample(n, length, np.random.default_rng(length))
    assert x.shape == (n, length, 2) and y.shape == (n, 1)
    assert x.dtype == y.dtype == np.float64
    values, markers = x[:, :, 0], x[:, :, 1]
    assert np.all((values >= 0) & (values < 1))
    assert set(np.unique(markers)) <= {0.0, 1.0} and np.all(markers.sum(axis=1) == 2)
    half = length // 2
    assert np.all(markers[:, :half].sum(axis=1) == 1)
    assert np.all(markers[:, half:].sum(axis=1) == 1)
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(axis=1), rtol=0, atol=1e-15)
    # Every step of each half gets a marker sometimes: the positions are not fixed.
    first, second = markers[:, :half].argmax(axis=1), half + markers[:, half:].argmax(axis=1)
    assert set(first) == set(range(half)) and set(second) == set(range(half, length))


def test_same_generator_state_same_data_and_dtype_option():
    a = sample(5, 8, np.random.default_rng(3))
    b = sample(5, 8, np.random.default_rng(3))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    x, y = sample(5, 8, np.random.default_rng(3), dtype=np.float32)
    assert x.dtype == y.dtype == np.float32
    assert not np.array_equal(sample(5, 8, np.random.default_rng(4))[0], a[0])


def test_the_baseline_of_predicting_one_is_one_sixth():
    """The target is a sum of two U[0, 1] values: mean 1, variance 2/12 = 1/6, so the
    best constant guess is 1 and its MSE is 1/6."""
    assert BASELINE_MSE == pytest.approx(1 / 6, abs=1e-15)
    _, y = sample(200_000, 20, np.random.default_rng(0))
    assert float(y.mean()) == pytest.approx(1.0, abs=0.005)
    assert baseline_mse(y) == pytest.approx(1 / 6, abs=0.002)  # std of the estimate 0.0004
    # Any other constant does worse.
    for guess in (0.9, 1.1):
        assert float(np.mean((y - guess) ** 2)) > baseline_mse(y)


def test_accuracy_counts_answers_within_the_tolerance():
    y = np.array([[1.0], [0.5], [1.5], [0.2]])
    prediction = y + np.array([[0.0], [TOLERANCE / 2], [-0.05], [0.2]])
    assert accuracy(prediction, y) == 0.5
    assert accuracy(prediction, y, tolerance=0.3) == 1.0
    with pytest.raises(ValueError, match=r"prediction shape \(4,\) and target shape "
                                         r"\(4, 1\) differ"):
        accuracy(prediction[:, 0], y)


@pytest.mark.parametrize("n, length, match", [
    (0, 10, r"n must be a positive integer, got 0"),
    (True, 10, r"n must be a positive integer, got True"),
    (5, 1, r"length must be an integer of at least 2 \(one marker in each half\), got 1"),
    (5, 10.0, r"length must be an integer of at least 2 .* got 10.0"),
])
def test_sample_rejects_bad_sizes(n, length, match):
    with pytest.raises(ValueError, match=match):
        sample(n, length, np.random.default_rng(0))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_short_training_run_beats_the_baseline(kind):
    """T = 10, 300 steps: the held-out MSE falls to a tenth of 1/6, where the
    untrained model is not."""
    T, H = 10, 12
    rng = np.random.default_rng(0)
    options = {"forget_bias": 1.0} if kind == "lstm" else {}
    rnn = models.recurrent(kind, 2, H, rng=rng, **options)
    head = mg.nn.Linear(H, 1, rng=rng)
    params = rnn.parameters() + head.parameters()
    test_x, test_y = sample(512, T, np.random.default_rng(1))

    def test_mse():
        with mg.no_grad():
            answer = head(rnn(test_x)[0][:, -1]).data
        return float(np.mean((answer - test_y) ** 2))

    assert test_mse() > 0.8 * BASELINE_MSE
    optimizer = mg.optim.Adam(params, lr=1e-2)
    for _ in range(300):
        x, y = sample(32, T, rng)
        loss = mg.nn.mse_loss(head(rnn(x)[0][:, -1]), y)
        optimizer.zero_grad()
        loss.backward()
        mg.optim.clip_grad_norm(params, 1.0)
        optimizer.step()
    assert test_mse() < 0.1 * BASELINE_MSE
