"""What a verification step costs on this host, as a curve over the draft length.

``cost(k)`` is the time of a step that evaluates the last token plus ``k`` drafted
tokens, all with logits, divided by the time of a plain one-token step. Its shape is a
property of the runtime build and the CPU: a few milliseconds per extra logits row on
AVX-512 (the 262k-entry output layer), about one on AMX tiles, and it is not smooth:
the batched kernels work in tiles of rows, so a batch of 8 can cost less than one of
7. The curve is kept as measured (not forced monotone), so the policy can pick the
lengths the kernels like. ``measure`` times it on the real model at warm-up;
``CostCurve.observe`` keeps learning it from the decoder's own step timings (medians
over a window per draft length, so a step stretched by other work on the machine does
not move it), and ``cost`` interpolates between measured lengths.

On a busy host a step can take seconds, so ``calibrate`` works to a time budget
(``CALIBRATION_BUDGET_S`` whatever the load): the first round measures the lengths in
an order whose every prefix is useful (0, 16, 8, 4, 12, 2, ...), later rounds only
while time is left, and progress is logged. Its figures are then checked: the plain
step is measured again, and when the two disagree by more than ``PLAUSIBLE_SPREAD``
(another process took the cores in between), or a longer step came out cheaper than
half a plain one, or the budget ran out before one round, it measures once more
within what is left of the budget; still implausible, it keeps the prior curve and
says so (``Calibration.reliable`` is False), and the plain step it reports is the
fastest one it saw, never a stalled one.
"""

from __future__ import annotations

import logging
import random
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edge_agent.engine.token_model import TokenModel

log = logging.getLogger(__name__)

# every length: batched kernels work in tiles of 4 rows, so 8 tokens can cost less than 7
CALIBRATION_KS = tuple(range(17))
CALIBRATION_BUDGET_S = 8.0  # start-up calibration, all of it, on any host
PLAUSIBLE_SPREAD = 2.0  # two plain-step measurements further apart than this: contended
Clock = Callable[[], float]
CALIBRATION_TEXT = (
    "Meeting notes, Tuesday: the supplier confirmed delivery of the parts by the end "
    "of the month, and the invoice will follow once the order has been checked."
)


@dataclass(frozen=True)
class Calibration:
    """A measured curve: ``points[k]`` = step time with ``k`` drafted tokens / plain."""

    points: dict[int, float]
    plain_ms: float
    reliable: bool = True  # False: the host was too busy; the prior curve was kept
    note: str = ""  # why it is not reliable, for the log and `stats`
    seconds: float = 0.0  # time calibration took

    def marginal(self) -> dict[int, float]:
        """Extra cost per drafted token at each measured length (``(cost-1)/k``)."""
        return {k: (v - 1.0) / k for k, v in sorted(self.points.items()) if k > 0}


class CostCurve:
    """Relative step cost by draft length, from a prior curve and live timings."""

    def __init__(
        self,
        prior: Sequence[float],
        *,
        window: int = 32,
        min_samples: int = 4,
    ) -> None:
        if not prior or prior[0] != 1.0:
            raise ValueError("prior[0] must be 1.0 (the plain step)")
        self.prior = [float(x) for x in prior]
        self.min_samples = min_samples
        self._times: list[deque[float]] = [deque(maxlen=window) for _ in self.prior]
        self._curve = list(self.prior)

    @classmethod
    def linear(cls, per_token: float, max_k: int = 16) -> CostCurve:
        """``1 + per_token * k``: the model before anything is measured."""
        return cls([1.0 + per_token * k for k in range(max_k + 1)])

    @classmethod
    def from_points(cls, points: dict[int, float], max_k: int = 16) -> CostCurve:
        """A curve through measured ``{k: relative cost}``, linear in between."""
        return cls(_interpolate(points, max_k))

    @property
    def max_k(self) -> int:
        return len(self.prior) - 1

    def cost(self, k: int) -> float:
        """Relative cost of verifying ``k`` drafted tokens (``cost(0) == 1``)."""
        if k <= 0:
            return 1.0
        if k > self.max_k:
            top = self._curve[-1]
            slope = top - self._curve[-2] if self.max_k > 1 else top - 1.0
            return top + slope * (k - self.max_k)
        return self._curve[k]

    def per_token(self) -> float:
        """Average extra cost of one drafted token over the curve (for reports)."""
        return (self._curve[-1] - 1.0) / self.max_k if self.max_k else 0.0

    def observe(self, k: int, seconds: float) -> None:
        """A step that verified ``k`` drafted tokens took ``seconds``."""
        if 0 <= k <= self.max_k and seconds > 0:
            self._times[k].append(seconds)
            self._refit()

    def _refit(self) -> None:
        plain = self._times[0]
        if len(plain) < self.min_samples:
            return
        t0 = statistics.median(plain)
        points = {0: 1.0}
        for k in range(1, self.max_k + 1):
            if len(self._times[k]) >= self.min_samples:
                points[k] = statistics.median(self._times[k]) / t0
        if len(points) == 1:
            return
        measured = _interpolate(points, self.max_k, fill=self.prior)
        self._curve = [1.0] + [max(1.0, v) for v in measured[1:]]

    def as_list(self) -> list[float]:
        return list(self._curve)

    def plain_ms(self) -> float | None:
        """Median of the recent plain steps the decoder timed, ms (None: too few yet)."""
        plain = self._times[0]
        return statistics.median(plain) * 1000.0 if len(plain) >= self.min_samples else None


def _interpolate(
    points: dict[int, float], max_k: int, fill: Sequence[float] | None = None
) -> list[float]:
    """Values at 0..max_k through ``points``; outside them follow ``fill`` (or the ends)."""
    ks = sorted(points)
    out: list[float] = []
    for k in range(max_k + 1):
        if k in points:
            out.append(points[k])
            continue
        lo = max((x for x in ks if x < k), default=None)
        hi = min((x for x in ks if x > k), default=None)
        if lo is not None and hi is not None:
            w = (k - lo) / (hi - lo)
            out.append(points[lo] * (1 - w) + points[hi] * w)
        elif fill is not None and lo is not None:
            # beyond the last measured length: the prior's shape, scaled to meet it
            scale = points[lo] / fill[lo] if fill[lo] else 1.0
            out.append(fill[k] * scale)
        elif lo is not None:
            slope = (points[lo] - points[ks[-2]]) / (lo - ks[-2]) if len(ks) > 1 else 0.0
            out.append(points[lo] + slope * (k - lo))
        else:
            out.append(points[hi] if hi is not None else 1.0)
    return out


def coarse_first(ks: Sequence[int]) -> list[int]:
    """``ks`` ordered so every prefix spans the range: 0, the largest, then halvings."""
    rest = sorted(set(ks) - {0})
    order = [0] if 0 in ks else []
    spans = [(0, rest[-1])] if rest else []
    if rest:
        order.append(rest[-1])
    while spans:
        lo, hi = spans.pop(0)
        inside = [k for k in rest if lo < k < hi and k not in order]
        if not inside:
            continue
        mid = min(inside, key=lambda k: abs(k - (lo + hi) / 2))
        order.append(mid)
        spans += [(lo, mid), (mid, hi)]
    return order + [k for k in rest if k not in order]


def measure(
    model: TokenModel,
    *,
    ks: Sequence[int] = CALIBRATION_KS,
    repeats: int = 3,
    prefix: Sequence[int] = (),
    seed: int = 0,
    budget_s: float | None = None,
    clock: Clock = time.perf_counter,
) -> tuple[dict[int, float], float]:
    """Time verification-shaped steps on ``model``: ``({k: relative cost}, plain ms)``.

    Each step evaluates ``k + 1`` tokens after ``prefix`` with logits for all of them,
    then rolls the cache back; the first round goes coarse-first, later ones in a
    shuffled order, and the median per length is kept. With ``budget_s`` no step
    starts once the budget is spent (the plain step is always measured, and the
    lengths not reached are left out). The cache is left holding ``prefix`` only.
    """
    rng = random.Random(seed)
    base = list(prefix) or [1] * 16
    started = clock()
    model.truncate(0)
    model.eval(base, [])
    start = model.n_past
    filler = [base[i % len(base)] for i in range(max(ks) + 1)]
    times: dict[int, list[float]] = {k: [] for k in ks}
    model.eval(filler[:1], [0])  # first step after a prefill is not representative
    model.truncate(start)
    for round_no in range(repeats):
        order = coarse_first(ks) if round_no == 0 else rng.sample(list(ks), len(ks))
        for k in order:
            if budget_s is not None and clock() - started > budget_s and times.get(0):
                break
            batch = filler[: k + 1]
            t = clock()
            model.eval(batch, range(len(batch)))
            times[k].append(clock() - t)
            model.truncate(start)
    if 0 not in times:
        times[0] = []
    if not times[0]:  # ks without 0: one plain step is the unit all the same
        t = clock()
        model.eval(filler[:1], [0])
        times[0].append(clock() - t)
        model.truncate(start)
    t0 = statistics.median(times[0])
    rel = {k: statistics.median(v) / t0 for k, v in times.items() if v}
    rel[0] = 1.0
    return rel, t0 * 1000.0


def calibrate(
    model: TokenModel,
    *,
    prefix: Sequence[int] = (),
    repeats: int = 3,
    budget_s: float = CALIBRATION_BUDGET_S,
    clock: Clock = time.perf_counter,
    ks: Sequence[int] = CALIBRATION_KS,
) -> Calibration:
    """``measure`` within ``budget_s``, checked for plausibility (see the module text)."""
    started = clock()

    def left() -> float:
        return budget_s - (clock() - started)

    log.info("calibrating the verification cost (up to %.0f s)", budget_s)
    points, plain_ms = measure(model, ks=ks, repeats=repeats, prefix=prefix, budget_s=budget_s * 0.6, clock=clock)
    seen = [plain_ms]
    why = ""
    for attempt in (1, 2):
        log.info("calibration: %d of %d lengths measured, plain step %.1f ms (%.1f s so far)",
                 len(points), len(ks), plain_ms, clock() - started)
        _, again = measure(model, ks=(0,), repeats=3, prefix=prefix, clock=clock)
        seen.append(again)
        why = implausible(points, plain_ms, again, len(ks))
        if not why or attempt == 2 or left() <= 0:
            break
        log.warning("calibration: %s; measuring again", why)
        points, plain_ms = measure(model, ks=ks, repeats=repeats, prefix=prefix, budget_s=max(left() * 0.8, 0.0), clock=clock)
        seen.append(plain_ms)
    seconds = clock() - started
    if why:
        log.warning("calibration: %s; keeping the prior cost curve (the decoder learns the real one "
                    "from its own steps)", why)
        return Calibration(points={0: 1.0}, plain_ms=min(seen), reliable=False, note=why, seconds=seconds)
    log.info("calibration done in %.1f s", seconds)
    return Calibration(points=points, plain_ms=min(plain_ms, *seen[-1:]), seconds=seconds)


def implausible(points: dict[int, float], plain_ms: float, again_ms: float, wanted: int) -> str:
    """Why a measured curve cannot be trusted ("" when it can)."""
    lo, hi = sorted((plain_ms, again_ms))
    if lo <= 0 or hi / lo > PLAUSIBLE_SPREAD:
        return (f"the plain step took {plain_ms:.1f} ms, then {again_ms:.1f} ms (the host is busy: "
                "another process is taking the cores)")
    cheap = [k for k, v in points.items() if k > 0 and v < 0.5]
    if cheap:
        return f"a {cheap[0] + 1}-token step came out at {points[cheap[0]]:.2f}x a plain step (timing disturbed)"
    if len(points) < min(wanted, 3):
        return f"only {len(points)} of {wanted} lengths measured within the time budget"
    return ""
