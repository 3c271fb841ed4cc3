"""Time to first token by conversation turn: does a follow-up get slower as the
conversation grows? A ~1k-token history is built turn by turn on the real model (the
engine keeps the KV state of the earlier turns); the first and the tenth turn's TTFT
are compared with the tenth turn on a cold cache (the whole history evaluated).

    python benchmarks/chat_turns.py --json benchmarks/results/chat_turns.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from common.chat import Message
from common.model_files import default_model_path
from edge_agent.engine.api import Finished, SamplingParams, TextDelta
from edge_agent.engine.llama_engine import LlamaEngine

TURNS = 10
QUESTION = (
    "Here is turn {i} of our planning chat. We still need to sort out the venue, the catering for about forty "
    "people, the music, the photographer and who brings the cake; tell me what you would do next and why."
)


def _turn(engine: LlamaEngine, messages: list[Message], max_tokens: int) -> tuple[str, float, int]:
    prompt = engine.chat_prompt(messages)
    parts: list[str] = []
    for ev in engine.generate(prompt, SamplingParams(max_tokens=max_tokens)):
        if isinstance(ev, TextDelta):
            parts.append(ev.text)
        elif isinstance(ev, Finished):
            return "".join(parts), ev.usage.ttft_ms, ev.usage.prompt_tokens
    raise RuntimeError("no Finished event")


def run(repeats: int, answer_tokens: int) -> dict[str, object]:
    engine = LlamaEngine(default_model_path(progress=False), n_ctx=4096)
    warm1, warm10, cold10, tokens10 = [], [], [], 0
    for _ in range(repeats):
        engine.reset_cache()
        messages: list[Message] = []
        ttfts: list[float] = []
        for i in range(1, TURNS + 1):
            messages.append(Message("user", QUESTION.format(i=i)))
            answer, ttft, tokens = _turn(engine, messages, answer_tokens)
            ttfts.append(ttft)
            messages.append(Message("assistant", answer.strip() or "ok"))
        warm1.append(ttfts[0])
        warm10.append(ttfts[-1])
        tokens10 = tokens
        engine.reset_cache()  # the same tenth turn with nothing cached
        cold10.append(_turn(engine, messages[:-1], answer_tokens)[1])
    w1, w10, c10 = (statistics.median(x) for x in (warm1, warm10, cold10))
    return {
        "turns": TURNS, "repeats": repeats, "history_tokens_turn10": tokens10,
        "ttft_turn1_ms": w1, "ttft_turn10_ms": w10, "ttft_turn10_cold_ms": c10,
        "turn10_over_turn1": w10 / w1, "cold_over_kept": c10 / w10,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--answer-tokens", type=int, default=48)
    args = ap.parse_args()
    r = run(args.repeats, args.answer_tokens)
    print(f"history at turn {TURNS}: {r['history_tokens_turn10']} tokens")
    print(f"TTFT turn 1 {r['ttft_turn1_ms']:.1f} ms | turn {TURNS} (KV kept) {r['ttft_turn10_ms']:.1f} ms | "
          f"turn {TURNS} cold {r['ttft_turn10_cold_ms']:.1f} ms | ratio 10/1 {r['turn10_over_turn1']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
