"""An opt-in setting for training loops on Linux: keep freed memory for the next step.

Each training step builds a graph of fresh arrays and frees all of it after backward.
By default glibc's malloc hands that memory back to the operating system, and the next
step page-faults it in again; for small models that costs more than the arithmetic
(``benchmarks/`` measures it). The setting is process-wide, so minigrad never applies it
by itself: a training script or a benchmark may, the way it would set a thread count.
"""
import ctypes
import sys

_M_TRIM_THRESHOLD = -1  # from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(trim_threshold=1 << 30, mmap_threshold=32 << 20):
    """Ask glibc to keep up to ``trim_threshold`` bytes of freed heap instead of returning
    it, and to serve blocks below ``mmap_threshold`` bytes from that heap.

    Returns True when applied, False where the C library is not glibc (the call is then
    harmless: nothing changes).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
