"""Replacing a file atomically: the one place checkpoints and drawings are written.

A crash, a full disk or a failed conversion must never leave a half-written file under
the name the user gave, nor destroy the file that was there: the new contents go to a
temporary file beside the target, which is renamed over it only once complete.

A process killed while writing (SIGKILL, a power cut) cannot remove its temporary file.
So the name says whose it is: ``.minigrad-<tag>-<pid>-<random>.tmp``, with ``tag`` a
short hash of the target's file name and ``pid`` the writer's process id, and the next
write to the same target removes the temporaries of that target whose writer process
is gone (on POSIX systems; elsewhere they stay).
"""
import contextlib
import errno
import hashlib
import os
import re
import tempfile

_TEMPORARY = re.compile(r"\.minigrad-([0-9a-f]{8})-(\d+)-[^.]*\.tmp")


@contextlib.contextmanager
def replacing(path, who):
    """Yield a binary file; when the block ends without error it replaces ``path``.

    A symbolic link is written through (its target is replaced, the link kept), as
    ``open(path, "wb")``, ``np.save`` and ``torch.save`` do. The temporary name is short
    (``.minigrad-<tag>-<pid>-<random>.tmp``) whatever the length of ``path``'s, so any
    name the file system accepts works, and it gets the mode ``open`` would give (0o666
    less the umask). Temporaries of ``path`` left by killed writers are removed first.
    Errors name ``path``, never the temporary file; ``who`` ("save", "render") starts
    their message. On any failure the temporary file is removed and ``path`` untouched.
    """
    path = os.fspath(path)
    target = os.path.realpath(path)
    if os.path.islink(target):  # realpath gives up on a loop of links
        raise OSError(errno.ELOOP, "Too many levels of symbolic links", path)
    if os.path.isdir(target):  # checked first: the rename's error would be less clear
        raise IsADirectoryError(errno.EISDIR, f"{who}: the path is a directory; give a "
                                "file name inside it", path)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, f"{who}: the directory {directory!r} does not "
                                "exist (create it first, e.g. with os.makedirs)", path)
    name = os.path.basename(target).encode("utf-8", "surrogateescape")
    tag = hashlib.sha1(name).hexdigest()[:8]
    _remove_orphans(directory, tag)
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".minigrad-{tag}-{os.getpid()}-",
                                         suffix=".tmp", dir=directory)
    except OSError as err:  # a read-only directory: name the path, not the temporary file
        raise type(err)(err.errno, f"{who}: cannot create a file in {directory!r} "
                        f"({err.strerror})", path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private (0600)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
    _fsync_directory(directory)


def _remove_orphans(directory, tag):
    """Remove the temporaries of target ``tag`` in ``directory`` whose writer is gone."""
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            match = _TEMPORARY.fullmatch(entry.name)
            if match and match.group(1) == tag and not _running(int(match.group(2))):
                with contextlib.suppress(OSError):
                    os.remove(entry.path)


def _running(pid):
    """Whether process ``pid`` may still be writing: True unless it is known to be gone
    (no such process, or a zombie waiting for its parent to collect it)."""
    if os.name != "posix" or pid == os.getpid():
        return True  # (on Windows, os.kill(pid, 0) would terminate the process)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: it exists
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:  # Linux: a killed, unreaped writer
            return stat.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


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
