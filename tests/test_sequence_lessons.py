"""The sequence lessons' parts: the decimal-addition data, the encoder-decoder (gradients,
greedy decoding, attention, scopes, drawings), the shipped texts, and the two example
scripts run with tiny flags as a user runs them."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad.models.data import sums
from minigrad.models.data import text as data
from minigrad.models.seq2seq import Seq2Seq
from minigrad.timesteps import TimeSteps

ROOT = Path(__file__).resolve().parent.parent
START = sums.ALPHABET.index(sums.START)


def run(script, *flags):
    return subprocess.run([sys.executable, str(ROOT / "examples" / script), *map(str, flags)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


# -- decimal addition as text ------------------------------------------------------------

def test_numbers_are_right_aligned_and_questions_optionally_reversed():
    a, b = np.array([535, 7]), np.array([61, 0])
    decode = lambda ids: ["".join(sums.ALPHABET[i] for i in row) for row in ids]  # noqa: E731
    assert decode(sums.encode_questions(a, b, 3)) == ["535+ 61", "  7+  0"]
    assert decode(sums.encode_questions(a, b, 3, reverse=True)) == ["16 +535", "0  +7  "]


def test_answers_for_teacher_forcing_end_with_a_mark_and_ignore_the_padding():
    inputs, targets = sums.encode_answers(np.array([535, 7]), np.array([61, 0]), 3)
    assert inputs.shape == targets.shape == (2, 5)
    assert [sums.ALPHABET[i] for i in inputs[0]] == ["=", "5", "9", "6", " "]
    assert [sums.ALPHABET[i] for i in targets[0][:4]] == ["5", "9", "6", "."]
    assert targets[0, 4] == sums.IGNORE
    assert [sums.ALPHABET[i] for i in inputs[1][:2]] == ["=", "7"]
    assert list(targets[1, 2:]) == [sums.IGNORE] * 3
    assert sums.decode_answers(targets.clip(0)) == ["596", "7"]


def test_held_out_questions_are_distinct_and_leave_most_short_ones_to_training():
    a, b, keys = sums.held_out_questions(500, 2, np.random.default_rng(0))
    assert len(set(zip(a.tolist(), b.tolist()))) == 500 == len(keys)
    assert a.max() < 100 and b.max() < 100 and (a < 10).any() and (a >= 10).any()
    assert np.sum((a < 10) & (b < 10)) == 10  # 10% of the 100 one-digit sums, no more


# -- the encoder-decoder -----------------------------------------------------------------

def tiny_model(attention, cell="lstm", dtype=np.float64):
    return Seq2Seq(len(sums.ALPHABET), 4, embedding_size=3, cell=cell, attention=attention,
                   rng=np.random.default_rng(0), dtype=dtype)


def tiny_batch():
    a, b = np.array([12, 3, 45]), np.array([7, 60, 5])
    return (sums.encode_questions(a, b, 2),) + sums.encode_answers(a, b, 2)


@pytest.mark.parametrize("cell, attention", [("lstm", True), ("lstm", False),
                                             ("gru", True), ("rnn", False)])
def test_seq2seq_gradients_pass_gradcheck(cell, attention):
    model = tiny_model(attention, cell)
    question, answer_in, target = tiny_batch()
    params = model.parameters()
    # Every parameter at once: the encoder's only reach the loss through the decoder.
    assert mg.gradcheck(lambda *_: mg.nn.cross_entropy(model(question, answer_in), target,
                                                      ignore_index=sums.IGNORE), params)


def test_attention_weights_are_one_distribution_over_the_question_per_answer_step():
    model = tiny_model(attention=True)
    question, _, _ = tiny_batch()
    tokens, weights = model.greedy(question, START, 4)
    assert tokens.shape == (3, 4) and weights.shape == (3, 4, question.shape[1])
    np.testing.assert_allclose(weights.sum(axis=2), 1, rtol=1e-12)
    assert np.all(weights > 0)
    assert model.greedy(question, START, 4)[1] is not None
    assert tiny_model(attention=False).greedy(question, START, 4)[1] is None


def test_greedy_decoding_feeds_back_its_own_choices():
    """Teacher forcing with the greedy tokens as the true answer gives the same choices."""
    model = tiny_model(attention=True)
    question, _, _ = tiny_batch()
    tokens, _ = model.greedy(question, START, 4)
    answer_in = np.concatenate([np.full((3, 1), START), tokens[:, :-1]], axis=1)
    with mg.no_grad():
        np.testing.assert_array_equal(np.argmax(model(question, answer_in).data, axis=2),
                                      tokens)


def test_encoder_and_decoder_steps_are_two_chains_and_attention_reads_every_encoder_step():
    model = tiny_model(attention=True)
    question, answer_in, target = tiny_batch()
    loss = mg.nn.cross_entropy(model(question, answer_in), target, ignore_index=sums.IGNORE)
    steps = TimeSteps(loss)
    layers = {s.layer for s in steps.steps}
    assert layers == {"encoder/l0", "decoder"}
    assert sum(s.layer == "encoder/l0" for s in steps.steps) == question.shape[1]
    assert sum(s.layer == "decoder" for s in steps.steps) == answer_in.shape[1]
    for view in ("ops", "steps", "rolled"):
        assert "digraph" in mg.viz.graph(loss, view=view).source


def test_the_explorer_draws_the_seq2seq_graph(tmp_path):
    model = tiny_model(attention=True)
    question, answer_in, target = tiny_batch()
    loss = mg.nn.cross_entropy(model(question, answer_in), target, ignore_index=sums.IGNORE)
    page = Path(mg.viz.explore(loss, tmp_path / "seq2seq.html")).read_text()
    assert "decoder" in page and "encoder" in page


def test_a_compiled_training_step_follows_each_batch_s_padding():
    """The answers of two batches end at different places; the compiled step's loss and
    gradients equal the engine's for both (the target is read at every replay)."""
    model = tiny_model(attention=True)
    rng = np.random.default_rng(5)

    def loss_of(question, answer_in, target):
        return mg.nn.cross_entropy(model(question, answer_in), target,
                                   ignore_index=sums.IGNORE)
    step = mg.compile(loss_of)
    for _ in range(3):
        a, b = sums.sample(6, 2, rng)
        batch = (sums.encode_questions(a, b, 2),) + sums.encode_answers(a, b, 2)
        model.zero_grad()
        loss = loss_of(*batch)
        loss.backward()
        eager = [p.grad.copy() for p in model.parameters()]
        model.zero_grad()
        assert step(*batch).item() == pytest.approx(loss.item(), rel=1e-12)
        for p, g in zip(model.parameters(), eager):
            np.testing.assert_allclose(p.grad, g, rtol=1e-10, atol=1e-14)


def test_seq2seq_refuses_an_answer_of_another_batch():
    model = tiny_model(attention=False)
    question, answer_in, _ = tiny_batch()
    with pytest.raises(ValueError, match=r"answer_in must be \(N, T\)"):
        model(question, answer_in[:2])


# -- the shipped texts -------------------------------------------------------------------

@pytest.mark.parametrize("name, least", [("tang", 10_000), ("verse", 20_000)])
def test_the_shipped_texts_are_long_enough(name, least):
    assert len(data.load(name)) >= least


def test_tang_poems_are_whole_poems_one_per_line_with_title_and_poet():
    lines = data.load("tang").splitlines()
    assert len(lines) > 300
    for line in lines:
        assert line.startswith("《") and "》" in line and "：" in line
        assert line.endswith(("。", "？", "！")), line


def test_vocabulary_round_trip_split_and_baselines():
    text = "abracadabra" * 10
    vocab = data.Vocabulary(text)
    ids = vocab.encode(text)
    assert vocab.decode(ids) == text and len(vocab) == 5
    train, held = data.split(ids)
    assert len(held) == 11 and np.array_equal(np.concatenate([train, held]), ids)
    counts = np.bincount(train, minlength=5) + 1
    assert data.unigram_loss(train, held, 5) == pytest.approx(
        -np.mean(np.log(counts[held] / counts.sum())))
    assert data.streams(ids, 4).shape == (4, 27)
    with pytest.raises(ValueError, match="'z' is not in the vocabulary"):
        vocab.encode("z")


def test_load_refuses_a_missing_file_and_one_that_is_not_utf8(tmp_path):
    with pytest.raises(ValueError, match="neither a shipped text"):
        data.load(str(tmp_path / "missing.txt"))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 ol\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match="is not UTF-8"):
        data.load(str(tmp_path / "latin1.txt"))


# -- the lessons, with tiny flags --------------------------------------------------------

def test_seq2seq_lesson_runs_and_reports(tmp_path):
    done = run("seq2seq_addition.py", "--hidden", 16, "--steps", 10,
               "--attention", "--reverse", "--out", tmp_path, "--json", tmp_path / "r.json",
               "--quiet")
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "r.json").read_text())
    assert {"task", "digits", "attention", "train_steps", "sequences", "seconds",
            "test_accuracy", "char_accuracy"} <= set(record)
    assert (record["task"], record["digits"], record["attention"]) == \
        ("seq2seq_addition", 3, True)
    assert record["train_steps"] == 10 and record["sequences"] == 10 * 128
    assert {"2", "3"} <= set(record["accuracy_by_digits"]) <= {"1", "2", "3"}
    assert 0 <= record["test_accuracy"] <= record["char_accuracy"] <= 1
    assert (tmp_path / "attention.png").stat().st_size > 0
    assert "encoder" in (tmp_path / "graph.svg").read_text()
    lines = [line for line in done.stdout.splitlines() if " = " in line and "+" in line]
    assert len(lines) == 8 and all(line.rstrip().endswith("✓") or "✗ (is " in line
                                   for line in lines)
    for line in lines:  # the "(is ...)" of a wrong answer is the true sum
        left, right = line.split(" = ")
        x, y = map(int, left.split("+"))
        assert right.endswith("✓") or right.split("(is ")[1].rstrip(")") == str(x + y)


def test_char_lm_lesson_runs_reports_and_samples(tmp_path):
    done = run("char_lm.py", "--text", "tang", "--hidden", 16, "--embedding", 8,
               "--steps", 20, "--seq-len", 16, "--sample", 30, "--out", tmp_path,
               "--json", tmp_path / "r.json", "--quiet")
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "r.json").read_text())
    assert {"task", "text", "vocab", "train_steps", "seconds", "val_loss", "unigram_loss",
            "uniform_loss", "sample"} <= set(record)
    assert record["uniform_loss"] == pytest.approx(math.log(record["vocab"]))
    assert record["unigram_loss"] < record["uniform_loss"]
    assert record["train_steps"] == 20 and np.isfinite(record["val_loss"])
    assert len(record["sample"]) == 30 and set(record["sample"]) <= set(data.load("tang"))
    assert (tmp_path / "truncated_bptt.svg").read_text().count("chunk") >= 2


@pytest.mark.parametrize("script, flags, message", [
    ("char_lm.py", ["--text", "nowhere.txt"], "argument --text: text: 'nowhere.txt' is "
                                              "neither a shipped text (tang, verse) nor a file"),
    ("char_lm.py", ["--dropout", "1"], "argument --dropout: must be below 1, got 1"),
    ("char_lm.py", ["--text", "README.md", "--batch-size", "99999"],
     "argument --text: {n} characters are too few for --batch-size 99999 and --seq-len 64 "
     "(at least 7,222,151, a tenth of them held out)"),
    ("seq2seq_addition.py", ["--digits", "2"], "argument --digits: must be in 3..9, got 2"),
])
def test_bad_flags_give_one_line(script, flags, message):
    done = run(script, *flags)
    assert done.returncode == 2
    n = f"{len((ROOT / 'README.md').read_text(encoding='utf-8')):,}"
    assert done.stderr == f"{script}: error: {message.format(n=n)}\n"
