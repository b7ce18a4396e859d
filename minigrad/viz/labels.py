"""What a label says, and how DOT writes it so that Graphviz draws exactly that.

Every name, scope and title reaches a picture through ``shown``, the one place that
decides how a string reads: as written, except for what no picture can hold. Control
characters (NUL, ``\\x01`` ... ``\\x1f`` but the newline, DEL and the C1 range), lone
surrogates and Unicode noncharacters (U+FFFE, U+FFFF ...) are written as their
escapes, ``\\x01``, ``\\t``, ``\\ud800``, ``\\ufffe``: ``dot`` stops at some, XML cannot
hold them, and the rest would draw as nothing. A newline (``\\n``, ``\\r\\n`` or
``\\r``) is a line break, unless the text is nothing else (see ``shown``).

``quoted`` and ``html_text`` then write that text for the two kinds of DOT label.
Graphviz reads ``\\G``, ``\\N``, ``\\E``, ``\\H``, ``\\T``, ``\\L``, ``\\l``, ``\\n``,
``\\r`` and ``\\\\`` as escapes in both, HTML-like labels included, and a doubled
backslash as one backslash in both, so every backslash is doubled; ``&`` is written as
an entity in both, since Graphviz decodes entities in quoted labels too.
"""
import html
import re

# Noncharacters: U+FDD0..U+FDEF and the last two code points of every plane.
_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17))
_UNSHOWABLE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff"
                         + _NONCHARACTERS + "]")
_NAMED = {"\t": "\\t"}


def _escape_of(match):
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(text):
    """``text`` as every picture shows it (module docstring): line breaks as ``\\n``,
    what cannot be drawn as its escape (``'a\\x01'`` reads ``a\\x01``). A text of
    nothing but line breaks and spaces shows its line breaks escaped: drawn as breaks it
    would be an empty label, which also makes dot 2.43 abort laying out a cluster."""
    text = _UNSHOWABLE.sub(_escape_of, str(text).replace("\r\n", "\n").replace("\r", "\n"))
    return text.replace("\n", "\\n") if "\n" in text and not text.strip() else text


def one_line(text):
    """``shown(text)`` with its line breaks written ``\\n``: for a caption that has room
    for one line."""
    return shown(text).replace("\n", "\\n")


def quoted(text):
    """``text`` as the inside of a quoted DOT label that draws ``shown(text)``."""
    return (shown(text).replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")
            .replace("\n", "\\n"))


def html_text(text):
    """``text`` as the inside of an HTML-like label that draws ``shown(text)``:
    entities, doubled backslashes and <br/> for line breaks. (Runs of spaces collapse
    to one there, as in HTML.)"""
    return "<br/>".join(html.escape(line).replace("\\", "\\\\")
                        for line in shown(text).split("\n"))


class HTML(str):
    """An HTML-like label: written as ``<...>``, not as a quoted string."""


def attrs(attributes):
    """``[key="value" ...]``; values are already written for DOT (labels by ``quoted``)
    or plain words; an ``HTML`` value is written between angle brackets."""
    return "[" + " ".join(f"{key}=<{value}>" if isinstance(value, HTML) else
                          f'{key}="{value}"' for key, value in attributes.items()) + "]"


def html_table(cells, across, rules=True, cellpadding=2):
    """An HTML-like table of ``cells`` (each the inside of a <td>, or (inside, port)),
    side by side when ``across``, one above the other otherwise, with thin rules
    between them when ``rules``."""
    tds = [f'<td port="{c[1]}">{c[0]}</td>' if isinstance(c, tuple) else f"<td>{c}</td>"
           for c in cells]
    rows = "<tr>" + "".join(tds) + "</tr>" if across else "".join(
        f"<tr>{td}</tr>" for td in tds)
    rule = (' columns="*"' if across else ' rows="*"') if rules else ""
    return HTML(f'<table border="0" cellborder="0" cellspacing="0" '
                f'cellpadding="{cellpadding}"{rule}>{rows}</table>')


def with_out_ports(table, count, rankdir):
    """``table`` with ``count`` tiny ports o0, o1, ... in a row (a column for LR and RL)
    on the side the edges leave from, in order.

    An edge that leaves from a port is ordered by the port's position when Graphviz
    reduces crossings, even inside a cluster, where it ignores ``ordering=out`` and the
    order of invisible edges within a rank: this is what keeps the users of a tensor in
    creation order.
    """
    if count == 0:
        return table
    ports = [f'<td port="o{k}" width="3" height="1" fixedsize="true"></td>'
             for k in range(count)]
    across = rankdir in ("TB", "BT")
    strip = ("<tr>" + "".join(ports) + "</tr>" if across else
             "".join(f"<tr>{port}</tr>" for port in ports))
    strip = f'<table border="0" cellborder="0" cellspacing="0" cellpadding="0">{strip}</table>'
    inner = f"<td>{table}</td>"
    rows = {"TB": f"<tr>{inner}</tr><tr><td>{strip}</td></tr>",
            "BT": f"<tr><td>{strip}</td></tr><tr>{inner}</tr>",
            "LR": f"<tr>{inner}<td>{strip}</td></tr>",
            "RL": f"<tr><td>{strip}</td>{inner}</tr>"}[rankdir]
    return HTML(f'<table border="0" cellborder="0" cellspacing="0" cellpadding="0">{rows}'
                "</table>")
