"""Drawing computation graphs with Graphviz."""
