"""What a GGUF file is, read by the runtime itself (llama.cpp's loader, vocabulary only:
no weights are read), plus the buffer types its weights get on this host when asked."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

import llama_cpp as lc

from common.errors import InvalidArgument
from edge_agent.engine import llama_log
from edge_agent.engine.llama_model import init_backend

# llama.cpp's ``llama_ftype`` values (``general.file_type``) by name.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE",
}


@dataclass(frozen=True)
class ModelInfo:
    """A GGUF file's description."""

    path: Path
    size_bytes: int
    architecture: str
    size_label: str  # "270M"
    quantization: str  # llama.cpp's file type, "Q4_K_M"
    context_length: int  # trained context
    chat_template: bool
    parameters: int
    buffer_types_mib: dict[str, float] | None = None  # only with weights=True


def _meta(model: object, key: str) -> str:
    buf = ctypes.create_string_buffer(512)
    n = lc.llama_model_meta_val_str(model, key.encode(), buf, 512)
    return buf.value.decode("utf-8", "replace") if n >= 0 else ""


def read(path: Path, *, weights: bool = False) -> ModelInfo:
    """The file's metadata; ``weights`` also loads the weights once to learn their
    buffer types (AMX, CPU_REPACK, CPU_Mapped). InvalidArgument names the file when
    llama.cpp cannot read it."""
    init_backend()
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise InvalidArgument("path", f"{path} is not a GGUF file (bad magic)")
    params = lc.llama_model_default_params()
    params.vocab_only = True
    mark = llama_log.mark()
    with llama_log.quiet():  # a failure is this one error, not llama.cpp's ERROR lines first
        model = lc.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        cause = llama_log.failure(llama_log.since(mark))
        raise InvalidArgument("path", f"{path}: llama.cpp could not read this GGUF file" + (f" ({cause})" if cause else ""))
    try:
        arch = _meta(model, "general.architecture") or "?"
        ctx = _meta(model, f"{arch}.context_length")
        ftype = _meta(model, "general.file_type")
        info = ModelInfo(
            path=path,
            size_bytes=path.stat().st_size,
            architecture=arch,
            size_label=_meta(model, "general.size_label") or "?",
            quantization=FILE_TYPES.get(int(ftype), f"type {ftype}") if ftype.isdigit() else "?",
            context_length=int(ctx) if ctx.isdigit() else 0,
            chat_template=bool(lc.llama_model_chat_template(model, None)),
            parameters=int(lc.llama_model_n_params(model)),
        )
    finally:
        lc.llama_model_free(model)
    if not weights:
        return info
    full = lc.llama_model_default_params()
    full.n_gpu_layers = 0
    mark = llama_log.mark()
    with llama_log.quiet():
        model = lc.llama_model_load_from_file(str(path).encode(), full)
    lines = llama_log.since(mark)
    if not model:
        cause = llama_log.failure(lines)
        raise InvalidArgument("path", f"{path}: llama.cpp could not load the weights" + (f" ({cause})" if cause else ""))
    lc.llama_model_free(model)
    return ModelInfo(**{**info.__dict__, "buffer_types_mib": llama_log.buffer_types(lines)})
