"""An encoder-decoder (sequence to sequence) from the recurrent modules, with optional
attention built from primitive ops.

The encoder is an ``LSTM`` (or ``GRU``, ``RNN``) run over the embedded question inside
``mg.scope("encoder")``, so its steps are ``encoder/l0/t0``, ``encoder/l0/t1``, ... The
decoder is one cell of the same kind, started from the encoder's final state and run
one step at a time inside ``decoder/t0``, ``decoder/t1``, ...: step t reads the token
written at step t-1 (the true one in training, "teacher forcing"; its own best guess
when answering, "greedy decoding"). A drawing of the graph therefore shows two chains,
the encoder's and the decoder's, joined by the encoder's final state.

Attention (Luong, Pham and Manning 2015, "dot" scores) lets every decoder step look
back at every encoder step instead of only at the final state::

    scores  = enc_out @ h_t          (N, S, H) @ (N, H, 1) -> (N, S): one per question character
    weights = softmax(scores)        over the S characters (padding masked out)
    context = weights @ enc_out      (N, 1, S) @ (N, S, H) -> (N, H): their weighted sum
    logits  = [h_t, context] @ W + b

Three primitive ops and a softmax: no backward is written here either. The weights are
returned by ``greedy`` so a lesson can draw which characters each answer character read.
"""
import numpy as np

import minigrad as mg
from minigrad.nn import Embedding, Linear, Module, positive_int

from . import recurrent

__all__ = ["Seq2Seq"]

_MASKED = -1e9  # a score that softmax turns into a weight of exactly 0


class Seq2Seq(Module):
    """``logits = model(question, answer_in)``: teacher-forced logits (N, T, vocab_size).

    ``question`` (N, S) and ``answer_in`` (N, T) are integer token ids in one vocabulary
    of ``vocab_size`` tokens (one shared ``Embedding``); ``answer_in`` starts with the
    start token and holds the true answer shifted right. Question positions equal to
    ``pad`` (if given) get no attention. ``cell`` is ``"lstm"``, ``"gru"`` or ``"rnn"``.
    """

    def __init__(self, vocab_size, hidden_size, *, embedding_size=None, cell="lstm",
                 attention=False, pad=None, rng=None, dtype=np.float64):
        self.vocab_size = positive_int("Seq2Seq", "vocab_size", vocab_size)
        self.hidden_size = positive_int("Seq2Seq", "hidden_size", hidden_size)
        E = hidden_size if embedding_size is None else embedding_size
        self.attention, self.pad, self.cell = bool(attention), pad, cell
        self.embed = Embedding(vocab_size, E, rng=rng, dtype=dtype)
        self.encoder = recurrent(cell, E, hidden_size, rng=rng, dtype=dtype)
        self.decoder = self.encoder.cell_class(E, hidden_size, rng=rng, dtype=dtype)
        readout = 2 * hidden_size if attention else hidden_size
        self.out = Linear(readout, vocab_size, rng=rng, dtype=dtype)

    def encode(self, question):
        """The encoder's output at every step (N, S, H), its final state (a tuple, as
        the decoder cell takes it) and the attention mask (N, S) (True: may be read)."""
        question = np.asarray(question)
        with mg.scope("encoder"):
            enc_out, final = self.encoder.run(self.embed(question), None)
            enc_out.name = "encoder outputs"
            state = tuple(part[0] for part in final)  # the one layer's (N, H) state
        mask = np.ones(question.shape, bool) if self.pad is None else question != self.pad
        return enc_out, state, mask

    def decode_step(self, token, state, enc_out, mask):
        """One decoder step from the previous token ids (N,): ``(logits (N, vocab),
        new state, attention weights (N, S) or None)``."""
        state = self.decoder.step(self.embed(token), *state)
        h = state[0]
        if not self.attention:
            return self.out(h), state, None
        N, S, H = enc_out.shape
        scores = mg.reshape(enc_out @ mg.reshape(h, (N, H, 1)), (N, S))
        scores = mg.where(mask, scores, _MASKED)
        weights = mg.softmax(scores, axis=1)
        context = mg.reshape(mg.reshape(weights, (N, 1, S)) @ enc_out, (N, H))
        scores.name, weights.name, context.name = "scores", "attention", "context"
        return self.out(mg.concat([h, context], axis=1)), state, weights

    def forward(self, question, answer_in):
        answer_in = np.asarray(answer_in)
        if answer_in.ndim != 2 or answer_in.shape[0] != np.shape(question)[0]:
            raise ValueError(f"Seq2Seq: answer_in must be (N, T) for a question of shape "
                             f"{np.shape(question)}, got {answer_in.shape}")
        enc_out, state, mask = self.encode(question)
        logits = []
        with mg.scope("decoder"):
            for t in range(answer_in.shape[1]):
                with mg.scope(f"t{t}"):
                    step_logits, state, _ = self.decode_step(answer_in[:, t], state,
                                                             enc_out, mask)
                logits.append(step_logits)
        return mg.stack(logits, axis=1)

    def greedy(self, question, start, steps):
        """Answer without the true answer: each step reads the previous step's most
        likely token. Returns the token ids (N, steps) and the attention weights
        (N, steps, S), or None without attention. Builds no graph."""
        with mg.no_grad():
            enc_out, state, mask = self.encode(question)
            token = np.full(len(enc_out.data), start, dtype=np.int64)
            tokens, weights = [], []
            for _ in range(steps):
                logits, state, w = self.decode_step(token, state, enc_out, mask)
                token = np.argmax(logits.data, axis=1)
                tokens.append(token)
                weights.append(w)
        attention = np.stack([w.data for w in weights], axis=1) if self.attention else None
        return np.stack(tokens, axis=1), attention

    def extra_repr(self):
        return f"cell={self.cell!r}, attention={self.attention}"
