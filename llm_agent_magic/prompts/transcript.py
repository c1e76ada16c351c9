"""One run's conversation with the model, laid out so that a local model can reuse its cache.

Ollama (llama.cpp) keeps the KV cache of the last prompt it processed for a model and
recomputes only what follows the first token that differs. So every call of a run is the
same growing conversation:

    system    the agent's role, tools and rules            (the same for every call and run)
    history   the conversation so far                      (the same for every call of a run)
    user      the request, attached files, the clock       (the same for every call of a run)
    ...       earlier calls of this run, each an instruction and the model's reply
    user      what happened since (observations, outputs), then this call's instruction

Each call's prompt begins with the whole previous call and its reply; only the new tail
is computed. What is specific to a purpose (classify, react, code, verify, fix, answer)
is the instruction at the end; the model protocol of each purpose is unchanged.

Each message is redacted once, when it joins (``redact_messages``): the client, which redacts
everything it sends, then passes these on unread, so a call costs its new text, not the whole
conversation again.
"""

from __future__ import annotations

from typing import Any

from ..redaction import redact_messages, redact_messages_off_loop
from ..text import CHARS_PER_TOKEN, clip
from ..text import estimate_tokens as tokens_of

Message = dict[str, Any]


class Transcript:
    """The messages of one run: a fixed head, the run's turns, and context waiting for the next call."""

    def __init__(self, system: str, history: list[Message], opening: str, *, num_ctx: int, reserve: int = 2048):
        self.head: list[Message] = redact_messages([{"role": "system", "content": system}, *history])
        self.opening: Message = redact_messages([{"role": "user", "content": opening}])[0]
        self.turns: list[Message] = []
        self.num_ctx = num_ctx
        self.reserve = reserve
        self._pending: list[str] = []

    def add(self, text: str) -> None:
        """Context for the next call (an observation, an execution's output), put before its instruction."""
        if text.strip():
            self._pending.append(text.strip())

    def _current(self, instruction: str) -> Message:
        return {"role": "user", "content": "\n\n".join([*self._pending, instruction.strip()])}

    def messages(self, instruction: str) -> list[Message]:
        """The prompt for a call whose instruction is ``instruction``, fitted into the context window."""
        return fit(self.head, self.opening, self.turns, self._current(instruction), self.num_ctx - self.reserve)

    def record(self, instruction: str, reply: str) -> None:
        """The call was answered: its message and the reply become part of every later prompt."""
        self.turns += redact_messages([self._current(instruction), {"role": "assistant", "content": reply}])
        self._pending = []

    async def arecord(self, instruction: str, reply: str) -> None:
        """``record`` for the agents, on an event loop: a long reply is redacted in a worker thread."""
        self.turns += await redact_messages_off_loop([self._current(instruction), {"role": "assistant", "content": reply}])
        self._pending = []


def fit(head: list[Message], opening: Message, turns: list[Message], current: Message, budget: int) -> list[Message]:
    """``[*head, opening, *turns, current]`` within ``budget`` tokens.

    Dropped first: the oldest history messages, then the run's oldest turns (an instruction and its
    reply together). The system prompt, the opening and the current message always stay; if even
    they do not fit, the current message is cut in the middle, keeping its start and end.
    """
    budget = max(256, budget)
    system, history = head[:1], list(head[1:])
    turns = list(turns)

    def size(messages: list[Message]) -> int:
        return sum(tokens_of(str(m.get("content", ""))) for m in messages)

    # One count of the whole prompt, less what each drop takes away (not a recount per drop).
    used = size([*system, *history, opening, *turns, current])
    dropped = 0
    while dropped < len(history) and used > budget:
        used -= size(history[dropped : dropped + 1])
        dropped += 1
    del history[:dropped]
    dropped = 0
    while dropped < len(turns) and used > budget:
        used -= size(turns[dropped : dropped + 2])
        dropped += 2
    del turns[:dropped]
    if used > budget:
        room = max(200, int((budget - (used - tokens_of(str(current["content"])))) * CHARS_PER_TOKEN))
        current = {**current, "content": clip(str(current["content"]), room)}
    return [*system, *history, opening, *turns, current]
