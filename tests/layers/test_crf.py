"""Linear-chain CRF: torch autograd of the same equations, brute force over every path, Viterbi,
decode-time constraints, long sentences."""
import itertools

import numpy as np
import pytest

from rnnlab.gradcheck import randomize
from rnnlab.layers import CRF, Constraints
from rnnlab.tasks.tagging.schemes import tag_constraints

torch = pytest.importorskip("torch")


def make(K, seed=0, scale=1.0):
    return randomize(CRF(K), np.random.default_rng(seed), scale=scale)


def lengths_mask(lengths, T):
    return np.arange(T) < np.asarray(lengths)[:, None]


def torch_nll(em, tags, lengths, A, s, e):
    """The module docstring's equations, row by row, in torch."""
    total = 0.0
    for b, L in enumerate(lengths):
        x, y = em[b, :L], tags[b, :L]
        alpha = s + x[0]
        for t in range(1, L):
            alpha = torch.logsumexp(alpha[:, None] + A, dim=0) + x[t]
        log_z = torch.logsumexp(alpha + e, dim=0)
        gold = s[y[0]] + x[torch.arange(L), y].sum() + e[y[L - 1]]
        if L > 1:
            gold = gold + A[y[:-1], y[1:]].sum()
        total = total + log_z - gold
    return total / len(lengths)


# Tolerance (float64 on both sides): the forward algorithm is T log-sum-exps of K <= 6 terms; for T <= 500
# that is ~T*K rounded operations, ~1e-13 relative in any summation order; rtol 1e-10 leaves 1000x.
def assert_close(actual, expected, name, rtol=1e-10):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, name
    assert np.all(np.isfinite(actual)), name
    rel = np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-300)
    assert rel <= rtol, f"{name}: relative error {rel:.3e}"


@pytest.mark.parametrize("B,T,K,lengths", [
    (3, 6, 4, [6, 1, 4]), (1, 1, 3, [1]), (1, 7, 5, [7]), (4, 9, 6, [9, 9, 2, 5])])
@pytest.mark.parametrize("as_lengths", [False, True], ids=["mask", "lengths"])
def test_loss_and_every_gradient_match_torch(B, T, K, lengths, as_lengths):
    rng = np.random.default_rng(B * 100 + T)
    crf = make(K, seed=T, scale=1.5)
    em = 2.0 * rng.standard_normal((B, T, K))
    tags = rng.integers(0, K, size=(B, T))
    mask = np.array(lengths) if as_lengths else lengths_mask(lengths, T)
    dloss = 0.7
    loss, cache = crf.forward(em, tags, mask)
    dem = crf.backward(dloss, cache)

    tem = torch.tensor(em, requires_grad=True)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in crf.params.items()}
    tloss = torch_nll(tem, torch.tensor(tags), lengths, tp["transitions"], tp["start"], tp["end"])
    (tloss * dloss).backward()
    assert_close(loss, tloss.item(), "loss")
    assert_close(dem, tem.grad.numpy(), "d emissions")
    for k in crf.params:
        expect = tp[k].grad.numpy() if tp[k].grad is not None else np.zeros_like(crf.grads[k])  # T=1: no transition
        if expect.any():
            assert_close(crf.grads[k], expect, f"d {k}")
        else:
            assert not crf.grads[k].any(), k
    assert not dem[lengths_mask(lengths, T) == 0].any()  # padding gets no gradient


def all_paths(K, L):
    return itertools.product(range(K), repeat=L)


def path_score(crf, x, y):
    A, s, e = crf.params["transitions"], crf.params["start"], crf.params["end"]
    return s[y[0]] + sum(x[t, y[t]] for t in range(len(y))) + sum(
        A[y[t - 1], y[t]] for t in range(1, len(y))) + e[y[-1]]


def test_partition_marginals_and_viterbi_equal_brute_force():
    K, T, lengths = 3, 4, [4, 1, 3, 2]
    rng = np.random.default_rng(5)
    crf = make(K, seed=1, scale=1.0)
    em = rng.standard_normal((len(lengths), T, K))
    mask = lengths_mask(lengths, T)
    log_z = crf.log_partition(em, mask)
    marg = crf.marginals(em, mask)
    paths = crf.decode(em, mask)
    for b, L in enumerate(lengths):
        scores = {y: path_score(crf, em[b], y) for y in all_paths(K, L)}
        z = np.log(sum(np.exp(v) for v in scores.values()))
        # float64 log of a sum of exp over <= 6^4 paths vs the forward algorithm: ~1e-15 relative of |log Z| ~ 10.
        assert abs(log_z[b] - z) < 1e-12
        expect = np.zeros((T, K))
        for y, v in scores.items():
            for t, k in enumerate(y):
                expect[t, k] += np.exp(v - z)
        # float64 marginals exp(v - log Z) of <= 6^4 paths vs the forward-backward: ~100 eps; atol 1e-12.
        np.testing.assert_allclose(marg[b], expect, atol=1e-12)
        assert tuple(paths[b]) == max(scores, key=scores.get)
        gold = np.array(list(max(scores, key=scores.get)) + [0] * (T - L))
        # float64 path score, a sum of <= 2L emissions and transitions in two orders: ~1e-15; 1e-12.
        assert abs(crf.score(em[b:b + 1], gold[None], [L])[0] - max(scores.values())) < 1e-12


def test_loss_is_nonnegative_and_tags_on_padding_are_ignored():
    crf = make(4, seed=2)
    rng = np.random.default_rng(0)
    em = rng.standard_normal((2, 5, 4))
    tags = rng.integers(0, 4, size=(2, 5))
    other = tags.copy()
    other[1, 2:] = [3, -1, 99]  # padding: any value
    l1, _ = crf.forward(em, tags, [5, 2])
    l2, _ = crf.forward(em, other, [5, 2])
    assert l1 == l2 and l1 > 0


def test_constraints_are_respected_and_match_brute_force():
    names = ["O", "B-X", "I-X", "B-Y", "I-Y"]
    c = tag_constraints(names, "BIO")
    assert not c.start[2] and not c.transitions[0, 2] and not c.transitions[3, 2] and c.transitions[1, 2]
    crf = make(5, seed=3, scale=2.0)
    crf.params["transitions"][:, 2] += 5.0  # make I-X attractive everywhere
    rng = np.random.default_rng(1)
    em = rng.standard_normal((3, 4, 5))
    em[:, :, 2] += 3.0
    lengths = [4, 1, 3]
    free = crf.decode(em, lengths)
    bound = crf.decode(em, lengths, c)
    assert free != bound
    for b, L in enumerate(lengths):
        ok = [y for y in all_paths(5, L) if c.start[y[0]] and c.end[y[-1]]
              and all(c.transitions[y[t - 1], y[t]] for t in range(1, L))]
        assert tuple(bound[b]) == max(ok, key=lambda y: path_score(crf, em[b], y))


def test_constrained_marginals_are_those_of_the_allowed_paths():
    names = ["O", "B-X", "I-X", "B-Y", "I-Y"]
    c = tag_constraints(names, "BIO")
    crf = make(5, seed=3, scale=2.0)
    crf.params["transitions"][:, 2] += 5.0  # forbidden moves into I-X carry much of the free mass
    rng = np.random.default_rng(2)
    em = rng.standard_normal((3, 4, 5))
    em[:, :, 2] += 3.0
    lengths = [4, 1, 3]
    free, bound = crf.marginals(em, lengths), crf.marginals(em, lengths, c)
    for b, L in enumerate(lengths):
        ok = [y for y in all_paths(5, L) if c.start[y[0]] and c.end[y[-1]]
              and all(c.transitions[y[t - 1], y[t]] for t in range(1, L))]
        w = np.array([np.exp(path_score(crf, em[b], y)) for y in ok])
        expect = np.zeros((4, 5))
        for y, p in zip(ok, w / w.sum()):
            expect[np.arange(L), list(y)] += p
        # float64 sums over <= 5^4 allowed paths vs the forward-backward with -inf scores: ~100 eps
        np.testing.assert_allclose(bound[b], expect, atol=1e-12)
        assert bound[b, 0, 2] == 0.0 and bound[b, 0, 4] == 0.0   # no I- tag first
        assert np.abs(free[b, :L] - bound[b, :L]).max() > 0.1      # the constraints move the mass
    np.testing.assert_array_equal(crf.marginals(em, lengths, None), free)
    with pytest.raises(ValueError, match="constraints must be"):
        crf.marginals(em, lengths, Constraints(c.transitions[:4, :4], c.start, c.end))


def test_bioes_and_iob1_constraints():
    names = ["O", "B-X", "I-X", "E-X", "S-X", "B-Y", "E-Y"]
    c = tag_constraints(names, "IOBES")
    idx = {n: i for i, n in enumerate(names)}
    allowed = {(a, b) for a in names for b in names if c.transitions[idx[a], idx[b]]}
    assert ("B-X", "E-X") in allowed and ("B-X", "E-Y") not in allowed and ("B-X", "O") not in allowed
    assert ("E-X", "B-Y") in allowed and ("E-X", "I-X") not in allowed and ("S-X", "S-X") in allowed
    assert [n for n in names if c.start[idx[n]]] == ["O", "B-X", "S-X", "B-Y"]
    assert [n for n in names if c.end[idx[n]]] == ["O", "E-X", "S-X", "E-Y"]
    c1 = tag_constraints(["O", "I-X", "B-X"], "IOB1")
    assert list(c1.start) == [True, True, False] and not c1.transitions[0, 2] and c1.transitions[1, 2]
    with pytest.raises(ValueError):
        tag_constraints(["O", "<pad>"], "BIO")
    assert isinstance(c, Constraints)


def test_long_sentence_is_finite_and_matches_torch():
    K, T = 6, 500
    rng = np.random.default_rng(9)
    crf = make(K, seed=4, scale=3.0)
    em = 10.0 * rng.standard_normal((2, T, K))
    tags = rng.integers(0, K, size=(2, T))
    loss, cache = crf.forward(em, tags, [T, 321])
    dem = crf.backward(1.0, cache)
    assert np.isfinite(loss) and np.all(np.isfinite(dem))
    assert all(np.all(np.isfinite(g)) for g in crf.grads.values())
    marg = crf.marginals(em, [T, 321])
    # float64 forward-backward over T = 500 steps with emissions of size 10: each marginal row is exp of
    # differences of sums of ~500 terms (~500 eps * |sum| ~ 1e3 => ~1e-10 absolute); atol 1e-9 leaves 10x.
    np.testing.assert_allclose(marg[0].sum(axis=1), 1.0, atol=1e-9)
    paths = crf.decode(em, [T, 321])
    assert [len(p) for p in paths] == [T, 321]
    tem = torch.tensor(em)
    tp = {k: torch.tensor(v) for k, v in crf.params.items()}
    tloss = torch_nll(tem, torch.tensor(tags), [T, 321], tp["transitions"], tp["start"], tp["end"])
    # float64 both sides; the loss sums T=500 log-sum-exps: ~500 eps ~ 1e-13 relative; 1e-10 leaves 1000x.
    assert abs(loss - tloss.item()) <= 1e-10 * abs(tloss.item())


def test_float32_runs_and_stays_close_to_float64():
    rng = np.random.default_rng(3)
    em = rng.standard_normal((2, 30, 5))
    tags = rng.integers(0, 5, size=(2, 30))
    c64 = make(5, seed=7)
    c32 = CRF(5).astype(np.float32)
    c32.load_state_dict(c64.state_dict())
    l64, k64 = c64.forward(em, tags, [30, 12])
    l32, k32 = c32.forward(em.astype(np.float32), tags, [30, 12])
    d32 = c32.backward(1.0, k32)
    # float32 (2^-24 ~ 6e-8) over 30 steps of log-sum-exps of 6 terms: a few ulps per step, ~1e-6 relative of
    # the loss; 1e-4 leaves ~100x and catches a float64 -> float32 slip in the wrong place (~1e-3).
    assert d32.dtype == np.float32 and abs(l32 - l64) < 1e-4 * abs(l64)
    # float32 against float64: the forward-backward over 30 steps in log space loses ~eps32 x T = 4e-6 on
    # marginals of size <= 1; atol 1e-5 is that, far below the error of a wrong formula
    np.testing.assert_allclose(d32, c64.backward(1.0, k64), atol=1e-5)


def test_bad_inputs_raise():
    crf = CRF(3)
    em = np.zeros((2, 4, 3))
    tags = np.zeros((2, 4), dtype=int)
    with pytest.raises(ValueError, match="prefix"):
        crf.forward(em, tags, np.array([[1, 0, 1, 0], [1, 1, 1, 1]]))
    with pytest.raises(ValueError, match="lengths"):
        crf.forward(em, tags, [0, 4])
    with pytest.raises(ValueError):
        crf.forward(em, tags + 3, None)
    with pytest.raises(ValueError):
        crf.forward(np.zeros((2, 4, 5)), tags)
    with pytest.raises(ValueError):
        crf.decode(em, None, Constraints(np.ones((2, 2), bool), np.ones(3, bool), np.ones(3, bool)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hard_transitions_of_minus_1e4_stay_exact(dtype):
    """Transitions spread over thousands of nats (hard constraints written into A) take the exact
    log-space branches of the forward, backward and pairwise sums; the result still matches torch."""
    K, T = 4, 7
    rng = np.random.default_rng(11)
    crf = make(K, seed=5)
    A = crf.params["transitions"]
    A[0, 3] = A[1, 3] = A[2, 3] = -1e4   # tag 3 reachable only from itself
    A[3, 0] = -1e4
    crf.params["start"][3] = -1000.0      # alpha(3) ~1000 below the rest: the product underflows
    em = rng.standard_normal((3, T, K))
    em[1, 2, 0] += 800.0                  # best tag 0 at t=2 and best tag 3 at t=3, a forbidden pair:
    em[1, 3, 3] += 800.0                  # the pairwise sum's exact branch
    tags = rng.integers(0, 3, size=(3, T))
    tags[0] = 3                           # a gold path that starts in tag 3 and stays there
    lengths = [T, 4, 1]
    crf.astype(dtype)
    loss, cache = crf.forward(em.astype(dtype), tags, lengths)
    dem = crf.backward(1.0, cache)
    tem = torch.tensor(em, requires_grad=True)
    tp = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in crf.params.items()}
    tloss = torch_nll(tem, torch.tensor(tags), lengths, tp["transitions"], tp["start"], tp["end"])
    tloss.backward()
    # float64: rounding only (see assert_close); float32 (eps 1.2e-7): the log-sum-exps over the sequence
    # lose a few ulps per step; 1e-4 has margin
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert_close(loss, tloss.item(), "loss", rtol)
    assert_close(dem, tem.grad.numpy(), "d emissions", rtol)
    for k in crf.params:
        assert_close(crf.grads[k], tp[k].grad.numpy(), f"d {k}", rtol)
    marg = crf.marginals(em.astype(dtype), lengths)
    assert np.all(np.isfinite(marg))
