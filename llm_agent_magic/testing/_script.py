"""What the scripted servers' scripts share: loading, key checks, rule fields, messages that name the spot."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

ScriptSource = Union[Mapping[str, Any], str, "os.PathLike[str]", None]


class ScriptReader:
    """Checks one server's script; every problem is a ``ValueError`` naming the server and the spot."""

    def __init__(self, label: str):
        self.label = label

    def problem(self, where: str, message: str) -> ValueError:
        return ValueError(f"{self.label} script: {where + ': ' if where else ''}{message}")

    def load(self, source: ScriptSource) -> dict[str, Any]:
        """The script from a dict or a JSON file (``{}`` for none)."""
        if source is None:
            return {}
        if isinstance(source, Mapping):
            return dict(source)
        path = Path(source)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.label} script {path}: not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise self.problem("", f"expected an object, got {type(raw).__name__}")
        return raw

    def object(self, where: str, raw: Any, allowed: frozenset[str]) -> Mapping[str, Any]:
        """``raw`` as a mapping whose keys are all in ``allowed``."""
        if not isinstance(raw, Mapping):
            raise self.problem(where, f"expected an object, got {type(raw).__name__}")
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise self.problem(where, f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
        return raw

    def rules(self, raw: Mapping[str, Any]) -> list[Any]:
        rules = raw.get("rules", [])
        if not isinstance(rules, list):
            raise self.problem("", "'rules' must be a list")
        return rules

    def regex(self, where: str, raw: Mapping[str, Any], key: str, flags: int = re.DOTALL) -> re.Pattern[str] | None:
        if key not in raw:
            return None
        if not isinstance(raw[key], str):
            raise self.problem(where, f"{key!r} must be a string")
        try:
            return re.compile(raw[key], flags)
        except re.error as exc:
            raise self.problem(where, f"bad regex in {key!r} {raw[key]!r}: {exc}") from None

    def times(self, where: str, raw: Mapping[str, Any]) -> int | None:
        if "times" not in raw:
            return None
        value = raw["times"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.problem(where, "'times' must be a whole number >= 0")
        return value

    def number(self, where: str, raw: Mapping[str, Any], key: str) -> float:
        value = raw.get(key, 0)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise self.problem(where, f"{key!r} must be a number >= 0")
        return value

    def choice(self, where: str, raw: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str | None:
        if key not in raw:
            return None
        if raw[key] not in choices:
            raise self.problem(where, f"unknown {key} {raw[key]!r} (expected one of: {', '.join(choices)})")
        return str(raw[key])


class Scripted:
    """What both scripted servers do with their script: replace it, add a rule, under one lock.

    A subclass sets ``parse_script(raw) -> script`` and ``parse_rule(index, raw) -> rule``, keeps its
    script in ``_script`` (with a ``rules`` list) and a ``threading.Lock`` in ``_lock``.
    """

    _script: Any
    _lock: Any
    reader: ScriptReader

    def parse_script(self, raw: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def parse_rule(self, index: int, raw: Any) -> Any:
        raise NotImplementedError

    def load(self, script: ScriptSource) -> Any:
        """Replace the script (a dict or a JSON file path); rule counters start again."""
        parsed = self.parse_script(self.reader.load(script))
        with self._lock:
            self._script = parsed
        return self

    def add_rule(self, rule: Mapping[str, Any] | None = None, **fields: Any) -> int:
        """Append a rule (given as a dict and/or keywords); returns its index."""
        with self._lock:
            index = len(self._script.rules)
            self._script.rules.append(self.parse_rule(index, {**(rule or {}), **fields}))
        return index
