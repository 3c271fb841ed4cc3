"""Drafters and the adaptive draft policy, with plain token lists."""

from __future__ import annotations

from pathlib import Path

from edge_agent.engine.adaptive import DraftPolicy
from edge_agent.engine.drafters import ContextDrafter, CorpusDrafter, Draft


def test_context_drafter_prefers_longest_then_most_recent_match() -> None:
    d = ContextDrafter(min_n=2, max_n=3)
    # "1 2 3" occurs twice with different continuations; the later one wins
    d.begin([1, 2, 3, 7, 8, 9, 1, 2, 3, 5, 6, 0, 4, 2, 3])
    p = d.propose(3)
    assert p is not None
    assert p.tokens == (5, 6, 0) and p.match_len == 2  # "2 3" -> most recent continuation
    d.extend([9, 1, 2, 3])  # now the tail "1 2 3" matches 3 tokens
    p = d.propose(2)
    assert p is not None and p.match_len == 3 and p.tokens == (5, 6)


def test_context_drafter_minimum_match_length() -> None:
    d = ContextDrafter(min_n=2, max_n=4)
    d.begin([5, 1, 9, 9, 1])
    assert d.propose(4) is None  # only a 1-token match ("1")
    d.extend([9])
    p = d.propose(4)
    assert p is not None and p.tokens[0] == 9 and p.match_len == 2


def test_context_drafter_continues_into_generated_tokens() -> None:
    d = ContextDrafter(min_n=2, max_n=4)
    d.begin([10, 11, 12, 13])
    d.extend([10, 11])
    p = d.propose(8)
    # the known continuation (12 13 10 11), then the same period again: the tail
    # matched 4 tokens back, so a sequence that keeps repeating goes on this way
    assert p is not None and p.tokens == (12, 13, 10, 11, 12, 13, 10, 11)
    assert d.propose(0) is None


def test_context_drafter_drafts_a_whole_loop_not_one_period() -> None:
    """A model stuck on one token (or a phrase) over and over: the most recent match
    is one period back, so its known continuation is one period long; the draft
    repeats it to the full length (as prompt lookup's earliest match would)."""
    d = ContextDrafter(min_n=2, max_n=4)
    d.begin([3, 4, 5] + [7] * 6)
    p = d.propose(10)
    assert p is not None and p.tokens == (7,) * 10 and p.match_len == 4
    d.begin([1, 2, 8, 9, 8, 9, 8, 9])
    p = d.propose(5)
    assert p is not None and p.tokens == (8, 9, 8, 9, 8)


def test_corpus_drafter_finds_stored_text_and_evicts_lru(tmp_path: Path) -> None:
    c = CorpusDrafter(min_n=2, max_n=3, max_tokens=20)
    a = list(range(100, 110))
    b = list(range(200, 210))
    c.add(a)
    c.add(b)
    assert c.stored_tokens == 20
    c.begin([1, 2, 103, 104])
    p = c.propose(3)
    assert p is not None and p.tokens == (105, 106, 107) and p.source == "corpus"
    c.add(a)  # refresh a: b becomes least recently used
    c.add(list(range(300, 310)))  # over budget: b goes
    assert c.stored_tokens == 20 and len(c) == 2
    c.begin([204, 205])
    assert c.propose(3) is None
    c.begin([104, 105])
    assert c.propose(2) is not None
    path = tmp_path / "store.json"
    c.save(path)
    again = CorpusDrafter(min_n=2, max_n=3, max_tokens=20)
    again.load(path)
    again.begin([301, 302])
    hit = again.propose(2)
    assert hit is not None and hit.tokens == (303, 304)


def test_corpus_drafter_tail_follows_extend() -> None:
    c = CorpusDrafter(min_n=2, max_n=4)
    c.add([1, 2, 3, 4, 5, 6])
    c.begin([9, 9, 9])
    assert c.propose(4) is None
    c.extend([2, 3])
    p = c.propose(4)
    assert p is not None and p.tokens == (4, 5, 6)


def _draft(n: int = 8, match: int = 2) -> Draft:
    return Draft(tuple(range(n)), "context", match)


def test_policy_gates_off_after_rejections_and_grows_after_acceptance() -> None:
    pol = DraftPolicy(max_draft=16, step_cost=0.2)
    d = _draft()
    assert pol.draft_len(d) > 0  # optimistic prior: try
    for _ in range(4):
        pol.update(d, pol.draft_len(d) or 1, 0)
    assert pol.draft_len(d) == 0  # drafting would not pay
    other = _draft(16, match=4)
    for _ in range(10):
        pol.update(other, 8, 8)
    assert pol.draft_len(other) >= 8
    pol.reset()  # the next request starts from what this one learnt
    assert pol.draft_len(d) == 0
    assert pol.acceptance(other) > 0.7
    pol.forget()
    assert pol.draft_len(d) > 0


def test_policy_probes_a_gated_source_again() -> None:
    pol = DraftPolicy(step_cost=0.2, retry_every=5)
    d = _draft()
    for _ in range(6):
        pol.update(d, 2, 0)
    lens = [pol.draft_len(d) for _ in range(10)]
    assert lens == [0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    for _ in range(12):
        pol.update(d, 1, 1)  # the source started to match: drafting resumes
    assert pol.draft_len(d) > 1


def test_policy_never_drafts_when_verification_is_too_expensive() -> None:
    pol = DraftPolicy(step_cost=1.5)
    d = _draft()
    for _ in range(20):
        pol.update(d, 4, 4)
    assert pol.draft_len(d) == 0


def test_longer_matches_start_more_optimistic() -> None:
    pol = DraftPolicy(step_cost=0.2)
    short, long = _draft(16, match=2), _draft(16, match=4)
    assert pol.acceptance(long) > pol.acceptance(short)
    assert pol.draft_len(long) > pol.draft_len(short) > 0


def test_corpus_clear_forgets_every_text() -> None:
    corpus = CorpusDrafter(min_n=2, max_n=3)
    corpus.add([5, 6, 7, 8, 9, 10])
    corpus.begin([1, 5, 6])
    assert corpus.propose(3) is not None
    corpus.clear()
    assert len(corpus) == 0 and corpus.stored_tokens == 0
    corpus.begin([1, 5, 6])
    assert corpus.propose(3) is None
