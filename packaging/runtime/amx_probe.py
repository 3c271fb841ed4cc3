"""Compiler checks for the AMX tile configuration (stdlib only).

``ldtilecfg`` reads a 64-byte tile configuration from memory. GCC before 13 declares
the operand of its ``_tile_loadconfig`` intrinsic as 8 bytes, so the optimizer may drop
the stores that fill the rows and column widths; the tiles are then configured with
zero size and the first tile instruction raises an illegal-instruction fault. That
only shows on a CPU with AMX, so it is checked here in the generated assembly, which
any x86-64 host can produce:

* ``compiler_affected``: a ten-line probe through the stock intrinsic — does this
  compiler drop the stores?
* ``check_source``: the patched llama.cpp AMX kernel file compiled for an AMX target —
  is every ``ldtilecfg`` preceded by stores into the rows/colsb part of its operand?
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

_PROBE = r"""
#include <immintrin.h>
#include <stdint.h>
struct cfg { uint8_t palette, start; uint8_t r0[14]; uint16_t colsb[16]; uint8_t rows[16]; };
void probe_load(void) {
    _Alignas(64) struct cfg c = {0};
    c.palette = 1;
    c.rows[0] = 16; c.colsb[0] = 64;
    _tile_loadconfig(&c);
}
"""
_LDTILECFG = re.compile(r"^\s*ldtilecfg\s+(-?\d*)\((%\w+)\)")
_STORE = re.compile(r"^\s*(mov\w*|vmov\w*)\s+[^,]+,\s*(-?\d*)\((%\w+)\)\s*$")


def stores_cover_rows(asm: str) -> tuple[int, int]:
    """``(ldtilecfg count, how many are preceded by a store starting in bytes 16..63)``."""
    lines = asm.splitlines()
    total = good = 0
    for i, line in enumerate(lines):
        m = _LDTILECFG.match(line)
        if not m:
            continue
        total += 1
        base, reg = int(m.group(1) or 0), m.group(2)
        for prev in reversed(lines[max(0, i - 80) : i]):
            if prev.rstrip().endswith(":") and not prev.startswith("\t"):
                break  # start of this function or block label at column 0
            s = _STORE.match(prev)
            if not s or s.group(3) != reg:
                continue
            off = int(s.group(2) or 0) - base
            # a store that starts inside colsb/rows (zeroing the whole struct from its
            # first byte does not count: that is all the buggy compiler keeps)
            if 16 <= off < 64:
                good += 1
                break
    return total, good


def _compile(source: str, suffix: str, flags: list[str], compiler: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"probe{suffix}"
        src.write_text(source)
        out = subprocess.run(
            [compiler, *flags, "-S", "-o", "-", str(src)],
            capture_output=True, text=True, check=True,
        )
        return out.stdout


def compiler_affected(cc: str = "cc") -> bool | None:
    """True if ``cc`` drops the tile-config stores (None: it cannot target AMX)."""
    try:
        asm = _compile(_PROBE, ".c", ["-O3", "-mamx-tile"], cc)
    except (OSError, subprocess.CalledProcessError):
        return None
    total, good = stores_cover_rows(asm)
    return total > 0 and good < total


def check_source(vendored: Path, cxx: str = "c++") -> tuple[int, int] | None:
    """Compile llama.cpp's AMX kernels for an AMX target; ``(ldtilecfg, covered)``."""
    mmq = vendored / "ggml" / "src" / "ggml-cpu" / "amx" / "mmq.cpp"
    if not mmq.exists():
        return None
    inc = [f"-I{vendored / d}" for d in ("ggml/include", "ggml/src", "ggml/src/ggml-cpu")]
    flags = ["-O3", "-std=c++17", "-march=sapphirerapids", "-DNDEBUG", *inc]
    try:
        out = subprocess.run(
            [cxx, *flags, "-S", "-o", "-", str(mmq)],
            capture_output=True, text=True, check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return stores_cover_rows(out.stdout)


def main() -> int:
    affected = compiler_affected()
    print(f"cc drops AMX tile-config stores through _tile_loadconfig: {affected}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
