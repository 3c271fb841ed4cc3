"""Runtime self-check: batched evaluation must agree with one-token evaluation.

Speculative decoding rests on one fact: the logits llama.cpp computes for a position
inside a multi-token batch are those it computes when the position is evaluated
alone. The check loads the model, evaluates a fixed text of ``N_TOKENS`` tokens as one
batch with logits for every position, then again one token at a time, and compares:

* every logit is finite;
* at every position the RMS of ``batched - single`` is at most ``MAX_REL_RMS`` of the
  spread (standard deviation) of that position's single-token logits. Healthy builds
  differ: the baseline build is bit-identical, AVX-512 with repacked weights measured
  up to 0.13 (its batched kernels quantize activations differently); a kernel that
  computes garbage, zeros or NaN is near 1 or above;
* at every position the greedy token agrees, unless the batched choice is within
  ``NEAR_TIE_RMS`` times that position's RMS difference of the single-token best (a
  near-tie two correct kernels may break differently).

A build that passes may still differ by rounding. ``identical`` says whether batched
and one-token logits are bit-for-bit equal, which the project's runtime guarantees for
batches of up to 32 tokens (``packaging/runtime/patches/0002-batch-invariant-small-
batches.patch``) and which speculative decoding needs to give exactly the output of
plain decoding: the daemon decodes plainly on a runtime that is not identical.

A pass is recorded (``record`` / ``recorded``: a small JSON file under
``$EDGECLOUD_CACHE/selfcheck``, else ``$XDG_CACHE_HOME/edgecloud/selfcheck``, 0600) for
the runtime's libraries, the model file, the CPU and the thread count that were
checked; ``require`` reuses it while all four are unchanged, so a daemon starts without
evaluating the model twice (``make install`` records the shipped model's check), and
checks again after any of them changes. ``doctor`` always checks afresh.

It runs in a child process (``run``) so that a kernel that faults (an illegal
instruction, say) kills the child and not the caller. ``python -P -m
edge_agent.runtime.selfcheck --json`` is the child (``-P``: nothing from the working
directory is imported into it); its last stdout line is the JSON result. ``EDGECLOUD_SELFCHECK_FAULT`` (``sigill`` / ``disagree``) makes the child fail
on purpose, for tests of the callers' fallback paths; ``rounding`` makes it pass without
being bit-identical.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from common.errors import Unavailable

N_TOKENS = 24
MAX_REL_RMS = 0.3
NEAR_TIE_RMS = 4.0
TEXT = (
    "Dear Ana, thank you for the invoice of 14 March. The parcel left Rotterdam on "
    "Tuesday and should reach Lyon by Friday; I attach the receipt and the route."
)
FAULT_ENV = "EDGECLOUD_SELFCHECK_FAULT"


class RuntimeUnusable(Unavailable):
    """The runtime failed its self-check: the daemon must not serve on it."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one self-check."""

    ok: bool
    cause: str  # "" when ok; otherwise one line naming what failed
    summary: str = ""
    max_rel_rms: float = float("nan")
    max_abs_diff: float = float("nan")
    mean_abs_diff: float = float("nan")
    positions: int = 0
    greedy_disagreements: int = 0
    near_ties: int = 0
    identical: bool = False  # batched logits bit-for-bit equal to one-token logits
    seconds: float = 0.0

    def to_json(self) -> str:
        d = asdict(self)
        for k in ("max_rel_rms", "max_abs_diff", "mean_abs_diff"):
            if d[k] != d[k]:  # NaN is not JSON
                d[k] = None
        return json.dumps(d)


def compare(
    batched: npt.NDArray[np.float32], single: npt.NDArray[np.float32]
) -> CheckResult:
    """Compare per-position logits of batched and one-token evaluation."""
    if batched.shape != single.shape:
        return CheckResult(False, f"shape {batched.shape} != {single.shape}")
    n = batched.shape[0]
    if not (np.isfinite(batched).all() and np.isfinite(single).all()):
        return CheckResult(False, "non-finite logits", positions=n)
    diff = np.abs(batched.astype(np.float64) - single.astype(np.float64))
    per_pos = diff.max(axis=1)
    worst = float(per_pos.max())
    mean = float(diff.mean())
    spread = np.maximum(single.astype(np.float64).std(axis=1), 1e-9)
    rel = float((np.sqrt((diff**2).mean(axis=1)) / spread).max())
    rms = np.sqrt((diff**2).mean(axis=1))
    picked_b = batched.argmax(axis=1)
    agree = picked_b == single.argmax(axis=1)
    # how far below the single-token best the batched choice sits, in single's logits
    gap = single.max(axis=1) - single[np.arange(n), picked_b]
    explained = ~agree & (gap <= NEAR_TIE_RMS * rms)
    unexplained = int((~agree & ~explained).sum())
    identical = worst == 0.0
    summary = (
        f"{n} positions, batched logits bit-identical to one-token logits" if identical else
        f"{n} positions, max rel. RMS {rel:.3f} (limit {MAX_REL_RMS}), max |diff| {worst:.3f}, "
        f"{int((~agree).sum())} greedy disagreements ({int(explained.sum())} near-ties); "
        "not bit-identical"
    )
    cause = ""
    if rel > MAX_REL_RMS:
        cause = (
            f"batched logits differ from one-token logits by {rel:.2f} of their spread "
            f"(limit {MAX_REL_RMS})"
        )
    elif unexplained:
        cause = f"{unexplained} positions pick a different greedy token outside a near-tie"
    return CheckResult(
        ok=not cause,
        cause=cause,
        summary=summary,
        max_rel_rms=rel,
        max_abs_diff=worst,
        mean_abs_diff=mean,
        positions=n,
        greedy_disagreements=int((~agree).sum()),
        near_ties=int(explained.sum()),
        identical=identical,
    )


def check_model(model_path: str | Path, n_threads: int | None = None) -> CheckResult:
    """Run the check in this process (the child's body)."""
    from edge_agent.engine.llama_model import LlamaModel

    t0 = time.perf_counter()
    fault = os.environ.get(FAULT_ENV, "")
    model = LlamaModel(model_path, n_ctx=256, n_threads=n_threads, n_batch=64)
    try:
        if fault == "sigill":
            os.kill(os.getpid(), signal.SIGILL)
        tokens = model.tokenize(TEXT, add_bos=True)[:N_TOKENS]
        batched = np.array(model.eval(tokens, range(len(tokens))), copy=True)
        model.truncate(0)
        single = np.stack([np.array(model.eval([t], [0])[0], copy=True) for t in tokens])
    finally:
        model.close()
    if fault == "disagree":
        batched = batched.copy()
        batched[len(tokens) // 2] += np.linspace(0, 4, batched.shape[1], dtype=np.float32)
    elif fault == "rounding":  # healthy but not batch-invariant: one logit one ulp off
        batched = batched.copy()
        batched[1, 0] = np.nextafter(batched[1, 0], np.float32(np.inf))
    res = compare(batched, single)
    return CheckResult(**{**asdict(res), "seconds": round(time.perf_counter() - t0, 3)})


def describe_exit(code: int) -> str:
    """A one-line cause for a child that exited with ``code``."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        what = {
            "SIGILL": "an illegal instruction: the runtime uses a CPU feature this host "
            "does not grant, or was miscompiled",
            "SIGSEGV": "a memory fault inside llama.cpp",
            "SIGBUS": "a bus error (model file truncated or unreadable?)",
            "SIGKILL": "killed (out of memory?)",
        }.get(name, "terminated by a signal")
        return f"self-check crashed with {name}: {what}"
    return f"self-check exited with status {code}"


FIX = (
    "fix: run `make install` (it rebuilds the runtime and falls back to a safe build), "
    "then `edge-agent doctor`"
)


def require(model_path: str | Path, n_threads: int | None = None, *, reuse: bool = True) -> CheckResult:
    """The recorded pass for this runtime, model, CPU and thread count (``reuse``), else
    the check in a child; raise ``RuntimeUnusable`` (one line: cause and fix)."""
    if reuse:
        kept = recorded(model_path, n_threads)
        if kept is not None:
            return kept
    res = run(model_path, n_threads=n_threads)
    if not res.ok:
        raise RuntimeUnusable(f"runtime self-check failed: {res.cause}; {FIX}")
    return res


def record_dir() -> Path:
    """``$EDGECLOUD_CACHE/selfcheck`` (as the runtime's cache), else ``~/.cache/edgecloud/selfcheck``."""
    from common.model_files import edgecloud_cache

    env = os.environ.get("EDGECLOUD_CACHE")
    return Path(env) / "selfcheck" if env else edgecloud_cache("selfcheck")


def _file_id(path: Path) -> list[object]:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def record_key(model_path: str | Path, n_threads: int | None) -> dict[str, object]:
    """What a recorded pass stands for: the runtime's libraries, the model file, the CPU
    (model name and feature flags) and the thread count."""
    from edge_agent.runtime.kernels import lib_dir

    libs = sorted(p for p in lib_dir().glob("lib*.so*") if p.is_file() and not p.is_symlink())
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            head = f.read().split("\n\n", 1)[0]
        cpu = "\n".join(ln for ln in head.splitlines() if ln.startswith(("vendor_id", "cpu family", "model", "flags")))
    except OSError:
        pass
    return {
        "runtime": [_file_id(p) for p in libs],
        "model": _file_id(Path(model_path)),
        "cpu": hashlib.sha256(cpu.encode()).hexdigest(),
        "threads": n_threads or max(1, os.cpu_count() or 1),
    }


def _record_path(key: dict[str, object]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return record_dir() / f"{digest}.json"


def record(model_path: str | Path, n_threads: int | None, res: CheckResult) -> None:
    """Keep a bit-identical pass for ``require`` (best effort: an unwritable cache only
    means the next start checks again)."""
    if not (res.ok and res.identical) or os.environ.get(FAULT_ENV):
        return
    try:
        key = record_key(model_path, n_threads)
        path = _record_path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"key": key, "result": json.loads(res.to_json()), "at": time.time()}, f)
        os.replace(tmp, path)
    except OSError:
        pass


def recorded(model_path: str | Path, n_threads: int | None) -> CheckResult | None:
    """The recorded pass for exactly this runtime, model, CPU and thread count, if any."""
    if os.environ.get(FAULT_ENV):  # a test of the failure paths: always the real child
        return None
    try:
        key = record_key(model_path, n_threads)
        data = json.loads(_record_path(key).read_text())
        if data.get("key") != json.loads(json.dumps(key)):
            return None
        fields: dict[str, Any] = {k: (float("nan") if v is None else v) for k, v in data["result"].items()}
        res = CheckResult(**fields)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    if not (res.ok and res.identical):
        return None
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(data.get("at", 0))))
    return replace(res, summary=f"{res.summary} (recorded {when} for this runtime, model file, CPU and thread count)",
                   seconds=0.0)


def child_command(python: str = sys.executable) -> list[str]:
    """The child's command line. ``-P`` (Python 3.11+): ``python -m`` would otherwise
    put the working directory first on ``sys.path``, and a ``common.py`` there would
    run inside the child instead of the project's ``common`` package."""
    return [python, "-P", "-m", "edge_agent.runtime.selfcheck"]


def child_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` without relative or empty ``PYTHONPATH`` entries (each would stand for
    the working directory again)."""
    path = env.get("PYTHONPATH")
    if path is None:
        return env
    kept = [p for p in path.split(os.pathsep) if p and os.path.isabs(p)]
    out = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    if kept:
        out["PYTHONPATH"] = os.pathsep.join(kept)
    return out


def run(
    model_path: str | Path,
    *,
    n_threads: int | None = None,
    timeout_s: float = 120.0,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
) -> CheckResult:
    """Run the check in a child process; a crash or a hang becomes a failed result."""
    cmd = [*child_command(python), "--json", "--model", str(model_path)]
    if n_threads:
        cmd += ["--threads", str(n_threads)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, check=False,
            env=child_env(env if env is not None else dict(os.environ)),
        )
    except subprocess.TimeoutExpired:
        return CheckResult(False, f"self-check did not finish within {timeout_s:.0f} s")
    lines = proc.stdout.strip().splitlines()
    if proc.returncode in (0, 1) and lines:
        try:
            data: dict[str, Any] = json.loads(lines[-1])
            fixed: dict[str, Any] = {k: (float("nan") if v is None else v) for k, v in data.items()}
            return CheckResult(**fixed)
        except (json.JSONDecodeError, TypeError):
            pass
    return CheckResult(False, describe_exit(proc.returncode))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Check the llama.cpp runtime (child process).")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON line")
    ap.add_argument("--model", default="", help="GGUF file (default: the shipped model)")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    if args.model:
        path = Path(args.model)
    else:
        from common.model_files import resolve_model_path

        path = resolve_model_path(None)
    os.environ.setdefault("LLAMA_LOG_LEVEL", "error")
    res = check_model(path, args.threads or None)
    record(path, args.threads or None, res)
    if args.json:
        print(res.to_json())
    else:
        print(("ok: " if res.ok else "FAILED: ") + (res.summary if res.ok else res.cause))
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
