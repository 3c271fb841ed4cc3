"""Repeated log lines are collapsed, and a line says how many were dropped."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from common.logfmt import EscapingFormatter
from common.logrepeat import RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup() -> Iterator[tuple[logging.Logger, io.StringIO, RepeatFilter, Clock]]:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(EscapingFormatter("%(levelname)s %(name)s: %(message)s"))
    clock = Clock()
    f = RepeatFilter.install(handler, burst=3, info_burst=6, window_s=10.0)
    f._clock = clock  # a controllable clock
    log = logging.getLogger("test.logrepeat")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        yield log, buf, f, clock
    finally:
        log.removeHandler(handler)


def test_a_flood_of_one_message_is_collapsed_with_a_count(setup: tuple[logging.Logger, io.StringIO, RepeatFilter, Clock]) -> None:
    log, buf, _f, clock = setup
    for i in range(100_000):  # same template, different arguments: one kind
        log.error("accept failed for peer %s: %s", f"127.0.0.1:{i}", "Too many open files")
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3
    log.info("something else")
    clock.now = 11.0
    log.error("accept failed for peer %s: %s", "127.0.0.1:1", "x")
    lines = buf.getvalue().splitlines()
    assert "suppressed 99997 repeats of 'accept failed for peer %s: %s' in the last 11 s" in lines[4]
    assert lines[4].startswith("ERROR test.logrepeat:")
    assert lines[5].startswith("ERROR test.logrepeat: accept failed for peer 127.0.0.1:1")
    assert len(lines) == 6


def test_other_messages_pass_and_flush_reports_what_is_pending(setup: tuple[logging.Logger, io.StringIO, RepeatFilter, Clock]) -> None:
    log, buf, f, _clock = setup
    for _ in range(5):
        log.warning("one")
    for i in range(3):
        log.warning("two %d", i)
    assert buf.getvalue().count("one") == 3 and buf.getvalue().count("two") == 3
    f.flush()
    assert "suppressed 2 repeats of 'one'" in buf.getvalue().splitlines()[-1]
    f.flush()
    assert buf.getvalue().count("suppressed") == 1


def test_info_lines_get_a_larger_budget(setup: tuple[logging.Logger, io.StringIO, RepeatFilter, Clock]) -> None:
    log, buf, _f, _clock = setup
    for i in range(10):
        log.info("request id=%s route=local", i)  # one line per request
    assert buf.getvalue().count("request id=") == 6
