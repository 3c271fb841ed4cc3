"""`doctor` warns about a contended host and pathological thread counts (pure functions,
synthetic figures: the newcomer's loaded 2-core host)."""

from __future__ import annotations

from edge_agent.cli.doctor import render
from edge_agent.runtime.report import warnings


def test_a_quiet_host_has_no_warnings() -> None:
    assert warnings(cores=8, n_threads=8, load_avg=0.4, plain_ms_by_threads={1: 40.0, 8: 9.0}) == []


def test_load_average_above_the_cores_is_contention() -> None:
    [w] = warnings(cores=2, n_threads=2, load_avg=3.9, plain_ms_by_threads={1: 40.0, 2: 25.0})
    assert "contended" in w and "3.9 on 2 core(s)" in w


def test_more_threads_slower_than_one_names_the_fix() -> None:
    [w] = warnings(cores=2, n_threads=2, load_avg=None, plain_ms_by_threads={1: 61.0, 2: 3068.5})
    assert "2 threads take 3068.5 ms" in w and "model.n_threads = 1" in w


def test_more_threads_than_cores_is_pathological() -> None:
    ws = warnings(cores=2, n_threads=16, load_avg=0.1, plain_ms_by_threads={})
    assert any("more than the 2 core(s)" in w for w in ws)


def test_an_unsteady_calibration_is_a_warning() -> None:
    [w] = warnings(cores=4, n_threads=4, load_avg=None, plain_ms_by_threads={},
                   calibration_note="the plain step took 4022.0 ms, then 30.1 ms")
    assert "not steady" in w and "4022.0 ms" in w


def test_the_verdict_is_not_ok_when_there_are_warnings() -> None:
    d = {
        "host": {"cpu": "x", "cores": 2, "machine": "x86_64", "features": [], "amx_granted": None, "load_avg": 3.9},
        "build": {"llama_cpp_python": "0.3", "variant": "native", "key": "", "patches": [], "compiler": "",
                  "install_check": "ok", "fallbacks": []},
        "store": {"sqlite": "3.45", "ranking": "bm25_df"},
        "selfcheck": {"ok": True, "summary": "ok", "identical": True, "cause": ""},
        "warnings": warnings(cores=2, n_threads=2, load_avg=3.9, plain_ms_by_threads={1: 61.0, 2: 3068.5}),
        "verdict": "usable, 2 warning(s) above",
    }
    text = render(d)
    assert text.count("WARNING:") == 2 and "load average 3.9" in text
    assert "verdict:   ok" not in text


def test_the_store_section_says_when_an_expired_item_leaves_the_file() -> None:
    from edge_agent.cli.doctor import store_ranking

    st = store_ranking()
    assert "kill -9" in st["expiry"] and "context.db" in st["expiry"] and "next starts" in st["expiry"]
    d = {
        "host": {"cpu": "x", "cores": 2, "machine": "x86_64", "features": [], "amx_granted": None, "load_avg": None},
        "build": {"llama_cpp_python": "0.3", "variant": "native", "key": "", "patches": [], "compiler": "",
                  "install_check": "ok", "fallbacks": []},
        "store": st,
        "selfcheck": {"ok": False, "cause": "x", "summary": "", "identical": False},
        "verdict": "runtime unusable: x",
    }
    assert "expiry: an expired item" in render(d)
