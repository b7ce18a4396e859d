"""Shared pieces of the benchmark scripts: the timing loop, the machine line, tables, JSON.

Every script measures the same way: warm-up runs first (caches, BLAS thread start-up,
numpy's allocator), then repetitions of all candidates interleaved A, B, A, B, ..., so a
slow spell of the machine hits every candidate alike, and the median is reported, which
one preempted run cannot move.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/x.py` from anywhere
    sys.path.insert(0, str(ROOT))

import minigrad as mg  # noqa: E402

# Training scripts may ask glibc to keep freed memory (mg.keep_freed_memory): without it
# every step page-faults its freshly allocated graph in again. Benchmarks measure with it,
# like the examples run; MINIGRAD_DEFAULT_MALLOC=1 measures glibc's defaults instead.
FREED_MEMORY_KEPT = (os.environ.get("MINIGRAD_DEFAULT_MALLOC") != "1"
                     and mg.keep_freed_memory())

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# glibc's malloc settings change how often freed graphs go back to the OS and must be
# paged in again, which moves minigrad's timings by tens of percent; record them.
MALLOC_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
                    "GLIBC_TUNABLES")


def lstm_problem(shape, dtype, seed=0):
    """The benchmarked task at ``shape`` = (N, T, D, H): ``models.LSTM(D, H)`` and a
    ``Linear(H, 1)`` head (one logit per step, like the arithmetic examples) with seeded
    initial weights, a random input (N, T, D) and 0/1 targets (N, T, 1)."""
    from minigrad.models import LSTM

    n, t, d, h = shape
    rng = np.random.default_rng(seed)
    lstm = LSTM(d, h, rng=rng, dtype=dtype)
    head = mg.nn.Linear(h, 1, rng=rng, dtype=dtype)
    x = rng.standard_normal((n, t, d)).astype(dtype)
    target = (rng.random((n, t, 1)) < 0.5).astype(dtype)
    return lstm, head, x, target


def interleaved(candidates, reps, warmup=3, clock=time.perf_counter):
    """Time each ``name -> fn()`` ``reps`` times, in turn; return name -> list of seconds.
    ``clock=time.process_time`` counts this process's CPU time instead of wall time: on
    a machine other jobs keep busy, it moves far less (but misses time spent waiting)."""
    for _ in range(warmup):
        for fn in candidates.values():
            fn()
    times = {name: [] for name in candidates}
    for _ in range(reps):
        for name, fn in candidates.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
    return times


def median(values):
    return statistics.median(values)


def blas_threads():
    """How many threads BLAS uses, as far as can be told without new dependencies."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        pools = [f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info()]
        if pools:
            return ", ".join(pools)
    settings = [f"{v}={os.environ[v]}" for v in THREAD_VARIABLES if v in os.environ]
    if settings:
        return ", ".join(settings)
    return f"unset (BLAS default: up to {os.cpu_count()} cores)"


def engine_version():
    """The commit the numbers belong to, '+changes' if minigrad/ or models/ differ from it."""
    def git(*args):
        return subprocess.run(("git",) + args, cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "minigrad", "models")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+changes" if dirty else "")


def cpu():
    """CPU model, and whether it has AVX-512: numpy's float64 exp and tanh are vectorised
    only with it, which decides how fast every sigmoid and tanh here is."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), platform.machine())
    return f"{model}, {'with' if ' avx512f' in text else 'no'} AVX-512"


def machine():
    """One dict describing where and how the numbers were taken."""
    blas = "unknown"
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except Exception:  # numpy < 1.25 or an unusual build: the name is only a label
        pass
    return {
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "blas_threads": blas_threads(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu(),
        "malloc_env": {v: os.environ[v] for v in MALLOC_VARIABLES if v in os.environ},
        "keep_freed_memory": FREED_MEMORY_KEPT,
        "commit": engine_version(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def machine_line(info):
    """The machine as one printed line; warns when BLAS may start threads on few cores."""
    note = ""
    if info["blas_threads"].startswith("unset") and (info["cpu_count"] or 0) <= 4:
        note = ("\nnote: BLAS threads unset; with few cores shared with other processes, "
                "OPENBLAS_NUM_THREADS=1 gives far steadier figures (see benchmarks/README.md)")
    return (f"{info['date']}  commit {info['commit']}  Python {info['python']}  "
            f"numpy {info['numpy']} ({info['blas']})  {info['cpu']}, {info['cpu_count']} cores  "
            f"BLAS threads: {info['blas_threads']}  "
            f"load average at start: {info['load_average_1min']}  "
            f"keep_freed_memory: {info['keep_freed_memory']}"
            + "".join(f"  {k}={v}" for k, v in info["malloc_env"].items()) + note)


def table(headers, rows):
    """Rows of cells as a Markdown table, numbers right-aligned, so README can take it."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row):
        return "| " + " | ".join(c.rjust(w) if _numeric(c) else c.ljust(w)
                                 for c, w in zip(row, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def _numeric(text):
    try:
        float(text.rstrip("x×%").replace(",", ""))
    except ValueError:
        return False
    return True


def write_json(path, payload):
    """Write ``payload`` as indented JSON, if a path was given."""
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    print(f"wrote {path}")


def run_example(script, name, flags, workdir):
    """Run ``examples/<script>`` with ``flags`` plus --json/--quiet/--out in ``workdir``;
    returns its JSON record (paths into ``workdir`` dropped) with ``wall_seconds``."""
    out = Path(workdir) / f"{name}.json"
    command = [sys.executable, str(ROOT / "examples" / script), *map(str, flags),
               "--json", str(out), "--quiet", "--out", str(Path(workdir) / name)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n"
                           f"{done.stderr[-2000:]}")
    record = json.loads(out.read_text())
    # Paths into the temporary directory mean nothing once it is gone.
    record = {k: v for k, v in record.items()
              if not (isinstance(v, str) and v.startswith(str(workdir)))}
    record["wall_seconds"] = wall
    return record


def summary_row(label, records, key, fmt):
    """``[label, one value per record..., their median]``, or None if a record lacks it."""
    values = [r.get(key) for r in records]
    if any(v is None for v in values):
        return None
    return [label] + [fmt(v) for v in values] + [fmt(statistics.median(values))]
