"""Every log record is one printable line, whatever its arguments hold."""

from __future__ import annotations

import io
import logging

from common.logfmt import EscapingFormatter, escape


def test_escape_writes_control_characters_visibly() -> None:
    assert escape("a\nb\rc\td\x1b[31m\x7f\u2028") == "a\\nb\\rc\\td\\x1b[31m\\x7f\\u2028"
    assert escape("plain text, ünïcode") == "plain text, ünïcode"


def test_a_newline_in_an_argument_cannot_start_a_new_record() -> None:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(EscapingFormatter("%(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("test.logfmt")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("request id=%s done", "x\nINFO edge_agent: forged line")
    finally:
        log.removeHandler(handler)
    out = buf.getvalue()
    assert out.count("\n") == 1
    assert out == "WARNING test.logfmt: request id=x\\nINFO edge_agent: forged line done\n"
