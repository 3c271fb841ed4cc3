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
from edge_agent.engine.model import TokenModel
from edge_agent.engine.sampling import Sampler
from edge_agent.engine.threads import ThreadTuner
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


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class SpeculativeDecoder:
    """Runs generations on one ``TokenModel``, one at a time."""

    def __init__(
        self,
        model: TokenModel,
        *,
        drafters: Sequence[Drafter] = (),
        policy: DraftPolicy | None = None,
        verifier: Verifier | None = None,
        prefill_chunk: int = 512,
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
        self._rows: npt.NDArray[np.float32] = np.empty((0, 0), dtype=np.float32)

    def reset(self) -> None:
        """Empty the KV cache (the next prompt is evaluated in full)."""
        self._rollback(0)

    # -- helpers -----------------------------------------------------------
    def _rollback(self, n: int) -> None:
        if n < self.model.n_past:
            self.model.truncate(n)
        del self.cached[n:]

    def _prefill(self, prompt: Sequence[int], stats: DecodeStats) -> None:
        common = min(common_prefix(self.cached, prompt), len(prompt) - 1)
        self._rollback(common)
        stats.reused_prefix_tokens = common
        rest = list(prompt[common:])
        # the row that gives the first distribution: alone when larger batches would
        # compute it with other kernels than the re-evaluation of a cached prompt does
        alone = 0 < self.invariant_rows < len(rest)
        body = rest[:-1] if alone else rest
        chunk = self.prefill_chunk
        for i in range(0, len(body), chunk):
            part = body[i : i + chunk]
            last = not alone and i + chunk >= len(body)
            self._rows = self.model.eval(part, [len(part) - 1] if last else [])
            self.cached.extend(part)
        if alone:
            self._rows = self.model.eval(rest[-1:], [0])
            self.cached.append(rest[-1])

    def _choose(self, room: int) -> tuple[Draft | None, int]:
        return choose_draft(self.drafters, self.policy, room)

    def _learn_cost(self, k: int, seconds: float) -> None:
        if self.learn_step_cost:
            self.policy.costs.observe(k, seconds)
        if self.tuner is not None:
            self.tuner.observe(seconds / self.policy.costs.cost(k))

    # -- the loop ----------------------------------------------------------
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
        st = stats if stats is not None else DecodeStats()
        st.t_start = time.perf_counter()
        st.prompt_tokens = len(prompt)
        model = self.model
        if not prompt:
            raise ValueError("empty prompt")
        if len(prompt) >= model.n_ctx:
            raise ValueError(
                f"prompt of {len(prompt)} tokens does not fit a context of {model.n_ctx}"
            )
        if max_tokens <= 0:
            st.finish_reason = "length"
            st.t_first = st.t_end = time.perf_counter()
            return
        if cancelled is not None and cancelled():
            st.finish_reason = "cancelled"
            st.t_first = st.t_end = time.perf_counter()
            return
        self.policy.reset()
        self._prefill(prompt, st)
        tok = sampler.sample(self._rows[0])
        st.note_probs(self._rows[:1], [tok])
        st.t_first = time.perf_counter()
        if model.is_eog(tok):
            st.finish_reason = "stop"
            st.t_end = st.t_first
            return
        use_drafts = speculative and bool(self.drafters)
        if use_drafts:
            for d in self.drafters:
                d.begin(prompt)
                d.extend([tok])
        produced = 1
        st.generated_tokens = 1
        st.t_end = time.perf_counter()
        yield [tok]
        verifier = self.verifier
        while True:
            if produced >= max_tokens:
                st.finish_reason = "length"
                break
            if cancelled is not None and cancelled():
                st.finish_reason = "cancelled"
                break
            start = model.n_past
            room = min(max_tokens - produced - 1, model.n_ctx - start - 1)
            if room < 0:
                st.finish_reason = "length"
                break
            draft, k = self._choose(room) if use_drafts and room > 0 else (None, 0)
            batch = [tok]
            if draft is not None:
                batch.extend(draft.tokens[:k])
            t0 = time.perf_counter()
            rows = model.eval(batch, range(len(batch)))
            self.cached.extend(batch)
            if k:
                accepted, nxt = verifier.verify(rows, batch[1:], sampler)
                assert draft is not None
                self.policy.update(draft, k, accepted)
                st.verify_steps += 1
                st.drafted_tokens += k
                st.accepted_tokens += accepted
            else:
                accepted, nxt = 0, sampler.sample(rows[0])
            self._learn_cost(k, time.perf_counter() - t0)
            st.steps += 1
            keep = start + 1 + accepted
            if st.trace is not None:
                st.trace.append((start, tuple(batch), keep))
            self._rollback(keep)
            new = batch[1 : 1 + accepted] + [nxt]
            st.note_probs(rows, new)  # rows[j] is the distribution new[j] came from
            eog = False
            for i, t in enumerate(new):
                if model.is_eog(t):
                    new, eog = new[:i], True
                    break
            if use_drafts and new:
                for d in self.drafters:
                    d.extend(new)
            produced += len(new)
            st.generated_tokens = produced
            st.t_end = time.perf_counter()
            if new:
                yield new
            if eog:
                st.finish_reason = "stop"
                break
            tok = nxt
        st.t_end = time.perf_counter()
