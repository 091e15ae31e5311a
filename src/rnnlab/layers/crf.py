"""Linear-chain conditional random field over per-token tag scores (Lafferty et al. 2001).

Parameters: ``transitions`` A (K, K), A[i, j] the score of tag i followed by tag j;
``start`` s (K,) and ``end`` e (K,), the scores of the first and of the last tag.
Emissions x (B, T, K) come from the layer below. A row b has length L = L_b >= 1;
positions t >= L are padding and contribute nothing. The score of a path y_0..y_{L-1}::

    S(y) = s[y_0] + sum_{t<L} x[t, y_t] + sum_{1<=t<L} A[y_{t-1}, y_t] + e[y_{L-1}]

Forward algorithm (log space, logsumexp over the previous tag i)::

    alpha_0[j] = s[j] + x[0, j]
    alpha_t[j] = logsumexp_i(alpha_{t-1}[i] + A[i, j]) + x[t, j]        1 <= t < L
    log Z      = logsumexp_j(alpha_{L-1}[j] + e[j])
    loss       = (1/B) sum_b (log Z_b - S_b(gold))                         (mean NLL per sentence)

Backward algorithm and marginals::

    beta_{L-1}[i] = e[i]
    beta_t[i]     = logsumexp_j(A[i, j] + x[t+1, j] + beta_{t+1}[j])
    p_t(k)        = exp(alpha_t[k] + beta_t[k] - log Z)
    p_t(i, j)     = exp(alpha_{t-1}[i] + A[i, j] + x[t, j] + beta_t[j] - log Z)

Gradient (derivation in docs/derivations.md, section 14), with g = dloss / B and 1[.]
the gold path's indicators::

    dx[b, t, k] = g (p_t(k) - 1[y_t = k])                   t < L, zero on padding
    dA[i, j]    = g sum_b sum_{1<=t<L} (p_t(i, j) - 1[y_{t-1} = i, y_t = j])
    ds[k]       = g sum_b (p_0(k) - 1[y_0 = k])
    de[k]       = g sum_b (p_{L-1}(k) - 1[y_{L-1} = k])

Each logsumexp over the previous tag is one (B, K) @ (K, K) product of shifted exponentials
(:class:`_LogMatmul`), and the expected transition counts one (K, TB) @ (TB, K) product; both
fall back to exact log-space sums where a shifted sum would underflow (transitions ~600 nats
apart, e.g. hard constraints written into A), so T = 500 and A = -1e4 stay exact.

Decoding is Viterbi (max in place of logsumexp, with back-pointers), optionally restricted
to allowed transitions, first and last tags (:class:`Constraints`, e.g. built for BIO or
BIOES tag names by :func:`rnnlab.tasks.tagging.schemes.tag_constraints`).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..module import DEFAULT_DTYPE, Module


class CRFCache(NamedTuple):
    emissions: np.ndarray  # (T, B, K) time-major view of the input
    tags: np.ndarray       # (T, B) gold tags, 0 on padding
    lengths: np.ndarray    # (B,)
    live: np.ndarray       # (T, B) float mask, 1 for t < L_b
    alpha: np.ndarray      # (T, B, K); rows carried unchanged past their length
    log_z: np.ndarray      # (B,)


class Constraints(NamedTuple):
    """Allowed moves for decoding: transitions[i, j] (tag i -> tag j), first tags, last tags."""
    transitions: np.ndarray  # (K, K) bool
    start: np.ndarray        # (K,) bool
    end: np.ndarray          # (K,) bool


def logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """log sum exp along ``axis``, stable for large values and for rows of -inf."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(a - m).sum(axis=axis)) + np.squeeze(m, axis=axis)


class _LogMatmul:
    """v -> logsumexp_i(v[:, i] + A[i, j]) for every j, as one matrix product.

    exp(v - max v) @ exp(A - c), with c the column maxima of A, then log and add the shifts
    back: every factor is at most 1, so nothing overflows. A row whose sum underflows (some
    column reachable only through scores ~700 below the best, float64) is redone exactly
    with :func:`logsumexp`, so the result equals the (B, K, K) log-space form to rounding.
    """

    def __init__(self, A: np.ndarray) -> None:
        self.A = A
        c = A.max(axis=0)
        self.shift = np.where(np.isfinite(c), c, 0.0).astype(A.dtype)
        self.expA = np.exp(A - self.shift)
        self.floor = np.finfo(A.dtype).tiny * 2.0 ** 24

    def __call__(self, v: np.ndarray) -> np.ndarray:
        m = v.max(axis=1, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        total = np.exp(v - m) @ self.expA
        with np.errstate(divide="ignore"):
            out = np.log(total) + m + self.shift
        low = ~(total >= self.floor).all(axis=1)
        if low.any():
            out[low] = logsumexp(v[low][:, :, None] + self.A, axis=1)
        return out


def _lengths(mask: Any, B: int, T: int) -> np.ndarray:
    """Row lengths from a (B, T) prefix mask or a (B,) vector of lengths (None: all T)."""
    if mask is None:
        return np.full(B, T, dtype=np.int64)
    m = np.asarray(mask)
    if m.ndim == 1:
        lengths = m.astype(np.int64)
        if lengths.shape != (B,):
            raise ValueError(f"lengths {m.shape} do not match batch size {B}")
    else:
        if m.shape != (B, T):
            raise ValueError(f"mask {m.shape} does not match emissions ({B}, {T}, K)")
        m = m.astype(bool)
        lengths = m.sum(axis=1).astype(np.int64)
        if not np.array_equal(m, np.arange(T) < lengths[:, None]):
            raise ValueError("mask must be a prefix mask: ones for the first L positions of a row, then zeros")
    if lengths.size and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(f"row lengths must lie in 1..{T}, got {lengths.min()}..{lengths.max()}")
    return lengths


def _compiled_viterbi(em: np.ndarray, A: np.ndarray, s: np.ndarray, e: np.ndarray) -> Any:
    """:mod:`rnnlab.fast.compiled_crf` where the compiled steps are on and every operand has the one
    float dtype (float32 or float64) the NumPy loop would then compute in; else None."""
    from ..fast import accel

    dtypes = {np.asarray(x).dtype for x in (em, A, s, e)}
    if len(dtypes) != 1 or accel.steps(dtypes.pop()) is None:
        return None
    from ..fast import compiled_crf

    return compiled_crf


class CRF(Module):
    """``forward(emissions, tags, mask=None) -> (mean NLL, cache)``; ``decode`` gives Viterbi paths.

    ``mask`` is a (B, T) prefix mask (bool or 0/1) or a (B,) vector of lengths; None means
    every row is T long. ``backward(dloss, cache)`` returns d emissions (B, T, K).
    """

    def __init__(self, num_tags: int, *, seed: int | np.random.Generator | None = 0,
                 dtype: Any = DEFAULT_DTYPE, init_scale: float = 0.1) -> None:
        super().__init__()
        self.num_tags = K = num_tags
        rng = np.random.default_rng(seed)
        self.add_param("transitions", rng.uniform(-init_scale, init_scale, (K, K)).astype(dtype))
        self.add_param("start", rng.uniform(-init_scale, init_scale, K).astype(dtype))
        self.add_param("end", rng.uniform(-init_scale, init_scale, K).astype(dtype))

    # -- checks ------------------------------------------------------------------------
    def _prepare(self, emissions: np.ndarray, mask: Any) -> tuple[np.ndarray, np.ndarray]:
        emissions = np.asarray(emissions)
        if emissions.ndim != 3 or emissions.shape[2] != self.num_tags:
            raise ValueError(f"emissions must be (B, T, {self.num_tags}), got {emissions.shape}")
        B, T, _ = emissions.shape
        if T == 0:
            raise ValueError("emissions have no time steps")
        return emissions.transpose(1, 0, 2), _lengths(mask, B, T)

    # -- forward algorithm -----------------------------------------------------------------
    def _alpha(self, em: np.ndarray, lengths: np.ndarray,
               scores: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        A, s, e = scores or (self.params["transitions"], self.params["start"], self.params["end"])
        T = em.shape[0]
        alpha = np.empty(em.shape, dtype=np.result_type(em, A))
        alpha[0] = s + em[0]
        step = _LogMatmul(A)
        for t in range(1, T):
            nxt = step(alpha[t - 1]) + em[t]
            alpha[t] = np.where((t < lengths)[:, None], nxt, alpha[t - 1])
        return alpha, logsumexp(alpha[T - 1] + e, axis=1)

    def _beta(self, em: np.ndarray, lengths: np.ndarray,
              scores: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        A, _, e = scores or (self.params["transitions"], self.params["start"], self.params["end"])
        T = em.shape[0]
        beta = np.empty(em.shape, dtype=np.result_type(em, A))
        beta[T - 1] = e
        step = _LogMatmul(A.T)
        for t in range(T - 2, -1, -1):
            nxt = step(em[t + 1] + beta[t + 1])
            beta[t] = np.where((t < lengths - 1)[:, None], nxt, e)
        return beta

    def log_partition(self, emissions: np.ndarray, mask: Any = None) -> np.ndarray:
        """log Z of every row, (B,)."""
        em, lengths = self._prepare(emissions, mask)
        return self._alpha(em, lengths)[1]

    def score(self, emissions: np.ndarray, tags: np.ndarray, mask: Any = None) -> np.ndarray:
        """S(tags) of every row, (B,); tags beyond a row's length are ignored."""
        em, lengths = self._prepare(emissions, mask)
        return self._score(em, self._tags(tags, em.shape, lengths), lengths)

    def _tags(self, tags: np.ndarray, shape: tuple, lengths: np.ndarray) -> np.ndarray:
        T, B, K = shape
        tags = np.asarray(tags)
        if tags.shape != (B, T):
            raise ValueError(f"tags {tags.shape} do not match emissions ({B}, {T}, K)")
        live = np.arange(T)[:, None] < lengths
        y = np.where(live, tags.T, 0).astype(np.int64)
        if y.size and (y.min() < 0 or y.max() >= K):
            raise ValueError(f"tags must lie in 0..{K - 1} at real positions")
        return y

    def _score(self, em: np.ndarray, y: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        A, s, e = self.params["transitions"], self.params["start"], self.params["end"]
        T, B, _ = em.shape
        live = np.arange(T)[:, None] < lengths
        rows = np.arange(B)
        unary = np.take_along_axis(em, y[:, :, None], axis=2)[:, :, 0]
        total = s[y[0]] + (unary * live).sum(axis=0) + e[y[lengths - 1, rows]]
        if T > 1:
            total = total + (A[y[:-1], y[1:]] * live[1:]).sum(axis=0)
        return total

    def forward(self, emissions: np.ndarray, tags: np.ndarray, mask: Any = None) -> tuple[float, CRFCache]:
        em, lengths = self._prepare(emissions, mask)
        y = self._tags(tags, em.shape, lengths)
        alpha, log_z = self._alpha(em, lengths)
        nll = log_z - self._score(em, y, lengths)
        live = (np.arange(em.shape[0])[:, None] < lengths).astype(alpha.dtype)
        return float(nll.mean()), CRFCache(em, y, lengths, live, alpha, log_z)

    # -- marginals and backward ----------------------------------------------------------------
    def _unary(self, cache: CRFCache, beta: np.ndarray) -> np.ndarray:
        return np.exp(cache.alpha + beta - cache.log_z[:, None]) * cache.live[:, :, None]

    def marginals(self, emissions: np.ndarray, mask: Any = None,
                  constraints: Constraints | None = None) -> np.ndarray:
        """p(y_t = k | emissions), (B, T, K); zero on padding. Rows sum to 1 at real positions.
        With ``constraints`` (as :meth:`decode` takes them), over the allowed paths alone: the
        distribution whose mode constrained Viterbi finds (forbidden tags get probability 0)."""
        em, lengths = self._prepare(emissions, mask)
        keys = ("transitions", "start", "end")
        dtype = np.result_type(em, self.params["transitions"])   # float64 emissions: float64 throughout
        scores = tuple(self.params[key].astype(dtype, copy=False) for key in keys)
        if constraints is not None:
            scores = tuple(np.where(allowed, v, -np.inf) for v, allowed in zip(scores, self._allowed(constraints)))
        alpha, log_z = self._alpha(em, lengths, scores)
        live = (np.arange(em.shape[0])[:, None] < lengths).astype(alpha.dtype)
        cache = CRFCache(em, np.zeros(live.shape, np.int64), lengths, live, alpha, log_z)
        return self._unary(cache, self._beta(em, lengths, scores)).transpose(1, 0, 2)

    def _allowed(self, constraints: Constraints) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        allowed, first, final = (np.asarray(c, dtype=bool) for c in constraints)
        if (allowed.shape != self.params["transitions"].shape or first.shape != self.params["start"].shape
                or final.shape != self.params["end"].shape):
            raise ValueError(f"constraints must be ({self.num_tags}, {self.num_tags}), "
                             f"({self.num_tags},), ({self.num_tags},)")
        return allowed, first, final

    def _expected_transitions(self, cache: CRFCache, beta: np.ndarray) -> np.ndarray:
        """sum over rows and steps 1 <= t < L of the pairwise marginals p_t(i, j), (K, K), float64.

        p_t(i, j) = exp(a_i + A_ij + w_j - log Z) with a = alpha_{t-1}, w = x_t + beta_t factors as
        exp(a_i - m1) exp(w_j - m2) exp(k) exp(A_ij - max A), k = m1 + m2 + max A - log Z, so
        the sum over all (t, b) is one (K, TB) @ (TB, K) product. Every factor is at most 1
        except exp(k) <= exp(max A - min A); pairs with k > 600 (transitions spread over more
        than 600 nats) are summed exactly in log space instead.
        """
        A = self.params["transitions"].astype(np.float64)
        K = A.shape[0]
        a = cache.alpha[:-1].astype(np.float64)
        w = (cache.emissions[1:] + beta[1:]).astype(np.float64)
        m1, m2 = a.max(axis=2, keepdims=True), w.max(axis=2, keepdims=True)
        top = float(A.max())
        k = m1 + m2 + top - cache.log_z[:, None].astype(np.float64)
        live = cache.live[1:, :, None] > 0
        exact = live & (k > 600.0)
        u = np.where(live & ~exact, np.exp(a - m1 + np.minimum(k, 600.0)), 0.0)
        pair = np.exp(A - top) * (u.reshape(-1, K).T @ np.exp(w - m2).reshape(-1, K))
        for t, b, _ in zip(*np.nonzero(exact)):
            pair += np.exp(a[t, b][:, None] + A + w[t, b][None, :] - cache.log_z[b])
        return pair

    def backward(self, dloss: float, cache: CRFCache) -> np.ndarray:
        em, y, lengths, live = cache.emissions, cache.tags, cache.lengths, cache.live
        T, B, K = em.shape
        g = float(dloss) / B
        beta = self._beta(em, lengths)
        p = self._unary(cache, beta)                                   # (T, B, K)
        gold = np.zeros_like(p)
        np.put_along_axis(gold, y[:, :, None], live[:, :, None], axis=2)
        rows = np.arange(B)
        self.grads["start"] += g * (p[0] - gold[0]).sum(axis=0)
        last = lengths - 1
        self.grads["end"] += g * (p[last, rows] - gold[last, rows]).sum(axis=0)
        if T > 1:  # expected minus gold transition counts
            pair = self._expected_transitions(cache, beta) - np.bincount(
                (y[:-1] * K + y[1:]).ravel(), weights=live[1:].ravel(), minlength=K * K).reshape(K, K)
            self.grads["transitions"] += g * pair
        return (g * (p - gold)).transpose(1, 0, 2)

    # -- decoding ------------------------------------------------------------------------
    def decode(self, emissions: np.ndarray, mask: Any = None,
               constraints: Constraints | None = None) -> list[list[int]]:
        """Viterbi: the highest-scoring tag path of every row, as a list of ``L_b`` tag ids."""
        em, lengths = self._prepare(emissions, mask)
        A, s, e = self.params["transitions"], self.params["start"], self.params["end"]
        if constraints is not None:
            allowed, first, final = self._allowed(constraints)
            A, s, e = np.where(allowed, A, -np.inf), np.where(first, s, -np.inf), np.where(final, e, -np.inf)
        compiled = _compiled_viterbi(em, A, s, e)
        if compiled is not None:   # the same paths, one compiled loop per row (fast/compiled_crf.py)
            return compiled.decode(em, A, s, e, lengths)
        T, B, K = em.shape
        delta = s + em[0]
        back = np.zeros((T, B, K), dtype=np.int64)
        for t in range(1, T):
            cand = delta[:, :, None] + A                               # (B, K_prev, K)
            best = cand.argmax(axis=1)
            nxt = np.take_along_axis(cand, best[:, None, :], axis=1)[:, 0] + em[t]
            live = (t < lengths)[:, None]
            delta = np.where(live, nxt, delta)
            back[t] = best
        last = (delta + e).argmax(axis=1)
        paths = []
        for b in range(B):
            path = [int(last[b])]
            for t in range(int(lengths[b]) - 1, 0, -1):
                path.append(int(back[t, b, path[-1]]))
            paths.append(path[::-1])
        return paths
