"""An encoder-decoder (sequence to sequence) from the recurrent cells, with optional
attention built from primitive ops.

The encoder is an ``LSTMCell`` (or ``GRUCell``, ``RNNCell``) run over the embedded
question inside ``mg.scope("encoder")``, so its steps are ``encoder/l0/t0``,
``encoder/l0/t1``, ... The decoder is a cell of the same kind, started from the
encoder's final state and run one step at a time inside ``decoder/t0``,
``decoder/t1``, ...: step t reads the token
written at step t-1 (the true one in training, "teacher forcing"; its own best guess
when answering, "greedy decoding"). A drawing of the graph therefore shows two chains,
the encoder's and the decoder's, joined by the encoder's final state.

Attention (Luong, Pham and Manning 2015, "dot" scores) lets every decoder step look
back at every encoder step instead of only at the final state::

    scores  = enc_out @ h_t          (N, S, H) @ (N, H, 1) -> (N, S): one per character
    weights = softmax(scores)        over the S characters
    context = weights @ enc_out      (N, 1, S) @ (N, S, H) -> (N, H): their weighted sum
    logits  = [h_t, context] @ W + b

Three primitive ops and a softmax: no backward is written here either. The weights are
returned by ``greedy`` so a lesson can draw which characters each answer character read.
"""
import numpy as np

import minigrad as mg
from minigrad.nn import Embedding, Linear, Module, positive_int

from .gru import GRUCell
from .lstm import LSTMCell
from .rnn import RNNCell

__all__ = ["Seq2Seq"]

_CELLS = {"lstm": LSTMCell, "gru": GRUCell, "rnn": RNNCell}


class Seq2Seq(Module):
    """``logits = model(question, answer_in)``: teacher-forced logits (N, T, vocab_size).

    ``question`` (N, S) and ``answer_in`` (N, T) are integer token ids in one vocabulary
    of ``vocab_size`` tokens (one shared ``Embedding``); ``answer_in`` starts with the
    start token and holds the true answer shifted right. ``cell`` is ``"lstm"``,
    ``"gru"`` or ``"rnn"``.

    Padding in the question is read like any character (in ``models/data/sums.py`` a
    pad stands where a number has no digit, as a blank does on paper), and attention may
    read it. No value of the input changes which ops run, so ``mg.compile`` can replay a
    training step for any batch of the same shape.
    """

    def __init__(self, vocab_size, hidden_size, *, embedding_size=None, cell="lstm",
                 attention=False, rng=None, dtype=np.float64):
        self.vocab_size = positive_int("Seq2Seq", "vocab_size", vocab_size)
        self.hidden_size = positive_int("Seq2Seq", "hidden_size", hidden_size)
        E = hidden_size if embedding_size is None else embedding_size
        self.attention, self.cell = bool(attention), cell
        if cell not in _CELLS:
            raise ValueError(f"Seq2Seq: cell must be one of {sorted(_CELLS)}, got {cell!r}")
        self.embed = Embedding(vocab_size, E, rng=rng, dtype=dtype)
        self.encoder = _CELLS[cell](E, hidden_size, rng=rng, dtype=dtype)
        self.decoder = _CELLS[cell](E, hidden_size, rng=rng, dtype=dtype)
        readout = 2 * hidden_size if attention else hidden_size
        self.out = Linear(readout, vocab_size, rng=rng, dtype=dtype)

    def encode(self, question):
        """The encoder's output at every step (N, S, H) and its final state (a tuple,
        as the decoder cell takes it)."""
        question = np.asarray(question)
        x = self.embed(question)
        zeros = np.zeros((len(question), self.hidden_size), self.encoder.dtype)
        state = tuple(mg.Tensor(zeros, name=f"{name}0") for name in self.encoder.state_names)
        outputs = []
        # The loop of LSTM.run, written out so that the decoder takes the last step's
        # state tensors themselves: a drawing links the two chains step to step.
        with mg.scope("encoder"), mg.scope("l0"):
            for t in range(question.shape[1]):
                with mg.scope(f"t{t}"):
                    state = self.encoder.step(x[:, t, :], *state)
                outputs.append(state[0])
        enc_out = mg.stack(outputs, axis=1)
        enc_out.name = "encoder outputs"
        return enc_out, state

    def decode_step(self, token, state, enc_out):
        """One decoder step from the previous token ids (N,): ``(logits (N, vocab),
        new state, attention weights (N, S) or None)``."""
        state = self.decoder.step(self.embed(token), *state)
        h = state[0]
        if not self.attention:
            return self.out(h), state, None
        N, S, H = enc_out.shape
        scores = mg.reshape(enc_out @ mg.reshape(h, (N, H, 1)), (N, S))
        weights = mg.softmax(scores, axis=1)
        context = mg.reshape(mg.reshape(weights, (N, 1, S)) @ enc_out, (N, H))
        scores.name, weights.name, context.name = "scores", "attention", "context"
        return self.out(mg.concat([h, context], axis=1)), state, weights

    def forward(self, question, answer_in):
        answer_in = np.asarray(answer_in)
        if answer_in.ndim != 2 or answer_in.shape[0] != np.shape(question)[0]:
            raise ValueError(f"Seq2Seq: answer_in must be (N, T) for a question of shape "
                             f"{np.shape(question)}, got {answer_in.shape}")
        enc_out, state = self.encode(question)
        logits = []
        with mg.scope("decoder"):
            for t in range(answer_in.shape[1]):
                with mg.scope(f"t{t}"):
                    step_logits, state, _ = self.decode_step(answer_in[:, t], state, enc_out)
                logits.append(step_logits)
        return mg.stack(logits, axis=1)

    def greedy(self, question, start, steps):
        """Answer without the true answer: each step reads the previous step's most
        likely token. Returns the token ids (N, steps) and the attention weights
        (N, steps, S), or None without attention. Builds no graph."""
        with mg.no_grad():
            enc_out, state = self.encode(question)
            token = np.full(len(enc_out.data), start, dtype=np.int64)
            tokens, weights = [], []
            for _ in range(steps):
                logits, state, w = self.decode_step(token, state, enc_out)
                token = np.argmax(logits.data, axis=1)
                tokens.append(token)
                weights.append(w)
        attention = np.stack([w.data for w in weights], axis=1) if self.attention else None
        return np.stack(tokens, axis=1), attention

    def extra_repr(self):
        return f"cell={self.cell!r}, attention={self.attention}"
