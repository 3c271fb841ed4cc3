"""Token probabilities for the quality cascade: exactly the model's softmax at each
emitted token, for the first N tokens, with and without speculative drafts."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.engine.decoder import DecodeStats, SpeculativeDecoder
from edge_agent.engine.drafters import ContextDrafter
from edge_agent.engine.fake import FakeModel
from edge_agent.engine.sampling import Sampler


@pytest.mark.parametrize("speculative", [False, True])
def test_probabilities_are_the_models_softmax_of_each_emitted_token(speculative: bool) -> None:
    model = FakeModel(n_vocab=12, order=2, seed=3, sharpness=2.0, eog_token=None)
    decoder = SpeculativeDecoder(model, drafters=[ContextDrafter()])
    prompt = [1, 2, 3, 4, 1, 2, 3, 4, 1, 2]
    stats = DecodeStats(probs=[], probs_limit=6)
    out: list[int] = []
    for new in decoder.decode(prompt, Sampler(0.0, 0, 1.0, 0), 12, speculative=speculative, stats=stats):
        out.extend(new)
    assert len(out) == 12 and stats.probs is not None and len(stats.probs) == 6
    ctx = list(prompt)
    for tok, p in zip(out, stats.probs):
        logits = model.logits_for(ctx).astype(np.float64)
        e = np.exp(logits - logits.max())
        assert p == pytest.approx(e[tok] / e.sum(), rel=1e-5)
        ctx.append(tok)


def test_no_probabilities_unless_asked() -> None:
    model = FakeModel(n_vocab=12, order=2, seed=3, eog_token=None)
    stats = DecodeStats()
    list(SpeculativeDecoder(model).decode([1, 2, 3], Sampler(0.0, 0, 1.0, 0), 5, stats=stats))
    assert stats.probs is None
