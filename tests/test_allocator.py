"""keep_freed_memory: the next step reuses freed memory instead of page-faulting it in."""
import subprocess
import sys

import pytest

PROGRAM = """
import resource, sys
import numpy as np
import minigrad as mg
if sys.argv[1] == "keep":
    assert mg.keep_freed_memory()
def step():  # like a training step: many mid-sized arrays, all freed at the end
    arrays = [np.ones(16_384) for _ in range(200)]  # 200 x 128 KiB
    del arrays
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode):
    result = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True,
                            text=True, check=True)
    return int(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_freed_memory_is_reused_without_page_faults():
    kept, default = page_faults("keep"), page_faults("default")
    # 5 steps x 25 MiB of fresh pages by default; almost none once the memory is kept.
    assert default > 5_000
    assert kept < default / 20
