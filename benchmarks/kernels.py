"""Kernel benchmark: what each weight matrix of the model costs per step, by rows.

    python benchmarks/kernels.py --json benchmarks/results/kernels.json [--repeats 15]
    LLAMA_CPP_LIB_PATH=<other build>/bin python benchmarks/kernels.py ...   # another build

For every distinct (type, shape) among the GGUF's matrices, the weights are placed in
the buffer type model loading would choose on this host (the first extra buffer type
whose ``supports_op`` takes the product, else ``CPU``), and one ``mul_mat`` of 1, 2, 5,
9 and 17 rows (a plain step and verify steps of k = 1, 4, 8, 16 drafted tokens) is
timed through the runtime's own ggml (``edge_agent/runtime/kernels.py``), 2 threads,
median of ``repeats`` after a warm-up, rows interleaved. Each matrix's time is weighted
by how many the model has, so the table shows where a step's time goes and what an
extra verified row costs per kernel. Model-free apart from reading the tensor list.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import struct
import sys
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROWS = (1, 2, 5, 9, 17)
_GGML_TYPE_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 10: "Q2_K",
                    11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 20: "IQ4_NL", 23: "IQ4_XS", 30: "BF16"}


def _read_str(f: BinaryIO) -> str:
    (n,) = struct.unpack("<Q", f.read(8))
    return f.read(n).decode("utf-8", "replace")


def _skip_value(f: BinaryIO, t: int) -> None:
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    if t == 8:
        _read_str(f)
    elif t == 9:
        (et,) = struct.unpack("<I", f.read(4))
        (n,) = struct.unpack("<Q", f.read(8))
        if et in sizes:
            f.seek(sizes[et] * n, 1)
        else:
            for _ in range(n):
                _skip_value(f, et)
    else:
        f.seek(sizes[t], 1)


def matrices(path: Path) -> list[tuple[str, str, int, int]]:
    """``(name, type, n_out, k_in)`` of every 2-D tensor in a GGUF file (v2/v3 header)."""
    out = []
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise SystemExit(f"{path}: not a GGUF file")
        _version, n_tensors, n_kv = struct.unpack("<IQQ", f.read(20))
        for _ in range(n_kv):
            _read_str(f)
            (t,) = struct.unpack("<I", f.read(4))
            _skip_value(f, t)
        for _ in range(n_tensors):
            name = _read_str(f)
            (nd,) = struct.unpack("<I", f.read(4))
            dims = struct.unpack(f"<{nd}Q", f.read(8 * nd))
            (t,) = struct.unpack("<I", f.read(4))
            f.read(8)
            if nd == 2 and t in _GGML_TYPE_NAMES:
                out.append((name, _GGML_TYPE_NAMES[t], int(dims[1]), int(dims[0])))
    return out


def _group(mats: list[tuple[str, str, int, int]]) -> dict[tuple[str, int, int], list[str]]:
    groups: dict[tuple[str, int, int], list[str]] = collections.defaultdict(list)
    for name, t, n, k in mats:
        # the tied embedding is also the output layer (llama.cpp duplicates it there)
        groups[(t, n, k)].append("output" if name == "token_embd.weight" else name.split(".")[-2])
    return groups


def measure(repeats: int) -> dict[str, Any]:
    from common.model_files import resolve_model_path
    from edge_agent.runtime.kernels import Ggml, MatMul, lib_dir

    g = Ggml()
    bufts = g.buffer_types()
    extra = [b for b in bufts if b != "CPU"]
    rng = np.random.default_rng(0)
    rows_out = []
    for (t, n, k), names in sorted(_group(matrices(resolve_model_path(None))).items(), key=lambda kv: -kv[0][1] * kv[0][2]):
        w = (rng.standard_normal((n, k)) * 0.05).astype(np.float32)
        q = g.quantize(t, w)
        chosen = None
        for b in [*extra, "CPU"]:
            mm = MatMul(g, t, bufts[b], q, n, k)
            if b == "CPU" or mm.supported():
                chosen = (b, mm)
                break
            mm.close()
        assert chosen is not None
        buft, mm = chosen
        x = rng.standard_normal((max(ROWS), k)).astype(np.float32)
        times: dict[int, list[float]] = {r: [] for r in ROWS}
        for r in ROWS:
            mm.run(x[:r], threads=2, repeats=2)  # warm-up
        for _ in range(repeats):
            for r in ROWS:
                times[r] += mm.run(x[:r], threads=2, repeats=1)[1]
        mm.close()
        med = {r: statistics.median(v) * 1000 for r, v in times.items()}
        uses = collections.Counter(names)
        rows_out.append({"type": t, "n": n, "k": k, "buffer": buft, "count": len(names),
                         "tensors": dict(uses), "ms": med})
    g.close()
    return {"lib_dir": str(lib_dir()), "buffer_types": list(bufts), "matrices": rows_out}


def table(data: dict[str, Any]) -> str:
    lines = ["| matrix | type | n x k | buffer | count | 1 row ms (x count) | k=1 | k=4 | k=8 | k=16 (x one row) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    total = {r: 0.0 for r in ROWS}
    for m in data["matrices"]:
        ms = {int(r): v for r, v in m["ms"].items()}
        for r in ROWS:
            total[r] += ms[r] * m["count"]
        name = "/".join(sorted(m["tensors"]))
        lines.append(f"| {name} | {m['type']} | {m['n']}x{m['k']} | {m['buffer']} | {m['count']} | "
                     f"{ms[1] * m['count']:.2f} | " + " | ".join(f"{ms[r] / ms[1]:.2f}" for r in ROWS[1:]) + " |")
    lines.append(f"| all matrices | | | | | {total[1]:.2f} | " + " | ".join(f"{total[r] / total[1]:.2f}" for r in ROWS[1:]) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    from edge_agent.runtime import report

    data = {"benchmark": "kernels", "host": report.host(), "rows": list(ROWS), **measure(args.repeats)}
    Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    print(table(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
