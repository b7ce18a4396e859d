"""Train an LSTM to add binary numbers, one bit per time step, to 100% exact match.

    python examples/binary_addition.py [--bits 8] [--test-bits 32] [--seed 0] [--json PATH]

Run with --help for every flag. The data, model, training loop and command line are in
``models/arithmetic.py``, shared with ``binary_subtraction.py``.
"""
import sys

from models.arithmetic import main

if __name__ == "__main__":
    sys.exit(main("addition"))
