"""Importers: real formats in, the right items out, idempotent, streaming, robust."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from common.errors import InvalidArgument
from edge_agent.context.api import NewItem
from edge_agent.context.importers import ImportProgress, detect, import_paths, read_path
from edge_agent.context.store import ContextStore

MBOX = b"""From alice@example.org Mon Nov 23 10:00:00 2026
From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.org>
To: Me <me@example.org>, "Smith, Ann" <ann@example.org>
Cc: carl@example.org
Subject: =?utf-8?b?TMO8bmNoIG9uIEZyaWRheQ==?=
Date: Mon, 23 Nov 2026 10:00:00 +0100
Message-ID: <m1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Let's have l=C3=BCnch at the ramen place.
>From the office we walk.

--b1
Content-Type: text/html; charset=utf-8

<p>HTML version should not be used</p>
--b1--

--outer
Content-Type: application/pdf; name="menu.pdf"
Content-Disposition: attachment; filename="menu.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--outer--

From bob@example.org Tue Nov 24 09:00:00 2026
From: Bob <bob@example.org>
Subject: Invoice
Date: Tue, 24 Nov 2026 09:00:00 +0000
Content-Type: text/html; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

<html><head><style>p {color: red}</style></head><body><p>Your invoice <b>42</b> is =
due. Gr=FC=DFe</p></body></html>

From carol@example.org Tue Nov 24 10:00:00 2026
From: carol@example.org
Subject: Strange charset
Content-Type: text/plain; charset=x-unknown-charset

Plain words survive an unknown charset.
"""

ICS = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VTIMEZONE\r
TZID:Custom Berlin\r
BEGIN:STANDARD\r
DTSTART:19701025T030000\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:19700329T020000\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r
END:DAYLIGHT\r
END:VTIMEZONE\r
BEGIN:VEVENT\r
UID:ev-1@test\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Custom Berlin:20260701T100000\r
DTEND;TZID=Custom Berlin:20260701T113000\r
SUMMARY:Café planning\\, part 2\r
LOCATION:Room 4\r
DESCRIPTION:Bring the long agenda that goes on and on so that this line is fo\r
 lded across two lines.\r
ORGANIZER;CN=Dana Scully:mailto:dana@example.org\r
ATTENDEE;CN="Fox Mulder":mailto:fox@example.org\r
ATTENDEE:mailto:skinner@example.org\r
CATEGORIES:Work,Planning\r
RRULE:FREQ=WEEKLY;COUNT=4\r
BEGIN:VALARM\r
ACTION:DISPLAY\r
DESCRIPTION:Reminder\r
TRIGGER:-PT15M\r
END:VALARM\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:ev-2@test\r
DTSTART;VALUE=DATE:20261224\r
DTEND;VALUE=DATE:20261225\r
SUMMARY:Christmas Eve\r
CLASS:CONFIDENTIAL\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:ev-3@test\r
DTSTART:20260301T090000Z\r
DURATION:PT45M\r
SUMMARY:Standup\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:ev-1@test\r
RECURRENCE-ID;TZID=Custom Berlin:20260708T100000\r
DTSTART;TZID=Custom Berlin:20260708T120000\r
SUMMARY:Café planning moved\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:no-start@test\r
SUMMARY:Broken event without a start\r
END:VEVENT\r
END:VCALENDAR\r
"""

VCF = """BEGIN:VCARD\r
VERSION:3.0\r
UID:card-1\r
FN:Jörg Müller\r
N:Müller;Jörg;;;\r
EMAIL;TYPE=work:joerg@example.org\r
TEL;TYPE=cell:+49 170 1234567\r
ORG:Acme GmbH;Research\r
ADR;TYPE=home:;;Hauptstr. 1;Berlin;;10115;Germany\r
NOTE:Likes green tea\\, not coffee\r
CATEGORIES:friends,work\r
END:VCARD\r
BEGIN:VCARD\r
VERSION:2.1\r
N:Doe;John\r
FN;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:J=C3=B6hn Doe\r
TEL;CELL:555-0100\r
END:VCARD\r
BEGIN:VCARD\r
VERSION:3.0\r
this line is not a content line at all\r
END:VCARD\r
BEGIN:VCARD\r
VERSION:4.0\r
N:Lovelace;Ada;;;\r
EMAIL:ada@example.org\r
END:VCARD\r
"""


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[ContextStore]:
    s = ContextStore(tmp_path / "ctx.db", purge_interval_s=None)
    yield s
    s.close()


def items_of(path: Path, errors: list[str] | None = None) -> list[NewItem]:
    sink = errors if errors is not None else []
    return list(read_path(path, on_error=lambda where, why: sink.append(f"{where}: {why}")))


def test_mbox(tmp_path: Path) -> None:
    path = tmp_path / "mail.mbox"
    path.write_bytes(MBOX)
    lunch, invoice, strange = items_of(path)
    assert lunch.kind == "email"
    assert lunch.title == "Lünch on Friday"
    assert lunch.body.startswith("Let's have lünch at the ramen place.\nFrom the office")
    assert "HTML version" not in lunch.body
    assert "Attachments: menu.pdf" in lunch.body
    assert lunch.participants == (
        "Jörg Müller <joerg@example.org>",
        "Me <me@example.org>",
        "Smith, Ann <ann@example.org>",
        "carl@example.org",
    )
    assert lunch.source_id == "<m1@example.org>"
    assert lunch.created_at == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert invoice.body == "Your invoice 42 is due. Grüße"
    assert "color" not in invoice.body
    assert invoice.source_id  # hash of headers and text, no Message-ID
    assert "Plain words survive" in strange.body


def test_mbox_is_detected_by_content(tmp_path: Path) -> None:
    path = tmp_path / "Inbox"
    path.write_bytes(MBOX)
    assert detect(path) == "mbox"


def test_ics(tmp_path: Path) -> None:
    path = tmp_path / "cal.ics"
    path.write_text(ICS, encoding="utf-8")
    errors: list[str] = []
    planning, christmas, standup, moved = items_of(path, errors)
    assert errors == []  # the event without a start is skipped silently
    assert planning.kind == "event"
    assert planning.title == "Café planning, part 2"
    assert planning.starts_at == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    assert planning.ends_at == datetime(2026, 7, 1, 9, 30, tzinfo=UTC)
    assert planning.participants == ("Dana Scully", "Fox Mulder", "skinner@example.org")
    assert planning.tags == ("Work", "Planning")
    assert "fo" + "lded across two lines" in planning.body
    assert "Where: Room 4" in planning.body
    assert "Repeats: FREQ=WEEKLY;COUNT=4" in planning.body
    assert "Reminder" not in planning.body  # the alarm's description is not the event's
    assert christmas.sensitivity == "secret"
    assert christmas.starts_at == datetime(2026, 12, 24, tzinfo=UTC)
    assert standup.ends_at == datetime(2026, 3, 1, 9, 45, tzinfo=UTC)
    assert moved.source_id.startswith("ev-1@test#")
    assert len({planning.source_id, moved.source_id}) == 2


def test_vcard(tmp_path: Path) -> None:
    path = tmp_path / "contacts.vcf"
    path.write_text(VCF, encoding="utf-8")
    errors: list[str] = []
    joerg, john, ada = items_of(path, errors)
    assert len(errors) == 1 and "card 3" in errors[0]
    assert joerg.kind == "contact"
    assert joerg.title == "Jörg Müller"
    assert joerg.source_id == "card-1"
    for text in ("joerg@example.org", "+49 170 1234567", "Acme GmbH Research", "Berlin",
                 "Likes green tea, not coffee"):
        assert text in joerg.body
    assert joerg.tags == ("friends", "work")
    assert john.title == "Jöhn Doe"
    assert "555-0100" in john.body
    assert ada.title == "Ada Lovelace"


def test_notes_folder(tmp_path: Path) -> None:
    root = tmp_path / "notes"
    (root / "sub").mkdir(parents=True)
    (root / ".obsidian").mkdir()
    (root / "garden.md").write_text(
        "---\ntitle: Garden plan\ntags: [home, \"garden\"]\n---\n# Heading\nPlant tomatoes.\n"
    )
    (root / "sub" / "trip.markdown").write_text("Intro line\n\n## Trip to Lisbon\nPack light.\n")
    (root / "sub" / "shop.txt").write_text("Buy milk\n")
    (root / "empty.md").write_text("   \n")
    (root / "image.png").write_bytes(b"\x89PNG")
    (root / ".obsidian" / "config.md").write_text("hidden")
    errors: list[str] = []
    notes = items_of(root, errors)
    assert [n.source_id for n in notes] == ["garden.md", "sub/shop.txt", "sub/trip.markdown"]
    garden, shop, trip = notes
    assert (garden.title, garden.tags) == ("Garden plan", ("home", "garden"))
    assert garden.body.endswith("Plant tomatoes.")
    assert "title:" not in garden.body
    assert trip.title == "Trip to Lisbon"
    assert shop.title == "shop"
    assert len(errors) == 1 and "empty.md" in errors[0]


def test_jsonl_round_trip(store: ContextStore, tmp_path: Path) -> None:
    start = datetime(2026, 5, 1, 12, tzinfo=UTC)
    store.put(
        [
            NewItem(kind="note", body="first ünïcode line\nsecond", title="T", tags=("x",)),
            NewItem(kind="event", body="Dentist", source="cal", source_id="d1",
                    participants=("Dr. Who",), starts_at=start,
                    ends_at=start + timedelta(hours=1), sensitivity="secret",
                    expires_at=start + timedelta(days=3650)),
        ]
    )
    out = io.StringIO()
    assert store.export(out) == 2
    path = tmp_path / "export.jsonl"
    path.write_text(out.getvalue() + "\n{not json}\n" + '{"kind": "tweet", "body": "x"}\n')
    with ContextStore(tmp_path / "other.db", purge_interval_s=None) as other:
        report = import_paths(other, [path])
        assert (report.items, report.skipped) == (2, 2)
        assert any(":4:" in e for e in report.errors)  # names the line of the bad JSON
        # an invalid item is named by its place in the file (the tweet: the third item read)
        assert any(e.startswith(f"{path}: item 3: item.kind:") for e in report.errors), report.errors
        again = io.StringIO()
        other.export(again)
        import_paths(other, [path])  # idempotent: same source keys
        assert other.stats()["items"] == 2

    def strip_ids(text: str) -> list[dict[str, object]]:
        records = [json.loads(line) for line in text.splitlines()]
        for record in records:
            del record["id"]
            if record["source"] == "api":
                record["source_id"] = ""  # took the old id as its source id
        return records

    assert strip_ids(again.getvalue()) == strip_ids(out.getvalue())


def test_reimport_is_idempotent_and_updates(store: ContextStore, tmp_path: Path) -> None:
    (tmp_path / "mail.mbox").write_bytes(MBOX)
    (tmp_path / "cal.ics").write_text(ICS, encoding="utf-8")
    (tmp_path / "c.vcf").write_text(VCF, encoding="utf-8")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("alpha version one")
    paths = [tmp_path / "mail.mbox", tmp_path / "cal.ics", tmp_path / "c.vcf", notes]
    first = import_paths(store, paths)
    assert first.items == 3 + 4 + 3 + 1
    (notes / "a.md").write_text("alpha version two")
    second = import_paths(store, paths)
    assert second.items == first.items
    assert store.stats()["items"] == first.items
    [hit] = store.search("alpha")
    assert hit.item.body == "alpha version two"
    assert store.contact_names() == ["Ada Lovelace", "Jöhn Doe", "Jörg Müller"]


def test_sensitivity_override(store: ContextStore, tmp_path: Path) -> None:
    (tmp_path / "diary.md").write_text("dear diary")
    import_paths(store, [tmp_path / "diary.md"], sensitivity="secret")
    [hit] = store.search("diary")
    assert hit.item.sensitivity == "secret"


def test_bad_paths_fail_before_writing(store: ContextStore, tmp_path: Path) -> None:
    good = tmp_path / "ok.md"
    good.write_text("fine")
    (tmp_path / "data.bin").write_bytes(b"\x00\x01")
    with pytest.raises(InvalidArgument, match="no such file"):
        import_paths(store, [good, tmp_path / "missing.mbox"])
    with pytest.raises(InvalidArgument, match="unknown format"):
        import_paths(store, [good, tmp_path / "data.bin"])
    assert store.stats()["items"] == 0


def test_oversized_records_are_clipped(tmp_path: Path) -> None:
    from edge_agent.context.limits import MAX_BODY_BYTES

    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"kind": "document", "body": "é" * MAX_BODY_BYTES}) + "\n")
    [item] = items_of(path)
    assert len(item.body.encode("utf-8")) <= MAX_BODY_BYTES
    assert item.body.endswith("[truncated]")


def _big_inputs(tmp_path: Path, count: int, pad: int = 0) -> dict[str, Path]:
    filler = " lorem" * pad
    tmp_path.mkdir(parents=True, exist_ok=True)
    mbox = tmp_path / "big.mbox"
    ics = tmp_path / "big.ics"
    vcf = tmp_path / "big.vcf"
    jsonl = tmp_path / "big.jsonl"
    with mbox.open("w") as m, ics.open("w") as c, vcf.open("w") as v, jsonl.open("w") as j:
        c.write("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
        for i in range(count):
            m.write(f"From x Mon Jan 1 00:00:00 2026\nSubject: s{i}\nMessage-ID: <{i}@x>\n\n"
                    f"message number {i}{filler}\n\n")
            c.write(f"BEGIN:VEVENT\r\nUID:{i}\r\nDTSTART:20260101T000000Z\r\n"
                    f"SUMMARY:event {i}\r\nDESCRIPTION:{filler}\r\nEND:VEVENT\r\n")
            v.write(f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Person {i}\r\nUID:{i}\r\n"
                    f"NOTE:{filler}\r\nEND:VCARD\r\n")
            j.write(json.dumps({"kind": "note", "body": f"note {i}{filler}", "source_id": str(i)})
                    + "\n")
        c.write("END:VCALENDAR\r\n")
    return {"mbox": mbox, "ics": ics, "vcard": vcf, "jsonl": jsonl}


@pytest.mark.parametrize("fmt", ["mbox", "ics", "vcard", "jsonl"])
def test_readers_stream_and_report_progress(tmp_path: Path, fmt: str) -> None:
    path = _big_inputs(tmp_path, 2000)[fmt]
    seen: list[ImportProgress] = []
    reader = read_path(path, progress=seen.append)
    first = next(reader)
    assert first.body
    # The first item comes out after reading only the start of the file.
    assert seen and seen[-1].bytes_done < path.stat().st_size / 10
    rest = list(reader)
    assert 1 + len(rest) == 2000
    assert seen[-1].bytes_done == seen[-1].bytes_total == path.stat().st_size
    assert seen[-1].items == 2000
    done = [p.bytes_done for p in seen]
    assert done == sorted(done)


@pytest.mark.parametrize("fmt", ["mbox", "ics", "vcard", "jsonl"])
def test_readers_use_constant_memory(tmp_path: Path, fmt: str) -> None:
    import tracemalloc

    def peak_bytes(count: int) -> int:
        path = _big_inputs(tmp_path / f"n{count}", count, pad=100)[fmt]  # ~600 B a record
        tracemalloc.start()
        try:
            for _item in read_path(path):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak_bytes(300), peak_bytes(1500)
    # Five times the input must not need (anywhere near) five times the memory.
    assert large < small * 1.5 + 256 * 1024, (small, large)
