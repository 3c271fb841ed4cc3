"""The decode loop: prefix reuse, drafting, batched verification, KV rollback.

Works on any ``TokenModel``. Each step evaluates the last emitted token together with
the drafted tokens the ``DraftPolicy`` judged worth checking, requesting logits only
for those positions; the verifier keeps the longest acceptable prefix of the draft and
chooses the next token; rejected positions are removed from the KV cache. With no
drafters (or ``speculative=False``) it is a plain one-token-per-step loop. The policy's
cost curve is kept up to date from the timings of the steps (``CostCurve.observe``).

Between requests the decoder remembers which tokens sit in the KV cache and keeps the
longest common prefix with the next prompt, so a shared system prompt or personal
context is not evaluated again. On a runtime whose batches of up to ``invariant_rows``
tokens compute every row as a lone token would (the project's llama.cpp build), a
prompt remainder longer than that has its last token evaluated alone: the first
distribution then does not depend on whether the prompt was in the cache already, and
asking the same thing twice gives the same answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge_agent.engine.adaptive import DraftPolicy
from edge_agent.engine.drafters import Draft, Drafter
from edge_agent.engine.sampling import Sampler
from edge_agent.engine.threads import ThreadTuner
from edge_agent.engine.token_model import TokenModel
from edge_agent.engine.verify import MatchVerifier, Verifier


@dataclass
class DecodeStats:
    """What one ``decode`` call did; filled in while it runs."""

    prompt_tokens: int = 0
    reused_prefix_tokens: int = 0
    generated_tokens: int = 0
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    verify_steps: int = 0
    steps: int = 0
    t_start: float = 0.0
    t_first: float = 0.0
    t_end: float = 0.0
    finish_reason: str = ""
    # (start position, batch tokens, positions kept) per step, when tracing
    trace: list[tuple[int, tuple[int, ...], int]] | None = field(default=None, repr=False)
    # Model probability of each of the first ``probs_limit`` generated tokens (None: off).
    probs: list[float] | None = field(default=None, repr=False)
    probs_limit: int = 0

    def note_probs(self, rows: npt.NDArray[np.float32], tokens: Sequence[int]) -> None:
        """Record p(token) under the model's softmax for tokens still within the limit."""
        if self.probs is None:
            return
        for row, tok in zip(rows, tokens):
            if len(self.probs) >= self.probs_limit:
                return
            r = np.asarray(row, dtype=np.float64)
            e = np.exp(r - r.max())
            self.probs.append(float(e[tok] / e.sum()))


def choose_draft(drafters: Sequence[Drafter], policy: DraftPolicy, room: int) -> tuple[Draft | None, int]:
    """The draft and length with the best expected tokens per cost ((None, 0): plain step)."""
    best: tuple[Draft | None, int] = (None, 0)
    best_rate = 1.0
    for drafter in drafters:
        draft = drafter.propose(min(room, policy.max_draft))
        if draft is None or not draft.tokens:
            continue
        k = policy.draft_len(draft)
        if k == 0:
            continue
        rate = policy.expected_rate(draft, k)
        if best[0] is None or rate > best_rate:
            best, best_rate = (draft, k), rate
    return best


def best_draft(drafters: Sequence[Drafter], policy: DraftPolicy, room: int) -> Draft | None:
    """The draft with the best expected tokens per cost at any length, even one that
    would not pay alone (in a step widened by other sequences its rows come free)."""
    best: Draft | None = None
    best_rate = 0.0
    for drafter in drafters:
        draft = drafter.propose(min(room, policy.max_draft))
        if draft is None or not draft.tokens:
            continue
        _, rate = policy.best_length(draft, min(len(draft.tokens), room), floor=0.0)
        if rate > best_rate:
            best, best_rate = draft, rate
    return best


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class Decoding:
    """One generation on one sequence, as steps a driver runs: ``start`` (prefill and
    the first token), then ``plan`` (the tokens the next step evaluates: the last token
    and a draft) and ``absorb`` (verify the step's logits rows, roll back the rejected
    positions, return the new tokens) until ``done``.

    ``SpeculativeDecoder`` drives one at a time with ``model.eval``; the engine's
    scheduler drives several, each on its own sequence, in one batched step. Either way
    a sequence sees the same operations, so its tokens do not depend on the driver.
    ``cached`` is the list of tokens the sequence's KV cache holds (kept up to date).
    """

    def __init__(
        self,
        model: TokenModel,
        cached: list[int],
        prompt: Sequence[int],
        sampler: Sampler,
        max_tokens: int,
        *,
        drafters: Sequence[Drafter],
        policy: DraftPolicy,
        verifier: Verifier,
        prefill_chunk: int,
        invariant_rows: int,
        cancelled: Callable[[], bool] | None,
        stats: DecodeStats,
    ) -> None:
        if not prompt:
            raise ValueError("empty prompt")
        if len(prompt) >= model.n_ctx:
            raise ValueError(f"prompt of {len(prompt)} tokens does not fit a context of {model.n_ctx}")
        self.model, self.cached, self.prompt, self.sampler = model, cached, list(prompt), sampler
        self.max_tokens, self.drafters, self.policy, self.verifier = max_tokens, list(drafters), policy, verifier
        self.prefill_chunk, self.invariant_rows, self.cancelled, self.stats = prefill_chunk, invariant_rows, cancelled, stats
        self.done = False
        self.produced = 0
        self.tok = -1
        self._rows: npt.NDArray[np.float32] = np.empty((0, 0), dtype=np.float32)
        self._draft: Draft | None = None
        self._offered: Draft | None = None
        self._k = 0
        self._start = 0
        self.prefill_left = len(self.prompt)  # prompt tokens not evaluated yet
        stats.t_start = time.perf_counter()
        stats.prompt_tokens = len(prompt)

    @property
    def prefill_rows(self) -> npt.NDArray[np.float32]:
        """The logits the prefill ended with (the first token's distribution)."""
        return self._rows

    def _rollback(self, n: int) -> None:
        if n < self.model.n_past:
            self.model.truncate(n)
        del self.cached[n:]

    def _finish(self, reason: str) -> None:
        self.stats.finish_reason = reason
        self.stats.t_end = time.perf_counter()
        if not self.stats.t_first:
            self.stats.t_first = self.stats.t_end
        self.done = True

    def prefill_parts(self) -> Generator[None, None, None]:
        """Evaluate the prompt, one chunk per iteration (a driver may run other work in
        between); afterwards ``first`` gives the first token."""
        st, prompt = self.stats, self.prompt
        common = min(common_prefix(self.cached, prompt), len(prompt) - 1)
        self._rollback(common)
        st.reused_prefix_tokens = common
        rest = prompt[common:]
        # the row that gives the first distribution: alone when larger batches would
        # compute it with other kernels than the re-evaluation of a cached prompt does
        alone = 0 < self.invariant_rows < len(rest)
        body = rest[:-1] if alone else rest
        chunk = self.prefill_chunk
        self.prefill_left = len(rest)
        for i in range(0, len(body), chunk):
            part = body[i : i + chunk]
            last = not alone and i + chunk >= len(body)
            rows = self.model.eval(part, [len(part) - 1] if last else [])
            if last:  # a copy: a driver may run other steps before ``first`` reads it
                self._rows = rows.copy()
            self.cached.extend(part)
            self.prefill_left -= len(part)
            yield
        if alone:
            self._rows = self.model.eval(rest[-1:], [0]).copy()
            self.cached.append(rest[-1])
            yield

    def opening(self) -> bool:
        """Whether there is anything to decode (no tokens asked for, or cancelled
        before the start: ``done`` with that reason)."""
        if self.max_tokens <= 0:
            self._finish("length")
        elif self.cancelled is not None and self.cancelled():
            self._finish("cancelled")
        return not self.done

    def start(self) -> list[int]:
        """Run the whole prefill; the first token (``[]`` when the generation is over)."""
        if not self.opening():
            return []
        for _ in self.prefill_parts():
            pass
        return self.first()

    def first(self) -> list[int]:
        """The first token, from the prefill's last row (``[]``: the generation is over)."""
        st = self.stats
        self.policy.reset()
        tok = self.sampler.sample(self._rows[0])
        st.note_probs(self._rows[:1], [tok])
        st.t_first = time.perf_counter()
        if self.model.is_eog(tok):
            self._finish("stop")
            return []
        for d in self.drafters:
            d.begin(self.prompt)
            d.extend([tok])
        self.tok, self.produced = tok, 1
        st.generated_tokens = 1
        st.t_end = time.perf_counter()
        return [tok]

    def _room(self, max_rows: int) -> int | None:
        """Draft tokens the next step may carry (None and ``done``: the generation is over)."""
        if self.produced >= self.max_tokens:
            self._finish("length")
        elif self.cancelled is not None and self.cancelled():
            self._finish("cancelled")
        if self.done:
            return None
        self._start = self.model.n_past
        room = min(self.max_tokens - self.produced - 1, self.model.n_ctx - self._start - 1, max_rows - 1)
        if room < 0:
            self._finish("length")
            return None
        return room

    def _batch(self, draft: Draft | None, k: int) -> list[int]:
        self._draft, self._k = (draft, k) if draft is not None and k > 0 else (None, 0)
        return [self.tok, *(draft.tokens[:k] if draft is not None else ())]

    def plan(self, max_rows: int) -> list[int]:
        """The tokens of the next step: the last token, then up to ``max_rows - 1``
        drafted ones, as many as pay on their own ([] and ``done`` when the generation
        is over)."""
        room = self._room(max_rows)
        if room is None:
            return []
        draft, k = choose_draft(self.drafters, self.policy, room) if self.drafters and room > 0 else (None, 0)
        return self._batch(draft, k)

    def offer(self, max_rows: int) -> tuple[float, int] | None:
        """The draft the next step could carry, for a driver that sizes a step shared
        with other sequences: (estimated acceptance per token, usable length), (0, 0)
        without one, None and ``done`` when the generation is over. ``take`` follows."""
        room = self._room(max_rows)
        if room is None:
            return None
        draft = best_draft(self.drafters, self.policy, room) if self.drafters and room > 0 else None
        self._offered = draft
        if draft is None:
            return (0.0, 0)
        return (self.policy.acceptance(draft), min(len(draft.tokens), room))

    def take(self, k: int) -> list[int]:
        """The tokens of the next step: the last token and ``k`` tokens of the offer."""
        draft, self._offered = self._offered, None
        return self._batch(draft, k)

    def absorb(self, batch: Sequence[int], rows: npt.NDArray[np.float32]) -> list[int]:
        """Take the step's logits (``rows[j]`` after ``batch[j]``): the new tokens."""
        st, k, draft = self.stats, self._k, self._draft
        self.cached.extend(batch)
        if k:
            accepted, nxt = self.verifier.verify(rows, list(batch[1:]), self.sampler)
            assert draft is not None
            self.policy.update(draft, k, accepted)
            st.verify_steps += 1
            st.drafted_tokens += k
            st.accepted_tokens += accepted
        else:
            accepted, nxt = 0, self.sampler.sample(rows[0])
        st.steps += 1
        keep = self._start + 1 + accepted
        if st.trace is not None:
            st.trace.append((self._start, tuple(batch), keep))
        self._rollback(keep)
        new = list(batch[1 : 1 + accepted]) + [nxt]
        st.note_probs(rows, new)  # rows[j] is the distribution new[j] came from
        eog = False
        for i, t in enumerate(new):
            if self.model.is_eog(t):
                new, eog = new[:i], True
                break
        if new:
            for d in self.drafters:
                d.extend(new)
        self.produced += len(new)
        st.generated_tokens = self.produced
        st.t_end = time.perf_counter()
        if eog:
            self._finish("stop")
        self.tok = nxt
        return new


class SpeculativeDecoder:
    """Runs generations on one ``TokenModel``, one at a time."""

    def __init__(
        self,
        model: TokenModel,
        *,
        drafters: Sequence[Drafter] = (),
        policy: DraftPolicy | None = None,
        verifier: Verifier | None = None,
        prefill_chunk: int = 256,  # as fast per token as 512 here, half the stall for other streams
        invariant_rows: int = 0,
        learn_step_cost: bool = True,
        tuner: ThreadTuner | None = None,
    ) -> None:
        self.model = model
        self.invariant_rows = invariant_rows
        self.drafters = list(drafters)
        self.policy = policy or DraftPolicy()
        self.verifier: Verifier = verifier or MatchVerifier()
        self.prefill_chunk = prefill_chunk
        self.learn_step_cost = learn_step_cost
        self.tuner = tuner
        self.cached: list[int] = []  # tokens whose KV entries the model holds

    def reset(self) -> None:
        """Empty the KV cache (the next prompt is evaluated in full)."""
        if self.model.n_past > 0:
            self.model.truncate(0)
        del self.cached[:]

    def learn_cost(self, k: int, seconds: float) -> None:
        """A step of ``k + 1`` rows took ``seconds`` (the curve and the thread tuner learn)."""
        if self.learn_step_cost:
            self.policy.costs.observe(k, seconds)
        if self.tuner is not None:
            self.tuner.observe(seconds / self.policy.costs.cost(k))

    def decoding(
        self,
        prompt: Sequence[int],
        sampler: Sampler,
        max_tokens: int,
        *,
        speculative: bool = True,
        cancelled: Callable[[], bool] | None = None,
        stats: DecodeStats | None = None,
    ) -> Decoding:
        """A ``Decoding`` of ``prompt`` on this decoder's model, cache and drafters."""
        return Decoding(
            self.model, self.cached, prompt, sampler, max_tokens,
            drafters=self.drafters if speculative else (), policy=self.policy, verifier=self.verifier,
            prefill_chunk=self.prefill_chunk, invariant_rows=self.invariant_rows,
            cancelled=cancelled, stats=stats if stats is not None else DecodeStats(),
        )

    def decode(
        self,
        prompt: Sequence[int],
        sampler: Sampler,
        max_tokens: int,
        *,
        speculative: bool = True,
        cancelled: Callable[[], bool] | None = None,
        stats: DecodeStats | None = None,
    ) -> Generator[list[int], None, None]:
        """Yield the new tokens of each step (never an end-of-generation token).

        ``stats.finish_reason`` ends as "stop" (end-of-generation token), "length"
        (``max_tokens`` or the context is full) or "cancelled". The caller may close
        the iterator early (a stop string); the KV bookkeeping stays consistent.
        """
        d = self.decoding(prompt, sampler, max_tokens, speculative=speculative, cancelled=cancelled, stats=stats)
        first = d.start()
        if first:
            yield first
        limit = self.policy.max_draft + 1
        while not d.done:
            batch = d.plan(limit)
            if not batch:
                break
            t0 = time.perf_counter()
            rows = self.model.eval(batch, range(len(batch)))
            new = d.absorb(batch, rows)
            self.learn_cost(len(batch) - 1, time.perf_counter() - t0)
            if new:
                yield new
        d.stats.t_end = time.perf_counter()
