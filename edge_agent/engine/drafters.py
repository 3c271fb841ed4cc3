"""Drafters: guess the next tokens from text the model has already seen, no second model.

Every drafter follows one small interface (``Drafter``): it is told the request's prompt
tokens (``begin``), every token appended to the sequence (``extend``), and proposes a
continuation of the current sequence (``propose``). Two implementations:

* ``ContextDrafter``: n-gram lookup over the request's own prompt and generated tokens
  (most recent match, longest n-gram first, a minimum match length);
* ``CorpusDrafter``: the same lookup over a bounded store of other texts: the
  personal-context items retrieved for a request and the engine's past answers. It
  lives across requests, evicts the least recently used texts past a token budget, and
  can be saved to and loaded from a JSON file.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Draft:
    """A proposed continuation; ``match_len`` is the n-gram length that found it."""

    tokens: tuple[int, ...]
    source: str
    match_len: int


class Drafter(Protocol):
    """A source of draft tokens for the sequence being decoded."""

    name: str

    def begin(self, tokens: Sequence[int]) -> None:
        """Start a request whose sequence so far is ``tokens`` (the prompt)."""
        ...

    def extend(self, tokens: Sequence[int]) -> None:
        """``tokens`` were appended to the sequence."""
        ...

    def propose(self, max_len: int) -> Draft | None:
        """Up to ``max_len`` tokens that may follow the sequence, or None."""
        ...


class ContextDrafter:
    """Prompt lookup: continue the most recent earlier occurrence of the sequence's tail.

    Tries n-grams of length ``max_n`` down to ``min_n``; the index maps each n-gram to
    the position just after its most recent occurrence whose continuation is known.
    """

    name = "context"

    def __init__(self, min_n: int = 2, max_n: int = 4) -> None:
        if not 1 <= min_n <= max_n:
            raise ValueError("need 1 <= min_n <= max_n")
        self.min_n = min_n
        self.max_n = max_n
        self._seq: list[int] = []
        self._index: dict[tuple[int, ...], int] = {}

    def begin(self, tokens: Sequence[int]) -> None:
        self._seq = []
        self._index = {}
        self.extend(tokens)

    def extend(self, tokens: Sequence[int]) -> None:
        seq = self._seq
        index = self._index
        for tok in tokens:
            end = len(seq)  # n-grams ending just before this token now have a continuation
            for n in range(self.min_n, self.max_n + 1):
                if end >= n:
                    index[tuple(seq[end - n : end])] = end
            seq.append(int(tok))

    def propose(self, max_len: int) -> Draft | None:
        seq = self._seq
        if max_len <= 0:
            return None
        for n in range(min(self.max_n, len(seq)), self.min_n - 1, -1):
            pos = self._index.get(tuple(seq[len(seq) - n :]))
            if pos is not None:
                return Draft(periodic(seq, pos, max_len), self.name, n)
        return None


def periodic(seq: Sequence[int], pos: int, max_len: int) -> tuple[int, ...]:
    """The continuation after ``pos`` (the end of the tail's most recent earlier
    occurrence), up to ``max_len`` tokens, extended with period ``len(seq) - pos`` where
    it reaches the end: the tail matched ``len(seq) - pos`` tokens back, so a sequence
    that goes on repeating continues with the same tokens again. In a loop (one token,
    or a phrase, over and over) the most recent match leaves only a period's worth of
    known continuation; this drafts the whole length instead of one period."""
    period = len(seq) - pos
    if period <= 0:
        return ()
    return tuple(seq[pos + (i % period)] for i in range(max_len))


class CorpusDrafter:
    """N-gram lookup over a bounded, least-recently-used store of texts (as tokens).

    ``add`` stores a text (retrieved personal context, a past answer); adding a text that
    is already stored refreshes it. When the stored tokens exceed ``max_tokens`` the
    least recently used texts are dropped with their index entries.
    """

    name = "corpus"

    def __init__(
        self, min_n: int = 2, max_n: int = 4, max_tokens: int = 200_000, min_doc_tokens: int = 4
    ) -> None:
        if not 1 <= min_n <= max_n:
            raise ValueError("need 1 <= min_n <= max_n")
        self.min_n = min_n
        self.max_n = max_n
        self.max_tokens = max_tokens
        self.min_doc_tokens = min_doc_tokens
        self._docs: OrderedDict[tuple[int, ...], int] = OrderedDict()  # tokens -> doc id
        self._by_id: dict[int, tuple[int, ...]] = {}
        self._index: dict[tuple[int, ...], tuple[int, int]] = {}
        self._next_id = 0
        self._stored = 0
        self._tail: list[int] = []

    # -- the store ---------------------------------------------------------
    @property
    def stored_tokens(self) -> int:
        """Tokens held in the store."""
        return self._stored

    def __len__(self) -> int:
        return len(self._docs)

    def clear(self) -> None:
        """Forget every stored text and its index entries."""
        self._docs.clear()
        self._by_id.clear()
        self._index.clear()
        self._stored = 0

    def add(self, tokens: Sequence[int]) -> None:
        """Store (or refresh) one text given as tokens."""
        doc = tuple(int(t) for t in tokens)
        if len(doc) < max(self.min_doc_tokens, self.min_n + 1):
            return
        if len(doc) > self.max_tokens:
            doc = doc[-self.max_tokens :]
        old = self._docs.pop(doc, None)
        if old is not None:
            self._forget(old, doc)
        doc_id = self._next_id
        self._next_id += 1
        self._docs[doc] = doc_id
        self._by_id[doc_id] = doc
        self._stored += len(doc)
        index = self._index
        for end in range(self.min_n, len(doc)):
            for n in range(self.min_n, min(self.max_n, end) + 1):
                index[doc[end - n : end]] = (doc_id, end)
        while self._stored > self.max_tokens and self._docs:
            victim, victim_id = self._docs.popitem(last=False)
            self._forget(victim_id, victim)

    def _forget(self, doc_id: int, doc: tuple[int, ...]) -> None:
        self._by_id.pop(doc_id, None)
        self._stored -= len(doc)
        index = self._index
        for end in range(self.min_n, len(doc)):
            for n in range(self.min_n, min(self.max_n, end) + 1):
                key = doc[end - n : end]
                hit = index.get(key)
                if hit is not None and hit[0] == doc_id:
                    del index[key]

    def save(self, path: str | Path) -> None:
        """Write the stored texts (oldest first) as JSON."""
        Path(path).write_text(json.dumps([list(d) for d in self._docs]))

    def load(self, path: str | Path) -> None:
        """Add the texts of a file written by ``save`` (missing file: nothing)."""
        p = Path(path)
        if not p.exists():
            return
        for doc in json.loads(p.read_text()):
            self.add([int(t) for t in doc])

    # -- the drafter -------------------------------------------------------
    def cursor(self) -> CorpusCursor:
        """A drafter over this store with a tail of its own, for one of several
        sequences decoded at once (the store is shared, the position is not)."""
        return CorpusCursor(self)

    def lookup(self, tail: Sequence[int], max_len: int) -> Draft | None:
        """The stored continuation of the longest matching suffix of ``tail``."""
        if max_len <= 0:
            return None
        for n in range(min(self.max_n, len(tail)), self.min_n - 1, -1):
            hit = self._index.get(tuple(tail[len(tail) - n :]))
            if hit is not None:
                doc = self._by_id.get(hit[0])
                if doc is not None:
                    return Draft(doc[hit[1] : hit[1] + max_len], self.name, n)
        return None

    def begin(self, tokens: Sequence[int]) -> None:
        self._tail = [int(t) for t in tokens[-self.max_n :]]

    def extend(self, tokens: Sequence[int]) -> None:
        if tokens:
            self._tail = (self._tail + [int(t) for t in tokens])[-self.max_n :]

    def propose(self, max_len: int) -> Draft | None:
        return self.lookup(self._tail, max_len)


class CorpusCursor:
    """``CorpusDrafter``'s lookup with a tail of its own (see ``CorpusDrafter.cursor``)."""

    name = CorpusDrafter.name

    def __init__(self, store: CorpusDrafter) -> None:
        self.store = store
        self._tail: list[int] = []

    def begin(self, tokens: Sequence[int]) -> None:
        self._tail = [int(t) for t in tokens[-self.store.max_n :]]

    def extend(self, tokens: Sequence[int]) -> None:
        if tokens:
            self._tail = (self._tail + [int(t) for t in tokens])[-self.store.max_n :]

    def propose(self, max_len: int) -> Draft | None:
        return self.store.lookup(self._tail, max_len)
