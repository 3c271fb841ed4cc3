"""The engine contract: what the request pipeline needs from a local model.

Everything the service layer knows about decoding goes through these types, so the
llama.cpp engine, the speculative decoder and the fake model used in unit tests are
interchangeable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

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
class Usage:
    """The figures of one answer: made by the engine (or the cloud runner), completed by
    the pipeline (queue wait, cost, the request's own clock) and written as it is to both
    wire formats (gRPC ``Usage``, the HTTP door's ``usage`` and ``edgecloud``). A figure
    added here reaches every door."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: float = 0.0  # request start -> first token
    total_ms: float = 0.0
    tokens_per_s: float = 0.0  # completion tokens / decode time after the first token
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    verify_steps: int = 0  # batched verification forward passes
    reused_prefix_tokens: int = 0
    energy_j: float = 0.0  # energy of the local generation (see engine.energy)
    energy_source: str = ""  # "rapl" (measured) or "estimate" (CPU time x watts per core)
    queue_wait_ms: float = 0.0  # waiting for the model's slot
    cost: float = 0.0  # what the cloud calls cost

    @property
    def mean_accepted_per_step(self) -> float:
        """Accepted drafted tokens per verification step (0 without drafting)."""
        return self.accepted_tokens / self.verify_steps if self.verify_steps else 0.0

    def then(self, later: Usage) -> Usage:
        """The figures of this answer continued by ``later`` (a partial cloud answer the
        local model finished): counts and costs add up, speed is the later part's."""
        return replace(
            later,
            prompt_tokens=max(self.prompt_tokens, later.prompt_tokens),
            completion_tokens=self.completion_tokens + later.completion_tokens,
            drafted_tokens=self.drafted_tokens + later.drafted_tokens,
            accepted_tokens=self.accepted_tokens + later.accepted_tokens,
            verify_steps=self.verify_steps + later.verify_steps,
            queue_wait_ms=self.queue_wait_ms + later.queue_wait_ms,
            cost=self.cost + later.cost,
            energy_j=self.energy_j + later.energy_j,
            energy_source=later.energy_source or self.energy_source,
        )


@dataclass(frozen=True)
class Embeddings:
    """Unit-length vectors of some texts, in their order."""

    vectors: npt.NDArray[np.float32]  # (texts, dimensions)
    prompt_tokens: int  # tokens of all the texts
    pooling: str  # how a text's token states became one vector ("mean", "cls", "last")


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

    usage: Usage
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

    def embed(self, texts: Sequence[str]) -> Embeddings:
        """One vector per text, from this model. Blocking; loads the weights if needed.
        A text that is empty or longer than the model embeds raises ``InvalidArgument`` /
        ``OutOfRange`` naming ``input[i]``."""
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
