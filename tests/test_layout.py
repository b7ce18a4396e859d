"""The installed layout: one import package, ``minigrad``, with the models inside it.

A top-level ``models`` package in site-packages would be shadowed by a user's own
``models.py`` (or shadow it); these run a fresh interpreter outside the repository, as a
user's script would, so the repository's folders are not on its path.
"""
import subprocess
import sys
import textwrap


def run_user_script(tmp_path, code):
    (tmp_path / "models.py").write_text("WHO = 'the user'\n")
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def test_user_models_py_and_minigrad_models_live_side_by_side(tmp_path):
    done = run_user_script(tmp_path, """
        import models
        from minigrad.models import LSTM, GRU, RNN
        from minigrad.models.data.adding import sample
        print(models.WHO, LSTM.__module__)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["the", "user", "minigrad.models.lstm"]


def test_no_top_level_models_package_is_installed(tmp_path):
    done = run_user_script(tmp_path, """
        import importlib.util, sys
        sys.path.remove(sys.path[0])          # the script's folder, with the user's models.py
        print(importlib.util.find_spec("models"))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"
