"""``TokenModel`` on the low-level llama.cpp API (through llama-cpp-python's ctypes).

One model, one context, ``n_seq`` sequences (1 unless the engine serves several
requests at once). ``eval`` fills a preallocated ``llama_batch`` with per-position
logits flags, runs ``llama_decode`` and returns the requested rows as a numpy view over
llama.cpp's logits buffer (no copy of the 262k-entry vocabulary). ``truncate`` removes
rejected positions from the KV cache with ``llama_memory_seq_rm``. The model itself is
sequence 0; ``seq(s)`` is the same interface on sequence ``s``, and ``eval_many`` runs
one step for several sequences at once. With several sequences each has its own KV
stream of ``n_ctx`` cells (``kv_unified`` off), filled in position order as a lone
sequence's is, so a row attends over its cells in the same order either way.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import llama_cpp as lc
import numpy as np
import numpy.typing as npt

from edge_agent.engine import llama_log

_backend_ready = False

# KV cache element types ([model] kv_type_k / kv_type_v) and flash attention modes.
KV_TYPES = {"f16": lc.GGML_TYPE_F16, "q8_0": lc.GGML_TYPE_Q8_0, "q4_0": lc.GGML_TYPE_Q4_0}
KV_BYTES = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}  # bytes per cached element
FLASH_ATTN = {
    "auto": lc.LLAMA_FLASH_ATTN_TYPE_AUTO,
    "on": lc.LLAMA_FLASH_ATTN_TYPE_ENABLED,
    "off": lc.LLAMA_FLASH_ATTN_TYPE_DISABLED,
}


def init_backend() -> None:
    global _backend_ready
    if not _backend_ready:
        llama_log.install()
        lc.llama_backend_init()
        _backend_ready = True


# A batch of at most this many tokens computes every row exactly as a lone token would
# (GGML_CPU_BATCH_INVARIANT_ROWS in packaging/runtime/patches/0002-batch-invariant-
# small-batches.patch): verify steps reproduce plain decoding bit for bit.
BATCH_INVARIANT_ROWS = 32

# Embeddings: at most this many tokens an input (and a decode), this many inputs a decode.
EMBED_CTX = 2048
EMBED_SEQS = 16
POOLING_NAMES = {lc.LLAMA_POOLING_TYPE_MEAN: "mean", lc.LLAMA_POOLING_TYPE_CLS: "cls",
                 lc.LLAMA_POOLING_TYPE_LAST: "last", lc.LLAMA_POOLING_TYPE_RANK: "rank"}


_T = TypeVar("_T")

# One thread runs every llama.cpp load and decode of this process. Each thread that
# starts OpenMP work gets a team of its own, and once the process has more OpenMP
# threads than cores, libgomp stops spinning at its barriers and sleeps instead: with
# two teams (two models on two threads, or a model and a caller that decodes itself),
# every step took about three times as long here (40 vs 14 ms). On AMX hosts a decode
# on another thread than the one that loaded the weights also took twice as long
# (35 vs 17.6 ms).
_model_thread_lock = threading.Lock()
_model_executor: ThreadPoolExecutor | None = None
_model_thread: threading.Thread | None = None


def on_model_thread(fn: Callable[[], _T]) -> _T:
    """``fn()`` on the process's llama.cpp thread (inline when already on it)."""
    global _model_executor
    if threading.current_thread() is _model_thread:
        return fn()
    with _model_thread_lock:
        if _model_executor is None:
            _model_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")

    def run() -> _T:
        global _model_thread
        _model_thread = threading.current_thread()
        return fn()

    return _model_executor.submit(run).result()


class LlamaError(RuntimeError):
    """llama.cpp refused an operation (load, decode, cache edit)."""


class KVBudgetExceeded(LlamaError):
    """The KV cache the context would allocate is over the configured budget."""

    def __init__(self, needed_mib: float, budget_mib: float, cells: int) -> None:
        super().__init__(f"a KV cache of {cells} cells needs {needed_mib:.0f} MiB (budget {budget_mib:.0f} MiB)")
        self.needed_mib, self.budget_mib, self.cells = needed_mib, budget_mib, cells


def _meta_str(model: object, key: str) -> str | None:
    buf = ctypes.create_string_buffer(128)
    n = lc.llama_model_meta_val_str(model, key.encode(), buf, len(buf))
    return buf.value.decode("utf-8", "replace") if n >= 0 else None


def kv_cache_mib_needed(model: object, cells: int, kv_types: tuple[str, str]) -> float:
    """The KV cache of ``cells`` cells, MiB, from the GGUF's metadata (a vocabulary-only
    model is enough): every layer keeps every cell (``swa_full``), K and V of each KV
    head at their lengths. 0.0 when the metadata does not say."""
    arch = _meta_str(model, "general.architecture") or ""

    def number(key: str) -> int | None:
        raw = _meta_str(model, f"{arch}.{key}")
        return int(raw) if raw and raw.isdigit() else None

    n_layer, n_head = number("block_count"), number("attention.head_count")
    n_embd = number("embedding_length")
    if not (n_layer and n_head and n_embd):
        return 0.0
    n_head_kv = number("attention.head_count_kv") or n_head
    k_len = number("attention.key_length") or n_embd // n_head
    v_len = number("attention.value_length") or n_embd // n_head
    per_cell = n_layer * n_head_kv * (k_len * KV_BYTES[kv_types[0]] + v_len * KV_BYTES[kv_types[1]])
    return cells * per_cell / 2**20


class LlamaModel:
    """A GGUF model with one llama.cpp context, driven token by token."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        kv_types: tuple[str, str] = ("f16", "f16"),
        flash_attn: str = "auto",
        swa_full: bool = True,
        kv_budget_mib: float = 0.0,
        n_seq: int = 1,
    ) -> None:
        init_backend()
        if n_seq < 1:
            raise ValueError("n_seq must be >= 1")
        self.n_seq = n_seq
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        self.path = path
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.n_batch = n_batch
        self._n_ctx_wanted = n_ctx
        self.kv_types = kv_types
        self.flash_attn = flash_attn
        # True: the sliding-window layers keep every position, so rejected drafts can be
        # removed from the cache (False is for plain decoding and for measuring it)
        self.swa_full = swa_full
        self.kv_budget_mib = kv_budget_mib  # 0: unchecked; else the KV cache may not exceed it
        self.kv_cache_mib = 0.0
        # The vocabulary stays resident (tokenizing, pieces, the chat template); the
        # weights and the context (the KV cache) are loaded by ``load`` and freed by
        # ``unload``, so an idle daemon can give their memory back.
        vparams = lc.llama_model_default_params()
        vparams.vocab_only = True
        self._vocab_model = lc.llama_model_load_from_file(str(path).encode(), vparams)
        if not self._vocab_model:
            raise LlamaError(f"could not load model {path}")
        # checked before any weight is read: the KV cache every sequence will hold
        cells = n_ctx * n_seq
        self.kv_cache_mib_needed = kv_cache_mib_needed(self._vocab_model, cells, kv_types)
        if 0 < kv_budget_mib < self.kv_cache_mib_needed:
            lc.llama_model_free(self._vocab_model)
            raise KVBudgetExceeded(self.kv_cache_mib_needed, kv_budget_mib, cells)
        self._vocab = lc.llama_model_get_vocab(self._vocab_model)
        self.vocab = self._vocab  # for samplers built on it (grammars)
        self.n_vocab = int(lc.llama_vocab_n_tokens(self._vocab))
        self._piece_cache: dict[int, bytes] = {}
        self._eog_cache: dict[int, bool] = {}
        buf = ctypes.create_string_buffer(256)
        n = lc.llama_model_desc(self._vocab_model, buf, 256)
        self.description = buf.value[: max(n, 0)].decode("utf-8", "replace")
        self.name = path.stem
        self.add_bos = bool(lc.llama_vocab_get_add_bos(self._vocab))
        self.bos_token = int(lc.llama_vocab_bos(self._vocab))
        self.eos_token = int(lc.llama_vocab_eos(self._vocab))
        template = lc.llama_model_chat_template(self._vocab_model, None)
        self.chat_template: str | None = template.decode("utf-8", "replace") if template else None
        self.buffer_types: dict[str, float] = {}
        self._model = None
        self._ctx = None
        self._ectx: object | None = None  # the embedding context, made on first use
        self.pooling = ""  # how embeddings are pooled (known once one was made)
        self._closed = False
        # Loading and decoding run on the process's llama.cpp thread whoever calls (the
        # daemon's loader, its model worker, the scheduler): see ``on_model_thread``.
        self.load()

    def _on_worker(self, fn: Callable[[], _T]) -> _T:
        return on_model_thread(fn)

    @property
    def loaded(self) -> bool:
        """Whether the weights and the KV cache are in memory."""
        return self._ctx is not None

    def load(self) -> None:
        """Load the weights and create the context (a no-op when loaded)."""
        if self._ctx is not None:
            return
        self._on_worker(self._load)

    def _load(self) -> None:
        if self._ctx is not None:
            return
        if self._closed:
            raise LlamaError("model is closed")
        mparams = lc.llama_model_default_params()
        mparams.n_gpu_layers = 0
        mark = llama_log.mark()
        model = lc.llama_model_load_from_file(str(self.path).encode(), mparams)
        # which buffer types llama.cpp chose for the weights (AMX, CPU_REPACK, CPU)
        self.buffer_types = llama_log.buffer_types(llama_log.since(mark))
        if not model:
            raise LlamaError(f"could not load model {self.path}")
        cparams = lc.llama_context_default_params()
        cparams.n_ctx = self._n_ctx_wanted * self.n_seq
        cparams.n_batch = self.n_batch
        cparams.n_ubatch = self.n_batch
        cparams.n_seq_max = self.n_seq
        if self.n_seq > 1:
            cparams.kv_unified = False
        cparams.n_threads = self.n_threads
        cparams.n_threads_batch = self.n_threads
        cparams.embeddings = False
        cparams.no_perf = True
        if hasattr(cparams, "swa_full"):
            cparams.swa_full = self.swa_full
        cparams.type_k, cparams.type_v = (KV_TYPES[t] for t in self.kv_types)
        cparams.flash_attn_type = FLASH_ATTN[self.flash_attn]
        mark = llama_log.mark()
        ctx = lc.llama_init_from_model(model, cparams)
        self.kv_cache_mib = llama_log.kv_cache_mib(llama_log.since(mark))
        if not ctx:
            lc.llama_model_free(model)
            raise LlamaError("could not create a llama.cpp context")
        self._model, self._ctx = model, ctx
        self._mem = lc.llama_get_memory(ctx)
        self.n_ctx = int(lc.llama_n_ctx_seq(ctx)) if self.n_seq > 1 else int(lc.llama_n_ctx(ctx))
        self._batch = lc.llama_batch_init(self.n_batch, 0, 1)
        self._view = np.empty((0, 0), dtype=np.float32)
        self._view_addr: int | None = None
        self._past = [0] * self.n_seq

    def unload(self) -> None:
        """Free the context, the batch and the weights; the vocabulary stays."""
        if self._ctx is None:
            return
        self._on_worker(self._unload)

    def _unload(self) -> None:
        if self._ctx is None:
            return
        if self._ectx is not None:
            lc.llama_free(self._ectx)
            self._ectx = None
        lc.llama_batch_free(self._batch)
        lc.llama_free(self._ctx)
        lc.llama_model_free(self._model)
        self._model = self._ctx = None
        self._view = np.empty((0, 0), dtype=np.float32)
        self._view_addr = None
        self._past = [0] * self.n_seq
        _trim_heap()

    def set_threads(self, n: int) -> None:
        """Run later steps on ``n`` threads (prompt batches too)."""
        if self._ctx is not None:
            lc.llama_set_n_threads(self._ctx, n, n)
        self.n_threads = n

    # -- TokenModel (sequence 0) ---------------------------------------------
    @property
    def n_past(self) -> int:
        return self._past[0] if self._ctx is not None else 0

    def truncate(self, n: int) -> None:
        self.truncate_seq(0, n)

    def eval(self, tokens: Sequence[int], want: Sequence[int]) -> npt.NDArray[np.float32]:
        n = len(tokens)
        if n == 0 or n > self.n_batch:
            raise ValueError(f"batch of {n} tokens (1..{self.n_batch} allowed)")
        wanted = list(want)
        self._decode([(0, tokens, wanted)])
        if not wanted:
            return np.empty((0, self.n_vocab), dtype=np.float32)
        return self._logits(len(wanted))

    # -- several sequences -------------------------------------------------------
    def seq(self, s: int) -> SeqModel:
        """Sequence ``s`` as a ``TokenModel``."""
        if not 0 <= s < self.n_seq:
            raise ValueError(f"sequence {s} of {self.n_seq}")
        return SeqModel(self, s)

    def past(self, s: int) -> int:
        return self._past[s] if self._ctx is not None else 0

    def truncate_seq(self, s: int, n: int) -> None:
        """Drop sequence ``s``'s cached positions ``>= n``."""
        if self._ctx is None or n >= self._past[s]:
            return
        if not lc.llama_memory_seq_rm(self._mem, s, n, -1):
            lc.llama_memory_seq_rm(self._mem, s, -1, -1)
            self._past[s] = 0
            raise LlamaError(f"could not remove cached positions from {n}")
        self._past[s] = n

    def eval_seq(self, s: int, tokens: Sequence[int], want: Sequence[int]) -> npt.NDArray[np.float32]:
        """``eval`` on sequence ``s``."""
        wanted = list(want)
        self._decode([(s, tokens, wanted)])
        if not wanted:
            return np.empty((0, self.n_vocab), dtype=np.float32)
        return self._logits(len(wanted))

    def eval_many(
        self, items: Sequence[tuple[int, Sequence[int]]], logits: Sequence[int] | None = None
    ) -> list[npt.NDArray[np.float32]]:
        """One step for several sequences: ``(sequence, tokens)`` each; logits for the
        first ``logits[i]`` rows of item ``i`` (all of them when None); those rows of
        each item, in order (views valid until the next call)."""
        total = sum(len(t) for _, t in items)
        if total == 0 or total > self.n_batch:
            raise ValueError(f"batch of {total} tokens (1..{self.n_batch} allowed)")
        want = [len(t) for _, t in items] if logits is None else [min(n, len(t)) for n, (_, t) in zip(logits, items)]
        self._decode([(s, t, range(n)) for (s, t), n in zip(items, want)])
        rows = self._logits(sum(want))
        out, at = [], 0
        for n in want:
            out.append(rows[at : at + n])
            at += n
        return out

    def _decode(self, items: Sequence[tuple[int, Sequence[int], Sequence[int]]]) -> None:
        if self._ctx is None:
            raise LlamaError("the model is unloaded (call load first)")
        batch = self._batch
        tok, pos, nseq, seq, flags = batch.token, batch.pos, batch.n_seq_id, batch.seq_id, batch.logits
        at = 0
        for s, tokens, want in items:
            base = self._past[s]
            if base + len(tokens) > self.n_ctx:
                raise LlamaError("context full")
            for i, t in enumerate(tokens):
                tok[at + i] = t
                pos[at + i] = base + i
                nseq[at + i] = 1
                seq[at + i][0] = s
                flags[at + i] = 0
            for i in want:
                flags[at + i] = 1
            at += len(tokens)
        batch.n_tokens = at
        ctx = self._ctx
        rc = self._on_worker(lambda: int(lc.llama_decode(ctx, batch)))
        if rc != 0:
            # a failed decode may leave part of the batch in the cache
            for s, _, _ in items:
                lc.llama_memory_seq_rm(self._mem, s, self._past[s], -1)
            raise LlamaError(f"llama_decode failed with status {rc}")
        for s, tokens, _ in items:
            self._past[s] += len(tokens)

    # -- embeddings ------------------------------------------------------------
    def embed(self, inputs: Sequence[Sequence[int]]) -> npt.NDArray[np.float32]:
        """One unit-length vector per token list, pooled as the GGUF declares (mean
        pooling for a model that declares none: a generative model's hidden states
        averaged over the text). Inputs of at most ``EMBED_CTX`` tokens; batched as
        several sequences of one decode, in a context of its own beside the one that
        generates (the weights are shared)."""
        for i, toks in enumerate(inputs):
            if not 0 < len(toks) <= EMBED_CTX:
                raise ValueError(f"input {i}: 1..{EMBED_CTX} tokens (got {len(toks)})")
        return self._on_worker(lambda: self._embed(inputs))

    def _embed(self, inputs: Sequence[Sequence[int]]) -> npt.NDArray[np.float32]:
        self._load()
        ctx = self._embedding_context()
        n_embd = int(lc.llama_model_n_embd(self._model))
        out = np.empty((len(inputs), n_embd), dtype=np.float32)
        batch = lc.llama_batch_init(EMBED_CTX, 0, 1)
        try:
            start = 0
            while start < len(inputs):
                group: list[Sequence[int]] = []
                total = 0
                while start + len(group) < len(inputs) and len(group) < EMBED_SEQS:
                    n = len(inputs[start + len(group)])
                    if group and total + n > EMBED_CTX:
                        break
                    group.append(inputs[start + len(group)])
                    total += n
                at = 0
                for s, toks in enumerate(group):
                    for i, t in enumerate(toks):
                        batch.token[at], batch.pos[at], batch.n_seq_id[at] = t, i, 1
                        batch.seq_id[at][0], batch.logits[at] = s, 1
                        at += 1
                batch.n_tokens = at
                lc.llama_memory_clear(lc.llama_get_memory(ctx), True)
                rc = int(lc.llama_decode(ctx, batch))
                if rc != 0:
                    raise LlamaError(f"llama_decode (embeddings) failed with status {rc}")
                for s in range(len(group)):
                    ptr = lc.llama_get_embeddings_seq(ctx, s)
                    if not ptr:
                        raise LlamaError("no pooled embedding for a sequence")
                    out[start + s] = np.ctypeslib.as_array(ptr, shape=(n_embd,))
                start += len(group)
        finally:
            lc.llama_batch_free(batch)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    def _embedding_context(self) -> object:
        if self._ectx is not None:
            return self._ectx

        def make(pooling: int) -> object:
            cp = lc.llama_context_default_params()
            cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max = EMBED_CTX, EMBED_CTX, EMBED_CTX, EMBED_SEQS
            cp.n_threads = cp.n_threads_batch = self.n_threads
            cp.embeddings, cp.pooling_type, cp.no_perf = True, pooling, True
            cp.kv_unified = True
            ctx = lc.llama_init_from_model(self._model, cp)
            if not ctx:
                raise LlamaError("could not create the embedding context")
            return ctx
        ctx = make(lc.LLAMA_POOLING_TYPE_UNSPECIFIED)
        declared = int(lc.llama_pooling_type(ctx))
        if declared == lc.LLAMA_POOLING_TYPE_NONE:  # a generative model: mean pooling
            lc.llama_free(ctx)
            ctx, declared = make(lc.LLAMA_POOLING_TYPE_MEAN), lc.LLAMA_POOLING_TYPE_MEAN
        self._ectx, self.pooling = ctx, POOLING_NAMES.get(declared, str(declared))
        return ctx

    @property
    def n_embd(self) -> int:
        return int(lc.llama_model_n_embd(self._model)) if self._model is not None else 0

    def _logits(self, rows: int) -> npt.NDArray[np.float32]:
        """The first ``rows`` rows of the output logits, as a view (cached per buffer)."""
        addr = ctypes.cast(lc.llama_get_logits(self._ctx), ctypes.c_void_p).value
        if addr is None:
            raise LlamaError("no logits")
        if addr != self._view_addr or rows > self._view.shape[0]:
            buf = (ctypes.c_float * (rows * self.n_vocab)).from_address(addr)
            self._view = np.frombuffer(memoryview(buf), dtype=np.float32).reshape(rows, self.n_vocab)
            self._view_addr = addr
        return self._view[:rows]

    def is_eog(self, token: int) -> bool:
        hit = self._eog_cache.get(token)
        if hit is None:
            hit = self._eog_cache[token] = bool(lc.llama_vocab_is_eog(self._vocab, token))
        return hit

    # -- text ------------------------------------------------------------------
    def tokenize(self, text: str, *, add_bos: bool, special: bool = True) -> list[int]:
        """Token ids of ``text``; ``add_bos`` adds the BOS token if the model wants one."""
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (lc.llama_token * cap)()
        n = lc.llama_tokenize(self._vocab, data, len(data), buf, cap, add_bos, special)
        if n < 0:
            cap = -n
            buf = (lc.llama_token * cap)()
            n = lc.llama_tokenize(self._vocab, data, len(data), buf, cap, add_bos, special)
        if n < 0:
            raise LlamaError("tokenization failed")
        return list(buf[:n])

    def piece(self, token: int) -> bytes:
        """The bytes a token stands for (special tokens render as empty)."""
        hit = self._piece_cache.get(token)
        if hit is None:
            buf = ctypes.create_string_buffer(64)
            n = lc.llama_token_to_piece(self._vocab, token, buf, 64, 0, False)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = lc.llama_token_to_piece(self._vocab, token, buf, -n, 0, False)
            hit = self._piece_cache[token] = buf.raw[: max(n, 0)]
        return hit

    def detokenize(self, tokens: Sequence[int]) -> bytes:
        """Concatenated bytes of ``tokens``."""
        return b"".join(self.piece(t) for t in tokens)

    def close(self) -> None:
        """Free the context, the batch and the model."""
        if self._closed:
            return
        self.unload()
        self._closed = True
        lc.llama_model_free(self._vocab_model)


class SeqModel:
    """One sequence of a ``LlamaModel`` as a ``TokenModel``."""

    def __init__(self, base: LlamaModel, s: int) -> None:
        self.base, self.s = base, s
        self.n_vocab = base.n_vocab
        self.n_ctx = base.n_ctx

    @property
    def n_past(self) -> int:
        return self.base.past(self.s)

    def truncate(self, n: int) -> None:
        self.base.truncate_seq(self.s, n)

    def eval(self, tokens: Sequence[int], want: Sequence[int]) -> npt.NDArray[np.float32]:
        return self.base.eval_seq(self.s, tokens, want)

    def is_eog(self, token: int) -> bool:
        return self.base.is_eog(token)


def _trim_heap() -> None:
    """Give freed heap pages back to the system (glibc keeps them otherwise: about 40
    MiB of the KV cache and compute buffers here)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
