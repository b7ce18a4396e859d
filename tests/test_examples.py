"""The example scripts, run as a user runs them: separate processes from the repository root."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
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


def one_line_error(done, script, message):
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr == f"{script}: error: {message}\n"
    assert done.stdout == ""


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
    assert (record["task"], record["bits"], record["seed"], record["cell"]) == \
        ("addition", 7, 0, "lstm")
    assert record["train_steps"] == 60 and record["converged"] is False
    assert record["seconds"] > 0
    assert record["held_out"] is True and record["test_pairs"] == 2000
    assert 0 <= record["test_accuracy"] <= 1 and 0 <= record["long_test_accuracy"] <= 1
    assert record["test_bits"] == 12
    assert (record["hidden_size"], record["steps"], record["lr"]) == (8, 60, 0.01)


def test_addition_output_and_files(addition_run):
    out, done, record = addition_run
    assert "held out 2,000 of the 4,096 7-bit pairs" in done.stdout
    assert "random 12-bit pairs (trained on 7 bits)" in done.stdout
    assert "stopped at --steps 60" in done.stdout
    assert done.stderr == ""  # --quiet: no progress bar
    examples = worked_examples(done.stdout)
    assert len(examples) == 5  # four 7-bit ones and one 12-bit one
    for x1, op, x2, true, pred, a, b, result in examples:
        assert op == "+" and len(x1) == len(x2) == len(true) == len(pred) in (7, 12)
        assert int(x1, 2) == int(a) and int(x2, 2) == int(b)
        assert int(a) + int(b) == int(result) == int(true, 2)
    png = out / "run" / "training.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert record["plot"] == str(png) and str(png) in done.stdout


def test_the_checkpoint_stores_what_rebuilds_its_split(addition_run):
    out, _, _ = addition_run
    state = mg.load(out / "run" / "model.npz")
    config = json.loads(bytes(state["config"]).decode())
    assert {k: config[k] for k in ("task", "bits", "seed", "cell", "hidden_size")} == \
        {"task": "addition", "bits": 7, "seed": 0, "cell": "lstm", "hidden_size": 8}
    assert re.fullmatch(r"[0-9a-f]{16}", config["split"])
    assert state["lstm.l0.weight"].shape == (2 + 8, 4 * 8)


def test_load_reproduces_the_accuracy_on_the_same_held_out_pairs(addition_run, tmp_path):
    out, _, record = addition_run
    done = run("binary_addition.py", "--load", out / "run" / "model.npz",
               "--test-bits", 12, "--json", tmp_path / "again.json", "--quiet")
    assert done.returncode == 0, done.stderr
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["train_steps"] == 0 and again["bits"] == 7 and again["seed"] == 0
    assert again["held_out"] is True  # the stored fingerprint confirms the rebuilt split
    assert again["test_accuracy"] == record["test_accuracy"]
    assert again["long_test_accuracy"] == record["long_test_accuracy"]
    assert "no training" in done.stdout and "held out 2,000 of the 4,096" in done.stdout
    assert not (tmp_path / "run").exists()  # --load writes nothing but the JSON


def test_load_claims_held_out_only_when_the_checkpoint_confirms_it(addition_run, tmp_path):
    """A checkpoint without the split's fingerprint (as earlier versions saved them)."""
    state = mg.load(addition_run[0] / "run" / "model.npz")
    config = json.loads(bytes(state["config"]).decode())
    del config["split"]
    state["config"] = np.frombuffer(json.dumps(config).encode(), np.uint8)
    mg.save(state, tmp_path / "old.npz")
    done = run("binary_addition.py", "--load", tmp_path / "old.npz", "--json", "-")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["held_out"] is False and record["test_pairs"] == 2000
    assert "NOT known to be held out" in done.stderr and "held out 2," not in done.stderr
    assert "exact match on 2,000 pairs" in done.stderr


@pytest.mark.parametrize("flags, named", [
    (["--seed", "3"], "--seed"),
    (["--bits", "12"], "--bits"),
    (["--hidden", "8", "--steps", "5"], "--hidden, --steps"),
    (["--cell", "lstm"], "--cell"),
    (["--lr", "0.1", "--out", "elsewhere"], "--lr, --out"),
])
def test_flags_that_load_would_ignore_are_an_error(addition_run, flags, named):
    done = run("binary_addition.py", "--load", addition_run[0] / "run" / "model.npz", *flags)
    one_line_error(done, "binary_addition.py", f"{named} cannot be used with --load: the "
                   "saved model fixes them (--test-bits tests other lengths)")


def test_json_dash_writes_only_json_to_stdout(tmp_path):
    done = run("binary_addition.py", "--bits", 3, "--hidden", 4, "--steps", 5, "--quiet",
               "--out", tmp_path, "--json", "-")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)  # nothing but the JSON
    assert REQUIRED <= set(record) and record["bits"] == 3
    assert "worked examples" in done.stderr and "results:" not in done.stderr


def test_training_never_replaces_a_model_of_another_configuration(tmp_path):
    done = run("binary_addition.py", "--bits", 3, "--hidden", 4, "--steps", 5, "--quiet",
               "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    saved = (tmp_path / "model.npz").read_bytes()
    other = run("binary_addition.py", "--bits", 2, "--hidden", 4, "--steps", 5, "--quiet",
                "--out", tmp_path)
    one_line_error(other, "binary_addition.py", f"{tmp_path / 'model.npz'} holds a model of "
                   "another configuration (bits 3, not 2): choose another --out, or delete "
                   "the file to replace it")
    assert (tmp_path / "model.npz").read_bytes() == saved
    again = run("binary_addition.py", "--bits", 3, "--hidden", 4, "--steps", 5, "--quiet",
                "--out", tmp_path)  # the same flags: the same model, replaced
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "training.png").exists()


def test_training_never_replaces_a_file_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "model.npz").write_text("my notes")
    done = run("binary_subtraction.py", "--steps", 1, "--out", tmp_path)
    one_line_error(done, "binary_subtraction.py", f"{tmp_path / 'model.npz'} exists and is "
                   "not a checkpoint of this script; choose another --out, or delete the file")
    assert (tmp_path / "model.npz").read_text() == "my notes"


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_every_cell_trains_saves_and_loads(cell, tmp_path):
    done = run("binary_addition.py", "--cell", cell, "--bits", 4, "--hidden", 4, "--steps", 20,
               "--quiet", "--out", tmp_path, "--json", tmp_path / "r.json")
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["cell"] == cell and record["train_steps"] <= 20
    state = mg.load(tmp_path / "model.npz")
    assert any(k.startswith(f"{cell}.l0.") for k in state) and "lstm.l0.weight" not in state
    again = run("binary_addition.py", "--load", tmp_path / "model.npz", "--json", "-")
    assert again.returncode == 0, again.stderr
    loaded = json.loads(again.stdout)
    assert loaded["cell"] == cell and loaded["test_accuracy"] == record["test_accuracy"]
    assert f"({cell}, hidden size 4)" in again.stderr


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
    ("binary_addition.py", ["--bits", "0"], "argument --bits: must be in 1..64, got 0"),
    ("binary_addition.py", ["--bits", "65"], "argument --bits: must be in 1..64, got 65"),
    ("binary_addition.py", ["--bits", "eight"],
     "argument --bits: must be an integer, got 'eight'"),
    ("binary_addition.py", ["--hidden", "0"], "argument --hidden: must be at least 1, got 0"),
    ("binary_addition.py", ["--lr", "inf"], "argument --lr: must be positive, got inf"),
    ("binary_addition.py", ["--cell", "lru"],
     "argument --cell: invalid choice: 'lru' (choose from 'lstm', 'gru', 'rnn')"),
    ("binary_addition.py", ["--hid", "8"], "unrecognized arguments: --hid 8"),
    ("binary_subtraction.py", ["--steps", "0"], "argument --steps: must be at least 1, got 0"),
    ("binary_subtraction.py", ["--seed", "-1"],
     "argument --seed: must be zero or positive, got -1"),
    ("binary_subtraction.py", ["--state-noise", "-1"],
     "argument --state-noise: must be zero or positive, got -1"),
    ("binary_subtraction.py", ["--load", "missing.npz"], "--load missing.npz: no such file"),
    ("binary_subtraction.py", ["--json", "no/such/dir/r.json"],
     "--json no/such/dir/r.json: no such directory"),
    ("gradient_check.py", ["--steps", "3"], "unrecognized arguments: --steps 3"),
])
def test_bad_flags_give_one_line_and_exit_code_2(script, flags, words):
    one_line_error(run(script, *flags), script, words)


def test_out_must_be_a_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    one_line_error(run("binary_addition.py", "--out", blocker), "binary_addition.py",
                   f"--out {blocker}: exists and is not a directory")


def test_corrupt_load_file_gives_one_line_and_exit_code_2(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_text("not a checkpoint")
    done = run("binary_addition.py", "--load", bad)
    assert done.returncode == 2
    assert done.stderr.startswith("binary_addition.py: error: cannot load checkpoint")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_loading_a_model_of_the_other_task_is_refused(addition_run):
    path = addition_run[0] / "run" / "model.npz"
    one_line_error(run("binary_subtraction.py", "--load", path), "binary_subtraction.py",
                   f"{path} holds a model trained on addition, not subtraction")


@pytest.mark.parametrize("script", ["binary_addition.py", "binary_subtraction.py",
                                    "gradient_check.py"])
def test_help_prints_the_flags_and_runs_nothing(script):
    done = run(script, "--help")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith(f"usage: {script}") and "--json PATH" in done.stdout
    assert "Part 1:" not in done.stdout and "worked examples" not in done.stdout


def test_gradient_check_shows_the_faulty_bptt_passes_2_steps_and_fails_3():
    done = run("gradient_check.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The FAULTY BPTT passes at 2 steps and fails at 3 steps; the graph-derived " \
           "gradient passes at 2 steps and passes at 3 steps." in done.stdout
    for name in ("l0.weight", "l0.bias", "l1.weight", "l1.bias", "x", "h0", "c0"):
        assert re.search(rf"^  {re.escape(name)} .* pass$", done.stdout, re.MULTILINE), name
    assert re.search(r"T = 3  FAULTY numpy BPTT .* FAIL \(\d+ of 128 elements wrong\)",
                     done.stdout)


def test_gradient_check_json_to_stdout():
    done = run("gradient_check.py", "--json", "-")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["as_described"] is True and "Part 1" in done.stderr
    assert {r["tensor"] for r in record["part1"]} >= {"l0.weight", "x", "h0", "c0"}
    assert all(r["error"] < record["tolerance"] for r in record["part1"])
    faulty = {r["steps"]: r["wrong_elements"] for r in record["part2"] if r["method"] == "faulty"}
    assert faulty[2] == 0 and faulty[3] > 0


# -- lesson.py, the examples' shared plumbing, in-process ---------------------------------

sys.path.insert(0, str(ROOT / "examples"))
import lesson  # noqa: E402  (a module of the examples directory)


def small_parser():
    parser = lesson.Parser("demo.py", "A demo.")
    parser.add_argument("--steps", type=lesson.positive_int, default=5)
    parser.add_argument("--load")
    lesson.add_output_flags(parser, out="runs/demo")
    return parser


def test_given_holds_exactly_the_typed_flags_even_when_they_equal_the_default():
    args = small_parser().parse_args(["--steps", "5", "--quiet"])
    assert args.given == {"steps", "quiet"} and args.steps == 5 and args.seed == 0
    assert small_parser().parse_args([]).given == set()


def test_reject_names_the_typed_flags(capsys):
    parser = small_parser()
    args = parser.parse_args(["--steps", "3", "--seed", "2"])
    parser.reject(args, ["out"], "with --load")  # not typed: fine
    with pytest.raises(SystemExit) as exit_info:
        parser.reject(args, ["steps", "seed", "out"], "with --load")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "demo.py: error: --steps, --seed cannot be used with --load\n"


def test_refuse_overwrite_compares_only_the_keys_both_configurations_have(tmp_path, capsys):
    parser, path = small_parser(), tmp_path / "model.npz"
    parser.refuse_overwrite(str(path), {"bits": 8}, lambda p: 1 / 0)  # no file: not read
    path.write_text("")
    parser.refuse_overwrite(str(path), {"bits": 8, "new": 1}, lambda p: {"bits": 8, "old": 2})
    with pytest.raises(SystemExit):
        parser.refuse_overwrite(str(path), {"bits": 1, "lr": 0.1},
                                lambda p: {"bits": 8, "lr": 0.01})
    assert "(bits 8, not 1; lr 0.01, not 0.1)" in capsys.readouterr().err


def test_history_smooths_the_loss_from_the_first_value():
    history = lesson.History(smoothing=0.5)
    for loss in (4.0, 2.0, 2.0):
        history.log(loss, accuracy=0.5)
    assert history.losses == [4.0, 2.0, 2.0] and history.smoothed == [4.0, 3.0, 2.5]
    assert len(history) == 3 and history.accuracy == [0.5] * 3


def test_write_json_to_a_file_or_nowhere(tmp_path):
    assert lesson.write_json(None, {"a": 1}) is None
    path = str(tmp_path / "r.json")
    assert lesson.write_json(path, {"a": 1}) == path
    assert json.loads(Path(path).read_text()) == {"a": 1}


def test_plot_training_writes_a_png(tmp_path):
    history = lesson.History()
    for step in range(20):
        history.log(1.0 / (step + 1), accuracy=step / 20)
    history.evals.append((20, 1.0))
    path = history.plot(str(tmp_path / "deep" / "plot.png"), "title", loss_target=0.1)
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_json_dash_in_process_leaves_the_standard_output_as_it_found_it(tmp_path, capsys):
    """The text goes to stderr only while the lesson runs (notebooks call main too)."""
    import binary_addition
    before = sys.stdout
    assert binary_addition.main(["--bits", "2", "--hidden", "2", "--steps", "2", "--quiet",
                                 "--out", str(tmp_path), "--json", "-"]) == 0
    assert sys.stdout is before
    captured = capsys.readouterr()
    assert json.loads(captured.out)["bits"] == 2 and "worked examples" in captured.err
    print("after")
    assert capsys.readouterr().out == "after\n"
