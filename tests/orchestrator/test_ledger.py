"""Egress ledger: rows, filters, budgets that survive a restart; and the ledger's
contract through the port, run on both twins (the SQLite ``Ledger`` and the fakes'
``MemoryLedger``, through the parametrized ``ledger`` fixture) so the fake cannot drift."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from common.errors import InvalidArgument
from edge_agent.adapters.ledger import Ledger
from edge_agent.pipeline.fakes import MemoryLedger
from edge_agent.pipeline.ports import Ledger as LedgerPort

H = hashlib.sha256(b"hello").hexdigest()


def rec(ledger: Ledger, at: datetime, cost: float, rid: str = "r", **kw: object) -> None:
    ledger.record(
        request_id=rid,
        rule="score",
        prompt_tokens=10,
        completion_tokens=5,
        cost=cost,
        text_sha256=H,
        at=at,
        **kw,  # type: ignore[arg-type]
    )


def test_record_and_query_newest_first(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.db")
    t0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    rec(led, t0, 0.1, "a", pii_kinds_redacted=("phone", "email", "email"), target="cloud_redacted")
    rec(led, t0 + timedelta(hours=1), 0.2, "b")
    rows = led.query()
    assert [r.request_id for r in rows] == ["b", "a"]
    a = rows[1]
    assert a.at == t0 and a.target == "cloud_redacted" and a.text_sha256 == H
    assert a.pii_kinds_redacted == ("email", "phone")
    assert (a.prompt_tokens, a.completion_tokens, a.cost) == (10, 5, 0.1)
    assert [r.request_id for r in led.query(since=t0 + timedelta(minutes=30))] == ["b"]
    assert [r.request_id for r in led.query(until=t0 + timedelta(minutes=30))] == ["a"]
    assert len(led.query(limit=1)) == 1
    assert [r.request_id for r in led.query(request_id="a")] == ["a"]
    led.close()


def test_spend_by_day_and_month_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    led = Ledger(path)
    now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    rec(led, now - timedelta(hours=1), 0.25)  # today
    rec(led, now - timedelta(days=2), 1.0)  # this month
    rec(led, datetime(2026, 10, 31, 23, 0, tzinfo=UTC), 5.0)  # last month
    led.close()
    again = Ledger(path)
    s = again.spend(now)
    assert s.today == pytest.approx(0.25) and s.month == pytest.approx(1.25)
    again.close()


def test_spend_uses_the_time_zone_of_now(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.db")
    # 23:30 UTC on the 22nd is already the 23rd at UTC+2.
    rec(led, datetime(2026, 11, 22, 23, 30, tzinfo=UTC), 0.5)
    plus2 = timezone(timedelta(hours=2))
    assert led.spend(datetime(2026, 11, 23, 8, 0, tzinfo=plus2)).today == pytest.approx(0.5)
    assert led.spend(datetime(2026, 11, 23, 8, 0, tzinfo=UTC)).today == 0.0


@pytest.mark.parametrize(
    "kw",
    [
        {"pii_kinds_redacted": ("alice@example.com",)},  # a value, not a kind
        {"text_sha256": "not-a-hash"},
        {"target": "local"},
        {"cost": -1.0},
    ],
)
def test_rejects_anything_but_kinds_and_hashes(tmp_path: Path, kw: dict[str, object]) -> None:
    led = Ledger(tmp_path / "l.db")
    args: dict[str, object] = {
        "request_id": "r",
        "rule": "x",
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "cost": 0.0,
        "text_sha256": H,
    }
    args.update(kw)
    with pytest.raises(InvalidArgument):
        led.record(**args)  # type: ignore[arg-type]
    assert led.query() == []


def test_spend_is_cached_until_the_next_record(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.db")
    now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assert led.spend(now).today == 0.0
    rec(led, now - timedelta(minutes=5), 0.3)
    assert led.spend(now).today == pytest.approx(0.3)  # record() invalidates the cache
    rec(led, now - timedelta(minutes=1), 0.2)
    assert led.spend(now).today == pytest.approx(0.5)
    # The next day starts from zero.
    assert led.spend(now + timedelta(days=1)).today == 0.0
    led.close()


# -- the contract, on both twins -----------------------------------------------------------


@pytest.fixture(params=["sqlite", "memory"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerPort]:
    led: LedgerPort = Ledger(tmp_path / "l.db") if request.param == "sqlite" else MemoryLedger()
    yield led
    led.close()


def attempt(ledger: LedgerPort, **kw: object) -> None:
    """One attempt recorded through the port (stamped now)."""
    args: dict[str, object] = {
        "request_id": "r", "rule": "score", "target": "cloud", "prompt_tokens": 10, "completion_tokens": 5,
        "cost": 0.1, "pii_kinds_redacted": (), "text_sha256": H, "attempt": 1, "outcome": "answered",
    }
    ledger.record(**(args | kw))  # type: ignore[arg-type]


def test_spend_counts_each_record_from_the_start_of_the_day_and_month(ledger: LedgerPort) -> None:
    now = datetime.now(UTC)
    assert (ledger.spend(now).today, ledger.spend(now).month) == (0.0, 0.0)
    attempt(ledger, cost=0.25)
    assert ledger.spend(now).today == pytest.approx(0.25)  # fresh after each record
    attempt(ledger, cost=0.5, attempt=2, outcome="failed_mid_stream")
    spent = ledger.spend(now + timedelta(seconds=1))
    assert (spent.today, spent.month) == (pytest.approx(0.75), pytest.approx(0.75))
    later = ledger.spend(now + timedelta(days=40))  # another day and month: nothing yet
    assert (later.today, later.month) == (0.0, 0.0)


@pytest.mark.parametrize("kw", [{"text_sha256": "not-a-hash"}, {"cost": -1.0}, {"prompt_tokens": -1}, {"attempt": 0}])
def test_a_bad_figure_is_refused_and_not_counted(ledger: LedgerPort, kw: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        attempt(ledger, **kw)
    assert ledger.spend().today == 0.0
