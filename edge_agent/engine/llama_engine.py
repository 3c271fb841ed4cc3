"""``LlamaEngine``: the ``Engine`` contract on llama.cpp with self-speculative decoding.

Text in, text deltas out. The prompt is tokenized with the model's BOS token, decoded by
``SpeculativeDecoder`` (drafts from the prompt and generated tokens, and from a bounded
store of retrieved personal-context texts and past answers), and streamed through
``TextStream`` so deltas never split a UTF-8 character and stop sequences are cut.

With ``parallel > 1`` the model holds that many sequences and a ``Scheduler`` decodes
the requests that arrive together in shared steps (``generate`` may then be called from
several threads at once); each answer is the one the request gets alone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.chat import PLAIN_STOPS, Message
from common.errors import InvalidArgument, OutOfRange
from edge_agent.engine import chat, costs
from edge_agent.engine.adaptive import DraftPolicy
from edge_agent.engine.api import (
    Embeddings,
    EngineEvent,
    Finished,
    SamplingParams,
    TextDelta,
    Usage,
)
from edge_agent.engine.costs import CostCurve
from edge_agent.engine.decoder import DecodeStats, Decoding, SpeculativeDecoder
from edge_agent.engine.drafters import ContextDrafter, CorpusDrafter, Drafter
from edge_agent.engine.energy import EnergyMeter
from edge_agent.engine.grammar import GrammarConstraint, schema_grammar
from edge_agent.engine.llama_model import BATCH_INVARIANT_ROWS, EMBED_CTX, LlamaModel
from edge_agent.engine.sampling import Sampler
from edge_agent.engine.scheduler import BACKGROUND, INTERACTIVE, Job, Scheduler
from edge_agent.engine.text import TextStream
from edge_agent.engine.threads import ThreadTuner, thread_choices
from edge_agent.engine.token_model import TokenModel
from edge_agent.engine.verify import MatchVerifier


@dataclass
class Traced:
    """One generation with its decode record (see ``LlamaEngine.traced``)."""

    events: Iterator[EngineEvent]
    stats: DecodeStats
    tokens: list[int]


class LlamaEngine:
    """A GGUF model served through the speculative decode loop.

    ``speculative=False`` gives the plain loop (one token per forward pass).
    ``draft_store`` names a JSON file in which the store of past answers and context
    texts is kept across restarts (None: memory only). With ``parallel == 1``
    ``generate`` is not re-entrant (callers serialise requests); with more, up to
    ``parallel`` generations run at once (``per_app`` of one app, ``queue_depth``
    waiting) and every other call waits until none runs.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        speculative: bool = True,
        seed: int = 0,
        max_draft: int = 16,
        step_cost: float = 0.2,
        corpus_tokens: int = 200_000,
        draft_store: str | Path | None = None,
        remember_answers: bool = True,
        adapt_threads: bool = True,
        kv_types: tuple[str, str] = ("f16", "f16"),
        flash_attn: str = "auto",
        watts_per_core: float = 5.0,
        parallel: int = 1,
        per_app: int = 0,
        queue_depth: int = 16,
        kv_budget_mib: float = 0.0,
    ) -> None:
        self.energy = EnergyMeter(watts_per_core)
        self.parallel = parallel
        self._model = LlamaModel(
            model_path, n_ctx=n_ctx, n_threads=n_threads, kv_types=kv_types, flash_attn=flash_attn, n_seq=parallel,
            kv_budget_mib=kv_budget_mib,
        )
        threads = self._model.n_threads
        self.tuner = (
            ThreadTuner(self._model.set_threads, thread_choices(threads))
            if adapt_threads and threads > 1
            else None
        )
        self.model_name = self._model.name
        self.n_ctx = self._model.n_ctx
        self.speculative = speculative
        self.seed = seed
        self.remember_answers = remember_answers
        self.context_drafter = ContextDrafter(min_n=2, max_n=4)
        self.corpus = CorpusDrafter(min_n=2, max_n=4, max_tokens=corpus_tokens)
        self._store_path = Path(draft_store) if draft_store is not None else None
        if self._store_path is not None:
            self.corpus.load(self._store_path)
        self.decoder = SpeculativeDecoder(
            self._model,
            drafters=[self.context_drafter, self.corpus],
            policy=DraftPolicy(max_draft=max_draft, step_cost=step_cost),
            invariant_rows=BATCH_INVARIANT_ROWS,
            tuner=self.tuner,
        )
        self._requests = 0
        self.max_draft = max_draft
        self.calibration: costs.Calibration | None = None
        self.scheduler = (
            Scheduler(
                self._model, rows=BATCH_INVARIANT_ROWS, per_app=per_app, queue_depth=queue_depth,
                cost=lambda k: self.decoder.policy.costs.cost(k),
                observe=lambda k, s: self.decoder.learn_cost(k, s),
            )
            if parallel > 1
            else None
        )

    def _exclusive(self, fn: Callable[[], object]) -> object:
        """``fn`` with no generation running (directly without a scheduler)."""
        return self.scheduler.exclusive(fn) if self.scheduler is not None else fn()

    @property
    def model(self) -> LlamaModel:
        """The underlying token-level model."""
        return self._model

    def calibrate(self, repeats: int = 3, budget_s: float = costs.CALIBRATION_BUDGET_S) -> costs.Calibration:
        """Measure this host's verification cost curve within ``budget_s`` and draft by
        it from now on (an implausible measurement keeps the prior curve)."""
        if self.scheduler is not None:
            scheduler = self.scheduler

            def run() -> costs.Calibration:
                scheduler.forget_cached()
                return self._calibrate(repeats, budget_s)

            return scheduler.exclusive(run)  # type: ignore[no-any-return]
        return self._calibrate(repeats, budget_s)

    def _calibrate(self, repeats: int, budget_s: float) -> costs.Calibration:
        self.decoder.reset()
        prefix = self._model.tokenize(costs.CALIBRATION_TEXT, add_bos=True)
        cal = costs.calibrate(self._model, prefix=prefix, repeats=repeats, budget_s=budget_s)
        self.decoder.cached = list(prefix)  # what ``measure`` left in the KV cache
        policy = self.decoder.policy
        if cal.reliable:
            policy.costs = CostCurve.from_points(cal.points, max_k=policy.max_draft)
        self.calibration = cal
        return self.calibration

    def runtime_state(self) -> dict[str, object]:
        """Buffer types, the current cost curve and the thread count, for reports."""
        curve = self.decoder.policy.costs
        return {
            "buffer_types_mib": dict(self._model.buffer_types),
            "kv_cache_mib": self._model.kv_cache_mib,
            "kv_types": "/".join(self._model.kv_types),
            "plain_step_ms": self._plain_step_ms(),
            "verify_cost": [curve.cost(k) for k in range(1, 17)],
            "threads": self._model.n_threads,
            "thread_switches": self.tuner.switches if self.tuner else 0,
            "parallel": self.parallel,
            "shared_steps": self.scheduler.stats.steps if self.scheduler else 0,
            "shared_rows": self.scheduler.stats.rows if self.scheduler else 0,
            "resident_mib": resident_mib(),
        }

    def _plain_step_ms(self) -> float:
        """The plain step as decoding times it now; before that, calibration's figure."""
        live = self.decoder.policy.costs.plain_ms()
        if live is not None:
            return live
        return self.calibration.plain_ms if self.calibration else 0.0

    @property
    def loaded(self) -> bool:
        """Whether the weights and the KV cache are in memory."""
        return self._model.loaded

    def load(self) -> None:
        """Load the weights again after ``unload`` (the cost curve and the draft
        corpus were kept)."""
        self._exclusive(self._model.load)

    def unload(self) -> None:
        """Free the weights and the KV cache; tokenizing still works, and the next
        generation loads them again. Not re-entrant with ``generate``."""
        def run() -> None:
            self.decoder.reset()
            if self.scheduler is not None:
                self.scheduler.forget_cached()
            self._model.unload()

        self._exclusive(run)

    def reset_cache(self) -> None:
        """Forget the cached prefix (the next request evaluates its whole prompt)."""

        def run() -> None:
            self.decoder.reset()
            if self.scheduler is not None:
                self.scheduler.forget_cached()

        self._exclusive(run)

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenize(text, add_bos=False))

    def embed(self, texts: Sequence[str]) -> Embeddings:
        inputs = []
        for i, text in enumerate(texts):
            if not text.strip():
                raise InvalidArgument(f"input[{i}]", "must not be empty")
            toks = self._model.tokenize(text, add_bos=True)
            if len(toks) > EMBED_CTX:
                raise OutOfRange(f"input[{i}]", f"must be at most {EMBED_CTX} tokens for this model (got {len(toks)})")
            inputs.append(toks)
        vectors = self._model.embed(inputs)
        return Embeddings(vectors, sum(len(t) for t in inputs), self._model.pooling)

    def chat_prompt(self, messages: Sequence[Message]) -> str:
        m = self._model
        if m.chat_template is None:
            return chat.render(messages)
        bos, eos = (m.piece(t).decode("utf-8", "replace") for t in (m.bos_token, m.eos_token))
        return chat.render(messages, m.chat_template, bos=bos, eos=eos)

    def chat_stops(self) -> tuple[str, ...]:
        return PLAIN_STOPS if self._model.chat_template is None else ()

    def tokenize_prompt(self, prompt: str) -> list[int]:
        """Prompt tokens as ``generate`` feeds them (BOS first when the model wants it)."""
        return self._model.tokenize(prompt, add_bos=True)

    def generate(
        self,
        prompt: str,
        params: SamplingParams,
        *,
        draft_texts: Sequence[str] = (),
        cancelled: Callable[[], bool] | None = None,
        token_probs: int = 0,
        app: str = "",
        background: bool = False,
    ) -> Iterator[EngineEvent]:
        """``app`` and ``background`` matter with ``parallel > 1``: interactive requests
        get a sequence before background ones, and one app at most ``per_app``."""
        return self._generate(
            prompt, params, draft_texts=draft_texts, cancelled=cancelled, token_probs=token_probs,
            app=app, background=background,
        )

    def traced(self, prompt: str, params: SamplingParams, *, draft_texts: Sequence[str] = ()) -> Traced:
        """``generate`` with its decode record (tokens, per-step trace, timings) for
        benchmarks and exactness checks; the record is complete once ``events`` ends."""
        record = Traced(iter(()), DecodeStats(trace=[]), [])
        record.events = self._generate(prompt, params, draft_texts=draft_texts, record=record)
        return record

    def _generate(
        self,
        prompt: str,
        params: SamplingParams,
        *,
        draft_texts: Sequence[str] = (),
        cancelled: Callable[[], bool] | None = None,
        token_probs: int = 0,
        record: Traced | None = None,
        app: str = "",
        background: bool = False,
    ) -> Iterator[EngineEvent]:
        t0 = time.perf_counter()
        j0 = self.energy.joules()
        model = self._model
        tokens, sampler, constraint = self._prepare(prompt, params, draft_texts)
        stats = DecodeStats(trace=[] if record else None, probs=[] if token_probs > 0 else None, probs_limit=token_probs)
        sent_probs = 0  # probabilities already attached to a delta
        stream = TextStream(params.stop)
        out_tokens: list[int] = []
        finish = ""
        steps = self._steps(tokens, sampler, params.max_tokens, cancelled, stats, app, background)
        try:
            for new in steps:
                for tok in new:
                    out_tokens.append(tok)
                    text = stream.feed(model.piece(tok))
                    if text:
                        probs = tuple(stats.probs[sent_probs:]) if stats.probs else ()
                        sent_probs += len(probs)
                        yield TextDelta(text, probs)
                    if stream.stopped:
                        break
                if stream.stopped:
                    finish = "stop"
                    break
        finally:
            steps.close()
            if constraint is not None:
                constraint.close()
        if not finish:
            finish = stats.finish_reason or "length"
            tail = stream.flush()
            if tail:
                yield TextDelta(tail, tuple(stats.probs[sent_probs:]) if stats.probs else ())
        t_end = time.perf_counter()
        if record is not None:
            record.stats, record.tokens = stats, out_tokens
        self._remember(out_tokens)
        yield Finished(usage=self._usage(len(tokens), len(out_tokens), stats, t0, t_end, j0), finish_reason=finish)

    def _prepare(self, prompt: str, params: SamplingParams, draft_texts: Sequence[str]) -> tuple[list[int], Sampler, GrammarConstraint | None]:
        """The checked prompt tokens and the request's sampler (with its grammar)."""
        model = self._model
        _validate(params)
        model.load()  # after an idle unload
        tokens = self.tokenize_prompt(prompt)
        if len(tokens) >= self.n_ctx:
            raise OutOfRange("prompt", f"{len(tokens)} tokens do not fit the context of {self.n_ctx}")
        if self.speculative:
            for text in draft_texts:
                self.corpus.add(model.tokenize(text, add_bos=False))
        seed = params.seed if params.seed is not None else self.seed + self._requests
        self._requests += 1
        constraint = GrammarConstraint(model.vocab, model.n_vocab, schema_grammar(params.json_schema)) if params.json_schema else None
        return tokens, Sampler(params.temperature, params.top_k, params.top_p, seed, constraint), constraint

    def _remember(self, out_tokens: list[int]) -> None:
        """Keep an answer for drafting later ones (and in the corpus file)."""
        if self.speculative and self.remember_answers and out_tokens:
            self.corpus.add(out_tokens)
            if self._store_path is not None:
                self.corpus.save(self._store_path)

    def _usage(self, prompt_tokens: int, n: int, stats: DecodeStats, t0: float, t_end: float, j0: float) -> Usage:
        decode_s = max(stats.t_end - stats.t_first, 0.0)
        return Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=n,
            ttft_ms=(stats.t_first - t0) * 1000.0 if stats.t_first else (t_end - t0) * 1000.0,
            total_ms=(t_end - t0) * 1000.0,
            tokens_per_s=((n - 1) / decode_s) if n > 1 and decode_s > 0 else 0.0,
            drafted_tokens=stats.drafted_tokens,
            accepted_tokens=stats.accepted_tokens,
            verify_steps=stats.verify_steps,
            reused_prefix_tokens=stats.reused_prefix_tokens,
            energy_j=self.energy.joules() - j0,
            energy_source=self.energy.source,
        )

    def _steps(
        self,
        tokens: list[int],
        sampler: Sampler,
        max_tokens: int,
        cancelled: Callable[[], bool] | None,
        stats: DecodeStats,
        app: str,
        background: bool,
    ) -> Generator[list[int], None, None]:
        """The new tokens of each decode step: the decoder's own loop, or a job of the
        scheduler's shared steps (its own drafters, policy, sampler and grammar)."""
        if self.scheduler is None:
            return self.decoder.decode(
                tokens, sampler, max_tokens, speculative=self.speculative, cancelled=cancelled, stats=stats
            )
        decoder, corpus, speculative = self.decoder, self.corpus, self.speculative

        def make(model: TokenModel, cached: list[int]) -> Decoding:
            drafters: list[Drafter] = [ContextDrafter(min_n=2, max_n=4), corpus.cursor()] if speculative else []
            return Decoding(
                model, cached, tokens, sampler, max_tokens,
                drafters=drafters, policy=DraftPolicy(max_draft=self.max_draft, costs=decoder.policy.costs),
                verifier=MatchVerifier(), prefill_chunk=decoder.prefill_chunk,
                invariant_rows=decoder.invariant_rows, cancelled=cancelled, stats=stats,
            )

        job = Job(make, prompt=tokens, app=app, priority=BACKGROUND if background else INTERACTIVE)
        return self.scheduler.submit(job).tokens()

    def forget_drafts(self) -> None:
        """Drop the draft corpus (retrieved context and past answers), e.g. after the
        user forgot personal items. Not re-entrant with ``generate``."""
        self._exclusive(self.corpus.clear)
        if self._store_path is not None:
            self._store_path.unlink(missing_ok=True)

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.close()
        if self._store_path is not None:
            self.corpus.save(self._store_path)
        self._model.close()


def _validate(params: SamplingParams) -> None:
    if params.max_tokens < 0:
        raise OutOfRange("params.max_tokens", "must be >= 0")
    if params.temperature < 0:
        raise OutOfRange("params.temperature", "must be >= 0")
    if not 0.0 < params.top_p <= 1.0:
        raise OutOfRange("params.top_p", "must be in (0, 1]")
    if params.top_k < 0:
        raise OutOfRange("params.top_k", "must be >= 0")
    if any(not isinstance(s, str) for s in params.stop):
        raise InvalidArgument("params.stop", "must be strings")


def resident_mib() -> float:
    """This process's resident memory in MiB (``/proc/self/statm``; 0.0 where unreadable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
