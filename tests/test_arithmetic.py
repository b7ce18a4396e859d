"""The binary arithmetic task: encoding, the pair space and its split, training, checkpoints."""
import numpy as np
import pytest

import minigrad as mg
from minigrad.tensor import topological_order
from models.arithmetic import (ArithmeticModel, accuracy, all_pairs, checkpoint, compute,
                               encode, format_example, from_bits, main, make_split,
                               noisy_state, operand_limit, pair_count, parse_args, predict,
                               restore, sample_pairs, to_bits, train)

TASKS = ("addition", "subtraction")


# -- encoding --------------------------------------------------------------------------

def test_encoding_is_least_significant_bit_first():
    x, y = encode("addition", [6], [3], 4)  # 6 = 0110, 3 = 0011, 9 = 1001
    assert x.shape == (1, 4, 2) and y.shape == (1, 4, 1)
    assert x[0, :, 0].tolist() == [0, 1, 1, 0]
    assert x[0, :, 1].tolist() == [1, 1, 0, 0]
    assert y[0, :, 0].tolist() == [1, 0, 0, 1]
    _, y = encode("subtraction", [13], [9], 4)  # 13 - 9 = 4 = 0100
    assert y[0, :, 0].tolist() == [0, 0, 1, 0]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("bits", [1, 5, 32, 64])
def test_encode_then_decode_gives_back_operands_and_result(task, bits):
    a, b = sample_pairs(task, bits, 500, np.random.default_rng(bits))
    x, y = encode(task, a, b, bits)
    assert x.dtype == np.float64 and set(np.unique(x)) <= {0.0, 1.0}
    assert np.array_equal(from_bits(x[:, :, 0]), a)
    assert np.array_equal(from_bits(x[:, :, 1]), b)
    assert np.array_equal(from_bits(y[:, :, 0]), compute(task, a, b))
    # compute is exact, also where a float64 would round (64-bit numbers)
    i = 0
    expected = int(a[i]) + int(b[i]) if task == "addition" else int(a[i]) - int(b[i])
    assert int(compute(task, a[i], b[i])) == expected


def test_to_bits_and_from_bits_are_inverse_up_to_64_bits():
    values = np.array([0, 1, 2 ** 63, 2 ** 64 - 1, 12345678901234567890], dtype=np.uint64)
    assert np.array_equal(from_bits(to_bits(values, 64)), values)
    assert to_bits([5], 3).tolist() == [[1, 0, 1]]


@pytest.mark.parametrize("task, a, b, bits, message", [
    ("addition", [8], [0], 4, r"operands in \[0, 8\)"),       # sum could overflow 4 bits
    ("addition", [-1], [0], 4, r"operands in \[0, 8\)"),
    ("subtraction", [16], [0], 4, r"operands in \[0, 16\)"),
    ("subtraction", [3], [5], 4, "a >= b"),
    ("addition", [1.5], [0], 4, "must be integers"),
    ("addition", [1, 2], [0], 4, "same length"),
    ("multiplication", [1], [0], 4, "task must be one of"),
])
def test_encode_rejects_what_it_cannot_represent(task, a, b, bits, message):
    with pytest.raises(ValueError, match=message):
        encode(task, a, b, bits)


def test_format_example_reads_like_a_written_sum():
    assert format_example("subtraction", 13, 9, 4, 4) == (
        "  x1: 1101\n"
        "- x2: 1001\n"
        "true: 0100   pred: 0100   13 - 9 = 4")
    wrong = format_example("addition", 5, 2, 6, 4)
    assert wrong.startswith("  x1: 0101\n+ x2: 0010\ntrue: 0111   pred: 0110   5 + 2 = 7")
    assert "WRONG (predicted 6)" in wrong


# -- the pair space ----------------------------------------------------------------------

@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("bits", [1, 3, 8])
def test_operand_ranges(task, bits):
    a, b = sample_pairs(task, bits, 2000, np.random.default_rng(0))
    limit = operand_limit(task, bits)
    assert a.max() < limit and b.max() < limit
    if task == "addition":
        assert limit == 2 ** (bits - 1) and (a + b).max() < 2 ** bits
    else:
        assert limit == 2 ** bits and np.all(a >= b)


def test_subtraction_with_4_bits_has_136_pairs():
    a, b = all_pairs("subtraction", 4)
    assert pair_count("subtraction", 4) == 136 == len(set(zip(a.tolist(), b.tolist())))
    assert np.all(a >= b) and a.max() == 15


@pytest.mark.parametrize("task, bits", [("addition", 1), ("addition", 5), ("subtraction", 1),
                                        ("subtraction", 5)])
def test_pair_count_matches_enumeration(task, bits):
    a, b = all_pairs(task, bits)
    assert pair_count(task, bits) == len(a) == len(set(zip(a.tolist(), b.tolist())))


def test_subtraction_pairs_are_uniform_including_a_equal_b():
    # Sorting two independent draws would make the 8 pairs a == b half as frequent.
    a, b = sample_pairs("subtraction", 3, 36_000, np.random.default_rng(1))
    counts = {}
    for pair in zip(a.tolist(), b.tolist()):
        counts[pair] = counts.get(pair, 0) + 1
    assert len(counts) == 36                      # every pair of the space occurs
    assert all(850 < n < 1150 for n in counts.values())  # 1000 expected, sd ~31
    assert np.mean([counts[k, k] for k in range(8)]) > 900


def test_held_out_pairs_are_never_trained_on():
    rng = np.random.default_rng(0)
    split = make_split("addition", 8, 2000, rng)
    test = set(zip(split.test_a.tolist(), split.test_b.tolist()))
    assert split.held_out and len(test) == 2000  # distinct
    assert "held out 2,000 of the 16,384" in split.description
    seen = set()
    for _ in range(60):
        a, b = split.train_batch(256, rng)
        assert len(a) == len(b) == 256
        seen.update(zip(a.tolist(), b.tolist()))
    assert len(seen) > 5000 and not seen & test


def test_small_space_is_evaluated_whole_and_says_so():
    split = make_split("subtraction", 4, 2000, np.random.default_rng(0))
    assert not split.held_out
    assert sorted(zip(split.test_a.tolist(), split.test_b.tolist())) == \
        sorted(zip(*[v.tolist() for v in all_pairs("subtraction", 4)]))
    assert "only 136 pairs" in split.description
    assert "trained and evaluated on all of them" in split.description


def test_split_is_deterministic_given_the_seed():
    one = make_split("addition", 8, 100, np.random.default_rng(5))
    two = make_split("addition", 8, 100, np.random.default_rng(5))
    assert np.array_equal(one.test_a, two.test_a) and np.array_equal(one.test_b, two.test_b)


# -- model, training, checkpoints ---------------------------------------------------------

def test_model_shapes_names_and_scopes():
    model = ArithmeticModel(5, rng=np.random.default_rng(0))
    assert [n for n, _ in model.named_parameters()] == \
        ["lstm.l0.weight", "lstm.l0.bias", "head.weight", "head.bias"]
    assert model.lstm.l0.weight.shape == (2 + 5, 4 * 5)
    x, _ = encode("addition", [3, 1, 0], [2, 2, 7], 4)
    logits = model(x)
    assert logits.shape == (3, 4, 1)
    scopes = {t.scope for t in topological_order(logits)}
    assert "lstm/l0/t3" in scopes and "" in scopes  # the head is outside the LSTM's box


def test_model_rejects_bad_sizes():
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        ArithmeticModel(0)


def test_noisy_state():
    model = ArithmeticModel(3, num_layers=2, rng=np.random.default_rng(0))
    assert noisy_state(model, 4, 0.0, np.random.default_rng(0)) is None
    h0, c0 = noisy_state(model, 4, 0.5, np.random.default_rng(0))
    assert h0.shape == c0.shape == (2, 4, 3) and not h0.requires_grad
    assert 0.2 < h0.data.std() < 1.0 and not np.array_equal(h0.data, c0.data)


@pytest.fixture(scope="module")
def trained():
    """A small model trained for a fixed number of steps on 5-bit addition (~0.5 s)."""
    rng = np.random.default_rng(0)
    split = make_split("addition", 5, 2000, rng)
    model = ArithmeticModel(8, rng=rng)
    history = train(model, split, steps=150, rng=rng, loss_target=1e-9)
    return model, split, history


def test_training_lowers_the_loss_and_beats_chance(trained):
    model, split, history = trained
    assert history.steps == 150 and not history.converged and history.seconds > 0
    assert np.mean(history.losses[-10:]) < 0.6 * np.mean(history.losses[:10])
    assert len(history.smoothed) == len(history.batch_accuracy) == 150
    chance = 2.0 ** -5  # guessing all 5 result bits
    assert accuracy(model, "addition", split.test_a, split.test_b, 5) > 10 * chance


def test_training_stops_once_every_pair_is_right():
    rng = np.random.default_rng(0)
    split = make_split("addition", 2, 2000, rng)  # 4 pairs: a quick job
    model = ArithmeticModel(4, rng=rng)
    history = train(model, split, steps=2000, rng=rng, loss_target=0.1)
    assert history.converged and history.steps < 2000
    assert history.evals[-1] == (history.steps, 1.0) and history.smoothed[-1] < 0.1
    assert accuracy(model, "addition", split.test_a, split.test_b, 2) == 1.0


def test_checkpoint_round_trip_gives_identical_predictions(trained, tmp_path):
    model, split, _ = trained
    path = tmp_path / "model.npz"
    mg.save(checkpoint(model, "addition", 5, seed=7), path)
    loaded, config = restore(mg.load(path))
    assert config == {"task": "addition", "hidden_size": 8, "num_layers": 1, "bits": 5,
                      "seed": 7}
    x, _ = encode("addition", split.test_a, split.test_b, 5)
    with mg.no_grad():
        assert np.array_equal(loaded(x).data, model(x).data)
    assert np.array_equal(predict(loaded, "addition", split.test_a, split.test_b, 5),
                          predict(model, "addition", split.test_a, split.test_b, 5))


def test_restore_rejects_a_plain_state_dict(trained):
    with pytest.raises(ValueError, match="missing config.task"):
        restore(trained[0].state_dict())


# -- the command line ---------------------------------------------------------------------

def test_defaults_need_no_flags():
    args = parse_args("addition", [])
    assert (args.bits, args.hidden, args.batch_size, args.lr, args.seed) == (None, 16, 64, 0.01,
                                                                           None)
    assert args.out.replace("\\", "/") == "runs/addition"


@pytest.mark.parametrize("argv, message", [
    (["--bits", "0"], "--bits must be in 1..64, got 0"),
    (["--bits", "65"], "--bits must be in 1..64, got 65"),
    (["--test-bits", "0"], "--test-bits must be in 1..64, got 0"),
    (["--hidden", "0"], "--hidden must be at least 1, got 0"),
    (["--steps", "-3"], "--steps must be at least 1, got -3"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--lr", "0"], "--lr must be positive, got 0.0"),
    (["--state-noise", "-1"], "--state-noise must be zero or positive, got -1.0"),
    (["--bits", "eight"], "argument --bits: invalid int value: 'eight'"),
    (["--lr", "inf"], "--lr must be positive, got inf"),
    (["--seed", "-1"], "--seed must be zero or positive, got -1"),
    (["--load", "no/such/file.npz"], "--load no/such/file.npz: no such file"),
    (["--json", "no/such/dir/r.json"], "--json no/such/dir/r.json: no such directory"),
])
def test_bad_flags_exit_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main("subtraction", argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == f"binary_subtraction.py: error: {message}\n"


def test_out_must_be_a_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main("addition", ["--out", str(blocker)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == \
        f"binary_addition.py: error: --out {blocker}: exists and is not a directory\n"


def test_loading_a_model_of_the_other_task_is_refused(trained, tmp_path, capsys):
    path = tmp_path / "model.npz"
    mg.save(checkpoint(trained[0], "addition", 5, seed=0), path)
    assert main("subtraction", ["--load", str(path), "--quiet"]) == 2
    assert capsys.readouterr().err == \
        f"binary_subtraction.py: error: {path} holds a model trained on addition, not subtraction\n"
