"""Whatever a user writes, loading ends in a Policy or a PolicyError, never a crash.

Each example takes a complete, valid policy and makes one mistake at a random place:
a value of another type or out of range, an unknown key, or a missing key.
"""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import PolicyError
from orchestrator.kinds import ACTIONS
from orchestrator.policy import policy_from_dict

ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = tomllib.loads((ROOT / "examples" / "policy.toml").read_text("utf-8"))
BASE["rules"].append(
    {
        "name": "everything",
        "action": "local",
        "match": {
            "sensitivity": ["personal"],
            "pii": ["phone"],
            "labels": ["x"],
            "app_id": ["y"],
            "keywords": ["z"],
            "min_prompt_tokens": 1,
            "max_prompt_tokens": 9,
            "min_max_tokens": 1,
            "max_max_tokens": 9,
            "hours": "01:00-02:00",
            "marked_personal": False,
        },
    }
)

WRONG = (
    st.booleans()
    | st.integers(-3, 10**6)
    | st.sampled_from([math.nan, math.inf, -1.5, 0.0, 0.5, 2.0])
    | st.sampled_from(["", "x", "email", "personal", "cloud", "9-5", "10:00-10:00", "25:00-01:00"])
    | st.lists(st.integers(-1, 3) | st.sampled_from(["", "email", "secret", "x"]), max_size=3)
    | st.dictionaries(st.sampled_from(["a", "enabled", "name"]), st.integers(), max_size=2)
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list) and node and isinstance(node[0], dict):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(BASE)


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for k in path[:-1]:
        doc = doc[k]
    return doc


@settings(max_examples=500, deadline=None)
@given(
    path=st.sampled_from(PATHS),
    how=st.sampled_from(["replace", "replace", "replace", "unknown", "delete"]),
    value=WRONG,
)
def test_one_mistake_loads_or_fails_cleanly(path: tuple[Any, ...], how: str, value: Any) -> None:
    doc = copy.deepcopy(BASE)
    parent = _parent(doc, path)
    key = path[-1]
    if how == "replace":
        parent[key] = value
    elif how == "delete":
        del parent[key]
    elif isinstance(parent, dict):
        parent["colour"] = value
    try:
        policy = policy_from_dict(doc, "fuzz.toml")
    except PolicyError as err:
        assert err.file == "fuzz.toml" and err.key and err.expected, err
        assert str(err) == f"fuzz.toml: {err.key}: {err.expected}"
        return
    assert policy.default_deadline_ms >= 1
    for price in (policy.cloud_price_in_per_1k, policy.cloud_price_out_per_1k):
        assert price >= 0 and math.isfinite(price)
    assert all(r.name and r.action in ACTIONS for r in policy.rules)
    assert len({r.name for r in policy.rules}) == len(policy.rules)


def test_the_base_document_is_valid() -> None:
    assert len(policy_from_dict(copy.deepcopy(BASE), "base.toml").rules) == len(BASE["rules"])
