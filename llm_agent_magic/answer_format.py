"""Answer formats such as DABench's ``@name[value]``: what a request asks for, what code printed, what an
answer left out.

A request carries an answer format when it names values as ``@name[...]`` (``Answer format: @mean[value]``).
The code step is then told to print each value in that format, the answer step restates the format, and
``complete_answer`` adds to the answer every requested value the code printed but the answer left out.

Code output is sandbox text and answers are model text, both untrusted: they are read by a hand-written
scanner that looks at each character a bounded number of times (no regular expression, no backtracking).
A value is what stands between ``[`` and the first ``]`` on the same line, as DABench's scorer reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Most characters of a request searched for a format, of an output searched for values.
MAX_SCANNED = 200_000
#: Longest value taken from an output (a longer one is not a value the format asked for).
MAX_VALUE_CHARS = 200
#: Most names one format may request; the rest are ignored.
MAX_NAMES = 40
#: Longest format paragraph restated to the model.
MAX_PARAGRAPH_CHARS = 600


def _is_name_char(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


def scan(text: str, limit: int = MAX_SCANNED) -> list[tuple[str, str]]:
    """Every ``@name[value]`` in the first ``limit`` characters of ``text``, in order, as (name, value).

    Linear in the text: ``next_close`` and ``next_newline`` only move forward.
    """
    text = text[:limit]
    found: list[tuple[str, str]] = []
    n = len(text)
    next_close = next_newline = -1
    at = text.find("@")
    while at != -1:
        end = at + 1
        while end < n and _is_name_char(text[end]):
            end += 1
        if end > at + 1 and end < n and text[end] == "[":
            if next_close < end:
                next_close = text.find("]", end)
            if next_newline < end:
                next_newline = text.find("\n", end)
                next_newline = n if next_newline == -1 else next_newline
            if next_close == -1:
                break  # no "]" after this point: no later "@name[" can close either
            if next_close < next_newline:
                found.append((text[at + 1 : end], text[end + 1 : next_close]))
                at = text.find("@", next_close + 1)
                continue
        at = text.find("@", max(end, at + 1))
    return found


@dataclass(frozen=True)
class AnswerFormat:
    """The names a request asks for (in order, once each) and the paragraphs of the request that ask for them
    (a format's explanation often follows its ``@name[...]`` on the next line)."""

    names: tuple[str, ...] = ()
    paragraphs: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.names)

    @property
    def text(self) -> str:
        """The request's format, verbatim (its paragraphs that name a value)."""
        return "\n".join(self.paragraphs)


def requested(request: str) -> AnswerFormat:
    """The answer format ``request`` carries, or an empty one."""
    names: list[str] = []
    paragraphs: list[str] = []
    for paragraph in request[:MAX_SCANNED].replace("\r\n", "\n").split("\n\n"):
        found = [name for name, _ in scan(paragraph)]
        if not found:
            continue
        paragraphs.append(paragraph.strip()[:MAX_PARAGRAPH_CHARS])
        for name in found:
            if name not in names:
                names.append(name)
    return AnswerFormat(tuple(names[:MAX_NAMES]), tuple(paragraphs))


def printed_values(outputs: list[str], names: tuple[str, ...]) -> dict[str, str]:
    """The value of each requested name that ``outputs`` printed as ``@name[value]``; a later print wins."""
    wanted = set(names)
    values: dict[str, str] = {}
    for output in outputs:
        for name, value in scan(output[-MAX_SCANNED:]):
            value = value.strip()
            if name in wanted and value and len(value) <= MAX_VALUE_CHARS:
                values[name] = value
    return values


def _has_word(text: str, word: str) -> bool:
    """``word`` in ``text`` as a whole word (not inside a longer name): one pass of ``find`` per occurrence."""
    at = text.find(word)
    while at != -1:
        end = at + len(word)
        if (at == 0 or not _is_name_char(text[at - 1])) and (end == len(text) or not _is_name_char(text[end])):
            return True
        at = text.find(word, at + 1)
    return False


def carries_any(output: str, names: tuple[str, ...]) -> bool:
    """Whether ``output`` holds at least one requested value: as ``@name[value]``, or the name as a word."""
    if any(name in set(names) for name, _ in scan(output[-MAX_SCANNED:])):
        return True
    lowered = output[-MAX_SCANNED:].lower()
    return any(_has_word(lowered, name.lower()) for name in names)


def complete_answer(answer: str, outputs: list[str], names: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """``answer`` with every requested value it left out that ``outputs`` printed, and those values by name."""
    if not names:
        return answer, {}
    given = {name for name, _ in scan(answer)}
    added = {name: value for name, value in printed_values(outputs, names).items() if name not in given}
    if not added:
        return answer, {}
    lines = "\n".join(f"@{name}[{value}]" for name, value in added.items())
    return f"{answer.rstrip()}\n\n{lines}", added


def stated_constraints(request: str, limit: int = 1500) -> str:
    """What the code step gets verbatim: the request's ``Constraints:`` paragraph when it has one, else the
    request itself when it is short (a paraphrase in the task loses methods, parameters and rounding)."""
    paragraphs = [p.strip() for p in request.replace("\r\n", "\n").split("\n\n")]
    labelled = [p for p in paragraphs if p.lower().startswith("constraints:")]
    if labelled:
        return "\n\n".join(labelled)[:limit]
    return request.strip() if len(request.strip()) <= limit else ""
