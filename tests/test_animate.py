"""mg.viz.animate: the GIF of the backward sweep, frame by frame."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import minigrad as mg
from minigrad.timesteps import step_of
from minigrad.viz import animation
from builders import lstm_loss

RED = np.array([0xd5, 0x00, 0x00])


def runs_of_steps(loss):
    """How many runs of consecutive backward ops share a (layer, time step), as the
    engine records them: one frame each."""
    with mg.record_backward() as sweep:
        loss.backward(retain_graph=True)
    places = [step_of(s.tensor.scope) for s in sweep]
    return 1 + sum(a != b for a, b in zip(places, places[1:]))


def frames(path):
    with Image.open(path) as gif:
        out = []
        for k in range(gif.n_frames):
            gif.seek(k)
            out.append((np.asarray(gif.convert("RGB")), gif.info.get("duration")))
        return out


@pytest.fixture(scope="module")
def gif(tmp_path_factory):
    model, _, loss = lstm_loss(4, batch=2, x_grad=True, head=True)
    path = mg.viz.animate(loss, tmp_path_factory.mktemp("gif") / "sweep.gif", title="test")
    return model, loss, path


def test_one_frame_before_the_sweep_and_one_per_time_step(gif):
    model, loss, path = gif
    pictures = frames(path)
    # before the sweep; the loss and the ops after the steps; t3, t2, t1, t0
    assert len(pictures) == 1 + runs_of_steps(loss) == 6


def test_frames_fit_a_readme_column(gif):
    _, _, path = gif
    with Image.open(path) as image:
        assert image.size[0] == animation.WIDTH
        assert 150 < image.size[1] < 700


def test_frames_show_the_sweep_moving(gif):
    _, _, path = gif
    pictures = [p for p, _ in frames(path)]
    red = [int(np.all(np.abs(p.astype(int) - RED) <= 12, axis=-1).sum()) for p in pictures]
    assert red[0] == 0  # before the sweep nothing is being differentiated
    assert all(count > 0 for count in red[1:])
    for before, after in zip(pictures, pictures[1:]):
        assert not np.array_equal(before, after)
    white = [int(np.all(p == 255, axis=-1).sum()) for p in pictures]
    assert white[-1] < white[0]  # the steps fill in as the gradient reaches them


def test_keep_steps_leaves_the_middle_steps_out_of_the_drawing(tmp_path):
    _, _, loss = lstm_loss(6, batch=2, x_grad=True, head=True)
    whole = frames(mg.viz.animate(loss, tmp_path / "whole.gif"))
    kept = frames(mg.viz.animate(loss, tmp_path / "kept.gif", keep_steps=1))
    assert len(kept) == len(whole)  # still one frame per step of the sweep
    assert kept[0][0].shape[1] == whole[0][0].shape[1] == animation.WIDTH
    # the middle steps are one marker node: the drawing is not the same
    assert not np.array_equal(kept[-1][0][:200], whole[-1][0][:200])


def test_first_and_last_frames_stay_longer(gif):
    durations = [d for _, d in frames(gif[2])]
    assert durations[0] > durations[1] and durations[-1] > durations[1]


def test_gradients_are_left_as_they_were(tmp_path):
    model, _, loss = lstm_loss(2, batch=2, x_grad=True, head=True)
    mg.viz.animate(loss, tmp_path / "sweep.gif")
    assert model.lstm.l0.weight.grad is None
    loss.backward()  # the graph was retained


def test_bad_input_is_named(tmp_path):
    _, _, loss = lstm_loss(2, batch=2, x_grad=True, head=True)
    with pytest.raises(ValueError, match="must end in .gif"):
        mg.viz.animate(loss, tmp_path / "sweep.png")
    with pytest.raises(ValueError, match="no parameter named 'nope'.*lstm.l0.weight"):
        mg.viz.animate(loss, tmp_path / "sweep.gif", parameter="nope")
    with pytest.raises(ValueError, match="view must be one of"):
        mg.viz.animate(loss, tmp_path / "sweep.gif", view="sideways")


def test_missing_pillow_says_how_to_install_it(tmp_path, monkeypatch):
    _, _, loss = lstm_loss(2, batch=2, x_grad=True, head=True)
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(RuntimeError, match="pip install Pillow"):
        mg.viz.animate(loss, tmp_path / "sweep.gif")


def test_a_chinese_title_is_written_with_a_font_that_has_it(tmp_path):
    title = "反向传播 (backpropagation)"
    chosen = animation.font_file(title)
    assert chosen != animation.FONT  # DejaVu Sans has no Chinese
    covering = subprocess.run(["fc-list", ":charset=53cd 5411 4f20 64ad", "file"],
                              capture_output=True, text=True).stdout
    assert chosen in covering
    assert animation.font_file("loss: |grad| → 0.5") == animation.FONT
    _, _, loss = lstm_loss(2, batch=2, x_grad=True, head=True)
    mg.viz.animate(loss, tmp_path / "sweep.gif", title=title)


@pytest.mark.parametrize("text", ["\r\n", "a\rb", "x\x01\ud800y"])
def test_line_breaks_and_control_characters_in_scopes_names_and_titles(tmp_path, text):
    """The captions carry the layer's scope and the parameter's name, written by Pillow,
    which failed on a carriage return ('raqm_layout() failed'); a title of several lines
    gets a line of room each, above the caption."""
    h = mg.Tensor(np.ones((1, 2)))
    w = mg.nn.Parameter(np.eye(2) * 0.5, name=f"w{text}")
    with mg.scope(text):
        for t in range(3):
            with mg.scope(f"t{t}"):
                h = mg.tanh(h @ w)
    path = mg.viz.animate(h.sum(), tmp_path / "sweep.gif", title=f"one{text}two")
    one_line_title = frames(mg.viz.animate(h.sum(), tmp_path / "plain.gif", title="one"))
    assert len(frames(path)) == 5  # before, the ops after the steps, t2, t1, t0
    lines = animation.shown(f"one{text}two").count("\n") + 1
    assert frames(path)[0][0].shape[0] == one_line_title[0][0].shape[0] + 24 * (lines - 1)


def test_a_title_no_installed_font_has_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(animation, "_fonts_covering", lambda codes: [])
    _, _, loss = lstm_loss(2, batch=2, x_grad=True, head=True)
    with pytest.raises(RuntimeError, match="(?s)反.*fonts-noto-cjk or fonts-wqy-zenhei"):
        mg.viz.animate(loss, tmp_path / "sweep.gif", title="反向")


@pytest.mark.parametrize("picture", ["graph", "explore", "animate"])
def test_a_compiled_steps_loss_says_it_has_no_graph_to_draw(tmp_path, picture):
    w = mg.nn.Parameter(np.ones((2, 2)), name="w")
    step = mg.compile(lambda x: ((x @ w) ** 2).sum())
    loss = step(np.ones((1, 2)))
    draw = {"graph": lambda: mg.viz.graph(loss),
            "explore": lambda: mg.viz.explore(loss, tmp_path / "page.html"),
            "animate": lambda: mg.viz.animate(loss, tmp_path / "sweep.gif")}[picture]
    with pytest.raises(RuntimeError, match="mg.compile"):
        draw()
