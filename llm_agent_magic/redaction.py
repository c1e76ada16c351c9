"""Secrets out of everything the agent sends or keeps: prompts, embeddings, the store, the call log.

One redactor for all of them (``redact``, ``redact_data``). It replaces with ``[REDACTED]``:

- values of this process's environment variables whose names say they are secrets (``*KEY*``, ``*TOKEN*``,
  ``*SECRET*``, ``*PASSWORD*``, ``*CREDENTIAL*``, and the words ``PWD``, ``DSN``, ``AUTH``, ``PAT``, ...;
  ``PWD`` and ``OLDPWD`` themselves are folders, not passwords), and values that carry credentials whatever
  the variable is called (``DATABASE_URL=postgres://user:pass@host``);
- well-known secret shapes wherever they appear, in the environment or not: ``tvly-...``, ``sk-...``,
  ``Bearer ...``, GitHub, AWS, Slack and Hugging Face tokens, private key blocks (from ``-----BEGIN ...
  PRIVATE KEY-----`` to its ``-----END``, or to the end of the text when a cut output lost the end), the
  password of a URL (``scheme://user:PASSWORD@host``) and ``Password=...`` / ``AccountKey=...`` in connection
  strings.

What it reads is untrusted (sandbox outputs, model answers): every pattern is RE2 (``linear_regex``), so a
scan costs time linear in the text whatever the text holds.

It is on the path of every model call, over the whole growing conversation, so it does each piece of work
once: the environment's secrets are worked out again only when ``os.environ`` changed since the last time
(a dictionary comparison, no decoding), and a text redacted against them is remembered, so the messages a
conversation keeps sending are scanned once, when they first go out. A change of the environment forgets
what was remembered.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .linear_regex import SPACE, linear

REDACTED = "[REDACTED]"
#: Environment values shorter than this are not treated as secrets: "1", "true" and "github" are everywhere.
MIN_SECRET_LENGTH = 8
#: Characters of remembered texts kept at most, and how many texts (least recently used go first): a few long
#: conversations, and the short values every event repeats (its type, the run's id).
MEMO_MAX_CHARS = 16_000_000
MEMO_MAX_TEXTS = 100_000
#: Characters of new text above which ``redact_messages_off_loop`` works in a thread, not on the event loop.
OFF_LOOP_CHARS = 64_000

_NAME_PARTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
_NAME_WORDS = frozenset({"PWD", "DSN", "AUTH", "PAT", "PASS", "CREDS"})
_NOT_SECRET_NAMES = frozenset({"PWD", "OLDPWD"})

# The password of a URL; placeholders of code that builds one (``{pw}``, ``$PW``, ``%(pw)s``) are not secrets.
_URL_CREDENTIALS = linear(rf"(?i)\b([a-z][a-z0-9+.\-]{{0,39}}://[^{SPACE}:/@]+:)([^{SPACE}@/{{$%<][^{SPACE}@/]*)(@)")
# Fields of connection strings (``Server=db;Password=...;``) and URL queries (``?password=...``); only in that
# syntax, so that ``password=password`` in Python code stays as it is: a field after ``;``, ``?``, ``&`` or at
# the start, or one followed by ``;``. RE2 has no lookaround, so the separators are matched and put back, in
# two passes (a ``;`` taken by one field is then still there for the next).
_FIELD_NAMES = r"(?:password|passwd|pwd|accountkey|sharedaccesskey|sharedaccesssignature)"
_FIELD_VALUE = rf"([^;&{SPACE}\"']+)"
_FIELD_AFTER_SEPARATOR = linear(rf"(?i)(^|[;?&])([{SPACE}]*{_FIELD_NAMES}=){_FIELD_VALUE}")
_FIELD_BEFORE_SEMICOLON = linear(rf"(?i)\b({_FIELD_NAMES}=){_FIELD_VALUE};")
# Each shape starts a word: "task-specific-instructions" holds "sk-" but is no key.
_SHAPES = linear(
    r"\b(?:tvly-[A-Za-z0-9_\-]{8,}"
    r"|sk-[A-Za-z0-9_\-]{16,}"
    rf"|(?i:bearer)[{SPACE}]+[A-Za-z0-9._\-~+/]{{8,}}=*"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{22,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|hf_[A-Za-z0-9]{30,})"
)
# The lines that open and close a private key block, read only where ``-----BEGIN `` or ``-----END `` is.
_KEY_LINE = linear(r"-----(?:BEGIN|END) [A-Z ]{0,40}PRIVATE KEY-----")
_KEY_LINE_MAX = 70
# Cheap tests that tell when none of the regular expressions can match (most texts): no scan then.
_SHAPE_HINTS = ("tvly-", "sk-", "bearer", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "akia", "xox", "hf_")
_FIELD_HINTS = ("pass", "pwd", "accountkey", "sharedaccess")
# Every hint above, and what the URL and private key checks look for, in one linear scan: most texts (a model's
# answer, an output) hold none, and one RE2 pass over them costs a fraction of a dozen substring searches.
_ANY_HINT = linear("|".join(re.escape(hint) for hint in (*_SHAPE_HINTS, *_FIELD_HINTS, "://", "private key")))


def secret_name(name: str) -> bool:
    """Does an environment variable's name say that its value is a secret?"""
    upper = name.upper()
    if upper in _NOT_SECRET_NAMES:
        return False
    if any(part in upper for part in _NAME_PARTS):
        return True
    return any(word in _NAME_WORDS for word in re.split(r"[^A-Z0-9]+", upper))


def _field_passwords(value: str) -> list[str]:
    found = [m.group(3) for m in _FIELD_AFTER_SEPARATOR.finditer(value)]
    return found + [m.group(2) for m in _FIELD_BEFORE_SEMICOLON.finditer(value)]


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The secrets an environment holds, longest first (so a secret inside a longer one is not left half)."""
    found: set[str] = set()
    for name, value in environ.items():
        if len(value) < MIN_SECRET_LENGTH:
            continue
        passwords = [m.group(2) for m in _URL_CREDENTIALS.finditer(value)] + _field_passwords(value)
        if secret_name(name) or passwords:
            found.add(value)
        found.update(p for p in passwords if len(p) >= MIN_SECRET_LENGTH)
    return sorted(found, key=len, reverse=True)


def _key_line(text: str, start: int, marker: str) -> tuple[int, int]:
    """Where the first BEGIN or END line of a private key (``marker`` names which) at or after ``start`` begins
    and ends; (-1, -1) when there is none. Each place ``marker`` occurs is looked at once, over at most
    ``_KEY_LINE_MAX`` characters."""
    while (found := text.find(marker, start)) != -1:
        if text.find("PRIVATE KEY-----", found, found + _KEY_LINE_MAX) != -1:
            line = _KEY_LINE.match(text[found : found + _KEY_LINE_MAX])
            if line is not None:
                return found, found + line.end()
        start = found + 1
    return -1, -1


def _private_keys(text: str) -> str:
    """``text`` with each private key block, from its BEGIN line to its END line, replaced; a block without
    an END (an output cut in the middle) to the end of the text. One pass: blocks do not nest."""
    pieces: list[str] = []
    kept = 0  # text[kept:] is not written yet
    while True:
        begin, header_end = _key_line(text, kept, "-----BEGIN ")
        if begin == -1:
            break
        pieces += [text[kept:begin], REDACTED]
        kept = _key_line(text, header_end, "-----END ")[1]
        if kept == -1:
            kept = len(text)
            break
    return "".join([*pieces, text[kept:]]) if pieces else text


def _scan(text: str, secrets: Iterable[str]) -> str:
    """``text`` with ``secrets`` and secret shapes replaced: the work of ``redact``, without remembering."""
    for value in secrets:
        if value and value in text:
            text = text.replace(value, REDACTED)
    lowered = text.lower()
    if _ANY_HINT.search(lowered) is None:
        return text
    if "://" in text and "@" in text:
        text = _URL_CREDENTIALS.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    if "=" in text and any(hint in lowered for hint in _FIELD_HINTS):
        text = _FIELD_AFTER_SEPARATOR.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
        text = _FIELD_BEFORE_SEMICOLON.sub(lambda m: m.group(1) + REDACTED + ";", text)
    if any(hint in lowered for hint in _SHAPE_HINTS):
        text = _SHAPES.sub(REDACTED, text)
    if "private key" in lowered:
        text = _private_keys(text)
    return text


class _Generation:
    """The environment's secrets for one state of ``os.environ``, and the texts already redacted against them."""

    def __init__(self, environ: dict[Any, Any], values: list[str]):
        self.environ = environ
        self.values = values
        self._memo: OrderedDict[str, str] = OrderedDict()
        self._memo_chars = 0
        self._lock = threading.Lock()  # the call log's writer thread redacts too

    def redact(self, text: str) -> str:
        with self._lock:
            done = self._memo.get(text)
            if done is not None:
                self._memo.move_to_end(text)
                return done
        done = _scan(text, self.values)
        with self._lock:
            if text not in self._memo:
                self._memo[text] = done
                self._memo_chars += len(text) + len(done)
            while (self._memo_chars > MEMO_MAX_CHARS or len(self._memo) > MEMO_MAX_TEXTS) and self._memo:
                old, old_done = self._memo.popitem(last=False)
                self._memo_chars -= len(old) + len(old_done)
        return done


_generation = _Generation({}, [])


def _environ_now() -> Mapping[Any, Any]:
    # CPython keeps the raw mapping in ``_data``: comparing it skips decoding every variable on every call,
    # and unchanged entries compare by identity.
    raw = getattr(os.environ, "_data", None)
    return raw if isinstance(raw, dict) else os.environ


def _current() -> _Generation:
    """The generation for ``os.environ`` as it is now: the same object until the environment changes."""
    global _generation
    generation, now = _generation, _environ_now()
    if now != generation.environ:
        generation = _generation = _Generation(dict(now), secret_values(os.environ))
    return generation


def environment_secrets() -> list[str]:
    """``secret_values(os.environ)``, recomputed only when the environment changes."""
    return _current().values


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with secrets (``secrets``, default: the environment's) and secret shapes replaced."""
    return _current().redact(text) if secrets is None else _scan(text, secrets)


def _walk(item: Any, redact_text: Callable[[str], str]) -> Any:
    if isinstance(item, str):
        return redact_text(item)
    if isinstance(item, Mapping):
        return {k: _walk(v, redact_text) for k, v in item.items()}
    if isinstance(item, (list, tuple)):
        return [_walk(v, redact_text) for v in item]
    return item


def redact_data(value: Any, secrets: Iterable[str] | None = None) -> Any:
    """A copy of JSON-like data (dicts, lists, strings) with every string redacted; keys are kept."""
    if secrets is None:
        return _walk(value, _current().redact)
    found = list(secrets)
    return _walk(value, lambda text: _scan(text, found))


class RedactedMessage(dict[str, Any]):
    """A chat message whose text fields ``redact_messages`` redacted, marked with the secrets it was redacted
    against: while they are the environment's, it goes out as it is, unread."""

    __slots__ = ("generation",)

    def __init__(self, fields: Mapping[str, Any], generation: _Generation):
        super().__init__(fields)
        self.generation = generation


def redactor() -> Callable[[str], str]:
    """``redact`` for the environment's secrets as they are now, to redact many texts at once (a batch of the
    call log's records) with one look at the environment for all of them."""
    return _current().redact


def redact_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Chat messages as they may leave this process: every text field redacted.

    A conversation redacts each message once, as it joins (``prompts.transcript``), and sends the same
    ``RedactedMessage`` objects at every call: here they cost an identity check, so a call's redaction work
    is its new text, not the whole conversation. Any other message is redacted now (a text seen before, under
    the same secrets, is a lookup)."""
    return _redact_messages(messages, _current())


def _redact_messages(messages: Iterable[Mapping[str, Any]], generation: _Generation) -> list[dict[str, Any]]:
    return [
        m
        if type(m) is RedactedMessage and m.generation is generation
        else RedactedMessage(_walk(dict(m), generation.redact), generation)
        for m in messages
    ]


async def redact_messages_off_loop(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``redact_messages`` for a caller on an event loop (the Jupyter server's): when the messages bring more
    than ``OFF_LOOP_CHARS`` of new text (a 1 MB output, a long answer), the work is done in a thread, so the
    loop goes on serving meanwhile; the caller awaits it, so what it does next still comes after."""
    messages = list(messages)
    generation = _current()
    new = sum(len(str(m.get("content", ""))) for m in messages if not (type(m) is RedactedMessage and m.generation is generation))
    if new < OFF_LOOP_CHARS:
        return _redact_messages(messages, generation)
    return await asyncio.to_thread(redact_messages, messages)
