"""Fakes behind the ports, for tests that run the whole request path in milliseconds
(the way httpx ships ``MockTransport`` beside its real transport).

* ``ScriptedEngine``: answers with a fixed text, word by word, with chosen token
  probabilities; can block mid-answer until released, and counts cancellations;
* ``MemoryStore``: the context store as a list of items, words matched naively;
* ``ScriptedCloud``: a cloud link that answers, fails before any text, or fails after
  some deltas, as scripted per call; it records every prompt it was sent.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from common.chat import PLAIN_STOPS, Message, Prompt, as_text, render_plain
from edge_agent.context.api import Hit, Item, NewItem, Retrieved
from edge_agent.engine.api import EngineEvent, EngineUsage, Finished, SamplingParams, TextDelta
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
        yield Finished(EngineUsage(self.count_tokens(prompt), n, ms, ms, 100.0), finish)

    def forget_drafts(self) -> None:
        self.forgot += 1

    def close(self) -> None:
        pass


@dataclass
class MemoryStore:
    """A ``ContextStore`` over a list; ``retrieve`` returns items sharing a word."""

    items: list[Item] = field(default_factory=list)
    contacts: list[str] = field(default_factory=list)

    def retrieve(self, query: str, *, token_budget: int, count_tokens: Callable[[str], int]) -> Retrieved:
        words = {w.lower().strip("?.,!") for w in query.split()}
        found = tuple(i for i in self.items if words & {w.lower().strip("?.,!") for w in i.body.split()})
        text = "\n".join(f"[{i.kind}] {i.body}" for i in found)
        return Retrieved(text, found, count_tokens(text))

    def contact_names(self) -> list[str]:
        return list(self.contacts)

    def put(self, items: Sequence[NewItem]) -> list[str]:
        now = datetime.now(UTC)
        out = []
        for n in items:
            item = Item(f"i{len(self.items)}", n.kind, n.body, n.title, n.source, n.source_id, n.participants, n.tags, n.sensitivity, now)
            self.items.append(item)
            out.append(item.id)
        return out

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
        """Items holding any word of ``query`` (as the real store's search), filtered."""
        words = set(re.findall(r"[^\W_]+", query.lower()))
        out = [
            Hit(i, 1.0)
            for i in self.items
            if (not sensitivities or i.sensitivity in sensitivities)
            and (not kinds or i.kind in kinds)
            and words & set(re.findall(r"[^\W_]+", f"{i.title} {i.body}".lower()))
        ]
        return out[:limit]

    def delete(self, *, ids: Sequence[str] = (), source: str | None = None, query: str | None = None, everything: bool = False) -> int:
        keep = [i for i in self.items if not (everything or i.id in ids or i.source == source or (query and query in i.body))]
        n, self.items = len(self.items) - len(keep), keep
        return n

    def stats(self) -> dict[str, object]:
        return {"items": len(self.items)}

    def close(self) -> None:
        pass


@dataclass
class MemoryLedger:
    """A ``Ledger`` that keeps its rows in a list."""

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
        self.rows.append(
            {"request_id": request_id, "rule": rule, "target": target, "prompt_tokens": prompt_tokens,
             "completion_tokens": completion_tokens, "cost": cost, "pii_kinds_redacted": tuple(pii_kinds_redacted),
             "text_sha256": text_sha256, "attempt": attempt, "outcome": outcome, "app_id": app_id}
        )

    def spend(self, now: datetime | None = None) -> Spend:
        cost = sum(float(r["cost"]) for r in self.rows if isinstance(r["cost"], (int, float)))
        return Spend(today=cost, month=cost)

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
