"""Train an LSTM to subtract binary numbers (a - b with a >= b), one bit per time step.

    python examples/binary_subtraction.py [--bits 4] [--test-bits 16] [--seed 0] [--json PATH]

4-bit subtraction has only 136 pairs, too few to hold any out, so by default the model is
trained and evaluated on all of them (the output says so); with --bits 7 or more, 2,000
pairs are held out. Run with --help for every flag; the code is ``models/arithmetic.py``,
shared with ``binary_addition.py``.
"""
import sys

from models.arithmetic import main

if __name__ == "__main__":
    sys.exit(main("subtraction"))
