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
"""

from __future__ import annotations

import random
import statistics
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from edge_agent.engine.model import TokenModel

# every length: batched kernels work in tiles of 4 rows, so 8 tokens can cost less than 7
CALIBRATION_KS = tuple(range(17))
CALIBRATION_TEXT = (
    "Meeting notes, Tuesday: the supplier confirmed delivery of the parts by the end "
    "of the month, and the invoice will follow once the order has been checked."
)


@dataclass(frozen=True)
class Calibration:
    """A measured curve: ``points[k]`` = step time with ``k`` drafted tokens / plain."""

    points: dict[int, float]
    plain_ms: float

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


def measure(
    model: TokenModel,
    *,
    ks: Sequence[int] = CALIBRATION_KS,
    repeats: int = 3,
    prefix: Sequence[int] = (),
    seed: int = 0,
) -> tuple[dict[int, float], float]:
    """Time verification-shaped steps on ``model``: ``({k: relative cost}, plain ms)``.

    Each step evaluates ``k + 1`` tokens after ``prefix`` with logits for all of them,
    then rolls the cache back; lengths are interleaved in a shuffled order per round
    and the median of ``repeats`` is kept. The cache is left holding ``prefix`` only.
    """
    rng = random.Random(seed)
    base = list(prefix) or [1] * 16
    model.truncate(0)
    model.eval(base, [])
    start = model.n_past
    filler = [base[i % len(base)] for i in range(max(ks) + 1)]
    times: dict[int, list[float]] = {k: [] for k in ks}
    model.eval(filler[:1], [0])  # first step after a prefill is not representative
    model.truncate(start)
    for _ in range(repeats):
        order = list(ks)
        rng.shuffle(order)
        for k in order:
            batch = filler[: k + 1]
            t = time.perf_counter()
            model.eval(batch, range(len(batch)))
            times[k].append(time.perf_counter() - t)
            model.truncate(start)
    t0 = statistics.median(times[0])
    rel = {k: statistics.median(v) / t0 for k, v in times.items()}
    rel[0] = 1.0
    return rel, t0 * 1000.0
