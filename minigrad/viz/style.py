"""What every view of the graph shares: DOT escaping, styles, colours, the legend.

Each view (``ops_view``, ``steps_view``, ``rolled_view``) builds its DOT statements line by
line from these pieces, so a tensor, an op, a cluster and a gradient colour look the same
in every picture.
"""
import html
import math
import re

import numpy as np

RANKDIRS = ("TB", "LR", "BT", "RL")

# Roles of tensor nodes: (fill, border). Fills are light so black text stays readable.
ROLES = {
    "parameter": ("#c7e9c0", "#238b45"),
    "input": ("#c6dbef", "#2171b5"),
    "output": ("#dadaeb", "#6a51a3"),
    "intermediate": ("#f7f7f7", "#969696"),
}
OP_STYLE = {"shape": "box", "style": "rounded,filled", "fillcolor": "#eeeeee",
            "color": "#bdbdbd", "fontsize": "9", "height": "0.2", "margin": "0.05,0.02"}
TENSOR_STYLE = {"shape": "record", "style": "filled", "fontsize": "10", "height": "0.25"}
CLUSTER_STYLE = {"style": "dashed,rounded", "color": "#737373", "fontsize": "12",
                 "labeljust": "l"}
ELIDED_STYLE = {"shape": "box", "style": "dashed,filled", "fillcolor": "#ffffff",
                "color": "#636363", "fontsize": "12"}
NO_GRAD_FILL = "#ffffff"
# Sequential scale for log10 of gradient norms, pale (small) to dark red (large):
# the nine steps of ColorBrewer's YlOrRd, interpolated linearly in between.
GRAD_SCALE = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a",
              "#e31a1c", "#bd0026", "#800026")
MAX_DETAIL = 24  # op details longer than this ('[array, :, 0:8]' ...) are left out


# -- escaping -----------------------------------------------------------------------------
# Inside a quoted DOT string only \" is an escape of the DOT lexer; Graphviz then reads
# \n, \l, \r as line breaks and \\ as one backslash. Record labels are parsed once more
# first: { } | < > split fields and ports unless written \{ \} \| \< \>.

def _escape(text):
    """``text`` as the inside of a quoted DOT label that shows exactly ``text``."""
    return (str(text).replace("\\", "\\\\").replace('"', '\\"')
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def _escape_record(text):
    """Like ``_escape`` for one field of a record label: also protect { } | < >.
    (Runs of spaces still collapse to one there.)"""
    return re.sub(r"([{}|<>])", r"\\\1", _escape(text))


def _attrs(attributes):
    """``[key="value" ...]``; values are already escaped (labels) or plain words."""
    return "[" + " ".join(f'{key}="{value}"' for key, value in attributes.items()) + "]"


# -- colours ------------------------------------------------------------------------------

def _rgb(hex_colour):
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def _scale_colour(fraction):
    """The colour at ``fraction`` in [0, 1] along GRAD_SCALE."""
    position = min(max(fraction, 0.0), 1.0) * (len(GRAD_SCALE) - 1)
    low = min(int(position), len(GRAD_SCALE) - 2)
    weight = position - low
    a, b = _rgb(GRAD_SCALE[low]), _rgb(GRAD_SCALE[low + 1])
    return "#" + "".join(f"{round(x + (y - x) * weight):02x}" for x, y in zip(a, b))


def _is_dark(hex_colour):
    """True when white text reads better than black on this fill (relative luminance)."""
    r, g, b = (c / 255 for c in _rgb(hex_colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.45


def _grad_norms(order):
    """{index in order: Frobenius norm of .grad} for tensors holding a gradient."""
    norms = {}
    for index, tensor in enumerate(order):
        if tensor.grad is not None:
            norms[index] = float(np.linalg.norm(np.asarray(tensor.grad, np.float64).ravel()))
    return norms


def _log_range(norms):
    """(low, high) of log10 over the finite, non-zero norms, or None if there are none."""
    logs = [math.log10(n) for n in norms.values() if n > 0 and math.isfinite(n)]
    return (min(logs), max(logs)) if logs else None


def _legend(roles, grad_range, has_no_grad, has_elided):
    """An HTML-like table explaining the colours and stating the range of the scale."""
    rows = []

    def row(swatch, text):
        rows.append(f'<tr><td {swatch} width="16"> </td>'
                    f'<td align="left">{html.escape(text)}</td></tr>')

    part = "fill" if grad_range is None else "border"
    for role, (fill, border) in ROLES.items():
        if role in roles:
            row(f'bgcolor="{fill if grad_range is None else border}"', f"{role} ({part})")
    row(f'bgcolor="{OP_STYLE["fillcolor"]}"', "op")
    if has_elided:
        row('bgcolor="#ffffff" style="dashed"', "time steps not drawn")
    if grad_range is not None:
        low, high = grad_range
        rows.append('<tr><td colspan="2" align="left"><b>log10 |grad| (fill)</b></td></tr>')
        for k in range(4, -1, -1):
            row(f'bgcolor="{_scale_colour(k / 4)}"', f"{low + (high - low) * k / 4:+.1f}")
        rows.append(f'<tr><td colspan="2" align="left">range {low:+.1f} to {high:+.1f}</td>'
                    '</tr>')
        if has_no_grad:
            row(f'bgcolor="{NO_GRAD_FILL}"', "no or zero gradient")
    return ('<<table border="0" cellborder="1" cellspacing="2" cellpadding="2">'
            '<tr><td colspan="2"><b>legend</b></td></tr>' + "".join(rows) + "</table>>")


