"""A decode step gives the same logits whatever number of threads runs it.

The engine changes its thread count while it runs (``ThreadTuner``: fewer threads on a
busy machine), so greedy output must not depend on it. Upstream llama.cpp splits the
single-query flash attention over one KV chunk per thread, which makes the result
depend on the thread count once the cache holds 512 cells or more;
``packaging/runtime/patches/0002-batch-invariant-small-batches.patch`` sends decode
attention down the per-row path instead, each row whole on one thread. The context here
is past that threshold.
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


@pytest.mark.parametrize("flash_attn", ["on", "off"])
def test_decode_logits_do_not_depend_on_the_thread_count(model_path: Path, flash_attn: str) -> None:
    from edge_agent.engine.llama_model import LlamaModel

    m = LlamaModel(model_path, n_ctx=2048, n_threads=2, flash_attn=flash_attn)
    try:
        prompt = m.tokenize(TEXT * 14, add_bos=True)
        assert 600 < len(prompt) < 1800, len(prompt)
        follow = m.tokenize(" The next meeting is on", add_bos=False)

        def rows(threads: int) -> list[np.ndarray]:
            m.set_threads(threads)
            m.truncate(0)
            for i in range(0, len(prompt), 512):
                m.eval(prompt[i : i + 512], [])
            return [m.eval([t], [0])[0].copy() for t in follow]

        two, one = rows(2), rows(1)
    finally:
        m.close()
    for i, (a, b) in enumerate(zip(two, one, strict=True)):
        assert np.all(np.isfinite(a))
        diff = float(np.max(np.abs(a - b)))
        assert diff == 0.0, f"step {i}: logits differ by up to {diff} between 2 threads and 1"
