"""Networks built only from minigrad ops."""
from .gru import GRU, GRUCell
from .lstm import LSTM, LSTMCell
from .recurrent import Recurrent, RecurrentCell
from .rnn import RNN, RNNCell
from .seq2seq import Seq2Seq

__all__ = ["LSTM", "LSTMCell", "GRU", "GRUCell", "RNN", "RNNCell", "Recurrent",
           "RecurrentCell", "Seq2Seq", "recurrent"]

_KINDS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


def recurrent(kind, input_size, hidden_size, num_layers=1, **options):
    """``LSTM``, ``GRU`` or ``RNN`` by name (``"lstm"``, ``"gru"``, ``"rnn"``), for
    scripts with a ``--cell`` / ``--model`` flag. ``options`` go to the constructor
    (``rng``, ``dtype``, ``forget_bias`` for the LSTM, ``nonlinearity`` for the RNN).

    The three differ in their state: ``out, (h_n, c_n)`` for the LSTM, ``out, h_n``
    for the others.
    """
    if kind not in _KINDS:
        raise ValueError(f"recurrent: kind must be one of {sorted(_KINDS)}, got {kind!r}")
    return _KINDS[kind](input_size, hidden_size, num_layers, **options)
