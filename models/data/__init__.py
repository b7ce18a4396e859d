"""The tasks' data: what the lessons train on, generated or shipped, and no model.

- ``arithmetic``: pairs of numbers for binary addition and subtraction, their split into
  training and held-out pairs, and their encoding as bit sequences (least-significant
  bit first) for ``examples/binary_addition.py`` and ``binary_subtraction.py``.
- ``adding``: sequences of the adding problem (Hochreiter & Schmidhuber 1997).
- ``text``: the two public-domain texts of the character language model (Tang poems,
  Shakespeare's sonnets; sources in ``README.md``), a vocabulary, the held-out split,
  the unigram baseline and the streams of truncated BPTT.
- ``sums``: decimal addition as text (``"535+ 61"`` -> ``"596."``) for
  ``examples/seq2seq_addition.py``: sampling, held-out questions, token ids.
"""
