"""Log records that cannot be forged: control characters in logged values are escaped.

A value that reaches a log line from a request (an id, a label, an error message) could
otherwise start a new, fake line with a newline, or hide text with terminal escapes.
``EscapingFormatter`` escapes C0/C1 control characters, DEL and the Unicode line
separators in the final line (after ``%`` formatting) and in exception text, so every
record is exactly one line whatever its arguments held.
"""

from __future__ import annotations

import logging
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape(text: str) -> str:
    """``text`` with every control character written as ``\\n``, ``\\t`` or ``\\xNN``."""

    def one(m: re.Match[str]) -> str:
        c = m.group(0)
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c) or (
            f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
        )

    return _CONTROL.sub(one, text)


class EscapingFormatter(logging.Formatter):
    """A formatter whose output is always one line of printable text."""

    def format(self, record: logging.LogRecord) -> str:
        message = escape(record.getMessage())
        saved = record.msg, record.args, record.exc_text
        record.msg, record.args = message, None
        try:
            line = super().format(record)
        finally:
            record.msg, record.args, record.exc_text = saved
        head, sep, rest = line.partition(message)
        # the traceback (if any) follows the message: keep its lines but mark them
        return head + sep + rest.replace("\n", "\n    | ") if sep else escape(line)
