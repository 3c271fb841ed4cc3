"""A conversation as model text: the plain format and a GGUF chat template."""

from __future__ import annotations

from common.chat import SEPARATOR, Message, as_text, render_plain, with_contents
from edge_agent.engine.chat import render

TURNS = (Message("system", "Be brief."), Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Bye"))
TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{{ eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


def test_plain_format() -> None:
    assert render_plain(TURNS) == "System: Be brief.\n\nUser: Hi\nAssistant: Hello\nUser: Bye\nAssistant:"


def test_a_turn_and_its_answer_are_a_prefix_of_the_next_turn() -> None:
    first = render_plain(TURNS[:2])
    assert render_plain((*TURNS[:2], Message("assistant", "Hello"), Message("user", "Bye"))).startswith(first + " Hello")


def test_the_models_template_is_applied_with_its_tokens() -> None:
    assert render(TURNS, TEMPLATE, bos="<s>", eos="</s>") == "<s><system>Be brief.</s><user>Hi</s><assistant>Hello</s><user>Bye</s><assistant>"
    assert render(TURNS) == render_plain(TURNS)  # no template: the plain format


def test_joined_text_splits_back_into_the_messages() -> None:
    joined = as_text(TURNS)
    assert joined.count(SEPARATOR) == len(TURNS) - 1
    assert with_contents(TURNS, joined.replace("Hi", "[NAME_1]")) == (TURNS[0], Message("user", "[NAME_1]"), *TURNS[2:])
