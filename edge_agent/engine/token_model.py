"""The token-level model interface the decoder runs on.

``LlamaModel`` (llama.cpp) and ``FakeModel`` (numpy, for tests) both implement it, so
the decode loop, the verifier and the drafters are tested without llama.cpp.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt


class TokenModel(Protocol):
    """A causal LM with a KV cache holding positions ``0 .. n_past - 1``."""

    n_vocab: int
    n_ctx: int

    @property
    def n_past(self) -> int:
        """Positions held in the KV cache."""
        ...

    def truncate(self, n: int) -> None:
        """Drop every cached position ``>= n``."""
        ...

    def eval(self, tokens: Sequence[int], want: Sequence[int]) -> npt.NDArray[np.float32]:
        """Append ``tokens`` at positions ``n_past ..`` and return logits.

        Row ``j`` of the result holds the logits after ``tokens[want[j]]`` (the
        distribution of the token following it). ``want`` is increasing. The array may
        be a view into the model's buffer, valid until the next call.
        """
        ...

    def is_eog(self, token: int) -> bool:
        """True for end-of-generation tokens."""
        ...
