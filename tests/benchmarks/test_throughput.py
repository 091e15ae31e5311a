"""The benchmark's timing harness (benchmarks/throughput.py: side_by_side), on a fake clock.

The harness decides every ratio the performance page reports, so its bookkeeping
is tested here: which library runs when, what is timed, and which way a ratio
points. A fake clock makes the durations exact; no test here times real work.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[str] = []

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.calls.append("pause")

    def step(self, name: str, durations):
        """A fake training step that takes the next of ``durations`` seconds (the last repeats)."""
        durations = list(durations)

        def run() -> None:
            self.calls.append(name)
            self.now += durations.pop(0) if len(durations) > 1 else durations[0]
        return run


@pytest.fixture
def clock(throughput, monkeypatch):
    """The harness's ``time`` module replaced for this module only, not the process's clock."""
    fake = FakeClock()
    monkeypatch.setattr(throughput, "time", SimpleNamespace(perf_counter=fake.perf_counter, sleep=fake.sleep))
    return fake


def test_ratio_is_theirs_over_ours(throughput, clock):
    """A library twice as fast as torch reads 2.0: the table's convention, rnnlab / torch speed."""
    t = throughput.side_by_side(clock.step("ours", [0.01]), clock.step("theirs", [0.02]),
                                warmup=1, seconds=0.2, block=0.05, pause=0.1)
    # float64 sums of <= 100 fake-clock steps like 0.01 (not exact in binary): ~100 eps relative;
    # approx's default rel 1e-6 is far above that and far below any wrong step count (>= 1 %).
    assert t.ours == pytest.approx(0.01) and t.theirs == pytest.approx(0.02)
    # a ratio of the two medians above: a few ulps, default rel 1e-6.
    assert t.theirs / t.ours == pytest.approx(2.0)
    # each round's ratio: two float64 sums of <= 20 steps divided, ~20 eps; default rel 1e-6.
    assert t.pairs and all(p == pytest.approx(2.0) for p in t.pairs)
    assert t.spread() == "2.00-2.00"


def test_blocks_alternate_in_order_after_a_pause(throughput, clock):
    throughput.side_by_side(clock.step("a", [0.1]), clock.step("b", [0.1]),
                            warmup=2, seconds=0.0, block=0.15, pause=0.3, min_rounds=2)
    # round 1: a then b, each: pause, 2 warm-up calls, timed calls until 0.15 s (2 of 0.1 s);
    # round 2: b then a, with one warm-up call each
    assert clock.calls == (["pause"] + ["a"] * 4 + ["pause"] + ["b"] * 4
                           + ["pause"] + ["b"] * 3 + ["pause"] + ["a"] * 3)


def test_runs_until_each_library_has_its_seconds(throughput, clock):
    t = throughput.side_by_side(clock.step("ours", [0.01]), clock.step("theirs", [0.04]),
                                warmup=1, seconds=1.0, block=0.1, pause=0.0, min_rounds=1)
    # ours runs 10 timed steps per block, theirs 3 (0.12 s); the slower library needs no more
    # blocks than it takes to reach 1 s of its own, and both get the same number of rounds
    assert clock.calls.count("pause") == 2 * len(t.pairs)
    ours_timed = clock.calls.count("ours") - len(t.pairs)
    # not rounding: ours stops at a block boundary (10 steps = 0.1 s), so its timed total is 1 s within
    # one block; abs 0.1 is that granularity, the float error (~100 eps) is negligible.
    assert ours_timed * 0.01 == pytest.approx(1.0, abs=0.1)
    assert (clock.calls.count("theirs") - len(t.pairs)) * 0.04 >= 1.0


def test_warm_up_and_pauses_are_not_timed(throughput, clock):
    """A slow first call (compilation, page faults) must not count, nor the pauses."""
    t = throughput.side_by_side(clock.step("ours", [5.0, 0.01]), clock.step("theirs", [0.01]),
                                warmup=1, seconds=0.1, block=0.02, pause=1.0)
    # medians of fake-clock differences: a few float64 ulps; default rel 1e-6.
    assert t.ours == pytest.approx(0.01) and t.theirs == pytest.approx(0.01)


def test_a_slow_phase_moves_one_round_not_the_median(throughput, clock):
    """Round ratios record the machine's drift; the reported times are medians over all steps."""
    slow_once = [0.01] * 4 + [0.03] * 4 + [0.01]   # one block of ours runs 3x slower
    t = throughput.side_by_side(clock.step("ours", slow_once), clock.step("theirs", [0.01]),
                                warmup=0, seconds=0.12, block=0.035, pause=0.0)
    # ratios of float64 sums of <= 4 steps: a few eps; default rel 1e-6 (a wrong round is off by >= 30 %).
    assert min(t.pairs) == pytest.approx(1 / 3)
    # same: a few eps of float64; default rel 1e-6.
    assert max(t.pairs) == pytest.approx(1.0)
    # median of fake-clock differences: a few ulps; default rel 1e-6.
    assert t.ours == pytest.approx(0.01)


@pytest.mark.parametrize("kind", ["bnlstm", "lnlstm"])
def test_the_torch_normalised_lstm_has_rnnlab_equations(throughput, kind):
    """The torch reference beside the BN-/LN-LSTM rows computes what rnnlab's cell computes."""
    torch = pytest.importorskip("torch")
    import numpy as np

    from rnnlab.cells import BNLSTMCell, LNLSTMCell
    from rnnlab.gradcheck import randomize
    from rnnlab.layers import Recurrent

    rng = np.random.default_rng(0)
    layer = randomize(Recurrent((BNLSTMCell if kind == "bnlstm" else LNLSTMCell)(3, 4)), rng)
    m = throughput.TorchNormLSTM(3, 4, kind).double()
    p = layer.cell.params
    with torch.no_grad():
        m.W_x.weight.copy_(torch.from_numpy(p["W_x"].T))
        m.W_h.weight.copy_(torch.from_numpy(p["W_h"].T))
        for name in ("b", "gamma_x", "gamma_h", "gamma_c", "beta_c"):
            getattr(m, name).copy_(torch.from_numpy(p[name]))
    x = rng.standard_normal((5, 6, 3))
    (y, _), _ = layer.forward(x)
    # float64 on both sides, T=6 steps, widths <= 4, plus a mean/variance over <= 4 units: a few hundred
    # rounded operations, ~1e-13 relative in any BLAS summation order; rtol 1e-10 leaves 1000x, atol for zeros.
    np.testing.assert_allclose(m(torch.from_numpy(x)).detach().numpy(), y, rtol=1e-10, atol=1e-12)


def test_eval_rows_alone_leave_the_eval_train_column_blank(throughput, clock, monkeypatch, capsys):
    """--eval-only: eval_rows runs without training times and returns every row's timing."""
    steps = {"ours": clock.step("ours", [0.01]), "theirs": clock.step("theirs", [0.03])}
    monkeypatch.setattr(throughput, "rnnlab_steps", lambda cell, H: (None, steps["ours"]))
    monkeypatch.setattr(throughput, "torch_steps", lambda cell, H: (None, steps["theirs"]))
    args = SimpleNamespace(cells=["lstm"], hidden=[128, 512], warmup=1, seconds=0.1)
    times = throughput.eval_rows(args, None)
    assert set(times) == {("lstm", 128), ("lstm", 512)}
    # ratio of medians of fake-clock steps: a few float64 ulps; default rel 1e-6.
    assert all(t.theirs / t.ours == pytest.approx(3.0) for t in times.values())
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [r.split()[:2] for r in rows] == [["lstm", "128"], ["lstm", "512"]]
    assert all(r.split()[4] == "3.00" and len(r.split()) == 6 for r in rows)   # no eval/train value
