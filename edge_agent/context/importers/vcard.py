"""vCard (``.vcf``) contacts, parsed with the ``vobject`` library one card at a time.

Why ``vobject``: it is the maintained Python vCard parser (vCard 2.1 with
quoted-printable values, 3.0 and 4.0; structured ``N``/``ADR``/``ORG`` values, escaping,
line unfolding); ``icalendar`` does not read vCards. The file is split into cards as it is
read (see :mod:`.components`) and each card is parsed alone, so a broken card is reported
and skipped and memory does not grow with the address book.

Each card becomes a ``contact`` item titled with its formatted name (``FN``, else built
from ``N``, else the first e-mail address), with e-mails, phones, organisation, title,
addresses, birthday and note in the body; ``CATEGORIES`` become tags. The source id is the
card's ``UID`` (a hash of its name and first address when it has none).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import vobject

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


def read_vcard(path: Path, meter: Meter, on_error: ErrorFn) -> Iterator[NewItem]:
    """Contacts of the vCard file at ``path``."""
    source = f"vcard:{path.resolve()}"
    with path.open("rb") as stream:
        for number, (_name, text) in enumerate(
            components(lines(stream, meter), ("VCARD",)), start=1
        ):
            try:
                card = vobject.readOne(text)
                item = card_to_item(card, source)
            except Exception as exc:  # noqa: BLE001 - one broken card must not stop it
                on_error(f"{path}: card {number}", f"{type(exc).__name__}: {exc}")
                continue
            if item is None:
                on_error(f"{path}: card {number}", "no name, e-mail or phone")
                continue
            yield item


def _values(card: Any, name: str) -> list[Any]:
    return [line.value for line in card.contents.get(name, [])]


def _flat(value: Any) -> str:
    """Text of a simple or structured (list, ``Name``, ``Address``) vCard value."""
    if isinstance(value, (list, tuple)):
        return " ".join(_flat(part) for part in value if part)
    if hasattr(value, "__dict__") and not isinstance(value, str):
        parts = [_flat(part) for part in vars(value).values() if part]
        return " ".join(part for part in parts if part)
    return " ".join(str(value).split())


def _name(card: Any) -> str:
    for value in _values(card, "fn"):
        if _flat(value):
            return _flat(value)
    for value in _values(card, "n"):
        given = _flat(getattr(value, "given", ""))
        family = _flat(getattr(value, "family", ""))
        if given or family:
            return f"{given} {family}".strip()
    return ""


def card_to_item(card: Any, source: str) -> NewItem | None:
    """A ``contact`` item from a parsed card (None when the card names nobody)."""
    emails = [_flat(v) for v in _values(card, "email") if _flat(v)]
    phones = [_flat(v) for v in _values(card, "tel") if _flat(v)]
    name = _name(card) or (emails[0] if emails else "") or (phones[0] if phones else "")
    if not name:
        return None
    body = [name]
    for label, key in (("Organisation", "org"), ("Title", "title"), ("Role", "role")):
        body += [f"{label}: {_flat(v)}" for v in _values(card, key) if _flat(v)]
    body += [f"Email: {email}" for email in emails]
    body += [f"Phone: {phone}" for phone in phones]
    body += [f"Address: {_flat(v)}" for v in _values(card, "adr") if _flat(v)]
    body += [f"Birthday: {_flat(v)}" for v in _values(card, "bday") if _flat(v)]
    body += [f"Web: {_flat(v)}" for v in _values(card, "url") if _flat(v)]
    body += [f"Note: {str(v).strip()}" for v in _values(card, "note") if str(v).strip()]
    tags: list[str] = []
    for value in _values(card, "categories"):
        tags += [str(v) for v in value] if isinstance(value, list) else str(value).split(",")
    uids = [_flat(v) for v in _values(card, "uid") if _flat(v)]
    source_id = uids[0] if uids else digest(name, emails[0] if emails else "", *phones[:1])
    return NewItem(
        kind="contact",
        title=clip_title(name),
        body=clip_body("\n".join(body)),
        source=source,
        source_id=source_id[:1000],
        participants=clip_names([name]),
        tags=clip_tags(tags),
    )
