"""The time steps of an unrolled recurrent graph, read off the graph itself.

A recurrent model built from minigrad's ops leaves no "RNN" object behind, only an
unrolled graph. What marks its steps is the scope: a model runs step t inside
``mg.scope(f"t{t}")`` (``models.LSTM``, ``GRU`` and ``RNN`` do, inside ``mg.scope(f"l{k}")``
per layer). This module groups the tensors of a graph by the innermost scope component
``t<number>`` and works out, from the edges alone, what passes between the steps:

- the tensors of step t that step t+1 of the same layer consumes: the recurrent state
  (``h`` and ``c`` for an LSTM), whatever the model calls them (step t - 1, in a layer
  that runs backwards in time, as the second half of a bidirectional RNN does);
- what each step takes from outside (the slice of ``x``, parameters, the layer below)
  and what it gives to the outside (its output, the final state);
- a structural signature per step, so that drawings can tell whether two steps have
  the same ops wired the same way (the first step, fed zeros that need no gradient,
  often does not).

``step_grad_norms`` uses it to give the norm of dLoss/d(state_t) at every step in one
call. Everything is one pass over the topological order: no recursion, and the same
graph gives the same answer on every run.
"""
import functools
import re

import numpy as np

from .nn import Parameter
from .tensor import Tensor, topological_order

__all__ = ["STEP", "step_of", "same_entry", "Step", "TimeSteps", "time_steps", "step_grad_norms",
           "norm"]

STEP = re.compile(r"t(\d+)")  # a scope component naming a time step: 't0', 't17'


def norm(array):
    """The Frobenius norm of ``array`` in float64: the size of a gradient, as
    ``step_grad_norms`` and every picture of the graph give it."""
    return float(np.linalg.norm(np.asarray(array, np.float64).ravel()))


@functools.lru_cache(maxsize=4096)
def step_of(scope):
    """(scope of the enclosing layer, step number) for a tensor made in ``scope``.

    The time step is the innermost component named ``t<number>``: 'l0/t3' -> ('l0', 3),
    'lstm/l1/t0/gates' -> ('lstm/l1', 0), 't5' -> ('', 5). (None, None) outside any step.
    """
    parts = scope.split("/") if scope else []
    for k in range(len(parts) - 1, -1, -1):
        match = STEP.fullmatch(parts[k])
        if match:
            return "/".join(parts[:k]), int(match.group(1))
    return None, None


def same_entry(a, b):
    """True when two entries of step signatures stand for the same op, but for one
    allowed difference: an input one step reads from outside every step where the other
    reads the previous step's state (a first step reading ``h0``)."""
    (label_a, name_a, refs_a), (label_b, name_b, refs_b) = a, b
    return label_a == label_b and name_a == name_b and len(refs_a) == len(refs_b) and all(
        x == y or {x[0], y[0]} == {"state", "outside"} for x, y in zip(refs_a, refs_b))


class Step:
    """One time step of one layer.

    ``tensors``    the step's tensors in creation order (leaves made inside it included).
    ``prev``       the step of the layer this one follows, ``next`` the one after it:
                   t - 1 and t + 1, or t + 1 and t - 1 in a layer that runs backwards
                   in time (the second half of a bidirectional RNN).
    ``state_in``   tensors of the previous step of the layer that this step consumes.
    ``state_out``  tensors of this step that the next step of the layer consumes.
    ``inputs``     everything else this step's ops consume: parameters, tensors made
                   outside any step (``x``, an initial state), other layers' steps.
    ``outputs``    tensors of this step used anywhere but in this step and the next
                   (the layer above, ``out``, the final state), and the root if here.
    ``signature``  hashable: op label, name and wiring of every tensor, in order. Equal
                   signatures mean the same computation; positions, not values, matter.
    ``position``   index of each tensor of the step (by id) in ``tensors``.
    All lists are in creation order, without repeats.
    """

    __slots__ = ("layer", "t", "tensors", "position", "prev", "next", "state_in",
                 "state_out", "inputs", "outputs", "signature")

    def __init__(self, layer, t):
        self.layer, self.t = layer, t
        self.tensors, self.position = [], {}
        self.prev = self.next = None
        self.state_in, self.state_out, self.inputs, self.outputs = [], [], [], []
        self.signature = None

    @property
    def name(self):
        """'l0/t3' (or 't3' for a step outside any layer scope)."""
        return f"{self.layer}/t{self.t}" if self.layer else f"t{self.t}"

    def __repr__(self):
        return f"<Step {self.name}: {len(self.tensors)} tensors>"


class TimeSteps:
    """The time-step structure of the graph of ``root`` (see ``time_steps``).

    ``order``    every tensor of the graph, in topological (creation) order.
    ``layers``   {layer scope: [Step, ...] in time order (t ascending, whichever way the
                 layer runs)}, layers in order of creation.
    ``steps``    every Step, in order of creation of its first tensor.
    ``step_at``  {id(tensor): Step} for the tensors inside a step.
    ``users``    {id(tensor): [tensors whose op consumes it]}, in creation order.
    """

    def __init__(self, root, order=None):
        if not isinstance(root, Tensor):
            raise TypeError(f"the time steps of a graph are read from the minigrad Tensor at "
                            f"its end (a loss, an output), got {type(root).__name__}")
        self.root = root
        self.order = order or topological_order(root)  # given: the caller walked it
        self.step_at, self.users = {}, {}
        found = {}
        for tensor in self.order:
            layer, t = step_of(tensor.scope)
            if layer is not None:
                step = found.get((layer, t))
                if step is None:
                    step = found[(layer, t)] = Step(layer, t)
                step.position[id(tensor)] = len(step.tensors)
                step.tensors.append(tensor)
                self.step_at[id(tensor)] = step
            if tensor.op is not None:
                for parent in tensor.op.inputs:
                    self.users.setdefault(id(parent), []).append(tensor)
        self.steps = list(found.values())
        self.layers = {}
        for step in self.steps:
            self.layers.setdefault(step.layer, []).append(step)
        for steps in self.layers.values():
            steps.sort(key=lambda s: s.t)
            run = steps[::-1] if self._runs_backward(steps) else steps
            for before, after in zip(run, run[1:]):
                before.next, after.prev = after, before
        for step in self.steps:
            self._outgoing(step)
        for step in self.steps:
            self._incoming(step)

    def _runs_backward(self, steps):
        """True for a layer whose steps hand their tensors from t to t - 1: the backward
        half of a bidirectional RNN, run from the last step to the first. Its steps are
        chained in that order, so that ``prev`` is the step it actually follows."""
        place = {id(step): k for k, step in enumerate(steps)}
        ahead = behind = 0
        for k, step in enumerate(steps):
            for tensor in step.tensors:
                for user in self.users.get(id(tensor), ()):
                    j = place.get(id(self.step_at.get(id(user))))
                    if j == k + 1:
                        ahead += 1
                    elif j == k - 1:
                        behind += 1
        return behind > ahead

    def _outgoing(self, step):
        """The step's ``state_out`` and ``outputs``, from the users of its tensors."""
        state_out, outputs = {}, {}
        for tensor in step.tensors:
            for user in self.users.get(id(tensor), ()):
                owner = self.step_at.get(id(user))
                if owner is step:
                    continue
                (state_out if owner is not None and owner is step.next else outputs)[
                    id(tensor)] = tensor
            if tensor is self.root:
                outputs[id(tensor)] = tensor
        step.state_out, step.outputs = list(state_out.values()), list(outputs.values())

    def _incoming(self, step):
        """The step's ``state_in``, ``inputs`` and ``signature``, from its ops' inputs.

        An input from the previous step is referred to by its place in that step's
        ``state_out``, not by its position inside that step, so a step after a
        different first step still has the signature of the steps after it.
        """
        slot = {id(t): j for j, t in enumerate(step.prev.state_out)} if step.prev else {}
        state_in, inputs, signature = {}, {}, []
        for tensor in step.tensors:
            refs = ()
            if tensor.op is not None:
                refs = tuple(self._reference(step, parent, slot, state_in, inputs)
                             for parent in tensor.op.inputs)
            signature.append((tensor.op.label if tensor.op is not None else "leaf",
                              tensor.name, refs))
        step.state_in = sorted(state_in.values(), key=lambda t: slot[id(t)])
        step.inputs = list(inputs.values())
        step.signature = tuple(signature)

    def _reference(self, step, parent, slot, state_in, inputs):
        """How an op of ``step`` refers to its input ``parent``, for the signature."""
        if id(parent) in step.position:
            return ("here", step.position[id(parent)])
        if id(parent) in slot:
            state_in[id(parent)] = parent
            return ("state", slot[id(parent)])
        inputs[id(parent)] = parent
        if isinstance(parent, Parameter):
            return ("parameter", parent.name)
        owner = self.step_at.get(id(parent))
        if owner is not None:
            return ("step", owner.layer, owner.t - step.t, parent.name,
                    parent.op.label if parent.op is not None else "leaf")
        return ("outside", parent.name, parent.op.label if parent.op is not None else "leaf")

    def state_of(self, step):
        """The recurrent state of ``step``: the tensors the next step consumes.

        The last step has no next step; its state is the tensors in the same places as
        the previous step's state, when the two steps agree up to there (the last may go
        on to ops of its own, a read-out made inside its scope), else the tensors with
        the same names, else its outputs. A single step has no step to compare with: its
        state is what leaves it, and what it makes under the name of an initial state it
        reads without the final 0 (``c`` for ``c0``, as the models name them), which a
        loss reading only the output leaves inside (an LSTM's ``c``).
        """
        if step.next is not None:
            return list(step.state_out)
        previous = step.prev
        if previous is None:
            state = [t for t in step.outputs if t is not self.root or t.name is not None]
            initial = {t.name[:-1] for t in step.inputs + step.tensors
                       if t.op is None and t.name and t.name.endswith("0")}
            made = {t.name: t for t in step.tensors if t.op is not None and t.name in initial}
            state += [t for t in made.values() if not any(t is s for s in state)]
            return sorted(state, key=lambda t: t.serial)
        template = previous.state_out
        places = [previous.position[id(t)] for t in template]
        end = max(places, default=-1) + 1
        if len(step.signature) >= end and all(
                same_entry(a, b) for a, b in zip(previous.signature[:end], step.signature)):
            return [step.tensors[p] for p in places]
        last_named = {t.name: t for t in step.tensors if t.name is not None}
        found = [last_named[t.name] for t in template if t.name in last_named]
        return found if len(found) == len(template) else list(step.outputs)

    def state_keys(self, step, state):
        """'l0/h' for each tensor of ``state``: the layer scope and the tensor's name. An
        unnamed tensor is named by its op and its place in the state ('l0/tanh#0'), which
        is the same at every step; a repeated name gets its place too ('l0/h#1')."""
        keys = []
        for j, tensor in enumerate(state):
            name = tensor.name
            if name is None:
                name = f"{tensor.op.label if tensor.op is not None else 'leaf'}#{j}"
            key = f"{step.layer}/{name}" if step.layer else str(name)
            keys.append(key if key not in keys else f"{key}#{j}")
        return keys


def time_steps(root):
    """The time-step structure of everything ``root`` depends on, as a ``TimeSteps``."""
    return TimeSteps(root)


def step_grad_norms(root):
    """{'l0/h': array of |dLoss/dh_t| for t = 0 .. T-1, ...}: the gradient reaching the
    recurrent state of every time step of every layer, in one call.

    Call it after ``loss.backward(retain_grads=True)`` with ``root = loss``. Each entry is
    the Frobenius norm (over the batch and the hidden units) of the full gradient of the
    loss with respect to the state tensor of that step: everything that flows into
    ``h_t``, from the next step and from the output alike. Keys are the layer's scope and
    the state tensor's name: ``"l0/h"``, ``"l0/c"``, ``"l1/h"`` for a 2-layer
    ``models.LSTM``; ``"lstm/l0/h"`` inside a ``"lstm"`` scope; ``"h"`` for a model of
    your own whose steps use ``mg.scope(f"t{t}")`` at top level. Index k of an array is
    the k-th step in time order. A state the loss does not depend on gets 0.

    The state of step t is what step t + 1 consumes of it, found from the graph, so no
    naming convention is needed (see ``minigrad.timesteps``); the last step's state is
    the tensor in the same place (or of the same name) in that step.

    Why not ``out.retain_grad()``? ``out`` is the stack of every h_t, made after the
    loop: its gradient holds only what the loss sends to each h_t directly, not what
    reaches h_t back through the later steps, which is the whole point of
    backpropagation through time. ``retain_grads=True`` keeps the gradient of the h_t
    tensors themselves, and this function finds them.

    ValueError when the graph has no ``t<number>`` scopes, or when backward was not run
    with ``retain_grads=True`` (a plain ``backward()`` releases the graph and keeps only
    the leaves' gradients).
    """
    try:
        structure = TimeSteps(root)
    except RuntimeError as error:  # a plain backward() released the graph
        raise ValueError("step_grad_norms: backward() released the graph and dropped the "
                         "steps' gradients; call loss.backward(retain_grads=True) instead "
                         f"({error})") from None
    if not structure.layers:
        raise ValueError("step_grad_norms: the graph has no time steps; a step is a scope "
                         "named t<number>: run step t inside mg.scope(f't{t}')")
    if not any(t.grad is not None for step in structure.steps for t in step.tensors
               if t.op is not None):
        raise ValueError("step_grad_norms: the tensors of the time steps hold no gradient; "
                         "call loss.backward(retain_grads=True) first (plain backward() "
                         "keeps only the leaves' gradients)")
    norms = {}
    for steps in structure.layers.values():
        columns = {}
        for k, step in enumerate(steps):
            state = structure.state_of(step)
            for key, tensor in zip(structure.state_keys(step, state), state):
                column = columns.setdefault(key, np.zeros(len(steps)))
                if tensor.grad is not None:
                    column[k] = norm(tensor.grad)
        norms.update(columns)
    return norms
