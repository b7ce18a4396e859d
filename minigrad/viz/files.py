"""Writing a drawing to a file: the one place that runs Graphviz's ``dot``."""
import os
import pathlib
import secrets
import shutil

import graphviz


class _Formats(dict):
    def check(self, path):
        """The format for ``path``'s suffix; ValueError naming the path if unknown."""
        suffix = pathlib.Path(path).suffix.lower()
        if suffix not in self:
            raise ValueError(f"cannot render to {os.fspath(path)!r}: unknown suffix "
                             f"{suffix or '(none)'!r}; use one of {', '.join(self)}")
        return self[suffix]


FORMATS = _Formats({".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot"})


def _write_atomically(path, data):
    """Write to a new file beside ``path``, then rename it over ``path``, so a crash or a
    failed conversion never leaves a half-written file behind. The file is created with
    mode 0o666 so that the umask applies, as for any ``open(path, "wb")``."""
    temporary = f"{os.fspath(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


MISSING_DOT = ("Graphviz's 'dot' program is needed to write {suffix} files but was not "
               "found on PATH. Install it (Debian/Ubuntu: apt-get install graphviz; "
               "macOS: brew install graphviz; conda: conda install graphviz), or write "
               "a .dot file instead, which needs no Graphviz.")


def render_source(drawing, path):
    """Write ``drawing`` (a ``graphviz.Digraph``) to ``path`` in the suffix's format."""
    fmt = FORMATS.check(path)
    if fmt == "dot":
        _write_atomically(path, drawing.source.encode("utf-8"))
        return path
    suffix = pathlib.Path(path).suffix.lower()
    if shutil.which("dot") is None:
        raise RuntimeError(MISSING_DOT.format(suffix=suffix))
    try:
        data = drawing.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise RuntimeError(MISSING_DOT.format(suffix=suffix)) from None
    _write_atomically(path, data)
    return path
