"""Fakes behind the ports, for tests that run the whole request path in milliseconds
(the way httpx ships ``MockTransport`` beside its real transport).

* ``ScriptedEngine``: answers with a fixed text, word by word, with chosen token
  probabilities; can block mid-answer until released, and counts cancellations;
* ``MemoryStore``: the context store as a list of items, words matched naively, held
  to the store's contract suite;
* ``ScriptedCloud``: a cloud link that answers, fails before any text, or fails after
  some deltas, as scripted per call; it records every prompt it was sent.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import unicodedata
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from common.chat import PLAIN_STOPS, Message, Prompt, as_text, render_plain
from common.errors import InvalidArgument
from edge_agent.context.api import KINDS, SENSITIVITIES, Hit, Item, NewItem, Retrieved
from edge_agent.context.codec import norm_participants, norm_tags
from edge_agent.context.limits import (
    validate_choices,
    validate_items,
    validate_limit,
    validate_query,
    validate_range,
    validate_tags,
)
from edge_agent.context.query import key_terms, terms
from edge_agent.engine.api import (
    Embeddings,
    EngineEvent,
    Finished,
    SamplingParams,
    TextDelta,
    Usage,
)
from edge_agent.pipeline.ports import CloudDone, CloudEvent, CloudFailure, CloudInfo, CloudUsage
from orchestrator.budget import Spend


class ScriptedEngine:
    """An ``Engine`` that answers ``answer`` one word per step."""

    model_name = "scripted"

    def __init__(self, answer: str = "a local answer", *, n_ctx: int = 2048, prob: float = 0.9) -> None:
        self.answer = answer
        self.n_ctx = n_ctx
        self.prob = prob
        self.prompts: list[str] = []
        self.cancelled_runs = 0
        self.gate: threading.Event | None = None  # set: steps after the first wait for it
        self.forgot = 0
        self.loads = 0  # weights loaded again after an unload
        self.unloads = 0
        self._loaded = True

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        if not self._loaded:
            self.loads += 1
            self._loaded = True

    def unload(self) -> None:
        if self._loaded:
            self.unloads += 1
            self._loaded = False

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def chat_prompt(self, messages: Sequence[Message]) -> str:
        return render_plain(messages)

    def chat_stops(self) -> tuple[str, ...]:
        return PLAIN_STOPS

    def generate(
        self,
        prompt: str,
        params: SamplingParams,
        *,
        draft_texts: Sequence[str] = (),
        cancelled: Callable[[], bool] | None = None,
        token_probs: int = 0,
        app: str = "",
        background: bool = False,
    ) -> Iterator[EngineEvent]:
        self.prompts.append(prompt)
        self.load()
        t0 = time.perf_counter()
        words = [w + " " for w in self.answer.split()][: params.max_tokens]
        finish = "length" if len(words) < len(self.answer.split()) else "stop"
        n = 0
        for i, word in enumerate(words):
            if i and self.gate is not None:
                while not self.gate.wait(0.005):
                    if cancelled is not None and cancelled():
                        break
            if cancelled is not None and cancelled():
                finish = "cancelled"
                self.cancelled_runs += 1
                break
            n += 1
            yield TextDelta(word, (self.prob,) if i < token_probs else ())
        ms = (time.perf_counter() - t0) * 1000
        yield Finished(Usage(self.count_tokens(prompt), n, ms, ms, 100.0), finish)

    def embed(self, texts: Sequence[str]) -> Embeddings:
        """A vector per text from its words' hashes: equal texts give equal vectors."""
        vectors = np.zeros((len(texts), 8), dtype=np.float32)
        for i, text in enumerate(texts):
            if not text.strip():
                raise InvalidArgument(f"input[{i}]", "must not be empty")
            for word in text.split():
                vectors[i, int(hashlib.sha256(word.encode()).hexdigest(), 16) % 8] += 1.0
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return Embeddings(vectors, sum(self.count_tokens(t) for t in texts), "mean")

    def forget_drafts(self) -> None:
        self.forgot += 1

    def close(self) -> None:
        pass


@dataclass
class MemoryStore:
    """A ``ContextStore`` over a list, held to the store's contract suite
    (``tests/contracts/test_store_contract.py``, run on both): the same checks (the
    store's own validators), upsert on ``(source, source_id)``, filters, delete
    selectors and contact names. Words match naively (a query word in the title or
    body), every hit scores 1.0, newest first; ``retrieve`` returns every item sharing
    a content word with the prompt (no ranking, no packing into the budget). ``contacts`` adds names beside the contact items' titles."""

    items: list[Item] = field(default_factory=list)
    contacts: list[str] = field(default_factory=list)
    _made: int = 0

    def retrieve(
        self, query: str, *, token_budget: int, count_tokens: Callable[[str], int],
        vector: object = None, vector_model: str = "",
    ) -> Retrieved:
        words = {_fold(w) for w in key_terms(query)}  # the prompt's content words, as the store's
        found = tuple(i for i in self._live() if token_budget > 0 and words & _words(i))
        text = "\n".join(f"[{i.kind}] {i.body}" for i in found)
        return Retrieved(text, found, count_tokens(text))

    def contact_names(self) -> list[str]:
        titles = {i.title for i in self._live() if i.kind == "contact" and i.title}
        return sorted(titles | set(self.contacts))

    def put(self, items: Sequence[NewItem]) -> list[str]:
        validate_items(items)
        now = datetime.now(UTC)
        return [self._put_one(n, now) for n in items]

    def _put_one(self, n: NewItem, now: datetime) -> str:
        old = next((i for i in self.items if n.source_id and (i.source, i.source_id) == (n.source, n.source_id)), None)
        if old is None:
            item_id, self._made = f"i{self._made}", self._made + 1
        else:
            item_id = old.id
            self.items.remove(old)
        self.items.append(Item(
            item_id, n.kind, n.body, n.title, n.source, n.source_id, norm_participants(n.participants),
            norm_tags(n.tags), n.sensitivity, _utc(n.created_at) or now, _utc(n.starts_at), _utc(n.ends_at),
            _utc(n.expires_at),
        ))
        return item_id

    def search(
        self,
        query: str,
        *,
        kinds: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        tags: Sequence[str] = (),
        sensitivities: Sequence[str] = (),
        limit: int = 10,
    ) -> list[Hit]:
        """Items holding any word of ``query`` (all items when it has none), filtered,
        newest first; the arguments checked by the store's own validators."""
        validate_query(query)
        validate_limit(limit)
        validate_choices(kinds, KINDS, "kinds")
        validate_choices(sensitivities, SENSITIVITIES, "sensitivities")
        validate_range(since, until)
        validate_tags(tags)
        words, wanted = {_fold(w) for w in terms(query)}, set(norm_tags(tags))
        out = [
            i for i in self._live()
            if (not sensitivities or i.sensitivity in sensitivities)
            and (not kinds or i.kind in kinds)
            and wanted <= set(i.tags)
            and (since is None or _when(i) >= _utc_req(since))
            and (until is None or _when(i) < _utc_req(until))
            and (not words or words & _words(i))
        ]
        out.sort(key=_when, reverse=True)
        return [Hit(i, 1.0) for i in out[:limit]]

    def delete(self, *, ids: Sequence[str] = (), source: str | None = None, query: str | None = None, everything: bool = False) -> int:
        """Exactly one selector, as the store: ids, a source, every word of a query, or all."""
        if sum([bool(ids), source is not None, query is not None, everything]) != 1:
            raise InvalidArgument("selector", "give exactly one of ids, source, query, all")
        words = {_fold(w) for w in terms(query or "", drop_stopwords=False)}
        if query is not None and not words:
            raise InvalidArgument("query", "must contain at least one word")

        def chosen(i: Item) -> bool:
            return everything or i.id in ids or i.source == source or bool(words and words <= _words(i))

        keep = [i for i in self.items if not chosen(i)]
        n, self.items = len(self.items) - len(keep), keep
        return n

    def stats(self) -> dict[str, object]:
        return {"items": len(self.items)}

    def close(self) -> None:
        pass

    def _live(self) -> list[Item]:
        now = datetime.now(UTC)
        return [i for i in self.items if i.expires_at is None or i.expires_at > now]


def _utc(value: datetime | None) -> datetime | None:
    """A naive datetime taken as UTC, as the store takes it."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _utc_req(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _when(item: Item) -> datetime:
    """An item's time, as the store orders and filters by it: its start, else its creation."""
    return item.starts_at or item.created_at


def _words(item: Item) -> set[str]:
    return {_fold(w) for w in re.findall(r"[^\W_]+", f"{item.title} {item.body}".lower())}


def _fold(word: str) -> str:
    """A word without its diacritics, as the store's index matches it (é is e)."""
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


@dataclass
class MemoryLedger:
    """A ``Ledger`` that keeps its rows in a list, held to the ledger's contract suite
    (``tests/orchestrator/test_ledger.py``, run on both): rows are stamped when recorded,
    spend counts them from the start of ``now``'s day and month, and a negative figure,
    an attempt below 1 or a hash that is not 64 hex digits is refused."""

    rows: list[dict[str, object]] = field(default_factory=list)

    def record(
        self,
        *,
        request_id: str,
        rule: str,
        target: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
        pii_kinds_redacted: Sequence[str],
        text_sha256: str,
        attempt: int,
        outcome: str,
        app_id: str = "",
    ) -> None:
        if attempt < 1:
            raise InvalidArgument("attempt", "must be >= 1")
        if not re.fullmatch(r"[0-9a-f]{64}", text_sha256):
            raise InvalidArgument("text_sha256", "64 lowercase hex digits")
        if prompt_tokens < 0 or completion_tokens < 0 or cost < 0:
            raise InvalidArgument("cost", "token counts and cost must be >= 0")
        self.rows.append(
            {"request_id": request_id, "rule": rule, "target": target, "prompt_tokens": prompt_tokens,
             "completion_tokens": completion_tokens, "cost": cost, "pii_kinds_redacted": tuple(pii_kinds_redacted),
             "text_sha256": text_sha256, "attempt": attempt, "outcome": outcome, "app_id": app_id,
             "at": datetime.now(UTC)}
        )

    def spend(self, now: datetime | None = None) -> Spend:
        """Money spent since the start of ``now``'s day and month (in ``now``'s time zone)."""
        local = datetime.now().astimezone() if now is None else (now if now.tzinfo else now.astimezone())
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)

        def since(start: datetime) -> float:
            total = 0.0
            for r in self.rows:
                at, cost = r["at"], r["cost"]
                if isinstance(at, datetime) and at >= start and isinstance(cost, (int, float)):
                    total += cost
            return total

        return Spend(today=since(day), month=since(day.replace(day=1)))

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Script:
    """One cloud call: the deltas it sends, then an answer or a failure."""

    deltas: tuple[str, ...] = ("a ", "cloud ", "answer")
    fail: str = ""  # non-empty: fail with this reason after the deltas
    retryable: bool = False
    sent: bool = True  # False: the failure is that nothing could be sent (not connected)


class ScriptedCloud:
    """A ``CloudLink`` that plays one ``Script`` per call (the last one repeats)."""

    def __init__(self, *scripts: Script, max_attempts: int = 2) -> None:
        self.scripts = list(scripts) or [Script()]
        self.sent: list[Prompt] = []
        self.params: list[SamplingParams] = []  # what each call was sent with the prompt
        self.not_sent = 0  # calls that failed before anything was sent
        self._max_attempts = max_attempts
        self.available_flag = True

    @property
    def available(self) -> bool:
        return self.available_flag

    @property
    def circuit(self) -> str:
        return "closed" if self.available_flag else "open"

    @property
    def info(self) -> CloudInfo | None:
        return CloudInfo("scripted-cloud", 8192, 0.5, 1.5, 4096)

    @property
    def max_attempts(self) -> int:
        return self._max_attempts

    async def generate(
        self, request_id: str, prompt: Prompt, params: SamplingParams, *, timeout_s: float | None = None
    ) -> AsyncGenerator[CloudEvent, None]:
        script = self.scripts[min(len(self.sent) + self.not_sent, len(self.scripts) - 1)]
        if not script.sent:
            self.not_sent += 1
            raise CloudFailure(script.fail or "cloud unreachable", started=False, retryable=script.retryable, sent=False)
        self.sent.append(prompt)
        self.params.append(params)
        for d in script.deltas:
            yield d
        if script.fail:
            raise CloudFailure(script.fail, started=bool(script.deltas), retryable=script.retryable)
        yield CloudDone(CloudUsage(len(as_text(prompt).split()), len(script.deltas), 5.0, 50.0), "stop")

    async def close(self) -> None:
        pass


def _conforms() -> None:  # pragma: no cover - checked by mypy, never run
    from edge_agent.pipeline.ports import CloudLink, ContextStore, Engine, Ledger

    _e: Engine = ScriptedEngine()
    _s: ContextStore = MemoryStore()
    _l: Ledger = MemoryLedger()
    _c: CloudLink = ScriptedCloud()
