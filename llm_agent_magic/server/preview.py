"""A bounded preview of a variable's snapshot: JSON rows and an HTML table of at most N rows."""

from __future__ import annotations

import html
import json
from typing import Any


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def preview(name: str, value: Any, max_rows: int) -> dict[str, Any]:
    """``{"name", "type", "shape", "columns", "rows", "truncated", "html"}`` for a table, array or plain value."""
    import numpy as np
    import pandas as pd

    kind = type(value).__name__
    if isinstance(value, pd.Series):
        value = value.to_frame()
    if isinstance(value, np.ndarray):
        shape: list[Any] | None = list(value.shape)
        value = pd.DataFrame(value.reshape(value.shape[0], -1) if value.ndim > 1 else value) if value.ndim else value
    else:
        shape = list(value.shape) if isinstance(value, pd.DataFrame) else None
    if isinstance(value, pd.DataFrame):
        head = value.head(max_rows)
        rows = json.loads(head.to_json(orient="records", date_format="iso", default_handler=str))
        return {
            "name": name,
            "type": kind,
            "shape": shape,
            "columns": [str(c) for c in head.columns],
            "rows": rows,
            "truncated": len(value) > max_rows,
            "html": head.to_html(escape=True, border=0, max_cols=50),
        }
    if isinstance(value, np.ndarray):  # a 0-d array
        value = value.item()
    text = json.dumps(_jsonable(value))
    return {
        "name": name,
        "type": kind,
        "shape": None,
        "columns": None,
        "value": _jsonable(value),
        "rows": None,
        "truncated": False,
        "html": f"<pre>{html.escape(text[:10000])}</pre>",
    }
