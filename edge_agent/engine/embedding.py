"""A GGUF used only for embeddings (``[context] embedding_model``).

An embedding model (BERT-like, e.g. all-MiniLM-L6-v2 as GGUF) is loaded beside the
generating model, with a small context of its own, and pooled as its GGUF declares. Texts
are cut to what the model was trained on (``n_ctx_train`` tokens, 512 for BERT models)
by the callers that embed stored items and prompts, and refused beyond it here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from common.errors import InvalidArgument, OutOfRange
from edge_agent.engine.api import Embeddings
from edge_agent.engine.llama_model import EMBED_CTX, LlamaModel, lc


class EmbeddingModel:
    """Unit-length vectors from a GGUF, in a context of its own; blocking calls."""

    def __init__(self, path: str | Path, *, n_threads: int | None = None) -> None:
        self.path = Path(path)
        self._model = LlamaModel(self.path, n_ctx=512, n_threads=n_threads, swa_full=False)
        trained = int(lc.llama_model_n_ctx_train(self._model._model))
        self.max_tokens = min(EMBED_CTX, trained) if trained > 0 else EMBED_CTX
        self.dimensions = self._model.n_embd
        size = self.path.stat().st_size
        self.name = self.path.stem  # what apps send as ``model`` (/v1/embeddings, Embed)
        self.model_id = f"{self.path.stem}:{size}"  # what stored vectors are tagged with

    @property
    def pooling(self) -> str:
        return self._model.pooling

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenize(text, add_bos=True))

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One vector per text; ``input[i]`` names a text that is empty or too long."""
        return self.embeddings(texts).vectors

    def embeddings(self, texts: Sequence[str]) -> Embeddings:
        """The vectors of ``texts`` with their token count and pooling."""
        inputs = []
        for i, text in enumerate(texts):
            if not text.strip():
                raise InvalidArgument(f"input[{i}]", "must not be empty")
            toks = self._model.tokenize(text, add_bos=True)
            if len(toks) > self.max_tokens:
                raise OutOfRange(f"input[{i}]", f"must be at most {self.max_tokens} tokens for this model (got {len(toks)})")
            inputs.append(toks)
        vectors = self._model.embed(inputs)
        return Embeddings(vectors, sum(len(t) for t in inputs), self._model.pooling)

    def close(self) -> None:
        self._model.close()
