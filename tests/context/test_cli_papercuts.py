"""``edge-agent context``: --source by kind or path, junk imports, export into a closed pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.context.test_commands import run

MBOX = (
    "From alice@example.org Mon Jan  5 09:00:00 2026\n"
    "From: Alice <alice@example.org>\nTo: me@example.org\nSubject: Lunch\n"
    "Date: Mon, 05 Jan 2026 09:00:00 +0000\nMessage-ID: <m1@example.org>\n\nLunch on Friday?\n\n"
)


@pytest.fixture()
def db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    (tmp_path / "mail.mbox").write_text(MBOX)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("Plant tomatoes in May.\n")
    path = str(tmp_path / "ctx.db")
    assert run(["context", "import", str(tmp_path / "mail.mbox"), str(notes), "--db", path]) == 0
    capsys.readouterr()
    return path


def test_forget_source_by_kind_as_the_readme_shows(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["context", "forget", "--source", "mbox", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "forgot 1 item(s) from 1 source(s): mbox:" in out and "mail.mbox" in out
    assert run(["context", "stats", "--json", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out)["by_kind"] == {"note": 1}


def test_forget_source_by_path(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["context", "forget", "--source", "notes", "--db", db]) == 0  # the kind
    assert "forgot 1 item(s)" in capsys.readouterr().out
    assert run(["context", "forget", "--source", "mail.mbox", "--db", db]) == 0  # a relative path
    assert "forgot 1 item(s)" in capsys.readouterr().out


def test_forget_source_that_matches_nothing_says_what_would(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["context", "forget", "--source", "nope", "--db", db]) == 1
    err = capsys.readouterr().err
    assert "no stored source matches --source 'nope'" in err and "mbox, notes" in err


def test_junk_ics_warns_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.ics"
    junk.write_text("this is not a calendar\n")
    assert run(["context", "import", str(junk), "--db", str(tmp_path / "c.db")]) == 1
    captured = capsys.readouterr()
    assert "imported 0 item(s)" in captured.out
    assert "warning:" in captured.err and "junk.ics: nothing imported" in captured.err


def test_export_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    records = tmp_path / "many.jsonl"
    with records.open("w") as f:
        for i in range(3000):
            f.write(json.dumps({"kind": "note", "source_id": f"n{i}", "body": f"note {i} " + "x" * 100}) + "\n")
    env = {**os.environ, "EDGE_AGENT_DATA_DIR": str(tmp_path / "data")}
    db = str(tmp_path / "c.db")
    cli = [sys.executable, "-m", "edge_agent.cli.main"]
    subprocess.run([*cli, "context", "import", str(records), "--quiet", "--db", db], env=env, check=True,
                   capture_output=True, timeout=120)
    proc = subprocess.Popen([*cli, "context", "export", "--db", db], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline()  # `| head -1`
        proc.stdout.close()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert b"Broken pipe" not in err and b"Error" not in err
