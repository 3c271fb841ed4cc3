"""The egress ledger: one SQLite row per cloud attempt, saying exactly what left the device.

Each row holds the time (UTC), the request id, the attempt number, its outcome
(``answered``; ``failed_mid_stream``; ``failed_before_answer``; ``retried``: failed
before an answer and tried again; ``answer_invalid``: an answer that broke the
request's JSON schema; ``cancelled`` by the caller; ``not_sent``: no connection to the
cloud was up, so nothing left the device and nothing is billed), the rule(s) that
allowed the call, the target (``cloud`` or ``cloud_redacted``), token counts, the cost,
the PII *kinds* that were replaced by placeholders (never the values), the app or user
that asked (``routing.app_id``, the HTTP door's ``user``; empty when none was given) and
the SHA-256 of what was sent (the prompt or messages, with the JSON schema when there is one).
Every attempt is a row, failed or not (the request may have left even when the call
failed: a cloud-stub whose upstream is down still received it), so ``edge-agent audit``
and the budgets (summed from the same rows, so spend survives restarts) count it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import DateTime, Float, Integer, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from common.errors import InvalidArgument
from common.sqlite import make_engine
from orchestrator.budget import Spend
from orchestrator.kinds import PII_KINDS

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TARGETS = ("cloud", "cloud_redacted")
OUTCOMES = (
    "answered", "failed_mid_stream", "failed_before_answer", "retried", "cancelled", "answer_invalid", "not_sent",
)


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    __tablename__ = "egress"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)  # naive UTC
    request_id: Mapped[str] = mapped_column(String(128), index=True)
    rule: Mapped[str] = mapped_column(String(512))
    target: Mapped[str] = mapped_column(String(32))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    cost: Mapped[float] = mapped_column(Float)
    pii_kinds_redacted: Mapped[str] = mapped_column(String(256))  # comma-separated kinds
    text_sha256: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    outcome: Mapped[str] = mapped_column(String(32), default="answered", server_default="answered")
    app_id: Mapped[str] = mapped_column(String(128), default="", server_default="")


@dataclass(frozen=True)
class EgressEntry:
    """One recorded cloud call."""

    at: datetime  # aware, UTC
    request_id: str
    rule: str
    target: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    pii_kinds_redacted: tuple[str, ...]
    text_sha256: str
    attempt: int = 1
    outcome: str = "answered"
    app_id: str = ""  # the app or user that asked; "" when none was given


def _utc_naive(t: datetime) -> datetime:
    if t.tzinfo is None:
        t = t.astimezone()  # naive means local time
    return t.astimezone(UTC).replace(tzinfo=None)


class Ledger:
    """The egress ledger in the SQLite file at ``path`` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._engine = make_engine(self.path, pool_size=2)  # the context store's pragmas
        _Base.metadata.create_all(self._engine)
        self._add_missing_columns()
        # Spend per (day start, month start); the daemon is the only writer, so a
        # record() here is the only thing that can change it.
        self._lock = threading.Lock()
        self._spend: dict[tuple[datetime, datetime], Spend] = {}

    def _add_missing_columns(self) -> None:
        """Ledgers written before attempts were recorded gain the columns (defaults)."""
        with self._engine.begin() as conn:
            have = {row[1] for row in conn.exec_driver_sql("PRAGMA table_info(egress)")}
            if "attempt" not in have:
                conn.exec_driver_sql("ALTER TABLE egress ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1")
            if "outcome" not in have:
                conn.exec_driver_sql(
                    "ALTER TABLE egress ADD COLUMN outcome VARCHAR(32) NOT NULL DEFAULT 'answered'"
                )
            if "app_id" not in have:
                conn.exec_driver_sql("ALTER TABLE egress ADD COLUMN app_id VARCHAR(128) NOT NULL DEFAULT ''")

    def record(
        self,
        *,
        request_id: str,
        rule: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
        text_sha256: str,
        pii_kinds_redacted: Sequence[str] = (),
        target: str = "cloud",
        at: datetime | None = None,
        attempt: int = 1,
        outcome: str = "answered",
        app_id: str = "",
    ) -> None:
        """Append one cloud attempt. Only PII kind names are accepted, never values."""
        if outcome not in OUTCOMES:
            raise InvalidArgument("outcome", f"one of {', '.join(OUTCOMES)}")
        if attempt < 1:
            raise InvalidArgument("attempt", "must be >= 1")
        bad = [k for k in pii_kinds_redacted if k not in PII_KINDS]
        if bad:
            raise InvalidArgument(
                "pii_kinds_redacted", f"known PII kind names only, got {bad[0]!r}"
            )
        if not _SHA256.match(text_sha256):
            raise InvalidArgument("text_sha256", "64 lowercase hex digits")
        if target not in _TARGETS:
            raise InvalidArgument("target", f"one of {', '.join(_TARGETS)}")
        if prompt_tokens < 0 or completion_tokens < 0 or cost < 0:
            raise InvalidArgument("cost", "token counts and cost must be >= 0")
        row = _Row(
            at=_utc_naive(at or datetime.now(UTC)),
            request_id=request_id,
            rule=rule,
            target=target,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=float(cost),
            pii_kinds_redacted=",".join(sorted(set(pii_kinds_redacted))),
            text_sha256=text_sha256,
            attempt=attempt,
            outcome=outcome,
            app_id=app_id[:128],
        )
        with Session(self._engine) as s, s.begin():
            s.add(row)
        with self._lock:
            self._spend.clear()

    def spend(self, now: datetime | None = None) -> Spend:
        """Money spent since the start of ``now``'s day and month (in ``now``'s time zone)."""
        local = datetime.now().astimezone() if now is None else now
        if local.tzinfo is None:
            local = local.astimezone()
        day_local = local.replace(hour=0, minute=0, second=0, microsecond=0)
        key = (_utc_naive(day_local), _utc_naive(day_local.replace(day=1)))
        with self._lock:
            cached = self._spend.get(key)
        if cached is not None:
            return cached
        total = func.coalesce(func.sum(_Row.cost), 0.0)
        with Session(self._engine) as s:
            today = s.scalar(select(total).where(_Row.at >= key[0]))
            this_month = s.scalar(select(total).where(_Row.at >= key[1]))
        result = Spend(today=float(today or 0.0), month=float(this_month or 0.0))
        with self._lock:
            self._spend[key] = result
        return result

    def query(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
        *,
        request_id: str | None = None,
    ) -> list[EgressEntry]:
        """Rows with ``since <= at < until``, newest first, at most ``limit``."""
        stmt = select(_Row).order_by(_Row.at.desc(), _Row.id.desc()).limit(max(0, limit))
        if since is not None:
            stmt = stmt.where(_Row.at >= _utc_naive(since))
        if until is not None:
            stmt = stmt.where(_Row.at < _utc_naive(until))
        if request_id is not None:
            stmt = stmt.where(_Row.request_id == request_id)
        with Session(self._engine) as s:
            rows = s.scalars(stmt).all()
            return [
                EgressEntry(
                    at=r.at.replace(tzinfo=UTC),
                    request_id=r.request_id,
                    rule=r.rule,
                    target=r.target,
                    prompt_tokens=r.prompt_tokens,
                    completion_tokens=r.completion_tokens,
                    cost=r.cost,
                    pii_kinds_redacted=tuple(k for k in r.pii_kinds_redacted.split(",") if k),
                    text_sha256=r.text_sha256,
                    attempt=r.attempt,
                    outcome=r.outcome,
                    app_id=r.app_id,
                )
                for r in rows
            ]

    def close(self) -> None:
        self._engine.dispose()
