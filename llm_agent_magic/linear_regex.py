"""Regular expressions over untrusted text (sandbox outputs, model answers, files users point at).

Python's ``re`` backtracks: a crafted text of 100 KB can hold a pattern for minutes (``a-a-a-...`` before
``://`` made the redactor's URL pattern quadratic). RE2 (``google-re2``) runs every pattern as an automaton,
in time linear in the text whatever the pattern and the input, so every pattern applied to untrusted text is
compiled here. What RE2 reads differently from ``re``: no lookaround and no backreferences (the patterns
are written without them); ``\\s``, ``\\w``, ``\\d`` and ``\\b`` are ASCII; ``$`` without ``(?m)`` is the very end.
"""

from __future__ import annotations

import re
from typing import cast

import re2

#: The automaton's memory; a pattern that needs more falls back to RE2's slower, still linear, engine.
_OPTIONS = re2.Options()
_OPTIONS.max_mem = 8 << 20

#: What ``re``'s ``\s`` matches in a ``str`` (RE2's is ASCII), for use inside a character class: ``[{SPACE}]``.
SPACE = r"\s\v\x1c-\x1f\x85\p{Z}"


def linear(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled by RE2; it has the ``re.Pattern`` methods the package uses (``search``, ``match``,
    ``finditer``, ``findall``, ``sub``, ``split``)."""
    return cast("re.Pattern[str]", re2.compile(pattern, _OPTIONS))


def is_linear(pattern: object) -> bool:
    """Was ``pattern`` compiled by ``linear`` (RE2), not by ``re``?"""
    return isinstance(pattern, re2._Regexp)
