"""Backends of the cloud service: the shared types and the GGUF model run in-process.

A backend streams ``str`` deltas and ends with one ``Done``; it fails with a
``BackendError`` (whose subclass decides the gRPC status). The OpenAI-compatible
backend lives in ``openai_compat.py``, fault injection in ``faults.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeAlias, cast

from common.bridge import iterate_in_thread
from common.chat import Message, Prompt, render_plain
from common.errors import InvalidArgument, Unavailable
from common.gbnf import check_grammar
from common.params import CheckedParams
from common.schema_grammar import schema_grammar

# Decoding parameters, already validated: the shared wire-level check's result.
Params: TypeAlias = CheckedParams


@dataclass(frozen=True)
class Done:
    """End of a backend stream."""

    prompt_tokens: int
    completion_tokens: int
    ttft_ms: float
    total_ms: float
    finish_reason: str


@dataclass(frozen=True)
class BackendInfo:
    model: str
    context_length: int
    backend: str


class BackendError(Unavailable):
    """The backend cannot serve now (UNAVAILABLE); the message is safe to show.

    An overloaded or rate-limiting backend raises ``common.errors.ResourceExhausted``
    and one that refuses the request as invalid ``common.errors.Rejected``: the one
    error table (each class's ``common.errors.Wire``) maps all three."""


Event = str | Done


class Backend(Protocol):
    def info(self) -> BackendInfo: ...

    def generate(self, prompt: Prompt, params: Params) -> AsyncGenerator[Event, None]:
        """Text pieces then one Done, for a prompt or a conversation."""
        ...

    async def aclose(self) -> None: ...




class LlamaBackend:
    """A GGUF model through llama-cpp-python, one request at a time."""

    def __init__(self, model_path: Path, *, n_ctx: int = 4096, n_threads: int | None = None) -> None:
        from llama_cpp import Llama

        self._path = model_path
        self._llm = Llama(
            model_path=str(model_path), n_ctx=n_ctx, n_threads=n_threads, verbose=False
        )
        self._lock = asyncio.Lock()

    def info(self) -> BackendInfo:
        return BackendInfo(model=self._path.name, context_length=self._llm.n_ctx(), backend="llama")

    async def generate(self, prompt: Prompt, params: Params) -> AsyncGenerator[Event, None]:
        text = prompt if isinstance(prompt, str) else self._chat_prompt(prompt)
        async with self._lock:
            try:
                async for event in iterate_in_thread(None, lambda cancelled: self._run(text, params, cancelled)):
                    yield event
            except (BackendError, InvalidArgument):
                raise
            except Exception as exc:
                raise BackendError(f"model failed: {type(exc).__name__}") from exc

    def _chat_prompt(self, messages: tuple[Message, ...]) -> str:
        """The model's chat template (from the GGUF), or the plain format without one."""
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            return render_plain(messages)
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        formatter = Jinja2ChatFormatter(template=template, bos_token="", eos_token="", add_generation_prompt=True)
        turns: list[Any] = [{"role": m.role, "content": m.content} for m in messages]
        return str(formatter(messages=turns).prompt)

    def _run(self, prompt: str, params: Params, cancelled: Callable[[], bool]) -> Iterator[Event]:
        """The blocking generation, in a worker thread: text pieces, then one Done."""
        t0 = time.perf_counter()
        ttft = 0.0
        n = 0
        finish = "stop"
        prompt_tokens = len(self._llm.tokenize(prompt.encode(), add_bos=True))
        stream = cast(Any, self._llm.create_completion(
            prompt,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p or 1.0,
            top_k=params.top_k,
            seed=params.seed,
            stop=list(params.stop) or None,
            grammar=_grammar(params.json_schema, self._llm),
            stream=True,
        ))
        for chunk in stream:
            if cancelled():
                finish = "cancelled"
                break
            choice = chunk["choices"][0]
            text = choice["text"]
            if text or not choice.get("finish_reason"):  # the closing chunk is no token
                n += 1
            if n == 1 and not ttft:
                ttft = (time.perf_counter() - t0) * 1000
            if text:
                yield text
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        yield Done(prompt_tokens, n, ttft, (time.perf_counter() - t0) * 1000, finish)

    async def aclose(self) -> None:
        async with self._lock:
            self._llm.close()


def _grammar(json_schema: str, llm: Any) -> Any:
    """llama-cpp-python's grammar object for a JSON schema (None for free text): the
    bounded, checked and cached grammar of ``common.schema_grammar`` (the same as the
    edge agent's), checked again by ``common.gbnf`` and then parsed once by llama.cpp
    here: llama-cpp-python adds the grammar sampler to its chain without looking, and a
    grammar llama.cpp refused would be a null sampler there (a crash at the first token),
    so a refusal must be seen first and become INVALID_ARGUMENT."""
    if not json_schema:
        return None
    import llama_cpp as lc
    from llama_cpp.llama_grammar import LlamaGrammar

    gbnf = schema_grammar(json_schema, "params.json_schema")
    check_grammar(gbnf, "params.json_schema")
    sampler = lc.llama_sampler_init_grammar(llm._model.vocab, gbnf.encode(), b"root")
    if not sampler:
        raise InvalidArgument("params.json_schema", "the grammar built from the schema does not parse")
    lc.llama_sampler_free(sampler)
    return LlamaGrammar.from_string(gbnf, verbose=False)
