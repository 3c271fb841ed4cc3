"""LlamaEngine on the real shipped model: streaming, stops, limits, reuse, drafting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from common.chat import Message
from common.errors import OutOfRange
from edge_agent.engine.api import Finished, SamplingParams, TextDelta, Usage
from edge_agent.engine.llama_engine import LlamaEngine

pytestmark = pytest.mark.model

COPY_PROMPT = (
    "<start_of_turn>user\nCopy this sentence exactly: Alice will meet Bob at the Blue Fern "
    "cafe on Friday at noon to review the budget.<end_of_turn>\n<start_of_turn>model\n"
)


@pytest.fixture(scope="module")
def plain(model_path: Path) -> Iterator[LlamaEngine]:
    eng = LlamaEngine(model_path, n_ctx=1024, n_threads=2, speculative=False)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def spec(model_path: Path) -> Iterator[LlamaEngine]:
    eng = LlamaEngine(model_path, n_ctx=1024, n_threads=2, speculative=True)
    yield eng
    eng.close()


def run(
    eng: LlamaEngine, prompt: str, params: SamplingParams, **kw: object
) -> tuple[list[str], Finished]:
    deltas: list[str] = []
    events = list(eng.generate(prompt, params, **kw))  # type: ignore[arg-type]
    for ev in events[:-1]:
        assert isinstance(ev, TextDelta)
        deltas.append(ev.text)
    last = events[-1]
    assert isinstance(last, Finished)
    return deltas, last


def test_greedy_generation_streams_text_and_reports_usage(plain: LlamaEngine) -> None:
    deltas, fin = run(plain, COPY_PROMPT, SamplingParams(max_tokens=24))
    text = "".join(deltas)
    assert "Alice" in text
    u: Usage = fin.usage
    assert u.prompt_tokens == len(plain.tokenize_prompt(COPY_PROMPT))
    assert plain.tokenize_prompt(COPY_PROMPT)[0] == plain.model.bos_token
    assert 0 < u.completion_tokens <= 24
    assert fin.finish_reason in ("stop", "length")
    assert u.ttft_ms > 0 and u.total_ms >= u.ttft_ms and u.tokens_per_s > 0
    assert u.energy_j > 0 and u.energy_source in ("rapl", "estimate")
    # deltas are exactly the UTF-8 decoding of the emitted tokens
    plain.reset_cache()
    traced = plain.traced(COPY_PROMPT, SamplingParams(max_tokens=24))
    again = "".join(ev.text for ev in traced.events if isinstance(ev, TextDelta))
    assert again == text == plain.model.detokenize(traced.tokens).decode("utf-8", "replace")
    assert plain.count_tokens("hello world") == len(
        plain.model.tokenize("hello world", add_bos=False)
    )


def test_max_tokens_and_cancellation(plain: LlamaEngine) -> None:
    _, fin = run(plain, "Once upon a time", SamplingParams(max_tokens=5))
    assert fin.finish_reason == "length" and fin.usage.completion_tokens == 5
    polls = {"n": 0}

    def cancelled() -> bool:
        polls["n"] += 1
        return polls["n"] > 2

    _, fin = run(plain, "Once upon a time", SamplingParams(max_tokens=40), cancelled=cancelled)
    assert fin.finish_reason == "cancelled"
    assert fin.usage.completion_tokens == 2


def test_stop_sequence_is_cut(plain: LlamaEngine) -> None:
    params = SamplingParams(max_tokens=32)
    run(plain, COPY_PROMPT, params)  # same cache layout for the next two runs
    full = "".join(run(plain, COPY_PROMPT, params)[0])
    assert "Blue" in full
    deltas, fin = run(plain, COPY_PROMPT, SamplingParams(max_tokens=32, stop=("Blue",)))
    assert "".join(deltas) == full[: full.index("Blue")]
    assert fin.finish_reason == "stop"


def test_invalid_requests_raise_domain_errors(plain: LlamaEngine) -> None:
    with pytest.raises(OutOfRange):
        list(plain.generate("hi", SamplingParams(top_p=0.0)))
    with pytest.raises(OutOfRange):
        list(plain.generate("hi", SamplingParams(temperature=-1.0)))
    with pytest.raises(OutOfRange):
        list(plain.generate("word " * 1100, SamplingParams(max_tokens=4)))


def test_prefix_reuse_between_requests(plain: LlamaEngine) -> None:
    system = "You are a helpful assistant. Notes: the meeting moved to Thursday.\n"
    run(plain, system + "Question: when is the meeting?", SamplingParams(max_tokens=4))
    _, fin = run(plain, system + "Question: who moved it?", SamplingParams(max_tokens=4))
    assert fin.usage.reused_prefix_tokens >= len(plain.tokenize_prompt(system)) - 1
    assert fin.usage.reused_prefix_tokens < fin.usage.prompt_tokens


def test_sampling_is_seeded(plain: LlamaEngine) -> None:
    params = SamplingParams(max_tokens=12, temperature=0.8, top_p=0.95, top_k=40, seed=7)
    run(plain, "Write a word:", params)
    a = "".join(run(plain, "Write a word:", params)[0])
    b = "".join(run(plain, "Write a word:", params)[0])
    assert a == b


def test_speculative_engine_drafts_and_matches_plain_on_a_copy(
    spec: LlamaEngine, plain: LlamaEngine
) -> None:
    params = SamplingParams(max_tokens=32)
    run(plain, COPY_PROMPT, params)
    expected = "".join(run(plain, COPY_PROMPT, params)[0])
    deltas, fin = run(spec, COPY_PROMPT, params)
    u = fin.usage
    assert u.verify_steps > 0 and u.accepted_tokens > 0
    assert u.accepted_tokens <= u.drafted_tokens
    # verify batches give the one-token logits bit for bit: the whole answer agrees
    assert "".join(deltas) == expected


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_unload_frees_the_weights_and_the_next_generation_loads_them(model_path: Path) -> None:
    eng = LlamaEngine(model_path, n_ctx=1024, n_threads=2, speculative=True)
    try:
        params = SamplingParams(max_tokens=24)
        before, _ = run(eng, COPY_PROMPT, params)
        loaded_rss = _rss_mib()
        reported = float(eng.runtime_state()["resident_mib"])  # type: ignore[arg-type]
        assert abs(reported - loaded_rss) < 0.1 * loaded_rss, (reported, loaded_rss)  # what `ps` shows
        eng.unload()
        assert not eng.loaded
        freed = loaded_rss - _rss_mib()
        assert freed > 100, f"unloading freed only {freed:.0f} MiB"  # weights 250 MiB + KV cache
        assert float(eng.runtime_state()["resident_mib"]) < reported - 100  # type: ignore[arg-type]
        # the vocabulary stays: tokenizing and chat prompts work unloaded
        assert eng.count_tokens("Alice will meet Bob") > 0
        assert "Alice" in eng.chat_prompt([Message("user", "Alice?")])
        after, done = run(eng, COPY_PROMPT, params)
        assert eng.loaded
        assert "".join(after) == "".join(before)  # the same greedy answer after a reload
        assert done.usage.reused_prefix_tokens == 0  # the KV cache was really gone
    finally:
        eng.close()


def test_quantized_kv_cache_is_smaller_and_still_answers(model_path: Path) -> None:
    from edge_agent.engine.llama_model import LlamaModel

    sizes, answers = {}, {}
    for types in (("f16", "f16"), ("q8_0", "q8_0")):
        m = LlamaModel(model_path, n_ctx=1024, n_threads=2, kv_types=types, flash_attn="on")
        try:
            sizes[types[0]] = m.kv_cache_mib
            tokens = m.tokenize("The capital of France is", add_bos=True)
            row = m.eval(tokens, [len(tokens) - 1])[0]
            answers[types[0]] = int(row.argmax())
        finally:
            m.close()
    assert 0 < sizes["q8_0"] < 0.6 * sizes["f16"], sizes  # q8_0 is 8.5 bits per value against 16
    assert answers["q8_0"] == answers["f16"]  # the same next token (a wide margin here)


def test_kv_budget_is_checked_before_the_weights_load_and_the_estimate_matches(model_path: Path) -> None:
    from edge_agent.engine.llama_model import KVBudgetExceeded, LlamaModel

    for types in (("f16", "f16"), ("q8_0", "q8_0")):
        m = LlamaModel(model_path, n_ctx=1024, n_threads=2, kv_types=types, flash_attn="on", n_seq=2)
        try:
            # what llama.cpp says it allocated, against the estimate the budget is checked with
            assert m.kv_cache_mib > 0
            assert abs(m.kv_cache_mib_needed - m.kv_cache_mib) <= 0.05 * m.kv_cache_mib, (types, m.kv_cache_mib_needed, m.kv_cache_mib)
            needed = m.kv_cache_mib_needed
        finally:
            m.close()
    with pytest.raises(KVBudgetExceeded) as info:
        LlamaModel(model_path, n_ctx=4096, n_threads=2, n_seq=4, kv_budget_mib=100)
    assert info.value.cells == 4 * 4096 and info.value.needed_mib > 100 and info.value.budget_mib == 100
    # q8_0 on 2 x 1024 cells fits a budget just above its need
    LlamaModel(model_path, n_ctx=1024, n_threads=2, kv_types=("q8_0", "q8_0"), flash_attn="on", n_seq=2,
               kv_budget_mib=needed + 1).close()


def test_the_daemon_refuses_to_start_over_the_kv_budget_and_names_the_key(tmp_path: Path, model_path: Path) -> None:
    from common.errors import ConfigError
    from edge_agent.config import parse_config
    from edge_agent.daemon.wiring import load_parts

    cfg = parse_config({"data_dir": str(tmp_path / "data"), "server": {"parallel": 4, "kv_budget_mib": 50},
                        "model": {"path": str(model_path), "selfcheck": False, "calibrate": False}}, "test.toml")
    with pytest.raises(ConfigError) as info:
        load_parts(cfg)
    assert info.value.key == "server.kv_budget_mib"
    assert "server.parallel 4" in info.value.expected and "got 50" in info.value.expected
