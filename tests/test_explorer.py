"""mg.viz.explore: the page's data in Python, then the page itself in a real browser.

The browser is headless Chromium from Debian's ``chromium`` package, driven through
Selenium by Debian's ``chromium-driver``; ``./dev test`` installs both when missing. One
browser session serves every test of this file. Every check compares the page with what
the engine itself recorded (``mg.record_backward``) or with numpy, never with the page's
own data.
"""
import functools
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from PIL import Image

import minigrad as mg
from minigrad.timesteps import step_of
from minigrad.viz import steps_view, sweep
from builders import Regressor, lstm_loss

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1280, 800
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- graphs --------------------------------------------------------------------------------

# the loss of an LSTM and a head, the last step's output, x needing a gradient too
sweep_loss = functools.partial(lstm_loss, batch=2, x_grad=True, head=True)


def page_json(path):
    text = open(path, encoding="utf-8").read()
    block = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>',
                      text, re.DOTALL).group(1)
    return json.loads(block)


# -- the page's data, without a browser -----------------------------------------------------

def test_page_is_one_file_with_nothing_to_fetch(tmp_path):
    _, _, loss = sweep_loss()
    path = mg.viz.explore(loss, tmp_path / "page.html")
    text = open(path, encoding="utf-8").read()
    assert text.startswith("<!DOCTYPE html>")
    for fetch in ("<script src", "<link", "@import", "http://", "https://", "url("):
        # the SVGs name their XML namespaces, which are identifiers, not fetched
        hits = [m for m in re.finditer(re.escape(fetch), text)
                if "www.w3.org" not in text[m.start():m.start() + 40]]
        assert not hits, f"the page would fetch something: {fetch!r}"
    assert "<!--" not in text and "<?xml" not in text  # no prolog in the inlined SVGs


def test_explore_leaves_gradients_and_graph_as_they_were(tmp_path):
    model, x, loss = sweep_loss()
    before = np.full(model.head.weight.shape, 7.0)
    model.head.weight.grad = before.copy()
    mg.viz.explore(loss, tmp_path / "page.html")
    assert np.array_equal(model.head.weight.grad, before)
    assert model.lstm.l0.weight.grad is None and x.grad is None
    loss.backward()  # the graph was retained: a backward still runs through it
    assert model.lstm.l0.weight.grad is not None


def test_large_tensors_are_summarised_not_dumped():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 7, 50))
    s = sweep.summary(a)
    assert (s["heat"]["rows"], s["heat"]["cols"]) == (sweep.MAX_CELLS, sweep.MAX_CELLS)
    assert len(s["heat"]["codes"]) <= 4 * sweep.MAX_CELLS ** 2 // 3 + 4
    assert s["min"] == a.min() and s["max"] == a.max()
    assert s["mean"] == pytest.approx(a.mean()) and s["norm"] == pytest.approx(np.linalg.norm(a))
    small = sweep.summary(np.array([[1.0, -2.0], [0.5, 0.0]]))
    assert (small["heat"]["rows"], small["heat"]["cols"]) == (2, 2)
    codes = np.frombuffer(__import__("base64").b64decode(small["heat"]["codes"]), np.int8)
    assert codes.tolist() == [64, -127, 32, 0] and small["heat"]["scale"] == 2.0


def test_non_finite_values_survive_the_json():
    s = sweep.summary(np.array([1.0, np.nan, np.inf]))
    assert s["max"] == "nan" and s["norm"] == "nan"
    json.dumps(s, allow_nan=False)
    assert sweep.summary(np.array([-np.inf, 1.0]))["min"] == "-inf"


def test_each_parameter_gets_one_contribution_per_time_step(tmp_path):
    model, _, loss = sweep_loss(4)
    data = page_json(mg.viz.explore(loss, tmp_path / "page.html"))
    weight = next(t for t in data["tensors"] if t["name"] == "lstm.l0.weight")
    labels = [a[1] for a in weight["arrivals"]]
    assert labels == ["t3", "t2", "t1", "t0"]  # last step first
    final = weight["arrivals"][-1][3]
    before = 0.0
    for arrival in weight["arrivals"]:  # so far = the sum before + the latest contribution
        assert arrival[3]["mean"] == pytest.approx(before + arrival[4]["mean"])
        before = arrival[3]["mean"]
    loss.backward(retain_grads=True)
    assert final["norm"] == pytest.approx(np.linalg.norm(model.lstm.l0.weight.grad))


def test_state_series_are_those_of_step_grad_norms(tmp_path):
    _, _, loss = sweep_loss(4)
    data = page_json(mg.viz.explore(loss, tmp_path / "page.html"))
    loss.backward(retain_grads=True)
    expected = mg.step_grad_norms(loss)
    shown = {f"{s['layer']}/{s['name']}": [data["tensors"][i]["grad"]["norm"]
                                          for _, i, _ in s["points"]] for s in data["states"]}
    assert shown.keys() == expected.keys()
    for key, norms in expected.items():
        assert shown[key] == pytest.approx(list(norms))


def test_the_eight_step_addition_lstm_fits_in_two_megabytes(tmp_path):
    rng = np.random.default_rng(0)
    steps, hidden, batch = 8, 16, 64
    model = Regressor(hidden, 1, rng)
    x = mg.Tensor(rng.integers(0, 2, size=(batch, steps, 2)).astype(float), name="x")
    with mg.scope("lstm"):
        out, _ = model.lstm(x)
    loss = mg.nn.binary_cross_entropy_with_logits(
        model.head(out), mg.Tensor(rng.integers(0, 2, size=(batch, steps, 1)).astype(float)))
    path = mg.viz.explore(loss, tmp_path / "page.html")
    assert os.path.getsize(path) <= 2_000_000


def test_a_view_too_big_for_dot_draws_the_first_and_last_steps(tmp_path, monkeypatch):
    _, _, loss = sweep_loss(6)
    size = lambda **options: mg.viz.layout_size(mg.viz.fit(loss, "ops", **options))
    whole, two_and_two = size(), size(keep_steps=2)
    assert two_and_two < whole
    # A limit that the first and last two steps fit under, and the whole 6 steps do not:
    monkeypatch.setattr(mg.viz, "LAYOUT_LIMIT", (two_and_two + whole) // 2)
    with pytest.raises(ValueError, match="too big"):
        mg.viz.graph(loss, view="ops")
    data = page_json(mg.viz.explore(loss, tmp_path / "page.html"))
    assert data["views"]["ops"]["keep_steps"] == 2  # t0, t1, t4, t5 drawn
    assert data["views"]["steps"]["keep_steps"] is None
    assert len(data["sweep"]) > 6 * 15  # the timeline still covers the whole sweep


def test_one_explore_walks_the_graph_once(tmp_path, monkeypatch):
    """The sweep's topological order serves every view, the census and the time steps:
    one walk of the graph, where there were seven."""
    import minigrad.timesteps
    from minigrad.tensor import topological_order
    from minigrad.viz import guard, ops_view
    walks = []

    def counted(root):
        walks.append(root)
        return topological_order(root)
    for module in (minigrad.timesteps, guard, ops_view, sweep):
        monkeypatch.setattr(module, "topological_order", counted)
    _, _, loss = sweep_loss(8)
    mg.viz.explore(loss, tmp_path / "page.html")
    assert len(walks) == 1


@pytest.mark.parametrize("draw, suffix", [(mg.viz.explore, ".html"), (mg.viz.animate, ".gif")])
def test_a_graph_too_big_for_any_drawing_is_refused_before_the_sweep_runs(tmp_path,
                                                                          monkeypatch,
                                                                          draw, suffix):
    """Recording the sweep of a 5,000-op chain took seconds before the guard said no:
    the size is decided first, from the graph's order alone."""
    from minigrad.viz import animation, explorer

    def no_sweep(*args, **kwargs):
        raise AssertionError("the sweep was recorded for a graph the guard refuses")
    for module in (explorer, animation):
        monkeypatch.setattr(module, "record", no_sweep)
    y = mg.Tensor(np.ones(3), requires_grad=True, name="x")
    for _ in range(2500):
        y = mg.tanh(y) * 1.0001
    with pytest.raises(ValueError, match="too big for Graphviz"):
        draw(y.sum(), tmp_path / f"chain{suffix}")
    assert not (tmp_path / f"chain{suffix}").exists()


def test_names_that_look_like_html_cannot_break_the_pages_script(tmp_path):
    """'<!--' then '<script>' inside a script element changes how the parser reads the
    rest of the page (the page's own script was swallowed): no '<' may stand in the data."""
    a = mg.nn.Parameter(np.eye(2), name="<!--")
    b = mg.nn.Parameter(np.eye(2), name="<script></script>")
    h = mg.Tensor(np.ones((1, 2)))
    for t in range(2):
        with mg.scope(f"t{t}"):
            h = mg.tanh(h @ a @ b)
    path = mg.viz.explore(h.sum(), tmp_path / "page.html")
    text = open(path, encoding="utf-8").read()
    block = text.split('id="explorer-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block
    assert text.count("<script") == 2  # the data and the page's own script, nothing else
    names = json.dumps(page_json(path))
    assert "<!--" in names and "<script></script>" in names


def test_names_the_drawings_cannot_hold_are_shown_escaped_on_the_page(tmp_path):
    """The page shows a name as every drawing does (labels.shown): its SVGs parse as
    XML, and the panels' names and the title read like the drawings' labels."""
    import xml.etree.ElementTree as ET
    odd = "a\\Gb\x01\ud800\ufffe中"
    w = mg.nn.Parameter(np.eye(2), name=odd)
    h = mg.Tensor(np.ones((1, 2)))
    with mg.scope("l\x02"):
        for t in range(2):
            with mg.scope(f"t{t}"):
                h = mg.tanh(h @ w)
    path = mg.viz.explore(h.sum(), tmp_path / "page.html", title="t\x03")
    text = open(path, encoding="utf-8").read()  # no lone surrogate made it into UTF-8
    for svg in re.findall(r"<svg.*?</svg>", text, re.DOTALL):
        ET.fromstring(svg)
    data = page_json(path)
    shown = "a\\Gb\\x01\\ud800\\ufffe中"
    assert shown in [t["name"] for t in data["tensors"]]
    assert "l\\x02/t1" in [t["scope"] for t in data["tensors"]]
    assert data["title"] == "t\\x03" and "<title>t\\x03</title>" in text


@pytest.mark.parametrize("make, message", [
    (lambda loss: (loss, "page.svg"), "must end in .html"),
    (lambda loss: (loss.op.inputs[0], "page.html"), "one-element root"),
    (lambda loss: (mg.Tensor([1.0]), "page.html"), "requires grad"),
])
def test_bad_input_is_named(tmp_path, make, message):
    _, _, loss = sweep_loss(2)
    root, name = make(loss)
    with pytest.raises(ValueError, match=message):
        mg.viz.explore(root, tmp_path / name)


# -- the page in a browser ------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the whole file, with a fresh profile and no network."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if missing:
        pytest.fail(f"the explorer tests need headless Chromium: {', '.join(missing)} not "
                    f"found. `./dev test` installs Debian's chromium and chromium-driver "
                    f"(or run: apt-get install chromium chromium-driver)", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="minigrad-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--disable-default-apps", "--disable-extensions",
                     f"--window-size={WIDTH},{HEIGHT}", f"--user-data-dir={profile}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Recorded:
    """The page of ``sweep_loss()`` and, beside it, the sweep as the engine records it."""

    def __init__(self, directory):
        self.model, self.x, self.loss = sweep_loss()
        self.path = mg.viz.explore(self.loss, directory / "page.html")
        self.order = mg.tensor.topological_order(self.loss)
        with mg.record_backward() as sweep:
            self.loss.backward(retain_grads=True)
        self.sweep = list(sweep)
        self.index = {id(t): i for i, t in enumerate(self.order)}

    def current_op(self, pos):
        """Node id of the op whose backward ran at timeline position ``pos`` (>= 1)."""
        return f"op{self.index[id(self.sweep[pos - 1].tensor)]}"

    def filled(self, pos):
        """Node ids of the tensors holding a gradient once ``pos`` ops' backwards ran: the
        outputs of those ops (complete) and the leaves they sent a contribution to."""
        nodes = set()
        for step in self.sweep[:pos]:
            nodes.add(f"v{self.index[id(step.tensor)]}")
            nodes.update(f"v{self.index[id(t)]}" for t, grad in step.input_grads
                         if grad is not None and t.op is None)
        return nodes


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    recorded = Recorded(tmp_path_factory.mktemp("explorer"))
    browser.get("file://" + os.path.abspath(recorded.path))
    browser.get_log("browser")  # start the log of console messages from here
    show(browser, "ops")  # the page opens on the steps view; most checks use the ops view
    yield recorded
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"console errors on the page: {errors}"


def no_console_errors(browser):
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not errors, f"console errors on the page: {errors}"


def show(browser, view):
    browser.find_element("css selector", f'#view-buttons button[data-view="{view}"]').click()
    assert browser.find_element("tag name", "body").get_attribute("data-view") == view


def go(browser, pos):
    browser.execute_script(
        "const s = document.getElementById('slider'); s.value = arguments[0];"
        "s.dispatchEvent(new Event('input'));", pos)
    assert position(browser) == pos


def position(browser):
    return int(browser.find_element("tag name", "body").get_attribute("data-pos"))


def drawn(browser, css):
    """Titles (node ids) of the visible drawing's nodes matching ``css``."""
    return set(browser.execute_script(
        "return [...document.querySelectorAll('.drawing:not([hidden]) ' + arguments[0])]"
        ".map(g => g.querySelector('title').textContent);", css))


def test_page_loads_without_console_errors(browser, page):
    assert browser.title
    assert int(browser.find_element("id", "slider").get_attribute("max")) == len(page.sweep)
    no_console_errors(browser)


def test_each_step_highlights_the_op_the_engine_ran_and_fills_what_it_filled(browser, page):
    go(browser, 0)
    assert drawn(browser, "g.node.has-grad") == set()
    assert drawn(browser, "g.node.current") == set()
    n = len(page.sweep)
    for pos in sorted({1, 2, 3, n // 3, n // 2, n - 1, n}):
        go(browser, pos)
        assert drawn(browser, "g.node.current") == {page.current_op(pos)}, pos
        assert drawn(browser, "g.node.has-grad") == page.filled(pos), pos
    no_console_errors(browser)


def test_the_fill_of_each_tensor_is_its_gradient_norm_on_the_drawings_scale(browser, page):
    """The page colours a node as every other picture would (style.grad_colour)."""
    from minigrad.viz.style import grad_colour
    show(browser, "ops")
    go(browser, len(page.sweep))
    fills = dict(browser.execute_script(
        "return [...document.querySelectorAll('.drawing:not([hidden]) g.node.has-grad')]"
        ".map(g => [g.querySelector('title').textContent,"
        " g.querySelector('polygon, path, ellipse').getAttribute('fill')]);"))
    grad_range = page_json(page.path)["range"]
    assert len(fills) > 20
    for node, fill in fills.items():
        tensor = page.order[int(node[1:])]
        if tensor.op is not None:
            expected = grad_colour(np.linalg.norm(tensor.grad), grad_range) or "#ffffff"
            assert fill == expected, node


def test_arrow_keys_and_buttons_move_one_step(browser, page):
    from selenium.webdriver.common.keys import Keys

    go(browser, 5)
    body = browser.find_element("tag name", "body")
    for _ in range(3):
        body.send_keys(Keys.ARROW_RIGHT)
    assert position(browser) == 8
    body.send_keys(Keys.ARROW_LEFT)
    assert position(browser) == 7
    assert drawn(browser, "g.node.current") == {page.current_op(7)}
    browser.find_element("id", "back").click()
    assert position(browser) == 6
    browser.find_element("id", "last").click()
    assert position(browser) == len(page.sweep)
    browser.find_element("id", "first").click()
    assert position(browser) == 0


def test_play_runs_forward_and_pause_stops(browser, page):
    from selenium.webdriver.support.ui import WebDriverWait

    go(browser, 0)
    browser.find_element("id", "play").click()
    WebDriverWait(browser, 20).until(lambda b: position(b) >= 3)
    browser.find_element("id", "play").click()  # pause
    stopped = position(browser)
    assert drawn(browser, "g.node.current") == {page.current_op(stopped)}
    browser.execute_script("return new Promise(r => setTimeout(r, 600));")
    assert position(browser) == stopped


def test_switching_views_keeps_the_step(browser, page):
    names = [b.get_attribute("data-view")
             for b in browser.find_elements("css selector", "#view-buttons button")]
    assert names == list(mg.viz.VIEWS) and "steps" in names
    in_step = [k for k, s in enumerate(page.sweep) if step_of(s.tensor.scope)[1] is not None]
    pos = in_step[len(in_step) // 2] + 1  # an op in the middle of the time steps
    go(browser, pos)
    for name in names + ["ops"]:
        show(browser, name)
        assert position(browser) == pos
        assert len(drawn(browser, "g.node.current")) == 1
    show(browser, "steps")  # the step node holding the op, as the steps view names it
    meanings = steps_view.draw(page.loss).meanings
    op_index = page.index[id(page.sweep[pos - 1].tensor)]
    holder = [node for node, meaning in meanings.items()
              if op_index in meaning.get("tensors", ())]
    assert drawn(browser, "g.node.current") == set(holder) and len(holder) == 1
    # a step is filled once one of its tensors holds its gradient
    filled = {int(node[1:]) for node in page.filled(pos)}
    steps = {node for node, meaning in meanings.items() if meaning["kind"] == "step"
             and filled & set(meaning["tensors"])}
    assert {n for n in drawn(browser, "g.node.has-grad") if n.startswith("step")} == steps
    assert 0 < len(steps) < sum(m["kind"] == "step" for m in meanings.values())  # not all
    show(browser, "ops")
    assert drawn(browser, "g.node.current") == {page.current_op(pos)}


def test_a_link_opens_the_page_at_a_step_and_view(browser, page):
    browser.get("file://" + os.path.abspath(page.path) + "#pos=7&view=rolled")
    browser.refresh()  # a new hash alone does not load the page again
    assert position(browser) == 7
    assert browser.find_element("tag name", "body").get_attribute("data-view") == "rolled"
    show(browser, "ops")
    assert drawn(browser, "g.node.current") == {page.current_op(7)}
    no_console_errors(browser)


def shown_stats(browser, row):
    cells = browser.find_elements("css selector", f"#{row} td")
    return {c.get_attribute("data-stat"): c.text for c in cells}


def assert_stats_match(shown, array):
    array = np.asarray(array, dtype=np.float64)
    expected = {"min": array.min(), "max": array.max(), "mean": array.mean(),
                "norm": np.linalg.norm(array.ravel())}
    for key, value in expected.items():
        assert float(shown[key]) == pytest.approx(value, rel=5e-4, abs=1e-12), key


def click_node(browser, node_id):
    element = browser.execute_script(
        "return [...document.querySelectorAll('.drawing:not([hidden]) g.node')]"
        ".find(g => g.querySelector('title').textContent === arguments[0]);", node_id)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'});",
                           element)
    element.click()


def test_clicking_a_node_shows_its_statistics(browser, page):
    show(browser, "ops")
    go(browser, len(page.sweep))
    gate = next(i for i, t in enumerate(page.order) if t.name == "f" and t.scope.endswith("t1"))
    click_node(browser, f"v{gate}")
    assert browser.find_element("id", "detail-title").text == "f"
    facts = {e.get_attribute("data-fact"): e.text
             for e in browser.find_elements("css selector", "#detail-facts td[data-fact]")}
    assert facts["scope"] == "lstm/l0/t1" and facts["made by"] == "sigmoid"
    assert facts["shape"] == "(2, 3)" and facts["dtype"] == "float64"
    assert_stats_match(shown_stats(browser, "stats-value"), page.order[gate].data)
    assert_stats_match(shown_stats(browser, "stats-grad"), page.order[gate].grad)

    weight = page.index[id(page.model.lstm.l0.weight)]
    click_node(browser, f"v{weight}")
    assert browser.find_element("id", "detail-title").text == "lstm.l0.weight"
    assert_stats_match(shown_stats(browser, "stats-grad"), page.model.lstm.l0.weight.grad)
    assert browser.find_element("id", "heat-grad").size["width"] > 20
    go(browser, 0)  # before the sweep the weight has no gradient yet
    assert set(shown_stats(browser, "stats-grad").values()) == {"\u2013"}
    no_console_errors(browser)


def test_parameter_panel_counts_contributions_as_they_arrive(browser, page):
    weight = page.index[id(page.model.lstm.l0.weight)]
    arrivals = [k + 1 for k, s in enumerate(page.sweep)
                if any(t is page.model.lstm.l0.weight and g is not None
                       for t, g in s.input_grads)]
    assert len(arrivals) == 4  # one per time step
    click_node(browser, f"v{weight}")
    for count, pos in enumerate(arrivals, start=1):
        go(browser, pos)
        note = browser.find_element("id", "grad-note").text
        assert f"sum of {count} of its 4 contributions" in note
        assert drawn(browser, "g.node.arriving") >= {f"v{weight}"}


def screenshot(browser, element_id=None):
    image = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
    if element_id is not None:
        r = browser.find_element("id", element_id).rect
        image = image.crop((int(r["x"]), int(r["y"]), int(r["x"] + r["width"]),
                            int(r["y"] + r["height"])))
    return image


def test_screenshots_at_a_few_steps_are_not_blank(browser, page, tmp_path):
    n = len(page.sweep)
    for pos in (0, n // 2, n):
        go(browser, pos)
        whole = screenshot(browser)
        assert whole.size == (WIDTH, HEIGHT)
        graph = screenshot(browser, "graph")
        colours = graph.getcolors(maxcolors=1 << 20)
        assert len(colours) > 1 and graph.getextrema() != ((255, 255), (255, 255), (255, 255))
        if pos:  # the op being differentiated is outlined in pure red
            pixels = np.asarray(graph)
            assert np.any(np.all(pixels == (0xd5, 0x00, 0x00), axis=-1)), pos
        whole.save(tmp_path / f"explorer-{pos}.png")


def test_example_writes_the_page_and_the_gif(tmp_path):
    html, gif = tmp_path / "bptt.html", tmp_path / "bptt.gif"
    result = subprocess.run(
        [sys.executable, "examples/explore_graph.py", "--untrained", "--bits", "3",
         "--html", str(html), "--gif", str(gif)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"wrote {html}" in result.stdout and f"wrote {gif}" in result.stdout
    assert "an untrained LSTM" in page_json(html)["title"]
    with Image.open(gif) as image:
        assert image.n_frames == 3 + 2  # before, the ops after the steps, t2, t1, t0


def test_example_without_a_trained_model_says_how_to_train_one(tmp_path):
    result = subprocess.run(
        [sys.executable, "examples/explore_graph.py", "--load", str(tmp_path / "none.npz")],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "examples/binary_addition.py --out runs/addition" in result.stderr


def test_a_graph_without_time_steps_explores_too(browser, tmp_path):
    rng = np.random.default_rng(2)
    w = mg.nn.Parameter(rng.normal(size=(3, 2)))
    w.name = "w"
    loss = mg.tanh(mg.Tensor(rng.normal(size=(4, 3))) @ w).sum()
    path = mg.viz.explore(loss, tmp_path / "flat.html")
    order = mg.tensor.topological_order(loss)
    needing = {f"v{i}" for i, t in enumerate(order) if t.requires_grad}
    assert len(needing) == len(order) - 1
    browser.get("file://" + os.path.abspath(path))
    go(browser, 3)
    for view in mg.viz.VIEWS:  # steps and rolled fall back to the ops drawing
        show(browser, view)
        assert drawn(browser, "g.node.has-grad") == needing  # everything but the input
    assert not browser.find_element("id", "chart-box").is_displayed()
    no_console_errors(browser)
