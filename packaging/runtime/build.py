#!/usr/bin/env python3
"""Build, cache and install the project's llama.cpp runtime (llama-cpp-python).

The runtime decides whether the daemon runs on a CPU at all and what a batched
verification step costs, so it is built on purpose here instead of by pip's defaults:

* pinned: llama-cpp-python ``VERSION`` from its PyPI sdist, checked against ``SHA256``;
* patched: every file in ``patches/`` is applied to the vendored llama.cpp source
  (``patch -p1`` inside ``vendor/llama.cpp``), in name order;
* flags chosen per *variant* (``VARIANTS``): ``native`` uses every kernel this CPU has
  (AVX-512, VNNI, AMX where present); ``native-noamx`` is the same without the AMX
  tile kernels; ``portable`` assumes nothing beyond x86-64 / the base ARM ISA;
* cached: each wheel is stored under ``$EDGECLOUD_CACHE/runtime/<key>/`` where the key
  hashes version, sdist, patches, CMake arguments, compiler and (for native builds) the
  CPU's feature flags, so a later run, a fresh clone or CI on the same machine installs
  in seconds and a different CPU or compiler builds its own.

Commands (stdlib only, so it runs before the project is installed)::

    build.py install --python .venv/bin/python [--variant native]
    build.py verify  --python .venv/bin/python      # self-check, falling back to safer variants
    build.py key     [--variant native]             # print the cache key
    build.py probe                                  # the compiler check for the AMX tile config

``verify`` runs ``python -m edge_agent.runtime.selfcheck`` (a child process: a kernel
that faults cannot take the installer with it); if the check crashes or disagrees, the
next variant in ``FALLBACK`` is built, installed and checked, and the outcome is written
to ``<venv>/edgecloud-runtime.json`` where ``edge-agent doctor`` reads it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

VERSION = "0.3.36"
SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
HERE = Path(__file__).resolve().parent
PATCHES = HERE / "patches"

_COMMON = [
    "-DLLAVA_BUILD=OFF",  # the daemon is text-only: no multimodal library to build or load
    "-DGGML_BLAS=OFF",
    "-DGGML_OPENMP=ON",
    "-DGGML_CCACHE=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
]
_NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
VARIANTS: dict[str, dict[str, object]] = {
    "native": {
        "cmake": [*_COMMON, "-DGGML_NATIVE=ON"],
        "native": True,
        "about": "every kernel this CPU has (AVX-512, VNNI, AMX where present)",
    },
    "native-noamx": {
        # GCC gives explicit -mno-* flags precedence over -march=native in any order.
        "cmake": [
            *_COMMON,
            "-DGGML_NATIVE=ON",
            f"-DCMAKE_C_FLAGS={_NO_AMX}",
            f"-DCMAKE_CXX_FLAGS={_NO_AMX}",
        ],
        "native": True,
        "about": "this CPU's kernels without the AMX tile kernels (safe build)",
    },
    "portable": {
        "cmake": [
            *_COMMON,
            "-DGGML_NATIVE=OFF",
            "-DGGML_AVX=OFF",
            "-DGGML_AVX2=OFF",
            "-DGGML_AVX512=OFF",
            "-DGGML_FMA=OFF",
            "-DGGML_F16C=OFF",
            "-DGGML_BMI2=OFF",
        ],
        "native": False,
        "about": "baseline instruction set only (slow, last resort)",
    },
}
FALLBACK = ["native", "native-noamx", "portable"]


def log(msg: str) -> None:
    print(f"runtime: {msg}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    env = os.environ.get("EDGECLOUD_CACHE")
    if env:
        return Path(env) / "runtime"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgecloud" / "runtime"


def cpu_flags() -> list[str]:
    """The CPU's feature flags (``/proc/cpuinfo``), sorted; empty where unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return sorted(set(value.split()))
    return []


def compiler_version(cc: str = "cc") -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.splitlines()[0].strip() if out.stdout else "unknown"


def cache_key(variant: str) -> str:
    spec = VARIANTS[variant]
    h = hashlib.sha256()
    parts: list[str] = [VERSION, SHA256, variant, *map(str, spec["cmake"])]  # type: ignore[call-overload]
    for p in sorted(PATCHES.glob("*.patch")):
        parts.append(p.name + hashlib.sha256(p.read_bytes()).hexdigest())
    parts += [compiler_version(os.environ.get("CC", "cc")), platform.machine()]
    parts += [compiler_version(os.environ.get("CXX", "c++"))]
    if spec["native"]:
        parts += cpu_flags()
    for part in parts:
        h.update(part.encode() + b"\0")
    return f"{VERSION}-{variant}-{h.hexdigest()[:16]}"


def _download_sdist(dest: Path) -> Path:
    cached = cache_root() / "sdist" / f"llama_cpp_python-{VERSION}.tar.gz"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--no-binary", ":all:", f"llama-cpp-python=={VERSION}", "-d", tmp],
                check=True,
            )
            got = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
            shutil.move(str(got), cached)
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    if digest != SHA256:
        cached.unlink()
        raise SystemExit(f"runtime: sdist {cached} has sha256 {digest}, expected {SHA256}")
    with tarfile.open(cached) as tar:
        tar.extractall(dest, filter="data")
    return dest / f"llama_cpp_python-{VERSION}"


def _apply_patches(src: Path) -> list[str]:
    applied = []
    vendored = src / "vendor" / "llama.cpp"
    for p in sorted(PATCHES.glob("*.patch")):
        subprocess.run(["patch", "-p1", "--forward", "--quiet", "-i", str(p)],
                       cwd=vendored, check=True)
        applied.append(p.name)
    return applied


class BuildRefused(RuntimeError):
    """A pre-build check says this variant would not run correctly."""


def _check_tile_config(src: Path, variant: str) -> dict[str, object]:
    """Check in the assembly that the patched AMX kernels store their tile config."""
    if platform.machine() != "x86_64":
        return {"checked": False, "why": "not x86-64"}
    import amx_probe  # sibling module

    affected = amx_probe.compiler_affected(os.environ.get("CC", "cc"))
    counts = amx_probe.check_source(src / "vendor" / "llama.cpp", os.environ.get("CXX", "c++"))
    result: dict[str, object] = {"checked": counts is not None,
                                 "compiler_drops_stores_via_intrinsic": affected}
    if counts is not None:
        total, good = counts
        result["ldtilecfg_with_config_stored"] = f"{good}/{total}"
        log(f"AMX tile config: compiler affected by the operand-size bug: {affected}; "
            f"patched kernels store the config before {good} of {total} ldtilecfg")
        if good < total and variant == "native":
            raise BuildRefused(f"{total - good} ldtilecfg in the AMX kernels load an unset "
                               "tile configuration; use the native-noamx build")
    return result


def build(variant: str) -> Path:
    """The cached wheel for ``variant``, building it first if needed."""
    key = cache_key(variant)
    out = cache_root() / key
    wheels = sorted(out.glob("llama_cpp_python-*.whl"))
    if wheels and (out / "build.json").exists():
        log(f"{variant}: cached wheel {wheels[0]}")
        return wheels[0]
    log(f"{variant}: building llama-cpp-python {VERSION} ({VARIANTS[variant]['about']}); "
        "this takes several minutes once per machine")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="edgecloud-runtime-") as tmp:
        src = _download_sdist(Path(tmp))
        applied = _apply_patches(src)
        tile_check = _check_tile_config(src, variant)
        env = dict(os.environ)
        env["CMAKE_ARGS"] = " ".join(
            shlex.quote(a) for a in VARIANTS[variant]["cmake"]  # type: ignore[attr-defined]
        )
        env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        staging = Path(tmp) / "wheel"
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--wheel-dir", str(staging), str(src)],
            check=True, env=env,
        )
        wheel = next(staging.glob("llama_cpp_python-*.whl"))
        out.mkdir(parents=True, exist_ok=True)
        final = out / wheel.name
        shutil.move(str(wheel), final)
    record = {
        "version": VERSION,
        "variant": variant,
        "key": key,
        "cmake_args": VARIANTS[variant]["cmake"],
        "patches": applied,
        "compiler": compiler_version(os.environ.get("CC", "cc")),
        "amx_tile_config": tile_check,
        "build_seconds": round(time.monotonic() - started, 1),
        "wheel": final.name,
    }
    (out / "build.json").write_text(json.dumps(record, indent=2) + "\n")
    log(f"{variant}: built in {record['build_seconds']} s -> {final}")
    return final


def install(variant: str, python: str) -> dict[str, object]:
    wheel = build(variant)
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(wheel)],
        check=True,
    )
    record = json.loads((wheel.parent / "build.json").read_text())
    _write_state(python, {"build": record, "check": None})
    log(f"{variant}: installed into {python}")
    return record


def _state_path(python: str) -> Path:
    out = subprocess.run([python, "-c", "import sys; print(sys.prefix)"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip()) / "edgecloud-runtime.json"


def _write_state(python: str, state: dict[str, object]) -> None:
    path = _state_path(python)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)


def _selfcheck(python: str) -> dict[str, object]:
    """Run the project's runtime self-check in a child of ``python``."""
    proc = subprocess.run(
        [python, "-P", "-m", "edge_agent.runtime.selfcheck", "--json"],
        capture_output=True, text=True, check=False,
    )
    try:
        result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result
    except (json.JSONDecodeError, IndexError):
        code = proc.returncode
        how = f"killed by signal {-code}" if code < 0 else f"exited {code}"
        return {"ok": False, "cause": f"self-check {how}: {proc.stderr.strip()[-300:]}"}


def verify(python: str, start: str, check: Callable[[str], dict[str, object]] = _selfcheck) -> int:
    """Self-check the installed runtime; fall back to safer variants until one passes."""
    order = FALLBACK[FALLBACK.index(start):]
    tried: list[dict[str, object]] = []
    for i, variant in enumerate(order):
        try:
            record = install(variant, python) if i else _installed_or_install(variant, python)
        except (BuildRefused, subprocess.CalledProcessError) as exc:
            tried.append({"variant": variant, "ok": False, "cause": f"build failed: {exc}"})
            log(f"{variant}: build failed: {exc}")
            continue
        result = check(python)
        tried.append({"variant": variant, "ok": result.get("ok"), "cause": result.get("cause")})
        _write_state(python, {"build": record, "check": result, "tried": tried})
        if result.get("ok"):
            log(f"{variant}: self-check passed ({result.get('summary', '')})")
            if i:
                log(f"fell back from {order[0]} to {variant}: {tried[0]['cause']}")
            return 0
        log(f"{variant}: self-check FAILED: {result.get('cause')}")
    log("no runtime variant passed its self-check")
    return 1


def _installed_or_install(variant: str, python: str) -> dict[str, object]:
    path = _state_path(python)
    key = cache_key(variant)
    if path.exists():
        state = json.loads(path.read_text())
        build_record = state.get("build") or {}
        if build_record.get("key") == key:
            return build_record  # type: ignore[no-any-return]
    return install(variant, python)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("install", "verify", "key"):
        p = sub.add_parser(name)
        p.add_argument("--variant", choices=list(VARIANTS),
                       default=os.environ.get("EDGECLOUD_RUNTIME_VARIANT", "native"))
        if name != "key":
            p.add_argument("--python", required=True)
    sub.add_parser("probe")
    args = ap.parse_args(argv)
    if args.cmd == "key":
        print(cache_key(args.variant))
        return 0
    if args.cmd == "probe":
        import amx_probe  # sibling module

        return amx_probe.main()
    if args.cmd == "install":
        _installed_or_install(args.variant, args.python)
        return 0
    return verify(args.python, args.variant)


if __name__ == "__main__":
    sys.exit(main())
