"""``mg.save`` / ``mg.load``: exact round trips, atomic writes, and clear errors.

The failure tests make the write fail part-way (a member half written, the final rename
refused) and check that the previous checkpoint survives untouched with no temporary
file left behind; damaged files must always raise ValueError naming the path.
"""
import os
import re
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
    state = {"a": np.ones(1), "a.npy": np.zeros(2), "file": np.ones(3),
             "allow_pickle": np.ones(4), "dir/name": np.ones(5), "": np.ones(6)}
    mg.save(state, tmp_path / "x.npz")
    assert_same_state(mg.load(tmp_path / "x.npz"), state)


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
    ({"w": np.ones(2), 3: np.ones(2)}, TypeError, "keys must be str, got 3"),
    ({"w": np.ones(2), "names": np.array(["a", "b"])}, ValueError,
     "value for key 'names' must be numeric, got dtype <U1"),
    ({"w": np.ones(2), "obj": {"nested": 1}}, ValueError,
     "value for key 'obj' must be numeric, got dtype object"),
    ({"w": np.ones(2), "ragged": [[1, 2], [3]]}, ValueError,
     "value for key 'ragged' is not an array"),
    ([("w", np.ones(2))], TypeError, "expected a dict of name -> array, got list"),
])
def test_bad_state_dicts_are_rejected_before_anything_is_written(tmp_path, state, error,
                                                                  message):
    with pytest.raises(error, match=message):
        mg.save(state, tmp_path / "ck.npz")
    assert os.listdir(tmp_path) == []


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


def test_pickled_objects_are_never_loaded(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, obj=np.array([{"code": "run me"}], dtype=object))
    with error_naming(path) as info:
        mg.load(path)
    assert "Object arrays cannot be loaded" in str(info.value)


def test_strings_in_an_npz_are_refused(tmp_path):
    path = tmp_path / "strings.npz"
    np.savez(path, names=np.array(["a", "b"]))
    with error_naming(path) as info:
        mg.load(path)
    assert "array 'names' has dtype <U1, not a number" in str(info.value)


def test_random_damage_raises_value_error_or_yields_only_exact_arrays(tmp_path, saved):
    """Whatever the damage, load raises ValueError naming the path, never another error.
    Damage that escapes detection (a timestamp, an unused header field, or a shortened
    directory that hides whole members) yields saved arrays exactly as saved, never
    altered values: every member carries a CRC. A hidden member is a missing key, which
    ``load_state_dict`` reports."""
    expected = sample_state()
    rng = np.random.default_rng(0)
    path = tmp_path / "damaged.npz"
    errors = 0
    for _ in range(300):
        data = bytearray(saved)
        if rng.random() < 0.3:
            data = data[:rng.integers(len(data))]
        else:
            for _ in range(rng.integers(1, 4)):
                data[rng.integers(len(data))] = rng.integers(256)
        path.write_bytes(bytes(data))
        try:
            state = mg.load(path)
        except ValueError as err:
            assert repr(str(path)) in str(err)
            errors += 1
        else:
            for key, value in state.items():
                assert value.dtype == expected[key].dtype
                assert np.array_equal(value, expected[key]), key
    assert errors > 0.8 * 300  # most damage is caught outright


def test_load_reads_from_a_path_like_and_returns_writable_arrays(tmp_path):
    mg.save({"w": np.arange(3.0)}, tmp_path / "ck.npz")
    w = mg.load(tmp_path / "ck.npz")["w"]
    w += 1  # a checkpoint's arrays are ordinary arrays the caller owns
    assert w.tolist() == [1.0, 2.0, 3.0]


def test_an_empty_state_dict_round_trips(tmp_path):
    mg.save({}, tmp_path / "empty.npz")
    assert mg.load(tmp_path / "empty.npz") == {}
