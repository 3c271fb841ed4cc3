"""What this host and runtime are: CPU features, the build, llama.cpp's view, the model.

``host()`` reads the CPU's features and whether the kernel grants AMX tile state;
``build()`` reads the record ``packaging/runtime/build.py`` leaves in the environment
(variant, CMake flags, patches, the install-time self-check); ``system_info()`` is
llama.cpp's own line. The buffer types of the model's weights and the cost curve come
from the loaded engine (``edge_agent.engine``); ``draft_plan`` turns a curve into what
the decoder will do with it; ``warnings`` says when the figures come from a contended
host (load average against cores, a plain step that changed between two measurements,
more threads slower than one) or a thread count is pathological.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FEATURES = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
    "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16", "asimd", "sve",
)
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18
_SYS_ARCH_PRCTL = 158  # x86-64


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_features() -> dict[str, bool]:
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key = line.split(":", 1)[0].strip()
            if key in ("flags", "Features"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {f: f in flags for f in FEATURES}


def amx_granted() -> bool | None:
    """Whether the kernel lets this process use AMX tiles (None: no AMX here)."""
    if not cpu_features().get("amx_tile") or platform.machine() != "x86_64":
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA)
    return bool(rc == 0)


def load_average() -> float | None:
    """The one-minute load average (None where the platform has none)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def host() -> dict[str, Any]:
    feats = cpu_features()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 1,
        "load_avg": load_average(),
        "machine": platform.machine(),
        "features": [f for f, on in feats.items() if on],
        "amx_granted": amx_granted(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
    }


def build() -> dict[str, Any]:
    """The installed runtime's build record (empty if built outside the project)."""
    path = Path(sys.prefix) / "edgecloud-runtime.json"
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        state = {}
    try:
        import llama_cpp

        version = str(llama_cpp.__version__)
    except ImportError:
        version = ""
    rec = state.get("build") or {}
    check = state.get("check") or {}
    return {
        "llama_cpp_python": version,
        "variant": rec.get("variant", "unmanaged"),
        "key": rec.get("key", ""),
        "cmake_args": rec.get("cmake_args", []),
        "patches": rec.get("patches", []),
        "compiler": rec.get("compiler", ""),
        "install_check": check.get("summary") or check.get("cause") or "not run",
        "fallbacks": [t for t in state.get("tried", []) if not t.get("ok")],
    }


def system_info() -> str:
    import llama_cpp as lc

    return str(lc.llama_print_system_info().decode("utf-8", "replace")).strip()


def draft_plan(curve: Sequence[float], max_draft: int) -> dict[str, Any]:
    """What the draft policy does on ``curve``: the draft length chosen at each
    per-token acceptance rate, and the rate below which it takes plain steps."""
    lengths: dict[str, int] = {}
    for p in (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        best_k, best = 0, 1.0
        expected, term = 1.0, 1.0
        for k in range(1, max_draft + 1):
            term *= p
            expected += term
            c = curve[k] if k < len(curve) else curve[-1]
            if expected / c > best:
                best_k, best = k, expected / c
        lengths[f"{p:.2f}"] = best_k
    gate = max(0.0, curve[1] - 1.0) if len(curve) > 1 else 0.0
    return {"draft_len_by_acceptance": lengths, "gate_below_acceptance": round(gate, 3)}


LOADED = 0.75  # load average per core above which the host is taken as contended
SLOWER = 1.3  # more threads this much slower than fewer: they wait for each other


def warnings(
    *,
    cores: int,
    n_threads: int,
    load_avg: float | None,
    plain_ms_by_threads: dict[int, float],
    calibration_note: str = "",
) -> list[str]:
    """What makes the figures (or the configuration) suspect, one line each."""
    out: list[str] = []
    if load_avg is not None and load_avg > cores * LOADED:
        out.append(f"the host is contended: load average {load_avg:.1f} on {cores} core(s); step times below "
                   "are inflated, and decoding with fewer threads may be faster (model.n_threads)")
    if n_threads > cores:
        out.append(f"model.n_threads = {n_threads} is more than the {cores} core(s): threads wait for each "
                   f"other at every step; use {cores} or fewer (0 = all cores)")
    if calibration_note:
        out.append(f"the step timings are not steady: {calibration_note}")
    if len(plain_ms_by_threads) > 1:
        fewest = min(plain_ms_by_threads)
        most = max(plain_ms_by_threads)
        if plain_ms_by_threads[most] > plain_ms_by_threads[fewest] * SLOWER:
            out.append(f"{most} threads take {plain_ms_by_threads[most]:.1f} ms a step, {fewest} take "
                       f"{plain_ms_by_threads[fewest]:.1f} ms: the cores are busy with other work; "
                       f"set model.n_threads = {fewest} (or free the cores)")
    return out
