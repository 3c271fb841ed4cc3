"""Streaming text: UTF-8-safe deltas and stop-sequence cutting."""

from __future__ import annotations

from edge_agent.engine.text import TextStream


def _feed_all(stream: TextStream, chunks: list[bytes]) -> list[str]:
    out = [stream.feed(c) for c in chunks]
    out.append(stream.flush())
    return out


def test_multibyte_character_split_across_tokens_is_never_split() -> None:
    data = "héllo 😀 wörld".encode()
    chunks = [data[i : i + 1] for i in range(len(data))]
    stream = TextStream()
    deltas = _feed_all(stream, chunks)
    for d in deltas:
        d.encode("utf-8")  # a lone surrogate or split char would not round-trip
        assert "\ufffd" not in d
    assert "".join(deltas) == "héllo 😀 wörld"


def test_stop_sequence_is_cut_and_text_before_it_streamed() -> None:
    stream = TextStream(stop=("END",))
    deltas = _feed_all(stream, [b"abc E", b"N", b"D tail"])
    assert "".join(deltas) == "abc "
    assert stream.stopped
    assert stream.feed(b"more") == ""


def test_partial_stop_prefix_is_held_then_released() -> None:
    stream = TextStream(stop=("\n\n",))
    assert stream.feed(b"line\n") == "line"
    assert stream.feed(b"next") == "\nnext"
    assert stream.flush() == ""
    assert stream.text == "line\nnext"
    assert not stream.stopped


def test_earliest_of_several_stops_wins() -> None:
    stream = TextStream(stop=("zz", "b"))
    assert "".join(_feed_all(stream, [b"aab zz"])) == "aa"


def test_held_back_prefix_released_at_flush() -> None:
    stream = TextStream(stop=("STOP",))
    assert stream.feed(b"abc ST") == "abc "
    assert stream.flush() == "ST"
