"""Chat messages to model text: the model's own template, or a documented plain format.

A GGUF file may carry its chat template (``tokenizer.chat_template``, Jinja); where the
model is run, it is applied with llama-cpp-python's Jinja formatter
(``edge_agent.engine.chat``, ``cloud_stub.backends``). A model without one (base models
such as the shipped Gemma 3 270M) gets the plain format:

    System: <system message>

    User: <message>
    Assistant: <message>
    User: <message>
    Assistant:

A plain-format answer ends where the model starts a next turn (``PLAIN_STOPS``);
with a template, the model's end-of-turn token ends it.

Both renderings are prefix-stable: the text of turns 1..n followed by the model's answer
is the start of the text of turn n+1, so the engine reuses the KV cache of the earlier
turns and a follow-up's time to first token does not grow with the conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.errors import InvalidArgument, OutOfRange

ROLES = ("system", "user", "assistant")
MAX_MESSAGES = 256
PLAIN_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}


@dataclass(frozen=True)
class Message:
    role: str
    content: str


def render_plain(messages: Sequence[Message]) -> str:
    """The plain format (see the module docstring), ending with the assistant's cue."""
    parts: list[str] = []
    for m in messages:
        if m.role == "system":
            parts.append(f"System: {m.content}\n\n")
        else:
            parts.append(f"{PLAIN_LABELS[m.role]}: {m.content}\n")
    return "".join(parts) + "Assistant:"


# Where a plain-format answer ends: the model starting the next turn itself.
PLAIN_STOPS = ("\nUser:", "\nAssistant:", "\nSystem:")


# What a model is asked: a prompt string, or a conversation.
Prompt = str | tuple[Message, ...]

# Joins a conversation's texts for routing and redaction (PII detection and the
# redacted hand-off see every message; the hand-off is split back into messages).
# Message contents may not contain it.
SEPARATOR = "\n\x1e\n"


def as_text(prompt: Prompt) -> str:
    """A prompt's text: the string, or the messages' contents joined by SEPARATOR."""
    return prompt if isinstance(prompt, str) else SEPARATOR.join(m.content for m in prompt)


def with_contents(messages: tuple[Message, ...], joined: str) -> tuple[Message, ...]:
    """``messages`` with the contents of ``joined`` (``as_text`` of a changed copy)."""
    parts = joined.split(SEPARATOR)
    if len(parts) != len(messages):
        raise ValueError("the joined text does not have one part per message")
    return tuple(Message(m.role, c) for m, c in zip(messages, parts, strict=True))


def check_messages(pairs: Sequence[tuple[str, str]], max_bytes: int, field: str = "messages") -> tuple[Message, ...]:
    """A conversation from (role, content) pairs, every rule checked: roles, a system
    message only first, non-empty contents without NUL or the separator, the user
    speaking last, the total size. Errors name ``field[i].role`` / ``.content``."""
    if not pairs:
        raise InvalidArgument(field, "must hold at least one message")
    if len(pairs) > MAX_MESSAGES:
        raise InvalidArgument(field, f"at most {MAX_MESSAGES} messages")
    out: list[Message] = []
    size = 0
    for i, (role, content) in enumerate(pairs):
        if role not in ROLES:
            raise InvalidArgument(f"{field}[{i}].role", f"one of {', '.join(ROLES)} (got {role[:32]!r})")
        if role == "system" and i:
            raise InvalidArgument(f"{field}[{i}].role", "a system message may only come first")
        if not content.strip():
            raise InvalidArgument(f"{field}[{i}].content", "must not be empty")
        if "\x00" in content or SEPARATOR.strip("\n") in content:
            raise InvalidArgument(f"{field}[{i}].content", "must not contain NUL or U+001E characters")
        size += len(content.encode("utf-8", "surrogatepass"))
        out.append(Message(role, content))
    if out[-1].role != "user":
        raise InvalidArgument(f"{field}[{len(out) - 1}].role", "the last message must be from the user")
    if size > max_bytes:
        raise OutOfRange(field, f"contents must be at most {max_bytes} bytes in all (got {size})")
    return tuple(out)
