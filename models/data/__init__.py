"""The tasks' data: what the lessons train on, generated or shipped, and no model.

- ``adding``: sequences of the adding problem (Hochreiter & Schmidhuber 1997).
"""
