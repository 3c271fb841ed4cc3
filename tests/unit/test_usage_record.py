"""One usage record from the engine to both wire formats."""

from __future__ import annotations

from dataclasses import fields

from edgecloud.v1 import common_pb2

from edge_agent.engine.api import Usage
from edge_agent.pipeline.types import Outcome, Run
from edge_agent.transport import convert
from edge_agent.transport import openai_convert as oc
from orchestrator.types import Decision, Target


def _outcome(u: Usage, fallback_reason: str = "") -> Outcome:
    d = Decision(target=Target.LOCAL, rules_fired=("r",), explanation="e")
    return Outcome("id1", d, (), "local", "stop", u, fallback_reason)


def test_every_wire_usage_field_comes_from_the_record() -> None:
    record = {f.name for f in fields(Usage)}
    wire = {f.name for f in common_pb2.Usage.DESCRIPTOR.fields}
    assert wire <= record, wire - record


def test_the_same_figures_reach_both_doors() -> None:
    u = Usage(prompt_tokens=11, completion_tokens=7, ttft_ms=12.5, total_ms=40.25, tokens_per_s=99.5,
              drafted_tokens=9, accepted_tokens=6, verify_steps=3, energy_j=0.125, energy_source="estimate",
              queue_wait_ms=1.5, cost=0.00002)
    o = _outcome(u)
    g = convert.done(o).usage
    h = oc.route_info(o)
    for name in ("ttft_ms", "total_ms", "tokens_per_s", "drafted_tokens", "accepted_tokens", "verify_steps",
                 "queue_wait_ms", "energy_j", "energy_source"):
        assert getattr(g, name) == getattr(u, name) == h[name], name
    assert h["cost"] == u.cost  # not rounded away
    assert oc.usage(o) == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    assert (g.prompt_tokens, g.completion_tokens) == (11, 7)


def test_a_continued_answer_adds_its_figures() -> None:
    d = Decision(target=Target.CLOUD, rules_fired=(), explanation="")
    cloud = Run(d, ("cloud",), usage=Usage(completion_tokens=5, cost=0.5))
    local = Run(d, ("local",), usage=Usage(prompt_tokens=20, completion_tokens=8, tokens_per_s=50.0, drafted_tokens=4,
                                           energy_j=1.0, energy_source="rapl"))
    both = local.after(cloud)
    assert both.route == "cloud+local"
    assert both.usage == Usage(prompt_tokens=20, completion_tokens=13, tokens_per_s=50.0, drafted_tokens=4,
                               energy_j=1.0, energy_source="rapl", cost=0.5)
