"""Self-checks for the book's exercises: right or wrong, without giving the answer away.

Every exercise whose answer is a number or an array has a check here, named after it::

    from microcircuit.exercises import check_exercise_3_1
    check_exercise_3_1(4)          # -> "Exercise 3.1: right." or a hint

A check computes the right answer with the library itself (never a stored constant), compares
it with the reader's, and returns a :class:`Verdict`: true when the answer is right, shown as
one line that says right or wrong. A wrong answer gets a hint, never the answer.
"""

from __future__ import annotations

import math

import numpy as np

from . import backend


class Verdict:
    """The outcome of a self-check: ``bool(verdict)`` is ``True`` when the answer is right."""

    def __init__(self, exercise: str, ok: bool | None, hint: str = ""):
        self.exercise, self.ok, self.hint = exercise, ok, hint

    def __bool__(self) -> bool:
        return bool(self.ok)

    @property
    def message(self) -> str:
        if self.ok is None:
            return f"Exercise {self.exercise}: no answer yet. Set `answer` and run the cell again."
        if self.ok:
            return f"Exercise {self.exercise}: right."
        return f"Exercise {self.exercise}: not yet. {self.hint}".rstrip()

    def __repr__(self) -> str:
        return self.message

    def _repr_html_(self) -> str:
        colour = {None: "#555", True: "#1a7f37", False: "#b35900"}[self.ok]
        return f'<p class="mc-verdict" style="color:{colour}">{self.message}</p>'


def _number(answer):
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _check_number(exercise, answer, right, *, rel=1e-3, abs_tol=1e-9, hint=""):
    if answer is None:
        return Verdict(exercise, None)
    value = _number(answer)
    if value is None:
        return Verdict(exercise, False, "The answer should be a single number.")
    return Verdict(exercise, math.isclose(value, right, rel_tol=rel, abs_tol=abs_tol), hint)


def _check_array(exercise, answer, right, *, atol=1e-6, hint=""):
    if answer is None:
        return Verdict(exercise, None)
    right = np.asarray(right, dtype=float)
    try:
        value = np.asarray(answer, dtype=float)
    except (TypeError, ValueError):
        return Verdict(exercise, False, f"The answer should be {right.size} numbers.")
    if value.shape != right.shape:
        return Verdict(exercise, False, f"The answer should be {right.size} numbers, in order.")
    return Verdict(exercise, bool(np.allclose(value, right, atol=atol)), hint)


def _check_set(exercise, answer, right, hint=""):
    if answer is None:
        return Verdict(exercise, None)
    try:
        value = {int(v) for v in answer}
    except (TypeError, ValueError):
        return Verdict(exercise, False, "The answer should be a list of layer numbers, like [1, 2].")
    return Verdict(exercise, value == set(right), hint)


# ------------------------------------------------------------------- chapter 2
def check_exercise_2_1(answer) -> Verdict:
    """How many feedback weights do SC-FA's matrices ``B^2`` and ``B^3`` of the 784-64-32-10 network hold?"""
    from .network import Network

    net = Network([784, 64, 32, 10], rule="scfa", seed=0)
    right = sum(int(np.prod(k.shape)) for k in net.rule.kernels if k is not None)
    return _check_number("2.1", answer, right, rel=0, hint="B^{l+1} has shape N_l x N_{l+1}; the first layer needs none.")


# ------------------------------------------------------------------- chapter 3
def check_exercise_3_1(answer) -> Verdict:
    """Spikes of a non-leaky cell under the constant current 0.4 for 10 steps."""
    from .neurons import simulate

    right = float(backend.to_numpy(simulate(np.full((10, 1), 0.4))["spikes"]).sum())
    return _check_number("3.1", answer, right, rel=0, hint="Count the charge: 10 steps of 0.4, one spike per θ.")


def check_exercise_3_2(answer) -> Verdict:
    """The smallest constant current that makes a leaky cell with tau_m = 5 steps fire eventually."""
    from .neurons import LIFParameters

    p = LIFParameters(tau_m=5.0)
    right = p.theta * (1.0 - p.alpha)
    return _check_number("3.2", answer, right, rel=5e-3,
                         hint="Without spikes the potential settles where the leak removes what the current adds.")


# ------------------------------------------------------------------- chapter 4
def check_exercise_4_1(answer) -> Verdict:
    """Smallest T for which the Bernoulli rate of x = 0.5 has a standard deviation of at most 0.05."""
    x, sd = 0.5, 0.05
    right = math.ceil(x * (1 - x) / sd**2 - 1e-9)
    return _check_number("4.1", answer, right, rel=0, hint="The count is binomial: the rate's variance is x(1-x)/T.")


def check_exercise_4_2(answer) -> Verdict:
    """Rate of the first layer's IF cell for the pixel x = 0.3 with direct coding and T = 8."""
    from .encoding import spike_train
    from .neurons import simulate

    right = float(backend.to_numpy(simulate(spike_train(np.array([0.3]), 8, "direct"))["r"])[0])
    return _check_number("4.2", answer, right, rel=1e-6, hint="The count is floor(T x); the rate is count / T.")


# ------------------------------------------------------------------- chapter 5
def _chapter5_layer():
    from .layers import PyramidalLayer
    from .neurons import LIFParameters

    layer = PyramidalLayer(in_shape=(4,), units=3, lif=LIFParameters(), rng=np.random.default_rng(0))
    layer.W[...] = backend.asarray(np.array([[0.25, 0.25, 0.0, 0.0], [0.5, 0.0, 0.0, 0.25], [-0.5, 0.25, 0.0, 0.0]]))
    return layer


def check_exercise_5_1(answer) -> Verdict:
    """Spike counts of the chapter's three cells over T = 16 steps for the input (0.5, 1, 0, 1)."""
    from .encoding import encode

    layer, T = _chapter5_layer(), 16
    x = backend.asarray(np.array([[0.5, 1.0, 0.0, 1.0]]))
    enc = encode(x, T, "direct")
    layer.reset(batch=1)
    for t in range(T):
        layer.step(enc.step(t), constant=enc.constant)
    right = np.rint(backend.to_numpy(layer.finish(T, enc.rate))[0] * T)
    return _check_array("5.1", answer, right, hint="Compute I = W x first; then each count is floor(T I), and 0 for I <= 0.")


# ------------------------------------------------------------------- chapter 6
def check_exercise_6_4(answer) -> Verdict:
    """Rates (E+, E-) of the error cells of a cell with gain 0.5 and apical input -0.6."""
    from .circuit import ErrorCells

    cells = ErrorCells.from_drive(backend.asarray(np.array([0.5])), backend.asarray(np.array([-0.6])))
    right = [float(backend.to_numpy(cells.pos)[0]), float(backend.to_numpy(cells.neg)[0])]
    return _check_array("6.4", answer, right, hint="The drive is g a; E+ takes its positive part, E- its negative part.")


# ------------------------------------------------------------------- chapter 7
def check_exercise_7_1(answer) -> Verdict:
    """Drift per step of one weight (eta = 0.01, r = 0.5) when E+ fires 0.2 and E- 0.1 above its signal."""
    from .circuit import ErrorCells, hebbian_update
    from .layers import PyramidalLayer
    from .neurons import LIFParameters

    layer = PyramidalLayer(in_shape=(1,), units=1, lif=LIFParameters(), rng=np.random.default_rng(0))
    layer.r_pre = backend.asarray(np.array([[0.5]]))
    zero = backend.asarray(np.zeros((1, 1)))
    dW, _ = hebbian_update(ErrorCells(zero + 0.2, zero + 0.1), layer)
    right = 0.01 * float(backend.to_numpy(dW)[0, 0])
    return _check_number("7.1", answer, right, rel=1e-4, hint="Only E+ - E- enters the rule, times eta and the presynaptic rate.")


def inverted_feedback_updates(net, x, y):
    """The updates of ``net`` (a microcircuit) with its feedback wiring, and with every feedback
    synapse's sign inverted (E+ reaching the apical dendrite through the inhibitory route and E-
    through the excitatory one), from one forward pass. Returns ``(normal, inverted)``, each a list
    of ``(dW, db)`` per plastic layer as host arrays."""
    from .circuit import Microcircuit

    if not isinstance(net.rule, Microcircuit):
        raise TypeError("inverted_feedback_updates needs a Network with rule='microcircuit'")
    e = net.output_error(x, y)
    normal = net.rule.updates(net.layers, e)
    inverted = net.rule.updates(net.layers, e, sign=-1)  # every feedback synapse inverted
    host = lambda ups: [tuple(backend.to_numpy(a) for a in u) for u in ups if u is not None]  # noqa: E731
    return host(normal), host(inverted)


def flipped_layers(normal, inverted) -> list[int]:
    """Layer numbers (1 = the first plastic layer) whose weight update changed sign."""
    return [k + 1 for k, (a, b) in enumerate(zip(normal, inverted))
            if np.abs(a[0]).max() > 0 and np.allclose(b[0], -a[0], atol=1e-6 * np.abs(a[0]).max())]


def check_exercise_7_3(answer) -> Verdict:
    """Which layers of the 20-16-12-8-4 microcircuit flip their update when every feedback sign is inverted?"""
    from .network import Network

    net = Network([20, 16, 12, 8, 4], rule="microcircuit", T=8, seed=1, weight_scale=2.0)
    rng = np.random.default_rng(0)
    right = flipped_layers(*inverted_feedback_updates(net, rng.random((8, 20)), rng.integers(0, 4, size=8)))
    return _check_set("7.3", answer, right,
                      hint="Follow the sign down from the output: each feedback step inverts it once more.")


# ------------------------------------------------------------------- chapter 8
def check_exercise_8_3(answer) -> Verdict:
    """Ratio of the spread of one spiking output-layer update at T_e = 4 to that at T_e = 64."""
    right = math.sqrt(64 / 4)  # a binomial count's standard deviation over T_e goes as 1/sqrt(T_e)
    return _check_number("8.3", answer, right, rel=0.15,
                         hint="A count of T_e Bernoulli steps is binomial: how does the sd of count / T_e scale?")


# ------------------------------------------------------------------- chapter 9
def check_exercise_9_4(answer) -> Verdict:
    """First-order loss decrease of an update at 60 degrees to BP's, as a fraction of BP's (same length)."""
    from .metrics import angle_degrees

    bp = np.array([1.0, 0.0])
    other = np.array([math.cos(math.radians(60.0)), math.sin(math.radians(60.0))])
    right = float(np.cos(np.radians(angle_degrees(other, bp))))
    return _check_number("9.4", answer, right, rel=1e-3, hint="To first order the loss falls by <step, gradient>.")


# ------------------------------------------------------------------ chapter 10
def check_exercise_10_1(answer) -> Verdict:
    """Plastic parameters (weights and biases) of the network of the mnist-mlp preset."""
    from . import presets
    from .network import Network

    net = Network(presets.preset("mnist-mlp")["layers"], rule="scfa", seed=0)
    right = sum(int(np.prod(p.shape)) for layer in net.plastic_layers for p in layer.params)
    return _check_number("10.1", answer, right, rel=0,
                         hint="Each dense layer has N_l x N_{l-1} weights and N_l biases.")


# ------------------------------------------------------------------ chapter 11
def _cifar_first_conv():
    from .layers import Conv
    from .network import Network

    return Network([(3, 32, 32), Conv(16, kernel=3), 10], rule="scfa", seed=0).layers[0]


def check_exercise_11_1(answer) -> Verdict:
    """Basal weights (without biases) of Conv(16, kernel=3) on a 3-channel image."""
    right = int(np.prod(_cifar_first_conv().W.shape))
    return _check_number("11.1", answer, right, rel=0, hint="One kernel per feature map: maps x channels x k x k.")


def check_exercise_11_2(answer) -> Verdict:
    """Weights of the locally connected layer with the receptive fields of Conv(16, kernel=3) on 32 x 32."""
    layer = _cifar_first_conv()
    positions = int(np.prod(layer.out_shape[1:]))
    right = int(np.prod(layer.W.shape)) * positions
    return _check_number("11.2", answer, right, rel=0, hint="Every position now has its own copy of every kernel.")


# ------------------------------------------------------------------ chapter 12
def check_exercise_12_1(answer) -> Verdict:
    """BioTorch: test error of sign-concordant (fixed random) feedback minus BP's on CIFAR-10, in points."""
    from . import report

    table = report.biotorch_table()
    bp = next(r for r in table if r["method"] == "BP")
    sc = next(r for r in table if r["method"] == "sign-concordant (fixed random)")
    return _check_number("12.1", answer, sc["cifar10"] - bp["cifar10"], rel=0, abs_tol=0.006,
                         hint="Both numbers are in the BioTorch table; subtract BP's error.")


def check_exercise_12_2(answer) -> Verdict:
    """Expected estimate of an error cell of rate 1.5 when the scale is fixed at kappa = 1 (T_e = 16)."""
    rate, scale, T_e = 1.5, 1.0, 16
    p = min(rate / scale, 1.0)  # a Bernoulli cell cannot fire with probability above 1
    right = scale * T_e * p / T_e
    return _check_number("12.2", answer, right, rel=1e-6,
                         hint="A cell fires at most once per step, whatever its rate asks for.")


CHECKS = {name[len("check_exercise_"):].replace("_", "."): fn for name, fn in sorted(globals().items())
          if name.startswith("check_exercise_")}
"""Every self-check, by exercise number ("7.3" -> check_exercise_7_3)."""
