"""Vectors for hybrid retrieval: the prompt's embedding, and the store's items embedded
in the background.

With ``[context] retrieval = "hybrid"`` the daemon embeds every stored item (its title and
the start of its body, see :func:`edge_agent.context.vectors.item_text`) with the
embedding model, newest items first, a batch at a time and only while no request is
running or waiting, so indexing delays an answer by one batch at most. Items written
through the daemon wake the indexer at once; items a ``context import`` wrote to the file
are found by the next poll. A prompt retrieves with its embedding as well as its words
once the store has vectors by the current model; until then (and for items not embedded
yet) BM25 alone ranks. The vectors are computed on the device and never leave it. A new
embedding model (``model use`` without ``[context] embedding_model``, or another
embedding file) drops the old vectors and embeds again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from common.errors import InvalidArgument, OutOfRange
from edge_agent.context.vectors import EMBED_BODY_CHARS, Vector
from edge_agent.engine.api import Embeddings
from edge_agent.pipeline.local import AsyncEngine
from edge_agent.pipeline.ports import VectorStore

log = logging.getLogger(__name__)

#: Items embedded per batch (one decode of the embedding context).
BATCH = 16
#: Seconds between looks for items written behind the daemon's back.
POLL_S = 30.0
#: Seconds to wait when the model is busy before looking again.
BUSY_WAIT_S = 0.5


class Embedder(Protocol):
    """Where vectors come from: the local model or a dedicated embedding GGUF."""

    @property
    def model_id(self) -> str:
        """Names the model the vectors come from (vectors of different ids never mix)."""
        ...

    async def embed(self, texts: Sequence[str]) -> Vector:
        """Unit-length vectors, one row per text."""
        ...

    def close(self) -> None:
        """Free what the embedder holds of its own."""
        ...


class VectorSearch:
    """The query side and the indexing side of the store's vectors."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        *,
        idle: Callable[[], bool],
        batch: int = BATCH,
        poll_s: float = POLL_S,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self._idle = idle
        self._batch = batch
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._refused: set[str] = set()  # items the model cannot embed (not retried)
        self._model_seen = ""
        self.embedded = 0  # vectors stored by this process
        self.embed_s = 0.0  # seconds spent embedding items

    async def query_vector(self, text: str) -> tuple[Vector, str] | None:
        """The prompt's vector and its model id, or None when the store has no vectors
        by the current model yet (BM25 alone then)."""
        model = self.embedder.model_id
        if model != self._model_seen or not text.strip():
            return None  # the indexer has not started on this model yet
        count = await asyncio.to_thread(self.store.vector_count, model)
        if not count:
            return None
        try:
            vec = await self.embedder.embed([text[:EMBED_BODY_CHARS]])
        except (InvalidArgument, OutOfRange):
            return None
        return vec[0], model

    def written(self) -> None:
        """Items were written: look for new ones to embed."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop indexing and free the embedder."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self.embedder.close()

    async def _run(self) -> None:
        reported = 0
        while True:
            try:
                if not await self.step():
                    if self.embedded > reported:  # a backlog done: say so once
                        log.info("context vectors: %d items embedded by %s in %.1f s",
                                 self.embedded - reported, self._model_seen, self.embed_s)
                        reported, self.embed_s = self.embedded, 0.0
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), self._poll_s)
                    except TimeoutError:
                        pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("embedding context items failed; retrying later", exc_info=True)
                await asyncio.sleep(self._poll_s)

    async def step(self) -> bool:
        """Embed one batch if the model is idle; False when there is nothing to do."""
        model = self.embedder.model_id
        if model != self._model_seen:
            dropped = await asyncio.to_thread(self.store.drop_vectors, keep_model=model)
            if dropped:
                log.info("context vectors: dropped %d by another model", dropped)
            self._model_seen, self._refused = model, set()
        if not self._idle():
            await asyncio.sleep(BUSY_WAIT_S)
            return True
        rows = await asyncio.to_thread(
            self.store.unembedded, model, self._batch + len(self._refused)
        )
        rows = [r for r in rows if r[0] not in self._refused][: self._batch]
        if not rows:
            return False
        t0 = time.perf_counter()
        vecs = await self._embed_rows([text for _, _, text in rows], [r[0] for r in rows])
        self.embed_s += time.perf_counter() - t0
        keep = [(item_id, at, vec) for (item_id, at, _), vec in zip(rows, vecs) if vec is not None]
        if model != self.embedder.model_id:
            return True  # the model changed while embedding: these are of the old one
        self.embedded += await asyncio.to_thread(self.store.put_vectors, model, keep)
        return True

    async def _embed_rows(self, texts: list[str], ids: list[str]) -> list[Vector | None]:
        try:
            return list(await self.embedder.embed(texts))
        except (InvalidArgument, OutOfRange):
            pass  # one text the model refuses: find it, embed the others
        out: list[Vector | None] = []
        for text, item_id in zip(texts, ids):
            try:
                out.append((await self.embedder.embed([text]))[0])
            except (InvalidArgument, OutOfRange) as exc:
                log.info("context item %s is not embedded: %s", item_id, exc)
                self._refused.add(item_id)
                out.append(None)
        return out


class LocalEmbedder:
    """Vectors from the model that generates (whichever is loaded, after a switch too)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def model_id(self) -> str:
        return f"{self._engine.engine.model_name}:local"

    async def embed(self, texts: Sequence[str]) -> Vector:
        return np.asarray((await self._engine.embed(texts)).vectors, dtype=np.float32)

    def close(self) -> None:
        pass  # the generating model is the service's


class ThreadEmbedder:
    """Vectors from a blocking embedding model (``EmbeddingModel``), in a worker thread;
    apps may ask it by ``name`` too (``/v1/embeddings``, ``Embed``)."""

    def __init__(self, model: _BlockingEmbedder) -> None:
        self._model = model

    @property
    def model_id(self) -> str:
        return self._model.model_id

    @property
    def name(self) -> str:
        return self._model.name

    async def embeddings(self, texts: Sequence[str]) -> Embeddings:
        return await asyncio.to_thread(self._model.embeddings, list(texts))

    async def embed(self, texts: Sequence[str]) -> Vector:
        return await asyncio.to_thread(self._model.embed, list(texts))

    def close(self) -> None:
        self._model.close()


class _BlockingEmbedder(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    def embeddings(self, texts: Sequence[str]) -> Embeddings: ...

    def embed(self, texts: Sequence[str]) -> Vector: ...

    def close(self) -> None: ...
