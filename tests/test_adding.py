"""The adding-problem data (models/data/adding.py), a tiny training run that beats its
baseline, and the two example scripts built on it."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad import models
from minigrad.models.data.adding import BASELINE_MSE, TOLERANCE, accuracy, baseline_mse, sample


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


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_the_adding_model_answers_from_the_top_layers_last_h(kind):
    """Adder reads the final state h_n[-1]: the last step of the output, not an LSTM's
    cell state c_n, which has the same shape."""
    sys.path.insert(0, str(ROOT / "examples"))
    from adding_problem import Adder
    model = Adder(kind, 5, forget_bias=1.0 if kind == "lstm" else 0.0,
                  rng=np.random.default_rng(0))
    x, _ = sample(3, 6, np.random.default_rng(1))
    out, _ = model.rnn(x)
    np.testing.assert_array_equal(model(x).data, model.head(out[:, -1]).data)


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


# -- the example scripts, run as a user runs them -------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def run(script, *flags):
    return subprocess.run([sys.executable, str(ROOT / "examples" / script), *map(str, flags)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def adding_run(tmp_path_factory):
    """A short GRU run on T = 8: far from trained, but every output is made."""
    out = tmp_path_factory.mktemp("adding")
    flags = ["--model", "gru", "--length", 8, "--hidden", 4, "--steps", 30, "--out",
             out / "run", "--json", out / "result.json", "--quiet"]
    done = run("adding_problem.py", *flags)
    assert done.returncode == 0, done.stderr
    return out, flags, done, json.loads((out / "result.json").read_text())


def test_adding_example_json_and_files(adding_run):
    out, _, done, record = adding_run
    assert {"task", "model", "length", "seed", "train_steps", "sequences", "seconds",
            "test_mse", "test_accuracy"} <= set(record)
    assert (record["task"], record["model"], record["length"], record["seed"]) == \
        ("adding", "gru", 8, 0)
    assert record["train_steps"] == 30 and record["sequences"] == 30 * 32
    assert record["converged"] is False and record["test_sequences"] == 2560
    assert 0 <= record["test_accuracy"] <= 1 and record["test_mse"] > 0
    assert "forget_bias" not in record  # an LSTM setting
    assert "1/6 = 0.1667" in done.stdout and "1997 paper: 74,000" in done.stdout
    weights = out / "run" / "gru-T8-seed0.npz"
    assert record["weights"] == str(weights) and weights.is_file()
    assert (out / "run" / "gru-T8-seed0.png").is_file()
    # The saved weights are the trained model's: they reproduce its test MSE.
    state = mg.load(weights)
    model = models.GRU(2, 4)
    model.load_state_dict({k[len("rnn."):]: v for k, v in state.items()
                           if k.startswith("rnn.")})
    head = mg.nn.Linear(4, 1)
    head.load_state_dict({k[len("head."):]: v for k, v in state.items()
                          if k.startswith("head.")})
    x, y = sample(2560, 8, np.random.default_rng(8))  # the example's test set
    with mg.no_grad():
        answer = head(model(x)[0][:, -1]).data
    assert float(np.mean((answer - y) ** 2)) == pytest.approx(record["test_mse"], rel=1e-12)


def test_adding_example_never_overwrites_another_configuration(adding_run):
    out, flags, _, _ = adding_run
    weights = out / "run" / "gru-T8-seed0.npz"
    before = weights.read_bytes()
    changed = [str(f) for f in flags]
    changed[changed.index("--hidden") + 1] = "5"
    done = run("adding_problem.py", *changed)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"adding_problem.py: error: {weights} holds a model of another "
                           f"configuration (hidden 4, not 5): choose another --out, or "
                           f"delete the file to replace it\n")
    assert weights.read_bytes() == before
    # The same configuration again may replace its own file.
    assert run("adding_problem.py", *flags).returncode == 0


@pytest.mark.parametrize("flags, message", [
    (["--model", "gru", "--forget-bias", "2"],
     "--forget-bias cannot be used with --model gru (LSTM only)"),
    (["--length", "1"], "argument --length: must be in 2..100000, got 1"),
    (["--target", "1.5"], "--target must be at most 1, got 1.5"),
])
def test_adding_example_rejects_bad_flags_in_one_line(flags, message):
    done = run("adding_problem.py", *flags, "--quiet")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"adding_problem.py: error: {message}\n"


def test_gradient_flow_example(tmp_path):
    done = run("gradient_flow.py", "--length", 6, "--hidden", 3, "--train-steps", 4,
               "--out", tmp_path, "--json", "-", "--quiet")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert (record["task"], record["length"], record["train_steps"]) == ("gradient_flow", 6, 4)
    assert set(record["models"]) == {"RNN (tanh)", "GRU", "LSTM", "LSTM, forget_bias=1"}
    for label, entry in record["models"].items():
        for stage in ("init", "trained"):
            assert set(entry[stage]) == ({"h", "c"} if "LSTM" in label else {"h"}), label
            norms = np.array(entry[stage]["h"])
            assert norms.shape == (6,) and np.all(norms > 0), label
            assert entry[f"orders_lost_{stage}"] == pytest.approx(
                np.log10(norms[-1] / norms[0])), label
    assert "orders of magnitude lost" in done.stderr  # the text goes to stderr with --json -
    assert (tmp_path / "gradient_flow.png").is_file()
