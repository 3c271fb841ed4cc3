"""Check a GGUF made by bert_gguf.py against a numpy BERT forward pass.

For a few sentences it compares llama.cpp's tokens with a minimal WordPiece
tokenizer over vocab.txt, embeds them with llama.cpp (``llama_cpp.Llama``,
``embedding=True``) and with a numpy reference computed straight from
``model.safetensors`` (embeddings, encoder layers, mean pooling, L2 norm), and
requires cosine > 0.999 per sentence. It also checks that a paraphrase pair
scores above every unrelated pair. Exits non-zero on any failure.

Usage::

    python scripts/bert_gguf_check.py MODEL_DIR MODEL.gguf [--verbose]

Needs numpy and llama-cpp-python.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import unicodedata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bert_gguf import read_safetensors, resolve_model_dir

SENTENCES = [
    "When is my dentist appointment?",
    "Dental checkup on Tuesday at 3pm",
    "the quick brown fox jumps over the lazy dog.",
    "How do I bake sourdough bread at home?",
    "Stock markets fell sharply after the announcement.",
]
PARAPHRASE = (0, 1)


def wordpiece(text: str, vocab: dict[str, int], cls: int, sep: int, unk: int) -> list[int]:
    """Uncased BERT tokenization of plain text: split on spaces and punctuation, greedy pieces."""
    words: list[str] = []
    for chunk in text.lower().split():
        word = ""
        for ch in chunk:
            if unicodedata.category(ch).startswith("P") or (ord(ch) < 0x7F and not ch.isalnum()):
                words += [w for w in (word, ch) if w]
                word = ""
            else:
                word += ch
        if word:
            words.append(word)
    ids = [cls]
    for word in words:
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start and (("##" if start else "") + word[start:end]) not in vocab:
                end -= 1
            if end == start:
                pieces = [unk]
                break
            pieces.append(vocab[("##" if start else "") + word[start:end]])
            start = end
        ids += pieces
    return ids + [sep]


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.vectorize(math.erf)


def bert_embed(ids: list[int], t: dict[str, np.ndarray], cfg: dict) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence embedding (HF BertModel semantics, exact GELU)."""
    eps = cfg.get("layer_norm_eps", 1e-12)
    n_head = cfg["num_attention_heads"]
    p = "bert." if "bert.embeddings.word_embeddings.weight" in t else ""

    def lin(x: np.ndarray, name: str) -> np.ndarray:
        return x @ t[f"{name}.weight"].astype(np.float64).T + t[f"{name}.bias"]

    n = len(ids)
    x = (
        t[f"{p}embeddings.word_embeddings.weight"][ids]
        + t[f"{p}embeddings.position_embeddings.weight"][:n]
        + t[f"{p}embeddings.token_type_embeddings.weight"][0]
    ).astype(np.float64)
    x = layer_norm(x, t[f"{p}embeddings.LayerNorm.weight"], t[f"{p}embeddings.LayerNorm.bias"], eps)
    for i in range(cfg["num_hidden_layers"]):
        L = f"{p}encoder.layer.{i}"
        q, k, v = (
            lin(x, f"{L}.attention.self.{m}").reshape(n, n_head, -1).transpose(1, 0, 2)
            for m in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1])
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(n, -1)
        a = f"{L}.attention.output"
        x = layer_norm(
            x + lin(ctx, f"{a}.dense"), t[f"{a}.LayerNorm.weight"], t[f"{a}.LayerNorm.bias"], eps
        )
        h = lin(x, f"{L}.intermediate.dense")
        h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))
        x = layer_norm(
            x + lin(h, f"{L}.output.dense"),
            t[f"{L}.output.LayerNorm.weight"],
            t[f"{L}.output.LayerNorm.bias"],
            eps,
        )
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="model directory or installed package name")
    ap.add_argument("gguf", type=Path)
    ap.add_argument("--verbose", action="store_true", help="show llama.cpp's load log")
    args = ap.parse_args()

    from llama_cpp import Llama

    model_dir = resolve_model_dir(args.model)
    cfg = json.loads((model_dir / "config.json").read_text())
    tensors = read_safetensors(model_dir / "model.safetensors")
    lines = (model_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    vocab = {tok: i for i, tok in enumerate(lines)}
    llm = Llama(model_path=str(args.gguf), embedding=True, n_threads=1, verbose=args.verbose)

    ok = True
    ref: list[np.ndarray] = []
    got: list[np.ndarray] = []
    for text in SENTENCES:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        want = wordpiece(text, vocab, vocab["[CLS]"], vocab["[SEP]"], vocab["[UNK]"])
        if ids != want:
            print(f"TOKENS DIFFER for {text!r}: llama.cpp {ids} vs reference {want}")
            ok = False
        e_ref = bert_embed(want, tensors, cfg)
        e_got = np.asarray(llm.embed(text), dtype=np.float64)
        e_got /= np.linalg.norm(e_got)
        cos = float(e_ref @ e_got)
        ok &= cos > 0.999
        print(f"cos={cos:.6f} {'ok  ' if cos > 0.999 else 'FAIL'} n_tok={len(ids):2d} {text!r}")
        ref.append(e_ref)
        got.append(e_got)

    sims = np.stack(got) @ np.stack(got).T
    a, b = PARAPHRASE
    para = sims[a, b]
    n = len(SENTENCES)
    others = [(i, j) for i in range(n) for j in range(i + 1, n) if (i, j) != PARAPHRASE]
    worst = max(others, key=lambda ij: sims[ij])
    print(f"paraphrase sim={para:.4f}; highest unrelated sim={sims[worst]:.4f} {worst}")
    ok &= bool(all(para > sims[ij] for ij in others))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
