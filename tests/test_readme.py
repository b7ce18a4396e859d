"""The README and the docs/ pages: their Python runs and prints what its comments say, and
their relative links lead to files that exist.

Every ```python block of README.md and docs/*.md runs, each in a fresh namespace in a
temporary directory; a fragment not meant to run is fenced ```python no-run. CHECKS adds
what a block promises beyond running.
"""
import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINKED_PAGES = PAGES + [ROOT / "README.zh-CN.md"]
FENCE = re.compile(r"^```(\S*)([^\n]*)\n(.*?)^```", re.S | re.M)


def python_blocks(page):
    """(heading, code) of each block to run: the heading is the section's (## or #) title."""
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        language, info, code = match.groups()
        if language == "python" and "no-run" not in info.split():
            headings = re.findall(r"^#+ (.+)$", text[:match.start()], flags=re.M)
            blocks.append((headings[-1], code))
    return blocks


BLOCKS = [(page, heading, code) for page in PAGES for heading, code in python_blocks(page)]


def run(code, page):
    namespace, out = {"__name__": "__readme__"}, io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(page), "exec"), namespace)
    return namespace, out.getvalue().splitlines()


def printed_as_commented(code, printed):
    """Each ``print(...)  # text`` line printed ``text`` (up to a double space, after
    which a comment may explain)."""
    expected = [line.split("#", 1)[1].strip().split("  ")[0] for line in code.splitlines()
                if line.lstrip().startswith("print(") and "#" in line]
    assert printed == expected


def lstm_trains(code, namespace, printed, directory):
    assert namespace["loss"].item() < 0.05
    assert (directory / "lstm.npz").exists()


def classifier_learns(code, namespace, printed, directory):
    assert printed[0] == "layers.0.weight"
    assert float(printed[1]) > 0.95  # three classes: chance is about 0.4
    assert len(namespace["model"].parameters()) == 4  # both layers registered


def drawings_written(code, namespace, printed, directory):
    assert printed == ["Digraph"]
    for name in ("lstm_ops.svg", "lstm_steps.svg", "lstm_rolled.svg"):
        assert (directory / name).read_text(encoding="utf-8").rstrip().endswith("</svg>")
    assert (directory / "lstm.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert (directory / "lstm.gif").read_bytes()[:6] == b"GIF89a"


CHECKS = {
    ("README.md", "Ten lines"): lambda code, ns, printed, d: printed_as_commented(code, printed),
    ("README.md", "An LSTM, trained"): lstm_trains,
    ("README.md", "A classifier"): classifier_learns,
    ("engine.md", "The engine: how backward works"):
        lambda code, ns, printed, d: printed_as_commented(code, printed),
    ("drawing.md", "Drawing the graph"): drawings_written,
}


@pytest.mark.parametrize("page, heading, code", BLOCKS,
                         ids=[f"{p.name}:{h}" for p, h, _ in BLOCKS])
def test_every_python_block_runs_and_keeps_its_promises(page, heading, code, tmp_path,
                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks write files (lstm.npz, drawings)
    namespace, printed = run(code, page)
    check = CHECKS.get((page.name, heading))
    if check is not None:
        check(code, namespace, printed, tmp_path)


def test_every_check_has_its_block():
    """A renamed heading must not silently drop what its block is checked for."""
    assert set(CHECKS) <= {(page.name, heading) for page, heading, _ in BLOCKS}


def prose(page):
    """The page's text without its code blocks: code is not a link or a heading."""
    return FENCE.sub("", page.read_text(encoding="utf-8"))


def relative_targets(page):
    """The page's Markdown links and images that are paths, not URLs, as (path, section)
    pairs; section is "" where the link names none."""
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", prose(page))
    return [tuple(t.split("#", 1)) if "#" in t else (t, "") for t in targets
            if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def relative_links(page):
    """The paths the page's relative links and images lead to."""
    return [path for path, _ in relative_targets(page)]


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda p: p.name)
def test_every_relative_link_leads_to_a_file(page):
    links = relative_links(page)
    assert links, f"{page.name} links nowhere: is the pattern still right?"
    missing = [t for t in links if not (page.parent / t).exists()]
    assert missing == [], f"{page.name} links to missing files: {missing}"


def heading_anchors(page):
    """The anchors GitHub gives the page's headings: lower case, punctuation dropped,
    spaces as hyphens."""
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^#+ (.+)$", prose(page), re.M)}


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda p: p.name)
def test_every_link_into_a_section_names_a_heading_of_its_page(page):
    missing = [f"{path}#{section}" for path, section in relative_targets(page)
               if section and path.endswith(".md")
               and section not in heading_anchors(page.parent / path)]
    assert missing == [], f"{page.name} links to sections that do not exist: {missing}"


def test_a_heading_gets_the_anchor_github_gives_it(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Speed at a glance\n\n## `mg.compile`: capture, plan\n", encoding="utf-8")
    assert heading_anchors(page) == {"speed-at-a-glance", "mgcompile-capture-plan"}


def test_the_english_and_chinese_front_pages_link_to_each_other():
    assert "README.zh-CN.md" in relative_links(ROOT / "README.md")
    assert "README.md" in relative_links(ROOT / "README.zh-CN.md")


def test_blocks_are_found_under_their_heading_and_no_run_is_skipped(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Top\n\n```python\na = 1\n```\n\n## Part\n\n```python no-run\nb = \n```\n"
                    "\n```bash\nls\n```\n\n```python\nc = 3\n```\n", encoding="utf-8")
    assert python_blocks(page) == [("Top", "a = 1\n"), ("Part", "c = 3\n")]
