"""The README's code runs and says what it claims."""
import contextlib
import io
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def block_under(heading):
    """The first Python block of the README section titled ``heading``."""
    section = README.read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]


def run(code):
    namespace, out = {}, io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), namespace)
    return namespace, out.getvalue().splitlines()


def test_the_ten_line_example_prints_what_its_comments_say():
    code = block_under("Ten lines")
    expected = [line.split("#", 1)[1].strip() for line in code.splitlines()
                if line.startswith("print(") and "#" in line]
    _, printed = run(code)
    assert printed == expected


def test_the_lstm_example_trains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # it saves lstm.npz
    namespace, _ = run(block_under("An LSTM, trained"))
    assert namespace["loss"].item() < 0.05
    assert (tmp_path / "lstm.npz").exists()


def test_the_classifier_example_learns_and_names_its_layers():
    namespace, printed = run(block_under("A classifier"))
    assert printed[0] == "layers.0.weight"
    assert float(printed[1]) > 0.95  # three classes: chance is about 0.4
    assert len(namespace["model"].parameters()) == 4  # both layers registered
