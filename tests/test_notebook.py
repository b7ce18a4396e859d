"""The tutorial notebook runs top to bottom without an error, and is committed with its
outputs, so that it reads on a code host without running it."""
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "tutorial.ipynb"


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def text_of(cell, stream="stdout"):
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.output_type == "stream" and o.name == stream)


def test_the_committed_notebook_holds_the_outputs_of_one_clean_run():
    cells = code_cells(nbformat.read(NOTEBOOK, as_version=4))
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1))
    assert sum(bool(cell.outputs) for cell in cells) >= len(cells) - 1  # all but the imports
    kinds = {o.output_type for cell in cells for o in cell.outputs}
    assert "error" not in kinds
    shown = {mime for cell in cells for o in cell.outputs for mime in o.get("data", {})}
    assert {"image/svg+xml", "image/png", "image/gif"} <= shown  # graphs, plots, the sweep


def test_the_notebook_runs_top_to_bottom():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "examples")}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    cells = code_cells(notebook)
    assert not any(text_of(cell, "stderr") for cell in cells)  # no warnings either
    printed = "\n".join(text_of(cell) for cell in cells)
    assert "de/da = b = -3.0, de/db = a = 2.0, de/dc = 1.0" in printed
    assert "exact match on the held-out 8-bit pairs: 100.00%" in printed
    assert "T = 2  FAULTY numpy BPTT" in printed
    verdicts = re.findall(r"T = (\d)  (minigrad|FAULTY) .* (pass|FAIL)", printed)
    assert sorted(verdicts) == [("2", "FAULTY", "pass"), ("2", "minigrad", "pass"),
                                ("3", "FAULTY", "FAIL"), ("3", "minigrad", "pass"),
                                ("4", "FAULTY", "FAIL"), ("4", "minigrad", "pass")]
