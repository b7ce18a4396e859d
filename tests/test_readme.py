"""The README's code runs and says what it claims."""
import contextlib
import io
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def run(code):
    namespace, out = {}, io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), namespace)
    return namespace, out.getvalue().splitlines()


def test_the_ten_line_example_prints_what_its_comments_say():
    code = python_blocks()[0]
    expected = [line.split("#", 1)[1].strip() for line in code.splitlines()
                if line.startswith("print(") and "#" in line]
    _, printed = run(code)
    assert printed == expected


def test_the_lstm_example_trains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # it saves lstm.npz
    namespace, _ = run(python_blocks()[1])
    assert namespace["loss"].item() < 0.05
    assert (tmp_path / "lstm.npz").exists()
