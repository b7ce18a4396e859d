"""What a view hands to the rest of the package: the picture and what it stands for."""


class Drawing:
    """One view's drawing of a graph.

    digraph       the ``graphviz.Digraph`` (what ``mg.viz.graph`` returns).
    nodes         every node id written, legend included.
    edges         (tail, head) of every edge written, invisible ones included: with
                  ``nodes`` and ``clusters``, what the guard measures.
    clusters      how many ``subgraph cluster_N`` blocks it has.
    node_of       the drawn node of each tensor, indexed like the topological order
                  (None where the view draws no node for it).
    op_node_of    the node of the op that made each tensor (None for leaves, or where
                  the tensor's own node stands for its op too).
    state_edges   [(edge id, tensor index)]: edges that carry one tensor from a step
                  to the next, so a page can colour them by that tensor's gradient.
    meanings      {node id: what it stands for} (each view's module docstring).
    keep_steps    the ``keep_steps`` it was drawn with.
    """

    def __init__(self, digraph, *, nodes, edges, clusters=0, node_of=(), op_node_of=(),
                 state_edges=(), meanings=None, keep_steps=None):
        self.digraph, self.nodes, self.edges, self.clusters = digraph, nodes, edges, clusters
        self.node_of, self.op_node_of = list(node_of), list(op_node_of)
        self.state_edges, self.meanings = list(state_edges), meanings or {}
        self.keep_steps = keep_steps

    @property
    def source(self):
        """The DOT text."""
        return self.digraph.source


def longest_path_ranks(nodes, edges, settle=False):
    """{node: length of the longest path reaching it}, dot's first guess of its rank.

    Kahn's algorithm over ``edges`` ((tail, head) pairs), without recursion. Nodes on a
    cycle (a back-edge of a rolled view) are ranked after everything that reaches them,
    their own cycle ignored. With ``settle``, a node with at least as many edges out as in
    then moves down to just above its nearest user, as dot's ranking does to keep edges
    short: a weight, or a tap of a bus, sits by its first user, not at the top.
    """
    rank = dict.fromkeys(nodes, 0)
    heads, waiting = {}, dict.fromkeys(nodes, 0)
    for tail, head in edges:
        rank.setdefault(tail, 0)
        rank.setdefault(head, 0)
        waiting[head] = waiting.get(head, 0) + 1
        waiting.setdefault(tail, 0)
        heads.setdefault(tail, []).append(head)
    ready = [node for node, count in waiting.items() if count == 0]
    done = []
    while ready:
        tail = ready.pop()
        done.append(tail)
        for head in heads.get(tail, ()):
            rank[head] = max(rank[head], rank[tail] + 1)
            waiting[head] -= 1
            if waiting[head] == 0:
                ready.append(head)
    if settle:  # moving down a node with as many edges out as in stretches none
        degree_in = {}
        for _, head in edges:
            degree_in[head] = degree_in.get(head, 0) + 1
        for node in reversed(done):
            if heads.get(node) and len(heads[node]) >= degree_in.get(node, 0):
                rank[node] = max(rank[node], min(rank[h] for h in heads[node]) - 1)
    return rank
