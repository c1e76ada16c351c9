"""Name what went wrong with a cell, and say what usually fixes that kind of failure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorClass:
    name: str
    guidance: str


_GUIDANCE: dict[str, str] = {
    "index_error": "An index was out of range. Check lengths before indexing (len(), .shape, .empty); the variables below show which sequences are empty or shorter than assumed. Use .iloc with bounds, or handle the empty case.",
    "key_error": "A key or column was not found. Use the exact names shown in the variables below (columns are case- and space-sensitive); strip/normalise column names if needed, and check with `in` before indexing.",
    "type_error": "A value had the wrong type for the operation. Check dtypes in the variables below; convert with pd.to_numeric(..., errors='coerce'), astype, or str() before combining values.",
    "none_attribute": "Something was None where an object was expected. A function probably returned None (e.g. an in-place pandas method like df.sort_values(inplace=True), or a failed lookup). Do not assign the result of in-place calls; check for None.",
    "file_not_found": "A file was not found. Use only the attached files in the working folder (listed below) with their exact names; list the folder with os.listdir('.') if unsure.",
    "json_decode": "Text was not valid JSON. Inspect the first characters of the text, strip code fences or BOMs, or read it with pandas.read_json(lines=True) if it is JSON Lines.",
    "value_error": "A value was invalid for the operation (bad conversion, mismatched shapes, ambiguous truth value). Check shapes and dtypes below; clean or coerce values first; use .any()/.all() for boolean Series.",
    "attribute_error": "An object has no such attribute or method. Check its type in the variables below and use an API that type really has (e.g. DataFrame vs Series vs ndarray).",
    "name_error": "A name was not defined. Define or import it in this cell; variables from earlier cells are listed below, use them by their exact names.",
    "import_error": "A module is not installed in the sandbox. Use only the standard library, pandas, numpy, matplotlib, seaborn, scipy, scikit-learn, statsmodels and openpyxl.",
    "zero_division": "A division by zero happened. Guard denominators (e.g. skip or mark rows where the count is 0) and handle empty groups.",
    "unicode_decode": "A file is not in the assumed text encoding. Read it with encoding='latin-1' or 'utf-8-sig', or pass encoding_errors='replace' to pandas.",
    "permission": "The sandbox refused the action: no network, no subprocesses, no writing outside the working folder. Do the work in Python in-process and write files only to the working folder.",
    "memory": "The cell ran out of memory. Work on fewer columns or rows (usecols=, chunksize=, sampling), use smaller dtypes, and avoid building large intermediate copies.",
    "timeout": "The cell took too long and was stopped. Avoid Python loops over rows (use vectorised pandas/numpy), sample large data, and never wait on input or the network.",
    "died": "The sandbox kernel died (likely too much memory or a crash in native code). Its variables were restored from snapshots where possible. Use a lighter approach.",
    "syntax_error": "The code did not parse. Write complete, valid Python 3 in one fenced block, with balanced brackets and quotes.",
    "inadequate": "The cell ran, but its output does not answer the task. Print the actual result the task asks for (values, not just shapes or a placeholder).",
    "other": "Read the traceback carefully, find the line that failed and why, and fix the cause rather than hiding the error with try/except.",
}

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
    return ErrorClass(name, _GUIDANCE[name])


def guidance_for(name: str) -> ErrorClass:
    return ErrorClass(name, _GUIDANCE[name])
