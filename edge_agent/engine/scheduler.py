"""Several generations at once on one model: continuous batching, every answer exact.

``Scheduler`` owns a ``LlamaModel`` of ``n_seq`` sequences and one worker thread. A
request becomes a ``Job``; the worker gives it a free sequence (interactive jobs before
background ones, first come first served within a priority, at most ``per_app`` running
jobs of one app), prefills its prompt one chunk per turn, and then decodes it together
with the other running jobs: one ``llama_decode`` per step carries the last token and
the draft of every decoding sequence. Jobs join and leave at step boundaries.

Why each answer equals the one the request gets alone:

* every row of a step of at most ``rows`` tokens (the runtime's invariant batch, 32)
  is computed as a lone token's row (tests/runtime/test_kernels.py), and every
  sequence has its own KV stream filled in position order, so a row attends over the
  same cells in the same order as alone;
* a prompt is prefilled by its own ``llama_decode`` calls in the decoder's canonical
  chunks, never mixed with other sequences' rows (the job with the fewest prompt
  tokens left first; while others stream, prefill takes at most ``PREFILL_SHARE`` of
  the time);
* drafts, acceptance, sampling state and grammar belong to the job, and drafts only
  decide how many positions are checked at once, never which token comes out.

The sequences of a step carry the same number of rows (a shorter batch is padded with
copies of its last token, whose positions are removed like rejected drafts), so
llama.cpp runs the step as one micro-batch: the weights are read once per step.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.errors import ResourceExhausted
from edge_agent.engine.adaptive import expected_tokens
from edge_agent.engine.decoder import Decoding, common_prefix
from edge_agent.engine.token_model import TokenModel

log = logging.getLogger(__name__)

INTERACTIVE, BACKGROUND = 0, 1
PREFILL_SHARE = 0.5  # of the worker's time, at most, for prefill while other sequences stream
_END = object()


@dataclass
class Job:
    """One generation waiting for, or holding, a sequence."""

    make: Callable[[TokenModel, list[int]], Decoding]  # the Decoding on (sequence, its cache)
    prompt: Sequence[int] = ()  # to pick the free sequence whose cache shares most of it
    app: str = ""
    priority: int = INTERACTIVE
    submitted: float = field(default_factory=time.monotonic)
    out: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    closed: threading.Event = field(default_factory=threading.Event)  # the consumer went away

    def tokens(self) -> Generator[list[int], None, None]:
        """The new tokens of each step, until the generation ends (errors re-raised)."""
        try:
            while True:
                item = self.out.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.closed.set()


@dataclass
class _Seq:
    model: TokenModel
    cached: list[int] = field(default_factory=list)
    job: Job | None = None
    decoding: Decoding | None = None
    parts: Generator[None, None, None] | None = None  # the prefill in progress


@dataclass
class SchedulerStats:
    """Figures for stats and /metrics."""

    active: int = 0
    queued: int = 0
    steps: int = 0
    rows: int = 0  # rows of all decode steps (rows / steps: rows per step)
    prefill_chunks: int = 0


class Scheduler:
    """Runs jobs on ``n_seq`` sequences of one model in one worker thread."""

    def __init__(
        self,
        model: Any,
        *,
        rows: int,
        per_app: int = 0,
        queue_depth: int = 16,
        cost: Callable[[int], float] | None = None,
        observe: Callable[[int, float], None] | None = None,
    ) -> None:
        self.model = model
        self.rows = rows
        # relative cost of a step of k + 1 rows (to size shared steps), and where to
        # report the steps' timings so that the curve keeps learning
        self._cost = cost or (lambda k: 1.0 + 0.1 * k)
        self._observe = observe
        self.per_app = per_app or model.n_seq
        self.queue_depth = queue_depth
        self._seqs = [_Seq(model.seq(s)) for s in range(model.n_seq)]
        self._queue: list[Job] = []
        self._control: list[tuple[Callable[[], Any], queue.SimpleQueue[Any]]] = []
        self._cv = threading.Condition()
        self._stop = False
        self.stats = SchedulerStats()
        self._owed = 0.0  # decode time owed to the streams for the prefill that ran (s)
        self._thread = threading.Thread(target=self._run, name="edge-agent-scheduler", daemon=True)
        self._thread.start()

    # -- the callers' side ------------------------------------------------------
    def submit(self, job: Job) -> Job:
        with self._cv:
            if self._stop:
                raise RuntimeError("the scheduler is closed")
            if len(self._queue) >= self.queue_depth:
                raise ResourceExhausted(f"the local model queue is full ({self.queue_depth} waiting)", retry_after_s=1.0)
            self._queue.append(job)
            self.stats.queued = len(self._queue)
            self._cv.notify()
        return job

    def exclusive(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the worker thread once no job holds a sequence (unload, load,
        calibration, cache reset); its result or exception comes back here."""
        if threading.current_thread() is self._thread:
            return fn()
        done: queue.SimpleQueue[Any] = queue.SimpleQueue()
        with self._cv:
            self._control.append((fn, done))
            self._cv.notify()
        ok, value = done.get()
        if not ok:
            raise value
        return value

    def forget_cached(self) -> None:
        """Forget every sequence's cached prefix (call through ``exclusive``)."""
        for sq in self._seqs:
            if sq.model.n_past:
                sq.model.truncate(0)
            sq.cached.clear()

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout=30)

    # -- the worker ---------------------------------------------------------------
    def _busy(self) -> bool:
        return any(sq.job is not None for sq in self._seqs)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stop and not self._busy() and not self._queue and not self._control:
                    self._cv.wait()
                if self._stop:
                    break
                control = self._control.pop(0) if self._control and not self._busy() else None
            if control is not None:
                fn, done = control
                try:
                    done.put((True, fn()))
                except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                    done.put((False, exc))
                continue
            if not self._control:
                self._admit()
            self._turn()
        for sq in self._seqs:
            if sq.job is not None:
                self._end(sq, RuntimeError("the engine is shutting down"))

    def _pick(self) -> Job | None:
        running: dict[str, int] = {}
        for sq in self._seqs:
            if sq.job is not None:
                running[sq.job.app] = running.get(sq.job.app, 0) + 1
        with self._cv:
            for job in sorted(self._queue, key=lambda j: (j.priority, j.submitted)):
                if running.get(job.app, 0) < self.per_app:
                    self._queue.remove(job)
                    self.stats.queued = len(self._queue)
                    return job
        return None

    def _admit(self) -> None:
        while True:
            free = [sq for sq in self._seqs if sq.job is None]
            if not free:
                break
            job = self._pick()
            if job is None:
                break
            # the sequence whose cache holds most of the prompt (a conversation's next turn)
            sq = max(free, key=lambda q: common_prefix(q.cached, job.prompt))
            sq.job = job
            try:
                d = sq.decoding = job.make(sq.model, sq.cached)
                if d.opening():
                    sq.parts = d.prefill_parts()
                else:
                    self._end(sq)
            except BaseException as exc:  # noqa: BLE001 - the job's caller gets it
                self._end(sq, exc)
        self.stats.active = sum(sq.job is not None for sq in self._seqs)

    def _end(self, sq: _Seq, error: BaseException | None = None) -> None:
        job = sq.job
        if job is not None:
            job.out.put(error if error is not None else _END)
        if error is not None:  # the sequence's cache may not match ``cached`` any more
            try:
                sq.model.truncate(0)
            except Exception:
                log.debug("could not clear sequence cache", exc_info=True)
            sq.cached.clear()
        sq.job = sq.decoding = sq.parts = None
        self.stats.active = sum(s.job is not None for s in self._seqs)

    def _turn(self) -> None:
        """A prefill chunk (of the prefilling job with the fewest prompt tokens left, so
        a short prompt is not held behind a long one's chunks) when prefill has not had
        more than its share of the time, then one decode step. While sequences stream,
        prefill gets ``PREFILL_SHARE`` of the worker's time: a long prompt slows the
        streams down to about half their speed instead of stopping them. A prompt's
        last chunk (all of a short prompt) runs at once: time to first token matters
        more than one chunk's pause in the streams."""
        pre = [sq for sq in self._seqs if sq.parts is not None and sq.decoding is not None]
        streaming = any(sq.parts is None and sq.decoding is not None for sq in self._seqs)
        sq = min(pre, key=lambda s: (s.decoding.prefill_left if s.decoding else 0, s.job.submitted if s.job else 0.0)) if pre else None
        if sq is None:
            self._owed = 0.0
        elif self._owed <= 0.0 or not streaming or self._last_chunk(sq):
            t0 = time.perf_counter()
            self._prefill_chunk(sq)
            self._owed = max(self._owed, 0.0) + (time.perf_counter() - t0) * (1.0 - PREFILL_SHARE) / PREFILL_SHARE
        t0 = time.perf_counter()
        self._decode_step()
        if pre:
            self._owed -= time.perf_counter() - t0

    @staticmethod
    def _last_chunk(sq: _Seq) -> bool:
        """Whether this prefill's next chunk gives its first token: that chunk is not held
        back by the share (a short prompt waits at most one chunk per earlier arrival; the
        time it takes is still owed to the streams, so a long prompt waits the longer)."""
        d = sq.decoding
        return d is not None and d.prefill_left <= d.prefill_chunk + 1

    def _prefill_chunk(self, sq: _Seq) -> None:
        assert sq.parts is not None and sq.decoding is not None and sq.job is not None
        d, job = sq.decoding, sq.job
        if job.closed.is_set() or (d.cancelled is not None and d.cancelled()):
            d.stats.finish_reason = "cancelled"
            self._end(sq)
            return
        try:
            next(sq.parts)
            self.stats.prefill_chunks += 1
            return
        except StopIteration:
            sq.parts = None
        except BaseException as exc:  # noqa: BLE001
            self._end(sq, exc)
            return
        first = d.first()
        if first:
            job.out.put(first)
        if d.done:
            self._end(sq)

    def _decode_step(self) -> None:
        live = [sq for sq in self._seqs if sq.parts is None and sq.decoding is not None]
        if not live:
            return
        per_seq = max(1, self.rows // len(live))
        offers: list[tuple[_Seq, tuple[float, int]]] = []
        for sq in live:
            assert sq.decoding is not None and sq.job is not None
            if sq.job.closed.is_set():
                sq.decoding.stats.finish_reason = sq.decoding.stats.finish_reason or "cancelled"
                self._end(sq)
                continue
            offer = sq.decoding.offer(per_seq)
            if offer is None:
                self._end(sq)
                continue
            offers.append((sq, offer))
        if not offers:
            return
        width = shared_width([o for _, o in offers], per_seq, self._cost)
        plans = [(sq, sq.decoding.take(min(width - 1, n))) for sq, (_, n) in offers]  # type: ignore[union-attr]
        width = max(len(b) for _, b in plans)
        # pads carry no logits: only the body of the step pays for them
        items = [(sq.model.s, b + [b[-1]] * (width - len(b))) for sq, b in plans]  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        try:
            rows = self.model.eval_many(items, [len(b) for _, b in plans])
        except BaseException as exc:  # noqa: BLE001
            for sq, _ in plans:
                self._end(sq, exc)
            return
        if self._observe is not None:
            self._observe(width * len(plans) - 1, time.perf_counter() - t0)
        self.stats.steps += 1
        self.stats.rows += width * len(plans)
        for (sq, batch), r in zip(plans, rows):
            assert sq.decoding is not None and sq.job is not None
            try:
                new = sq.decoding.absorb(batch, r)
            except BaseException as exc:  # noqa: BLE001
                self._end(sq, exc)
                continue
            if new:
                sq.job.out.put(new)
            if sq.decoding.done:
                self._end(sq)


def shared_width(offers: Sequence[tuple[float, int]], max_width: int, cost: Callable[[int], float]) -> int:
    """The rows per sequence of a shared step: the width whose expected tokens, over
    all sequences, per step cost is highest. ``offers`` holds each sequence's
    (acceptance per drafted token, usable draft length); ``cost(k)`` is the relative
    cost of a step of ``k + 1`` rows. Sequences with shorter drafts are padded."""
    n = len(offers)
    best_w, best_rate = 1, 0.0
    for w in range(1, max_width + 1):
        tokens = sum(expected_tokens(p, min(w - 1, length)) for p, length in offers)
        rate = tokens / cost(n * w - 1)
        if rate > best_rate:
            best_w, best_rate = w, rate
    return best_w
