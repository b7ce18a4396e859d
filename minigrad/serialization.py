"""Checkpoints: state dicts saved as ``.npz`` archives, written atomically.

The format is numpy's own ``.npz`` (a zip of ``.npy`` files, one per key), so a
checkpoint opens with ``np.load`` anywhere, and loading never unpickles anything.

``save`` writes the archive to a temporary file in the target's directory, flushes it to
disk and renames it over ``path`` in one step (``os.replace``). A crash or an error at any
point therefore leaves either the old checkpoint or the complete new one under ``path``,
never a half-written file, and no temporary file behind.

The file lands exactly at ``path``, whatever its suffix: unlike ``np.savez`` given a file
name, no ``.npz`` is appended, so ``save(d, p)`` followed by ``load(p)`` always agree.
"""
import contextlib
import os
import tempfile
import zipfile
from collections.abc import Mapping

import numpy as np

from .tensor import Tensor

_NUMERIC_KINDS = "biufc"  # bool, signed, unsigned, float, complex
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an archive with members, an empty one
_NPY_MAGIC = b"\x93NUM"

# What parsing a damaged file can raise, besides our own checks: zipfile reports most
# damage as BadZipFile, but flipped header bits also surface as "unsupported compression"
# (NotImplementedError), "encrypted" (RuntimeError), seeks to a negative offset (OSError,
# ValueError) or a short read (EOFError). All of them mean the same thing to the caller.
_DAMAGED_FILE_ERRORS = (ValueError, EOFError, OSError, RuntimeError, zipfile.BadZipFile)


class _NotACheckpoint(ValueError):
    """A file ``load`` read without trouble but that holds something else."""


def save(state_dict, path):
    """Write ``{name: array}`` to ``path`` as an ``.npz`` archive, atomically.

    Keys must be strings; values numeric arrays, array-likes or Tensors (their data).
    A bad entry raises ``ValueError`` (``TypeError`` for a non-str key) naming the key,
    before anything is written. On any failure while writing, the temporary file is
    removed and an existing file at ``path`` is left untouched.
    """
    path = os.fspath(path)
    arrays = _checked_arrays(state_dict)
    directory, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes the file private (0600); give it the mode open() would have.
            os.chmod(tmp, 0o666 & ~_umask())
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                for key, array in arrays.items():
                    # force_zip64: the member's size is not known before it is written.
                    with archive.open(key + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_directory(directory)


def load(path):
    """Read a checkpoint written by ``save`` (or any ``.npz`` of numeric arrays).

    Returns ``{name: np.ndarray}`` in the order the arrays were saved. A missing file
    raises ``FileNotFoundError``; a truncated, corrupt or foreign file (text, a single
    ``.npy``, a zip of something else, pickled objects) raises ``ValueError`` naming
    ``path`` and what is wrong with it. Nothing is ever unpickled.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            return _read_npz(f)
        except _NotACheckpoint as err:
            raise ValueError(f"cannot load checkpoint {path!r}: {err}") from None
        except _DAMAGED_FILE_ERRORS as err:
            raise ValueError(f"cannot load checkpoint {path!r}: truncated, corrupt or foreign "
                             f".npz archive ({type(err).__name__}: {err})") from err


def _checked_arrays(state_dict):
    """The state dict as ``{str: ndarray}``, or an error naming the first bad entry."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"save: expected a dict of name -> array, got "
                        f"{type(state_dict).__name__}")
    arrays = {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"save: keys must be str, got {key!r} ({type(key).__name__})")
        try:
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
        except ValueError as err:  # ragged nested lists
            raise ValueError(f"save: value for key {key!r} is not an array: {err}") from None
        if array.dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"save: value for key {key!r} must be numeric, got dtype "
                             f"{array.dtype} ({type(value).__name__})")
        arrays[key] = array
    return arrays


def _read_npz(f):
    magic = f.read(4)
    f.seek(0)
    if magic not in _ZIP_MAGIC:
        if magic.startswith(_NPY_MAGIC):
            raise _NotACheckpoint("it holds a single .npy array, not an .npz archive of "
                                  "named arrays")
        raise _NotACheckpoint("not an .npz archive" + (" (the file is empty)" if not magic else ""))
    # Read the members by their exact names rather than through np.load's NpzFile, whose
    # lookup confuses key 'a.npy' with the member of key 'a'.
    state = {}
    with zipfile.ZipFile(f) as archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                raise _NotACheckpoint(f"member {member!r} of the archive is not a .npy array")
            with archive.open(member) as stream:
                value = np.lib.format.read_array(stream, allow_pickle=False)
            key = member[:-len(".npy")]
            if value.dtype.kind not in _NUMERIC_KINDS:
                raise _NotACheckpoint(f"array {key!r} has dtype {value.dtype}, not a number")
            state[key] = value
    return state


def _umask():
    """The process umask. ``os.umask`` can only be read by setting it; it is set back at
    once, and meanwhile holds the common 022 rather than 0."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory):
    """Make the rename itself durable: on POSIX a rename lives in the directory's data,
    which a crash can lose unless the directory is synced too. (Not possible on Windows,
    where directories cannot be opened; the rename is still atomic there.)"""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
