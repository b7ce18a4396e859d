"""Checkpoints: state dicts saved as ``.npz`` archives, written atomically.

The format is numpy's own ``.npz`` (a zip of ``.npy`` files, one per key), so a
checkpoint opens with ``np.load`` anywhere, and loading never unpickles anything.

``save`` checks every key and value first, then writes the archive to a temporary file
(a short name, so a target name of any legal length still fits) in the target's
directory, flushes it to disk and renames it over the target in one step
(``os.replace``). A crash or an error at any point therefore leaves either the old
checkpoint or the complete new one, never a half-written file. An error removes the
temporary file; one left by a killed process is removed by the next save to the same
path (``atomic.py``). A symbolic link is written through, as ``np.save`` and
``torch.save`` do: the link stays, and the file it points to is replaced.

The file lands exactly at ``path``, whatever its suffix: unlike ``np.savez`` given a file
name, no ``.npz`` is appended, so ``save(d, p)`` followed by ``load(p)`` always agree.

``load`` reads each member's ``.npy`` header itself and checks the size the header
declares against the size the archive records before it allocates anything, so a damaged
header claiming a terabyte raises ``ValueError`` rather than ``MemoryError``.
"""
import ast
import lzma
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Mapping

import numpy as np

from .atomic import replacing
from .tensor import Tensor

_NUMERIC_KINDS = "biufc"  # bool, signed, unsigned, float, complex
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an archive with members, an empty one
_NPY_MAGIC = b"\x93NUM"
_SUFFIX = ".npy"  # each key K is stored as the member K + ".npy", as np.savez does
_MAX_MEMBER_NAME = 0xFFFF  # the zip format stores a name's length in two bytes
# Header length field size and text encoding of each .npy version.
_NPY_VERSIONS = {(1, 0): (2, "latin1"), (2, 0): (4, "latin1"), (3, 0): (4, "utf8")}
_MAX_HEADER = 10_000  # numpy's own limit: larger headers are not parsed
_CHUNK = 1 << 22  # array data is read 4 MiB at a time

# What parsing a damaged file can raise, besides our own checks. zipfile reports most
# damage as BadZipFile, but flipped bits also surface as the decompressors' own errors
# (zlib.error, LZMAError, OSError from bz2), "unsupported compression" (NotImplementedError),
# "encrypted" (RuntimeError), seeks to a negative or huge offset (OSError, ValueError,
# OverflowError), a short read (EOFError) or a short header field (struct.error). All of
# them mean the same thing to the caller.
_DAMAGED_FILE_ERRORS = (ValueError, EOFError, OSError, RuntimeError, OverflowError,
                        struct.error, zlib.error, lzma.LZMAError, zipfile.BadZipFile)


class _NotACheckpoint(ValueError):
    """A file ``load`` read without trouble but that holds something else."""


class _Damaged(ValueError):
    """A member whose bytes contradict each other (sizes, header)."""


def save(state_dict, path):
    """Write ``{name: array}`` to ``path`` as an ``.npz`` archive, atomically.

    Keys must be strings that the archive stores unchanged: no NUL character, valid
    UTF-8, short enough for a zip member name, and no pair ``'k'`` and ``'k.npy'`` (which
    ``np.load`` would confuse). Values must be numeric arrays, array-likes or Tensors
    (their data). A bad key or value raises ``ValueError`` naming it (``TypeError`` if
    ``state_dict`` is not a dict) before anything is written. On any failure while
    writing, the temporary file is removed and an existing file at ``path`` is left
    untouched.
    """
    arrays = _checked_arrays(state_dict)
    with replacing(path, "save") as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for key, array in arrays.items():
                # force_zip64: the member's size is not known before it is written.
                with archive.open(key + _SUFFIX, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)


def load(path):
    """Read a checkpoint written by ``save`` (or any ``.npz`` of numeric arrays).

    Returns ``{name: np.ndarray}`` in the order the arrays were saved. A missing file
    raises ``FileNotFoundError``; a truncated, corrupt or foreign file (text, a single
    ``.npy``, a zip of something else, pickled objects, a header whose shape does not fit
    the data) raises ``ValueError`` naming ``path`` and what is wrong with it. Nothing is
    ever unpickled.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            return _read_npz(f)
        except _NotACheckpoint as err:
            raise ValueError(f"cannot load checkpoint {path!r}: {err}") from None
        except _Damaged as err:
            raise ValueError(f"cannot load checkpoint {path!r}: corrupt archive: {err}") from None
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
        _check_key(key)
        try:
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
        except ValueError as err:  # ragged nested lists
            raise ValueError(f"save: value for key {key!r} is not an array: {err}") from None
        if array.dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"save: value for key {key!r} must be numeric, got dtype "
                             f"{array.dtype} ({type(value).__name__})")
        arrays[key] = array
    for key in arrays:
        if key + _SUFFIX in arrays:
            raise ValueError(f"save: keys {key!r} and {key + _SUFFIX!r} collide: np.load "
                             f"reads both names as the array stored for {key!r}; rename one")
    return arrays


def _check_key(key):
    """A ValueError unless ``key`` is a str the archive stores and reads back unchanged."""
    if not isinstance(key, str):
        raise ValueError(f"save: keys must be str, got {key!r} ({type(key).__name__})")
    member = key + _SUFFIX
    try:
        encoded = member.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"save: key {key!r} cannot be stored: not valid UTF-8 ({err.reason})") \
            from None
    if len(encoded) > _MAX_MEMBER_NAME:
        raise ValueError(f"save: key {key[:40]!r}... is {len(encoded) - len(_SUFFIX)} bytes "
                         f"long in UTF-8; a zip member name holds at most "
                         f"{_MAX_MEMBER_NAME - len(_SUFFIX)} plus {_SUFFIX!r}")
    # zipfile cuts a name at its first NUL and, on Windows, turns '\\' into '/': such a
    # key would be read back as another one, or collide with it.
    stored = zipfile.ZipInfo(member).filename
    if stored != member:
        raise ValueError(f"save: key {key!r} cannot be stored: the archive would store it as "
                         f"{stored[:-len(_SUFFIX)] if stored.endswith(_SUFFIX) else stored!r}"
                         + (" (it contains a NUL character)" if "\0" in key else ""))


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
        _check_directory(f, archive.infolist())
        for info in archive.infolist():
            member = info.filename
            if not member.endswith(_SUFFIX):
                raise _NotACheckpoint(f"member {member!r} of the archive is not a .npy array")
            key = member[:-len(_SUFFIX)]
            if key in state:
                raise _Damaged(f"two members are named {member!r}")
            with archive.open(info) as stream:
                state[key] = _read_member(stream, key, info.file_size)
    return state


# The zip records _check_directory reads: (signature, struct format of the fixed part).
_END = (b"PK\x05\x06", "<4s4H2LH")  # disk, directory disk, entries here, entries, size, offset
_END64_LOCATOR = (b"PK\x06\x07", "<4sLQL")  # disk, offset of the zip64 end record, disks
_END64 = (b"PK\x06\x06", "<4sQ2H2L4Q")  # ..., entries here, entries, size, offset
_ENTRY = (b"PK\x01\x02", "<4s6H3L5H2L")  # ... name, extra and comment lengths at 10-12
_LOCAL = (b"PK\x03\x04", "<4s5H3L2H")  # ... name and extra lengths at 9-10
_DESCRIPTOR_SIZES = (12, 16, 20, 24)  # crc and sizes after the data, with or without
# signature, 32- or 64-bit sizes (when a member's flags have bit 3 set)


def _record(f, offset, kind, size_limit):
    """The fixed part of the zip record ``kind`` at ``offset``, or _Damaged."""
    signature, layout = kind
    size = struct.calcsize(layout)
    if offset < 0 or offset + size > size_limit:
        raise _Damaged(f"a zip record points outside the file (offset {offset})")
    f.seek(offset)
    fields = struct.unpack(layout, f.read(size))
    if fields[0] != signature:
        raise _Damaged(f"no zip record where one should start (offset {offset})")
    return fields


def _check_directory(f, infos):
    """Check that the end record, the central directory and the members agree.

    zipfile reads the directory entry by entry and stops quietly where a damaged length
    field makes it lose count, returning fewer members than the archive holds: a load
    would silently give part of the arrays. Here the entry count and the directory's
    extent from the end record must match the entries the directory really holds, and
    the members must fill the file from offset 0 to the directory without gap or
    overlap. (zipfile itself checks each member's name against its local header and, on
    reading a member to its end, its CRC.)
    """
    f.seek(0, os.SEEK_END)
    file_size = f.tell()
    tail_start = max(0, file_size - 22 - 0xFFFF)
    f.seek(tail_start)
    tail = f.read()
    end_at = tail.rfind(_END[0])
    while end_at >= 0 and end_at + 22 + int.from_bytes(tail[end_at + 20:end_at + 22],
                                                       "little") != len(tail):
        end_at = tail.rfind(_END[0], 0, end_at)
    if end_at < 0:
        raise _Damaged("no end-of-archive record")
    end_at += tail_start
    _, disk, directory_disk, here, count, size, offset, _ = _record(f, end_at, _END, file_size)
    directory_end = end_at
    if end_at >= 20 and f.seek(end_at - 20) is not None and f.read(4) == _END64_LOCATOR[0]:
        _, _, end64_at, _ = _record(f, end_at - 20, _END64_LOCATOR, file_size)
        fields = _record(f, end64_at, _END64, end_at - 20)
        disk, directory_disk, here, count, size, offset = fields[4:10]
        directory_end = end64_at
    if disk or directory_disk or here != count:
        raise _Damaged("the end record describes a multi-disk archive")
    if offset + size != directory_end:
        raise _Damaged(f"the end record places the directory at bytes {offset}-{offset + size}, "
                       f"but the directory ends at byte {directory_end}")
    entries, at = 0, offset
    while at < directory_end:
        fields = _record(f, at, _ENTRY, directory_end)
        at += 46 + fields[10] + fields[11] + fields[12]
        entries += 1
    if at != directory_end or entries != count or len(infos) != count:
        raise _Damaged(f"the end record counts {count} members, the directory holds "
                       f"{entries} entries and {len(infos)} were read")
    ordered = sorted(infos, key=lambda i: i.header_offset)
    starts = [i.header_offset for i in ordered] + [offset]  # the directory comes last
    if starts[0] != 0:
        raise _Damaged(f"the first member starts at byte {starts[0]}, not at 0")
    for info, start, following in zip(ordered, starts, starts[1:]):
        local = _record(f, start, _LOCAL, offset)
        end = start + 30 + local[9] + local[10] + info.compress_size
        gap = following - end  # a data descriptor may follow the data (flag bit 3)
        if gap and not (info.flag_bits & 0x08 and gap in _DESCRIPTOR_SIZES):
            raise _Damaged(f"member {info.filename!r} ends at byte {end}, but what follows "
                           f"it starts at byte {following}")


def _read_member(stream, key, member_size):
    """One ``.npy`` member as an array, checking its header before reading its data."""
    shape, fortran_order, dtype, header_size = _read_npy_header(stream, key)
    if dtype.kind not in _NUMERIC_KINDS:
        detail = " (pickled Python objects are never loaded)" if dtype.hasobject else ""
        raise _NotACheckpoint(f"array {key!r} has dtype {dtype}, not a number{detail}")
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if header_size + nbytes != member_size:
        raise _Damaged(f"the header of {key!r} declares shape {shape} of {dtype} "
                       f"({nbytes} bytes of data), but the member holds "
                       f"{member_size - header_size} bytes after its header")
    # The archive's recorded size may be damaged too: read in chunks, so memory never
    # runs ahead of the bytes that really are there.
    data = bytearray()
    while len(data) < nbytes:
        chunk = stream.read(min(_CHUNK, nbytes - len(data)))
        if not chunk:
            raise _Damaged(f"the data of {key!r} ends after {len(data)} of {nbytes} bytes")
        data += chunk
    if stream.read(1):  # also reaches the end of the member, where zipfile checks its CRC
        raise _Damaged(f"the member of {key!r} holds more bytes than its header declares")
    array = np.frombuffer(data, dtype=dtype, count=count)  # writable: data is a bytearray
    if fortran_order:
        return array.reshape(shape[::-1]).transpose()
    return array.reshape(shape)


def _read_npy_header(stream, key):
    """(shape, fortran_order, dtype, header size in bytes) of a ``.npy`` stream.

    Parsed here rather than by numpy so that every version (1.0, 2.0, 3.0) is checked the
    same way and nothing is allocated before the sizes are known to agree.
    """
    start = stream.read(8)
    if len(start) < 8 or not start.startswith(b"\x93NUMPY"):
        raise _NotACheckpoint(f"member {key + _SUFFIX!r} is not a .npy array")
    version = (start[6], start[7])
    if version not in _NPY_VERSIONS:
        raise _Damaged(f"the member of {key!r} has unknown .npy version {version}")
    length_size, encoding = _NPY_VERSIONS[version]
    length = int.from_bytes(stream.read(length_size), "little")
    if length > _MAX_HEADER:
        raise _Damaged(f"the .npy header of {key!r} claims {length} bytes")
    text = stream.read(length)
    if len(text) != length:
        raise _Damaged(f"the .npy header of {key!r} is cut short")
    try:
        header = ast.literal_eval(text.decode(encoding))
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        header = None
    if not (isinstance(header, dict) and header.keys() == {"descr", "fortran_order", "shape"}
            and isinstance(header["fortran_order"], bool)
            and isinstance(header["shape"], tuple)
            and all(type(n) is int and n >= 0 for n in header["shape"])):
        raise _Damaged(f"the .npy header of {key!r} is unreadable: {text[:200]!r}")
    try:
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except (TypeError, ValueError) as err:
        raise _Damaged(f"the .npy header of {key!r} names no dtype numpy knows "
                       f"({header['descr']!r}: {err})") from None
    return header["shape"], header["fortran_order"], dtype, 8 + length_size + length
