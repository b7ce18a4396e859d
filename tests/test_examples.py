"""The example scripts, run as a user runs them: separate processes from the repository root."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import minigrad as mg

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = {"task", "bits", "seed", "train_steps", "seconds", "test_accuracy"}
EXAMPLE = re.compile(r"^  x1: ([01]+)\n([+-]) x2: ([01]+)\ntrue: ([01]+)   pred: ([01]+)   "
                     r"(\d+) [+-] (\d+) = (\d+)", re.MULTILINE)


def run(script, *flags):
    return subprocess.run([sys.executable, str(ROOT / "examples" / script), *map(str, flags)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def worked_examples(stdout):
    """(x1, op, x2, true, pred, a, b, result) tuples printed by a script."""
    return EXAMPLE.findall(stdout)


@pytest.fixture(scope="module")
def addition_run(tmp_path_factory):
    """7-bit addition (4,096 pairs, so 2,000 are held out), stopped after 60 steps: far
    from trained, which makes reproducing its accuracy with --load a real check."""
    out = tmp_path_factory.mktemp("addition")
    done = run("binary_addition.py", "--bits", 7, "--hidden", 8, "--steps", 60,
               "--test-bits", 12, "--out", out / "run", "--json", out / "result.json",
               "--quiet")
    assert done.returncode == 0, done.stderr
    return out, done, json.loads((out / "result.json").read_text())


def test_addition_json(addition_run):
    _, _, record = addition_run
    assert REQUIRED | {"test_bits", "long_test_accuracy"} <= set(record)
    assert (record["task"], record["bits"], record["seed"]) == ("addition", 7, 0)
    assert record["train_steps"] == 60 and record["converged"] is False
    assert record["seconds"] > 0
    assert record["held_out"] is True and record["test_pairs"] == 2000
    assert 0 <= record["test_accuracy"] <= 1 and 0 <= record["long_test_accuracy"] <= 1
    assert record["test_bits"] == 12


def test_addition_output_and_files(addition_run):
    out, done, record = addition_run
    assert "held out 2,000 of the 4,096 7-bit pairs" in done.stdout
    assert "random 12-bit pairs (trained on 7 bits)" in done.stdout
    assert done.stderr == ""  # --quiet: no progress bar
    examples = worked_examples(done.stdout)
    assert len(examples) == 5  # four 7-bit ones and one 12-bit one
    for x1, op, x2, true, pred, a, b, result in examples:
        assert op == "+" and len(x1) == len(x2) == len(true) == len(pred) in (7, 12)
        assert int(x1, 2) == int(a) and int(x2, 2) == int(b)
        assert int(a) + int(b) == int(result) == int(true, 2)
    png = out / "run" / "training.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state = mg.load(out / "run" / "model.npz")
    assert "lstm.l0.weight" in state and int(state["config.hidden_size"]) == 8
    assert record["plot"] == str(png) and str(png) in done.stdout


def test_load_reproduces_the_accuracy(addition_run, tmp_path):
    out, _, record = addition_run
    done = run("binary_addition.py", "--load", out / "run" / "model.npz",
               "--test-bits", 12, "--json", tmp_path / "again.json", "--quiet")
    assert done.returncode == 0, done.stderr
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["train_steps"] == 0 and again["bits"] == 7 and again["seed"] == 0
    assert again["test_accuracy"] == record["test_accuracy"]
    assert again["long_test_accuracy"] == record["long_test_accuracy"]
    assert "no training" in done.stdout


def test_subtraction_defaults_reach_100_percent_on_all_pairs(tmp_path):
    done = run("binary_subtraction.py", "--out", tmp_path / "run", "--json",
               tmp_path / "result.json")
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "result.json").read_text())
    assert (record["task"], record["bits"], record["held_out"]) == ("subtraction", 4, False)
    assert record["test_pairs"] == 136 and record["test_accuracy"] == 1.0
    assert "only 136 pairs" in done.stdout and "evaluated on all of them" in done.stdout
    assert "training subtraction" in done.stderr  # the progress bar
    for x1, op, x2, true, pred, a, b, result in worked_examples(done.stdout):
        assert op == "-" and int(a) - int(b) == int(result) == int(true, 2) == int(pred, 2)
    assert (tmp_path / "run" / "model.npz").is_file()


@pytest.mark.parametrize("script, flags, words", [
    ("binary_addition.py", ["--bits", "0"], "--bits must be in 1..64, got 0"),
    ("binary_addition.py", ["--hidden", "0"], "--hidden must be at least 1, got 0"),
    ("binary_subtraction.py", ["--steps", "0"], "--steps must be at least 1, got 0"),
    ("binary_subtraction.py", ["--load", "missing.npz"], "--load missing.npz: no such file"),
])
def test_bad_flags_give_one_line_and_exit_code_2(script, flags, words):
    done = run(script, *flags)
    assert done.returncode == 2
    assert done.stderr == f"{script}: error: {words}\n"
    assert done.stdout == ""


def test_corrupt_load_file_gives_one_line_and_exit_code_2(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_text("not a checkpoint")
    done = run("binary_addition.py", "--load", bad)
    assert done.returncode == 2
    assert done.stderr.startswith("binary_addition.py: error: cannot load checkpoint")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_gradient_check_shows_the_faulty_bptt_passes_2_steps_and_fails_3():
    done = run("gradient_check.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The FAULTY BPTT passes at 2 steps and fails at 3 steps; the graph-derived " \
           "gradient passes at 2 steps and passes at 3 steps." in done.stdout
    for name in ("l0.weight", "l0.bias", "l1.weight", "l1.bias", "x", "h0", "c0"):
        assert re.search(rf"^  {re.escape(name)} .* pass$", done.stdout, re.MULTILINE), name
    assert re.search(r"T = 3  FAULTY numpy BPTT .* FAIL \(\d+ of 128 elements wrong\)",
                     done.stdout)
