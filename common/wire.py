"""Which field of a protobuf message holds bytes that are not UTF-8.

protobuf rejects a whole message when one ``string`` field is not valid UTF-8, without
saying which. ``bad_utf8_field`` walks the wire format against the message descriptor
and names the first such field as a path (``prompt``, ``routing.labels[2]``,
``items[0].body``), so the error can name it.
"""

from __future__ import annotations

from collections import defaultdict

from google.protobuf.descriptor import Descriptor, FieldDescriptor


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _repeated(f: FieldDescriptor) -> bool:
    flag = getattr(f, "is_repeated", None)
    return bool(flag) if flag is not None else f.label == FieldDescriptor.LABEL_REPEATED


def bad_utf8_field(desc: Descriptor, data: bytes, prefix: str = "") -> str | None:
    """Path of the first string field in ``data`` that is not UTF-8 (None: none found)."""
    seen: dict[int, int] = defaultdict(int)
    i = 0
    try:
        while i < len(data):
            key, i = _varint(data, i)
            number, wire = key >> 3, key & 7
            if wire == 0:
                _, i = _varint(data, i)
            elif wire == 1:
                i += 8
            elif wire == 5:
                i += 4
            elif wire == 2:
                n, i = _varint(data, i)
                chunk, i = data[i : i + n], i + n
                f = desc.fields_by_number.get(number)
                if f is None:
                    continue
                index = seen[number]
                seen[number] += 1
                name: str = prefix + str(f.name) + (f"[{index}]" if _repeated(f) else "")
                if f.type == FieldDescriptor.TYPE_STRING:
                    try:
                        chunk.decode("utf-8")
                    except UnicodeDecodeError:
                        return name
                elif f.type == FieldDescriptor.TYPE_MESSAGE:
                    found = bad_utf8_field(f.message_type, chunk, name + ".")
                    if found:
                        return found
            else:
                return None  # groups or garbage: nothing more to say
    except ValueError:
        return None
    return None
