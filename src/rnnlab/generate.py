"""Generating text from a character model: sampling, greedy decoding and beam search.

Generation advances the model one character at a time, so the whole-sequence
``CharRNN.forward`` (which allocates caches for backprop and a (B, T, .)
output) is the wrong tool. :class:`Stepper` runs each layer's cell directly
for one time step, reusing the cells' own ``step_forward`` so the cell math
lives in one place::

    xw = x_t W_x + b        layer 0: a row of the precomputed table E W_x + b
    hw = h_{t-1} W_h
    state_t = cell.step_forward(t, xw, hw, state_{t-1})
    z_t = (h_t W_p) W_o + b_o

Folding the input projection of layer 0 into a (V, G*H) table turns the
embedding (or one-hot) product into a row lookup. Dropout is never applied:
generation always runs the eval-mode model.

``precision="bf16"`` (``rnnlab sample --precision bf16``): the layers' and the output layer's
products take bf16 operands with float32 accumulation (:func:`rnnlab.fast.bf16.fixed`: each weight
rounded and packed once per :class:`Stepper`), as evaluation does; refused where the CPU or oneMKL
cannot run it (:mod:`rnnlab.blas.precision`).

Sampling draws from softmax(z / temperature), optionally restricted to the
``top_k`` largest logits; ``argmax`` picks the most likely character (greedy).
Beam search keeps the ``width`` best partial continuations by total
log-probability and returns the best one of the requested length. All random
draws come from ``np.random.default_rng(seed)``, so a seed fixes the text.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from . import fast
from .blas import precision as products
from .data import Vocab
from .errors import ConfigError, DataError
from .fast import bf16, stepping
from .fast.stepping import CellRunner  # noqa: F401  (re-exported)
from .layers import Embedding
from .layers.losses import log_softmax
from .models import CharRNN


@contextlib.contextmanager
def eval_mode(model: CharRNN) -> Iterator[CharRNN]:
    """Run ``model`` in eval mode (cells such as batch-norm ones use it), then restore."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


class Stepper:
    """Advance ``model`` one character at a time for a batch of B independent streams.

    The weights are read once at construction: build a new Stepper after
    changing them. ``feed(ids)`` returns the (B, V) logits of the next
    character in a buffer that the following call overwrites.
    """

    def __init__(self, model: CharRNN, precision: str | None = None) -> None:
        self.model = model
        # the products' precision, fixed for this stepper (checked here: one line where it cannot run)
        self.precision = products.check(precision) if precision is not None else products.current()
        rnn = model.rnn
        if rnn.bidirectional:
            raise ConfigError("a bidirectional model cannot generate text left to right")
        self.cells = [layer.cell for layer in rnn.layers]
        first = self.cells[0]
        # ids -> layer-0 input pre-activations in one lookup (one-hot: the rows of W_x)
        table = first.params["W_x"]
        if isinstance(model.embed, Embedding):
            table = model.embed.params["W"] @ table
        # a cell with project_bias False (BN-/LN-LSTM) adds b itself, after normalising
        self.table0 = np.ascontiguousarray(table + first.params["b"] if first.project_bias else table)
        self.dtype = self.table0.dtype
        self.W_p = rnn.proj.params["W"] if rnn.proj is not None else None
        self.W_o, self.b_o = model.out.params["W"], model.out.params["b"]
        self.batch = 0
        self.t = 0
        self.states: list[tuple[np.ndarray, ...]] = []

    def reset(self, batch: int = 1) -> "Stepper":
        """Zero states for ``batch`` streams, and buffers to match."""
        self.states = [cell.initial_state(batch, self.dtype) for cell in self.cells]
        self.t = 0
        self._buffers(batch)
        return self

    def _buffers(self, batch: int) -> None:
        # One runner per layer, with its buffers made here once: generation makes
        # thousands of tiny steps, where allocation and call count are the cost.
        # LSTM and GRU layers get a fused runner (rnnlab.fast.stepping); others
        # (and all, under fast.reference_only()) step through the cell's own code.
        self.batch = batch
        self.runners = []
        with products.use(self.precision):   # the runners' products are made (bf16: packed) here
            for k, cell in enumerate(self.cells):
                kernel = fast.kernel_for(cell)
                runner = stepping.RUNNERS.get(kernel, CellRunner)
                self.runners.append(runner(cell, self.table0 if k == 0 else None, batch, self.dtype))
            self.prod_p = None if self.W_p is None else bf16.fixed(self.W_p, batch)
            self.prod_o = bf16.fixed(self.W_o, batch)
        self.proj = None if self.W_p is None else np.empty((batch, self.W_p.shape[1]), self.dtype)
        self.logits = np.empty((batch, self.W_o.shape[1]), self.dtype)

    def feed(self, ids: np.ndarray) -> np.ndarray:
        """Consume one character per stream, ``ids`` of shape (B,); return the (B, V) logits."""
        if len(ids) != self.batch:
            raise ValueError(f"expected {self.batch} ids (one per stream), got {len(ids)}")
        states = self.states
        inp = ids
        for k, runner in enumerate(self.runners):
            states[k] = runner.step(inp, states[k], self.t)
            inp = states[k][0]
        h = inp
        if self.prod_p is not None:
            h = self.prod_p(h, self.proj)
        self.prod_o(h, self.logits)
        self.logits += self.b_o
        self.t += 1
        return self.logits

    def feed_text(self, ids: np.ndarray) -> np.ndarray:
        """Feed a prime (1-D ids) to every stream; returns the logits after its last character."""
        logits = self.logits
        for i in ids:
            logits = self.feed(np.full(self.batch, i, dtype=np.intp))
        return logits

    def select(self, rows: np.ndarray) -> None:
        """Keep the streams ``rows`` (in that order, repeats allowed): beam search's reordering."""
        self.states = [tuple(a[rows] for a in state) for state in self.states]
        if len(rows) != self.batch:
            self._buffers(len(rows))


# -- inputs -----------------------------------------------------------------------------
def encode_prime(vocab: Vocab, prime: str) -> np.ndarray:
    """Ids of the prime text; a DataError names any characters the model never saw."""
    try:
        return vocab.encode(prime).astype(np.intp)
    except DataError as exc:
        raise DataError(f"prime text: {exc}") from None


def start_ids(vocab: Vocab, prime: str, rng: np.random.Generator) -> np.ndarray:
    """The prime's ids; with no prime, a newline if the model knows it, else a random character."""
    if prime:
        return encode_prime(vocab, prime)
    if "\n" in vocab:
        return np.array([vocab.index("\n")], dtype=np.intp)
    return np.array([rng.integers(len(vocab))], dtype=np.intp)


def _check(length: int, temperature: float, top_k: int) -> None:
    if length < 0:
        raise ConfigError(f"length must be >= 0, got {length}")
    if not temperature > 0:
        raise ConfigError(f"temperature must be positive, got {temperature} (use argmax for greedy decoding)")
    if top_k < 0:
        raise ConfigError(f"top_k must be >= 0, got {top_k}")


# -- sampling ---------------------------------------------------------------------------
def pick(logits: np.ndarray, rng: np.random.Generator, temperature: float = 1.0, top_k: int = 0,
         argmax: bool = False) -> int:
    """One character id from one row of logits (a one-off :class:`Sampler`)."""
    return Sampler(rng, temperature, top_k, argmax, block=1)(logits)


def stream(model: CharRNN, vocab: Vocab, prime: str = "", length: int = 200, *, temperature: float = 1.0,
           top_k: int = 0, seed: int | None = None, argmax: bool = False,
           precision: str = "fp32") -> Iterator[str]:
    """Yield ``length`` generated characters one by one (the prime itself is not repeated)."""
    _check(length, temperature, top_k)
    products.check(precision)
    rng = np.random.default_rng(seed)
    ids = start_ids(vocab, prime, rng)  # validated before the first character is asked for
    return _stream(model, vocab, ids, length, rng, temperature, top_k, argmax, precision)


class Sampler:
    """Draw character ids from rows of logits: ``Sampler(rng, temperature, top_k, argmax)(logits)``.

    Gumbel-max: ``argmax(z / T + g)``, with g i.i.d. standard Gumbel, is an exact
    draw from softmax(z / T), and no softmax is computed (2 us here against 10 for
    an inverse-CDF draw, about 40 for ``rng.choice(p=...)``); float64 noise, so no
    ties. It is computed as ``argmax(z + T g)``, the same thing, with the noise made
    (and scaled) ``block`` rows at a time: about 2 us a character when streaming,
    against 6 for a fresh draw each time (``block=1``, what :func:`pick` does).
    The same seed gives the same sequence of ids.
    """

    def __init__(self, rng: np.random.Generator, temperature: float = 1.0, top_k: int = 0,
                 argmax: bool = False, block: int = 256) -> None:
        self.rng, self.temperature, self.top_k, self.argmax, self.block = rng, temperature, top_k, argmax, block
        self.noise: np.ndarray | None = None
        self.row = 0

    def __call__(self, logits: np.ndarray) -> int:
        if self.argmax:
            return int(np.argmax(logits))
        z, candidates = logits, None
        if 0 < self.top_k < z.size:
            candidates = np.argpartition(z, -self.top_k)[-self.top_k:]
            z = z[candidates]
        if self.noise is None or self.row == self.block or self.noise.shape[1] != z.size:
            self.noise = self.rng.gumbel(size=(self.block, z.size))
            if self.temperature != 1.0:
                self.noise *= self.temperature
            self.row = 0
        i = int((z + self.noise[self.row]).argmax())
        self.row += 1
        return int(candidates[i]) if candidates is not None else i


def _stream(model: CharRNN, vocab: Vocab, ids: np.ndarray, length: int, rng: np.random.Generator,
            temperature: float, top_k: int, argmax: bool, precision: str = "fp32") -> Iterator[str]:
    chars = vocab.chars
    draw = Sampler(rng, temperature, top_k, argmax)
    with eval_mode(model):
        stepper = Stepper(model, precision).reset(1)
        logits = stepper.feed_text(ids)
        token = np.empty(1, dtype=np.intp)
        for n in range(length):
            token[0] = draw(logits[0])
            yield chars[token[0]]
            if n + 1 < length:  # the last character needs no prediction after it
                logits = stepper.feed(token)


def sample(model: CharRNN, vocab: Vocab, prime: str = "", length: int = 200, **kw: Any) -> str:
    """The generated continuation as one string (see :func:`stream` for the options)."""
    return "".join(stream(model, vocab, prime, length, **kw))


# -- beam search ---------------------------------------------------------------------------
class BeamResult(NamedTuple):
    text: str
    log_prob: float  # natural log-probability of ``text`` given the prime


def beam_ids(step: Callable[[np.ndarray], np.ndarray], select: Callable[[np.ndarray], None],
             logits: np.ndarray, length: int, width: int) -> tuple[list[int], float]:
    """Beam search over any step function.

    ``logits`` (V,) predict the first character; ``step(ids)`` consumes one
    character per beam and returns (beams, V) logits; ``select(rows)`` keeps
    the given beams' states (in order). Returns the best ids and their total
    log-probability. Ties go to the lower id, as ``argmax`` does, so width 1
    is greedy decoding.
    """
    if width < 1:
        raise ConfigError(f"beam width must be >= 1, got {width}")
    scores = np.zeros(1)
    # back-pointers instead of copied histories: O(length * width), not quadratic
    parents, tokens = [], []
    logp = log_softmax(np.asarray(logits, dtype=np.float64)[None, :])
    for n in range(length):
        V = logp.shape[1]
        total = (scores[:, None] + logp).ravel()
        order = np.argsort(-total, kind="stable")[:width]
        rows, ids = np.divmod(order, V)
        scores = total[order]
        parents.append(rows)
        tokens.append(ids)
        if n + 1 < length:
            select(rows)
            logp = log_softmax(np.asarray(step(ids), dtype=np.float64))
    best, beam = [], 0
    for rows, ids in zip(reversed(parents), reversed(tokens)):
        best.append(int(ids[beam]))
        beam = int(rows[beam])
    return best[::-1], float(scores[0])


def beam_search(model: CharRNN, vocab: Vocab, prime: str = "", length: int = 200, width: int = 5, *,
                seed: int | None = None, precision: str = "fp32") -> BeamResult:
    """The most probable ``length``-character continuation that a beam of ``width`` finds."""
    _check(length, 1.0, 0)
    products.check(precision)
    ids = start_ids(vocab, prime, np.random.default_rng(seed))
    with eval_mode(model):
        stepper = Stepper(model, precision).reset(1)
        logits = stepper.feed_text(ids)[0].copy()
        best, score = beam_ids(stepper.feed, stepper.select, logits, length, width)
    return BeamResult(vocab.decode(np.array(best, dtype=np.int64)), score)


def log_prob(model: CharRNN, vocab: Vocab, prime: str, text: str) -> float:
    """Natural log-probability of ``text`` following ``prime`` (prime must be non-empty)."""
    if not prime:
        raise ConfigError("log_prob needs a prime to condition on")
    ids = encode_prime(vocab, prime + text)
    total = 0.0
    with eval_mode(model):
        stepper = Stepper(model).reset(1)
        for n in range(len(ids) - 1):
            logits = stepper.feed(ids[n:n + 1])
            if n + 1 >= len(prime):
                total += float(log_softmax(logits[0].astype(np.float64))[ids[n + 1]])
    return total
