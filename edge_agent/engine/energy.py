"""Energy of local generations: measured from RAPL where the host exposes it, otherwise
estimated from CPU time with a per-core power model.

* ``rapl``: the package domains under ``/sys/class/powercap`` (``intel-rapl:N``; AMD
  hosts use the same interface), cumulative microjoules with wrap-around. The whole
  package is counted, so other work running at the same time is included.
* ``estimate``: the process's CPU seconds (every thread: llama.cpp's workers too) times
  ``[model] watts_per_core`` (default 5 W, a mid-range figure for one busy server or
  desktop core; set your CPU's package power / cores). Labelled as an estimate
  wherever it is reported.
"""

from __future__ import annotations

import time
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


class EnergyMeter:
    """Cumulative joules since an arbitrary origin, and where they come from."""

    def __init__(self, watts_per_core: float = 5.0, powercap: Path = POWERCAP) -> None:
        self.watts_per_core = watts_per_core
        self._domains = _rapl_domains(powercap)
        self.source = "rapl" if self._domains else "estimate"
        self._last = [self._read_uj(d) for d, _ in self._domains]
        self._total_uj = 0.0

    def joules(self) -> float:
        if not self._domains:
            return time.process_time() * self.watts_per_core
        for i, (d, wrap) in enumerate(self._domains):
            now = self._read_uj(d)
            delta = now - self._last[i]
            self._total_uj += delta if delta >= 0 else delta + wrap
            self._last[i] = now
        return self._total_uj / 1e6

    @staticmethod
    def _read_uj(domain: Path) -> int:
        return int((domain / "energy_uj").read_text())


def _rapl_domains(root: Path) -> list[tuple[Path, int]]:
    """Top-level package domains that can be read (reading may need privileges)."""
    found: list[tuple[Path, int]] = []
    if not root.is_dir():
        return found
    for d in sorted(root.glob("*-rapl:*")):
        if d.name.count(":") != 1:  # sub-domains (core, uncore, dram) are inside the package
            continue
        try:
            int((d / "energy_uj").read_text())
            wrap = int((d / "max_energy_range_uj").read_text())
        except (OSError, ValueError):
            continue
        found.append((d, wrap))
    return found
