"""A hand-fused numpy LSTM with hand-derived backpropagation through time.

This is the floor any numpy LSTM is measured against: the same maths as
``models.LSTM`` followed by a Linear head on every step and a mean binary cross-entropy
with logits, but with no graph, no per-op objects and no temporaries that a preallocated
buffer can replace. Parameters use minigrad's layout, so the very same arrays can be
handed to both:

    weight (D+H, 4H)  rows: input x_t then h_{t-1};  columns: gates i, f, g, o
    bias   (4H,)
    head_weight (H, O), head_bias (O,)

One step t (s = sigmoid)::

    z = [x_t, h_{t-1}] @ weight + bias
    i, f, g, o = s(z_i), s(z_f), tanh(z_g), s(z_o)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)
    logits_t = h_t @ head_weight + head_bias

and the loss is mean(softplus(logits) - logits * target) over all N, T, O.

Backward, from t = T-1 down to 0, with dh and dc carried from step t+1::

    dh     = dlogits_t @ head_weight.T + dh_next
    do     = dh * tanh(c_t)
    dc     = dc_next + dh * o * (1 - tanh(c_t)^2)
    di, df, dg = dc * g, dc * c_{t-1}, dc * i
    dc_next = dc * f
    dz     = [di * i(1-i), df * f(1-f), dg * (1-g^2), do * o(1-o)]
    dh_next = dz @ weight[D:].T

The weight and input gradients need no recurrence, so they are one large matmul each
after the loop instead of T small ones: dweight = sum_t [x_t, h_{t-1}]^T dz_t.

Two tricks keep the step cheap. All four gates come from one ``exp`` call:
sigmoid(z) = 1 / (1 + exp(-z)) and tanh(z) = 2 sigmoid(2z) - 1, and the factors -1 and
-2 are folded into a copy of the weight and bias columns (scaling by a power of two is
exact, so this is the same z). ``exp`` is used rather than ``tanh`` because numpy's
float64 ``tanh`` is several times slower per element on CPUs without AVX-512 (the cell's
tanh(c_t) takes the same route in float64, see ``tanh_into``). And every array lives in
a buffer allocated once per input shape and written with ``out=``.

The input rows are deliberately not split off into one big matmul over all steps: like
``models.LSTM``, each step does one (N, D+H) @ (D+H, 4H) product, so both do the same
forward matmuls.

Run ``python benchmarks/reference_lstm.py`` to check it against minigrad (``self_check``,
which every benchmark using it runs first) and time one training step.
"""
import numpy as np


def tanh_into(x, out):
    """out = tanh(x). For float64 as 2 / (1 + exp(-2x)) - 1, about twice as fast as
    ``np.tanh`` there (to within 1e-16 absolute, not relative, near 0); numpy's float32
    ``tanh`` is vectorised and as fast as that formula, so it is used as it is."""
    if x.dtype != np.float64:
        return np.tanh(x, out=out)
    np.multiply(x, -2.0, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    out *= 2.0
    out -= 1.0
    return out


class ReferenceLSTM:
    """One-layer LSTM + Linear head + BCE-with-logits loss over the given arrays.

    The arrays are used, not copied: an optimizer (or minigrad) updating them in place is
    seen by the next ``forward``. Arrays returned by ``forward``/``backward`` live in this
    object's buffers and are overwritten by the next call; copy them to keep them.
    """

    def __init__(self, weight, bias, head_weight, head_bias):
        self.weight, self.bias = weight, bias
        self.head_weight, self.head_bias = head_weight, head_bias
        self.hidden_size = weight.shape[1] // 4
        self.input_size = weight.shape[0] - self.hidden_size
        if weight.shape != (self.input_size + self.hidden_size, 4 * self.hidden_size):
            raise ValueError(f"weight of shape {weight.shape}: expected (D+H, 4H)")
        self._shape = None

    def _allocate(self, n, t, dtype):
        """Buffers for a batch of n sequences of length t; reused while these stay fixed."""
        d, h = self.input_size, self.hidden_size
        o = self.head_weight.shape[1]
        empty = lambda *shape: np.empty(shape, dtype)  # noqa: E731
        self.xh = empty(t, n, d + h)          # [x_t, h_{t-1}] per step (time-major)
        self.act = empty(t, n, 4 * h)         # gate activations i, f, g, o
        self.cell = empty(t + 1, n, h)        # c_{-1} = 0, c_0, ..., c_{T-1}
        self.tanh_cell = empty(t, n, h)
        self.hs = empty(t, n, h)              # h_t, the head's input
        self.logits = empty(t, n, o)
        self.dz = empty(t, n, 4 * h)          # gradient of the gate pre-activations
        self.dhs = empty(t, n, h)             # gradient reaching h_t from the head
        self.dlogits = empty(t, n, o)
        self.scaled_w = empty(d + h, 4 * h)
        self.scaled_b = empty(4 * h)
        self.scale = np.full(4 * h, -1.0, dtype)
        self.scale[2 * h:3 * h] = -2.0        # tanh(z) = 2 sigmoid(2z) - 1
        self.dh, self.dc, self.tmp = empty(n, h), empty(n, h), empty(n, h)
        self.deriv = empty(n, 4 * h)
        self.grads = {"weight": np.empty_like(self.weight), "bias": np.empty_like(self.bias),
                      "head_weight": np.empty_like(self.head_weight),
                      "head_bias": np.empty_like(self.head_bias)}
        self.dx = empty(t, n, d)
        self._shape = (n, t, dtype)

    def forward(self, x, target):
        """Loss (a Python float) for x (N, T, D) and target (N, T, O); keeps the cache."""
        n, t, d = x.shape
        if d != self.input_size:
            raise ValueError(f"x of shape {x.shape}: expected last dimension {self.input_size}")
        if self._shape != (n, t, x.dtype):
            self._allocate(n, t, x.dtype)
        h = self.hidden_size
        xh, act, cell, tanh_cell, hs = self.xh, self.act, self.cell, self.tanh_cell, self.hs
        np.multiply(self.weight, self.scale, out=self.scaled_w)
        np.multiply(self.bias, self.scale, out=self.scaled_b)
        xh[:, :, :d] = x.transpose(1, 0, 2)
        xh[0, :, d:] = 0.0
        cell[0] = 0.0
        with np.errstate(over="ignore"):  # exp(-z) = inf for z << 0: sigmoid(z) = 0, right
            for s in range(t):
                a = act[s]
                np.matmul(xh[s], self.scaled_w, out=a)
                a += self.scaled_b                   # -z, and -2z for g
                np.exp(a, out=a)
                a += 1.0
                np.reciprocal(a, out=a)              # sigmoid(z), and sigmoid(2z) for g
                i, f, g, o = a[:, :h], a[:, h:2 * h], a[:, 2 * h:3 * h], a[:, 3 * h:]
                g *= 2.0
                g -= 1.0
                c = cell[s + 1]
                np.multiply(f, cell[s], out=c)
                np.multiply(i, g, out=self.tmp)
                c += self.tmp
                tanh_into(c, tanh_cell[s])
                np.multiply(o, tanh_cell[s], out=hs[s])
                if s + 1 < t:
                    xh[s + 1, :, d:] = hs[s]
        logits = self.logits
        np.matmul(hs.reshape(t * n, h), self.head_weight, out=logits.reshape(t * n, -1))
        logits += self.head_bias
        self._target = target.transpose(1, 0, 2)   # a view, time-major like logits
        return float(np.mean(np.logaddexp(0, logits) - logits * self._target))

    @property
    def output(self):
        """h_t for every step, batch-first (N, T, H) like ``models.LSTM``'s output."""
        return self.hs.transpose(1, 0, 2)

    def backward(self, input_grad=False):
        """Gradients of the last ``forward``'s loss: dict with 'weight', 'bias',
        'head_weight', 'head_bias', and 'x' (N, T, D) if ``input_grad``."""
        t, n, h = self.hs.shape
        d = self.input_size
        w_hidden_t = self.weight[d:].T
        grads, act, cell, tanh_cell = self.grads, self.act, self.cell, self.tanh_cell
        dh, dc, tmp, deriv = self.dh, self.dc, self.tmp, self.deriv

        # Head and loss: d mean(softplus(l) - l*y) / dl = (sigmoid(l) - y) / count.
        dlogits = self.dlogits
        np.multiply(self.logits, 0.5, out=dlogits)
        np.tanh(dlogits, out=dlogits)
        dlogits *= 0.5
        dlogits += 0.5
        dlogits -= self._target
        dlogits /= dlogits.size
        flat_h = self.hs.reshape(t * n, h)
        flat_dl = dlogits.reshape(t * n, -1)
        np.matmul(flat_h.T, flat_dl, out=grads["head_weight"])
        np.sum(flat_dl, axis=0, out=grads["head_bias"])
        np.matmul(flat_dl, self.head_weight.T, out=self.dhs.reshape(t * n, h))

        dc[...] = 0.0
        for s in range(t - 1, -1, -1):
            a, dz = act[s], self.dz[s]
            i, f, g, o = a[:, :h], a[:, h:2 * h], a[:, 2 * h:3 * h], a[:, 3 * h:]
            if s == t - 1:
                dh[...] = self.dhs[s]
            else:
                np.matmul(self.dz[s + 1], w_hidden_t, out=dh)
                dh += self.dhs[s]
            # dz_o holds d loss / d o for now; dc += dh * o * (1 - tanh(c)^2)
            np.multiply(dh, tanh_cell[s], out=dz[:, 3 * h:])
            np.multiply(tanh_cell[s], tanh_cell[s], out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            tmp *= o
            tmp *= dh
            dc += tmp
            np.multiply(dc, g, out=dz[:, :h])
            np.multiply(dc, cell[s], out=dz[:, h:2 * h])
            np.multiply(dc, i, out=dz[:, 2 * h:3 * h])
            dc *= f
            # Activation derivatives for all four gates at once: a(1-a), then 1-g^2 for g.
            np.subtract(1.0, a, out=deriv)
            deriv *= a
            gd = deriv[:, 2 * h:3 * h]
            np.multiply(g, g, out=gd)
            np.subtract(1.0, gd, out=gd)
            dz *= deriv

        flat_dz = self.dz.reshape(t * n, 4 * h)
        np.matmul(self.xh.reshape(t * n, d + h).T, flat_dz, out=grads["weight"])
        np.sum(flat_dz, axis=0, out=grads["bias"])
        if input_grad:
            np.matmul(flat_dz, self.weight[:d].T, out=self.dx.reshape(t * n, d))
            return dict(grads, x=self.dx.transpose(1, 0, 2))
        return grads


def make_problem(n, t, d, h, out_features=1, dtype=np.float64, seed=0):
    """Random parameters, inputs and 0/1 targets. The parameters follow PyTorch's default
    init, U(-1/sqrt(H), 1/sqrt(H)), which is also Linear(H, O)'s bound."""
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(h)
    params = {
        "weight": rng.uniform(-bound, bound, (d + h, 4 * h)).astype(dtype),
        "bias": rng.uniform(-bound, bound, 4 * h).astype(dtype),
        "head_weight": rng.uniform(-bound, bound, (h, out_features)).astype(dtype),
        "head_bias": rng.uniform(-bound, bound, out_features).astype(dtype),
    }
    x = rng.standard_normal((n, t, d)).astype(dtype)
    target = (rng.random((n, t, out_features)) < 0.5).astype(dtype)
    return params, x, target


def self_check(seed=7):
    """Raise AssertionError unless this floor computes exactly what minigrad computes.

    A floor that computed something else would make every speed ratio measured against
    it meaningless, so every benchmark that uses it calls this first (it takes a few
    milliseconds). Its gradients are checked two independent ways: against central
    differences of its own forward pass, with weights spread so that gates saturate
    somewhere, and against minigrad's backward through ``models.LSTM`` + ``nn.Linear`` +
    the BCE-with-logits loss on the same arrays, to 1e-10.
    """
    import minigrad as mg
    from minigrad.gradcheck import numeric_gradient
    from minigrad.models import LSTM

    params, x, target = make_problem(3, 5, 2, 4, 2, seed=seed)
    params["weight"] *= 4.0
    ref = ReferenceLSTM(**params)
    ref.forward(x, target)
    analytic = {k: v.copy() for k, v in ref.backward(input_grad=True).items()}
    for name, array in dict(params, x=x).items():
        numeric = numeric_gradient(lambda: ref.forward(x, target), array)
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-9,
                                   err_msg=f"reference LSTM: gradient of {name} against "
                                           "central differences")

    loss = ref.forward(x, target)  # the buffers now hold the last perturbed run: redo it
    lstm = LSTM(x.shape[2], params["head_weight"].shape[0], dtype=x.dtype)
    head = mg.nn.Linear(*params["head_weight"].shape, dtype=x.dtype)
    lstm.l0.weight.data[...] = params["weight"]
    lstm.l0.bias.data[...] = params["bias"]
    head.weight.data[...] = params["head_weight"]
    head.bias.data[...] = params["head_bias"]
    xt = mg.Tensor(x, requires_grad=True)
    out, _ = lstm(xt)
    mg_loss = mg.nn.binary_cross_entropy_with_logits(head(out), mg.Tensor(target))
    mg_loss.backward()
    np.testing.assert_allclose(loss, mg_loss.item(), rtol=1e-12)
    np.testing.assert_allclose(ref.output, out.data, rtol=0, atol=1e-12)
    mine = {"weight": lstm.l0.weight.grad, "bias": lstm.l0.bias.grad,
            "head_weight": head.weight.grad, "head_bias": head.bias.grad, "x": xt.grad}
    for name, value in mine.items():
        np.testing.assert_allclose(analytic[name], value, rtol=1e-10, atol=1e-12,
                                   err_msg=f"reference LSTM: gradient of {name} against "
                                           "minigrad")


def main():
    import argparse
    import time

    parser = argparse.ArgumentParser(description="Time one training step of the reference LSTM.")
    parser.add_argument("--shape", type=int, nargs=4, default=(32, 100, 16, 64),
                        metavar=("N", "T", "D", "H"))
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()
    self_check()
    params, x, target = make_problem(*args.shape, dtype=np.dtype(args.dtype))
    ref = ReferenceLSTM(**params)
    times = []
    for rep in range(args.reps + 5):
        start = time.perf_counter()
        loss = ref.forward(x, target)
        ref.backward()
        if rep >= 5:
            times.append(time.perf_counter() - start)
    print(f"shape (N, T, D, H) = {tuple(args.shape)} {args.dtype}: loss {loss:.6f}, "
          f"median {np.median(times) * 1e6:.0f} µs per forward+backward")


if __name__ == "__main__":
    main()
