"""`edge-agent policy check|explain` and `audit`, driven through argparse."""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.adapters.ledger import Ledger
from edge_agent.cli import policy as rc
from edge_agent.config import load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "policy.toml")


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edge-agent")
    rc.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args, load_config(None)))


def test_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["policy", "check", EXAMPLE]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "mail-drafts-redacted -> cloud_redacted" in out


def test_check_bad_file_names_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "bad.toml"
    f.write_text("[cost]\ncloud_price_in_per_1k = -2\n", encoding="utf-8")
    assert run(["policy", "check", str(f)]) == 1
    err = capsys.readouterr().err
    assert f"{f}: cost.cloud_price_in_per_1k: a number >= 0" in err


def test_check_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["policy", "check", "/nonexistent/p.toml"]) == 1
    assert "/nonexistent/p.toml: <file>:" in capsys.readouterr().err


def test_explain_redacted_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(
        [
            "policy",
            "explain",
            EXAMPLE,
            "--json",
            "--app-id",
            "mail",
            "--max-tokens",
            "300",
            "--prompt",
            "Reply to Bob Jones at bob@example.com",
            "--contact",
            "Bob Jones",
            "--at",
            "12:00",
        ]
    )
    assert code == 0
    d = json.loads(capsys.readouterr().out)
    assert d["target"] == "cloud_redacted"
    assert "rule:mail-drafts-redacted" in d["rules_fired"]
    assert d["redacted_prompt"] == "Reply to [CONTACT_NAME_1] at [EMAIL_1]"
    assert "bob@example.com" not in json.dumps(d["redacted_prompt"])


def test_explain_personal_stays_local(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run(["policy", "explain", EXAMPLE, "--prompt", "hi", "--personal", "--deadline-ms", "100"])
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("route: local") and "privacy.marked_personal" in out


def test_explain_bad_context_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["policy", "explain", EXAMPLE, "--prompt", "hi", "--context", "private:x"]) == 2
    assert "SENSITIVITY:TEXT" in capsys.readouterr().err


def test_audit_lists_and_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "ledger.db"
    led = Ledger(db)
    now = datetime.now(UTC)
    h = hashlib.sha256(b"x").hexdigest()
    for rid, age, kinds in (("old", 20, ()), ("recent", 1, ("email",))):
        led.record(
            request_id=rid,
            rule="rule:mail",
            prompt_tokens=12,
            completion_tokens=3,
            cost=0.01,
            text_sha256=h,
            pii_kinds_redacted=kinds,
            target="cloud_redacted" if kinds else "cloud",
            at=now - timedelta(days=age),
        )
    led.close()
    assert run(["audit", "--db", str(db), "--since", "7d"]) == 0
    out = capsys.readouterr().out
    assert "recent" in out and "old" not in out and "email" in out and h[:12] in out
    assert "1 cloud attempt(s)" in out
    assert run(["audit", "--db", str(db), "--since", "30d", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["request_id"] for r in rows] == ["recent", "old"]
    assert rows[0]["pii_kinds_redacted"] == ["email"] and rows[0]["text_sha256"] == h


def test_audit_bad_since(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["audit", "--db", str(tmp_path / "l.db"), "--since", "last tuesday"]) == 2
    assert "expected e.g. 24h" in capsys.readouterr().err


def test_audit_without_ledger_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["audit", "--db", str(tmp_path / "none.db")]) == 0
    assert "nothing has been sent" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_parse_when_forms() -> None:
    now = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
    assert rc.parse_when("24h", now) == now - timedelta(hours=24)
    assert rc.parse_when("2w", now) == now - timedelta(weeks=2)
    assert rc.parse_when("today", now) == datetime(2026, 11, 23, tzinfo=UTC)
    assert rc.parse_when("yesterday", now) == datetime(2026, 11, 22, tzinfo=UTC)
    assert rc.parse_when("2026-11-01T10:00+00:00", now) == datetime(2026, 11, 1, 10, tzinfo=UTC)


def test_explain_stop_sequence_with_pii(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["policy", "explain", EXAMPLE, "--json", "--prompt", "List colours", "--at", "12:00"]
    assert run([*argv, "--stop", "bob@example.com", "--route", "cloud"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["target"] == "cloud_redacted" and d["redacted_stop"] == ["[EMAIL_1]"]


def test_audit_shows_the_app_or_user(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "ledger.db"
    led = Ledger(db)
    h = hashlib.sha256(b"x").hexdigest()
    led.record(request_id="r1", rule="r", prompt_tokens=1, completion_tokens=1, cost=0.001, text_sha256=h, app_id="mail-app")
    led.record(request_id="r2", rule="r", prompt_tokens=1, completion_tokens=1, cost=0.001, text_sha256=h)
    led.close()
    assert run(["audit", "--db", str(db)]) == 0
    head, *lines = capsys.readouterr().out.splitlines()
    assert "app/user" in head
    assert any("r1" in line and "mail-app" in line for line in lines)
    assert run(["audit", "--db", str(db), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["request_id"]: r["app_id"] for r in rows} == {"r1": "mail-app", "r2": ""}
