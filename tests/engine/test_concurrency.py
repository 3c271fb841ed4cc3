"""Several requests at once give each the text it gets alone (the real model).

The engine with ``parallel > 1`` decodes concurrent requests in shared steps; every
answer must be the one the same request gets from an engine serving one at a time:
greedy, with and without drafts, one under a JSON-schema grammar, with a request
cancelled mid-stream and a long prompt arriving while others stream.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

PROMPTS = [
    "Autumn in the city\n\nThe leaves",
    "Write a short note to a colleague about the quarterly report:",
    "def fibonacci(n):\n",
    "Dear Anna, thank you for the invitation to",
]
SCHEMA = json.dumps({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                     "required": ["city", "days"]})
LONG = "Minutes of the allotment committee. The water tank by plot 14 leaks again. " * 60


def _text(events: Iterator[object]) -> str:
    from edge_agent.engine.api import TextDelta

    return "".join(ev.text for ev in events if isinstance(ev, TextDelta))


def _params(prompt: str, max_tokens: int = 40) -> object:
    from edge_agent.engine.api import SamplingParams

    schema = SCHEMA if prompt.startswith("Trip:") else ""
    return SamplingParams(max_tokens=max_tokens, temperature=0.0, json_schema=schema)


def _alone(model_path: Path, prompts: list[str], speculative: bool = True) -> dict[str, str]:
    from edge_agent.engine.llama_engine import LlamaEngine

    eng = LlamaEngine(model_path, n_ctx=2048, n_threads=2, speculative=speculative, remember_answers=False)
    try:
        return {p: _text(eng.generate(p, _params(p))) for p in prompts}
    finally:
        eng.close()


def _together(eng: object, prompts: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    errors: list[BaseException] = []

    def run(p: str) -> None:
        try:
            out[p] = _text(eng.generate(p, _params(p)))  # type: ignore[attr-defined]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    return out


@pytest.mark.parametrize(("parallel", "speculative"), [(4, True), (2, True), (4, False)])
def test_concurrent_answers_equal_the_answers_alone(model_path: Path, parallel: int, speculative: bool) -> None:
    from edge_agent.engine.llama_engine import LlamaEngine

    prompts = [*PROMPTS, "Trip: three days in Lisbon. As JSON:"]
    alone = _alone(model_path, prompts, speculative)
    eng = LlamaEngine(model_path, n_ctx=2048, n_threads=2, speculative=speculative, remember_answers=False,
                      parallel=parallel)
    try:
        together = _together(eng, prompts)
        assert eng.scheduler is not None and eng.scheduler.stats.steps > 0
        shared = eng.scheduler.stats.rows / eng.scheduler.stats.steps
    finally:
        eng.close()
    assert json.loads(together["Trip: three days in Lisbon. As JSON:"])  # the grammar held
    for p in prompts:
        assert together[p] == alone[p], f"{p!r}: together {together[p]!r} vs alone {alone[p]!r}"
    assert shared > 1.0  # steps really carried several sequences


def test_cancel_one_of_four_mid_stream_and_a_long_prompt_arriving(model_path: Path) -> None:
    from edge_agent.engine.api import Finished, TextDelta
    from edge_agent.engine.llama_engine import LlamaEngine

    keep = PROMPTS[:3]
    alone = _alone(model_path, [*keep, LONG])
    eng = LlamaEngine(model_path, n_ctx=2048, n_threads=2, remember_answers=False, parallel=4)
    try:
        stop = threading.Event()
        seen: list[str] = []

        def cancelled_one() -> None:
            n = 0
            for ev in eng.generate(PROMPTS[3], _params(PROMPTS[3], 200), cancelled=stop.is_set):
                if isinstance(ev, TextDelta):
                    n += 1
                    if n == 3:
                        stop.set()
                elif isinstance(ev, Finished):
                    seen.append(ev.finish_reason)

        t = threading.Thread(target=cancelled_one)
        t.start()
        together = _together(eng, [*keep, LONG])
        t.join(timeout=300)
        assert seen == ["cancelled"]
        # its sequence is free again: another request runs to the end
        assert _text(eng.generate(PROMPTS[0], _params(PROMPTS[0]))) == alone[PROMPTS[0]]
    finally:
        eng.close()
    for p in [*keep, LONG]:
        assert together[p] == alone[p], f"{p[:30]!r}: together {together[p]!r} vs alone {alone[p]!r}"
