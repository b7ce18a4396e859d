"""Decimal addition as text, for the sequence-to-sequence lesson: ``"535+61"`` -> ``"596"``.

As in Keras's ``addition_rnn`` example, each number has 1 to ``digits`` digits (the
length drawn first, then the digits), so a batch mixes questions of every length. Every
string is written in one alphabet of tokens:

- ``" "`` (``PAD``) fills each number on the left to ``digits`` characters, so every
  question is ``2 * digits + 1`` characters (``"535+ 61"``) and units stand under units,
  as on paper. (Padding the whole question instead, ``"  535+61"``, makes a short
  question a pattern of its own: with only 100 one-digit questions, a network learns
  those it saw by heart and fails on the held-out ones.)
- ``"="`` (``START``) is the decoder's first input: "now write the answer";
- ``"."`` (``END``) ends the answer, so answers of 1 to ``digits + 1`` characters are
  one task. Target positions after the end hold ``IGNORE``, which ``cross_entropy``
  leaves out of the loss (``ignore_index=IGNORE``).
"""
import numpy as np

__all__ = ["ALPHABET", "PAD", "START", "END", "IGNORE", "sample", "held_out_questions",
           "answer_length", "encode_questions", "encode_answers",
           "decode_answers"]

PAD, START, END = " ", "=", "."
ALPHABET = PAD + "0123456789+" + START + END
IGNORE = -1
_ID = {ch: i for i, ch in enumerate(ALPHABET)}


def answer_length(digits):
    """Decoder steps: the longest answer (``digits + 1`` characters) and its END."""
    return digits + 2


def sample(n, digits, rng):
    """``n`` pairs (a, b): each number's length uniform in 1..digits, then its digits
    uniform (a leading 0 makes it shorter, as in Keras's example)."""
    def numbers():
        lengths = rng.integers(1, digits + 1, size=n)
        return np.array([int("".join(map(str, rng.integers(0, 10, size=k)))) for k in lengths])
    return numbers(), numbers()


def held_out_questions(n, digits, rng, share=0.1):
    """``n`` distinct pairs for evaluation, and a set of their keys ``a * 10**digits + b``
    so that training can skip them.

    At most ``share`` of the questions of each shape (the two numbers' digit counts) is
    held out. There are only 100 sums of two one-digit numbers, yet they are drawn as
    often as 1 in 9: held out without a bound, nearly all of them would be, and
    training would never see a single one."""
    def shape(x, y):
        return len(str(x)), len(str(y))

    def size(k):  # how many numbers have k digits (0 counts as one digit)
        return 10 if k == 1 else 9 * 10 ** (k - 1)
    keys, a, b, taken = set(), [], [], {}
    for _ in range(100):
        xs, ys = sample(n, digits, rng)
        for x, y in zip(xs.tolist(), ys.tolist()):
            kx, ky = shape(x, y)
            if len(a) < n and x * 10 ** digits + y not in keys \
                    and taken.get((kx, ky), 0) < share * size(kx) * size(ky):
                taken[kx, ky] = taken.get((kx, ky), 0) + 1
                keys.add(x * 10 ** digits + y)
                a.append(x)
                b.append(y)
        if len(a) == n:  # shuffled: the capped shapes filled first would otherwise
            order = rng.permutation(n)  # all land in the first part of the list
            return np.array(a)[order], np.array(b)[order], keys
    raise ValueError(f"sums: there are fewer than {n} distinct questions of {digits} digits")


def encode_questions(a, b, digits, reverse=False):
    """Token ids (N, 2 * digits + 1) of ``"a+b"``, each number right-aligned in
    ``digits`` characters. With ``reverse`` the characters are read last to first
    (``"16 +535"`` for 535+61), as in Keras's example and Sutskever et al. (2014): it
    changes which characters the encoder reads last, nearest to the decoder's first
    steps."""
    rows = []
    for x, y in zip(a.tolist(), b.tolist()):
        text = f"{x:>{digits}}+{y:>{digits}}"
        rows.append(text[::-1] if reverse else text)
    return np.array([[_ID[ch] for ch in row] for row in rows], dtype=np.int64)


def encode_answers(a, b, digits):
    """Teacher forcing's two arrays, each (N, digits + 2): the decoder's inputs
    ``"=596."`` shifted right by one (START first; PAD after the end) and the targets
    ``"596."`` (IGNORE after END)."""
    steps = answer_length(digits)
    inputs = np.full((len(a), steps), _ID[PAD], dtype=np.int64)
    targets = np.full((len(a), steps), IGNORE, dtype=np.int64)
    for i, total in enumerate((a + b).tolist()):
        answer = [_ID[ch] for ch in f"{total}{END}"]
        targets[i, :len(answer)] = answer
        inputs[i, 0] = _ID[START]
        inputs[i, 1:len(answer)] = answer[:-1]
    return inputs, targets


def decode_answers(ids):
    """Strings from predicted token ids (N, T): everything before the first END."""
    return ["".join(ALPHABET[i] for i in row).split(END)[0] for row in np.asarray(ids)]
