"""Keep a thinking model's reasoning out of answers.

Models such as qwen3 and deepseek-r1 wrap their reasoning in ``<think>...</think>``
inside the content when the server does not split it into a ``thinking`` field.
Tags can be cut across streamed chunks, so the filter holds back any tail that
could still turn into a tag.
"""

from __future__ import annotations

from ..linear_regex import linear

OPEN, CLOSE = "<think>", "</think>"
# RE2, as every pattern over the model's words (this one is linear in ``re`` too: the end always matches).
_THINK_BLOCK = linear(r"(?s)<think>.*?(</think>|\z)")


def strip_thinking(text: str) -> str:
    """Remove every ``<think>`` block (closed or left open at the end) from a whole answer."""
    return _THINK_BLOCK.sub("", text).lstrip() if OPEN in text else text


def _partial_tag_len(text: str, tag: str) -> int:
    """Length of the longest tail of ``text`` that is a proper prefix of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class ThinkFilter:
    """Feed streamed chunks in, get only the visible text out."""

    def __init__(self) -> None:
        self._pending = ""
        self._inside = False
        self._emitted_any = False
        self.thinking = ""  # what was hidden, for the call log
        #: Outside thinking, nothing held back, the answer's start passed: a chunk without "<" is all visible
        #: as it is (the common case; a streamed answer tests this itself rather than call ``feed`` per token).
        self.clear = False

    def feed(self, chunk: str) -> str:
        if self.clear and "<" not in chunk:
            return chunk  # the common case, kept cheap: plain text with no tag in sight
        out = self._feed(chunk)
        self.clear = not self._inside and not self._pending and self._emitted_any
        return out

    def _feed(self, chunk: str) -> str:
        self._pending += chunk
        out: list[str] = []
        while self._pending:
            if self._inside:
                idx = self._pending.find(CLOSE)
                if idx < 0:
                    keep = _partial_tag_len(self._pending, CLOSE)
                    self.thinking += self._pending[: len(self._pending) - keep]
                    self._pending = self._pending[len(self._pending) - keep :]
                    break
                self.thinking += self._pending[:idx]
                self._pending = self._pending[idx + len(CLOSE) :]
                self._inside = False
                continue
            idx = self._pending.find(OPEN)
            if idx < 0:
                keep = _partial_tag_len(self._pending, OPEN)
                out.append(self._pending[: len(self._pending) - keep])
                self._pending = self._pending[len(self._pending) - keep :]
                break
            out.append(self._pending[:idx])
            self._pending = self._pending[idx + len(OPEN) :]
            self._inside = True
        return self._visible("".join(out))

    def flush(self) -> str:
        """End of stream: a held-back partial tag was plain text after all (unless inside a think block)."""
        rest, self._pending = self._pending, ""
        self.clear = False
        if self._inside:
            self.thinking += rest
            return ""
        return self._visible(rest)

    def _visible(self, text: str) -> str:
        # Models put blank lines after </think>; an answer should not start with them.
        if not self._emitted_any:
            text = text.lstrip()
            if text:
                self._emitted_any = True
        return text
