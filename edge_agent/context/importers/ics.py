"""iCalendar (``.ics``) events, parsed with the ``icalendar`` library one event at a time.

Why ``icalendar``: it is the maintained RFC 5545 implementation for Python (parsing,
escaping, line unfolding, ``TZID`` with IANA zones and with the file's own ``VTIMEZONE``
definitions). The file is split into components as it is read (see
:mod:`.components`); time zone definitions are kept, one per ``TZID`` (they are few and
small), and each event is parsed inside a minimal calendar with them, so memory does not
grow with the number of events.

Each ``VEVENT`` becomes an ``event`` item: title from ``SUMMARY``, body with the time,
place, people, recurrence rule and ``DESCRIPTION``; participants from ``ORGANIZER`` and
``ATTENDEE`` (their ``CN`` or address); tags from ``CATEGORIES``; ``CLASS:CONFIDENTIAL``
is stored as ``secret``. All-day dates and floating times are taken as UTC. The source id
is the ``UID`` (plus ``RECURRENCE-ID`` for a changed occurrence of a series).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import icalendar

from edge_agent.context.api import NewItem
from edge_agent.context.importers.base import (
    ErrorFn,
    Meter,
    clip_body,
    clip_names,
    clip_tags,
    clip_title,
    digest,
    lines,
)
from edge_agent.context.importers.components import components

_TZID = re.compile(r"^TZID:(.*)$", re.IGNORECASE | re.MULTILINE)
_WRAP = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//edgecloud//import//EN\r\n{}END:VCALENDAR\r\n"


def read_ics(path: Path, meter: Meter, on_error: ErrorFn) -> Iterator[NewItem]:
    """Events of the iCalendar file at ``path``."""
    source = f"ics:{path.resolve()}"
    zones: dict[str, str] = {}  # TZID -> its VTIMEZONE text (a calendar repeats them)
    with path.open("rb") as stream:
        number = 0
        for name, text in components(lines(stream, meter), ("VTIMEZONE", "VEVENT")):
            if name == "VTIMEZONE":
                found = _TZID.search(text)
                zones[found.group(1).strip() if found else text] = text
                continue
            number += 1
            try:
                wrapped = _WRAP.format("".join(zones.values()) + text)
                calendar = icalendar.Calendar.from_ical(wrapped)
                events = calendar.walk("VEVENT")
                item = event_to_item(events[0], source)  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - one broken event must not stop it
                on_error(f"{path}: event {number}", f"{type(exc).__name__}: {exc}")
                continue
            if item is not None:
                yield item


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0, 0), tzinfo=UTC)
    return None


def _decoded(event: icalendar.Event, name: str) -> Any:
    try:
        return event.decoded(name) if name in event else None
    except Exception:  # noqa: BLE001 - an unparsable value counts as absent
        return None


def _text(event: icalendar.Event, name: str) -> str:
    """A property as one line of text ("" when absent)."""
    value = event.get(name)
    return "" if value is None else " ".join(str(value).split())


def _categories(event: icalendar.Event) -> list[str]:
    value = event.get("CATEGORIES")
    props = value if isinstance(value, list) else [] if value is None else [value]
    found: list[str] = []
    for prop in props:
        cats = getattr(prop, "cats", None)
        found += [str(cat) for cat in cats] if cats is not None else [str(prop)]
    return found


def _person(prop: Any) -> str:
    params = getattr(prop, "params", {}) or {}
    name = str(params.get("CN", "")).strip().strip('"')
    address = str(prop).strip()
    if address.lower().startswith("mailto:"):
        address = address[7:]
    return name or address


def event_to_item(event: icalendar.Event, source: str) -> NewItem | None:
    """An ``event`` item from one parsed ``VEVENT`` (None when it has no start)."""
    starts = _when(_decoded(event, "DTSTART"))
    if starts is None:
        return None
    ends = _when(_decoded(event, "DTEND"))
    duration = _decoded(event, "DURATION")
    if ends is None and isinstance(duration, timedelta):
        ends = starts + duration
    if ends is not None and ends < starts:
        ends = None
    summary = _text(event, "SUMMARY")
    location = _text(event, "LOCATION")
    description = str(event.get("DESCRIPTION", "")).strip()
    organizer = [_person(event["ORGANIZER"])] if "ORGANIZER" in event else []
    attendees = event.get("ATTENDEE", [])
    if not isinstance(attendees, list):
        attendees = [attendees]
    people = clip_names(organizer + [_person(a) for a in attendees])
    lines_ = [summary] if summary else []
    stamp = starts.strftime("%Y-%m-%d %H:%M %Z").strip()
    if ends is not None:
        stamp += " to " + ends.strftime("%Y-%m-%d %H:%M %Z").strip()
    lines_.append(f"When: {stamp}")
    if location:
        lines_.append(f"Where: {location}")
    if people:
        lines_.append(f"With: {', '.join(people)}")
    if "RRULE" in event:
        rule = event["RRULE"].to_ical()
        lines_.append(f"Repeats: {rule.decode() if isinstance(rule, bytes) else rule}")
    status = _text(event, "STATUS")
    if status.upper() == "CANCELLED":
        lines_.append("Status: cancelled")
    if description:
        lines_.append(description)
    uid = _text(event, "UID")
    recurrence = _when(_decoded(event, "RECURRENCE-ID"))
    if uid and recurrence is not None:
        uid = f"{uid}#{recurrence.isoformat()}"
    created = _when(_decoded(event, "CREATED")) or _when(_decoded(event, "DTSTAMP")) or starts
    klass = _text(event, "CLASS").upper()
    return NewItem(
        kind="event",
        title=clip_title(summary),
        body=clip_body("\n".join(lines_)),
        source=source,
        source_id=(uid or digest(summary, starts.isoformat(), location))[:1000],
        participants=people,
        tags=clip_tags(_categories(event)),
        sensitivity="secret" if klass == "CONFIDENTIAL" else "personal",
        created_at=created,
        starts_at=starts,
        ends_at=ends,
    )
