"""A conversation as the local model's prompt: its GGUF chat template, or the plain
format of ``common.chat`` when the model has none."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common.chat import Message, render_plain


def render(messages: Sequence[Message], template: str | None = None, *, bos: str = "", eos: str = "") -> str:
    if not template:
        return render_plain(messages)
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = Jinja2ChatFormatter(template=template, bos_token=bos, eos_token=eos, add_generation_prompt=True)
    turns: list[Any] = [{"role": m.role, "content": m.content} for m in messages]
    return str(formatter(messages=turns).prompt)
