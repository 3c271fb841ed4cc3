"""A token's logits are the same whether it is decoded alone or inside a verify batch.

Self-speculative decoding promises the output of plain decoding. Its verify step runs
the last accepted token and the draft as one batch, so every row of that batch must be
computed exactly as the one-token step computes it. Upstream llama.cpp picks other
kernels for batches of two tokens or more (tinyBLAS, the repacked gemm, the split-KV
decode attention), whose different summation order moves logits by up to about a unit
after 18 layers and flips greedy choices at near-ties.
The runtime's patches (``packaging/runtime/patches/``, 0002 and 0003) compute every row
of a batch of up to 32 tokens as the one-token step does (kernel by kernel:
``test_kernels.py``). The long prompt puts the cache past the
512 cells where upstream's decode attention changes path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.model

TEXT = (
    "Minutes of the allotment committee. The water tank by plot 14 leaks again; Marta will "
    "ask the council for a new valve before the dry weeks. Seeds for the spring order are "
    "due on Friday: beans, two kinds of lettuce, onions and the early potatoes. "
)
FOLLOW = (
    " The next meeting is on the first Tuesday of March in the hall behind the church, and "
    "everyone who still owes the yearly fee should bring it along with their seed list."
)


@pytest.mark.parametrize(("flash_attn", "copies"), [("on", 1), ("on", 14), ("off", 14)])
def test_verify_batch_rows_equal_one_token_steps(model_path: Path, flash_attn: str, copies: int) -> None:
    from edge_agent.engine.llama_model import LlamaModel

    m = LlamaModel(model_path, n_ctx=2048, n_threads=2, flash_attn=flash_attn)
    try:
        prompt = m.tokenize(TEXT * copies, add_bos=True)
        follow = m.tokenize(FOLLOW, add_bos=False)
        assert len(follow) >= 24, len(follow)
        if copies > 1:
            assert 600 < len(prompt) < 1800, len(prompt)

        def reset() -> None:
            m.truncate(0)
            for i in range(0, len(prompt), 512):
                m.eval(prompt[i : i + 512], [])

        reset()
        alone = np.stack([m.eval([t], [0])[0].copy() for t in follow])
        assert np.all(np.isfinite(alone))
        for k in (2, 3, 4, 5, 8, 17):
            reset()
            at = 0
            while at < len(follow):  # batches of k, then the cache they wrote is used
                chunk = follow[at : at + k]
                got = m.eval(chunk, list(range(len(chunk))))
                for row in range(len(chunk)):
                    diff = float(np.max(np.abs(got[row] - alone[at + row])))
                    assert diff == 0.0, (
                        f"batch of {k}, token {at + row}: logits differ from the one-token "
                        f"step by up to {diff}"
                    )
                at += len(chunk)
    finally:
        m.close()


def test_a_cached_prompt_gives_the_same_first_distribution(model_path: Path) -> None:
    """Asking the same long prompt twice: the second time only its last token is
    evaluated (the rest is in the cache). The decoder evaluates that token alone the
    first time too, so both see the same logits; a prompt batch would not."""
    from edge_agent.engine.decoder import DecodeStats, SpeculativeDecoder
    from edge_agent.engine.llama_model import BATCH_INVARIANT_ROWS, LlamaModel
    from edge_agent.engine.sampling import Sampler

    m = LlamaModel(model_path, n_ctx=2048, n_threads=2)
    try:
        prompt = m.tokenize(TEXT * 3, add_bos=True)
        assert len(prompt) > BATCH_INVARIANT_ROWS

        def prefill(dec: SpeculativeDecoder, stats: DecodeStats) -> np.ndarray:
            d = dec.decoding(prompt, Sampler(0.0, 0, 1.0, 0, None), 1, stats=stats)
            for _ in d.prefill_parts():
                pass
            return d.prefill_rows[-1].copy()

        def first_rows(invariant_rows: int) -> tuple[np.ndarray, np.ndarray]:
            dec = SpeculativeDecoder(m, invariant_rows=invariant_rows)
            dec.reset()
            fresh = prefill(dec, DecodeStats())
            stats = DecodeStats()
            cached = prefill(dec, stats)
            assert stats.reused_prefix_tokens == len(prompt) - 1
            return fresh, cached

        fresh, cached = first_rows(BATCH_INVARIANT_ROWS)
        assert float(np.max(np.abs(fresh - cached))) == 0.0
        fresh, cached = first_rows(0)  # the whole prompt as one batch: other kernels
        assert float(np.max(np.abs(fresh - cached))) > 0.0
    finally:
        m.close()
