"""Secrets out of everything the agent sends or keeps: prompts, embeddings, the store, the call log.

One redactor for all of them (``redact``, ``redact_data``). It replaces with ``[REDACTED]``:

- values of this process's environment variables whose names say they are secrets (``*KEY*``, ``*TOKEN*``,
  ``*SECRET*``, ``*PASSWORD*``, ``*CREDENTIAL*``, and the words ``PWD``, ``DSN``, ``AUTH``, ``PAT``, ...;
  ``PWD`` and ``OLDPWD`` themselves are folders, not passwords), and values that carry credentials whatever
  the variable is called (``DATABASE_URL=postgres://user:pass@host``);
- well-known secret shapes wherever they appear, in the environment or not: ``tvly-...``, ``sk-...``,
  ``Bearer ...``, GitHub, AWS, Slack and Hugging Face tokens, private key blocks, the password of a URL
  (``scheme://user:PASSWORD@host``) and ``Password=...`` / ``AccountKey=...`` in connection strings.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"
#: Environment values shorter than this are not treated as secrets: "1", "true" and "github" are everywhere.
MIN_SECRET_LENGTH = 8

_NAME_PARTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
_NAME_WORDS = frozenset({"PWD", "DSN", "AUTH", "PAT", "PASS", "CREDS"})
_NOT_SECRET_NAMES = frozenset({"PWD", "OLDPWD"})

# The password of a URL; placeholders of code that builds one (``{pw}``, ``$PW``, ``%(pw)s``) are not secrets.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@]+:)(?![{$%<])([^\s@/]+)(@)")
# Fields of connection strings (``Server=db;Password=...;``) and URL queries (``?password=...``); only in that
# syntax, so that ``password=password`` in Python code stays as it is.
_FIELD_NAMES = r"(?:password|passwd|pwd|accountkey|sharedaccesskey|sharedaccesssignature)"
_CONNECTION_FIELD = re.compile(
    rf"(?i)((?:^|(?<=[;?&]))\s*{_FIELD_NAMES}=)([^;&\s\"']+)|(\b{_FIELD_NAMES}=)([^;&\s\"']+)(?=;)"
)
# Each shape starts a word: "task-specific-instructions" holds "sk-" but is no key.
_SHAPES = re.compile(
    r"\b(?:tvly-[A-Za-z0-9_\-]{8,}"
    r"|sk-[A-Za-z0-9_\-]{16,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._\-~+/]{8,}=*"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{22,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|hf_[A-Za-z0-9]{30,})"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
)
# Cheap tests that tell when none of the regular expressions can match (most texts): no scan then.
_SHAPE_HINTS = ("tvly-", "sk-", "bearer", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "akia", "xox", "hf_",
                "private key")
_FIELD_HINTS = ("pass", "pwd", "accountkey", "sharedaccess")


def secret_name(name: str) -> bool:
    """Does an environment variable's name say that its value is a secret?"""
    upper = name.upper()
    if upper in _NOT_SECRET_NAMES:
        return False
    if any(part in upper for part in _NAME_PARTS):
        return True
    return any(word in _NAME_WORDS for word in re.split(r"[^A-Z0-9]+", upper))


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The secrets an environment holds, longest first (so a secret inside a longer one is not left half)."""
    found: set[str] = set()
    for name, value in environ.items():
        if len(value) < MIN_SECRET_LENGTH:
            continue
        passwords = [m.group(2) for m in _URL_CREDENTIALS.finditer(value)]
        passwords += [m.group(2) or m.group(4) for m in _CONNECTION_FIELD.finditer(value)]
        if secret_name(name) or passwords:
            found.add(value)
        found.update(p for p in passwords if len(p) >= MIN_SECRET_LENGTH)
    return sorted(found, key=len, reverse=True)


_cache: tuple[tuple[Any, ...], list[str]] = ((), [])


def environment_secrets() -> list[str]:
    """``secret_values(os.environ)``, recomputed only when the environment changes."""
    global _cache
    # CPython keeps the raw mapping in ``_data``: reading it skips decoding every variable on every call,
    # and unchanged entries compare by identity.
    raw = getattr(os.environ, "_data", None)
    key = tuple(raw.items()) if isinstance(raw, dict) else tuple(os.environ.items())
    if key != _cache[0]:
        _cache = (key, secret_values(os.environ))
    return _cache[1]


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with secrets (``secrets``, default: the environment's) and secret shapes replaced."""
    for value in environment_secrets() if secrets is None else secrets:
        if value and value in text:
            text = text.replace(value, REDACTED)
    lowered = text.lower()
    if "://" in text and "@" in text:
        text = _URL_CREDENTIALS.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    if "=" in text and any(hint in lowered for hint in _FIELD_HINTS):
        text = _CONNECTION_FIELD.sub(lambda m: (m.group(1) or m.group(3)) + REDACTED, text)
    if any(hint in lowered for hint in _SHAPE_HINTS):
        text = _SHAPES.sub(REDACTED, text)
    return text


def redact_data(value: Any, secrets: Iterable[str] | None = None) -> Any:
    """A copy of JSON-like data (dicts, lists, strings) with every string redacted; keys are kept."""
    found = list(environment_secrets() if secrets is None else secrets)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return redact(item, found)
        if isinstance(item, Mapping):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        return item

    return walk(value)


def redact_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Chat messages as they may leave this process: every text field redacted."""
    return [redact_data(dict(m)) for m in messages]
