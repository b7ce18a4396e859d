"""Teach a recurrent network to subtract binary numbers (a - b, a >= b), bit by bit.

    python examples/binary_subtraction.py [--bits 4] [--cell lstm] [--test-bits 16] [--json PATH]

The same lesson as ``binary_addition.py``, read there top to bottom (the split, the model,
the optimizer, the training loop, the evaluation, worked examples), run on another task:
a borrow instead of a carry. 4-bit subtraction has only 136 pairs, too few to hold any
out, so by default it is trained and evaluated on all of them, and says so; from 7 bits
on, 2,000 pairs are held out. ``--help`` lists every flag.
"""
import binary_addition

if __name__ == "__main__":
    raise SystemExit(binary_addition.main(task="subtraction"))
