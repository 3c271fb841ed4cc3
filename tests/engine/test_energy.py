"""The energy meter: RAPL package counters with wrap-around, sub-domains ignored, an
unreadable counter falling back to the CPU-time estimate."""

from __future__ import annotations

from pathlib import Path

from edge_agent.engine.energy import EnergyMeter


def _domain(root: Path, name: str, uj: int, wrap: int = 1_000_000) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "energy_uj").write_text(f"{uj}\n")
    (d / "max_energy_range_uj").write_text(f"{wrap}\n")
    return d


def test_rapl_packages_are_summed_with_wrap_around(tmp_path: Path) -> None:
    a = _domain(tmp_path, "intel-rapl:0", 900_000)
    b = _domain(tmp_path, "intel-rapl:1", 100)
    _domain(tmp_path, "intel-rapl:0:0", 5)  # a sub-domain (cores) inside package 0
    m = EnergyMeter(powercap=tmp_path)
    assert m.source == "rapl"
    start = m.joules()
    (a / "energy_uj").write_text("200000\n")  # wrapped: +300000 uJ
    (b / "energy_uj").write_text("1100\n")  # +1000 uJ
    assert abs(m.joules() - start - 0.301) < 1e-9


def test_without_rapl_the_estimate_is_cpu_time_times_watts(tmp_path: Path) -> None:
    m = EnergyMeter(watts_per_core=10.0, powercap=tmp_path / "absent")
    assert m.source == "estimate"
    j0 = m.joules()
    x = 0
    for i in range(2_000_000):  # burn some CPU time
        x += i * i
    spent = m.joules() - j0
    assert spent > 0 and x > 0


def test_unreadable_counter_falls_back(tmp_path: Path) -> None:
    d = tmp_path / "intel-rapl:0"
    d.mkdir()
    (d / "energy_uj").write_text("not a number")
    (d / "max_energy_range_uj").write_text("1")
    assert EnergyMeter(powercap=tmp_path).source == "estimate"
