"""Name what went wrong with a cell, and say what usually fixes that kind of failure.

The guidance itself is prompt text, so it lives beside the templates, in ``error_guidance.md``."""

from __future__ import annotations

from dataclasses import dataclass

from ...prompts import prompt_sections


@dataclass(frozen=True)
class ErrorClass:
    name: str
    guidance: str


_BY_ENAME = {
    "IndexError": "index_error",
    "KeyError": "key_error",
    "TypeError": "type_error",
    "FileNotFoundError": "file_not_found",
    "JSONDecodeError": "json_decode",
    "ValueError": "value_error",
    "AttributeError": "attribute_error",
    "NameError": "name_error",
    "UnboundLocalError": "name_error",
    "ImportError": "import_error",
    "ModuleNotFoundError": "import_error",
    "ZeroDivisionError": "zero_division",
    "UnicodeDecodeError": "unicode_decode",
    "PermissionError": "permission",
    "MemoryError": "memory",
    "SyntaxError": "syntax_error",
    "IndentationError": "syntax_error",
    "TimeoutError": "timeout",
}


def classify_error(status: str, ename: str = "", evalue: str = "") -> ErrorClass:
    """The class of a failed execution, from its status and the exception's name and message."""
    if status in ("timeout", "died"):
        name = status
    elif ename == "AttributeError" and "'NoneType' object has no attribute" in evalue:
        name = "none_attribute"
    elif ename in ("ValueError", "JSONDecodeError") and ("Expecting value" in evalue or "JSON" in evalue):
        name = "json_decode"
    else:
        name = _BY_ENAME.get(ename, "other")
    return guidance_for(name)


def guidance_for(name: str) -> ErrorClass:
    """The class ``name`` with its guidance (``prompts/templates/error_guidance.md``)."""
    return ErrorClass(name, prompt_sections("error_guidance")[name])
