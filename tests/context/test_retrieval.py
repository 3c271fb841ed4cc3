"""Retrieval for prompts: best items first, within the token budget, ids returned."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from common.errors import InvalidArgument
from edge_agent.context.api import Hit, Item, NewItem
from edge_agent.context.retrieval import MIN_ITEM_TOKENS, excerpt, format_item, pack
from edge_agent.context.store import ContextStore


def words(text: str) -> int:
    """A stand-in tokenizer: one token per whitespace-separated word, plus one per line."""
    return len(text.split()) + text.count("\n")


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[ContextStore]:
    s = ContextStore(tmp_path / "ctx.db", purge_interval_s=None)
    yield s
    s.close()


def test_retrieve_fits_budget_and_reports_items(store: ContextStore) -> None:
    store.put(
        [
            NewItem(kind="note", body=f"dentist appointment detail {i} " + "filler " * 20)
            for i in range(10)
        ]
        + [NewItem(kind="note", body="nothing relevant here")]
    )
    for budget in (30, 60, 100, 400):
        got = store.retrieve("When is my dentist appointment?", token_budget=budget,
                             count_tokens=words, limit=5)
        assert got.tokens == words(got.text) <= budget
        assert 1 <= len(got.items) <= 5
        for item in got.items:
            assert "dentist" in item.body
            assert item.body.split()[3] in got.text  # each used item's text is in the block
        assert len(got.text.splitlines()) == len(got.items)
    assert len(store.retrieve("dentist", token_budget=10_000, count_tokens=words, limit=3).items) == 3


def test_retrieve_returns_nothing_without_content_words(store: ContextStore) -> None:
    store.put([NewItem(kind="note", body="what is this")])
    for query, budget in (("what is this?", 100), ("", 100), ("what", 100), ("this note", 0)):
        got = store.retrieve(query, token_budget=budget, count_tokens=words)
        assert (got.text, got.items, got.tokens) == ("", (), 0)
    with pytest.raises(InvalidArgument):
        store.retrieve("x", token_budget=-1, count_tokens=words)


def test_retrieve_can_exclude_secret_items(store: ContextStore) -> None:
    store.put([NewItem(kind="note", body="bank pin 1234", sensitivity="secret"),
               NewItem(kind="note", body="bank opening hours")])
    got = store.retrieve("bank", token_budget=100, count_tokens=words,
                         sensitivities=["public", "personal"])
    assert [i.body for i in got.items] == ["bank opening hours"]


def _item(body: str, **kw: object) -> Item:
    fields: dict[str, object] = {
        "id": "i", "kind": "note", "body": body, "title": "", "source": "s", "source_id": "",
        "participants": (), "tags": (), "sensitivity": "personal",
        "created_at": datetime(2026, 1, 2, tzinfo=UTC),
    }
    fields.update(kw)
    return Item(**fields)  # type: ignore[arg-type]


def test_format_is_compact() -> None:
    line = format_item(
        _item("Let's  meet\n\n at noon", kind="email", title="Lunch",
              participants=("Ann <ann@example.org>", "bob@example.org", "Cy", "Di", "Ed", "Flo"))
    )
    assert line == "[email 2026-01-02 | Ann, bob@example.org, Cy, Di, +2 | Lunch] Let's meet at noon"
    start = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    event = format_item(_item("Dentist", kind="event", starts_at=start,
                              ends_at=start.replace(hour=10)))
    assert event == "[event 2026-03-04 09:30-10:30] Dentist"
    assert format_item(_item("+1 555", kind="contact", title="Ann")) == "[contact | Ann] +1 555"
    repeated = format_item(_item("Ann Lee\nPhone: 1", kind="contact", title="Ann Lee"))
    assert repeated == "[contact | Ann Lee] Phone: 1"


def test_long_body_is_cut_around_the_query_word() -> None:
    text = "intro " * 300 + "the zebra is here " + "outro " * 300
    cut = excerpt(text, ["zebra"], 200)
    assert "zebra" in cut and len(cut) <= 202 and cut.startswith("…") and cut.endswith("…")
    assert excerpt("short", ["x"], 200) == "short"


def test_pack_cuts_the_last_item_to_use_the_budget() -> None:
    hits = [Hit(item=_item("a " * 10, id="small"), score=2.0),
            Hit(item=_item("b " * 400, id="big"), score=1.0)]
    got = pack(hits, ["a"], 15 + MIN_ITEM_TOKENS, words, limit=5)
    assert [i.id for i in got.items] == ["small", "big"]
    assert got.tokens == words(got.text) <= 15 + MIN_ITEM_TOKENS
    assert got.text.endswith("…")
    tight = pack(hits, ["a"], 16, words, limit=5)
    assert [i.id for i in tight.items] == ["small"]  # too little room left to cut "big"


def test_long_prompts_retrieve_by_their_key_words(store: ContextStore) -> None:
    store.put([NewItem(kind="note", body="The garden needs compost in spring"),
               NewItem(kind="note", body="Car insurance renews in May")])
    prompt = ("Summarise my notes about the garden. " * 60) + "x" * 40_000  # ~42 kB
    got = store.retrieve(prompt, token_budget=100, count_tokens=words)
    assert [i.body for i in got.items] == ["The garden needs compost in spring"]


def test_key_terms_prefer_repeated_words() -> None:
    from edge_agent.context.query import key_terms

    assert key_terms("What about the garden? Garden soil, garden tools and soil.") == [
        "garden", "soil", "tools",
    ]
    assert key_terms("what is this?") == []
    assert len(key_terms(" ".join(f"w{i}" for i in range(100)))) == 32
