"""The speculative benchmark's divergence analysis, on a fake model with batch noise.

Batched evaluation perturbs logits slightly (as llama.cpp does); speculative greedy then
differs from plain greedy only at near-ties, and the analysis must call every such
divergence explained. A verifier that accepts wrong tokens must produce unexplained ones.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_agent.engine.adaptive import DraftPolicy
from edge_agent.engine.decoder import DecodeStats, SpeculativeDecoder
from edge_agent.engine.drafters import ContextDrafter
from edge_agent.engine.fake import FakeModel
from edge_agent.engine.sampling import Sampler, greedy
from edge_agent.engine.verify import Verifier

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "speculative_bench", ROOT / "benchmarks" / "speculative.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("speculative_bench", mod)
    spec.loader.exec_module(mod)
    return mod


class BatchNoiseModel(FakeModel):
    """Rows computed in a batch of more than one token carry a small perturbation."""

    def __init__(self, eps: float, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.eps = eps

    def eval(self, tokens: Sequence[int], want: Sequence[int]) -> npt.NDArray[np.float32]:
        base = self.n_past
        out = super().eval(tokens, want)
        if len(tokens) > 1:
            for j, i in enumerate(want):
                rng = np.random.default_rng(base + i)
                out[j] += (self.eps * rng.uniform(-1, 1, self.n_vocab)).astype(np.float32)
        return out


class TopTwoVerifier:
    """Wrong on purpose: accepts a draft token whenever it is among the two best."""

    def verify(
        self, rows: npt.NDArray[np.float32], draft: Sequence[int], sampler: Sampler
    ) -> tuple[int, int]:
        for i, d in enumerate(draft):
            top2 = np.argsort(rows[i])[-2:]
            if d not in top2:
                return i, greedy(rows[i])
        return len(draft), greedy(rows[len(draft)])


def _divergences(verifier: Verifier | None, seeds: range) -> list[dict[str, Any]]:
    bench = _bench()
    found = []
    for seed in seeds:
        kw = {"n_vocab": 40, "order": 2, "seed": seed, "sharpness": 0.6, "eog_token": None}
        rng = np.random.default_rng(seed)
        prompt = [int(t) for t in rng.integers(0, 40, size=30)]
        prompt = prompt + prompt[:20]  # repetition gives the drafter something to find
        plain_dec = SpeculativeDecoder(BatchNoiseModel(0.05, **kw))
        plain = [t for new in plain_dec.decode(prompt, Sampler(0.0), 60) for t in new]
        model = BatchNoiseModel(0.05, **kw)
        dec = SpeculativeDecoder(
            model,
            drafters=[ContextDrafter(min_n=1, max_n=3)],
            policy=DraftPolicy(max_draft=6, step_cost=0.0),
            verifier=verifier,
            learn_step_cost=False,
        )
        st = DecodeStats(trace=[])
        spec = [t for new in dec.decode(prompt, Sampler(0.0), 60, stats=st) for t in new]
        div = bench.divergence(BatchNoiseModel(0.05, **kw), prompt, plain, spec, st.trace)
        if div is not None:
            found.append(div)
    return found


def test_numerical_divergences_are_reproduced_and_within_the_noise() -> None:
    found = _divergences(None, range(40))
    assert found, "the noise should flip some near-ties"
    for div in found:
        # the replay reproduces both runs' choices at the first differing token
        assert div["replay_consistent"], div
        # two logits moving by at most d each can swap order only within 2*d
        assert div["margin"] <= 2 * div["max_abs_logit_diff"], div
    assert sum(bool(d["explained"]) for d in found) >= len(found) // 2


def test_a_wrong_verifier_produces_unexplained_divergences() -> None:
    found = _divergences(TopTwoVerifier(), range(10))
    assert any(not d["explained"] and not d["replay_consistent"] for d in found)
