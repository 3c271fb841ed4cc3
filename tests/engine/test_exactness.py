"""Speculative decoding is lossless: proofs on the deterministic numpy fake model.

Greedy: speculative output equals plain output token for token for random drafts.
Sampled: the match verifier reproduces plain sampling for the same seed, and the
emitted sequences follow the target distribution (chi-square); a verifier with a
deliberately broken acceptance rule fails the same chi-square test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import product

import numpy as np
import numpy.typing as npt
import pytest

from edge_agent.engine.adaptive import DraftPolicy
from edge_agent.engine.decoder import DecodeStats, SpeculativeDecoder
from edge_agent.engine.drafters import ContextDrafter, Draft, Drafter
from edge_agent.engine.fake import FakeModel
from edge_agent.engine.sampling import Sampler, greedy
from edge_agent.engine.verify import MatchVerifier, RejectionVerifier, Verifier


class NoisyOracleDrafter:
    """Proposes the model's greedy continuation with random corruptions."""

    name = "oracle"

    def __init__(self, model: FakeModel, rng: np.random.Generator, p_wrong: float) -> None:
        self.model = model
        self.rng = rng
        self.p_wrong = p_wrong
        self.seq: list[int] = []

    def begin(self, tokens: Sequence[int]) -> None:
        self.seq = list(tokens)

    def extend(self, tokens: Sequence[int]) -> None:
        self.seq.extend(tokens)

    def propose(self, max_len: int) -> Draft | None:
        ctx = list(self.seq)
        out = []
        for _ in range(int(self.rng.integers(1, max_len + 1))):
            t = greedy(self.model.logits_for(ctx))
            if self.rng.random() < self.p_wrong:
                t = int(self.rng.integers(self.model.n_vocab))
            out.append(t)
            ctx.append(t)
        return Draft(tuple(out), self.name, 3)


class FixedDrafter:
    """Always proposes the same tokens."""

    name = "fixed"

    def __init__(self, tokens: Sequence[int]) -> None:
        self.tokens = tuple(tokens)

    def begin(self, tokens: Sequence[int]) -> None:
        pass

    def extend(self, tokens: Sequence[int]) -> None:
        pass

    def propose(self, max_len: int) -> Draft | None:
        return Draft(self.tokens[:max_len], self.name, 3)


def _always_draft() -> DraftPolicy:
    return DraftPolicy(max_draft=8, step_cost=0.0)


def _spec(
    model: FakeModel, drafters: Sequence[Drafter], verifier: Verifier | None = None
) -> SpeculativeDecoder:
    """A decoder that verifies every draft in full (no cost learning from timings)."""
    return SpeculativeDecoder(
        model, drafters=drafters, policy=_always_draft(), verifier=verifier, learn_step_cost=False
    )


def _run(
    dec: SpeculativeDecoder, prompt: list[int], sampler: Sampler, n: int, spec: bool = True
) -> list[int]:
    out: list[int] = []
    for new in dec.decode(prompt, sampler, n, speculative=spec):
        out.extend(new)
    return out


@pytest.mark.parametrize("seed", range(25))
def test_greedy_speculative_equals_plain(seed: int) -> None:
    rng = np.random.default_rng(seed)
    model = FakeModel(n_vocab=12, order=2, seed=seed, sharpness=2.0, eog_token=None)
    prompt = [int(t) for t in rng.integers(1, 12, size=12)]
    plain = _run(SpeculativeDecoder(model), prompt, Sampler(0.0), 40)
    assert len(plain) == 40
    model2 = FakeModel(n_vocab=12, order=2, seed=seed, sharpness=2.0, eog_token=None)
    dec = _spec(model2, [NoisyOracleDrafter(model2, rng, p_wrong=0.3), ContextDrafter()])
    stats = DecodeStats()
    spec: list[int] = []
    for new in dec.decode(prompt, Sampler(0.0), 40, stats=stats):
        spec.extend(new)
    assert spec == plain
    assert stats.verify_steps > 0 and 0 < stats.accepted_tokens < stats.drafted_tokens
    assert model2.tokens == dec.cached  # KV bookkeeping matches the model's cache


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("temperature,top_k,top_p", [(0.8, 0, 1.0), (1.2, 5, 0.9)])
def test_sampled_match_verifier_reproduces_plain_sampling(
    seed: int, temperature: float, top_k: int, top_p: float
) -> None:
    rng = np.random.default_rng(100 + seed)
    model = FakeModel(n_vocab=10, order=2, seed=seed, sharpness=2.5)
    prompt = [int(t) for t in rng.integers(1, 10, size=6)]
    plain = _run(SpeculativeDecoder(model), prompt, Sampler(temperature, top_k, top_p, seed), 30)
    dec = _spec(model, [NoisyOracleDrafter(model, rng, 0.2)])
    spec = _run(dec, prompt, Sampler(temperature, top_k, top_p, seed), 30)
    assert spec == plain


def test_decoder_stops_on_eog_and_respects_max_tokens() -> None:
    model = FakeModel(n_vocab=8, order=1, seed=2, sharpness=0.5)
    dec = _spec(model, [ContextDrafter(min_n=1)])
    for seed in range(20):
        st = DecodeStats()
        out = [
            t for new in dec.decode([3, 4, 5], Sampler(1.0, seed=seed), 9, stats=st) for t in new
        ]
        assert 0 not in out
        assert len(out) <= 9
        assert st.finish_reason == ("length" if len(out) == 9 else "stop")
        assert model.tokens == dec.cached


def test_prefix_reuse_skips_the_shared_prompt() -> None:
    model = FakeModel(n_vocab=12, order=2, seed=1, eog_token=None)
    dec = SpeculativeDecoder(model)
    shared = list(range(1, 11)) * 3
    st1 = DecodeStats()
    first = _run(dec, shared + [4, 5], Sampler(0.0), 5)
    before = model.evaluated_positions
    st2 = DecodeStats()
    second = [t for new in dec.decode(shared + [7, 8, 9], Sampler(0.0), 5, stats=st2) for t in new]
    assert st2.reused_prefix_tokens == len(shared)
    # only the 3 new prompt tokens and the decode steps were evaluated
    assert model.evaluated_positions - before == 3 + (len(second) - 1)
    fresh = _run(
        SpeculativeDecoder(FakeModel(n_vocab=12, order=2, seed=1, eog_token=None)),
        shared + [7, 8, 9],
        Sampler(0.0),
        5,
    )
    assert second == fresh and first
    # identical prompt again: everything but the last token is reused
    st3 = DecodeStats()
    _ = [t for new in dec.decode(shared + [7, 8, 9], Sampler(0.0), 5, stats=st3) for t in new]
    assert st3.reused_prefix_tokens == len(shared) + 2
    assert st1.reused_prefix_tokens == 0


class _Recording:
    """A ``TokenModel`` that records the batches it is asked to evaluate."""

    def __init__(self, inner: FakeModel) -> None:
        self.inner = inner
        self.n_vocab, self.n_ctx = inner.n_vocab, inner.n_ctx
        self.calls: list[tuple[int, list[int]]] = []

    @property
    def n_past(self) -> int:
        return self.inner.n_past

    def truncate(self, n: int) -> None:
        self.inner.truncate(n)

    def eval(self, tokens: Sequence[int], want: Sequence[int]) -> np.ndarray:
        self.calls.append((len(tokens), list(want)))
        return self.inner.eval(tokens, want)

    def is_eog(self, token: int) -> bool:
        return self.inner.is_eog(token)


def test_a_long_prompt_has_its_last_token_evaluated_alone() -> None:
    prompt = list(range(1, 11)) * 2
    plain = _run(SpeculativeDecoder(FakeModel(n_vocab=12, order=2, seed=3, eog_token=None)), prompt, Sampler(0.0), 6)
    rec = _Recording(FakeModel(n_vocab=12, order=2, seed=3, eog_token=None))
    dec = SpeculativeDecoder(rec, invariant_rows=8, prefill_chunk=6)
    assert _run(dec, prompt, Sampler(0.0), 6) == plain
    # 19 prompt tokens in chunks of 6 without logits, then the 20th alone
    assert rec.calls[:5] == [(6, []), (6, []), (6, []), (1, []), (1, [0])]
    # a remainder within the invariant batch size stays one batch
    rec.calls.clear()
    _run(dec, prompt + [3, 4, 5], Sampler(0.0), 2)
    assert rec.calls[0] == (3, [2])
    # the same prompt again: the cached body is kept and its last token evaluated alone
    rec.calls.clear()
    assert _run(dec, prompt, Sampler(0.0), 6) == plain
    assert rec.calls[0] == (1, [0])


def test_cancellation_between_steps() -> None:
    model = FakeModel(n_vocab=12, order=2, seed=5, eog_token=None)
    dec = SpeculativeDecoder(model)
    calls = {"n": 0}

    def cancelled() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    st = DecodeStats()
    out = [
        t
        for new in dec.decode([1, 2, 3], Sampler(0.0), 50, cancelled=cancelled, stats=st)
        for t in new
    ]
    assert st.finish_reason == "cancelled"
    assert len(out) == 3


# -- distribution test ---------------------------------------------------------


def _gamma_q(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x) (series / continued fraction)."""
    if x <= 0:
        return 1.0
    lg = math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return 1.0 - total * math.exp(-x + a * math.log(x) - lg)
    b = x + 1 - a
    c = 1e300
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - lg) * h


def chi_square_p(observed: npt.NDArray[np.float64], expected: npt.NDArray[np.float64]) -> float:
    """P-value of Pearson's test; cells expecting fewer than 5 are pooled."""
    small = expected < 5
    obs = np.append(observed[~small], observed[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    stat = float(((obs - exp) ** 2 / exp).sum())
    return _gamma_q((obs.size - 1) / 2.0, stat / 2.0)


def test_chi_square_helper_matches_known_quantiles() -> None:
    # chi2(df=1) 95th percentile 3.841; chi2(df=10) 99th percentile 23.209
    assert _gamma_q(0.5, 3.841 / 2) == pytest.approx(0.05, abs=2e-4)
    assert _gamma_q(5.0, 23.209 / 2) == pytest.approx(0.01, abs=2e-4)


class BrokenRejectionVerifier:
    """The rejection rule with a bug: on rejection it redraws from p, d included."""

    def verify(
        self, rows: npt.NDArray[np.float32], draft: Sequence[int], sampler: Sampler
    ) -> tuple[int, int]:
        for i, d in enumerate(draft):
            dist = sampler.distribution(rows[i])
            if sampler.uniform() < dist.prob_of(d):
                continue
            return i, dist.pick(sampler.uniform())
        return len(draft), sampler.sample(rows[len(draft)])


V, N_TOK, RUNS, T = 4, 4, 6000, 0.8


def _empirical_and_exact(
    verifier: Verifier,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    model = FakeModel(n_vocab=V, order=1, seed=11, sharpness=1.5, eog_token=None)
    prompt = [1, 2]
    # draft the most likely path: the rule is exercised at every position
    path, ctx = [], list(prompt)
    for _ in range(N_TOK):
        t = greedy(model.logits_for(ctx))
        path.append(t)
        ctx.append(t)
    dec = _spec(model, [FixedDrafter(path[1:])], verifier)
    counts = np.zeros(V**N_TOK)
    for seed in range(RUNS):
        out = _run(dec, prompt, Sampler(T, seed=seed), N_TOK)
        assert len(out) == N_TOK
        counts[int(np.ravel_multi_index(out, (V,) * N_TOK))] += 1
    exact = np.zeros(V**N_TOK)
    for seq in product(range(V), repeat=N_TOK):
        p, ctx = 1.0, list(prompt)
        for t in seq:
            p *= model.probs(ctx, T)[t]
            ctx.append(t)
        exact[int(np.ravel_multi_index(seq, (V,) * N_TOK))] = p
    return counts, exact * RUNS


@pytest.mark.parametrize(
    "verifier", [MatchVerifier(), RejectionVerifier()], ids=["match", "rejection"]
)
def test_sampled_output_follows_target_distribution(verifier: Verifier) -> None:
    observed, expected = _empirical_and_exact(verifier)
    assert chi_square_p(observed, expected) > 0.01


def test_chi_square_rejects_a_broken_acceptance_rule() -> None:
    observed, expected = _empirical_and_exact(BrokenRejectionVerifier())
    assert chi_square_p(observed, expected) < 0.01
