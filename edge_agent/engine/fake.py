"""A tiny deterministic numpy language model behind the ``TokenModel`` interface.

The logits at a position are a fixed random function of the last ``order`` tokens (an
n-gram table drawn from a seeded generator, scaled by ``sharpness``), so the model is
cheap, reproducible and has a known distribution for every context. It keeps a token
list as its "KV cache" and checks that callers only append and truncate, as with
llama.cpp. Used by the exactness tests of the decoder and the verifiers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


class FakeModel:
    """N-gram numpy LM with a vocabulary of ``n_vocab`` tokens; token 0 ends generation."""

    def __init__(
        self,
        n_vocab: int = 16,
        order: int = 2,
        seed: int = 0,
        sharpness: float = 3.0,
        n_ctx: int = 4096,
        eog_token: int | None = 0,
    ) -> None:
        self.n_vocab = n_vocab
        self.n_ctx = n_ctx
        self.order = order
        self.eog_token = eog_token
        rng = np.random.default_rng(seed)
        self._table = (rng.standard_normal((n_vocab**order, n_vocab)) * sharpness).astype(
            np.float32
        )
        self._tokens: list[int] = []
        self.eval_calls = 0
        self.evaluated_positions = 0
        self.logit_rows = 0

    @property
    def n_past(self) -> int:
        return len(self._tokens)

    @property
    def tokens(self) -> list[int]:
        """The tokens currently in the cache."""
        return list(self._tokens)

    def truncate(self, n: int) -> None:
        if n < 0 or n > len(self._tokens):
            raise ValueError(f"cannot truncate {len(self._tokens)} cached tokens to {n}")
        del self._tokens[n:]

    def logits_for(self, context: Sequence[int]) -> npt.NDArray[np.float32]:
        """Logits of the token that follows ``context`` (pure function)."""
        key = 0
        tail = list(context[-self.order :])
        tail = [0] * (self.order - len(tail)) + tail
        for t in tail:
            key = key * self.n_vocab + int(t)
        return self._table[key]

    def eval(self, tokens: Sequence[int], want: Sequence[int]) -> npt.NDArray[np.float32]:
        toks = [int(t) for t in tokens]
        if not toks:
            raise ValueError("empty batch")
        if any(t < 0 or t >= self.n_vocab for t in toks):
            raise ValueError("token out of range")
        if len(self._tokens) + len(toks) > self.n_ctx:
            raise RuntimeError("context full")
        base = len(self._tokens)
        self._tokens.extend(toks)
        idx = list(want)
        self.eval_calls += 1
        self.evaluated_positions += len(toks)
        self.logit_rows += len(idx)
        out = np.empty((len(idx), self.n_vocab), dtype=np.float32)
        for j, i in enumerate(idx):
            out[j] = self.logits_for(self._tokens[: base + i + 1])
        return out

    def is_eog(self, token: int) -> bool:
        return self.eog_token is not None and token == self.eog_token

    def probs(self, context: Sequence[int], temperature: float) -> npt.NDArray[np.float64]:
        """Exact next-token distribution at ``temperature`` (no top-k/top-p)."""
        z = self.logits_for(context).astype(np.float64) / temperature
        z -= z.max()
        p = np.exp(z)
        return p / p.sum()
