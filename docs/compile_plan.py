"""Draw the plan of one LSTM step as mg.compile replays it: docs/compile_plan.svg and .png.

    python docs/compile_plan.py

A 3-step LSTM (N = 3, D = 2, H = 4) with a Linear head on the last h is compiled; the
drawing shows the numpy calls of its middle step t1, in the forward and in the backward
pass, grouped by the op that planned them, and the calls after the loop that give the
weight and bias their gradients over all steps at once. It is made from the plan's own
listing (``step.plans[...].listing``), so it shows what the replay really runs.
"""
import html
import subprocess
from pathlib import Path

import numpy as np

import minigrad as mg
from minigrad.models import LSTM

HERE = Path(__file__).resolve().parent
COLOURS = {"forward": "#dbe9f6", "backward": "#fde3cf", "after the loop": "#d9f0d3"}


def plan_listing():
    rng = np.random.default_rng(0)
    lstm, head = LSTM(2, 4, rng=rng), mg.nn.Linear(4, 1, rng=rng)

    def loss(x, y):
        out, _ = lstm(x)
        return mg.nn.mse_loss(head(out[:, -1]), y)

    step = mg.compile(loss)
    step(rng.random((3, 3, 2)), rng.random((3, 1)))
    return next(iter(step.plans.values())).listing


def groups(listing, phase, scope):
    """[(op label, [call text, ...])] of one pass over one scope, in order."""
    found = []
    last = None
    for pass_, label, where, which, text in listing:
        if pass_ == phase and where == scope:
            if found and which == last:
                found[-1][1].append(text)
            else:
                found.append((label, [text]))
            last = which
    return [(label, calls) for label, calls in found]


def cluster(name, title, colour, items):
    lines = [f'subgraph cluster_{name} {{', f'label=<<b>{html.escape(title)}</b>>;',
             'fontname="Helvetica"; fontsize=13; style="rounded,filled"; color="#999999";',
             f'fillcolor="{colour}";']
    previous = None
    for k, (label, calls) in enumerate(items):
        rows = "".join(f'<tr><td align="left"><font face="Courier" point-size="10">'
                       f'{html.escape(c)}</font></td></tr>' for c in calls)
        node = f"{name}{k}"
        lines.append(f'{node} [shape=plain, label=<<table border="1" cellborder="0" '
                     f'cellspacing="0" cellpadding="2" bgcolor="white" color="#777777">'
                     f'<tr><td align="left"><b>{html.escape(label)}</b></td></tr>{rows}'
                     f'</table>>];')
        if previous:
            lines.append(f"{previous} -> {node} [color=\"#777777\", arrowsize=0.6];")
        previous = node
    lines.append("}")
    return lines


def dot_text(listing):
    forward = groups(listing, "forward", "l0/t1")
    backward = groups(listing, "backward", "l0/t1")
    after = groups(listing, "after the loop", "")
    lines = ["digraph plan {", 'graph [rankdir=TB, nodesep=0.3, ranksep=0.25, '
             'fontname="Helvetica", labelloc=t, fontsize=15, label=<<b>One LSTM step as '
             'mg.compile replays it</b><br/>the numpy calls of step t1 (of 3; N = 3, D = 2, '
             'H = 4), grouped by the op that planned them; every array was planned once>];',
             'node [fontname="Helvetica"];']
    lines += cluster("fwd", "forward, step t1", COLOURS["forward"], forward)
    lines += cluster("bwd", "backward, step t1 (later in the replay)", COLOURS["backward"],
                     backward)
    lines += cluster("end", "after the loop, once for all steps", COLOURS["after the loop"],
                     after)
    lines.append('note [shape=note, fontsize=11, style=filled, fillcolor="#fffbe6", label="'
                 'dz[:, 0:4] ... dz[:, 12:]: the gate gradients are written straight into '
                 'slices of dz,\\nso the four slices of z have no backward calls left.\\n'
                 '\\"(every step)\\": one array holding that value for all steps, so the '
                 'weight gradient is\\none matrix product, concat.T @ dz, instead of one '
                 'per step.\\nout= names the array written; arrays whose lifetimes do not '
                 'overlap share memory."];')
    lines.append("fwd0 -> bwd0 [style=invis]; bwd0 -> end0 [style=invis];")
    lines.append("}")
    return "\n".join(lines)


def main():
    text = dot_text(plan_listing())
    for suffix in ("svg", "png"):
        out = HERE / f"compile_plan.{suffix}"
        subprocess.run(["dot", f"-T{suffix}", "-Gdpi=110", "-o", str(out)], input=text,
                       text=True, check=True)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
