"""packaging/runtime/build.py: cache keys, the fallback order, and the AMX assembly check."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "packaging" / "runtime"


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(RUNTIME))
    try:
        spec = importlib.util.spec_from_file_location(name, RUNTIME / f"{name}.py")
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(RUNTIME))


build = _load("build")
amx_probe = _load("amx_probe")


def test_cache_key_depends_on_variant_and_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    a = build.cache_key("native")
    assert a == build.cache_key("native") and a != build.cache_key("native-noamx")
    monkeypatch.setattr(build, "cpu_flags", lambda: ["sse2", "amx_tile"])
    assert build.cache_key("native") != a  # another CPU builds its own
    p = build.cache_key("portable")
    monkeypatch.setattr(build, "cpu_flags", lambda: ["sse2"])
    assert build.cache_key("portable") == p  # the portable build does not depend on it


def _fake_install(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    installed: list[str] = []

    def install(variant: str, python: str) -> dict[str, object]:
        installed.append(variant)
        return {"variant": variant}

    monkeypatch.setattr(build, "install", install)
    monkeypatch.setattr(build, "_installed_or_install", install)
    monkeypatch.setattr(build, "_write_state", lambda python, state: None)
    return installed


def test_verify_falls_back_until_a_variant_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = _fake_install(monkeypatch)
    verdicts = iter([{"ok": False, "cause": "self-check crashed with SIGILL"}, {"ok": True}])
    assert build.verify("python", "native", check=lambda py: next(verdicts)) == 0
    assert installed == ["native", "native-noamx"]


def test_verify_fails_when_nothing_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = _fake_install(monkeypatch)
    assert build.verify("python", "native", check=lambda py: {"ok": False, "cause": "x"}) == 1
    assert installed == build.FALLBACK


def test_verify_passes_on_the_first_good_variant(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = _fake_install(monkeypatch)
    assert build.verify("python", "native", check=lambda py: {"ok": True}) == 0
    assert installed == ["native"]


STOCK = """
\tvpxor\t%xmm0, %xmm0, %xmm0
\tvmovdqa64\t%zmm0, 192(%rsp)
\tmovb\t$1, 192(%rsp)
\tldtilecfg\t192(%rsp)
"""
PATCHED = """
\tvpxor\t%xmm0, %xmm0, %xmm0
\tvmovdqa64\t%zmm0, 192(%rsp)
\tmovq\t.LC37(%rip), %rax
\tvmovdqa\t.LC38(%rip), %xmm0
\tmovb\t$1, 192(%rsp)
\tmovq\t%rax, 240(%rsp)
\tvmovdqa\t%xmm0, 208(%rsp)
\tldtilecfg 192(%rsp)
"""


def test_assembly_check_tells_a_dropped_config_from_a_stored_one() -> None:
    assert amx_probe.stores_cover_rows(STOCK) == (1, 0)
    assert amx_probe.stores_cover_rows(PATCHED) == (1, 1)


def _gcc_major() -> int | None:
    import re
    import subprocess

    if shutil.which("cc") is None:
        return None
    out = subprocess.run(["cc", "--version"], capture_output=True, text=True, check=False).stdout
    m = re.match(r"(?:cc|gcc)\s.*?(\d+)\.\d+\.\d+", out.splitlines()[0] if out else "")
    return int(m.group(1)) if m and "clang" not in out else None


@pytest.mark.skipif(_gcc_major() is None, reason="the system compiler is not GCC")
def test_probe_finds_the_operand_bug_exactly_on_gcc_before_13() -> None:
    major = _gcc_major()
    assert major is not None
    assert amx_probe.compiler_affected() is (major < 13)
