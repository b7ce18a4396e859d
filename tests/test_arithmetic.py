"""The binary arithmetic task: encoding, the pair space and its split, the model, checkpoints.

The training loop itself lives in the example scripts; ``tests/test_examples.py`` runs them.
"""
import json

import numpy as np
import pytest

import minigrad as mg
from minigrad.tensor import topological_order
from minigrad.models.arithmetic import (CELLS, ArithmeticModel, accuracy, checkpoint,
                                        load_model, noisy_state, predict, read_config, restore)
from minigrad.models.data.arithmetic import (all_pairs, compute, encode, format_example,
                                             from_bits, make_split, operand_limit, pair_count,
                                             sample_pairs, streams, to_bits, worked_examples)

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


def test_the_split_depends_on_the_seed_alone_and_its_fingerprint_tells_them_apart():
    def split(seed):
        return make_split("addition", 8, 2000, streams(seed)["split"])

    assert split(3).fingerprint == split(3).fingerprint
    assert split(3).fingerprint != split(4).fingerprint
    one, other = split(0), split(3)  # what a reload with another seed would evaluate
    shared = set(zip(one.test_a.tolist(), one.test_b.tolist())) & \
        set(zip(other.test_a.tolist(), other.test_b.tolist()))
    assert len(shared) < 400  # most of seed 3's pairs were in seed 0's training pool


def test_a_split_that_cannot_be_confirmed_does_not_claim_to_be_held_out():
    split = make_split("addition", 8, 2000, streams(0)["split"])
    split.held_out = False
    assert split.description == "2,000 of the 16,384 8-bit pairs, NOT known to be held out"


# -- the model -------------------------------------------------------------------------

@pytest.mark.parametrize("cell, names", [
    ("lstm", ["lstm.l0.weight", "lstm.l0.bias"]),
    ("gru", None),
    ("rnn", None),
])
def test_every_cell_gives_one_logit_per_bit_inside_its_own_scope(cell, names):
    model = ArithmeticModel(5, cell=cell, rng=np.random.default_rng(0))
    params = [n for n, _ in model.named_parameters()]
    assert params[-2:] == ["head.weight", "head.bias"]
    assert all(n.startswith(cell + ".") for n in params[:-2]) and len(params) > 2
    if names is not None:
        assert params[:-2] == names and model.lstm.l0.weight.shape == (2 + 5, 4 * 5)
    x, _ = encode("addition", [3, 1, 0], [2, 2, 7], 4)
    logits = model(x)
    assert logits.shape == (3, 4, 1)
    scopes = {t.scope for t in topological_order(logits)}
    assert f"{cell}/l0/t3" in scopes and "" in scopes  # the head is outside the box
    assert f"cell='{cell}'" in repr(model)


def test_model_rejects_bad_settings():
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        ArithmeticModel(0)
    with pytest.raises(ValueError, match="cell must be one of lstm, gru, rnn, got 'lru'"):
        ArithmeticModel(4, cell="lru")


@pytest.mark.parametrize("cell", CELLS)
def test_noisy_state_has_the_shape_of_each_cells_state(cell):
    model = ArithmeticModel(3, cell=cell, num_layers=2, rng=np.random.default_rng(0))
    assert noisy_state(model, 4, 0.0, np.random.default_rng(0)) is None
    state = noisy_state(model, 4, 0.5, np.random.default_rng(0))
    parts = state if cell == "lstm" else (state,)
    assert len(parts) == (2 if cell == "lstm" else 1)
    for part in parts:
        assert part.shape == (2, 4, 3) and not part.requires_grad
        assert 0.2 < part.data.std() < 1.0
    if cell == "lstm":
        assert not np.array_equal(state[0].data, state[1].data)
    logits = model(np.zeros((4, 5, 2)), state)  # the model accepts it as its state
    assert logits.shape == (4, 5, 1)


def test_worked_examples_show_mistakes_first():
    a, b = np.array([1, 2, 3, 4], np.uint64), np.array([1, 1, 1, 1], np.uint64)
    predicted = np.array([2, 3, 0, 5], np.uint64)  # the third is wrong
    examples = worked_examples("addition", a, b, predicted, 4, count=3)
    assert len(examples) == 3 and "WRONG (predicted 0)" in examples[0]
    assert "3 + 1 = 4" in examples[0] and "1 + 1 = 2" in examples[1]


@pytest.fixture(scope="module")
def trained():
    """A small model trained with a plain loop for 150 steps on 5-bit addition (~0.5 s)."""
    rng = np.random.default_rng(0)
    split = make_split("addition", 5, 2000, rng)
    model = ArithmeticModel(8, rng=rng)
    optimizer = mg.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        x, y = encode("addition", *split.train_batch(64, rng), 5)
        loss = mg.nn.binary_cross_entropy_with_logits(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, split


def test_predict_and_accuracy_agree_and_beat_chance(trained):
    model, split = trained
    predicted = predict(model, "addition", split.test_a, split.test_b, 5)
    assert predicted.dtype == np.uint64 and predicted.shape == split.test_a.shape
    right = np.mean(predicted == compute("addition", split.test_a, split.test_b))
    assert accuracy(model, "addition", split.test_a, split.test_b, 5) == right
    assert right > 10 * 2.0 ** -5  # guessing all 5 result bits


# -- checkpoints -------------------------------------------------------------------------

def test_checkpoint_round_trip_gives_identical_predictions_and_the_config(trained, tmp_path):
    model, split = trained
    path = tmp_path / "model.npz"
    mg.save(checkpoint(model, "addition", 5, seed=7, split=split.fingerprint, lr=0.01), path)
    loaded, config = load_model(path, "addition")
    assert config == {"task": "addition", "bits": 5, "seed": 7, "cell": "lstm",
                      "hidden_size": 8, "num_layers": 1, "split": split.fingerprint,
                      "lr": 0.01}
    assert np.array_equal(predict(loaded, "addition", split.test_a, split.test_b, 5),
                          predict(model, "addition", split.test_a, split.test_b, 5))


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_checkpoints_of_other_cells_restore_that_cell(cell):
    model = ArithmeticModel(4, cell=cell, rng=np.random.default_rng(1))
    loaded, config = restore(checkpoint(model, "subtraction", 4, 0))
    assert loaded.cell == config["cell"] == cell
    x = np.random.default_rng(2).integers(0, 2, (3, 4, 2))
    with mg.no_grad():
        assert np.array_equal(loaded(x).data, model(x).data)


def test_checkpoints_of_the_earlier_layout_still_load(trained):
    """Integer arrays under config.* (no cell: an LSTM), as earlier versions saved them."""
    model, split = trained
    state = model.state_dict()
    state.update({"config.task": np.frombuffer(b"addition", np.uint8),
                  "config.hidden_size": np.array(8), "config.num_layers": np.array(1),
                  "config.bits": np.array(5), "config.seed": np.array(3)})
    loaded, config = restore(state)
    assert config == {"task": "addition", "hidden_size": 8, "num_layers": 1, "bits": 5,
                      "seed": 3, "cell": "lstm"}
    assert "split" not in config  # so a reload cannot confirm its held-out pairs
    assert np.array_equal(predict(loaded, "addition", split.test_a, split.test_b, 5),
                          predict(model, "addition", split.test_a, split.test_b, 5))


def test_the_config_is_json_text(trained):
    state = checkpoint(trained[0], "addition", 5, 0)
    assert state["config"].dtype == np.uint8
    assert json.loads(bytes(state["config"]).decode())["task"] == "addition"
    assert read_config(state)["bits"] == 5


def test_restore_rejects_a_plain_state_dict(trained):
    with pytest.raises(ValueError, match="not an arithmetic model checkpoint"):
        restore(trained[0].state_dict())


def test_load_model_refuses_a_model_of_the_other_task(trained, tmp_path):
    path = tmp_path / "model.npz"
    mg.save(checkpoint(trained[0], "addition", 5, 0), path)
    with pytest.raises(ValueError, match="holds a model trained on addition, not subtraction"):
        load_model(path, "subtraction")


def test_compute_names_an_unknown_task():
    with pytest.raises(ValueError, match="task must be one of"):
        compute("multiplication", 1, 2)
