"""Writing a drawing to a file, and the one place that runs Graphviz's ``dot``."""
import os
import pathlib
import shutil
import subprocess

from ..atomic import replacing


class _Formats(dict):
    def check(self, path):
        """The format for ``path``'s suffix; ValueError naming the path if unknown."""
        suffix = pathlib.Path(path).suffix.lower()
        if suffix not in self:
            raise ValueError(f"cannot render to {os.fspath(path)!r}: unknown suffix "
                             f"{suffix or '(none)'!r}; use one of {', '.join(self)}")
        return self[suffix]


FORMATS = _Formats({".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot"})


def write_atomically(path, data):
    """Write ``data`` to ``path`` the way checkpoints are written (``minigrad.atomic``):
    complete or not at all, through a symbolic link, errors naming ``path``."""
    with replacing(path, "render") as f:
        f.write(data)


MISSING_DOT = ("Graphviz's 'dot' program is needed to write {suffix} files but was not "
               "found on PATH. Install it (Debian/Ubuntu: apt-get install graphviz; "
               "macOS: brew install graphviz; conda: conda install graphviz), or write "
               "a .dot file instead, which needs no Graphviz.")
DOT_TIMEOUT = 600  # seconds; the guard (``guard.py``) keeps what it lets through far below


def run_dot(source, fmt, suffix=None):
    """The bytes of ``source`` (DOT text) laid out by ``dot -T<fmt>``.

    RuntimeError when dot is missing (saying how to install it), fails (with the first
    lines of what it printed), or runs longer than DOT_TIMEOUT.
    """
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(MISSING_DOT.format(suffix=suffix or "." + fmt))
    try:
        done = subprocess.run([dot, f"-T{fmt}"], input=source.encode("utf-8"),
                              capture_output=True, timeout=DOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"Graphviz's dot did not finish laying out the graph within "
                           f"{DOT_TIMEOUT} s and was stopped; draw fewer time steps "
                           f"(keep_steps=) or another view (view='steps')") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        shown = "\n  ".join(said[:6]) + ("\n  ..." if len(said) > 6 else "")
        how = (f"exit status {done.returncode}" if done.returncode > 0 else
               f"killed by signal {-done.returncode}")
        raise RuntimeError(f"Graphviz's dot failed on this graph ({how}); it said:\n  "
                           f"{shown or '(nothing)'}")
    return done.stdout


def render_source(drawing, path):
    """Write ``drawing`` (a ``graphviz.Digraph``) to ``path`` in the suffix's format."""
    fmt = FORMATS.check(path)
    if fmt == "dot":
        data = drawing.source.encode("utf-8")
    else:
        data = run_dot(drawing.source, fmt, pathlib.Path(path).suffix.lower())
    write_atomically(path, data)
    return path
