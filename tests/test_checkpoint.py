"""``mg.save`` / ``mg.load``: exact round trips, atomic writes, and clear errors.

The failure tests make the write fail part-way (a member half written, the final rename
refused) and check that the previous checkpoint survives untouched with no temporary
file left behind; damaged files must always raise ValueError naming the path. The damage
tests cover every kind of member numpy writes (np.savez, np.savez_compressed, .npy
versions 1.0, 2.0 and 3.0, Fortran order, many dtypes) and every compression zipfile
offers, truncated at many offsets and with bytes changed at random (seeded).
"""
import io
import os
import re
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

import minigrad as mg


def sample_state():
    rng = np.random.default_rng(0)
    return {
        "encoder.weight": rng.standard_normal((3, 4)).astype(np.float32),
        "encoder.bias": rng.standard_normal(4),
        "step": np.array([7, 0], dtype=np.int64),
        "lr": np.array(1e-3),
        "mask": np.array([True, False]),
        "empty": np.zeros((2, 0)),
    }


def assert_same_state(got, expected):
    assert list(got) == list(expected)  # names, in the saved order
    for key, value in expected.items():
        assert isinstance(got[key], np.ndarray), key
        assert got[key].dtype == value.dtype, key
        assert got[key].shape == value.shape, key
        assert np.array_equal(got[key], value), key


def error_naming(path):
    return pytest.raises(ValueError, match=re.escape(repr(str(path))))


# -- round trips ----------------------------------------------------------------------

def test_round_trip_keeps_names_order_dtypes_and_values(tmp_path):
    path = tmp_path / "model.npz"
    mg.save(sample_state(), path)
    assert_same_state(mg.load(path), sample_state())
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind


def test_file_is_plain_npz_that_numpy_reads(tmp_path):
    path = tmp_path / "model.npz"
    mg.save(sample_state(), path)
    with np.load(path, allow_pickle=False) as archive:
        assert archive.files == list(sample_state())
        assert np.array_equal(archive["encoder.weight"], sample_state()["encoder.weight"])


def test_the_file_lands_exactly_at_path_whatever_the_suffix(tmp_path):
    path = tmp_path / "checkpoint.bin"
    mg.save({"w": np.ones(2)}, str(path))
    assert os.listdir(tmp_path) == ["checkpoint.bin"]  # np.savez would add ".npz"
    assert_same_state(mg.load(str(path)), {"w": np.ones(2)})


def test_keys_numpy_would_mishandle_round_trip(tmp_path):
    state = {"a.npy": np.zeros(2), "file": np.ones(3), "allow_pickle": np.ones(4),
             "dir/name": np.ones(5), "": np.ones(6), "größe ∑": np.ones(7)}
    mg.save(state, tmp_path / "x.npz")
    assert_same_state(mg.load(tmp_path / "x.npz"), state)
    with np.load(tmp_path / "x.npz") as archive:  # numpy reads every name the same way
        assert archive.files == list(state)
        assert all(np.array_equal(archive[k], v) for k, v in state.items())


def test_the_longest_key_a_zip_member_name_holds_round_trips(tmp_path):
    key = "k" * (0xFFFF - len(".npy"))  # the name field is two bytes; ".npy" is added
    mg.save({key: np.ones(2)}, tmp_path / "long.npz")
    assert_same_state(mg.load(tmp_path / "long.npz"), {key: np.ones(2)})


def test_tensors_array_likes_and_module_state_dicts_are_accepted(tmp_path):
    model = mg.nn.Linear(3, 2, rng=np.random.default_rng(0))
    mg.save({**model.state_dict(), "t": mg.Tensor([1.0, 2.0]), "n": 3, "l": [[1, 2]]},
            tmp_path / "m.npz")
    got = mg.load(tmp_path / "m.npz")
    assert np.array_equal(got["weight"], model.weight.data)
    assert got["t"].tolist() == [1.0, 2.0] and got["n"] == 3 and got["l"].shape == (1, 2)


def test_saving_over_an_existing_checkpoint_replaces_it(tmp_path):
    path = tmp_path / "ck.npz"
    mg.save({"old": np.zeros(3)}, path)
    mg.save({"new": np.ones(2)}, path)
    assert_same_state(mg.load(path), {"new": np.ones(2)})
    assert os.listdir(tmp_path) == ["ck.npz"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_the_file_gets_the_usual_permissions_not_the_private_temp_file_mode(tmp_path):
    previous = os.umask(0o027)
    try:
        mg.save({"w": np.ones(1)}, tmp_path / "ck.npz")
    finally:
        os.umask(previous)
    assert os.stat(tmp_path / "ck.npz").st_mode & 0o777 == 0o640


# -- a failed save changes nothing ------------------------------------------------------

def half_write_then_fail(stream, array, allow_pickle=False):
    stream.write(b"\x93NUMPY half of a member")
    raise OSError(28, "No space left on device")


def fail_with(message):
    def fail(*args, **kwargs):
        raise OSError(message)
    return fail


@pytest.mark.parametrize("target, replacement", [
    ("numpy.lib.format.write_array", half_write_then_fail),  # disk full mid-member
    ("os.fsync", fail_with("I/O error")),                    # the data never reached disk
    ("os.replace", fail_with("rename refused")),             # complete, but not in place
], ids=["write", "fsync", "replace"])
def test_a_failure_during_save_leaves_the_old_checkpoint_and_no_temp_file(
        tmp_path, monkeypatch, target, replacement):
    path = tmp_path / "ck.npz"
    mg.save(sample_state(), path)
    old_bytes = path.read_bytes()
    monkeypatch.setattr(target, replacement)
    with pytest.raises(OSError):
        mg.save({"new": np.ones(1000)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ck.npz"]
    assert path.read_bytes() == old_bytes
    assert_same_state(mg.load(path), sample_state())


def test_a_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr("numpy.lib.format.write_array", half_write_then_fail)
    with pytest.raises(OSError, match="No space left"):
        mg.save({"w": np.ones(3)}, tmp_path / "ck.npz")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("state, error, message", [
    ({"w": np.ones(2), 3: np.ones(2)}, ValueError, "keys must be str, got 3"),
    ({"w": np.ones(2), ("a", "b"): np.ones(2)}, ValueError, "keys must be str, got ('a', 'b')"),
    ({"w": np.ones(2), "names": np.array(["a", "b"])}, ValueError,
     "value for key 'names' must be numeric, got dtype <U1"),
    ({"w": np.ones(2), "obj": {"nested": 1}}, ValueError,
     "value for key 'obj' must be numeric, got dtype object"),
    ({"w": np.ones(2), "ragged": [[1, 2], [3]]}, ValueError,
     "value for key 'ragged' is not an array"),
    ([("w", np.ones(2))], TypeError, "expected a dict of name -> array, got list"),
    # zipfile cuts a member name at NUL: 'w\0b' would silently be stored as 'w'
    ({"w\0b": np.ones(2)}, ValueError,
     r"key 'w\x00b' cannot be stored: the archive would store it as 'w' "
     "(it contains a NUL character)"),
    ({"w": np.ones(2), "w\0": np.ones(3)}, ValueError, r"key 'w\x00' cannot be stored"),
    # np.load reads the name 'w.npy' as the member of key 'w'
    ({"w": np.ones(2), "w.npy": np.ones(3)}, ValueError,
     "keys 'w' and 'w.npy' collide: np.load reads both names as the array stored for 'w'"),
    ({"x\udc80": np.ones(2)}, ValueError, r"key 'x\udc80' cannot be stored: not valid UTF-8"),
    ({"k" * (0xFFFF - 3): np.ones(2)}, ValueError,
     "is 65532 bytes long in UTF-8; a zip member name holds at most 65531"),
    ({"é" * 32766: np.ones(2)}, ValueError, "is 65532 bytes long in UTF-8"),
], ids=["int-key", "tuple-key", "strings", "object", "ragged", "not-a-dict", "nul",
        "nul-collides", "npy-suffix-collides", "surrogate", "too-long", "too-long-utf8"])
def test_bad_state_dicts_are_rejected_before_anything_is_written(tmp_path, state, error,
                                                                  message):
    path = tmp_path / "ck.npz"
    with pytest.raises(error, match=re.escape(message)):
        mg.save(state, path)
    assert os.listdir(tmp_path) == []
    mg.save(sample_state(), path)  # and an existing checkpoint survives the same mistake
    old_bytes = path.read_bytes()
    with pytest.raises(error, match=re.escape(message)):
        mg.save(state, path)
    assert os.listdir(tmp_path) == ["ck.npz"] and path.read_bytes() == old_bytes


def test_a_key_zipfile_would_rewrite_on_windows_is_refused(tmp_path, monkeypatch):
    """On Windows zipfile turns '\\' into '/' in member names, so 'a\\b' would come back
    as 'a/b' (or collide with it). Simulated by zipfile's view of the separator."""
    monkeypatch.setattr(zipfile.os, "sep", "\\")
    with pytest.raises(ValueError, match=r"key 'a\\\\b' cannot be stored: the archive would "
                                         r"store it as 'a/b'"):
        mg.save({"a/b": np.ones(1), "a\\b": np.ones(2)}, tmp_path / "ck.npz")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


# -- file names and links ---------------------------------------------------------------

def test_a_file_name_of_250_bytes_works(tmp_path):
    """The temporary file gets a short name of its own, so the target's name may use
    nearly all of the 255 bytes a file system allows."""
    path = tmp_path / ("c" * 246 + ".npz")
    mg.save({"w": np.ones(2)}, path)
    mg.save({"w": np.zeros(2)}, path)  # replacing it too
    assert_same_state(mg.load(path), {"w": np.zeros(2)})
    assert os.listdir(tmp_path) == [path.name]


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name != "posix", reason="POSIX links")
def test_saving_to_a_symlink_writes_through_it(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "ck.npz"
    mg.save({"old": np.ones(1)}, target)
    link = tmp_path / "latest.npz"
    link.symlink_to(os.path.join("real", "ck.npz"))  # relative, as links often are
    chain = tmp_path / "chain.npz"
    chain.symlink_to(link)
    mg.save({"new": np.zeros(2)}, link)
    assert link.is_symlink() and os.readlink(link) == os.path.join("real", "ck.npz")
    assert_same_state(mg.load(target), {"new": np.zeros(2)})
    mg.save({"newer": np.ones(3)}, chain)  # through two links
    assert chain.is_symlink() and link.is_symlink()
    assert_same_state(mg.load(target), {"newer": np.ones(3)})
    assert sorted(os.listdir(tmp_path / "real")) == ["ck.npz"]  # no temp file left


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name != "posix", reason="POSIX links")
def test_a_dangling_symlink_creates_its_target_and_a_loop_is_an_error(tmp_path):
    link = tmp_path / "ck.npz"
    link.symlink_to(tmp_path / "made.npz")
    mg.save({"w": np.ones(1)}, link)
    assert link.is_symlink() and (tmp_path / "made.npz").is_file()
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(OSError, match="symbolic links"):
        mg.save({"w": np.ones(1)}, a)
    assert a.is_symlink() and b.is_symlink()


# -- damaged and foreign files ------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "good.npz"
    mg.save(sample_state(), path)
    return path.read_bytes()


def test_a_missing_file_raises_file_not_found_naming_the_path(tmp_path):
    path = tmp_path / "nowhere" / "ck.npz"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        mg.load(path)


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_a_truncated_file_raises_value_error_naming_the_path(tmp_path, saved, keep):
    path = tmp_path / "cut.npz"
    path.write_bytes(saved[:int(len(saved) * keep)])
    with error_naming(path):
        mg.load(path)


def test_corrupt_array_bytes_are_detected(tmp_path, saved):
    data = bytearray(saved)
    start = data.index(b"\x93NUMPY") + 128  # inside the first array's data
    data[start:start + 8] = b"\xff" * 8
    path = tmp_path / "corrupt.npz"
    path.write_bytes(bytes(data))
    with error_naming(path) as info:
        mg.load(path)
    assert "truncated, corrupt or foreign" in str(info.value)


@pytest.mark.parametrize("content, reason", [
    (b"step 10\nloss 0.25\n", "not an .npz archive"),
    (b"", r"not an .npz archive \(the file is empty\)"),
])
def test_a_text_or_empty_file_raises_value_error_naming_the_path(tmp_path, content, reason):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with error_naming(path) as info:
        mg.load(path)
    assert re.search(reason, str(info.value))


def test_a_single_npy_array_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.ones(3))
    with error_naming(path) as info:
        mg.load(path)
    assert "single .npy array, not an .npz archive" in str(info.value)


def test_a_zip_of_something_else_is_refused(tmp_path):
    path = tmp_path / "docs.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with error_naming(path) as info:
        mg.load(path)
    assert "member 'readme.txt' of the archive is not a .npy array" in str(info.value)


UNPICKLED = []


def _record_unpickling(note):
    UNPICKLED.append(note)


class Trap:
    """An object whose unpickling would leave a trace."""

    def __reduce__(self):
        return _record_unpickling, ("unpickled",)


def test_pickled_objects_are_never_loaded(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, w=np.ones(2), obj=np.array([Trap()], dtype=object))
    with error_naming(path) as info:
        mg.load(path)
    assert "array 'obj' has dtype object, not a number (pickled Python objects are never " \
           "loaded)" in str(info.value)
    assert UNPICKLED == []
    with np.load(path, allow_pickle=True) as archive:  # the trap works when unpickled
        archive["obj"]
    assert UNPICKLED == ["unpickled"]


@pytest.mark.parametrize("array, dtype", [
    (np.array(["a", "b"]), "<U1"),
    (np.array([b"ab"]), "|S2"),
    (np.zeros(2, dtype=[("x", "<f8"), ("y", "<i4")]), "[('x', '<f8'), ('y', '<i4')]"),
    (np.array(["2024-01-01"], dtype="datetime64[D]"), "datetime64[D]"),
], ids=["unicode", "bytes", "structured", "datetime"])
def test_arrays_that_are_not_numbers_are_refused(tmp_path, array, dtype):
    path = tmp_path / "foreign.npz"
    np.savez(path, names=array)
    with error_naming(path) as info:
        mg.load(path)
    assert f"array 'names' has dtype {dtype}, not a number" in str(info.value)


# Every kind of member numpy writes, in every compression zipfile offers.
DTYPE_STATE = {
    "f16": np.linspace(-2, 2, 6, dtype=np.float16).reshape(2, 3),
    "f32": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
    "f64-big-endian": np.array([1.5, -2.25, 1e300], dtype=">f8"),
    "i8": np.array([-128, 0, 127], dtype=np.int8),
    "u16": np.array([[0, 65535]], dtype=np.uint16),
    "i64": np.array([2**62, -3], dtype=np.int64),
    "bool": np.array([True, False, True]),
    "c64": np.array([1 + 2j, -3j], dtype=np.complex64),
    "c128-big-endian": np.array([[0.5 - 1j]], dtype=">c16"),
    "zero-d": np.array(2.5),
    "size-0": np.zeros((0, 3)),
    "fortran": np.asfortranarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4)),
}


def zip_of(state, compression=zipfile.ZIP_STORED, version=None):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for key, array in state.items():
            with archive.open(key + ".npy", "w") as member:
                np.lib.format.write_array(member, array, version=version)
    return buffer.getvalue()


def numpy_archive(write, state):
    buffer = io.BytesIO()
    write(buffer, **state)
    return buffer.getvalue()


def mg_archive(state, tmp_path):
    mg.save(state, tmp_path / "made.npz")
    data = (tmp_path / "made.npz").read_bytes()
    os.remove(tmp_path / "made.npz")
    return data


ARCHIVES = {
    "mg.save": lambda tmp: mg_archive(DTYPE_STATE, tmp),
    "np.savez": lambda tmp: numpy_archive(np.savez, DTYPE_STATE),
    "np.savez_compressed": lambda tmp: numpy_archive(np.savez_compressed, DTYPE_STATE),
    "npy-1.0": lambda tmp: zip_of(DTYPE_STATE, version=(1, 0)),
    "npy-2.0": lambda tmp: zip_of(DTYPE_STATE, version=(2, 0)),
    "npy-3.0": lambda tmp: zip_of(DTYPE_STATE, version=(3, 0)),
    "deflate-npy-2.0": lambda tmp: zip_of(DTYPE_STATE, zipfile.ZIP_DEFLATED, (2, 0)),
    "bzip2": lambda tmp: zip_of(DTYPE_STATE, zipfile.ZIP_BZIP2),
    "lzma": lambda tmp: zip_of(DTYPE_STATE, zipfile.ZIP_LZMA),
}


def assert_exact_subset(got, expected):
    """Every array that loads is one that was saved, exactly (dtype, order, values)."""
    for key, value in got.items():
        assert key in expected, key
        assert value.dtype == expected[key].dtype and value.shape == expected[key].shape, key
        assert np.array_equal(value, expected[key]), key
        assert value.flags.f_contiguous == expected[key].flags.f_contiguous, key


@pytest.mark.parametrize("kind", ARCHIVES)
def test_every_kind_of_member_numpy_writes_loads_exactly(tmp_path, kind):
    path = tmp_path / "ck.npz"
    path.write_bytes(ARCHIVES[kind](tmp_path))
    got = mg.load(path)
    assert list(got) == list(DTYPE_STATE)
    assert_exact_subset(got, DTYPE_STATE)
    assert all(v.flags.writeable and v.flags.aligned for v in got.values())


@pytest.mark.parametrize("kind", ARCHIVES)
def test_every_truncation_raises_value_error_naming_the_path(tmp_path, kind):
    data = ARCHIVES[kind](tmp_path)
    path = tmp_path / "cut.npz"
    ends = len(data) - np.array([1, 2, 21, 22, 23, 98])  # inside the end records
    offsets = sorted({*range(0, len(data), max(1, len(data) // 80)), *ends.tolist()})
    for keep in offsets:
        path.write_bytes(data[:keep])
        with error_naming(path):
            mg.load(path)


@pytest.mark.parametrize("kind", ARCHIVES)
def test_random_damage_raises_value_error_or_yields_only_exact_arrays(tmp_path, kind):
    """Whatever the damage, load raises ValueError naming the path, never another error
    (zlib.error, LZMAError, MemoryError, ...). Damage that escapes detection (a timestamp,
    an unused header field, or a shortened directory that hides whole members) yields
    saved arrays exactly as saved, never altered values: every member carries a CRC. A
    hidden member is a missing key, which ``load_state_dict`` reports."""
    data = ARCHIVES[kind](tmp_path)
    rng = np.random.default_rng(sum(map(ord, kind)))
    path = tmp_path / "damaged.npz"
    trials, errors = 120, 0
    for _ in range(trials):
        damaged = bytearray(data)
        for _ in range(rng.integers(1, 4)):
            damaged[rng.integers(len(damaged))] = rng.integers(256)
        path.write_bytes(bytes(damaged))
        try:
            state = mg.load(path)
        except ValueError as err:
            assert repr(str(path)) in str(err)
            errors += 1
        else:
            assert_exact_subset(state, DTYPE_STATE)
    assert errors > 0.5 * trials  # most damage is caught outright


def npy_with_header(header, data=b"\0" * 16, version=b"\x01\x00"):
    text = repr(header).encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY" + version + struct.pack("<H", len(text)) + text + data


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED,
                                         zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA],
                         ids=["stored", "deflate", "bzip2", "lzma"])
def test_a_header_claiming_a_huge_shape_is_refused_before_allocating(tmp_path, compression):
    path = tmp_path / "huge.npz"
    header = {"descr": "<f8", "fortran_order": False, "shape": (2**40,)}
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("x.npy", npy_with_header(header))
    assert path.stat().st_size < 400
    with error_naming(path) as info:
        mg.load(path)
    assert ("header of 'x' declares shape (1099511627776,) of float64 (8796093022208 bytes "
            "of data), but the member holds 16 bytes after its header") in str(info.value)


def test_a_header_and_a_directory_that_agree_on_a_huge_size_cost_no_memory(tmp_path):
    """Both the .npy header and the zip directory claim 2 GiB, the file holds 16 bytes:
    the data is read in chunks, so the load fails when the bytes run out, having
    allocated only what was there."""
    count = 2**28  # float64: 2 GiB
    npy = npy_with_header({"descr": "<f8", "fortran_order": False, "shape": (count,)})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", npy)
    data = bytearray(buffer.getvalue())
    directory = data.index(b"PK\x01\x02")
    claimed = len(npy) - 16 + 8 * count
    data[directory + 24:directory + 28] = struct.pack("<I", claimed)  # uncompressed size
    path = tmp_path / "liar.npz"
    path.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        with error_naming(path) as info:
            mg.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "the data of 'x' ends after 16 of 2147483648 bytes" in str(info.value)
    assert peak < 20 * 2**20  # a few chunks' worth, not 2 GiB


@pytest.mark.parametrize("member, message", [
    (npy_with_header({"descr": "<f8", "fortran_order": False, "shape": (2,)}, b"\0" * 24),
     "holds 24 bytes after its header"),
    (npy_with_header({"descr": "<f8", "fortran_order": False, "shape": (-2,)}),
     "the .npy header of 'x' is unreadable"),
    (npy_with_header({"descr": "<f8", "shape": (2,)}), "the .npy header of 'x' is unreadable"),
    (npy_with_header(["not", "a", "dict"]), "the .npy header of 'x' is unreadable"),
    (npy_with_header({"descr": "<f8", "fortran_order": 1, "shape": (2,)}),
     "the .npy header of 'x' is unreadable"),
    (npy_with_header({"descr": "<q9", "fortran_order": False, "shape": (2,)}),
     "names no dtype numpy knows"),
    (npy_with_header({"descr": "<f8", "fortran_order": False, "shape": (2,)},
                     version=b"\x04\x00"), "unknown .npy version (4, 0)"),
    (b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{}", "header of 'x' claims 2147483648"),
    (b"\x93NUMPY\x01\x00" + struct.pack("<H", 200) + b"{'descr'", "header of 'x' is cut short"),
    (b"PK\x03\x04 a zip inside", "member 'x.npy' is not a .npy array"),
], ids=["extra-data", "negative-shape", "missing-key", "not-a-dict", "bad-fortran-flag",
        "bad-descr", "unknown-version", "huge-header", "cut-header", "not-npy"])
def test_members_whose_header_contradicts_their_data_are_refused(tmp_path, member, message):
    path = tmp_path / "bad.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", member)
    with error_naming(path) as info:
        mg.load(path)
    assert message in str(info.value)


def test_two_members_of_the_same_name_are_refused(tmp_path):
    path = tmp_path / "twice.npz"
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(path, "w") as archive:
            for value in (1.0, 2.0):
                with archive.open("w.npy", "w") as member:
                    np.lib.format.write_array(member, np.array([value]))
    with error_naming(path) as info:
        mg.load(path)
    assert "two members are named 'w.npy'" in str(info.value)


@pytest.mark.parametrize("content", [
    b"\x1f\x8b\x08\x00" + bytes(range(60)),  # a gzip file
    bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8)),
    b"PK\x03\x04" + b"\0" * 100,             # a zip signature and nothing behind it
    b"PK\x05\x06" + b"\0" * 10,              # a cut-off empty archive
])
def test_foreign_binary_files_raise_value_error(tmp_path, content):
    path = tmp_path / "foreign.npz"
    path.write_bytes(content)
    with error_naming(path):
        mg.load(path)


def test_load_reads_from_a_path_like_and_returns_writable_arrays(tmp_path):
    mg.save({"w": np.arange(3.0)}, tmp_path / "ck.npz")
    w = mg.load(tmp_path / "ck.npz")["w"]
    w += 1  # a checkpoint's arrays are ordinary arrays the caller owns
    assert w.tolist() == [1.0, 2.0, 3.0]


def test_an_empty_state_dict_round_trips(tmp_path):
    mg.save({}, tmp_path / "empty.npz")
    assert mg.load(tmp_path / "empty.npz") == {}
