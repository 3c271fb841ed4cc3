"""JSON-schema output for the local model: llama.cpp's grammar sampler as a ``Constraint``.

The schema becomes a GBNF grammar with ``common.schema_grammar`` (llama-cpp-python's
converter, bounded and cached by size); the grammar is parsed and run by llama.cpp
(``llama_sampler_init_grammar``), and only after ``common.gbnf.check_grammar`` has
bounded what llama.cpp's recursive parser and left-recursion check will do with it, so
no grammar can overflow the thread's stack. ``allowed`` applies it to a candidate
array (a few candidates for the greedy fast path, the whole vocabulary when needed)
and reads back which kept a finite logit; ``accept`` advances its parser stacks.
"""

from __future__ import annotations

import ctypes
from typing import Any

import llama_cpp as lc
import numpy as np
import numpy.typing as npt

from common.errors import InvalidArgument
from common.gbnf import check_grammar
from common.schema_grammar import schema_grammar

__all__ = ["GrammarConstraint", "schema_grammar"]

_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")], align=False)
assert _TOKEN_DATA.itemsize == ctypes.sizeof(lc.llama_token_data)


class GrammarConstraint:
    """One request's grammar state over a model's vocabulary."""

    def __init__(self, vocab: Any, n_vocab: int, gbnf: str) -> None:
        self._smpl = None
        check_grammar(gbnf)  # whatever made the grammar: llama.cpp's parser must not overflow
        self._smpl = lc.llama_sampler_init_grammar(vocab, gbnf.encode(), b"root")
        if not self._smpl:
            raise InvalidArgument("json_schema", "the grammar built from the schema does not parse")
        self._buf = np.zeros(n_vocab, dtype=_TOKEN_DATA)
        self._array = lc.llama_token_data_array(
            data=self._buf.ctypes.data_as(ctypes.POINTER(lc.llama_token_data)), size=0, selected=-1, sorted=False
        )

    def allowed(self, ids: npt.NDArray[np.int32]) -> npt.NDArray[np.bool_]:
        n = ids.size
        view = self._buf[:n]
        view["id"] = ids
        view["logit"] = 0.0
        self._array.size = n
        self._array.selected = -1
        self._array.sorted = False
        lc.llama_sampler_apply(self._smpl, ctypes.byref(self._array))
        return np.isfinite(view["logit"])

    def accept(self, token: int) -> None:
        lc.llama_sampler_accept(self._smpl, int(token))

    def close(self) -> None:
        if self._smpl:
            lc.llama_sampler_free(self._smpl)
            self._smpl = None

    def __del__(self) -> None:
        self.close()
