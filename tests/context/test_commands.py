"""``edge-agent context ...`` subcommands, driven through argparse as the main CLI does."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from edge_agent.cli import context as commands
from edge_agent.config import load_config


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edge-agent")
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args, load_config(None)))


@pytest.fixture()
def data(tmp_path: Path) -> dict[str, Path]:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "trip.md").write_text("# Lisbon trip\nBook the tram tour and the fado evening.\n")
    (notes / "garden.md").write_text("Plant tomatoes in May.\n")
    contacts = tmp_path / "people.vcf"
    contacts.write_text("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ada Lovelace\r\nUID:a1\r\n"
                        "EMAIL:ada@example.org\r\nEND:VCARD\r\n")
    return {"db": tmp_path / "ctx.db", "notes": notes, "contacts": contacts}


def test_import_search_export_forget_stats(data: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    db = str(data["db"])
    assert run(["context", "import", str(data["notes"]), str(data["contacts"]), "--db", db]) == 0
    out = capsys.readouterr()
    assert "imported 3 item(s), skipped 0" in out.out
    assert "item(s)" in out.err  # progress on stderr

    assert run(["context", "search", "lisbon tram", "--db", db]) == 0
    assert "Lisbon trip" in capsys.readouterr().out

    assert run(["context", "search", "ada", "--kind", "contact", "--json", "--db", db]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["title"] == "Ada Lovelace"

    assert run(["context", "stats", "--json", "--db", db]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["items"] == 3 and stats["by_kind"] == {"contact": 1, "note": 2}

    out_file = tmp_path / "dump.jsonl"
    assert run(["context", "export", "--out", str(out_file), "--db", db]) == 0
    assert len(out_file.read_text().splitlines()) == 3
    assert "exported 3 item(s)" in capsys.readouterr().err

    assert run(["context", "forget", "--query", "tomatoes", "--db", db]) == 0
    assert "forgot 1 item(s)" in capsys.readouterr().out
    assert run(["context", "forget", "--source", "nope", "--db", db]) == 1  # names what would match
    assert "no stored source matches" in capsys.readouterr().err
    assert run(["context", "forget", "--all", "--db", db]) == 0
    assert "forgot 2 item(s)" in capsys.readouterr().out

    assert run(["context", "stats", "--db", db]) == 0
    assert "items: 0" in capsys.readouterr().out


def test_errors_go_to_stderr_with_nonzero_status(data: dict[str, Path],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    db = str(data["db"])
    assert run(["context", "import", str(data["db"].parent / "missing.ics"), "--db", db]) == 1
    assert "no such file" in capsys.readouterr().err
    assert run(["context", "search", "x", "--since", "2026-02-01", "--until", "2026-01-01",
                "--db", db]) == 1
    assert "until" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(["context", "forget", "--db", db])  # a selector is required
    with pytest.raises(SystemExit):
        run(["context", "forget", "--all", "--source", "x", "--db", db])  # only one


def test_without_db_the_configured_database_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EDGE_AGENT_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir(mode=0o700)
    assert run(["context", "stats"]) == 0
    assert (tmp_path / "data" / "context.db").exists()
