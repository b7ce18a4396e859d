"""What a learner builds next, with the framework's own ops and modules only.

A small classifier (an MLP kept in a ModuleList, cross-entropy, Adam) separates three
interleaved spirals; a character-level language model (embeddings by one-hot matmul,
softmax over the vocabulary) learns to predict the next character of a text. Each is
judged against a bound that follows from its data, not a number seen once: the spirals
are separable, so held-out accuracy must be near 1; the language model's loss cannot go
below the text's conditional entropy and must get close to it.
"""
import numpy as np

import minigrad as mg
from minigrad.nn import Linear, Module, ModuleList, Parameter, cross_entropy


def spirals(per_class, rng):
    """Three spiral arms in the plane, one per class, with a little noise."""
    label = np.repeat(np.arange(3), per_class)
    radius = np.tile(np.linspace(0.1, 1.0, per_class), 3)
    angle = label * 2 * np.pi / 3 + radius * 3.5 + rng.normal(0, 0.1, 3 * per_class)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1), label


class MLP(Module):
    def __init__(self, sizes, rng):
        self.layers = ModuleList(Linear(a, b, rng=rng) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = mg.relu(layer(x))
        return self.layers[-1](x)


def test_an_mlp_classifies_three_spirals():
    rng = np.random.default_rng(0)
    x, label = spirals(100, rng)
    model = MLP([2, 32, 32, 3], rng)
    opt = mg.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(150):
        loss = cross_entropy(model(x), label)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # Untrained, the three classes are about equally likely: a loss near log 3.
    assert abs(losses[0] - np.log(3)) < 0.2
    assert losses[-1] < 0.05 * losses[0]
    held_out, held_out_label = spirals(100, np.random.default_rng(1))
    with mg.no_grad():
        predicted = np.argmax(model(held_out).data, axis=1)
        probabilities = mg.softmax(model(held_out), axis=1).data
    assert np.mean(predicted == held_out_label) > 0.95
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert [name for name, _ in model.named_parameters()][:2] == ["layers.0.weight",
                                                                  "layers.0.bias"]


TEXT = "the cat sat on the mat. the dog sat on the log. a cat and a dog. " * 3


class CharModel(Module):
    """Predicts a character from the two before it: both are embedded by a one-hot
    matmul with one shared table, joined, passed through tanh, projected to logits."""

    def __init__(self, vocab_size, embed, hidden, rng):
        self.embedding = Parameter(rng.normal(0, 1, (vocab_size, embed)))
        self.hidden = Linear(2 * embed, hidden, rng=rng)
        self.out = Linear(hidden, vocab_size, rng=rng)

    def forward(self, first, second):
        joined = mg.concat([first @ self.embedding, second @ self.embedding], axis=1)
        return self.out(mg.tanh(self.hidden(joined)))


def conditional_entropy(context, following):
    """H(next | context) of the text in nats: the least loss any model of this context
    can reach on it."""
    pairs, counts = np.unique(np.stack([context, following], 1), axis=0, return_counts=True)
    totals = {}
    for (c, _), n in zip(pairs, counts):
        totals[c] = totals.get(c, 0) + n
    return -sum(n * np.log(n / totals[c]) for (c, _), n in zip(pairs, counts)) / len(context)


def test_a_character_level_model_learns_to_predict_the_next_character():
    vocab = sorted(set(TEXT))
    ids = np.array([vocab.index(ch) for ch in TEXT])
    one_hot = np.eye(len(vocab))
    first, second, target = one_hot[ids[:-2]], one_hot[ids[1:-1]], ids[2:]
    floor = conditional_entropy(ids[:-2] * len(vocab) + ids[1:-1], target)

    rng = np.random.default_rng(0)
    model = CharModel(len(vocab), embed=8, hidden=32, rng=rng)
    opt = mg.optim.Adam(model.parameters(), lr=0.03)
    losses = []
    for _ in range(200):
        loss = cross_entropy(model(first, second), target)
        opt.zero_grad()
        loss.backward()
        mg.optim.clip_grad_norm(model.parameters(), 5.0)
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.8 * np.log(len(vocab))  # untrained: close to a uniform guess
    assert losses[-1] < losses[0] / 3
    assert floor <= losses[-1] < floor + 0.1  # nearly as good as the counts allow

    # For every two-letter context of the text whose most frequent next letter is
    # unique, the model's most likely next letter is that one.
    contexts = ids[:-2] * len(vocab) + ids[1:-1]
    checked = 0
    for context in np.unique(contexts):
        counts = np.bincount(target[contexts == context], minlength=len(vocab))
        if np.sum(counts == counts.max()) > 1:
            continue
        a, b = divmod(int(context), len(vocab))
        with mg.no_grad():
            probabilities = mg.softmax(model(one_hot[[a]], one_hot[[b]]), axis=-1).data[0]
        assert np.argmax(probabilities) == np.argmax(counts), vocab[a] + vocab[b]
        checked += 1
    assert checked > 10
