"""Networks built only from minigrad ops."""
from .lstm import LSTM, LSTMCell

__all__ = ["LSTM", "LSTMCell"]
