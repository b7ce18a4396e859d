"""What every view of the graph shares: how a tensor, an op and a gradient look and are
named (roles, styles, the colour scale, legends, operand names), and the one place that
imports the graphviz package. (How text is written for DOT is ``labels``.)

Each view (``ops_view``, ``steps_view``, ``rolled_view``) builds its DOT statements line by
line from these pieces, so a tensor, an op, a cluster and a gradient colour look the same
in every picture, and in the explorer and the GIF.
"""
import math

from ..nn import Parameter
from ..timesteps import norm
from .labels import html_text

RANKDIRS = ("TB", "LR", "BT", "RL")

# Roles of tensor nodes: (fill, border). Fills are light so black text stays readable.
ROLES = {
    "parameter": ("#c7e9c0", "#238b45"),
    "input": ("#c6dbef", "#2171b5"),
    "output": ("#dadaeb", "#6a51a3"),
    "intermediate": ("#f7f7f7", "#969696"),
}
OP_STYLE = {"shape": "box", "style": "rounded,filled", "fillcolor": "#eeeeee",
            "color": "#bdbdbd", "fontsize": "9", "height": "0.2", "width": "0.3",
            "margin": "0.05,0.02"}
# A tensor is a box around an HTML-like table of its fields (name, shape, value, |grad|).
# Not a "record": dot cannot lay out some edges between records ("flat edge between
# adjacent nodes one of which has a record shape ... lost edge") and stops.
TENSOR_STYLE = {"shape": "box", "style": "filled", "fontsize": "10", "height": "0.2",
                "width": "0.3", "margin": "0"}
PORT_FONT = '<font point-size="7" color="#737373">{}</font>'  # operand names a, b, 0, 1
CLUSTER_STYLE = {"style": "dashed,rounded", "color": "#737373", "fontsize": "12",
                 "labeljust": "l"}
ELIDED_STYLE = {"shape": "box", "style": "dashed,filled", "fillcolor": "#ffffff",
                "color": "#636363", "fontsize": "12"}
NO_GRAD_FILL = "#ffffff"
NO_GRAD_NOTE = "no gradient"
EDGE_GREY = "#525252"  # edges of the steps and rolled views
# Sequential scale for log10 of gradient norms, pale (small) to dark red (large):
# the nine steps of ColorBrewer's YlOrRd, interpolated linearly in between.
GRAD_SCALE = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a",
              "#e31a1c", "#bd0026", "#800026")
MAX_DETAIL = 24  # op details longer than this ('[array, :, 0:8]' ...) are left out

MISSING_GRAPHVIZ = ("drawing a graph needs the graphviz Python package, which is not "
                    "installed: pip install graphviz (and Graphviz's dot program to render "
                    "pictures: apt-get install graphviz, brew install graphviz or conda "
                    "install graphviz)")


def digraph(name, body, graph_attr, node_attr=None, edge_attr=None):
    """A ``graphviz.Digraph`` of the DOT statements ``body`` (one per line).

    The graphviz package is imported here, when a drawing is made, so that minigrad
    itself imports without it; ImportError saying how to install it otherwise.
    """
    try:
        import graphviz
    except ImportError:
        raise ImportError(MISSING_GRAPHVIZ) from None
    return graphviz.Digraph(name=name, body=["\t" + line + "\n" for line in body],
                            graph_attr=graph_attr, node_attr=node_attr or {},
                            edge_attr=edge_attr or {})


# -- colours ------------------------------------------------------------------------------

def _rgb(hex_colour):
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def scale_colour(fraction):
    """The colour at ``fraction`` in [0, 1] along GRAD_SCALE."""
    position = min(max(fraction, 0.0), 1.0) * (len(GRAD_SCALE) - 1)
    low = min(int(position), len(GRAD_SCALE) - 2)
    weight = position - low
    a, b = _rgb(GRAD_SCALE[low]), _rgb(GRAD_SCALE[low + 1])
    return "#" + "".join(f"{round(x + (y - x) * weight):02x}" for x, y in zip(a, b))


def scale_steps(low, high, count=5):
    """(fraction of the scale, label) for ``count`` evenly spaced log10 values from high
    to low, with as many decimals as it takes (up to 3) for the labels to differ: a
    narrow range at one decimal read '+0.5' five times. Equal labels are given once.
    Every view's legend labels its scale with this, so the views agree."""
    fractions = [k / (count - 1) for k in range(count - 1, -1, -1)]
    def labels(digits):
        return [f"{low + (high - low) * f:+.{digits}f}" for f in fractions]

    for digits in (1, 2, 3):
        texts = labels(digits)
        if len(set(texts)) == count:
            break
    else:  # all but equal: one decimal, each label once
        texts = labels(1)
    shown = {}
    for fraction, text in zip(fractions, texts):
        shown.setdefault(text, fraction)
    return [(fraction, text) for text, fraction in shown.items()]


def is_dark(hex_colour):
    """True when white text reads better than black on this fill (relative luminance)."""
    r, g, b = (c / 255 for c in _rgb(hex_colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.45


def grad_norm(tensor):
    """The norm of ``tensor.grad`` (``timesteps.norm``), or None without one."""
    return None if tensor.grad is None else norm(tensor.grad)


def grad_colour(value, grad_range):
    """The scale's colour for the gradient norm ``value`` on ``grad_range`` (log10 low,
    high); None for no (or a zero) gradient, which lies below every colour."""
    if value is None or value == 0:
        return None
    fraction = 1.0  # inf and nan take the darkest colour: they must not go unseen
    if math.isfinite(value) and grad_range is not None and grad_range[1] > grad_range[0]:
        low, high = grad_range
        fraction = (math.log10(value) - low) / (high - low)
    return scale_colour(fraction)


def check_grads(tensors):
    """ValueError unless some tensor made by an op holds a gradient (retain_grads)."""
    if not any(t.grad is not None for t in tensors if t.op is not None):
        raise ValueError("show_grads=True needs the gradients of the graph's tensors: call "
                         "root.backward(retain_grads=True) first (plain backward() keeps "
                         "only the leaves' gradients)")


def log_range(values):
    """(low, high) of log10 over the finite, positive values (None is skipped), or None
    if there are none: the span of every view's gradient colour scale."""
    logs = [math.log10(v) for v in values if v is not None and v > 0 and math.isfinite(v)]
    return (min(logs), max(logs)) if logs else None


def ops_legend(roles, grad_range, has_no_grad, has_elided):
    """An HTML-like table explaining the colours and stating the range of the scale.

    Wide and short, one line for the roles and one for the gradient scale: the legend
    shares the first rank with the graph's inputs, and a tall one pushed the whole
    drawing down by its height.
    """
    def line(title, items):
        cells = "".join(f'<td {swatch} border="1" width="14"> </td>'
                        f'<td align="left">{html_text(text)}</td>' for swatch, text in items)
        return (f'<tr><td><table border="0" cellborder="0" cellspacing="2" cellpadding="1">'
                f'<tr><td align="left"><b>{html_text(title)}</b></td>{cells}</tr></table>'
                "</td></tr>")

    part = "fill" if grad_range is None else "border"
    items = [(f'bgcolor="{fill if grad_range is None else border}"', f"{role} ({part})")
             for role, (fill, border) in ROLES.items() if role in roles]
    items.append((f'bgcolor="{OP_STYLE["fillcolor"]}"', "op"))
    if has_elided:
        items.append(('bgcolor="#ffffff" style="dashed"', "time steps not drawn"))
    lines = [line("legend", items)]
    if grad_range is not None:
        steps = scale_steps(*grad_range)[::-1]  # pale to dark, left to right
        items = [(f'bgcolor="{scale_colour(fraction)}"', text) for fraction, text in steps]
        if has_no_grad:
            items.append((f'bgcolor="{NO_GRAD_FILL}"', "no or zero gradient"))
        span = f", range {steps[0][1]} to {steps[-1][1]}" if len(steps) > 1 else ""
        lines.append(line(f"log10 |grad| (fill){span}:", items))
    return ('<<table border="0" cellborder="0" cellspacing="0" cellpadding="0">'
            + "".join(lines) + "</table>>")


def scale_legend(title, grad_range, rows=(), has_no_grad=False, per_row=2):
    """An HTML-like legend: ``rows`` of (fill, text), then the gradient scale if any,
    ``per_row`` entries to a line (2: a legend no taller than a few nodes)."""

    def entry(swatch, text):
        return f'<td {swatch} width="16"> </td><td align="left">{html_text(text)}</td>'

    def lines(entries):
        return "".join("<tr>" + "".join(entries[k:k + per_row]) + "</tr>"
                       for k in range(0, len(entries), per_row))

    span = 2 * per_row
    cells = lines([entry(f'bgcolor="{fill}"', text) for fill, text in rows])
    if grad_range is not None:
        scale = [entry(f'bgcolor="{scale_colour(fraction)}"', text)
                 for fraction, text in scale_steps(*grad_range)]
        if has_no_grad:
            scale.append(entry('bgcolor="#ffffff"', NO_GRAD_NOTE))
        cells += (f'<tr><td colspan="{span}" align="left"><b>{html_text(title)}</b></td></tr>'
                  + lines(scale))
    return ('<<table border="0" cellborder="1" cellspacing="2" cellpadding="2">'
            f'<tr><td colspan="{span}"><b>legend</b></td></tr>' + cells + "</table>>")


# -- what a tensor and an op are called ----------------------------------------------------

def tensor_role(tensor, root):
    """'output' (the root), 'parameter', 'input' (any other leaf) or 'intermediate'."""
    if tensor is root:
        return "output"
    if isinstance(tensor, Parameter):
        return "parameter"
    return "input" if tensor.op is None else "intermediate"


def operand_names(op):
    """The names of the op's input slots, as the op class declares them: "" for each
    input of a commutative op, "0", "1", ... for a sequence op, else "a", "b" (or
    numbers beyond two); None for an op of one input."""
    count = len(op.inputs)
    if count < 2:
        return None
    if op.commutative:
        return ("",) * count
    if count == 2 and not op.sequence_operands:
        return ("a", "b")
    return tuple(str(k) for k in range(count))


def short_name(tensor):
    """A short name for a tensor: its name, else its op, else 'input'."""
    if tensor.name is not None:
        return str(tensor.name)
    return tensor.op.label if tensor.op is not None else "input"


MAX_LISTED = 4  # names listed before "+ N more"


def listed(names):
    """'a, b, c' without repeats, at most MAX_LISTED, then '+ N more'."""
    unique = list(dict.fromkeys(names))
    text = ", ".join(unique[:MAX_LISTED])
    return text + (f" + {len(unique) - MAX_LISTED} more" if len(unique) > MAX_LISTED else "")


def shape_text(shape):
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
