"""An animated GIF of the backward sweep, for places where a page cannot run (a README).

One frame per time step of the sweep: the steps view of the graph (laid out by ``dot``,
so it is the drawing the explorer shows), with each step filled once the sweep has
reached it, by the size of its largest gradient so far, and the step being
differentiated outlined in red. Under the drawing, one parameter's gradient is drawn as
the sum it is: one bar per time step, each bar appearing when that step's contribution
arrives, last step first. The fills follow the same rule as the explorer's steps view.

Frames are rendered by ``dot -Tpng`` from the same DOT text with only fill and outline
attributes added at the end; the layout, which depends on the labels and edges alone,
is the same in every frame. Pillow assembles them (``pip install Pillow``; it comes
with matplotlib).
"""
import functools
import io
import math
import os
import pathlib
import shutil
import subprocess

from .files import MISSING_DOT, run_dot, write_atomically
from .guard import VIEWS, fit
from .labels import one_line, shown
from .style import NO_GRAD_FILL, grad_colour, is_dark, scale_colour
from .sweep import finite, record, sweep_order

WIDTH = 800  # pixels: the width of a README column
FONT = "DejaVuSans.ttf"
CJK_FONTS = ("Debian's or Ubuntu's fonts-noto-cjk or fonts-wqy-zenhei (apt-get install "
             "fonts-noto-cjk); ./dev test installs one")
CURRENT = "#d50000"


def animate(root, path, *, view="steps", parameter=None, title=None, keep_steps=None,
            frame_ms=700):
    """Write a GIF of the backward sweep from ``root`` (a one-element loss) to ``path``.

    view       the drawing to animate: "steps" (default) or any other of ``mg.viz.VIEWS``.
    parameter  the name of the parameter whose per-step contributions are drawn under
               the graph (default: the one that receives the most of them).
    keep_steps draw only the first and last ``keep_steps`` time steps (long sequences).
    frame_ms   how long each frame shows; the first and last frames stay longer.

    The sweep is recorded as in ``mg.viz.explore``: the graph is retained and every
    ``.grad`` is left as it was. Returns ``path``.
    """
    try:
        from PIL import Image
    except ImportError:
        raise RuntimeError("mg.viz.animate needs Pillow to write GIFs: pip install Pillow "
                           "(it is part of minigrad's 'examples' extra)") from None
    if pathlib.Path(path).suffix.lower() != ".gif":
        raise ValueError(f"animate writes a GIF: {os.fspath(path)!r} must end in .gif")
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(map(repr, VIEWS))}, got {view!r}")
    if shutil.which("dot") is None:
        raise RuntimeError(MISSING_DOT.format(suffix=".gif"))
    order = sweep_order(root, "animate")
    drawing = fit(root, view, keep_steps=keep_steps, order=order)  # or refuse, before the sweep
    sweep = record(root, "animate", order)
    picked = _parameter(sweep, parameter)
    fonts = Fonts("".join([shown(title or "")] + [f"{t.name or ''}{t.scope}"
                                                  for t in sweep.tensors]))
    frames = []
    since = -1  # the entry of the frame before: what arrived after it is new
    for k, caption in _moments(sweep):
        png = run_dot(_frame_drawing(drawing, sweep, k).source, "png", ".gif")
        picture = Image.open(io.BytesIO(png)).convert("RGB")
        frames.append(_frame(picture, sweep, picked, (since, k), caption, title, fonts))
        since = k
    width = max(f.width for f in frames)
    height = max(f.height for f in frames)
    frames = [_padded(f, width, height) for f in frames]
    durations = [frame_ms] * len(frames)
    durations[0], durations[-1] = 2 * frame_ms, 4 * frame_ms
    buffer = io.BytesIO()
    palette = [f.quantize(colors=255, method=Image.Quantize.MEDIANCUT) for f in frames]
    palette[0].save(buffer, format="GIF", save_all=True, append_images=palette[1:],
                    duration=durations, loop=0, disposal=1)
    write_atomically(path, buffer.getvalue())
    return path


# -- which moments of the sweep become frames -----------------------------------------------

def _moments(sweep):
    """[(sweep entry k, caption)]: before the sweep (k = -1), then the end of each run of
    entries in one time step, the ops after the steps first, then t7, t6, ... t0, and the
    end of the sweep."""
    entries = sweep.entries
    moments = [(-1, "Before backward: the forward pass built the graph; no gradients yet.")]
    for k in range(len(entries)):
        following = k + 1 if k + 1 < len(entries) else None
        if following is not None and sweep.place(following) == sweep.place(k):
            continue
        layer, t = sweep.place(k)
        if t is None:
            text = "Backward starts at the loss" + (" and the ops after the steps" if
                                                    any(e.step for e in entries) else "")
        else:
            where = one_line(layer) + "/" if layer else ""
            text = f"Backward through {where}t{t}: every op of step t{t} done"
        if following is None:
            text = "Backward done: every gradient is complete"
        moments.append((k, text))
    return moments


# -- the drawing of one frame ---------------------------------------------------------------

def _frame_drawing(drawing, sweep, k):
    """``drawing`` with fills and the outline of sweep entry k added at the end: a node
    declared again keeps its place and takes the new attributes."""
    norms = {}
    for i, node in enumerate(drawing.node_of):
        if node is None:
            continue
        norm = sweep.tensors[i].grad_norm_at(k)
        if norm is not None and (node not in norms or norms[node] is None or norm > norms[node]):
            norms[node] = norm
        norms.setdefault(node, None)
    meanings = drawing.meanings
    lines = []
    for node, norm in norms.items():
        fill = grad_colour(norm, sweep.grad_range) or NO_GRAD_FILL
        font = "#ffffff" if is_dark(fill) else "#000000"
        # the marker of steps left out is drawn unfilled: it needs the style to show one
        style = ' style="dashed,rounded,filled"' if meanings.get(node, {}).get("kind") \
            == "hidden" else ""
        lines.append(f'\t{node} [fillcolor="{fill}" fontcolor="{font}"{style}]\n')
    if k >= 0:
        i = sweep.entries[k].tensor
        current = drawing.op_node_of[i] or drawing.node_of[i]
        if current is not None:
            lines.append(f'\t{current} [color="{CURRENT}" penwidth="4"]\n')
    # The frame has a legend of its own: the drawing's shrinks to an invisible point
    # (other statements, such as a rank, may still name it).
    lines.append('\tlegend [label="" shape="point" style="invis" width="0" height="0"]\n')
    frame = drawing.digraph.copy()
    frame.body = list(frame.body) + lines
    frame.graph_attr["dpi"] = "96"
    return frame


# -- the frame around the drawing -----------------------------------------------------------

def _parameter(sweep, name):
    """Index of the parameter whose contributions are drawn."""
    candidates = sweep.parameters
    if name is not None:
        found = [i for i in candidates if sweep.tensors[i].name == shown(name)]
        if not found:
            names = ", ".join(str(sweep.tensors[i].name) for i in candidates)
            raise ValueError(f"no parameter named {name!r} in the graph; it has {names}")
        return found[0]
    if not candidates:
        return None
    return max(candidates, key=lambda i: (len({a.step for a in sweep.tensors[i].arrivals}),
                                          -candidates.index(i)))


class Fonts:
    """The frame's fonts: one file that has every character the frames write."""

    def __init__(self, text):
        self.file = font_file(text)

    def __call__(self, size, bold=False):
        from PIL import ImageFont
        name = self.file.replace(".ttf", "-Bold.ttf") if bold and self.file == FONT \
            else self.file
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            return ImageFont.load_default(size=size)


def font_file(text):
    """A font that has every character of ``text``: DejaVu Sans (the drawings' own
    look) when it has them, else one that fontconfig (``fc-list``) finds installed.

    RuntimeError naming the characters and a package to install when no font has them:
    a GIF of empty boxes says nothing. Without fontconfig, DejaVu Sans.
    """
    needed = tuple(sorted({ord(c) for c in text if ord(c) > 0x7e}))
    if not needed or shutil.which("fc-list") is None:
        return FONT
    files = _fonts_covering(needed)
    if not files:
        missing = [chr(c) for c in needed if not _fonts_covering((c,))]
        shown_missing = " ".join(missing[:12]) + (" ..." if len(missing) > 12 else "")
        raise RuntimeError(
            f"no installed font has every character of the GIF's title and names (none has "
            f"{shown_missing or 'them all at once'}); install one that has them, for "
            f"Chinese, Japanese or Korean {CJK_FONTS}")
    return FONT if any(os.path.basename(f) == FONT for f in files) else files[0]


@functools.lru_cache(maxsize=64)
def _fonts_covering(codes):
    """The font files fontconfig lists as having every code point in ``codes``."""
    pattern = ":charset=" + " ".join(f"{c:x}" for c in codes)
    done = subprocess.run(["fc-list", pattern, "file"], capture_output=True, text=True)
    return sorted(line.split(":")[0].strip() for line in done.stdout.splitlines()
                  if line.strip())


def _frame(picture, sweep, picked, span, caption, title, fonts):
    """The drawing scaled to WIDTH, a caption above, the parameter's bars below; the
    frame shows the sweep after entry k, where ``span`` = (entry of the frame before, k)."""
    k = span[1]
    from PIL import Image, ImageDraw

    if picture.width > WIDTH - 20:
        scale = (WIDTH - 20) / picture.width
        picture = picture.resize((WIDTH - 20, round(picture.height * scale)), Image.LANCZOS)
    title = shown(title) if title else None
    head = 34 + 24 * title.count("\n") + 24 if title else 34  # 24 px a title line
    bars, foot = 150 if picked is not None else 0, 26
    frame = Image.new("RGB", (WIDTH, head + picture.height + bars + foot), "#ffffff")
    draw = ImageDraw.Draw(frame)
    y = 6
    if title:
        draw.multiline_text((10, y), title, fill="#222222", font=fonts(17, bold=True),
                            spacing=24 - 17)
        y += 24 * (title.count("\n") + 1)
    step = f"sweep step {k + 1} of {len(sweep.entries)}" if k >= 0 else "sweep step 0"
    draw.text((WIDTH - 10, 8), step, fill="#666666", font=fonts(13), anchor="ra")
    draw.text((10, y), caption, fill=CURRENT if k >= 0 else "#222222", font=fonts(15))
    _ramp(draw, sweep.grad_range, WIDTH - 10, frame.height - foot + 6, fonts)
    frame.paste(picture, ((WIDTH - picture.width) // 2, head))
    if picked is not None:
        _bars(draw, sweep.tensors[picked], span, head + picture.height + 4, fonts)
    return frame


def _ramp(draw, grad_range, right, top, fonts):
    """The fill scale, right-aligned at ``right``: what the colours of the steps mean."""
    font = fonts(12)
    low, high = grad_range
    text = f"fill: the largest |grad| in a step, from 1e{low:.1f}"
    end = f"1e{high:.1f}"
    x = right - draw.textlength(end, font=font)
    draw.text((x, top), end, fill="#444444", font=font)
    x -= 110
    for j in range(100):
        draw.line((x + j, top + 1, x + j, top + 13), fill=scale_colour(j / 99))
    draw.rectangle((x, top + 1, x + 99, top + 13), outline="#999999")
    draw.text((x - 6, top), text, fill="#444444", font=font, anchor="ra")


def _bars(draw, parameter, span, top, fonts):
    """One bar per time step: the norm of that step's contribution to ``parameter``'s
    gradient (a ``sweep.Record``), drawn once it has arrived (in red in the frame it
    arrives in); outlines show the ones still to come."""
    since, k = span
    finals, now, latest, fresh = {}, {}, None, set()
    for arrival in parameter.arrivals:
        finals[arrival.step] = finite(arrival.step_norm)
        if arrival.entry <= k:
            now[arrival.step] = finite(arrival.step_norm)
            latest = arrival
            if arrival.entry > since:
                fresh.add(arrival.step)
    labels = sorted(finals, key=lambda x: (x is None, int(x[1:]) if x else 0))
    total = parameter.arrivals[-1].so_far["norm"] if parameter.arrivals else 0.0
    so_far = latest.so_far["norm"] if latest else 0.0
    draw.text((10, top), f"{one_line(parameter.name)}: its gradient is the sum of one "
              f"contribution per time step", fill="#222222", font=fonts(14, bold=True))
    draw.text((WIDTH - 10, top), f"|grad| so far {so_far:.3g} of {total:.3g}",
              fill="#444444", font=fonts(13), anchor="ra")
    peak = max([v for v in finals.values() if math.isfinite(v)] or [1.0]) or 1.0
    base, height = top + 118, 90
    slot = (WIDTH - 20) / max(len(labels), 1)
    for j, label in enumerate(labels):
        x0 = 10 + j * slot + slot * 0.2
        x1 = x0 + slot * 0.6
        full = height * min(finals[label] / peak, 1.0)
        draw.rectangle((x0, base - full, x1, base), outline="#bbbbbb")
        if label in now:
            bar = height * min(now[label] / peak, 1.0)
            draw.rectangle((x0, base - bar, x1, base),
                           fill=CURRENT if label in fresh else "#fd8d3c")
        draw.text(((x0 + x1) / 2, base + 4), label or "outside the steps", fill="#444444",
                  font=fonts(12), anchor="ma")


def _padded(frame, width, height):
    from PIL import Image

    if frame.size == (width, height):
        return frame
    canvas = Image.new("RGB", (width, height), "#ffffff")
    canvas.paste(frame, (0, 0))
    return canvas
