"""The daemon's routing state: reload keeps the old policy on a bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import PolicyError
from edge_agent.pipeline.routing import RoutingState

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"


def test_reload_applies_a_good_file_and_keeps_the_old_policy_on_a_bad_one(tmp_path: Path) -> None:
    f = tmp_path / "policy.toml"
    text = EXAMPLE.read_text()
    f.write_text(text)
    state = RoutingState(str(f))
    assert state.default_deadline_ms == 20000
    f.write_text(text.replace("default_deadline_ms = 20000", "default_deadline_ms = 7000"))
    assert state.reload() == str(f)
    assert state.default_deadline_ms == 7000
    f.write_text(text.replace("default_deadline_ms = 20000", "default_deadline_ms = -1"))
    with pytest.raises(PolicyError) as info:
        state.reload()
    assert "latency.default_deadline_ms" in info.value.key
    assert state.default_deadline_ms == 7000  # the old policy stays in force


def test_no_file_means_the_built_in_default(tmp_path: Path) -> None:
    state = RoutingState("")
    assert state.reload() == ""
    assert state.default_deadline_ms > 0
