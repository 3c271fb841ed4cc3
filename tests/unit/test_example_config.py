"""examples/edge-agent.toml is the reference of every key: each field of the config
dataclasses appears in it, in its section, with a comment above it or its section."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from edge_agent.config import _SECTIONS, Config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "edge-agent.toml"


def _keys_by_section(text: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"": set()}
    section = ""
    for line in text.splitlines():
        head = re.match(r"^\[([a-z_]+)\]\s*$", line)
        if head:
            section = head.group(1)
            found.setdefault(section, set())
            continue
        key = re.match(r"^([a-z_]+)\s*=", line)
        if key:
            found[section].add(key.group(1))
    return found


def test_every_config_key_is_in_the_example() -> None:
    found = _keys_by_section(EXAMPLE.read_text())
    missing = [f.name for f in fields(Config) if f.name not in _SECTIONS and f.name not in found[""]]
    for name, cls in _SECTIONS.items():
        missing += [f"{name}.{f.name}" for f in fields(cls) if f.name not in found.get(name, set())]
    assert not missing, f"examples/edge-agent.toml lacks {missing}"


def test_the_example_has_no_key_the_config_does_not_know() -> None:
    found = _keys_by_section(EXAMPLE.read_text())
    known = {name: {f.name for f in fields(cls)} for name, cls in _SECTIONS.items()}
    known[""] = {f.name for f in fields(Config)} - set(_SECTIONS)
    extra = [f"{s}.{k}" for s, keys in found.items() for k in keys if k not in known.get(s, set())]
    assert not extra
