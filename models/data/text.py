"""Text for the character language model: the two shipped texts, a vocabulary, the
held-out split, the baselines to beat, and the streams of truncated BPTT.

The shipped texts are public domain (``models/data/README.md`` says where each comes
from): ``"tang"``, the Three Hundred Tang Poems, one poem per line as
``《title》poet：text``; ``"verse"``, Shakespeare's sonnets. Any other UTF-8 file can be
given by its path.
"""
import importlib.resources
import os

import numpy as np

__all__ = ["TEXTS", "load", "Vocabulary", "split", "unigram_loss", "streams"]

TEXTS = {"tang": "tang.txt", "verse": "sonnets.txt"}


def load(name):
    """The text called ``name`` in ``TEXTS``, or the UTF-8 file at the path ``name``."""
    if name in TEXTS:
        return (importlib.resources.files(__package__) / TEXTS[name]).read_text("utf-8")
    if not os.path.isfile(name):
        raise ValueError(f"text: {name!r} is neither a shipped text ({', '.join(TEXTS)}) "
                         f"nor a file")
    try:
        with open(name, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as err:
        raise ValueError(f"text: {name} is not UTF-8 text ({err})") from None
    if len(set(text)) < 2:
        raise ValueError(f"text: {name} needs at least two distinct characters to predict")
    return text


class Vocabulary:
    """The distinct characters of a text, in sorted order; character <-> integer id.

    Built from the whole text, held-out part included, so that every character has an
    id (a character seen only in the held-out part still gets an embedding, untrained).
    """

    def __init__(self, text):
        self.chars = sorted(set(text))
        self._ids = {ch: i for i, ch in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, text):
        try:
            return np.array([self._ids[ch] for ch in text], dtype=np.int64)
        except KeyError as err:
            raise ValueError(f"Vocabulary: {err.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids):
        return "".join(self.chars[i] for i in np.asarray(ids).ravel())


def split(ids, held_out=0.1):
    """(training ids, held-out ids): the last ``held_out`` fraction is held out, one
    contiguous piece, so no held-out line was seen in training."""
    cut = int(round(len(ids) * (1 - held_out)))
    return ids[:cut], ids[cut:]


def unigram_loss(train, held_out, vocab_size):
    """Held-out loss in nats per character of the training text's character frequencies
    (add-one smoothed, so a character unseen in training costs a finite amount): what a
    model that ignores all context achieves. The uniform loss is ln(vocab_size)."""
    counts = np.bincount(train, minlength=vocab_size) + 1.0
    return float(-np.mean(np.log(counts[held_out] / counts.sum())))


def streams(ids, batch_size):
    """The ids cut into ``batch_size`` contiguous streams, shape (batch_size, L).

    Row b continues where it left off from one chunk to the next, so the state the
    model ends a chunk with is the right start for the row's next chunk: that is what
    lets truncated BPTT carry the state across chunks. The tail that does not fill a
    row is dropped.
    """
    length = len(ids) // batch_size
    if length < 2:
        raise ValueError(f"streams: {len(ids)} characters cannot fill {batch_size} streams "
                         f"of at least 2")
    return ids[:batch_size * length].reshape(batch_size, length)
