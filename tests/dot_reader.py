"""Reading what the drawer writes, for the tests: its DOT text, line by line as the views
write it, and the SVG that Graphviz's ``dot`` makes of it. Labels are read back as the
text Graphviz draws, so a test compares what a learner would see.

Import by name (``from dot_reader import parse``); pytest puts ``tests/`` on the path.
"""
import re
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"
NODE = re.compile(r'^\t*(\w+) \[(.*)\]$')
EDGE = re.compile(r'^\t*(\w+)(?::(\w+))? -> (\w+)(?::(\w+))?(?: \[(.*)\])?$')


def attribute(attrs, key):
    """The raw value of ``key="..."`` in a DOT attribute list, or None."""
    match = re.search(rf'(?:^| ){key}="((?:[^"\\]|\\.)*)"', attrs)
    return match.group(1) if match else None


def unquote(text):
    """What Graphviz draws for the inside of a quoted DOT label (lines joined by \\n)."""
    text = re.sub(r'\\(.)', lambda m: "\n" if m.group(1) in "nlr" else m.group(1), text)
    return text.replace("&amp;", "&")


def html_label(attrs):
    """The inside of the HTML-like label ``label=<...>`` in ``attrs``, or None."""
    start = attrs.find("label=<")
    if start < 0:
        return None
    depth, k = 0, start + len("label=")
    for k in range(start + len("label="), len(attrs)):
        depth += {"<": 1, ">": -1}.get(attrs[k], 0)
        if depth == 0:
            break
    return attrs[start + len("label=<"):k]


def label_text(attrs):
    """The text a node's label shows: table cells joined by ' | ', lines by newlines;
    the port cells of ops (a, b, 0, 1 ...) left out."""
    quoted = attribute(attrs, "label")
    if quoted is not None:
        return unquote(quoted)
    inside = html_label(attrs)
    if inside is None:
        return None
    table = ET.fromstring(inside.replace("<br/>", "\n"))
    cells = ["".join(td.itertext()).replace("\\\\", "\\") for td in table.iter("td")
             if td.find("table") is None and "port" not in td.attrib]
    return " | ".join(cells)


def parse(source):
    """nodes: id -> (label text, cluster path, attrs); clusters: list of label paths;
    edges: visible (tail, head, attrs, tail port, head port)."""
    nodes, clusters, edges, path = {}, [], [], []
    lines = source.splitlines()
    for k, line in enumerate(lines):
        if line.strip().startswith("subgraph cluster_"):
            path.append(unquote(attribute(lines[k + 1].strip(), "label")))
            clusters.append(tuple(path))
        elif line.strip() == "}" and path:
            path.pop()
        elif EDGE.match(line):
            tail, tail_port, head, head_port, attrs = EDGE.match(line).groups()
            if "invis" not in (attrs or ""):
                edges.append((tail, head, attrs or "", tail_port, head_port))
        elif NODE.match(line) and not line.strip().startswith(("graph ", "node ", "edge ",
                                                                "legend ")):
            node, attrs = NODE.match(line).groups()
            nodes[node] = (label_text(attrs), tuple(path), attrs)
    return nodes, clusters, edges


def labelled_edges(source):
    """[(tail, head, label)] of the top-level edges, labels as drawn (None without)."""
    found = []
    for tail, head, attrs in re.findall(r"^\t(\w+) -> (\w+)(?: \[(.*)\])?$", source, re.M):
        label = re.search(r'(?<!head)(?<!tail)(?<!x)label="((?:[^"\\]|\\.)*)"', attrs or "")
        found.append((tail, head, unquote(label.group(1)) if label else None))
    return found


def cluster_labels(source):
    """The labels of the ``subgraph cluster_N`` blocks, in order, as drawn."""
    return [unquote(label) for label in
            re.findall(r'subgraph cluster_\d+ \{\n\t*label="((?:[^"\\]|\\.)*)"', source)]


def svg_root(svg_bytes):
    """The parsed SVG; fails unless it is well-formed XML with an <svg> root."""
    root = ET.fromstring(svg_bytes)
    assert root.tag == SVG + "svg", root.tag
    return root


def svg_texts(svg_bytes):
    """The contents of the SVG's <text> elements, in document order."""
    return [t.text for t in svg_root(svg_bytes).iter(SVG + "text")]


def svg_node_titles(svg_bytes):
    """The node ids Graphviz wrote into the SVG (one <title> per node)."""
    return {g.find(SVG + "title").text for g in svg_root(svg_bytes).iter(SVG + "g")
            if g.get("class") == "node"}
