"""``stats`` cloud spend is the sum of the ledger's rows (an answer that broke the schema
and a retried attempt cost too), and every row names the app or user that asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.engine.api import SamplingParams
from edge_agent.pipeline.fakes import Script, ScriptedCloud
from edge_agent.pipeline.types import AskRequest
from orchestrator.types import Preference
from tests.pipeline.test_egress import make, run

SCHEMA = json.dumps({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})


def test_an_invalid_cloud_answer_is_in_stats_spend_as_in_the_ledger(tmp_path: Path) -> None:
    cloud = ScriptedCloud(Script(deltas=("not json",)))
    svc, ledger = make(tmp_path, cloud=cloud)
    req = AskRequest("Count the sheep.", SamplingParams(max_tokens=8, json_schema=SCHEMA),
                     preference=Preference.CLOUD_PREFERRED, app_id="notes-app")
    _, out = run(svc, req)
    assert out.fallback  # answered locally after the cloud's answer broke the schema
    assert [r["outcome"] for r in ledger.rows] == ["answer_invalid"]
    assert ledger.rows[0]["cost"] > 0 and ledger.rows[0]["app_id"] == "notes-app"
    assert svc.figures().cloud_spend == pytest.approx(sum(r["cost"] for r in ledger.rows))


def test_retried_attempts_count_in_stats_spend(tmp_path: Path) -> None:
    cloud = ScriptedCloud(Script(deltas=(), fail="upstream down", retryable=True), Script())
    svc, ledger = make(tmp_path, cloud=cloud)
    run(svc, AskRequest("Say hi.", SamplingParams(max_tokens=8), preference=Preference.CLOUD_PREFERRED))
    assert [r["outcome"] for r in ledger.rows] == ["retried", "answered"]
    assert svc.figures().cloud_spend == pytest.approx(sum(r["cost"] for r in ledger.rows))


def test_the_cloud_answer_is_checked_against_the_schema_off_the_event_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A schema's ``pattern`` is a backtracking regex over the whole answer: the check
    runs on a worker thread, so the loop that streams every other request is free."""
    import threading

    from edge_agent.pipeline import runners

    checked_on: list[int] = []
    real = runners.schema_errors

    def spy(schema: str, text: str) -> str:
        checked_on.append(threading.get_ident())
        return real(schema, text)

    monkeypatch.setattr(runners, "schema_errors", spy)
    cloud = ScriptedCloud(Script(deltas=('{"n": 3}',)))
    svc, ledger = make(tmp_path, cloud=cloud)
    req = AskRequest("Count the sheep.", SamplingParams(max_tokens=8, json_schema=SCHEMA),
                     preference=Preference.CLOUD_PREFERRED)
    loop_thread = threading.get_ident()  # run() drives the service's loop on this thread
    text, out = run(svc, req)
    assert not out.fallback and json.loads(text) == {"n": 3}
    assert len(checked_on) == 1 and checked_on[0] != loop_thread
    assert [r["outcome"] for r in ledger.rows] == ["answered"]
