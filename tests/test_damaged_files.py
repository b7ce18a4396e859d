"""Checkpoints on a bad day: a damaged archive never loads in part, and a save killed
mid-write leaves nothing behind for long."""
import os
import signal
import struct
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import minigrad as mg

STATE = {"w": np.arange(6.0).reshape(2, 3), "b": np.array([1.5, -2.0], np.float32),
         "step": np.array(3)}


def same_state(loaded, state=STATE):
    return list(loaded) == list(state) and all(
        loaded[k].dtype == v.dtype and loaded[k].shape == v.shape
        and np.array_equal(loaded[k], v) for k, v in state.items())


def load_or_error(path):
    """The loaded dict, or the ValueError's message, which must name the path."""
    try:
        return mg.load(path)
    except ValueError as err:
        assert str(path) in str(err)
        return str(err)


@pytest.fixture
def archive(tmp_path):
    path = tmp_path / "ck.npz"
    mg.save(STATE, path)
    return path, path.read_bytes()


def test_every_flipped_byte_loads_the_whole_state_or_raises(archive, tmp_path):
    path, raw = archive
    loaded_whole = 0
    directory = raw.find(b"PK\x01\x02")
    with open(path, "r+b") as f:
        for position in range(len(raw)):
            for flip in (0xFF, 0x01) if position >= directory else (0xFF,):
                f.seek(position)
                f.write(bytes([raw[position] ^ flip]))
                f.flush()
                result = load_or_error(path)
                if isinstance(result, dict):
                    assert same_state(result), (position, flip, result)
                    loaded_whole += 1
                f.seek(position)
                f.write(raw[position:position + 1])
    assert 0 < loaded_whole < len(raw)  # (timestamps, attribute bytes: harmless)


def test_a_damaged_directory_entry_count_is_caught(archive, tmp_path):
    path, raw = archive
    end = raw.rfind(b"PK\x05\x06")
    for field in (8, 10):  # the end record's two entry counts
        data = bytearray(raw)
        data[end + field] -= 1
        (tmp_path / "d.npz").write_bytes(bytes(data))
        assert "corrupt" in load_or_error(tmp_path / "d.npz")


def test_a_directory_that_loses_count_is_caught(archive, tmp_path):
    """A longer name length in the first directory entry made zipfile read one entry
    and stop: load returned 1 of 3 arrays."""
    path, raw = archive
    entry = raw.find(b"PK\x01\x02")
    data = bytearray(raw)
    data[entry + 28:entry + 30] = struct.pack("<H", 200)
    (tmp_path / "d.npz").write_bytes(bytes(data))
    assert "corrupt" in load_or_error(tmp_path / "d.npz")


def test_every_truncation_raises(archive, tmp_path):
    path, raw = archive
    for size in reversed(range(len(raw))):
        os.truncate(path, size)
        assert isinstance(load_or_error(path), str), size


def test_extra_bytes_or_members_the_directory_does_not_list_are_caught(archive, tmp_path):
    path, raw = archive
    second = raw.find(b"PK\x03\x04", 4)
    hidden = raw[:second] + raw[:second] + raw[second:]  # a member hidden before another
    directory = raw.find(b"PK\x01\x02")
    for data in (hidden, raw[:directory] + b"\0" * 7 + raw[directory:], raw + b"junk",
                 b"junk" + raw):
        (tmp_path / "d.npz").write_bytes(data)
        assert isinstance(load_or_error(tmp_path / "d.npz"), str)


def test_archives_of_other_writers_still_load(tmp_path):
    np.savez(tmp_path / "a.npz", **STATE)
    np.savez_compressed(tmp_path / "b.npz", **STATE)
    assert same_state(mg.load(tmp_path / "a.npz")) and same_state(mg.load(tmp_path / "b.npz"))

    class Stream:  # a stream that cannot seek: zipfile writes data descriptors
        def __init__(self):
            self.buffer = bytearray()

        def write(self, data):
            self.buffer += data
            return len(data)

        def flush(self):
            pass

    stream = Stream()
    with zipfile.ZipFile(stream, "w") as archive:
        for key, value in STATE.items():
            with archive.open(key + ".npy", "w") as member:
                np.lib.format.write_array(member, value)
    (tmp_path / "c.npz").write_bytes(bytes(stream.buffer))
    with zipfile.ZipFile(tmp_path / "c.npz") as archive:
        assert all(info.flag_bits & 0x08 for info in archive.infolist())
    assert same_state(mg.load(tmp_path / "c.npz"))


# -- a save killed mid-write ----------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    import minigrad as mg

    real = np.lib.format.write_array
    def write_then_hang(stream, array, **kwargs):
        stream.write(b"x" * 1000)  # part of the member is written...
        print("writing", flush=True)
        time.sleep(60)  # ...and here the writer is killed
    np.lib.format.write_array = write_then_hang
    mg.save({"w": np.zeros(3)}, sys.argv[1])
""")


def temporaries(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


@pytest.mark.skipif(os.name != "posix", reason="temporaries are cleaned up on POSIX only")
def test_the_next_save_removes_the_temporary_of_a_killed_writer(tmp_path):
    path = tmp_path / "ck.npz"
    mg.save(STATE, path)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "writing\n"
        left = temporaries(tmp_path)
        assert len(left) == 1 and left[0].startswith(".minigrad-")
        assert f"-{writer.pid}-" in left[0]
        # another writer of this target, still running, and one of another target
        tag = left[0].split("-")[1]
        alive = tmp_path / f".minigrad-{tag}-{os.getppid()}-abc.tmp"
        other = tmp_path / f".minigrad-00000000-{writer.pid}-abc.tmp"
        alive.write_bytes(b"")
        other.write_bytes(b"")
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        writer.stdout.close()
    assert same_state(mg.load(path))  # the old checkpoint is intact
    assert len(temporaries(tmp_path)) == 3
    mg.save({"w": np.ones(2)}, path)
    assert temporaries(tmp_path) == sorted([alive.name, other.name])
    np.testing.assert_array_equal(mg.load(path)["w"], np.ones(2))
