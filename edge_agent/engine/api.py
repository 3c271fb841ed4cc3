"""The engine contract: what the request pipeline needs from a local model.

Everything the service layer knows about decoding goes through these types, so the
llama.cpp engine, the speculative decoder and the fake model used in unit tests are
interchangeable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from common.chat import Message


@dataclass(frozen=True)
class SamplingParams:
    """How to decode. ``temperature == 0`` means greedy."""

    max_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = no top-k cut
    seed: int | None = None
    stop: tuple[str, ...] = ()
    json_schema: str = ""  # a JSON schema (JSON text): the answer is one value valid against it


@dataclass(frozen=True)
class EngineUsage:
    """Figures of one generation, reported back to the client and the estimators."""

    prompt_tokens: int
    completion_tokens: int
    ttft_ms: float  # request start -> first token decoded
    total_ms: float
    tokens_per_s: float  # completion tokens / decode time after the first token
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    verify_steps: int = 0  # batched verification forward passes
    reused_prefix_tokens: int = 0
    mean_accepted_per_step: float = 0.0  # accepted_tokens / verify_steps (0 without drafting)
    energy_j: float = 0.0  # energy of the generation (see engine.energy)
    energy_source: str = ""  # "rapl" (measured) or "estimate" (CPU time x watts per core)


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer; never splits a UTF-8 character."""

    text: str
    # Model probabilities of the tokens behind this piece, while ``token_probs`` asked
    # for them (the first N tokens of the answer); empty otherwise.
    token_probs: tuple[float, ...] = ()


@dataclass(frozen=True)
class Finished:
    """Last event of every generation."""

    usage: EngineUsage
    finish_reason: str  # "stop" | "length" | "cancelled"


EngineEvent = TextDelta | Finished


class Engine(Protocol):
    """A local model that streams text for a prompt."""

    model_name: str
    n_ctx: int

    def count_tokens(self, text: str) -> int:
        """Number of model tokens in ``text`` (no BOS)."""
        ...

    def chat_prompt(self, messages: Sequence[Message]) -> str:
        """A conversation as this model's prompt (its chat template, or the plain
        format of ``common.chat``), ending where the assistant's answer begins."""
        ...

    def chat_stops(self) -> tuple[str, ...]:
        """Stop sequences that end an answer to ``chat_prompt`` (the plain format's next
        turn; none with a template, whose end-of-turn token ends it)."""
        ...

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
        """Stream ``TextDelta`` events, then exactly one ``Finished``. ``app`` and
        ``background`` order the requests an engine serving several at once admits
        (interactive first; a per-app limit); they never change an answer.

        ``draft_texts`` are extra texts (retrieved personal context, past answers)
        a speculative engine may draft from. ``cancelled`` is polled between decode
        steps; when it returns True the generation ends with reason "cancelled".
        ``token_probs`` = N asks for the model probability of each of the first N
        generated tokens, attached to the deltas (for the quality cascade).
        Blocking: the caller runs it in a worker thread.
        """
        ...

    def forget_drafts(self) -> None:
        """Drop any texts kept for drafting (called after personal data is forgotten)."""
        ...

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory (``generate`` loads them when not)."""
        ...

    def load(self) -> None:
        """Load the weights (a no-op when loaded). Blocking."""
        ...

    def unload(self) -> None:
        """Free the weights and the KV cache; tokenizing and the chat template keep
        working. Blocking; never while ``generate`` runs."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...
