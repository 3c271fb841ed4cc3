"""Speculation stays exact under a constraint (grammar): proofs on the numpy fake model,
and the constrained argmax equals the argmax of the masked row."""

from __future__ import annotations

import numpy as np
import pytest
from test_exactness import NoisyOracleDrafter, _run, _spec

from edge_agent.engine.constraint import TokenSetConstraint, constrained_argmax, masked
from edge_agent.engine.decoder import DecodeStats, SpeculativeDecoder
from edge_agent.engine.drafters import ContextDrafter
from edge_agent.engine.fake import FakeModel
from edge_agent.engine.sampling import Sampler
from edge_agent.engine.verify import RejectionVerifier


def _rule(emitted: tuple[int, ...]) -> set[int]:
    """A small 'grammar': odd tokens after an even one, evens (or 1) after an odd one."""
    if not emitted or emitted[-1] % 2 == 0:
        return {1, 3, 5, 7, 9, 11}
    return {2, 4, 6, 8, 10, 1}


@pytest.mark.parametrize("seed", range(20))
def test_constrained_argmax_is_the_masked_argmax(seed: int) -> None:
    rng = np.random.default_rng(seed)
    row = rng.standard_normal(300).astype(np.float32)
    row[rng.integers(300, size=5)] = row.max()  # ties at the top
    allowed = {int(t) for t in rng.choice(300, size=int(rng.integers(1, 40)), replace=False)}
    c = TokenSetConstraint(lambda _e: allowed)
    assert constrained_argmax(row, c, top=8) == int(np.argmax(masked(row, c)))
    assert int(np.argmax(masked(row, c))) in allowed


@pytest.mark.parametrize("seed", range(15))
def test_greedy_speculative_under_a_constraint_equals_plain(seed: int) -> None:
    rng = np.random.default_rng(seed)
    model = FakeModel(n_vocab=12, order=2, seed=seed, sharpness=2.0, eog_token=None)
    prompt = [int(t) for t in rng.integers(1, 12, size=10)]
    plain_c = TokenSetConstraint(_rule)
    plain = _run(SpeculativeDecoder(model), prompt, Sampler(0.0, constraint=plain_c), 40)
    model2 = FakeModel(n_vocab=12, order=2, seed=seed, sharpness=2.0, eog_token=None)
    dec = _spec(model2, [NoisyOracleDrafter(model2, rng, p_wrong=0.3), ContextDrafter()])
    spec_c = TokenSetConstraint(_rule)
    stats = DecodeStats()
    spec = [t for new in dec.decode(prompt, Sampler(0.0, constraint=spec_c), 40, stats=stats) for t in new]
    assert spec == plain
    assert spec_c.emitted == spec  # the constraint saw exactly the emitted tokens
    assert all(t in _rule(tuple(spec[:i])) for i, t in enumerate(spec))
    assert stats.verify_steps > 0 and stats.accepted_tokens < stats.drafted_tokens  # drafts were refused too


@pytest.mark.parametrize("seed", range(10))
def test_sampled_under_a_constraint_reproduces_plain_sampling(seed: int) -> None:
    rng = np.random.default_rng(50 + seed)
    model = FakeModel(n_vocab=12, order=2, seed=seed, sharpness=2.5, eog_token=None)
    prompt = [int(t) for t in rng.integers(1, 12, size=6)]
    plain = _run(SpeculativeDecoder(model), prompt, Sampler(0.9, 0, 1.0, seed, TokenSetConstraint(_rule)), 30)
    dec = _spec(model, [NoisyOracleDrafter(model, rng, 0.2)])
    spec = _run(dec, prompt, Sampler(0.9, 0, 1.0, seed, TokenSetConstraint(_rule)), 30)
    assert spec == plain
    assert all(t in _rule(tuple(spec[:i])) for i, t in enumerate(spec))


def test_rejection_verifier_keeps_the_constraint() -> None:
    model = FakeModel(n_vocab=12, order=2, seed=3, sharpness=2.0, eog_token=None)
    rng = np.random.default_rng(0)
    for seed in range(10):
        c = TokenSetConstraint(_rule)
        dec = _spec(model, [NoisyOracleDrafter(model, rng, 0.3)], RejectionVerifier())
        out = _run(dec, [2, 3, 4], Sampler(1.0, seed=seed, constraint=c), 25)
        assert c.emitted == out
        assert all(t in _rule(tuple(out[:i])) for i, t in enumerate(out))
